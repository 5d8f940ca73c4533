// clientDataJSON as a browser builds it: WebAuthn L3 §5.8.1.1 "Serialization", the "limited
// verification algorithm" form, which Chromium follows key for key
// (content/browser/webauth/client_data_json.cc): type, challenge, origin, crossOrigin, and
// topOrigin only for a cross-origin iframe. Chromium sometimes appends an
// "other_keys_can_be_added_here" member to stop relying parties comparing against a template;
// this serialisation leaves it out, which §5.8.1.1 allows ("may be extended").

/**
 * §5.8.1.1 CCDToString: a JSON string where U+0022 and U+005C are escaped with a backslash,
 * every other code point below U+0020 as \u and four lowercase hex digits, and everything else
 * verbatim (no escaping of non-ASCII, unlike some JSON serialisers).
 * @param {string} text
 */
export function ccdToString(text) {
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (cp === 0x22) out += '\\"';
    else if (cp === 0x5c) out += '\\\\';
    else if (cp < 0x20) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

/**
 * @param {object} c
 * @param {'webauthn.create' | 'webauthn.get'} c.type
 * @param {string} c.challenge base64url of the challenge bytes, as the page gave them
 * @param {string} c.origin the caller's origin, serialised (from the browser, never the page)
 * @param {boolean} c.crossOrigin
 * @param {string} [c.topOrigin] the top-level origin, only when crossOrigin
 * @returns {string}
 */
export function clientDataJson({ type, challenge, origin, crossOrigin, topOrigin }) {
  if (type !== 'webauthn.create' && type !== 'webauthn.get') throw new TypeError(`clientData type ${type}`);
  if (!/^[A-Za-z0-9_-]+$/.test(challenge)) throw new TypeError('the challenge is base64url without padding');
  let out = `{"type":${ccdToString(type)},"challenge":${ccdToString(challenge)},"origin":${ccdToString(origin)}`;
  out += `,"crossOrigin":${crossOrigin ? 'true' : 'false'}`;
  // §5.8.1.1 step 6: topOrigin only when the caller is not same-origin with its ancestors.
  if (crossOrigin && topOrigin !== undefined) out += `,"topOrigin":${ccdToString(topOrigin)}`;
  return out + '}';
}
