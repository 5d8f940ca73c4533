// Behalf Key's service worker: pairing, the webAuthenticationProxy, the main-world script's
// requests and the prompt window. The decisions are in src/requests.js; this file wires them to
// Chromium's APIs. Event listeners are added at the top level, as an MV3 worker must, so an
// event wakes the worker.

import { Api, ApiError, ERROR, normaliseServerUrl } from './src/api.js';
import { DeviceKey, IdbStore } from './src/devicekey.js';
import { LocalKeys } from './src/localkeys.js';
import { approveLocalRequest, handleCreate, handleGet } from './src/requests.js';
import { Dialogs } from './src/dialogs.js';

const store = new IdbStore();
const localKeys = new LocalKeys(store);
const proxy = chrome.webAuthenticationProxy;
const dialogs = new Dialogs(chrome);
const EXTENSION_ORIGIN = new URL(chrome.runtime.getURL('')).origin;

/** Proxy state, for the popup and tests: "attached" (ours), "taken" (another extension's), "detached". */
let proxyState = { state: 'detached', reason: 'starting' };

async function pairing() {
  return (await chrome.storage.local.get('pairing')).pairing ?? null;
}

async function api(p) {
  const deviceKey = await DeviceKey.load(store);
  if (!p || !deviceKey) return null;
  return new Api({ serverUrl: p.serverUrl, deviceKey });
}

async function forget(reason) {
  await chrome.storage.local.remove('pairing');
  await chrome.storage.local.set({ lastUnpaired: { reason, at: Date.now() } });
  await DeviceKey.forget(store);
  await syncProxy();
}

/** The dependencies of one request (src/requests.js Deps). @param {number|string} requestKey */
async function deps(requestKey) {
  const p = await pairing();
  return { pairing: p, api: await api(p), localKeys, forget, prompt: (q) => dialogs.ask(requestKey, q) };
}

async function publish() {
  await chrome.storage.session.set({ proxy: proxyState });
}

/**
 * The proxy is attached only while the browser is paired: while attached, Chromium sends every
 * request to this extension and uses none of its own authenticators, so an unpaired Behalf Key
 * must leave WebAuthn to the browser (README "Decisions").
 */
async function syncProxy() {
  const paired = (await pairing()) !== null;
  if (paired && proxyState.state !== 'attached') {
    // attach() and detach() fail by rejecting ("Another extension is already attached") or,
    // as documented, by answering an error string: both are an error here.
    const attempt = (call) => call().then((e) => e ?? null, (e) => e?.message ?? String(e));
    let error = await attempt(() => proxy.attach());
    if (error) {
      // A restarted worker: the proxy may still be ours from before. detach() fails unless it is.
      const ours = (await attempt(() => proxy.detach())) === null;
      error = ours ? await attempt(() => proxy.attach()) : error;
    }
    proxyState = error ? { state: 'taken', reason: error } : { state: 'attached', reason: 'paired' };
  } else if (!paired && proxyState.state === 'attached') {
    await proxy.detach().catch(() => {});
    proxyState = { state: 'detached', reason: 'not paired' };
  } else if (!paired) {
    proxyState = { state: 'detached', reason: 'not paired' };
  }
  await publish();
}

// --- chrome.webAuthenticationProxy -------------------------------------------------------------

const canceled = new Set();

/**
 * One proxied request. The origin is the browser's: Chromium puts the caller's origin and
 * whether it is same-origin with its ancestors into the request's
 * `extensions.remoteDesktopClientOverride` (it overwrites whatever a page put there).
 * @param {'get' | 'create'} kind
 */
async function proxied(kind, { requestId, requestDetailsJson }) {
  let outcome;
  try {
    const options = JSON.parse(requestDetailsJson);
    const override = options.extensions?.remoteDesktopClientOverride;
    if (!override || typeof override.origin !== 'string') {
      outcome = { handBack: true, reason: 'the browser gave no origin' };
    } else {
      delete options.extensions.remoteDesktopClientOverride;
      const request = { options, origin: override.origin, sameOriginWithAncestors: override.sameOriginWithAncestors === true };
      outcome = await (kind === 'get' ? handleGet : handleCreate)(request, await deps(requestId));
    }
  } catch (e) {
    outcome = { handBack: true, reason: `Behalf Key failed: ${e.message}` };
  } finally {
    await dialogs.close(requestId);
  }
  if (canceled.delete(requestId)) return;
  // With a proxy attached Chromium has no fallback to its own authenticators (detaching
  // mid-request makes the page's call fail with AbortError): handing back is NotAllowedError,
  // what a declined or timed-out request gives a page.
  const details = outcome.answer
    ? { requestId, responseJson: JSON.stringify(outcome.answer) }
    : { requestId, error: { name: 'NotAllowedError', message: `Behalf Key did not answer: ${outcome.reason}.` } };
  const complete = (d) => (kind === 'get' ? proxy.completeGetRequest(d) : proxy.completeCreateRequest(d));
  try {
    await complete(details);
  } catch (e) {
    // Chromium checks responseJson (a create without response.publicKey is "Invalid
    // responseJson: field missing or invalid: publicKey"); the page must not wait forever.
    await complete({ requestId, error: { name: 'NotAllowedError', message: `Behalf Key's answer was refused: ${e.message}` } });
  }
}

