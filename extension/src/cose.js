// COSE_Key for an ES256 credential (RFC 9052 §7, RFC 9053 §2.1 and §7.1.1): EC2 key type,
// P-256 curve, x and y as 32-byte big-endian coordinates.

import * as b64url from './b64url.js';
import * as cbor from './cbor.js';

/** COSE labels and values (IANA "COSE Key Common Parameters", "COSE Elliptic Curves"). */
export const COSE = Object.freeze({
  KTY: 1,
  ALG: 3,
  CRV: -1,
  X: -2,
  Y: -3,
  KTY_EC2: 2,
  ALG_ES256: -7,
  CRV_P256: 1,
});

/**
 * The COSE key of a P-256 public key given as a JWK (what WebCrypto exports).
 * @param {JsonWebKey} jwk
 * @returns {Uint8Array} CTAP2 canonical CBOR
 */
export function coseKeyFromJwk(jwk) {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') {
    throw new TypeError(`COSE: only EC P-256 keys, not ${jwk.kty} ${jwk.crv}`);
  }
  const x = b64url.decode(jwk.x);
  const y = b64url.decode(jwk.y);
  if (x.length !== 32 || y.length !== 32) throw new TypeError('COSE: a P-256 coordinate is 32 bytes');
  return cbor.encode(
    new Map([
      [COSE.KTY, COSE.KTY_EC2],
      [COSE.ALG, COSE.ALG_ES256],
      [COSE.CRV, COSE.CRV_P256],
      [COSE.X, x],
      [COSE.Y, y],
    ]),
  );
}

/**
 * The COSE key of a WebCrypto ECDSA P-256 public key.
 * @param {CryptoKey} publicKey
 * @returns {Promise<Uint8Array>}
 */
export async function coseKeyFromCryptoKey(publicKey) {
  return coseKeyFromJwk(await crypto.subtle.exportKey('jwk', publicKey));
}

/**
 * Reads a COSE EC2 P-256 key back into a JWK (tests, and checking a server's answer).
 * @param {Map<number, unknown>} map a decoded COSE key
 * @returns {JsonWebKey}
 */
export function jwkFromCoseKey(map) {
  if (map.get(COSE.KTY) !== COSE.KTY_EC2 || map.get(COSE.ALG) !== COSE.ALG_ES256 || map.get(COSE.CRV) !== COSE.CRV_P256) {
    throw new TypeError('COSE: not an EC2 ES256 P-256 key');
  }
  return { kty: 'EC', crv: 'P-256', x: b64url.encode(map.get(COSE.X)), y: b64url.encode(map.get(COSE.Y)) };
}
