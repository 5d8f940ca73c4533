import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as b64url from '../src/b64url.js';
import { decode } from '../src/cbor.js';
import { jwkFromCoseKey } from '../src/cose.js';
import { derToP1363 } from '../src/der.js';
import { parseAuthData, rpIdHash } from '../src/authdata.js';
import { Api } from '../src/api.js';
import { DeviceKey, MemoryStore } from '../src/devicekey.js';
import { LocalKeys } from '../src/localkeys.js';
import { approveLocalRequest, handleCreate, handleGet } from '../src/requests.js';
import { TestServer } from './server.js';

const ORIGIN = 'https://login.microsoft.com';
const CHALLENGE = b64url.encode(crypto.getRandomValues(new Uint8Array(32)));
const getOptions = (extra = {}) => ({ challenge: CHALLENGE, rpId: 'login.microsoft.com', userVerification: 'required', ...extra });

async function setup(server, answers = []) {
  const store = new MemoryStore();
  const key = await DeviceKey.create(store);
  const api = new Api({ serverUrl: server.url, deviceKey: key, fetch: server.fetch });
  const paired = await api.pair({ code: 'bhp_one', deviceName: 'laptop', publicJwk: key.publicJwk, pin: '1234' });
  const asked = [];
  const forgotten = [];
  const deps = {
    pairing: { role: paired.role, user: paired.user },
    api,
    localKeys: new LocalKeys(store),
    prompt: async (q) => {
      asked.push(structuredClone(q));
      return answers.length ? answers.shift() : null;
    },
    forget: async (why) => forgotten.push(why),
  };
  return { deps, asked, forgotten };
}

async function verifyAssertion(answer, publicKey, { rpId, uv }) {
  const r = answer.response;
  const client = b64url.decode(r.clientDataJSON);
  assert.equal(new TextDecoder().decode(client), `{"type":"webauthn.get","challenge":"${CHALLENGE}","origin":"${ORIGIN}","crossOrigin":false}`);
  const auth = b64url.decode(r.authenticatorData);
  const parsed = parseAuthData(auth);
  assert.deepEqual(parsed.rpIdHash, await rpIdHash(rpId));
  assert.equal(parsed.up, true);
  assert.equal(parsed.uv, uv);
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', client));
  const signed = new Uint8Array([...auth, ...hash]);
  const ok = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, publicKey, derToP1363(b64url.decode(r.signature)), signed);
  assert.equal(ok, true, 'the signature verifies over authenticatorData ‖ SHA-256(clientDataJSON)');
  return parsed;
}

test('a get for a vault credential: approve with the PIN, the server signs, the JSON verifies', async () => {
  const server = await TestServer.withVaultCredential();
  const { deps, asked } = await setup(server, [{ approve: true, pin: '1234' }]);
  const out = await handleGet({ options: getOptions(), origin: ORIGIN, sameOriginWithAncestors: true }, deps);
  assert.ok(out.answer, JSON.stringify(out));
  assert.equal(asked[0].upn, 'alice@contoso.com');
  assert.equal(asked[0].rpId, 'login.microsoft.com');
  assert.equal(asked[0].askPin, true);
  const cred = server.credentials[0];
  assert.equal(out.answer.id, cred.id);
  assert.equal(out.answer.type, 'public-key');
  assert.deepEqual(out.answer.clientExtensionResults, {});
  assert.equal(out.answer.response.userHandle, 'dXNlcg');
  const parsed = await verifyAssertion(out.answer, cred.key.publicKey, { rpId: 'login.microsoft.com', uv: true });
  assert.equal(parsed.signCount, 1);
  const sent = server.seen.find((s) => s.path === '/key/v1/assertions').body;
  assert.equal(sent.origin, ORIGIN);
  assert.equal(sent.pin, '1234');
});

test('userVerification "discouraged" asks no PIN and the answer has no UV', async () => {
  const server = await TestServer.withVaultCredential();
  const { deps, asked } = await setup(server, [{ approve: true, pin: 'ignored' }]);
  const out = await handleGet({ options: getOptions({ userVerification: 'discouraged' }), origin: ORIGIN, sameOriginWithAncestors: true }, deps);
  assert.equal(asked[0].askPin, false);
  await verifyAssertion(out.answer, server.credentials[0].key.publicKey, { rpId: 'login.microsoft.com', uv: false });
  assert.equal(server.seen.find((s) => s.path === '/key/v1/assertions').body.pin, undefined);
});

