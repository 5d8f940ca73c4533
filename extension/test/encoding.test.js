import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as b64url from '../src/b64url.js';
import { decode } from '../src/cbor.js';
import { COSE, coseKeyFromCryptoKey, jwkFromCoseKey } from '../src/cose.js';
import { derToP1363, p1363ToDer } from '../src/der.js';
import { BEHALF_KEY_AAGUID, FLAGS, aaguidBytes, buildAuthData, parseAuthData, rpIdHash } from '../src/authdata.js';
import { noneAttestationObject } from '../src/attestation.js';
import { ccdToString, clientDataJson } from '../src/clientdata.js';
import { checkRpId } from '../src/rpid.js';

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const ES256 = { name: 'ECDSA', namedCurve: 'P-256' };

test('base64url round-trips and refuses padding and foreign characters', () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(b64url.decode(b64url.encode(bytes)), bytes);
  assert.equal(b64url.encode(Uint8Array.of(0xfb, 0xff)), '-_8');
  assert.throws(() => b64url.decode('-_8='), /not base64url/);
  assert.throws(() => b64url.decode('a+b'), /not base64url/);
  assert.throws(() => b64url.decode('abcde'), /not base64url/);
  assert.equal(b64url.toBase64(Uint8Array.of(0xfb, 0xff)), '+/8=');
});

test('the COSE key of a WebCrypto P-256 key holds its coordinates under the RFC 9053 labels', async () => {
  const pair = await crypto.subtle.generateKey(ES256, true, ['sign', 'verify']);
  const cose = await coseKeyFromCryptoKey(pair.publicKey);
  const map = decode(cose, { canonical: true });
  assert.deepEqual([...map.keys()], [COSE.KTY, COSE.ALG, COSE.CRV, COSE.X, COSE.Y]);
  assert.equal(map.get(1), 2);
  assert.equal(map.get(3), -7);
  assert.equal(map.get(-1), 1);
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  assert.deepEqual(jwkFromCoseKey(map), { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y });
});

test('P1363 signatures become DER that WebCrypto-made r and s survive, high bits and zeros too', async () => {
  // r with its top bit set (needs a 0x00), s with leading zero bytes (stripped).
  const raw = new Uint8Array(64);
  raw.fill(0x80, 0, 32);
  raw[34] = 0x7f;
  raw.fill(1, 35, 64);
  const der = p1363ToDer(raw);
  assert.equal(hex(der.subarray(0, 5)), '3043022100');
  assert.equal(der[2 + 35], 0x02);
  assert.equal(der[2 + 35 + 1], 30);
  assert.deepEqual(derToP1363(der), raw);
  const pair = await crypto.subtle.generateKey(ES256, false, ['sign', 'verify']);
  for (let i = 0; i < 20; i++) {
    const data = crypto.getRandomValues(new Uint8Array(40));
    const sig = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, data));
    assert.deepEqual(derToP1363(p1363ToDer(sig)), sig);
  }
  assert.throws(() => p1363ToDer(new Uint8Array(63)), /64 bytes/);
});

test('authenticator data: rpIdHash, flags, big-endian counter, attested credential data', async () => {
  const hash = await rpIdHash('login.microsoft.com');
  assert.equal(hex(hash), hex(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('login.microsoft.com')))));
  const plain = buildAuthData({ rpIdHash: hash, userPresent: true, userVerified: false, signCount: 0x01020304 });
  assert.equal(plain.length, 37);
  assert.equal(plain[32], FLAGS.UP);
  assert.equal(hex(plain.subarray(33)), '01020304');
  const pair = await crypto.subtle.generateKey(ES256, true, ['sign']);
  const cose = await coseKeyFromCryptoKey(pair.publicKey);
  const credentialId = crypto.getRandomValues(new Uint8Array(300));
  const aaguid = aaguidBytes(BEHALF_KEY_AAGUID);
  const data = buildAuthData({ rpIdHash: hash, userPresent: true, userVerified: true, signCount: 0, attested: { aaguid, credentialId, cosePublicKey: cose } });
  assert.equal(data[32], FLAGS.UP | FLAGS.UV | FLAGS.AT);
  assert.equal(hex(data.subarray(53, 55)), '012c', 'credentialIdLength, big-endian');
  const parsed = parseAuthData(data);
  assert.equal(parsed.up && parsed.uv, true);
  assert.deepEqual(parsed.attested.aaguid, aaguid);
  assert.deepEqual(parsed.attested.credentialId, credentialId);
  assert.deepEqual(parsed.attested.cosePublicKey, cose);
  assert.throws(() => parseAuthData(new Uint8Array([...data, 0])), /1 bytes after/);
  assert.throws(() => buildAuthData({ rpIdHash: hash, userPresent: true, userVerified: false, signCount: -1 }), /signCount/);
});

