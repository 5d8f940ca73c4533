use super::*;

#[test]
fn seals_and_opens_only_with_the_same_key_and_identity() {
    let key = SecretBytes::random(KEY_LEN);
    let ad = aad(&[
        b"vault_credentials",
        b"ws",
        b"login.microsoft.com",
        &[1, 2, 3],
    ]);
    let sealed = seal(key.expose(), b"private key bytes", &ad).unwrap();
    assert_eq!(sealed.len(), 1 + 12 + 17 + 16);
    assert!(!sealed.windows(17).any(|w| w == b"private key bytes"));
    assert_eq!(
        open(key.expose(), &sealed, &ad, "x").unwrap().expose(),
        b"private key bytes"
    );

    let other_row = aad(&[
        b"vault_credentials",
        b"ws",
        b"login.microsoft.com",
        &[1, 2, 4],
    ]);
    assert!(matches!(
        open(key.expose(), &sealed, &other_row, "x"),
        Err(VaultError::Unseal { .. })
    ));
    assert!(open(SecretBytes::random(KEY_LEN).expose(), &sealed, &ad, "x").is_err());
    let mut flipped = sealed.clone();
    flipped[20] ^= 1;
    assert!(open(key.expose(), &flipped, &ad, "x").is_err());
    assert!(matches!(
        open(key.expose(), &sealed[..20], &ad, "x"),
        Err(VaultError::Corrupt { .. })
    ));
}

#[test]
fn identities_cannot_collide_by_concatenation() {
    assert_ne!(aad(&[b"ab", b"c"]), aad(&[b"a", b"bc"]));
}
