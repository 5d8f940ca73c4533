use super::*;

#[test]
fn aaguid_prints_and_parses_as_a_uuid() {
    let a = Aaguid::parse("0bb1f6ef-0a3c-4b1e-9c5a-3f3c2b8e8d01").unwrap();
    assert_eq!(a.to_string(), "0bb1f6ef-0a3c-4b1e-9c5a-3f3c2b8e8d01");
    assert_eq!(
        Aaguid::parse("0bb1f6ef0a3c4b1e9c5a3f3c2b8e8d01").unwrap(),
        a
    );
    assert!(Aaguid::parse("not-a-uuid").is_err());
    assert!(Aaguid::parse("é0bb1f6ef0a3c4b1e9c5a3f3c2b8e8d0").is_err());
}

#[test]
fn secret_round_trips_and_hides() {
    let secret = CredentialSecret {
        private_key: PrivateKey::generate(),
        cred_random: Some(SecretBytes::random(64)),
    };
    let bytes = secret.to_bytes();
    assert_eq!(bytes.len(), 98);
    assert_eq!(
        CredentialSecret::from_bytes(bytes.expose()).unwrap(),
        secret
    );
    assert_eq!(format!("{secret:?}"), "CredentialSecret(<hidden>)");

    let bare = CredentialSecret {
        private_key: PrivateKey::generate(),
        cred_random: None,
    };
    assert_eq!(
        CredentialSecret::from_bytes(bare.to_bytes().expose()).unwrap(),
        bare
    );
    assert!(CredentialSecret::from_bytes(&bytes.expose()[..50]).is_err());
    assert!(CredentialSecret::from_bytes(&[2; 34]).is_err());
}
