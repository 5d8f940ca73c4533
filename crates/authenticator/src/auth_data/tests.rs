use super::*;
use crate::cose::es256_cose_key;
use crate::keys::PrivateKey;

fn sample() -> AuthenticatorData {
    AuthenticatorData {
        rp_id_hash: rp_id_hash("login.microsoft.com"),
        flags: flags::UP | flags::UV | flags::AT | flags::ED,
        sign_count: 7,
        attested: Some(AttestedCredentialData {
            aaguid: [9; 16],
            credential_id: vec![1, 2, 3],
            public_key: es256_cose_key(&PrivateKey::generate().verifying_key()),
        }),
        extensions: Some(ExtensionOutputs {
            cred_protect: Some(2),
            hmac_secret: Some(true),
        }),
    }
}

#[test]
fn round_trips_with_flags_that_match_content() {
    let data = sample();
    let bytes = data.to_bytes();
    assert_eq!(bytes[32], 0xc5, "UP|UV|AT|ED, BE/BS clear");
    assert_eq!(&bytes[33..37], &[0, 0, 0, 7]);
    assert_eq!(AuthenticatorData::parse(&bytes).unwrap(), data);

    let plain = AuthenticatorData {
        attested: None,
        extensions: None,
        flags: 0xff,
        ..sample()
    };
    let bytes = plain.to_bytes();
    assert_eq!(bytes.len(), 37);
    assert_eq!(bytes[32] & (flags::AT | flags::ED), 0);
}

#[test]
fn extensions_are_canonical_cbor() {
    let ext = ExtensionOutputs {
        cred_protect: Some(3),
        hmac_secret: Some(true),
    };
    let bytes = cbor(&ext.to_cbor());
    let mut expected = vec![0xa2, 0x6b];
    expected.extend_from_slice(b"credProtect");
    expected.push(0x03);
    expected.push(0x6b);
    expected.extend_from_slice(b"hmac-secret");
    expected.push(0xf5);
    assert_eq!(bytes, expected);
}

#[test]
fn truncation_is_an_error_not_a_panic() {
    let bytes = sample().to_bytes();
    for len in 0..bytes.len() {
        assert!(
            AuthenticatorData::parse(&bytes[..len]).is_err(),
            "prefix of {len} bytes"
        );
    }
}
