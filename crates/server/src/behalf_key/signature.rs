//! RFC 9421 (HTTP Message Signatures) as Behalf Key uses it: one signature labelled `bk`, by the
//! device key (`ecdsa-p256-sha256`), over `"@method" "@target-uri"` and, with a body,
//! `"content-digest"` (RFC 9530, `sha-256`), with `created`, `nonce`, `keyid` and `alg`.
//! docs/BEHALF_KEY.md "Request signing" is the profile; this module checks a request against it.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use behalf_app::ops::behalf_key::{DevicePublicKey, KeyFailure};
use sfv::{Dictionary, FieldType as _, ListEntry, Parser};

/// The label of Behalf Key's signature in `Signature-Input` and `Signature`.
const LABEL: &str = "bk";
/// RFC 9421 §3.3.4.
const ALGORITHM: &str = "ecdsa-p256-sha256";
/// How far `created` may be from the server's clock, either way (RFC 9421 §3.2.1 leaves the
/// window to the verifier; clocks of laptops drift by seconds, not minutes).
pub const MAX_SKEW_SECS: i64 = 60;

/// A request's signature, parsed and checked against the profile, not yet verified.
#[derive(Debug)]
pub struct SignedRequest {
    /// The device key's RFC 7638 thumbprint.
    pub keyid: String,
    pub nonce: String,
    created: i64,
    /// RFC 9421 §2.5: the signature base.
    base: String,
    signature: Vec<u8>,
}

