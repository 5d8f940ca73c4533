// Main-world script: the page's own navigator.credentials, wrapped. It covers what the
// webAuthenticationProxy does not: conditional mediation (which Chromium refuses while a proxy
// is attached) and browsers where another extension holds the proxy. The worker decides; this
// script only converts the options to their JSON form, waits, and builds the answer. The page
// never sees a key: it gets a PublicKeyCredential-shaped object, like any authenticator's.
(() => {
  'use strict';
  const credentials = navigator.credentials;
  if (!credentials || !window.PublicKeyCredential) return;
  const originalGet = credentials.get.bind(credentials);
  const originalCreate = credentials.create.bind(credentials);

  const b64 = (buffer) => {
    const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const unb64 = (text) => {
    const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out.buffer;
  };
  const descriptors = (list) => (list || []).map((c) => ({ type: c.type, id: b64(c.id), transports: c.transports }));

  // WebAuthn L3 §5.1.8's JSON forms of the options (what the proxy also hands the worker).
  function requestJson(p) {
    return { challenge: b64(p.challenge), rpId: p.rpId, allowCredentials: descriptors(p.allowCredentials), userVerification: p.userVerification, timeout: p.timeout };
  }
  function creationJson(p) {
    return {
      challenge: b64(p.challenge),
      rp: { id: p.rp.id, name: p.rp.name },
      user: { id: b64(p.user.id), name: p.user.name, displayName: p.user.displayName },
      pubKeyCredParams: p.pubKeyCredParams,
      excludeCredentials: descriptors(p.excludeCredentials),
      authenticatorSelection: p.authenticatorSelection,
      attestation: p.attestation,
      timeout: p.timeout,
    };
  }

  // The answer as a page expects a PublicKeyCredential: ArrayBuffers, the response's getters,
  // getClientExtensionResults() and toJSON().
  function credential(json) {
    const r = json.response;
    const response = { clientDataJSON: unb64(r.clientDataJSON) };
    if (r.attestationObject !== undefined) {
      response.attestationObject = unb64(r.attestationObject);
      response.getAuthenticatorData = () => unb64(r.authenticatorData);
      response.getPublicKey = () => (r.publicKey ? unb64(r.publicKey) : null);
      response.getPublicKeyAlgorithm = () => r.publicKeyAlgorithm;
      response.getTransports = () => (r.transports || []).slice();
    } else {
      response.authenticatorData = unb64(r.authenticatorData);
      response.signature = unb64(r.signature);
      response.userHandle = r.userHandle ? unb64(r.userHandle) : null;
    }
    return Object.freeze({
      id: json.id,
      rawId: unb64(json.rawId),
      type: 'public-key',
      authenticatorAttachment: json.authenticatorAttachment,
      response: Object.freeze(response),
      getClientExtensionResults: () => ({}),
      toJSON: () => JSON.parse(JSON.stringify(json)),
    });
  }

  let next = 0;
  function ask(kind, options, conditional) {
    const id = `${Date.now()}-${next++}-${Math.random()}`;
    return new Promise((resolve) => {
      const listen = (event) => {
        const d = event.data;
        if (event.source !== window || !d || d.source !== 'behalf-key-extension' || d.id !== id) return;
        window.removeEventListener('message', listen);
        resolve(d.outcome || { pass: true });
      };
      window.addEventListener('message', listen);
      window.postMessage({ source: 'behalf-key-page', id, kind, options, conditional }, window.location.origin);
    });
  }

  const aborted = (signal) =>
    new Promise((_, reject) => {
      if (!signal) return;
      const fail = () => reject(signal.reason instanceof DOMException ? signal.reason : new DOMException('The operation was aborted.', 'AbortError'));
      if (signal.aborted) fail();
      else signal.addEventListener('abort', fail, { once: true });
    });

  // A conditional request waits for the user to reach a field marked autocomplete="webauthn"
  // (HTML's autofill token for passkeys), as the browser's own autofill does.
  const webauthnFieldFocused = () =>
    new Promise((resolve) => {
      const is = (el) => el && el.matches && el.matches('input[autocomplete~="webauthn" i]');
      if (is(document.activeElement)) return resolve();
      document.addEventListener('focusin', function on(e) {
        if (is(e.target)) {
          document.removeEventListener('focusin', on, true);
          resolve();
        }
      }, true);
    });

  async function run(kind, options, original) {
    const p = options.publicKey;
    const conditional = options.mediation === 'conditional';
    let json;
    try {
      json = kind === 'get' ? requestJson(p) : creationJson(p);
    } catch {
      // Options the browser would refuse: it says how, not this script.
      return original(options);
    }
    if (conditional) await Promise.race([webauthnFieldFocused(), aborted(options.signal)]);
    const outcome = await Promise.race([ask(kind, json, conditional), aborted(options.signal)]);
    if (outcome.answer) return credential(outcome.answer);
    if (outcome.handBack && conditional && outcome.proxyHeld) {
      // Chromium refuses a conditional request at once while a proxy is attached; a page's
      // conditional request that finds no passkey just stays pending until it is aborted.
      return aborted(options.signal).then(() => null);
    }
    return original(options);
  }

  function wrap(kind, original) {
    return function (options) {
      if (!options || !options.publicKey) return original(options);
      return run(kind, options, original);
    };
  }
  // Wrapped on the prototype's instance only; the functions keep their names for pages that look.
  Object.defineProperty(credentials, 'get', { value: Object.defineProperty(wrap('get', originalGet), 'name', { value: 'get' }), configurable: true, writable: true });
  Object.defineProperty(credentials, 'create', { value: Object.defineProperty(wrap('create', originalCreate), 'name', { value: 'create' }), configurable: true, writable: true });
})();
