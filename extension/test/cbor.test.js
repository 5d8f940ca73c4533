import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from '../src/cbor.js';

const hex = (bytes) => Buffer.from(bytes).toString('hex');

test('integers and lengths take their shortest form (RFC 8949 Appendix A examples)', () => {
  assert.equal(hex(encode(0)), '00');
  assert.equal(hex(encode(23)), '17');
  assert.equal(hex(encode(24)), '1818');
  assert.equal(hex(encode(1000)), '1903e8');
  assert.equal(hex(encode(1000000)), '1a000f4240');
  assert.equal(hex(encode(1000000000000)), '1b000000e8d4a51000');
  assert.equal(hex(encode(-1)), '20');
  assert.equal(hex(encode(-7)), '26');
  assert.equal(hex(encode(-1000)), '3903e7');
  assert.equal(hex(encode('IETF')), '6449455446');
  assert.equal(hex(encode(new Uint8Array([1, 2, 3, 4]))), '4401020304');
  assert.equal(hex(encode([1, [2, 3]])), '8201820203');
  assert.equal(hex(encode(false)) + hex(encode(true)) + hex(encode(null)), 'f4f5f6');
  assert.equal(hex(encode('a'.repeat(24))).slice(0, 4), '7818');
});

test("map keys in CTAP2 canonical order: major type, then length, then bytes", () => {
  // A COSE EC2 key's labels: 1, 3 (unsigned) before -1, -2, -3 (negative).
  const cose = new Map([[-3, 0], [-2, 0], [-1, 1], [3, -7], [1, 2]]);
  assert.equal(hex(encode(cose)), 'a5' + '0102' + '0326' + '2001' + '2100' + '2200');
  // The attestation object's text keys: shorter first.
  const att = encode({ authData: new Uint8Array(0), fmt: 'none', attStmt: {} });
  assert.deepEqual([...decode(att).keys()], ['fmt', 'attStmt', 'authData']);
  // 24 (two bytes, unsigned) sorts before -1 (one byte, negative): major type first. RFC 7049's
  // length-first order would put -1 first.
  assert.equal(hex(encode(new Map([[-1, 0], [24, 0]]))), 'a2' + '181800' + '2000');
  // Text "b" before text "aa": length before bytes.
  assert.deepEqual([...decode(encode({ aa: 1, b: 2 })).keys()], ['b', 'aa']);
});

test('what the encoder writes decodes back, strictly canonical', () => {
  const value = new Map([[1, 'x'], ['k', [true, null, new Uint8Array([9])]], [-5, 70000]]);
  const back = decode(encode(value), { canonical: true });
  assert.deepEqual(back, value);
});

test('the decoder refuses what is not canonical, or not one whole item, naming it', () => {
  assert.throws(() => decode(Uint8Array.of(0x18, 0x05), { canonical: true }), /longer head/);
  assert.throws(() => decode(Uint8Array.of(0xa2, 0x03, 0x00, 0x01, 0x00), { canonical: true }), /out of order/);
  assert.equal(decode(Uint8Array.of(0x18, 0x05)), 5);
  assert.throws(() => decode(Uint8Array.of(0x01, 0x02)), /1 bytes after the item/);
  assert.throws(() => decode(Uint8Array.of(0x44, 0x01)), /truncated/);
  assert.throws(() => decode(Uint8Array.of(0x9f)), /indefinite/);
  assert.throws(() => decode(Uint8Array.of(0xc2, 0x40)), /tags/);
});

test('the encoder refuses values CTAP2 has no use for', () => {
  assert.throws(() => encode(1.5), /safe integers/);
  assert.throws(() => encode(undefined), /cannot encode/);
  assert.throws(() => encode(new Map([[Uint8Array.of(1), 0], [Uint8Array.of(1), 1]])), /key twice/);
});