impl SignedRequest {
    /// Parses the request's `Signature-Input`, `Signature` and `Content-Digest` and builds the
    /// signature base. `target_uri` is the URI the request was sent to (RFC 9421 §2.2.2).
    pub fn parse(
        method: &Method,
        target_uri: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<SignedRequest, KeyFailure> {
        let input = dictionary(headers, "signature-input")?;
        let signatures = dictionary(headers, "signature")?;
        let Some((_, ListEntry::InnerList(covered))) =
            input.iter().find(|(k, _)| k.as_str() == LABEL)
        else {
            return Err(KeyFailure::SignatureInvalid);
        };
        // RFC 9421 §2.1: the covered components, in order; the profile fixes them.
        let components: Vec<&str> = covered
            .items
            .iter()
            .map(|item| item.bare_item.as_string().map(|s| s.as_str()))
            .collect::<Option<_>>()
            .ok_or(KeyFailure::SignatureInvalid)?;
        let with_body = ["@method", "@target-uri", "content-digest"];
        let without_body = ["@method", "@target-uri"];
        let expected: &[&str] = if body.is_empty() {
            &without_body
        } else {
            &with_body
        };
        if components != expected || covered.items.iter().any(|i| !i.params.is_empty()) {
            return Err(KeyFailure::SignatureInvalid);
        }
        // RFC 9421 §2.3: the signature parameters.
        let param = |name: &str| covered.params.iter().find(|(k, _)| k.as_str() == name);
        let text_param = |name: &str| {
            param(name)
                .and_then(|(_, v)| v.as_string())
                .map(|s| s.as_str().to_owned())
                .ok_or(KeyFailure::SignatureInvalid)
        };
        let created = param("created")
            .and_then(|(_, v)| v.as_integer())
            .map(i64::from)
            .ok_or(KeyFailure::SignatureInvalid)?;
        let nonce = text_param("nonce")?;
        let keyid = text_param("keyid")?;
        if text_param("alg")? != ALGORITHM || nonce.len() < 16 || nonce.len() > 64 {
            return Err(KeyFailure::SignatureInvalid);
        }
        let Some((_, ListEntry::Item(signature))) =
            signatures.iter().find(|(k, _)| k.as_str() == LABEL)
        else {
            return Err(KeyFailure::SignatureInvalid);
        };
        let signature = signature
            .bare_item
            .as_byte_sequence()
            .ok_or(KeyFailure::SignatureInvalid)?
            .to_vec();

        // RFC 9421 §2.5: one line per covered component, then `@signature-params`, whose value
        // is the inner list serialised (RFC 8941 §4.1) as the signer serialised it.
        let mut base = format!(
            "\"@method\": {}\n\"@target-uri\": {target_uri}\n",
            method.as_str()
        );
        if !body.is_empty() {
            let digest_field = header_text(headers, "content-digest")?;
            check_content_digest(digest_field, body)?;
            base.push_str(&format!("\"content-digest\": {digest_field}\n"));
        }
        let params = vec![ListEntry::InnerList(covered.clone())]
            .serialize()
            .ok_or(KeyFailure::SignatureInvalid)?;
        base.push_str(&format!("\"@signature-params\": {params}"));
        Ok(SignedRequest {
            keyid,
            nonce,
            created,
            base,
            signature,
        })
    }

    /// RFC 9421 §3.2: the signature verifies with `key`, and was made within
    /// [`MAX_SKEW_SECS`] of `now_secs`.
    pub fn verify(&self, key: &DevicePublicKey, now_secs: i64) -> Result<(), KeyFailure> {
        if (self.created - now_secs).abs() > MAX_SKEW_SECS {
            return Err(KeyFailure::SignatureInvalid);
        }
        if !key.verify(self.base.as_bytes(), &self.signature) {
            return Err(KeyFailure::SignatureInvalid);
        }
        Ok(())
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, KeyFailure> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        // Absent, or split over several lines (which RFC 8941 would join; the profile does not
        // need it, and a single line leaves no doubt about what was signed).
        return Err(KeyFailure::SignatureInvalid);
    };
    value.to_str().map_err(|_| KeyFailure::SignatureInvalid)
}

fn dictionary(headers: &HeaderMap, name: &str) -> Result<Dictionary, KeyFailure> {
    Parser::new(header_text(headers, name)?)
        .parse()
        .map_err(|_| KeyFailure::SignatureInvalid)
}

/// RFC 9530 §2: `Content-Digest` is a dictionary of algorithm → byte sequence; the profile
/// needs `sha-256`, which must be the body's.
fn check_content_digest(field: &str, body: &[u8]) -> Result<(), KeyFailure> {
    let digests: Dictionary = Parser::new(field)
        .parse()
        .map_err(|_| KeyFailure::SignatureInvalid)?;
    let Some((_, ListEntry::Item(sha256))) = digests.iter().find(|(k, _)| k.as_str() == "sha-256")
    else {
        return Err(KeyFailure::SignatureInvalid);
    };
    let actual = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    if sha256.bare_item.as_byte_sequence() != Some(actual.as_ref()) {
        return Err(KeyFailure::SignatureInvalid);
    }
    Ok(())
}

/// The nonces seen within the skew window, so that a captured request cannot be sent again
/// (RFC 9421 §7.2.2). In this instance's memory: several instances behind a load balancer each
/// keep their own, which a replay to another instance within the window would get past
/// (recorded in the threat model).
#[derive(Debug, Default)]
pub struct SeenNonces {
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl SeenNonces {
    /// Records `(keyid, nonce)`; `false` if it was already seen and has not expired.
    pub fn first_time(&self, keyid: &str, nonce: &str, now_secs: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Forget what can no longer be replayed (its `created` is out of the window anyway).
        if seen.len() > 10_000 {
            seen.retain(|_, expires| *expires > now_secs);
        }
        let key = (keyid.to_owned(), nonce.to_owned());
        match seen.get(&key) {
            Some(expires) if *expires > now_secs => false,
            _ => {
                seen.insert(key, now_secs + 2 * MAX_SKEW_SECS);
                true
            }
        }
    }
}

/// `sha-256=:<base64>:`, the Content-Digest of `body` (for tests and clients of this crate).
pub fn content_digest(body: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    format!("sha-256=:{}:", STANDARD.encode(digest.as_ref()))
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use axum::http::HeaderValue;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;

    const URI: &str = "https://behalf.example/key/v1/assertions";

    fn device() -> (EcdsaKeyPair, DevicePublicKey) {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let p = pair.public_key().as_ref();
        let key = DevicePublicKey::from_jwk(&json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])}))
        .unwrap();
        (pair, key)
    }

    /// Signs as the extension does: the base string written out by hand from RFC 9421 §2.5.
    fn signed(pair: &EcdsaKeyPair, keyid: &str, created: i64, body: &[u8]) -> HeaderMap {
        let nonce = "bm9uY2Utb2YtMTYtYnl0ZXM";
        let (list, digest_line) = if body.is_empty() {
            (r#"("@method" "@target-uri")"#.to_owned(), String::new())
        } else {
            (
                r#"("@method" "@target-uri" "content-digest")"#.to_owned(),
                format!("\"content-digest\": {}\n", content_digest(body)),
            )
        };
        let params = format!(
            r#"{list};created={created};nonce="{nonce}";keyid="{keyid}";alg="ecdsa-p256-sha256""#
        );
        let base = format!(
            "\"@method\": POST\n\"@target-uri\": {URI}\n{digest_line}\"@signature-params\": {params}"
        );
        let signature = pair.sign(&SystemRandom::new(), base.as_bytes()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "signature-input",
            HeaderValue::from_str(&format!("bk={params}")).unwrap(),
        );
        headers.insert(
            "signature",
            HeaderValue::from_str(&format!("bk=:{}:", STANDARD.encode(signature.as_ref())))
                .unwrap(),
        );
        if !body.is_empty() {
            headers.insert(
                "content-digest",
                HeaderValue::from_str(&content_digest(body)).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn a_request_signed_by_the_profile_verifies_and_names_its_key() {
        let (pair, key) = device();
        let body = br#"{"rp_id":"login.microsoft.com"}"#;
        let headers = signed(&pair, &key.thumbprint(), 1_000, body);
        let request = SignedRequest::parse(&Method::POST, URI, &headers, body).unwrap();
        assert_eq!(request.keyid, key.thumbprint());
        request.verify(&key, 1_030).unwrap();
        // Without a body there is no Content-Digest to cover.
        let headers = signed(&pair, "k", 1_000, b"");
        let request = SignedRequest::parse(&Method::POST, URI, &headers, b"").unwrap();
        request.verify(&key, 1_000).unwrap();
    }

    #[test]
    fn anything_changed_after_signing_is_refused() {
        let (pair, key) = device();
        let (_, stranger) = device();
        let body = br#"{"pin":"1234"}"#;
        let headers = signed(&pair, "k", 1_000, body);
        let verify = |method: &Method, uri: &str, headers: &HeaderMap, body: &[u8], now| {
            SignedRequest::parse(method, uri, headers, body).and_then(|r| r.verify(&key, now))
        };
        assert!(verify(&Method::POST, URI, &headers, body, 1_000).is_ok());
        // Another body (the digest no longer matches), method, URI, key, or time.
        assert!(verify(&Method::POST, URI, &headers, br#"{"pin":"1235"}"#, 1_000).is_err());
        assert!(verify(&Method::PUT, URI, &headers, body, 1_000).is_err());
        assert!(
            verify(
                &Method::POST,
                "https://behalf.example/key/v1/pair",
                &headers,
                body,
                1_000
            )
            .is_err()
        );
        assert!(
            SignedRequest::parse(&Method::POST, URI, &headers, body)
                .unwrap()
                .verify(&stranger, 1_000)
                .is_err()
        );
        assert!(
            verify(
                &Method::POST,
                URI,
                &headers,
                body,
                1_000 + MAX_SKEW_SECS + 1
            )
            .is_err()
        );
        assert!(
            verify(
                &Method::POST,
                URI,
                &headers,
                body,
                1_000 - MAX_SKEW_SECS - 1
            )
            .is_err()
        );
        // A body sent under a signature that covers none.
        let bare = signed(&pair, "k", 1_000, b"");
        assert!(verify(&Method::POST, URI, &bare, body, 1_000).is_err());
        // No signature at all.
        assert!(verify(&Method::POST, URI, &HeaderMap::new(), body, 1_000).is_err());
    }

    #[test]
    fn a_nonce_is_accepted_once_within_the_window() {
        let nonces = SeenNonces::default();
        assert!(nonces.first_time("k", "n1", 100));
        assert!(!nonces.first_time("k", "n1", 150));
        assert!(nonces.first_time("k2", "n1", 150));
        assert!(nonces.first_time("k", "n1", 100 + 2 * MAX_SKEW_SECS + 1));
    }
}
