// base64url without padding (RFC 4648 §5), the encoding WebAuthn's JSON forms use, and plain
// base64 (RFC 4648 §4, padded), which RFC 9421 and RFC 9530 byte sequences use.

const URL_ALPHABET = /^[A-Za-z0-9_-]*$/;

/**
 * @param {Uint8Array | ArrayBuffer} bytes
 * @returns {string} base64url without padding
 */
export function encode(bytes) {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Strict: only the URL-safe alphabet, no padding, no length that no encoding produces.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function decode(text) {
  if (typeof text !== 'string' || !URL_ALPHABET.test(text) || text.length % 4 === 1) {
    throw new TypeError(`not base64url without padding: ${JSON.stringify(String(text).slice(0, 40))}`);
  }
  return fromBase64(text.replace(/-/g, '+').replace(/_/g, '/'));
}

/**
 * @param {Uint8Array | ArrayBuffer} bytes
 * @returns {string} base64 with padding
 */
export function toBase64(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = '';
  for (let i = 0; i < view.length; i += 0x8000) {
    binary += String.fromCharCode(...view.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * @param {string} text base64, padding optional
 * @returns {Uint8Array}
 */
export function fromBase64(text) {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * A copy of the bytes as an ArrayBuffer of exactly their length (what WebAuthn's response
 * attributes are).
 * @param {Uint8Array} bytes
 * @returns {ArrayBuffer}
 */
export function toArrayBuffer(bytes) {
  return bytes.slice().buffer;
}
