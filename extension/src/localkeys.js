// Credential keys of a `local` security key (docs/BEHALF_KEY.md "Local keys"): made and kept by
// the extension, never by Behalf. Each is a non-extractable WebCrypto P-256 key with its RP id,
// user handle and signature counter, in the same KeyStore as the device key.

import * as b64url from './b64url.js';
import { coseKeyFromCryptoKey } from './cose.js';

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN = { name: 'ECDSA', hash: 'SHA-256' };
const name = (credentialId) => `credential:${credentialId}`;

export class LocalKeys {
  /** @param {import('./devicekey.js').KeyStore} store */
  constructor(store) {
    this.store = store;
  }

  /**
   * Makes a credential key for `rpId`.
   * @param {string} rpId
   * @param {string} userHandle base64url
   * @returns {Promise<{credentialId: Uint8Array, cosePublicKey: Uint8Array}>}
   */
  async make(rpId, userHandle) {
    const pair = await crypto.subtle.generateKey(ES256, false, ['sign']);
    // 32 random bytes: unguessable and unique (WebAuthn §4 "Credential ID": at least 16 bytes
    // of entropy for a non-server-side credential).
    const credentialId = crypto.getRandomValues(new Uint8Array(32));
    await this.store.put(name(b64url.encode(credentialId)), {
      privateKey: pair.privateKey,
      rpId,
      userHandle,
      signCount: 0,
    });
    return { credentialId, cosePublicKey: await coseKeyFromCryptoKey(pair.publicKey) };
  }

  /**
   * Takes the next signature counter value and signs `data` with the credential's key.
   * @param {string} credentialId base64url
   * @param {string} rpId the request's RP id, which must be the credential's
   * @param {(signCount: number) => Promise<Uint8Array>} dataFor builds what is signed from the counter
   * @returns {Promise<{signature: Uint8Array, signed: Uint8Array, userHandle: string}>} P1363
   */
  async sign(credentialId, rpId, dataFor) {
    const kept = /** @type {any} */ (await this.store.get(name(credentialId)));
    if (!kept) throw new Error('this browser holds no key for that local credential');
    if (kept.rpId !== rpId) throw new Error(`the local credential is for ${kept.rpId}, not ${rpId}`);
    // §6.1.1: the counter only goes up; it is stored before the signature leaves.
    const signCount = kept.signCount + 1;
    await this.store.put(name(credentialId), { ...kept, signCount });
    const signed = await dataFor(signCount);
    const signature = new Uint8Array(await crypto.subtle.sign(SIGN, kept.privateKey, signed));
    return { signature, signed, userHandle: kept.userHandle };
  }

  /** @param {string} credentialId base64url */
  async has(credentialId) {
    return (await this.store.get(name(credentialId))) !== undefined;
  }
}