test('no credential for the RP, an unpaired browser, a cross-origin frame, a bad RP id: handed back', async () => {
  const server = await TestServer.withVaultCredential();
  const { deps, asked } = await setup(server, [{ approve: true, pin: '1234' }]);
  const hand = (options, origin = 'https://other.example', same = true, d = deps) => handleGet({ options, origin, sameOriginWithAncestors: same }, d);
  assert.deepEqual(await hand(getOptions({ rpId: 'other.example' })), { handBack: true, reason: 'no credential' });
  assert.equal((await hand(getOptions(), ORIGIN, true, { ...deps, pairing: null })).reason, 'not paired');
  assert.equal((await hand(getOptions(), ORIGIN, false)).reason, 'cross-origin iframe');
  assert.match((await hand(getOptions(), 'https://evil.example')).reason, /not evil.example or a registrable suffix/);
  assert.equal(asked.length, 0, 'the user is asked nothing for a request that is not theirs');
  const declined = await handleGet({ options: getOptions(), origin: ORIGIN, sameOriginWithAncestors: true }, { ...deps, prompt: async () => null });
  assert.equal(declined.reason, 'declined');
});

test('a wrong PIN shows the retries left; three in a row end the request; blocked says so', async () => {
  const server = await TestServer.withVaultCredential({ });
  const { deps, asked } = await setup(server, [
    { approve: true, pin: '0000' }, { approve: true, pin: '1111' }, { approve: true, pin: '2222' }, {},
  ]);
  const out = await handleGet({ options: getOptions(), origin: ORIGIN, sameOriginWithAncestors: true }, deps);
  assert.equal(out.reason, 'wrong PINs in a row');
  assert.deepEqual(asked.map((q) => q.retries), [undefined, 7, 6, 5]);
  assert.equal(asked[1].error, 'Wrong PIN.');
  assert.equal(asked[3].kind, 'notice');
  server.retries = 1;
  const again = [{ approve: true, pin: '0000' }, {}];
  const asked2 = [];
  const out2 = await handleGet({ options: getOptions(), origin: ORIGIN, sameOriginWithAncestors: true }, { ...deps, prompt: async (q) => { asked2.push(q); return again.shift(); } });
  assert.equal(out2.reason, 'PIN blocked');
  assert.equal(asked2[1].blocked, true);
  assert.match(asked2[1].message, /blocked/);
});

test('a revoked device forgets its pairing and hands the request back', async () => {
  const server = await TestServer.withVaultCredential();
  const { deps, forgotten } = await setup(server);
  for (const d of server.devices.values()) d.revoked = true;
  const out = await handleGet({ options: getOptions(), origin: ORIGIN, sameOriginWithAncestors: true }, deps);
  assert.match(out.reason, /^device_revoked/);
  assert.deepEqual(forgotten, ['revoked']);
});

const createOptions = (extra = {}) => ({
  challenge: CHALLENGE,
  rp: { id: 'shop.example', name: 'Shop' },
  user: { id: 'Ym9i', name: 'bob', displayName: 'Bob' },
  pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
  excludeCredentials: [{ type: 'public-key', id: 'ZXg' }],
  ...extra,
});

test('a create from a user device goes back to the browser, unasked', async () => {
  const server = new TestServer({ role: 'user' });
  const { deps, asked } = await setup(server, [{ forUser: 'bob@contoso.com', pin: '1234' }]);
  const out = await handleCreate({ options: createOptions(), origin: 'https://shop.example', sameOriginWithAncestors: true }, deps);
  assert.equal(out.handBack, true);
  assert.equal(asked.length, 0);
});

