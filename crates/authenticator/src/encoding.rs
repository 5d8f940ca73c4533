//! Base64 as relying parties actually send it.
//!
//! WebAuthn JSON uses base64url without padding, but Microsoft Graph has been seen to send ids in
//! standard base64 (`+/`, `=` padding) and in the .NET "URL token" form: base64url whose trailing
//! `=` are replaced by one digit counting them (`0`, `1` or `2`). All three decode here.

use base64::Engine;
use base64::engine::general_purpose::GeneralPurpose;
use base64::engine::{DecodePaddingMode, GeneralPurposeConfig};

// Canonical only: a last character with stray low bits is what tells the padding-digit form apart.
const URL_STRICT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// base64url without padding: what WebAuthn JSON and Graph's POST body expect.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url, standard base64, or base64url with a trailing padding-count digit, and
/// returns the most likely reading (see [`decode_candidates`]). The error says why no reading
/// fits, for a message naming the field.
pub fn decode_lenient(text: &str) -> Result<Vec<u8>, String> {
    decode_candidates(text).map(|mut all| all.swap_remove(0))
}

/// Every reading of `text`, most likely first. Usually one; two when the text is both valid
/// base64url and valid padding-digit form: a digit `1` ending a text whose length is a multiple
/// of 4 (plain base64url is then preferred). Credential-id matching tries them all.
pub fn decode_candidates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("is empty".into());
    }
    // Both alphabets at once: the two only differ in the characters for 62 and 63.
    let mut s: String = trimmed
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    let unpadded_len = s.trim_end_matches('=').len();
    let padding = s.len() - unpadded_len;
    if padding > 2 {
        return Err(format!("has {padding} '=' padding characters (at most 2)"));
    }
    s.truncate(unpadded_len);

    let mut readings = Vec::new();
    let plain = if s.len() % 4 == 1 {
        Err("has an impossible length for base64".to_owned())
    } else {
        URL_STRICT
            .decode(s.as_bytes())
            .map_err(|e| format!("is not base64 ({e})"))
    };
    let plain_error = match plain {
        Ok(bytes) => {
            readings.push(bytes);
            None
        }
        Err(e) => Some(e),
    };
    // The .NET URL-token form: base64url whose '=' padding was replaced by its count.
    let digit = s
        .chars()
        .last()
        .and_then(|c| c.to_digit(10))
        .filter(|d| *d <= 2);
    if let (0, Some(d)) = (padding, digit) {
        let body = &s[..s.len() - 1];
        let due = (4 - body.len() % 4) % 4;
        if d as usize == due
            && body.len() % 4 != 1
            && let Ok(bytes) = URL_STRICT.decode(body.as_bytes())
            && !readings.contains(&bytes)
        {
            readings.push(bytes);
        }
    }
    match (readings.is_empty(), plain_error, digit) {
        (false, _, _) => Ok(readings),
        (true, Some(e), Some(d)) if padding == 0 => {
            let body_len = s.len() - 1;
            Err(format!(
                "{e}; read as base64url with a padding digit it ends in {d} where {} is due",
                (4 - body_len % 4) % 4
            ))
        }
        (true, Some(e), _) => Err(e),
        (true, None, _) => Err("is not base64".into()),
    }
}

#[cfg(test)]
mod tests;
