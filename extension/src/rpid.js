// Whether an origin may use an RP id (WebAuthn L3 §5.1.3 step 8 and §5.1.4.1 step 6; HTML's
// "is a registrable domain suffix of or is equal to"). The browser checks this itself before a
// request reaches the webAuthenticationProxy; the main-world path has only this check.
//
// Caveat: without the Public Suffix List the extension cannot know every public suffix. It
// refuses what it can tell is one (a single label, such as "com", other than "localhost");
// a multi-label public suffix ("co.uk", "github.io") is not detected here. The server still
// only answers for RP ids its credentials were registered with.

export class RpIdError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'SecurityError';
  }
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Whether `host` is an IPv4 or IPv6 literal (a URL's hostname form). */
function isIpLiteral(host) {
  return host.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(host);
}

/** @param {string} host */
function isLocalhost(host) {
  return host === 'localhost' || host.endsWith('.localhost');
}

/**
 * Parses a serialised origin and checks it is one WebAuthn runs in: HTTPS, or HTTP on
 * localhost (a potentially trustworthy origin, as browsers treat it).
 * @param {string} origin
 * @returns {{scheme: string, host: string}}
 */
export function parseOrigin(origin) {
  let url;
  try {
    url = new URL(origin);
  } catch {
    throw new RpIdError(`not an origin: ${JSON.stringify(origin)}`);
  }
  if (url.origin !== origin) throw new RpIdError(`not a serialised origin: ${JSON.stringify(origin)}`);
  const host = url.hostname;
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLocalhost(host))) {
    throw new RpIdError(`WebAuthn needs HTTPS (or http://localhost), not ${origin}`);
  }
  if (isIpLiteral(host)) throw new RpIdError(`an IP address has no RP id: ${origin}`);
  return { scheme: url.protocol.slice(0, -1), host };
}

/**
 * The RP id a request uses: the one it names, or the origin's effective domain when it names
 * none (§5.1.3 step 8, §5.1.4.1 step 6). Throws RpIdError (a "SecurityError") when the origin may
 * not use it.
 * @param {string | undefined} rpId
 * @param {string} origin
 * @returns {string}
 */
export function checkRpId(rpId, origin) {
  const { host } = parseOrigin(origin);
  const id = rpId ?? host;
  if (typeof id !== 'string' || id.length > 253 || !id.split('.').every((l) => LABEL.test(l))) {
    throw new RpIdError(`not a valid RP id (a lowercase ASCII domain): ${JSON.stringify(id)}`);
  }
  if (!id.includes('.') && id !== 'localhost') {
    throw new RpIdError(`the RP id "${id}" is a public suffix (one label) and cannot be used`);
  }
  if (host !== id && !host.endsWith('.' + id)) {
    throw new RpIdError(`the RP id "${id}" is not ${host} or a registrable suffix of it`);
  }
  return id;
}
