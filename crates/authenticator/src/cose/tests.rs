use super::*;
use crate::keys::PrivateKey;

#[test]
fn cose_key_is_ctap2_canonical() {
    let key = PrivateKey::generate().verifying_key();
    let bytes = es256_cose_key(&key);
    // map(5), 1:2, 3:-7 (0x26), -1 (0x20):1, -2 (0x21): bstr(32), -3 (0x22): bstr(32)
    assert_eq!(&bytes[..7], &[0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01]);
    assert_eq!(&bytes[7..9], &[0x21, 0x58]);
    assert_eq!(bytes.len(), 77);
    assert_eq!(parse_es256_cose_key(&bytes).unwrap(), key);
}

#[test]
fn refuses_what_is_not_es256() {
    assert!(parse_es256_cose_key(&[0xa0]).is_err());
    assert!(parse_es256_cose_key(b"not cbor").is_err());
}
