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
