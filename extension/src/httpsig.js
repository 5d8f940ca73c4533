// Request signing with the device key: HTTP Message Signatures (RFC 9421) over "@method",
// "@target-uri" and, with a body, "content-digest" (RFC 9530), exactly as docs/BEHALF_KEY.md
// "Request signing" fixes them, so the server can rebuild the same signature base.

import * as b64url from './b64url.js';
import { sha256, utf8 } from './bytes.js';

/** RFC 9421 §3.3.4: ECDSA using curve P-256 and SHA-256, the signature being r‖s. */
export const ALG = 'ecdsa-p256-sha256';
/** The signature's label in Signature-Input and Signature. */
export const LABEL = 'bk';

/**
 * RFC 9530 §2: `sha-256=:<base64 of SHA-256(body)>:` (a Structured Field Dictionary holding a
 * Byte Sequence, RFC 8941 §3.3.5).
 * @param {Uint8Array} body
 */
export async function contentDigest(body) {
  return `sha-256=:${b64url.toBase64(await sha256(body))}:`;
}

/**
 * RFC 7638 §3: the SHA-256 of the JWK's required members (crv, kty, x, y for EC) in
 * lexicographic order with no whitespace, base64url: the device key's `keyid`.
 * @param {JsonWebKey} jwk
 */
export async function jwkThumbprint(jwk) {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) throw new TypeError('a device key is an EC P-256 JWK');
  const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return b64url.encode(await sha256(utf8(canonical)));
}

/** RFC 8941 §3.3.3: a String has printable ASCII only, with " and \ escaped. */
function sfString(text) {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new TypeError(`not a structured-field string: ${JSON.stringify(text)}`);
  return `"${text.replace(/[\\"]/g, (c) => '\\' + c)}"`;
}

/**
 * RFC 9421 §2.3: the "@signature-params" value, which is also the Signature-Input member.
 * @param {{hasBody: boolean, created: number, nonce: string, keyid: string}} p
 */
export function signatureParams({ hasBody, created, nonce, keyid }) {
  if (!Number.isSafeInteger(created) || created < 0) throw new TypeError('created is Unix seconds');
  const components = hasBody ? '("@method" "@target-uri" "content-digest")' : '("@method" "@target-uri")';
  return `${components};created=${created};nonce=${sfString(nonce)};keyid=${sfString(keyid)};alg=${sfString(ALG)}`;
}

/**
 * RFC 9421 §2.5: one line per covered component (`"name": value`), then
 * `"@signature-params": …`, joined by \n, no trailing newline.
 * @param {{method: string, targetUri: string, contentDigest?: string, params: string}} b
 */
export function signatureBase({ method, targetUri, contentDigest: digest, params }) {
  // §2.2.1: @method is the method name as sent (upper case for the standard methods).
  const lines = [`"@method": ${method.toUpperCase()}`, `"@target-uri": ${targetUri}`];
  if (digest !== undefined) lines.push(`"content-digest": ${digest}`);
  lines.push(`"@signature-params": ${params}`);
  return lines.join('\n');
}

/**
 * The headers that sign one request.
 * @param {object} r
 * @param {string} r.method
 * @param {string} r.targetUri the full URL the request goes to
 * @param {Uint8Array} [r.body]
 * @param {string} r.keyid
 * @param {(data: Uint8Array) => Promise<Uint8Array>} r.sign P1363 ECDSA P-256 SHA-256
 * @param {number} r.created Unix seconds
 * @param {string} r.nonce base64url of 16 random bytes
 * @returns {Promise<Record<string, string>>}
 */
export async function signRequest({ method, targetUri, body, keyid, sign, created, nonce }) {
  const headers = {};
  let digest;
  if (body !== undefined) {
    digest = await contentDigest(body);
    headers['Content-Digest'] = digest;
  }
  const params = signatureParams({ hasBody: body !== undefined, created, nonce, keyid });
  const base = signatureBase({ method, targetUri, contentDigest: digest, params });
  const signature = await sign(utf8(base));
  headers['Signature-Input'] = `${LABEL}=${params}`;
  headers['Signature'] = `${LABEL}=:${b64url.toBase64(signature)}:`;
  return headers;
}
