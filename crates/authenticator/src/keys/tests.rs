use super::*;

#[test]
fn secrets_never_print() {
    let key = PrivateKey::generate();
    let printed = format!("{key:?} {:?}", SecretBytes::random(32));
    assert_eq!(printed, "PrivateKey(<hidden>) <hidden>");
}

#[test]
fn a_key_survives_its_bytes() {
    let key = PrivateKey::generate();
    let again = PrivateKey::from_bytes(key.expose()).unwrap();
    assert_eq!(key, again);
    assert_eq!(key.verifying_key(), again.verifying_key());
    assert_ne!(key, PrivateKey::generate());
}

#[test]
fn garbage_is_not_a_key() {
    assert!(PrivateKey::from_bytes(&[0u8; 32]).is_err());
    assert!(PrivateKey::from_bytes(&[1u8; 31]).is_err());
    assert!(PrivateKey::from_bytes(&[0xffu8; 32]).is_err());
}

#[test]
fn a_signature_verifies_under_the_public_key_with_an_independent_verifier() {
    use p256::ecdsa::signature::Verifier;
    let key = PrivateKey::generate();
    let message = b"authenticatorData || clientDataHash";
    let der = key.sign(message);
    let signature = p256::ecdsa::DerSignature::try_from(&der[..]).unwrap();
    key.verifying_key().verify(message, &signature).unwrap();
    // The same key read back from its bytes signs for the same public key.
    let again = PrivateKey::from_bytes(key.expose()).unwrap();
    let signature = p256::ecdsa::DerSignature::try_from(&again.sign(message)[..]).unwrap();
    key.verifying_key().verify(message, &signature).unwrap();
    assert!(
        key.verifying_key()
            .verify(b"another message", &signature)
            .is_err()
    );
}

#[test]
fn a_scalar_at_or_above_the_group_order_is_not_a_key() {
    // n, the order of P-256's base point: 0 < scalar < n.
    let order = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    assert!(PrivateKey::from_bytes(&order).is_err());
    let mut below = order.clone();
    below[31] -= 1;
    assert!(PrivateKey::from_bytes(&below).is_ok());
    let mut one = [0u8; 32];
    one[31] = 1;
    let key = PrivateKey::from_bytes(&one).unwrap();
    // 1 · G is the base point itself.
    assert_eq!(
        key.verifying_key().as_affine(),
        &p256::AffinePoint::GENERATOR
    );
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