test('a none attestation object: fmt, attStmt {}, authData, canonical', async () => {
  const auth = buildAuthData({ rpIdHash: await rpIdHash('localhost'), userPresent: true, userVerified: false, signCount: 0 });
  const obj = noneAttestationObject(auth);
  // a3 | 63 "fmt" 64 "none" | 67 "attStmt" a0 | 68 "authData" 58 25 …
  assert.equal(hex(obj.subarray(0, 30)), 'a3' + '63666d74' + '646e6f6e65' + '6761747453746d74' + 'a0' + '6861757468446174' + '61' + '5825');
  const back = decode(obj, { canonical: true });
  assert.deepEqual(back.get('authData'), auth);
});

test('clientDataJSON in Chromium\'s key order, topOrigin only across origins, CCDToString escapes', () => {
  assert.equal(
    clientDataJson({ type: 'webauthn.get', challenge: 'AAEC', origin: 'https://login.microsoft.com', crossOrigin: false }),
    '{"type":"webauthn.get","challenge":"AAEC","origin":"https://login.microsoft.com","crossOrigin":false}',
  );
  assert.equal(
    clientDataJson({ type: 'webauthn.create', challenge: 'AAEC', origin: 'https://a.example', crossOrigin: true, topOrigin: 'https://b.example' }),
    '{"type":"webauthn.create","challenge":"AAEC","origin":"https://a.example","crossOrigin":true,"topOrigin":"https://b.example"}',
  );
  assert.equal(ccdToString('a"b\\c\nd\u001fé'), '"a\\"b\\\\c\\u000ad\\u001fé"');
  assert.throws(() => clientDataJson({ type: 'webauthn.get', challenge: 'AA==', origin: 'https://a.example', crossOrigin: false }), /base64url/);
});

test('RP id against origin: equal or a registrable suffix, HTTPS or localhost only', () => {
  assert.equal(checkRpId('login.microsoft.com', 'https://login.microsoft.com'), 'login.microsoft.com');
  assert.equal(checkRpId('microsoft.com', 'https://login.microsoft.com'), 'microsoft.com');
  assert.equal(checkRpId(undefined, 'https://login.microsoft.com:8443'), 'login.microsoft.com');
  assert.equal(checkRpId('localhost', 'http://localhost:41011'), 'localhost');
  assert.throws(() => checkRpId('evil.com', 'https://login.microsoft.com'), /not login.microsoft.com or a registrable suffix/);
  assert.throws(() => checkRpId('soft.com', 'https://login.microsoft.com'), /registrable suffix/, 'a suffix at a label boundary only');
  assert.throws(() => checkRpId('com', 'https://login.microsoft.com'), /public suffix/);
  assert.throws(() => checkRpId('login.microsoft.com', 'http://login.microsoft.com'), /HTTPS/);
  assert.throws(() => checkRpId('Login.Microsoft.com', 'https://login.microsoft.com'), /lowercase ASCII/);
  assert.throws(() => checkRpId(undefined, 'https://127.0.0.1'), /IP address/);
  assert.throws(() => checkRpId('a.example', 'https://a.example/path'), /serialised origin/);
  assert.throws(() => checkRpId('a.example', 'null'), /not an origin/);
});