test('an admin registers for a named user; an unknown user is asked again; "hand back" hands back', async () => {
  const server = new TestServer({ role: 'admin' });
  const { deps, asked } = await setup(server, [{ forUser: 'nobody@contoso.com', pin: '1234' }, { forUser: 'bob@contoso.com', pin: '1234' }]);
  const out = await handleCreate({ options: createOptions(), origin: 'https://shop.example', sameOriginWithAncestors: true }, deps);
  assert.equal(asked[0].kind, 'create');
  assert.equal(asked[1].error, 'Behalf has no user nobody@contoso.com.');
  const sent = server.registrations[0];
  assert.equal(sent.for_user, 'bob@contoso.com');
  assert.deepEqual(sent.rp, { id: 'shop.example', name: 'Shop' });
  assert.equal(sent.origin, 'https://shop.example');
  assert.deepEqual(sent.exclude_credentials, ['ZXg']);
  const client = b64url.decode(out.answer.response.clientDataJSON);
  assert.equal(sent.client_data_hash, b64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', client))));
  assert.match(new TextDecoder().decode(client), /^\{"type":"webauthn.create","challenge":"[^"]+","origin":"https:\/\/shop.example","crossOrigin":false\}$/);
  assert.equal(out.answer.response.publicKeyAlgorithm, -7);
  assert.deepEqual(out.answer.response.transports, ['internal']);
  const handed = await handleCreate({ options: createOptions(), origin: 'https://shop.example', sameOriginWithAncestors: true }, { ...deps, prompt: async () => ({ handBack: true }) });
  assert.equal(handed.reason, 'the admin handed it to the browser');
  const register = deps.api.register.bind(deps.api);
  const withoutKey = { ...deps, prompt: async () => ({ forUser: 'bob@contoso.com', pin: '1234' }), api: Object.assign(Object.create(deps.api), { register: async (b) => ({ ...(await register(b)), public_key: undefined }) }) };
  const noKey = await handleCreate({ options: createOptions(), origin: 'https://shop.example', sameOriginWithAncestors: true }, withoutKey);
  assert.equal(noKey.reason, 'the server sent no public key', "Chromium refuses a create answer without response.publicKey");
  const rsaOnly = await handleCreate({ options: createOptions({ pubKeyCredParams: [{ type: 'public-key', alg: -257 }] }), origin: 'https://shop.example', sameOriginWithAncestors: true }, deps);
  assert.equal(rsaOnly.reason, 'the site accepts no ES256 credential');
});

test('a local key: approve makes the credential here, its attestation goes back, and it signs in', async () => {
  const server = new TestServer();
  const { deps } = await setup(server);
  server.pending.push({
    id: 'req-1',
    options: {
      challenge: CHALLENGE,
      rp: { id: 'login.microsoft.com', name: 'Microsoft' },
      user: { id: 'YWxpY2U', name: 'alice@contoso.com', displayName: 'Alice' },
      pubKeyCredParams: [{ type: 'public-key', alg: -7 }, { type: 'public-key', alg: -257 }],
      authenticatorSelection: { userVerification: 'required', requireResidentKey: true },
      attestation: 'direct',
    },
  });
  const done = await approveLocalRequest('req-1', '1234', deps);
  assert.equal(done.state, 'registered');
  const att = server.pending[0].attestation;
  const obj = decode(b64url.decode(att.attestation_object), { canonical: true });
  assert.equal(obj.get('fmt'), 'none');
  const auth = parseAuthData(obj.get('authData'));
  assert.equal(b64url.encode(auth.attested.credentialId), att.credential_id);
  assert.equal(auth.uv && auth.up, true);
  assert.equal(new TextDecoder().decode(b64url.decode(att.client_data_json)), `{"type":"webauthn.create","challenge":"${CHALLENGE}","origin":"${ORIGIN}","crossOrigin":false}`);
  // The server now lists it as a local credential; a get signs with the key in this browser.
  server.credentials.push({ id: att.credential_id, rp_id: 'login.microsoft.com', user: { id: 'YWxpY2U', name: 'alice@contoso.com' }, kind: 'local' });
  const publicKey = await crypto.subtle.importKey('jwk', jwkFromCoseKey(auth.attested.coseKey), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  const prompt = [{ approve: true, pin: '1234' }, { approve: true, pin: '1234' }];
  const get = () => handleGet({ options: getOptions(), origin: ORIGIN, sameOriginWithAncestors: true }, { ...deps, prompt: async () => prompt.shift() });
  const first = await verifyAssertion((await get()).answer, publicKey, { rpId: 'login.microsoft.com', uv: true });
  const second = await verifyAssertion((await get()).answer, publicKey, { rpId: 'login.microsoft.com', uv: true });
  assert.deepEqual([first.signCount, second.signCount], [1, 2]);
  assert.equal(server.seen.filter((s) => s.path === '/key/v1/assertions/local').length, 2, 'every use is reported to the server');
  // A second browser of the same user has no key for it.
  const elsewhere = new LocalKeys(new MemoryStore());
  const out = await handleGet({ options: getOptions(), origin: ORIGIN, sameOriginWithAncestors: true }, { ...deps, localKeys: elsewhere, prompt: async () => ({ approve: true, pin: '1234' }) });
  assert.equal(out.reason, 'no credential');
});
