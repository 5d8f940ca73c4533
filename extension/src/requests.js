// The decisions for one WebAuthn request (docs/BEHALF_KEY.md, extension/README.md "Decisions"),
// pure: everything it talks to comes in `deps`, so the tests drive it without a browser.
//
// An outcome is `{answer}` (the PublicKeyCredential JSON for the browser or the page) or
// `{handBack, reason}` (the request is not Behalf Key's: the browser's own way takes it, or the
// page gets NotAllowedError where no such way exists; see background.js).

import * as b64url from './b64url.js';
import { ApiError, ERROR } from './api.js';
import { CeremonyError, allowsEs256, assertionJson, attestationJson, clientData, localAssertion, makeLocalCredential } from './ceremony.js';
import { checkRpId } from './rpid.js';

/** CTAP 2.1 §6.5.2.2: after three wrong PINs in a row the authenticator wants a power cycle. */
export const WRONG_PINS_IN_A_ROW = 3;

/**
 * @typedef {object} Deps
 * @property {{role: 'user' | 'admin', user: {upn: string, display_name?: string}} | null} pairing
 * @property {import('./api.js').Api} api
 * @property {(question: object) => Promise<any>} prompt shows a question, answers the user's
 *   answer or null when they close it
 * @property {import('./localkeys.js').LocalKeys} localKeys
 * @property {(reason: string) => Promise<void>} [forget] called when the server says the device is revoked
 */

const handBack = (reason) => ({ handBack: true, reason });

/**
 * A get (navigator.credentials.get) for `origin`.
 * @param {{options: any, origin: string, sameOriginWithAncestors: boolean}} request the options
 *   in their JSON form (PublicKeyCredentialRequestOptionsJSON); origin from the browser
 * @param {Deps} deps
 */
export async function handleGet({ options, origin, sameOriginWithAncestors }, deps) {
  if (!deps.pairing) return handBack('not paired');
  // The proxy says only whether the caller is same-origin with its ancestors, not the top
  // origin clientDataJSON's topOrigin needs: a cross-origin iframe is refused.
  if (!sameOriginWithAncestors) return handBack('cross-origin iframe');
  let rpId;
  try {
    rpId = checkRpId(options?.rpId, origin);
    b64url.decode(options.challenge);
  } catch (e) {
    return handBack(`bad request: ${e.message}`);
  }
  const allow = (options.allowCredentials ?? []).map((c) => c.id);
  const credentials = await serverCall(deps, () => deps.api.findCredentials(rpId, allow));
  if (credentials.handBack) return credentials;
  // A local credential signs only in the browser that holds its key (another browser of the
  // same user does not).
  const usable = [];
  for (const c of credentials) {
    if (c.kind !== 'local' || (await deps.localKeys.has(c.id))) usable.push(c);
  }
  if (usable.length === 0) return handBack('no credential');

  const askPin = (options.userVerification ?? 'preferred') !== 'discouraged';
  const client = await clientData({ type: 'webauthn.get', challenge: options.challenge, origin, crossOrigin: false });
  const question = {
    kind: 'get',
    rpId,
    origin,
    upn: deps.pairing.user.upn,
    accounts: usable.map((c) => ({ id: c.id, name: c.user?.name, displayName: c.user?.display_name })),
    askPin,
  };
  let wrongInARow = 0;
  for (;;) {
    const answer = await deps.prompt(question);
    if (!answer || !answer.approve) return handBack('declined');
    const credential = usable.find((c) => c.id === answer.credentialId) ?? usable[0];
    const pin = question.askPin ? answer.pin : undefined;
    try {
      if (credential.kind === 'local') {
        const { user_verified } = await deps.api.assertLocal({ credential_id: credential.id, rp_id: rpId, origin, pin });
        const signed = await localAssertion({ credentialId: credential.id, rpId, clientDataHash: client.hash, userVerified: user_verified === true, localKeys: deps.localKeys });
        return { answer: assertionJson({ id: credential.id, clientDataJSON: client.json, ...signed, userHandle: signed.userHandle ?? credential.user?.id }) };
      }
      const signed = await deps.api.assert({
        credential_id: credential.id, rp_id: rpId, origin, client_data_hash: b64url.encode(client.hash), user_presence: true, pin,
      });
      return {
        answer: assertionJson({
          id: credential.id,
          clientDataJSON: client.json,
          authenticatorData: b64url.decode(signed.authenticator_data),
          signature: b64url.decode(signed.signature),
          userHandle: signed.user_handle ?? credential.user?.id,
        }),
      };
    } catch (e) {
      const next = await afterPinError(e, question, deps, ++wrongInARow);
      if (next) return next;
      if (e.code !== ERROR.PIN_INVALID) wrongInARow = 0;
    }
  }
}

/**
 * A create (navigator.credentials.create) for `origin`: only an admin device answers one, for
 * the user the admin names; anything else goes back to the browser.
 * @param {{options: any, origin: string, sameOriginWithAncestors: boolean}} request
 * @param {Deps} deps
 */
