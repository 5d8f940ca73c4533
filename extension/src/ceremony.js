// What an authenticator and a browser build for one ceremony, for the credentials the extension
// answers with: the PublicKeyCredential JSON (WebAuthn L3 §5.1.8 toJSON()), and for a local
// key the whole credential (attested credential data, `none` attestation object) and each
// assertion (authenticator data ‖ clientDataHash signed with the credential's key, in DER).

import * as b64url from './b64url.js';
import { concat, sha256, utf8 } from './bytes.js';
import { BEHALF_KEY_AAGUID, aaguidBytes, buildAuthData, rpIdHash } from './authdata.js';
import { noneAttestationObject } from './attestation.js';
import { clientDataJson } from './clientdata.js';
import { COSE } from './cose.js';
import { p1363ToDer } from './der.js';
import { checkRpId } from './rpid.js';

/** A DOMException name and message for the page (what the proxy's `error` carries). */
export class CeremonyError extends Error {
  /** @param {string} name a DOMException name @param {string} message */
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

/**
 * clientDataJSON's bytes and their SHA-256.
 * @param {Parameters<typeof clientDataJson>[0]} c
 */
export async function clientData(c) {
  const json = utf8(clientDataJson(c));
  return { json, hash: await sha256(json) };
}

/**
 * §5.1.8: the JSON of an assertion credential.
 * @param {{id: string, clientDataJSON: Uint8Array, authenticatorData: Uint8Array, signature: Uint8Array, userHandle?: string}} a
 */
export function assertionJson({ id, clientDataJSON, authenticatorData, signature, userHandle }) {
  const response = {
    clientDataJSON: b64url.encode(clientDataJSON),
    authenticatorData: b64url.encode(authenticatorData),
    signature: b64url.encode(signature),
  };
  if (userHandle) response.userHandle = userHandle;
  return { id, rawId: id, type: 'public-key', authenticatorAttachment: 'cross-platform', response, clientExtensionResults: {} };
}

/**
 * §5.1.8: the JSON of an attestation credential (AuthenticatorAttestationResponseJSON).
 * @param {{id: string, clientDataJSON: Uint8Array, attestationObject: string, authenticatorData: string,
 *   publicKey?: string, publicKeyAlgorithm: number, transports: string[]}} a base64url fields as strings
 */
export function attestationJson({ id, clientDataJSON, attestationObject, authenticatorData, publicKey, publicKeyAlgorithm, transports }) {
  const response = { clientDataJSON: b64url.encode(clientDataJSON), authenticatorData, transports, publicKeyAlgorithm, attestationObject };
  if (publicKey) response.publicKey = publicKey;
  return { id, rawId: id, type: 'public-key', authenticatorAttachment: 'cross-platform', response, clientExtensionResults: {} };
}

/** Whether creation options allow ES256 (§5.4 pubKeyCredParams; empty means ES256 and RS256). */
export function allowsEs256(params) {
  return !Array.isArray(params) || params.length === 0 || params.some((p) => p && p.type === 'public-key' && p.alg === COSE.ALG_ES256);
}

/**
 * Makes a local-key credential for creation options (PublicKeyCredentialCreationOptionsJSON) at
 * `origin`, as an authenticator with `fmt: "none"` attestation would: a new key in `localKeys`,
 * attested credential data with Behalf Key's AAGUID, and clientDataJSON of type
 * "webauthn.create". UP and UV are set: the user approved in the extension and the server
 * checked their PIN.
 * @param {any} options
 * @param {string} origin from the browser or, for a Graph request, the contract's fixed origin
 * @param {import('./localkeys.js').LocalKeys} localKeys
 */
export async function makeLocalCredential(options, origin, localKeys) {
  const rpId = checkRpId(options?.rp?.id, origin);
  if (!allowsEs256(options.pubKeyCredParams)) {
    throw new CeremonyError('NotSupportedError', 'Behalf Key makes ES256 (-7) credentials only, and the site does not accept them.');
  }
  for (const excluded of options.excludeCredentials ?? []) {
    if (await localKeys.has(excluded.id)) {
      throw new CeremonyError('InvalidStateError', 'This browser already holds a credential the site excludes.');
    }
  }
  const userHandle = options?.user?.id;
  b64url.decode(userHandle);
  const { credentialId, cosePublicKey } = await localKeys.make(rpId, userHandle);
  const authData = buildAuthData({
    rpIdHash: await rpIdHash(rpId),
    userPresent: true,
    userVerified: true,
    signCount: 0,
    attested: { aaguid: aaguidBytes(BEHALF_KEY_AAGUID), credentialId, cosePublicKey },
  });
  const client = await clientData({ type: 'webauthn.create', challenge: options.challenge, origin, crossOrigin: false });
  const id = b64url.encode(credentialId);
  const attestationObject = noneAttestationObject(authData);
  return {
    id,
    clientDataJSON: client.json,
    attestationObject,
    authData,
    json: attestationJson({
      id,
      clientDataJSON: client.json,
      attestationObject: b64url.encode(attestationObject),
      authenticatorData: b64url.encode(authData),
      publicKeyAlgorithm: COSE.ALG_ES256,
      transports: ['internal'],
    }),
  };
}

/**
 * An assertion with a local credential: authenticator data (UP, UV when the server verified the
 * PIN now, the next counter), signed with the credential's own key over
 * authenticatorData ‖ SHA-256(clientDataJSON) (§6.3.3 step 11), DER-encoded.
 * @param {{credentialId: string, rpId: string, clientDataHash: Uint8Array, userVerified: boolean,
 *   localKeys: import('./localkeys.js').LocalKeys}} a
 */
export async function localAssertion({ credentialId, rpId, clientDataHash, userVerified, localKeys }) {
  const hash = await rpIdHash(rpId);
  let authenticatorData;
  const { signature, userHandle } = await localKeys.sign(credentialId, rpId, async (signCount) => {
    authenticatorData = buildAuthData({ rpIdHash: hash, userPresent: true, userVerified, signCount });
    return concat(authenticatorData, clientDataHash);
  });
  return { authenticatorData, signature: p1363ToDer(signature), userHandle };
}
