// The device key (docs/BEHALF_KEY.md "Who is who"): an ECDSA P-256 key WebCrypto makes with
// `extractable: false`, kept as a CryptoKey (structured clone keeps it non-extractable), so
// neither a page nor the extension's own code can ever read its private half. Storage is an
// interface: IndexedDB in the browser, a Map in the tests (Node has no IndexedDB).

import { jwkThumbprint } from './httpsig.js';

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN = { name: 'ECDSA', hash: 'SHA-256' };
const DEVICE = 'device';

/**
 * @typedef {object} KeyStore
 * @property {(name: string) => Promise<unknown>} get undefined when absent
 * @property {(name: string, value: unknown) => Promise<void>} put
 * @property {(name: string) => Promise<void>} delete
 */

/** @implements {KeyStore} */
export class MemoryStore {
  #map = new Map();
  async get(name) {
    return this.#map.get(name);
  }
  async put(name, value) {
    this.#map.set(name, structuredClone(value));
  }
  async delete(name) {
    this.#map.delete(name);
  }
}

/** IndexedDB, one object store of named values. @implements {KeyStore} */
export class IdbStore {
  /** @param {string} [database] */
  constructor(database = 'behalf-key') {
    this.database = database;
  }
  #open() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(this.database, 1);
      request.onupgradeneeded = () => request.result.createObjectStore('keys');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  async #run(mode, act) {
    const db = await this.#open();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction('keys', mode);
        const request = act(tx.objectStore('keys'));
        tx.oncomplete = () => resolve(request.result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  }
  get(name) {
    return this.#run('readonly', (s) => s.get(name));
  }
  async put(name, value) {
    await this.#run('readwrite', (s) => s.put(value, name));
  }
  async delete(name) {
    await this.#run('readwrite', (s) => s.delete(name));
  }
}

export class DeviceKey {
  /** @param {CryptoKeyPair} pair @param {JsonWebKey} publicJwk @param {string} keyId */
  constructor(pair, publicJwk, keyId) {
    this.#pair = pair;
    this.publicJwk = publicJwk;
    this.keyId = keyId;
  }
  #pair;

  /** Makes a new device key and keeps it (replacing any earlier one). @param {KeyStore} store */
  static async create(store) {
    const pair = await crypto.subtle.generateKey(ES256, false, ['sign', 'verify']);
    await store.put(DEVICE, { privateKey: pair.privateKey, publicKey: pair.publicKey });
    return DeviceKey.#from(pair);
  }

  /** The kept device key, or null when none is. @param {KeyStore} store */
  static async load(store) {
    const kept = await store.get(DEVICE);
    if (!kept) return null;
    return DeviceKey.#from(/** @type {CryptoKeyPair} */ (kept));
  }

  /** @param {KeyStore} store */
  static async forget(store) {
    await store.delete(DEVICE);
  }

  static async #from(pair) {
    // The public half of an EC pair is always exportable, whatever `extractable` said.
    const full = await crypto.subtle.exportKey('jwk', pair.publicKey);
    const publicJwk = { kty: full.kty, crv: full.crv, x: full.x, y: full.y };
    return new DeviceKey(pair, publicJwk, await jwkThumbprint(publicJwk));
  }

  /** ECDSA P-256 SHA-256, r‖s (what ecdsa-p256-sha256 wants). @param {Uint8Array} data */
  async sign(data) {
    return new Uint8Array(await crypto.subtle.sign(SIGN, this.#pair.privateKey, data));
  }

  /** Keeps the private key out of any logging of the object. */
  toJSON() {
    return { keyId: this.keyId, publicJwk: this.publicJwk };
  }
}
