// The CBOR (RFC 8949) that CTAP2 and WebAuthn need: unsigned and negative integers, byte and
// text strings, arrays, maps, false/true/null. No floats, tags or indefinite lengths.
//
// Encoding is CTAP2 canonical (CTAP 2.1 §8 "CTAP2 canonical CBOR encoding form"): every integer
// and length in its shortest form, and map keys sorted "if the major types are different, the one
// with the lower value … sorts earlier; if two keys have different lengths, the shorter one sorts
// earlier; if two keys have the same length, the one with the lower value in (byte-wise) lexical
// order sorts earlier". Over deterministic encodings that is the same order as RFC 8949 §4.2.1's
// "bytewise lexicographic order of their deterministic encodings" (the major type is the first
// byte's top bits, and within one major type a longer encoding has a larger head), so keys are
// sorted bytewise by their encodings. It is NOT RFC 7049 §3.9's length-first order, which puts a
// 1-byte negative key before a 2-byte unsigned one.
//
// The decoder reads attestation objects and COSE keys back (tests, and checking what the server
// sends); with `{canonical: true}` it refuses anything the encoder would not have produced.

import { compareBytes, concat, utf8 } from './bytes.js';

const MAJOR_UINT = 0;
const MAJOR_NINT = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_SIMPLE = 7;

/** @param {number} major @param {number} value @returns {Uint8Array} */
function head(major, value) {
  const m = major << 5;
  if (value < 24) return Uint8Array.of(m | value);
  if (value < 0x100) return Uint8Array.of(m | 24, value);
  if (value < 0x10000) return Uint8Array.of(m | 25, value >> 8, value & 0xff);
  if (value < 0x100000000) {
    return Uint8Array.of(m | 26, value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
  }
  const out = new Uint8Array(9);
  out[0] = m | 27;
  new DataView(out.buffer).setBigUint64(1, BigInt(value));
  return out;
}

/**
 * Encodes `value`: integers (safe integers only), Uint8Array (byte string), string (text
 * string), boolean, null, arrays, and maps as a `Map` (any key type here) or a plain object
 * (text keys).
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function encode(value) {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`CBOR: only safe integers are encoded, not ${value}`);
    return value >= 0 ? head(MAJOR_UINT, value) : head(MAJOR_NINT, -1 - value);
  }
  if (value instanceof Uint8Array) return concat(head(MAJOR_BYTES, value.length), value);
  if (value instanceof ArrayBuffer) return encode(new Uint8Array(value));
  if (typeof value === 'string') {
    const bytes = utf8(value);
    return concat(head(MAJOR_TEXT, bytes.length), bytes);
  }
  if (value === false) return Uint8Array.of(0xf4);
  if (value === true) return Uint8Array.of(0xf5);
  if (value === null) return Uint8Array.of(0xf6);
  if (Array.isArray(value)) return concat(head(MAJOR_ARRAY, value.length), ...value.map(encode));
  if (value instanceof Map || (typeof value === 'object' && value !== undefined)) {
    const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
    const encoded = entries.map(([k, v]) => [encode(k), encode(v)]);
    encoded.sort((a, b) => compareBytes(a[0], b[0]));
    for (let i = 1; i < encoded.length; i++) {
      if (compareBytes(encoded[i - 1][0], encoded[i][0]) === 0) throw new TypeError('CBOR: a map has a key twice');
    }
    return concat(head(MAJOR_MAP, encoded.length), ...encoded.flat());
  }
  throw new TypeError(`CBOR: cannot encode ${typeof value}`);
}

/**
 * Decodes exactly one item that fills `bytes`. Maps come back as `Map`, byte strings as
 * Uint8Array.
 * @param {Uint8Array} bytes
 * @param {{canonical?: boolean}} [options] refuse non-shortest heads and unsorted map keys
 * @returns {unknown}
 */
export function decode(bytes, options = {}) {
  const [value, end] = decodeAt(bytes, 0, options.canonical === true);
  if (end !== bytes.length) throw new TypeError(`CBOR: ${bytes.length - end} bytes after the item`);
  return value;
}

/**
 * Decodes one item at `offset` and says where it ended (authenticator data holds a COSE key
 * followed by extensions, so its length is only known by reading it).
 * @param {Uint8Array} bytes
 * @param {number} offset
 * @param {{canonical?: boolean}} [options]
 * @returns {[unknown, number]}
 */
export function decodePrefix(bytes, offset, options = {}) {
  return decodeAt(bytes, offset, options.canonical === true);
}

function need(bytes, at, n) {
  if (at + n > bytes.length) throw new TypeError('CBOR: truncated');
}

function readHead(bytes, at, canonical) {
  need(bytes, at, 1);
  const first = bytes[at];
  const major = first >> 5;
  const info = first & 0x1f;
  if (info < 24) return [major, info, at + 1];
  const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
  if (size === undefined) throw new TypeError(`CBOR: unsupported additional information ${info} (indefinite lengths and floats are not used)`);
  need(bytes, at + 1, size);
  const view = new DataView(bytes.buffer, bytes.byteOffset + at + 1, size);
  let value;
  if (size === 1) value = view.getUint8(0);
  else if (size === 2) value = view.getUint16(0);
  else if (size === 4) value = view.getUint32(0);
  else {
    const big = view.getBigUint64(0);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new TypeError('CBOR: integer beyond 2^53');
    value = Number(big);
  }
  if (canonical && major !== MAJOR_SIMPLE) {
    const shortest = { 1: 24, 2: 0x100, 4: 0x10000, 8: 0x100000000 }[size];
    if (value < shortest) throw new TypeError('CBOR: not canonical (a longer head than needed)');
  }
  return [major, value, at + 1 + size];
}

function decodeAt(bytes, at, canonical) {
  const [major, value, next] = readHead(bytes, at, canonical);
  switch (major) {
    case MAJOR_UINT:
      return [value, next];
    case MAJOR_NINT:
      return [-1 - value, next];
    case MAJOR_BYTES:
      need(bytes, next, value);
      return [bytes.slice(next, next + value), next + value];
    case MAJOR_TEXT:
      need(bytes, next, value);
      return [new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(next, next + value)), next + value];
    case MAJOR_ARRAY: {
      const out = [];
      let p = next;
      for (let i = 0; i < value; i++) {
        const [item, end] = decodeAt(bytes, p, canonical);
        out.push(item);
        p = end;
      }
      return [out, p];
    }
    case MAJOR_MAP: {
      const out = new Map();
      let p = next;
      let previousKey = null;
      for (let i = 0; i < value; i++) {
        const keyStart = p;
        const [key, keyEnd] = decodeAt(bytes, p, canonical);
        const keyBytes = bytes.subarray(keyStart, keyEnd);
        if (canonical && previousKey && compareBytes(previousKey, keyBytes) >= 0) {
          throw new TypeError('CBOR: not canonical (map keys out of order or repeated)');
        }
        previousKey = keyBytes;
        const [item, end] = decodeAt(bytes, keyEnd, canonical);
        if (out.has(key)) throw new TypeError('CBOR: a map has a key twice');
        out.set(key, item);
        p = end;
      }
      return [out, p];
    }
    case MAJOR_SIMPLE:
      if (value === 20) return [false, next];
      if (value === 21) return [true, next];
      if (value === 22) return [null, next];
      throw new TypeError(`CBOR: unsupported simple value ${value}`);
    default:
      throw new TypeError(`CBOR: unsupported major type ${major} (tags are not used)`);
  }
}
