//! Property tests: encodings round-trip, and no input Graph could send makes the parser panic.

use base64::Engine;
use behalf_authenticator::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn scalar() -> impl Strategy<Value = PrivateKey> {
    prop::array::uniform32(any::<u8>())
        .prop_filter_map("a valid P-256 scalar", |b| PrivateKey::from_bytes(&b).ok())
}

fn extensions() -> impl Strategy<Value = Option<ExtensionOutputs>> {
    prop::option::of(
        (prop::option::of(1u8..=3), prop::option::of(any::<bool>())).prop_map(
            |(cred_protect, hmac_secret)| ExtensionOutputs {
                cred_protect,
                hmac_secret,
            },
        ),
    )
}

fn authenticator_data() -> impl Strategy<Value = AuthenticatorData> {
    (
        prop::array::uniform32(any::<u8>()),
        any::<u8>(),
        any::<u32>(),
        prop::option::of((
            prop::array::uniform16(any::<u8>()),
            prop::collection::vec(any::<u8>(), 1..=1023),
            scalar(),
        )),
        extensions(),
    )
        .prop_map(
            |(rp_id_hash, flags, sign_count, acd, extensions)| AuthenticatorData {
                rp_id_hash,
                flags,
                sign_count,
                attested: acd.map(|(aaguid, credential_id, key)| AttestedCredentialData {
                    aaguid,
                    credential_id,
                    public_key: es256_cose_key(&key.verifying_key()),
                }),
                extensions,
            },
        )
}

/// The three id dialects Graph uses.
#[derive(Debug, Clone, Copy)]
enum Dialect {
    Url,
    Standard,
    PaddingDigit,
}

fn encode(bytes: &[u8], dialect: Dialect) -> String {
    match dialect {
        Dialect::Url => b64url(bytes),
        Dialect::Standard => base64::engine::general_purpose::STANDARD.encode(bytes),
        Dialect::PaddingDigit => {
            let padded = base64::engine::general_purpose::URL_SAFE.encode(bytes);
            let body = padded.trim_end_matches('=');
            format!("{body}{}", padded.len() - body.len())
        }
    }
}

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![
        Just(Dialect::Url),
        Just(Dialect::Standard),
        Just(Dialect::PaddingDigit)
    ]
}

