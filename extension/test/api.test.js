import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, ApiError, ERROR, normaliseServerUrl } from '../src/api.js';
import { DeviceKey, MemoryStore } from '../src/devicekey.js';
import { TestServer } from './server.js';

async function paired(server) {
  const key = await DeviceKey.create(new MemoryStore());
  const api = new Api({ serverUrl: server.url, deviceKey: key, fetch: server.fetch });
  await api.pair({ code: 'bhp_one', deviceName: "Alice's laptop", publicJwk: key.publicJwk, pin: '1234' });
  return { api, key };
}

test('pairing is signed with the new key and sends its public JWK; later calls are signed too', async () => {
  const server = new TestServer();
  const { api, key } = await paired(server);
  const pair = server.seen[0];
  assert.deepEqual(pair.body.public_key, key.publicJwk);
  assert.equal(pair.body.device_name, "Alice's laptop");
  assert.match(pair.headers['Signature-Input'], new RegExp(`keyid="${key.keyId}"`));
  const me = await api.me();
  assert.equal(me.user.upn, 'alice@contoso.com');
  assert.equal(server.seen[1].headers['Content-Digest'], undefined, 'a GET has no body to digest');
  assert.match(server.seen[1].headers['Signature-Input'], /^bk=\("@method" "@target-uri"\);created=\d+;nonce="[A-Za-z0-9_-]{22}";/);
  assert.notEqual(server.seen[0].headers['Signature-Input'].match(/nonce="([^"]+)"/)[1], server.seen[1].headers['Signature-Input'].match(/nonce="([^"]+)"/)[1]);
});

test("the server's error codes arrive as ApiError codes, with the retries left", async () => {
  const server = new TestServer({ pin: '1234' });
  const key = await DeviceKey.create(new MemoryStore());
  const api = new Api({ serverUrl: server.url, deviceKey: key, fetch: server.fetch });
  await assert.rejects(api.pair({ code: 'bhp_nope', deviceName: 'x', publicJwk: key.publicJwk, pin: '1234' }), (e) => e instanceof ApiError && e.code === ERROR.PAIRING_CODE_INVALID && e.status === 400);
  await assert.rejects(api.pair({ code: 'bhp_one', deviceName: 'x', publicJwk: key.publicJwk, pin: '9999' }), (e) => e.code === ERROR.PIN_INVALID && e.retries === 7);
  const stranger = new Api({ serverUrl: server.url, deviceKey: await DeviceKey.create(new MemoryStore()), fetch: server.fetch });
  await assert.rejects(stranger.me(), (e) => e.code === ERROR.SIGNATURE_INVALID && e.status === 401);
  const down = new Api({ serverUrl: server.url, deviceKey: key, fetch: async () => { throw new TypeError('Failed to fetch'); } });
  await assert.rejects(down.me(), (e) => e.code === ERROR.UNREACHABLE && /did not answer/.test(e.message));
  const odd = new Api({ serverUrl: server.url, deviceKey: key, fetch: async () => new Response('<html>', { status: 502 }) });
  await assert.rejects(odd.me(), (e) => e.code === ERROR.UNEXPECTED && e.status === 502);
  const foreign = new Api({ serverUrl: server.url, deviceKey: key, fetch: async () => Response.json({ error: 'teapot' }, { status: 418 }) });
  await assert.rejects(foreign.me(), (e) => e.code === ERROR.UNEXPECTED, 'a code outside the contract is not passed on as one');
});

test('a revoked device is refused from its next request', async () => {
  const server = new TestServer();
  const { api, key } = await paired(server);
  server.devices.get(key.keyId).revoked = true;
  await assert.rejects(api.me(), (e) => e.code === ERROR.DEVICE_REVOKED);
});

test('server URLs: https, or http to this machine; no query', () => {
  assert.equal(normaliseServerUrl(' https://behalf.example/ '), 'https://behalf.example');
  assert.equal(normaliseServerUrl('https://behalf.example/sub/'), 'https://behalf.example/sub');
  assert.equal(normaliseServerUrl('http://127.0.0.1:8080'), 'http://127.0.0.1:8080');
  assert.throws(() => normaliseServerUrl('http://behalf.example'), /must be https/);
  assert.throws(() => normaliseServerUrl('https://behalf.example/?x=1'), /no query/);
  assert.throws(() => normaliseServerUrl('behalf'), /not a URL/);
});
