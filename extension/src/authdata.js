// Authenticator data (WebAuthn L3 §6.1): rpIdHash (32) ‖ flags (1) ‖ signCount (4, big-endian)
// ‖ attested credential data (§6.5.2: AAGUID (16) ‖ credentialIdLength (2) ‖ credentialId ‖
// credentialPublicKey as COSE) ‖ extensions (CBOR map).

import { concat, sha256, utf8 } from './bytes.js';
import { decodePrefix } from './cbor.js';

/** §6.1 flag bits. */
export const FLAGS = Object.freeze({ UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40, ED: 0x80 });

/** Behalf Key's AAGUID for credentials made in the extension (local keys). */
export const BEHALF_KEY_AAGUID = '44ebed27-e29d-42bd-9b90-f75a9ace3984';

/** @param {string} uuid @returns {Uint8Array} 16 bytes */
export function aaguidBytes(uuid) {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new TypeError(`not a UUID: ${uuid}`);
  return Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
}

/** §6.1: "SHA-256 hash of the RP ID the credential is scoped to". */
export function rpIdHash(rpId) {
  return sha256(utf8(rpId));
}

/**
 * @param {object} a
 * @param {Uint8Array} a.rpIdHash
 * @param {boolean} a.userPresent
 * @param {boolean} a.userVerified
 * @param {number} a.signCount
 * @param {{aaguid: Uint8Array, credentialId: Uint8Array, cosePublicKey: Uint8Array}} [a.attested]
 * @returns {Uint8Array}
 */
export function buildAuthData({ rpIdHash: hash, userPresent, userVerified, signCount, attested }) {
  if (hash.length !== 32) throw new TypeError('rpIdHash is 32 bytes');
  if (!Number.isInteger(signCount) || signCount < 0 || signCount > 0xffffffff) {
    throw new TypeError(`signCount is a 32-bit unsigned integer, not ${signCount}`);
  }
  const flags = (userPresent ? FLAGS.UP : 0) | (userVerified ? FLAGS.UV : 0) | (attested ? FLAGS.AT : 0);
  const head = new Uint8Array(37);
  head.set(hash);
  head[32] = flags;
  new DataView(head.buffer).setUint32(33, signCount);
  if (!attested) return head;
  const { aaguid, credentialId, cosePublicKey } = attested;
  if (aaguid.length !== 16) throw new TypeError('an AAGUID is 16 bytes');
  // §6.5.2: credentialIdLength is 2 bytes; §5.8.3: at most 1023 bytes.
  if (credentialId.length === 0 || credentialId.length > 1023) throw new TypeError('a credential id is 1 to 1023 bytes');
  const idLength = Uint8Array.of(credentialId.length >> 8, credentialId.length & 0xff);
  return concat(head, aaguid, idLength, credentialId, cosePublicKey);
}

/**
 * @param {Uint8Array} data
 * @returns {{rpIdHash: Uint8Array, flags: number, up: boolean, uv: boolean, signCount: number,
 *   attested?: {aaguid: Uint8Array, credentialId: Uint8Array, cosePublicKey: Uint8Array, coseKey: unknown},
 *   extensions?: unknown}}
 */
export function parseAuthData(data) {
  if (data.length < 37) throw new TypeError('authenticator data is at least 37 bytes');
  const flags = data[32];
  const out = {
    rpIdHash: data.slice(0, 32),
    flags,
    up: (flags & FLAGS.UP) !== 0,
    uv: (flags & FLAGS.UV) !== 0,
    signCount: new DataView(data.buffer, data.byteOffset + 33, 4).getUint32(0),
  };
  let at = 37;
  if (flags & FLAGS.AT) {
    const aaguid = data.slice(at, at + 16);
    const idLength = (data[at + 16] << 8) | data[at + 17];
    const credentialId = data.slice(at + 18, at + 18 + idLength);
    const keyStart = at + 18 + idLength;
    const [coseKey, keyEnd] = decodePrefix(data, keyStart, { canonical: true });
    out.attested = { aaguid, credentialId, cosePublicKey: data.slice(keyStart, keyEnd), coseKey };
    at = keyEnd;
  }
  if (flags & FLAGS.ED) {
    const [extensions, end] = decodePrefix(data, at, { canonical: true });
    out.extensions = extensions;
    at = end;
  }
  if (at !== data.length) throw new TypeError(`${data.length - at} bytes after the authenticator data`);
  return out;
}
