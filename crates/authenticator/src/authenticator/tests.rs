use super::*;
use crate::options::tests::graph_answer;
use crate::{CredProtect, MemoryStore, UserVerification};

fn authenticator(attestation: Attestation) -> Authenticator<MemoryStore> {
    Authenticator::new(
        AuthenticatorConfig {
            aaguid: Aaguid([7; 16]),
            attestation,
        },
        MemoryStore::new(),
    )
}

fn graph_options() -> CreationOptions {
    CreationOptions::from_value(&graph_answer()).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn registration_is_stored_and_flags_are_device_bound() {
    block_on(async {
        let a = authenticator(Attestation::PackedSelf);
        let reg = a.make_credential(&graph_options()).await.unwrap();
        assert_eq!(reg.format, "packed");
        assert_eq!(reg.credential.credential_id.len(), CREDENTIAL_ID_LEN);
        let stored = a
            .store()
            .load("login.microsoft.com", &reg.credential.credential_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.info, reg.credential);
        assert_eq!(
            stored.info.cred_protect,
            Some(CredProtect::UserVerificationOptional)
        );
        assert_eq!(
            stored.secret.cred_random.as_ref().map(SecretBytes::len),
            Some(64)
        );

        let json = reg.response.to_json();
        // Sorted: the order of a JSON object's members is not part of it (and serde_json keeps
        // insertion order when any crate of the build turns on `preserve_order`).
        let mut keys = json.as_object().unwrap().keys().collect::<Vec<_>>();
        keys.sort();
        assert_eq!(keys, ["clientExtensionResults", "id", "response"]);
        assert_eq!(json["clientExtensionResults"], serde_json::json!({}));
        assert!(!json["id"].as_str().unwrap().contains('='));

        let att: ciborium::Value = ciborium::from_reader(
            &crate::decode_lenient(json["response"]["attestationObject"].as_str().unwrap())
                .unwrap()[..],
        )
        .unwrap();
        let auth_data = att
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some("authData"))
            .unwrap()
            .1
            .as_bytes()
            .unwrap();
        let parsed = AuthenticatorData::parse(auth_data).unwrap();
        assert_eq!(parsed.flags, flags::UP | flags::UV | flags::AT | flags::ED);
        assert_eq!(parsed.sign_count, 0);
        assert_eq!(
            parsed.extensions,
            Some(ExtensionOutputs {
                cred_protect: Some(1),
                hmac_secret: Some(true)
            })
        );
        assert_eq!(parsed.attested.unwrap().aaguid, [7; 16]);
    });
}

#[test]
fn client_data_carries_the_challenge_verbatim() {
    let text = client_data_json("webauthn.create", "abc-_+/=\"x", "login.microsoft.com");
    assert_eq!(
        text,
        r#"{"type":"webauthn.create","challenge":"abc-_+/=\"x","origin":"https://login.microsoft.com","crossOrigin":false}"#
    );
}

#[test]
fn excluded_credentials_are_refused_and_nothing_is_stored() {
    block_on(async {
        let a = authenticator(Attestation::None);
        let first = a.make_credential(&graph_options()).await.unwrap();
        let mut again = graph_options();
        again
            .exclude_credentials
            .push(first.credential.credential_id.clone());
        let err = a.make_credential(&again).await.unwrap_err();
        assert!(
            matches!(err, AuthenticatorError::CredentialExcluded { .. }),
            "{err}"
        );
        assert_eq!(
            a.store()
                .list("login.microsoft.com", None)
                .await
                .unwrap()
                .len(),
            1
        );

        // The same id listed for another RP is not ours there.
        let mut other_rp = again.clone();
        other_rp.rp_id = "example.com".into();
        assert!(a.make_credential(&other_rp).await.is_ok());
    });
}

#[test]
fn rs256_only_is_refused_clearly() {
    block_on(async {
        let mut o = graph_options();
        o.algorithms = vec![-257];
        let err = authenticator(Attestation::None)
            .make_credential(&o)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ES256"), "{err}");
    });
}

#[test]
fn none_conveyance_gets_none_format() {
    block_on(async {
        let mut o = graph_options();
        o.attestation = crate::AttestationConveyance::None;
        let reg = authenticator(Attestation::PackedSelf)
            .make_credential(&o)
            .await
            .unwrap();
        assert_eq!(reg.format, "none");
    });
}

#[test]
fn assertions_count_up_and_persist() {
    block_on(async {
        let a = authenticator(Attestation::None);
        let reg = a.make_credential(&graph_options()).await.unwrap();
        let request = RequestOptions {
            challenge: "c2lnbi1pbi1jaGFsbGVuZ2U".into(),
            rp_id: "login.microsoft.com".into(),
            allow_credentials: vec![vec![1, 2, 3], reg.credential.credential_id.clone()],
            user_verification: UserVerification::Required,
        };
        let counts: Vec<u32> = [
            a.get_assertion(&request).await.unwrap().sign_count,
            a.get_assertion(&request).await.unwrap().sign_count,
            a.get_assertion(&RequestOptions {
                allow_credentials: vec![],
                ..request.clone()
            })
            .await
            .unwrap()
            .sign_count,
        ]
        .into();
        assert_eq!(counts, [1, 2, 3]);
        let stored = a
            .store()
            .load("login.microsoft.com", &reg.credential.credential_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.info.sign_count, 3);

        let missing = RequestOptions {
            allow_credentials: vec![vec![9; 32]],
            ..request.clone()
        };
        assert!(matches!(
            a.get_assertion(&missing).await,
            Err(AuthenticatorError::NoCredentials { .. })
        ));
        assert!(
            a.store()
                .delete("login.microsoft.com", &reg.credential.credential_id)
                .await
                .unwrap()
        );
        assert!(a.get_assertion(&request).await.is_err());
    });
}
