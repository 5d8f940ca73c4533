// The server's /key/v1 routes (docs/BEHALF_KEY.md "Routes"), every request signed with the
// device key (RFC 9421, see httpsig.js). Errors come back as ApiError with one of the contract's
// codes, so callers act on a code, not on words.

import * as b64url from './b64url.js';
import { utf8 } from './bytes.js';
import { signRequest } from './httpsig.js';

/**
 * The contract's error codes (docs/BEHALF_KEY.md "Errors"), and two of the extension's own:
 * `unreachable` (no answer at all) and `unexpected` (an answer outside the contract).
 */
export const ERROR = Object.freeze({
  SIGNATURE_INVALID: 'signature_invalid',
  DEVICE_REVOKED: 'device_revoked',
  PAIRING_CODE_INVALID: 'pairing_code_invalid',
  PIN_INVALID: 'pin_invalid',
  PIN_BLOCKED: 'pin_blocked',
  PIN_REQUIRED: 'pin_required',
  PIN_POLICY: 'pin_policy',
  NO_CREDENTIAL: 'no_credential',
  NOT_ADMIN: 'not_admin',
  UNKNOWN_USER: 'unknown_user',
  REQUEST_EXPIRED: 'request_expired',
  UNREACHABLE: 'unreachable',
  UNEXPECTED: 'unexpected',
});
const KNOWN = new Set(Object.values(ERROR));

export class ApiError extends Error {
  /**
   * @param {string} code one of ERROR
   * @param {string} message words for the user
   * @param {{status?: number, retries?: number}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = extra.status;
    this.retries = extra.retries;
  }
}

/**
 * Checks a server URL as typed at pairing: HTTPS, or HTTP to this machine (tests, a local
 * server). Answers it without a trailing slash.
 * @param {string} text
 */
export function normaliseServerUrl(text) {
  let url;
  try {
    url = new URL(String(text).trim());
  } catch {
    throw new TypeError(`not a URL: ${JSON.stringify(text)}`);
  }
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local)) {
    throw new TypeError(`the server URL must be https:// (or http:// to localhost), not ${url.protocol}//`);
  }
  if (url.search || url.hash || url.username || url.password) throw new TypeError('the server URL has no query, fragment or user');
  return url.href.replace(/\/+$/, '');
}

export class Api {
  /**
   * @param {object} o
   * @param {string} o.serverUrl as normaliseServerUrl answers it
   * @param {{keyId: string, sign: (data: Uint8Array) => Promise<Uint8Array>}} o.deviceKey
   * @param {typeof fetch} [o.fetch]
   * @param {() => number} [o.now] milliseconds since the epoch
   */
  constructor({ serverUrl, deviceKey, fetch = globalThis.fetch.bind(globalThis), now = Date.now }) {
    this.serverUrl = normaliseServerUrl(serverUrl);
    this.deviceKey = deviceKey;
    this.fetch = fetch;
    this.now = now;
  }

  /**
   * One signed request; the answer's JSON, or an ApiError.
   * @param {string} method
   * @param {string} path under the server URL, starting with /key/v1/
   * @param {unknown} [body] sent as JSON
   */
  async request(method, path, body) {
    const targetUri = this.serverUrl + path;
    const bytes = body === undefined ? undefined : utf8(JSON.stringify(body));
    const signed = await signRequest({
      method,
      targetUri,
      body: bytes,
      keyid: this.deviceKey.keyId,
      sign: (data) => this.deviceKey.sign(data),
      created: Math.floor(this.now() / 1000),
      nonce: b64url.encode(crypto.getRandomValues(new Uint8Array(16))),
    });
    const headers = { Accept: 'application/json', ...signed };
    if (bytes !== undefined) headers['Content-Type'] = 'application/json';
    let answer;
    try {
      answer = await this.fetch(targetUri, { method, headers, body: bytes, credentials: 'omit', redirect: 'error' });
    } catch (e) {
      throw new ApiError(ERROR.UNREACHABLE, `Behalf at ${this.serverUrl} did not answer (${e.message}).`);
    }
    let json;
    const text = await answer.text();
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      json = null;
    }
    if (answer.ok) {
      if (json === null || typeof json !== 'object') {
        throw new ApiError(ERROR.UNEXPECTED, `Behalf answered ${answer.status} without a JSON body.`, { status: answer.status });
      }
      return json;
    }
    const code = json && KNOWN.has(json.error) ? json.error : ERROR.UNEXPECTED;
    const words = (json && typeof json.message === 'string' && json.message) || `Behalf answered ${answer.status}.`;
    const retries = json && Number.isInteger(json.retries) ? json.retries : undefined;
    throw new ApiError(code, words, { status: answer.status, retries });
  }

  /** POST /key/v1/pair, signed with the new key itself (proof of possession). */
  pair({ code, deviceName, publicJwk, pin }) {
    return this.request('POST', '/key/v1/pair', { code, device_name: deviceName, public_key: publicJwk, pin });
  }
  me() {
    return this.request('GET', '/key/v1/me');
  }
  /** @param {string} rpId @param {string[]} allowCredentials base64url ids; empty: discoverable */
  async findCredentials(rpId, allowCredentials) {
    const answer = await this.request('POST', '/key/v1/credentials/find', { rp_id: rpId, allow_credentials: allowCredentials });
    if (!Array.isArray(answer.credentials)) throw new ApiError(ERROR.UNEXPECTED, 'Behalf answered no credential list.');
    return answer.credentials;
  }
  assert(body) {
    return this.request('POST', '/key/v1/assertions', body);
  }
  assertLocal(body) {
    return this.request('POST', '/key/v1/assertions/local', body);
  }
  register(body) {
    return this.request('POST', '/key/v1/registrations', body);
  }
  async pendingRequests() {
    const answer = await this.request('GET', '/key/v1/requests');
    return Array.isArray(answer.requests) ? answer.requests : [];
  }
  approve(id, pin) {
    return this.request('POST', `/key/v1/requests/${encodeURIComponent(id)}/approve`, { pin });
  }
  attestation(id, body) {
    return this.request('POST', `/key/v1/requests/${encodeURIComponent(id)}/attestation`, body);
  }
  decline(id) {
    return this.request('POST', `/key/v1/requests/${encodeURIComponent(id)}/decline`);
  }
}
