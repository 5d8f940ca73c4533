// Test vectors for an independent verifier (crates/behalf/tests/behalf_key_encoding.rs checks
// them with webauthn-rs-core): the extension's own code makes a local-key credential and signs
// assertions with it, exactly as it does in the browser.
//
// Reads one JSON object per line on stdin and answers one JSON line on stdout for each:
//   {"origin": "https://login.microsoft.com", "publicKey": <PublicKeyCredentialCreationOptionsJSON>}
//     → {"registration": <PublicKeyCredential JSON: fmt "none" attestation object, clientDataJSON>}
//   {"publicKey": <PublicKeyCredentialRequestOptionsJSON>, "tamper"?: "signature"}
//     → {"assertion": <PublicKeyCredential JSON>} signed with the key registered before
//       ("tamper": one bit of the signature flipped, which a verifier must refuse)
// Keys live in memory for the run only.

import { createInterface } from 'node:readline';
import { assertionJson, clientData, localAssertion, makeLocalCredential } from '../src/ceremony.js';
import { MemoryStore } from '../src/devicekey.js';
import { LocalKeys } from '../src/localkeys.js';

const localKeys = new LocalKeys(new MemoryStore());
let registered = null;

async function answer(line) {
  const ask = JSON.parse(line);
  if (ask.origin !== undefined) {
    const made = await makeLocalCredential(ask.publicKey, ask.origin, localKeys);
    registered = { id: made.id, rpId: ask.publicKey.rp.id ?? new URL(ask.origin).hostname, origin: ask.origin };
    return { registration: made.json };
  }
  if (!registered) throw new Error('an assertion needs a registration first');
  const options = ask.publicKey;
  const rpId = options.rpId ?? registered.rpId;
  const client = await clientData({ type: 'webauthn.get', challenge: options.challenge, origin: registered.origin, crossOrigin: false });
  const signed = await localAssertion({ credentialId: registered.id, rpId, clientDataHash: client.hash, userVerified: true, localKeys });
  if (ask.tamper === 'signature') signed.signature[signed.signature.length - 1] ^= 1;
  return { assertion: assertionJson({ id: registered.id, clientDataJSON: client.json, ...signed }) };
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  try {
    process.stdout.write(JSON.stringify(await answer(line)) + '\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: `${e.name}: ${e.message}` }) + '\n');
  }
}
