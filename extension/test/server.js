// A stand-in for Behalf's /key/v1 routes, as docs/BEHALF_KEY.md describes them, for the unit
// tests: it checks every request's RFC 9421 signature the way the server must (rebuilding the
// signature base from the request, verifying with the paired public key), keeps a PIN with
// retries, and signs assertions with a vault key of its own. It is a `fetch` function.

import * as b64url from '../src/b64url.js';
import { concat, sha256, utf8 } from '../src/bytes.js';
import { buildAuthData, rpIdHash } from '../src/authdata.js';
import { p1363ToDer } from '../src/der.js';
import { contentDigest, jwkThumbprint, signatureBase } from '../src/httpsig.js';

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN = { name: 'ECDSA', hash: 'SHA-256' };

export class TestServer {
  constructor({ url = 'https://behalf.example', role = 'user', pin = null, credentials = [] } = {}) {
    this.url = url;
    this.role = role;
    this.pin = pin;
    this.retries = 8;
    this.credentials = credentials; // [{id, rp_id, user, kind, key?, signCount}]
    this.codes = new Set(['bhp_one']);
    this.devices = new Map(); // keyid -> {jwk, revoked}
    this.seen = [];
    this.registrations = [];
    this.pending = [];
    this.fetch = this.fetch.bind(this);
  }

  static async withVaultCredential(opts = {}) {
    const server = new TestServer(opts);
    const key = await crypto.subtle.generateKey(ES256, true, ['sign', 'verify']);
    server.credentials.push({
      id: b64url.encode(crypto.getRandomValues(new Uint8Array(16))),
      rp_id: opts.rpId ?? 'login.microsoft.com',
      user: { id: 'dXNlcg', name: 'alice@contoso.com', display_name: 'Alice' },
      kind: 'vault',
      key,
      signCount: 0,
    });
    return server;
  }

  answer(status, body) {
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  }

  async verify(url, init) {
    const input = init.headers['Signature-Input'];
    const sig = init.headers['Signature'];
    const m = input && input.match(/^bk=(.*;keyid="([^"]+)";alg="ecdsa-p256-sha256")$/);
    if (!m || !sig) return null;
    const keyid = m[2];
    let digest;
    if (init.body !== undefined) {
      digest = await contentDigest(init.body);
      if (init.headers['Content-Digest'] !== digest) return null;
    }
    const base = signatureBase({ method: init.method, targetUri: url, contentDigest: digest, params: m[1] });
    const device = this.devices.get(keyid) ?? (this.pairing && this.pairing.keyid === keyid ? this.pairing : null);
    if (!device) return null;
    const pub = await crypto.subtle.importKey('jwk', device.jwk, ES256, false, ['verify']);
    const raw = b64url.fromBase64(sig.slice(4, -1));
    if (!(await crypto.subtle.verify(SIGN, pub, raw, utf8(base)))) return null;
    return device;
  }

  checkPin(pin) {
    if (this.retries === 0) return this.answer(423, { error: 'pin_blocked', message: 'blocked' });
    if (pin !== this.pin) {
      this.retries -= 1;
      if (this.retries === 0) return this.answer(423, { error: 'pin_blocked', message: 'blocked' });
      return this.answer(403, { error: 'pin_invalid', message: 'wrong PIN', retries: this.retries });
    }
    this.retries = 8;
    return null;
  }

  async fetch(url, init) {
    const path = url.slice(this.url.length);
    const body = init.body === undefined ? undefined : JSON.parse(new TextDecoder().decode(init.body));
    this.seen.push({ path, body, headers: init.headers });
    if (path === '/key/v1/pair') {
      const keyid = await jwkThumbprint(body.public_key);
      this.pairing = { keyid, jwk: body.public_key };
      if (!(await this.verify(url, init))) return this.answer(401, { error: 'signature_invalid' });
      if (!this.codes.delete(body.code)) return this.answer(400, { error: 'pairing_code_invalid', message: 'unknown code' });
      if (this.pin === null) this.pin = body.pin;
      else {
        const refused = this.checkPin(body.pin);
        if (refused) return refused;
      }
      this.devices.set(keyid, { jwk: body.public_key, name: body.device_name, revoked: false });
      return this.answer(201, { device_id: 'dev-1', role: this.role, user: { upn: 'alice@contoso.com', display_name: 'Alice' } });
    }
    const device = await this.verify(url, init);
    if (!device) return this.answer(401, { error: 'signature_invalid' });
    if (device.revoked) return this.answer(401, { error: 'device_revoked' });
    if (path === '/key/v1/me') {
      return this.answer(200, { device_id: 'dev-1', device_name: device.name, role: this.role, user: { upn: 'alice@contoso.com', display_name: 'Alice' }, pin_retries: this.retries, pending_requests: this.pending.length });
    }
    if (path === '/key/v1/credentials/find') {
      const found = this.credentials
        .filter((c) => c.rp_id === body.rp_id && (body.allow_credentials.length === 0 || body.allow_credentials.includes(c.id)))
        .map(({ id, rp_id, user, kind }) => ({ id, rp_id, user, kind }));
      return this.answer(200, { credentials: found });
    }
    if (path === '/key/v1/assertions') {
      const c = this.credentials.find((x) => x.id === body.credential_id && x.rp_id === body.rp_id);
      if (!c) return this.answer(404, { error: 'no_credential' });
      let uv = false;
      if (body.pin !== undefined) {
        const refused = this.checkPin(body.pin);
        if (refused) return refused;
        uv = true;
      }
      c.signCount += 1;
      const authData = buildAuthData({ rpIdHash: await rpIdHash(body.rp_id), userPresent: true, userVerified: uv, signCount: c.signCount });
      const sig = new Uint8Array(await crypto.subtle.sign(SIGN, c.key.privateKey, concat(authData, b64url.decode(body.client_data_hash))));
      return this.answer(200, { authenticator_data: b64url.encode(authData), signature: b64url.encode(p1363ToDer(sig)), user_handle: c.user.id, sign_count: c.signCount });
    }
    if (path === '/key/v1/assertions/local') {
      let uv = false;
      if (body.pin !== undefined) {
        const refused = this.checkPin(body.pin);
        if (refused) return refused;
        uv = true;
      }
      return this.answer(200, { user_verified: uv });
    }
    if (path === '/key/v1/registrations') {
      if (this.role !== 'admin') return this.answer(403, { error: 'not_admin' });
      const refused = this.checkPin(body.pin);
      if (refused) return refused;
      if (body.for_user !== 'bob@contoso.com') return this.answer(404, { error: 'unknown_user', message: 'no such user' });
      this.registrations.push(body);
      return this.answer(201, { credential_id: 'Y3JlZA', attestation_object: 'oA', authenticator_data: 'AA', public_key: 'AQ', public_key_algorithm: -7, transports: ['internal'] });
    }
    const approve = path.match(/^\/key\/v1\/requests\/([^/]+)\/(approve|attestation|decline)$/);
    if (approve) {
      const [, id, what] = approve;
      const item = this.pending.find((p) => p.id === id);
      if (!item) return this.answer(410, { error: 'request_expired' });
      if (what === 'approve') {
        const refused = this.checkPin(body.pin);
        if (refused) return refused;
        return this.answer(200, { options: item.options, origin: 'https://login.microsoft.com' });
      }
      item.state = what === 'decline' ? 'declined' : 'registered';
      item.attestation = body;
      return this.answer(200, { state: item.state });
    }
    return this.answer(404, { error: 'not_found' });
  }
}

export { sha256 };
