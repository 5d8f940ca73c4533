// The sign-in page's script: the passkey sign-in as Entra's page does it. It asks the sandbox
// for assertion options (/sandbox/signin/begin), calls navigator.credentials.get with them (the
// browser picks the authenticator: a security key, a platform passkey, an extension proxying
// WebAuthn) and hands the assertion to /sandbox/signin/finish, whose verifier decides.
// Same-origin requests only (the page's CSP: connect-src 'self').

const $ = (id) => document.getElementById(id);

/** base64url (RFC 4648 §5, padding optional) → bytes. */
function fromB64url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** bytes (ArrayBuffer or view) → base64url without padding. */
function toB64url(buffer) {
  const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A refusal from the sandbox (Graph's error shape) or the browser, with what the page shows. */
class SignInError extends Error {
  constructor(message, details) {
    super(message);
    this.details = details;
  }
}

async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await response.json().catch(() => null);
  if (!response.ok) {
    const error = json?.error ?? {};
    throw new SignInError(error.message ?? `The sign-in service answered ${response.status}.`, {
      code: error.code ?? String(response.status),
      message: error.message ?? '',
      request: error.innerError?.['request-id'] ?? response.headers.get('request-id') ?? '',
    });
  }
  return json;
}

/** PublicKeyCredentialRequestOptionsJSON (what begin answers) → the options get() takes. */
function requestOptions(json) {
  const o = { ...json, challenge: fromB64url(json.challenge) };
  o.allowCredentials = (json.allowCredentials ?? []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  // webauthn-rs writes absent members as null, which get() would reject as the wrong type.
  for (const [k, v] of Object.entries(o)) if (v === null) delete o[k];
  return o;
}

function assertionJson(credential) {
  const r = credential.response;
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toB64url(r.clientDataJSON),
      authenticatorData: toB64url(r.authenticatorData),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : null,
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

/** What the page says when the browser's ceremony ends without a credential. */
function browserRefusal(e) {
  const details = { code: e.name, message: e.message, request: '' };
  if (e.name === 'NotAllowedError' || e.name === 'AbortError') {
    return new SignInError("We couldn't sign you in with a passkey. The request was cancelled or timed out, or no passkey for this account answered. Try again, or use another way to sign in.", details);
  }
  if (e.name === 'SecurityError') {
    return new SignInError('Passkeys cannot be used on this page: the browser does not consider it secure.', details);
  }
  return new SignInError("Something went wrong and we couldn't sign you in with a passkey.", details);
}

function show({ working = false, result = null, error = null }) {
  $('working').hidden = !working;
  $('passkey').disabled = working;
  $('result').hidden = result === null;
  $('result').textContent = result ?? '';
  $('error').hidden = error === null;
  $('error').textContent = error?.message ?? '';
  const details = error?.details;
  $('details').hidden = !details;
  if (details) {
    $('detail-code').textContent = details.code;
    $('detail-message').textContent = details.message;
    $('detail-request').textContent = details.request;
    $('detail-time').textContent = new Date().toISOString();
  }
}

async function signIn(upn) {
  const options = await post('/sandbox/signin/begin', { upn });
  let credential;
  try {
    credential = await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
  } catch (e) {
    throw browserRefusal(e);
  }
  if (!credential) throw new SignInError("We couldn't sign you in with a passkey.", { code: 'NoCredential', message: 'navigator.credentials.get answered null', request: '' });
  return post('/sandbox/signin/finish', assertionJson(credential));
}

$('signin').addEventListener('submit', async (event) => {
  event.preventDefault();
  const upn = $('upn').value.trim();
  if (!upn) {
    show({ error: new SignInError('Enter a valid email address, phone number, or Skype name.') });
    $('upn').focus();
    return;
  }
  show({ working: true });
  try {
    const done = await signIn(upn);
    show({ result: `Signed in as ${done.upn}` });
  } catch (e) {
    show({ error: e instanceof SignInError ? e : new SignInError(`Something went wrong: ${e.message}`) });
  }
});
