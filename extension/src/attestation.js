// The attestation object (WebAuthn L3 §6.5.4) for `fmt: "none"` (§8.7: "attStmt" is an empty
// map), in CTAP2 canonical CBOR: the keys come out as fmt, attStmt, authData.

import * as cbor from './cbor.js';

/**
 * @param {Uint8Array} authData with attested credential data
 * @returns {Uint8Array}
 */
export function noneAttestationObject(authData) {
  return cbor.encode(new Map([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
}
