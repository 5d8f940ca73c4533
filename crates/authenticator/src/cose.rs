//! COSE_Key encoding of credential public keys (RFC 9052 §7, RFC 9053 §7.1.1; CTAP 2.1 §6.5.6).

use coset::{CborSerializable, CoseKey, CoseKeyBuilder, KeyType, Label, iana};
use p256::ecdsa::VerifyingKey;

use crate::AuthenticatorError;

/// The ES256 public key as a COSE_Key: `{1: 2, 3: -7, -1: 1, -2: x, -3: y}`, in CTAP2 canonical
/// order (coset writes kty, alg, then the curve parameters in the order given).
pub fn es256_cose_key(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_sec1_point(false);
    let bytes = point.as_bytes();
    // Uncompressed SEC1: 0x04 || x (32) || y (32).
    let (x, y) = bytes[1..].split_at(32);
    let cose = CoseKeyBuilder::new_ec2_pub_key(iana::EllipticCurve::P_256, x.to_vec(), y.to_vec())
        .algorithm(iana::Algorithm::ES256)
        .build();
    // Only fails on values coset cannot represent; these are two byte strings and small ints.
    cose.to_vec().unwrap_or_default()
}

/// Reads an ES256 COSE_Key back into a verifying key.
pub fn parse_es256_cose_key(bytes: &[u8]) -> Result<VerifyingKey, AuthenticatorError> {
    let bad = |why: &str| AuthenticatorError::Corrupt(format!("COSE key: {why}"));
    let key = CoseKey::from_slice(bytes).map_err(|e| bad(&e.to_string()))?;
    if key.kty != KeyType::Assigned(iana::KeyType::EC2) {
        return Err(bad("kty is not EC2"));
    }
    if key.alg != Some(coset::Algorithm::Assigned(iana::Algorithm::ES256)) {
        return Err(bad("alg is not ES256"));
    }
    let param = |label: i64| {
        key.params
            .iter()
            .find(|(l, _)| *l == Label::Int(label))
            .map(|(_, v)| v)
    };
    let crv = param(iana::Ec2KeyParameter::Crv as i64).and_then(|v| v.as_integer());
    if crv != Some((iana::EllipticCurve::P_256 as i64).into()) {
        return Err(bad("crv is not P-256"));
    }
    let coord = |label: iana::Ec2KeyParameter| {
        param(label as i64)
            .and_then(|v| v.as_bytes())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| bad("x or y is not 32 bytes"))
    };
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(0x04);
    sec1.extend_from_slice(coord(iana::Ec2KeyParameter::X)?);
    sec1.extend_from_slice(coord(iana::Ec2KeyParameter::Y)?);
    VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| bad("point is not on P-256"))
}

#[cfg(test)]
mod tests;

/// The ES256 COSE_Key as an X.509 SubjectPublicKeyInfo in DER (RFC 5480), which WebAuthn L3
/// §5.2.1.1's `getPublicKey()` (and `toJSON()`'s `publicKey`) hands a relying party.
pub fn es256_spki_der(cose: &[u8]) -> Result<Vec<u8>, AuthenticatorError> {
    use p256::pkcs8::EncodePublicKey as _;
    let key = parse_es256_cose_key(cose)?;
    key.to_public_key_der()
        .map(|der| der.as_bytes().to_vec())
        .map_err(|e| AuthenticatorError::Corrupt(format!("SPKI: {e}")))
}