/// A creationOptions answer as Graph could send it, and the ids it carries.
fn graph_options() -> impl Strategy<Value = (Value, Vec<u8>, Vec<Vec<u8>>)> {
    (
        prop::collection::vec(any::<u8>(), 1..=64),
        dialect(),
        prop::collection::vec((prop::collection::vec(any::<u8>(), 1..=128), dialect()), 0..5),
        any::<bool>(),
        prop::sample::select(vec![
            "userVerificationOptional",
            "userVerificationOptionalWithCredentialIDList",
            "userVerificationRequired",
        ]),
        "[A-Za-z0-9_-]{16,86}",
    )
        .prop_map(|(user_id, user_dialect, excluded, wrapped, policy, challenge)| {
            let exclude: Vec<Value> =
                excluded.iter().map(|(id, d)| json!({"type": "public-key", "id": encode(id, *d), "transports": []})).collect();
            let answer = json!({
                "challengeTimeoutDateTime": "2026-11-20T10:05:00Z",
                "publicKey": {
                    "challenge": challenge,
                    "rp": {"id": "login.microsoft.com", "name": "Microsoft"},
                    "user": {"id": encode(&user_id, user_dialect), "name": "a@contoso.com", "displayName": "A"},
                    "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
                    "excludeCredentials": exclude,
                    "authenticatorSelection": {"authenticatorAttachment": "cross-platform", "requireResidentKey": true, "userVerification": "required"},
                    "attestation": "direct",
                    "extensions": {"hmacCreateSecret": true, "enforceCredentialProtectionPolicy": true, "credentialProtectionPolicy": policy},
                    "timeout": 300000
                }
            });
            let answer = if wrapped { json!({ "value": answer }) } else { answer };
            (answer, user_id, excluded.into_iter().map(|(id, _)| id).collect())
        })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        "[A-Za-z0-9+/_=-]{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "value",
                    "publicKey",
                    "challenge",
                    "rp",
                    "id",
                    "user",
                    "name",
                    "displayName",
                    "pubKeyCredParams",
                    "alg",
                    "type",
                    "excludeCredentials",
                    "authenticatorSelection",
                    "extensions",
                    "attestation",
                    "rpId",
                    "allowCredentials",
                    "credentialProtectionPolicy",
                    "hmacCreateSecret",
                    "userVerification",
                ])
                .prop_map(str::to_owned),
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer into `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, c)| pointers(c, format!("{at}/{k}"), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn authenticator_data_round_trips(data in authenticator_data()) {
        let bytes = data.to_bytes();
        let parsed = AuthenticatorData::parse(&bytes).unwrap();
        prop_assert_eq!(parsed.to_bytes(), bytes.clone());
        let mut expected_flags = data.flags & !(flags::AT | flags::ED);
        if data.attested.is_some() { expected_flags |= flags::AT; }
        let extensions = data.extensions.clone().filter(|e| !e.is_empty());
        if extensions.is_some() { expected_flags |= flags::ED; }
        prop_assert_eq!(parsed.flags, expected_flags);
        prop_assert_eq!(parsed.attested, data.attested);
        prop_assert_eq!(parsed.extensions, extensions);
        prop_assert_eq!(parsed.sign_count, data.sign_count);
    }

    #[test]
    fn authenticator_data_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = AuthenticatorData::parse(&bytes);
    }

    #[test]
    fn cose_keys_round_trip(key in scalar()) {
        let public = key.verifying_key();
        prop_assert_eq!(parse_es256_cose_key(&es256_cose_key(&public)).unwrap(), public);
    }

    #[test]
    fn cose_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        let _ = parse_es256_cose_key(&bytes);
    }

    #[test]
    fn credential_secrets_round_trip(key in scalar(), random in prop::option::of(prop::collection::vec(any::<u8>(), 1..=64))) {
        let secret = CredentialSecret { private_key: key, cred_random: random.map(SecretBytes::new) };
        prop_assert_eq!(CredentialSecret::from_bytes(secret.to_bytes().expose()).unwrap(), secret);
    }

    #[test]
    fn graph_options_parse_in_every_dialect((answer, user_id, excluded) in graph_options()) {
        let options = CreationOptions::from_json(&answer.to_string()).unwrap();
        // A padding-digit text can also be valid plain base64url (digit 1 at a length that is a
        // multiple of 4); the plain reading is then taken. Entra's handles ("OID:" + GUID, 40
        // bytes) always need two padding characters, so they are never ambiguous.
        let text = answer.pointer("/publicKey/user/id").or_else(|| answer.pointer("/value/publicKey/user/id")).unwrap();
        let readings = decode_candidates(text.as_str().unwrap()).unwrap();
        prop_assert!(readings.contains(&user_id));
        prop_assert_eq!(&options.user_handle, &readings[0]);
        if readings.len() == 1 { prop_assert_eq!(options.user_handle, user_id); }
        for id in &excluded {
            prop_assert!(options.exclude_credentials.contains(id), "excluded id lost");
        }
        prop_assert_eq!(options.rp_id, "login.microsoft.com");
    }

    #[test]
    fn damaged_graph_options_fail_with_a_named_field(
        (answer, _, _) in graph_options(),
        pick in any::<prop::sample::Index>(),
        replacement in json_value(),
    ) {
        let mut damaged = answer.clone();
        let mut all = Vec::new();
        pointers(&answer, String::new(), &mut all);
        let at = pick.get(&all);
        match damaged.pointer_mut(at) {
            Some(slot) => *slot = replacement,
            None => damaged = replacement,
        }
        match CreationOptions::from_json(&damaged.to_string()) {
            Ok(_) => {}
            Err(AuthenticatorError::Invalid { input, field, reason }) => {
                prop_assert_eq!(input, "creation options");
                prop_assert!(!field.is_empty() && !reason.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let _ = CreationOptions::from_value(&value);
        let _ = RequestOptions::from_value(&value);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = CreationOptions::from_json(&text);
        let _ = decode_candidates(&text);
    }

    #[test]
    fn entra_user_handles_are_never_ambiguous(guid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", d in dialect()) {
        let handle = format!("OID:{guid}").into_bytes();
        prop_assert_eq!(decode_candidates(&encode(&handle, d)).unwrap(), vec![handle]);
    }

    #[test]
    fn every_dialect_decodes(bytes in prop::collection::vec(any::<u8>(), 1..100), d in dialect()) {
        prop_assert!(decode_candidates(&encode(&bytes, d)).unwrap().contains(&bytes));
    }
}
