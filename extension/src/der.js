// WebAuthn wants an ES256 signature as an ASN.1 DER Ecdsa-Sig-Value (WebAuthn L3 §6.5.6
// "Signature Formats for Packed Attestation, FIDO U2F Attestation, and Assertion Signatures";
// RFC 3279 §2.2.3: SEQUENCE { r INTEGER, s INTEGER }); WebCrypto signs in IEEE P1363 form, r‖s.

/**
 * A DER INTEGER of an unsigned big-endian number: leading zeros stripped, one 0x00 put back when
 * the top bit is set (it would read as negative).
 * @param {Uint8Array} unsigned
 */
function derInteger(unsigned) {
  let start = 0;
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++;
  const body = unsigned.subarray(start);
  const pad = body[0] & 0x80 ? 1 : 0;
  const out = new Uint8Array(2 + pad + body.length);
  out[0] = 0x02;
  out[1] = pad + body.length;
  out.set(body, 2 + pad);
  return out;
}

/**
 * @param {Uint8Array | ArrayBuffer} p1363 r‖s, 64 bytes for P-256
 * @returns {Uint8Array} DER
 */
export function p1363ToDer(p1363) {
  const sig = p1363 instanceof Uint8Array ? p1363 : new Uint8Array(p1363);
  if (sig.length !== 64) throw new TypeError(`an ES256 signature is 64 bytes (r‖s), not ${sig.length}`);
  const r = derInteger(sig.subarray(0, 32));
  const s = derInteger(sig.subarray(32));
  // At most 2 × 35 bytes: the length fits in one byte.
  const out = new Uint8Array(2 + r.length + s.length);
  out[0] = 0x30;
  out[1] = r.length + s.length;
  out.set(r, 2);
  out.set(s, 2 + r.length);
  return out;
}

/**
 * The reverse (tests, and reading a server's DER signature to verify it with WebCrypto).
 * @param {Uint8Array} der
 * @returns {Uint8Array} r‖s, 64 bytes
 */
export function derToP1363(der) {
  const fail = () => {
    throw new TypeError('not a DER ECDSA P-256 signature');
  };
  if (der[0] !== 0x30 || der[1] !== der.length - 2) fail();
  const out = new Uint8Array(64);
  let at = 2;
  for (const half of [0, 32]) {
    if (der[at] !== 0x02) fail();
    const len = der[at + 1];
    let value = der.subarray(at + 2, at + 2 + len);
    if (value.length !== len || len === 0) fail();
    while (value.length > 32 && value[0] === 0) value = value.subarray(1);
    if (value.length > 32) fail();
    out.set(value, half + 32 - value.length);
    at += 2 + len;
  }
  if (at !== der.length) fail();
  return out;
}
