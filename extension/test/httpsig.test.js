import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as b64url from '../src/b64url.js';
import { contentDigest, jwkThumbprint, signRequest, signatureBase, signatureParams } from '../src/httpsig.js';
import { DeviceKey, MemoryStore } from '../src/devicekey.js';

const utf8 = (s) => new TextEncoder().encode(s);

test('Content-Digest is RFC 9530\'s own example for its example body', async () => {
  // RFC 9530 §2 (and Appendix B.1): {"hello": "world"} → sha-256=:X48E9q…BPE=:
  assert.equal(await contentDigest(utf8('{"hello": "world"}')), 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
});

test('the JWK thumbprint is RFC 7638 §3.1\'s canonical form hashed', async () => {
  const jwk = { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'BBBB', use: 'sig' };
  const expected = b64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', utf8('{"crv":"P-256","kty":"EC","x":"AAAA","y":"BBBB"}'))));
  assert.equal(await jwkThumbprint(jwk), expected);
});

test('the signature base, worked by hand from the contract', () => {
  const params = signatureParams({ hasBody: true, created: 1764600000, nonce: 'bm9uY2Utbm9uY2Utbm9uYw', keyid: 'kid-1' });
  assert.equal(params, '("@method" "@target-uri" "content-digest");created=1764600000;nonce="bm9uY2Utbm9uY2Utbm9uYw";keyid="kid-1";alg="ecdsa-p256-sha256"');
  const base = signatureBase({ method: 'post', targetUri: 'https://behalf.example/key/v1/assertions', contentDigest: 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:', params });
  assert.equal(
    base,
    '"@method": POST\n' +
      '"@target-uri": https://behalf.example/key/v1/assertions\n' +
      '"content-digest": sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\n' +
      '"@signature-params": ("@method" "@target-uri" "content-digest");created=1764600000;nonce="bm9uY2Utbm9uY2Utbm9uYw";keyid="kid-1";alg="ecdsa-p256-sha256"',
  );
  const noBody = signatureBase({ method: 'GET', targetUri: 'https://behalf.example/key/v1/me', params: signatureParams({ hasBody: false, created: 1, nonce: 'n', keyid: 'k' }) });
  assert.equal(noBody, '"@method": GET\n"@target-uri": https://behalf.example/key/v1/me\n"@signature-params": ("@method" "@target-uri");created=1;nonce="n";keyid="k";alg="ecdsa-p256-sha256"');
  assert.throws(() => signatureParams({ hasBody: false, created: 1, nonce: 'a"\n', keyid: 'k' }), /structured-field/);
});

test('signed headers verify with WebCrypto against the base a server rebuilds from them', async () => {
  const key = await DeviceKey.create(new MemoryStore());
  const body = utf8('{"rp_id":"login.microsoft.com"}');
  const headers = await signRequest({
    method: 'POST', targetUri: 'https://behalf.example/key/v1/credentials/find', body, keyid: key.keyId,
    sign: (d) => key.sign(d), created: 1764600000, nonce: 'AAAAAAAAAAAAAAAAAAAAAA',
  });
  assert.equal(headers['Content-Digest'], await contentDigest(body));
  const input = headers['Signature-Input'];
  assert.match(input, /^bk=\("@method" "@target-uri" "content-digest"\);created=1764600000;nonce="AAAAAAAAAAAAAAAAAAAAAA";keyid="[A-Za-z0-9_-]{43}";alg="ecdsa-p256-sha256"$/);
  const sig = headers['Signature'].match(/^bk=:([A-Za-z0-9+/=]+):$/)[1];
  const rebuilt = `"@method": POST\n"@target-uri": https://behalf.example/key/v1/credentials/find\n"content-digest": ${headers['Content-Digest']}\n"@signature-params": ${input.slice(3)}`;
  const pub = await crypto.subtle.importKey('jwk', key.publicJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  const verify = (text) => crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, b64url.fromBase64(sig), utf8(text));
  assert.equal(await verify(rebuilt), true);
  assert.equal(await verify(rebuilt.replace('find', 'fine')), false, 'another target is not covered by this signature');
  assert.equal(b64url.fromBase64(sig).length, 64, 'r‖s, not DER');
});

test('the device key signs but its private half cannot be exported, and it survives the store', async () => {
  const store = new MemoryStore();
  assert.equal(await DeviceKey.load(store), null);
  const key = await DeviceKey.create(store);
  const again = await DeviceKey.load(store);
  assert.equal(again.keyId, key.keyId);
  const data = utf8('x');
  const pub = await crypto.subtle.importKey('jwk', key.publicJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  assert.equal(await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, await again.sign(data), data), true);
  const kept = await store.get('device');
  assert.equal(kept.privateKey.extractable, false);
  await assert.rejects(crypto.subtle.exportKey('jwk', kept.privateKey));
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(key))).sort(), ['keyId', 'publicJwk']);
  await DeviceKey.forget(store);
  assert.equal(await DeviceKey.load(store), null);
});
