use super::*;

#[test]
fn decodes_the_three_forms_graph_sends() {
    let bytes = [0xfbu8, 0xff, 0x01, 0x02, 0x03];
    let url = b64url(&bytes);
    assert_eq!(url, "-_8BAgM");
    assert_eq!(decode_lenient(&url).unwrap(), bytes);
    assert_eq!(decode_lenient("+/8BAgM=").unwrap(), bytes);
    // Padding digits 0 and 2 cannot be read as plain base64: one reading.
    assert_eq!(decode_candidates("AQID0").unwrap(), vec![vec![1, 2, 3]]);
    assert_eq!(
        decode_candidates("AQIDBA2").unwrap(),
        vec![vec![1, 2, 3, 4]]
    );
    // Padding digit 1 can: both readings, plain first.
    let both = decode_candidates("-_8BAgM1").unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[1], bytes);
}

#[test]
fn rejects_with_a_reason() {
    assert!(decode_lenient("").unwrap_err().contains("empty"));
    let err = decode_lenient("AQIDBA1").unwrap_err();
    assert!(err.contains("ends in 1 where 2 is due"), "{err}");
    assert!(decode_lenient("AQ!D").unwrap_err().contains("not base64"));
    assert!(decode_lenient("A===").unwrap_err().contains("padding"));
    assert!(
        decode_lenient("AQIDB")
            .unwrap_err()
            .contains("impossible length")
    );
}
