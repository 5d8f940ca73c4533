use serde_json::json;

use super::*;

pub(crate) fn graph_answer() -> Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#microsoft.graph.webauthnCredentialCreationOptions",
        "challengeTimeoutDateTime": "2026-11-20T10:05:00Z",
        "publicKey": {
            "challenge": "ZXlKaGJHY2lPaUpJVXpJMU5pSjkuZXlKMFpYTjBJam9pZEdWemRDSjkuc2lnbmF0dXJl",
            "timeout": 0,
            "attestation": "direct",
            "rp": { "id": "login.microsoft.com", "name": "Microsoft" },
            "user": {
                "id": "T0lEOjE4MDA0MjA3LTI5NDYtNGQ2My05NTE1LTZkZDgzMjJhMmE0ZA",
                "displayName": "Adele Vance",
                "name": "AdeleV@contoso.com"
            },
            "pubKeyCredParams": [ { "type": "public-key", "alg": -7 }, { "type": "public-key", "alg": -257 } ],
            "excludeCredentials": [
                { "id": "pgIfj2fnom8rJdb4_h1gKqDkq-gxHFksI-m2aR5T-PNNycBfENAZFbcjPUvzSvLDdP0Ilg8J84XLaWuvDoZKCgF3l9kg2JYE0aM2dD-KjNyt3Nc3-S7eFV3kfqN-yfH1", "type": "public-key", "transports": [] },
                { "id": "AQIDBA==", "type": "public-key" },
                { "id": "AQIDBA2", "type": "public-key" }
            ],
            "authenticatorSelection": {
                "authenticatorAttachment": "cross-platform",
                "requireResidentKey": true,
                "userVerification": "required"
            },
            "extensions": {
                "hmacCreateSecret": true,
                "enforceCredentialProtectionPolicy": true,
                "credentialProtectionPolicy": "userVerificationOptional"
            }
        }
    })
}

#[test]
fn parses_what_graph_sends() {
    let o = CreationOptions::from_value(&graph_answer()).unwrap();
    assert_eq!(o.rp_id, "login.microsoft.com");
    assert_eq!(
        o.challenge,
        "ZXlKaGJHY2lPaUpJVXpJMU5pSjkuZXlKMFpYTjBJam9pZEdWemRDSjkuc2lnbmF0dXJl"
    );
    assert_eq!(o.challenge_timeout.as_deref(), Some("2026-11-20T10:05:00Z"));
    assert_eq!(o.user_handle, b"OID:18004207-2946-4d63-9515-6dd8322a2a4d");
    assert_eq!(o.user_name, "AdeleV@contoso.com");
    assert_eq!(o.user_display_name, "Adele Vance");
    assert_eq!(o.algorithms, vec![-7, -257]);
    // Graph's own sample id ends in "1" at a length that is a multiple of 4, but its reading as
    // padding-digit form would leave stray bits: it is plain base64url, one reading.
    assert_eq!(
        o.exclude_credentials
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>(),
        [96, 4, 4]
    );
    assert_eq!(o.exclude_credentials[1], [1, 2, 3, 4]);
    assert_eq!(o.exclude_credentials[2], [1, 2, 3, 4]);
    assert!(o.require_resident_key);
    assert_eq!(o.user_verification, UserVerification::Required);
    assert_eq!(o.attestation, AttestationConveyance::Direct);
    assert!(o.hmac_create_secret && o.enforce_cred_protect);
    assert_eq!(o.cred_protect, Some(CredProtect::UserVerificationOptional));
}

#[test]
fn tolerates_the_value_wrapper() {
    let wrapped = json!({ "value": graph_answer() });
    assert_eq!(
        CreationOptions::from_value(&wrapped).unwrap(),
        CreationOptions::from_value(&graph_answer()).unwrap()
    );
}

#[test]
fn errors_name_the_field() {
    type Mutation = fn(&mut Value);
    let cases: Vec<(Mutation, &str)> = vec![
        (
            |v| v["publicKey"]["excludeCredentials"][1]["id"] = json!("AQ!D"),
            "publicKey.excludeCredentials[1].id",
        ),
        (
            |v| v["publicKey"]["user"]["id"] = json!(42),
            "publicKey.user.id",
        ),
        (
            |v| v["publicKey"]["rp"]["id"] = json!("https://evil/"),
            "publicKey.rp.id",
        ),
        (
            |v| {
                v["publicKey"]
                    .as_object_mut()
                    .unwrap()
                    .remove("challenge")
                    .map(drop)
                    .unwrap_or(())
            },
            "publicKey.challenge",
        ),
        (
            |v| v["publicKey"]["extensions"]["credentialProtectionPolicy"] = json!("maybe"),
            "publicKey.extensions.credentialProtectionPolicy",
        ),
        (
            |v| v["publicKey"]["pubKeyCredParams"][0]["alg"] = json!("-7"),
            "publicKey.pubKeyCredParams[0].alg",
        ),
        (
            |v| v["publicKey"]["authenticatorSelection"]["userVerification"] = json!("always"),
            "publicKey.authenticatorSelection.userVerification",
        ),
        (|v| *v = json!({"value": []}), "(document)"),
    ];
    for (mutate, field) in cases {
        let mut v = graph_answer();
        mutate(&mut v);
        let err = CreationOptions::from_value(&v).unwrap_err();
        match &err {
            AuthenticatorError::Invalid { field: f, .. } => assert_eq!(f, field, "{err}"),
            other => panic!("unexpected {other}"),
        }
        assert!(
            err.to_string().starts_with("invalid creation options"),
            "{err}"
        );
    }
}

#[test]
fn request_options_under_public_key() {
    let o = RequestOptions::from_value(&json!({
        "publicKey": { "challenge": "c2lnbi1pbi1jaGFsbGVuZ2UtMTIzNDU2Nzg", "rpId": "login.microsoft.com",
                       "allowCredentials": [ { "type": "public-key", "id": "AQIDBA" } ], "userVerification": "required" }
    }))
    .unwrap();
    assert_eq!(o.allow_credentials, vec![vec![1, 2, 3, 4]]);
    let err = RequestOptions::from_value(&json!({ "challenge": "abc" })).unwrap_err();
    assert!(err.to_string().contains("rpId: is missing"), "{err}");
}