export async function handleCreate({ options, origin, sameOriginWithAncestors }, deps) {
  if (!deps.pairing) return handBack('not paired');
  if (deps.pairing.role !== 'admin') return handBack('a user device registers nothing itself');
  if (!sameOriginWithAncestors) return handBack('cross-origin iframe');
  let rpId;
  try {
    rpId = checkRpId(options?.rp?.id, origin);
    b64url.decode(options.challenge);
    b64url.decode(options.user.id);
  } catch (e) {
    return handBack(`bad request: ${e.message}`);
  }
  if (!allowsEs256(options.pubKeyCredParams)) return handBack('the site accepts no ES256 credential');
  const client = await clientData({ type: 'webauthn.create', challenge: options.challenge, origin, crossOrigin: false });
  const question = { kind: 'create', rpId, rpName: options.rp.name, origin, upn: deps.pairing.user.upn, askPin: true };
  let wrongInARow = 0;
  for (;;) {
    const answer = await deps.prompt(question);
    if (!answer || !answer.forUser) return handBack(answer?.handBack ? 'the admin handed it to the browser' : 'declined');
    question.forUser = answer.forUser;
    try {
      const made = await deps.api.register({
        for_user: answer.forUser,
        rp: { id: rpId, name: options.rp.name },
        user: { id: options.user.id, name: options.user.name, display_name: options.user.displayName },
        origin,
        client_data_hash: b64url.encode(client.hash),
        pub_key_cred_params: options.pubKeyCredParams ?? [],
        exclude_credentials: (options.excludeCredentials ?? []).map((c) => c.id),
        pin: answer.pin,
      });
      // Chromium's proxy refuses a create answer without response.publicKey.
      if (!made.public_key) return handBack('the server sent no public key');
      return {
        answer: attestationJson({
          id: made.credential_id,
          clientDataJSON: client.json,
          attestationObject: made.attestation_object,
          authenticatorData: made.authenticator_data,
          publicKey: made.public_key,
          publicKeyAlgorithm: made.public_key_algorithm,
          transports: made.transports ?? ['internal'],
        }),
      };
    } catch (e) {
      if (e instanceof ApiError && e.code === ERROR.UNKNOWN_USER) {
        question.error = `Behalf has no user ${answer.forUser}.`;
        continue;
      }
      const next = await afterPinError(e, question, deps, ++wrongInARow);
      if (next) return next;
      if (e.code !== ERROR.PIN_INVALID) wrongInARow = 0;
    }
  }
}

/**
 * What a failed server call means for the request: asking again (answers undefined, with the
 * question updated), or an outcome.
 */
async function afterPinError(e, question, deps, wrongInARow) {
  if (!(e instanceof ApiError)) throw e;
  switch (e.code) {
    case ERROR.PIN_INVALID:
      question.retries = e.retries;
      question.error = 'Wrong PIN.';
      if (wrongInARow >= WRONG_PINS_IN_A_ROW) {
        await deps.prompt({ kind: 'notice', message: `${WRONG_PINS_IN_A_ROW} wrong PINs in a row: try again from the start.`, retries: e.retries });
        return handBack('wrong PINs in a row');
      }
      return undefined;
    case ERROR.PIN_REQUIRED:
      question.askPin = true;
      question.error = 'This site asks for your PIN.';
      return undefined;
    case ERROR.PIN_BLOCKED:
      await deps.prompt({ kind: 'notice', blocked: true, message: 'Your Behalf Key PIN is blocked: ask your administrator for a new pairing code.' });
      return handBack('PIN blocked');
    default:
      return serverRefusal(e, deps);
  }
}

/** A server call that can only succeed or end the request. */
async function serverCall(deps, call) {
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    return serverRefusal(e, deps);
  }
}

async function serverRefusal(e, deps) {
  if (e.code === ERROR.DEVICE_REVOKED && deps.forget) await deps.forget('revoked');
  return handBack(`${e.code}: ${e.message}`);
}

/**
 * A local key's pending registration (docs/BEHALF_KEY.md "Local keys"), approved by the user
 * with their PIN: the server answers fresh creation options, the extension makes the credential
 * and hands its attestation back.
 * @param {string} requestId
 * @param {string} pin
 * @param {Deps} deps
 */
export async function approveLocalRequest(requestId, pin, deps) {
  const { options, origin } = await deps.api.approve(requestId, pin);
  let made;
  try {
    made = await makeLocalCredential(options, origin, deps.localKeys);
  } catch (e) {
    if (e instanceof CeremonyError) await deps.api.decline(requestId);
    throw e;
  }
  return deps.api.attestation(requestId, {
    credential_id: made.id,
    client_data_json: b64url.encode(made.clientDataJSON),
    attestation_object: b64url.encode(made.attestationObject),
    transports: ['internal'],
  });
}