proxy.onGetRequest.addListener((r) => void proxied('get', r));
proxy.onCreateRequest.addListener((r) => void proxied('create', r));
// Behalf Key is a roaming authenticator, not a user-verifying platform one.
proxy.onIsUvpaaRequest.addListener(({ requestId }) => void proxy.completeIsUvpaaRequest({ requestId, isUvpaa: false }));
proxy.onRequestCanceled.addListener((requestId) => {
  canceled.add(requestId);
  void dialogs.close(requestId);
});

// --- messages -----------------------------------------------------------------------------------

/** A page request from content/page.js (through content/relay.js). */
async function pageRequest(message, sender) {
  const p = await pairing();
  if (!p) return { pass: true, reason: 'not paired' };
  if (!message.conditional && proxyState.state === 'attached') return { pass: true, reason: 'the proxy takes it' };
  const proxyHeld = proxyState.state !== 'detached';
  // Only top-level documents: a frame's ancestors are not known here (README "Decisions").
  if (sender.frameId !== 0 || typeof sender.origin !== 'string') return { handBack: true, reason: 'not a top-level document', proxyHeld };
  const key = `page-${sender.tab?.id}-${crypto.randomUUID()}`;
  const request = { options: message.options, origin: sender.origin, sameOriginWithAncestors: true };
  try {
    const outcome = await (message.kind === 'create' ? handleCreate : handleGet)(request, await deps(key));
    return outcome.answer ? { answer: outcome.answer } : { handBack: true, reason: outcome.reason, proxyHeld };
  } catch (e) {
    return { handBack: true, reason: `Behalf Key failed: ${e.message}`, proxyHeld };
  } finally {
    await dialogs.close(key);
  }
}

async function pair({ serverUrl, code, deviceName, pin }) {
  const url = normaliseServerUrl(serverUrl);
  const deviceKey = await DeviceKey.create(store);
  const client = new Api({ serverUrl: url, deviceKey });
  const paired = await client.pair({ code: String(code).trim(), deviceName, publicJwk: deviceKey.publicJwk, pin });
  await chrome.storage.local.set({
    pairing: { serverUrl: url, deviceId: paired.device_id, deviceName, role: paired.role, user: paired.user },
  });
  await syncProxy();
  return status();
}

async function status() {
  const p = await pairing();
  if (!p) return { paired: false, proxy: proxyState, lastUnpaired: (await chrome.storage.local.get('lastUnpaired')).lastUnpaired };
  const client = await api(p);
  try {
    const me = await client.me();
    const requests = me.pending_requests ? await client.pendingRequests() : [];
    return { paired: true, proxy: proxyState, pairing: p, me, requests };
  } catch (e) {
    if (e instanceof ApiError && e.code === ERROR.DEVICE_REVOKED) {
      await forget('revoked');
      return { paired: false, proxy: proxyState, lastUnpaired: { reason: 'revoked' } };
    }
    return { paired: true, proxy: proxyState, pairing: p, error: { code: e.code ?? 'unexpected', message: e.message } };
  }
}

/** Messages only an extension page (popup, prompt) may send. */
const PRIVILEGED = {
  status: () => status(),
  pair: (m) => pair(m),
  unpair: async () => {
    await forget('unpaired');
    return status();
  },
  'approve-local': async (m) => {
    const p = await pairing();
    return approveLocalRequest(m.requestId, m.pin, { ...(await deps(`local-${m.requestId}`)), pairing: p });
  },
  'decline-local': async (m) => (await api(await pairing())).decline(m.requestId),
  'prompt-question': (m) => dialogs.question(m.dialogId),
  'prompt-answer': (m) => dialogs.answer(m.dialogId, m.answer),
};

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (sender.id !== chrome.runtime.id || !message || typeof message.type !== 'string') return false;
  let work;
  if (message.type === 'page-request') {
    work = pageRequest(message, sender);
  } else if (Object.hasOwn(PRIVILEGED, message.type) && sender.origin === EXTENSION_ORIGIN) {
    work = PRIVILEGED[message.type](message);
  } else {
    return false;
  }
  Promise.resolve(work).then(
    (value) => sendResponse({ ok: true, value }),
    (e) => sendResponse({ ok: false, error: { code: e.code ?? 'unexpected', message: e.message, retries: e.retries } }),
  );
  return true;
});

chrome.windows.onRemoved.addListener((windowId) => dialogs.windowClosed(windowId));

void syncProxy();
