//! An independent verifier (webauthn-rs-core, not our code) judges our registrations and assertions.
//!
//! The relying party side is set up as Microsoft's: RP id `login.microsoft.com`, origin
//! `https://login.microsoft.com`, user verification required, resident key, direct attestation,
//! credProtect and hmac-secret asked for. Its options JSON is wrapped the way Graph answers.

use std::collections::BTreeMap;
use std::time::Duration;

use behalf_authenticator::*;
use serde_json::{Value, json};
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationCaList, AttestationCaListBuilder, AttestationConveyancePreference, COSEAlgorithm,
    CredProtect as WCredProtect, Credential, CredentialProtectionPolicy, PublicKeyCredential,
    RegisterPublicKeyCredential, RegistrationState, RequestRegistrationExtensions,
    UserVerificationPolicy,
};

const RP_ID: &str = "login.microsoft.com";
const AAGUID: &str = "0bb1f6ef-0a3c-4b1e-9c5a-3f3c2b8e8d01";

fn rp() -> WebauthnCore {
    let origin = url::Url::parse("https://login.microsoft.com").unwrap();
    WebauthnCore::new_unsafe_experts_only(
        "Microsoft",
        RP_ID,
        vec![origin],
        Duration::from_secs(300),
        None,
        None,
    )
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// The relying party's creation options, as Graph would return them, and its ceremony state.
fn creation_options(core: &WebauthnCore) -> (String, RegistrationState) {
    let builder = core
        .new_challenge_register_builder(
            b"OID:18004207-2946-4d63-9515-6dd8322a2a4d",
            "AdeleV@contoso.com",
            "Adele Vance",
        )
        .unwrap()
        .attestation(AttestationConveyancePreference::Direct)
        .user_verification_policy(UserVerificationPolicy::Required)
        .require_resident_key(true)
        .credential_algorithms(vec![COSEAlgorithm::ES256, COSEAlgorithm::RS256])
        .extensions(Some(RequestRegistrationExtensions {
            cred_protect: Some(WCredProtect {
                credential_protection_policy: CredentialProtectionPolicy::UserVerificationOptional,
                enforce_credential_protection_policy: Some(true),
            }),
            uvm: None,
            cred_props: None,
            min_pin_length: None,
            hmac_create_secret: Some(true),
        }));
    let (challenge, state) = core.generate_challenge_register(builder).unwrap();
    let public_key = serde_json::to_value(&challenge).unwrap()["publicKey"].clone();
    let graph = json!({ "value": { "challengeTimeoutDateTime": "2026-11-20T10:05:00Z", "publicKey": public_key } });
    (graph.to_string(), state)
}

/// Graph's body plus the two members a browser adds and webauthn-rs wants (`rawId`, `type`).
fn as_browser_registration(response: &Value) -> RegisterPublicKeyCredential {
    let mut v = response.clone();
    v["rawId"] = v["id"].clone();
    v["type"] = json!("public-key");
    serde_json::from_value(v).unwrap()
}

fn register(
    attestation: Attestation,
    cas: Option<&AttestationCaList>,
) -> (Authenticator<MemoryStore>, Registration, Credential) {
    let core = rp();
    let (options, state) = creation_options(&core);
    let authenticator = Authenticator::new(
        AuthenticatorConfig {
            aaguid: Aaguid::parse(AAGUID).unwrap(),
            attestation,
        },
        MemoryStore::new(),
    );
    let registration = block_on(authenticator.make_credential_json(&options)).unwrap();
    let body = registration.response.to_json();
    let verified = core
        .register_credential(&as_browser_registration(&body), &state, cas)
        .unwrap_or_else(|e| {
            panic!(
                "webauthn-rs refused our {} registration: {e:?}",
                registration.format
            )
        });
    (authenticator, registration, verified)
}

fn attestation_ca() -> (AttestationCa, AttestationKey) {
    let ca = AttestationCa::generate(AttestationSubject {
        country: "US".into(),
        organization: "Contoso Ltd".into(),
        common_name: "Contoso Behalf Attestation CA".into(),
    })
    .unwrap();
    let key = ca.issue(Aaguid::parse(AAGUID).unwrap(), 5).unwrap();
    (ca, key)
}

fn trusting(ca: &AttestationCa) -> AttestationCaList {
    let mut builder = AttestationCaListBuilder::new();
    builder
        .insert_device_der(
            ca.certificate_der(),
            uuid::Uuid::parse_str(AAGUID).unwrap(),
            "Behalf vault authenticator".into(),
            BTreeMap::new(),
        )
        .unwrap();
    builder.build()
}

#[test]
fn packed_self_attestation_is_accepted() {
    let (_, registration, credential) = register(Attestation::PackedSelf, None);
    assert_eq!(registration.format, "packed");
    assert_eq!(
        credential.cred_id.as_slice(),
        registration.credential.credential_id.as_slice()
    );
    assert!(credential.user_verified);
    assert!(
        !credential.backup_eligible && !credential.backup_state,
        "device-bound"
    );
    assert_eq!(credential.counter, 0);
}

#[test]
fn packed_full_attestation_chains_to_our_ca() {
    let (ca, key) = attestation_ca();
    let cas = trusting(&ca);
    let (_, registration, credential) = register(Attestation::Packed(key), Some(&cas));
    assert_eq!(registration.format, "packed");
    assert!(credential.user_verified);
}

#[test]
fn packed_full_attestation_from_another_ca_is_not_trusted() {
    let (_, key) = attestation_ca();
    let (stranger, _) = attestation_ca();
    let core = rp();
    let (options, state) = creation_options(&core);
    let authenticator = Authenticator::new(
        AuthenticatorConfig {
            aaguid: Aaguid::parse(AAGUID).unwrap(),
            attestation: Attestation::Packed(key),
        },
        MemoryStore::new(),
    );
    let registration = block_on(authenticator.make_credential_json(&options)).unwrap();
    let reg = as_browser_registration(&registration.response.to_json());
    assert!(
        core.register_credential(&reg, &state, Some(&trusting(&stranger)))
            .is_err()
    );
}

#[test]
fn none_attestation_is_accepted() {
    let (_, registration, _) = register(Attestation::None, None);
    assert_eq!(registration.format, "none");
}

/// Flips one bit of the base64url field `pointer` at byte `index` (counted from the end if negative).
fn tamper(body: &Value, pointer: &str, index: isize) -> Value {
    let mut v = body.clone();
    let text = v.pointer(pointer).unwrap().as_str().unwrap().to_owned();
    let mut bytes = decode_lenient(&text).unwrap();
    let i = if index < 0 {
        bytes.len() - index.unsigned_abs()
    } else {
        index as usize
    };
    bytes[i] ^= 0x01;
    *v.pointer_mut(pointer).unwrap() = json!(b64url(&bytes));
    v
}

#[test]
fn tampered_registrations_are_rejected() {
    for attestation in [
        Attestation::PackedSelf,
        Attestation::Packed(attestation_ca().1),
    ] {
        let core = rp();
        let (options, state) = creation_options(&core);
        let authenticator = Authenticator::new(
            AuthenticatorConfig {
                aaguid: Aaguid::parse(AAGUID).unwrap(),
                attestation,
            },
            MemoryStore::new(),
        );
        let body = block_on(authenticator.make_credential_json(&options))
            .unwrap()
            .response
            .to_json();
        assert!(
            core.register_credential(&as_browser_registration(&body), &state, None)
                .is_ok()
        );

        // A byte of clientDataJSON (inside the challenge's quotes would break JSON, so the origin).
        let client_data =
            decode_lenient(body["response"]["clientDataJSON"].as_str().unwrap()).unwrap();
        let origin_at = String::from_utf8(client_data)
            .unwrap()
            .find("login.")
            .unwrap() as isize;
        let bad = tamper(&body, "/response/clientDataJSON", origin_at);
        assert!(
            core.register_credential(&as_browser_registration(&bad), &state, None)
                .is_err()
        );

        // The signature is the attestation object's last field... but for x5c the certificate
        // follows, so find the bytes by decoding: flip a byte of authData (the rpIdHash, the flags,
        // the public key) and one of the signature.
        let att = decode_lenient(body["response"]["attestationObject"].as_str().unwrap()).unwrap();
        let parsed: ciborium::Value = ciborium::from_reader(&att[..]).unwrap();
        let map = parsed.as_map().unwrap();
        let field = |name: &str| {
            map.iter()
                .find(|(k, _)| k.as_text() == Some(name))
                .unwrap()
                .1
                .clone()
        };
        let auth_data = field("authData").into_bytes().unwrap();
        let sig = field("attStmt")
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some("sig"))
            .unwrap()
            .1
            .as_bytes()
            .unwrap()
            .clone();
        let position =
            |needle: &[u8]| att.windows(needle.len()).position(|w| w == needle).unwrap() as isize;
        let auth_data_at = position(&auth_data);
        let sig_at = position(&sig);
        for offset in [
            auth_data_at + 5,
            auth_data_at + 32,
            auth_data_at + auth_data.len() as isize - 3,
            sig_at + 20,
        ] {
            let bad = tamper(&body, "/response/attestationObject", offset);
            assert!(
                core.register_credential(&as_browser_registration(&bad), &state, None)
                    .is_err(),
                "flipping byte {offset} of the attestation object went unnoticed"
            );
        }
    }
}

fn sign_in(
    core: &WebauthnCore,
    authenticator: &Authenticator<MemoryStore>,
    credential: &Credential,
) -> (Value, webauthn_rs_core::proto::AuthenticationState) {
    let builder = core
        .new_challenge_authenticate_builder(
            vec![credential.clone()],
            Some(UserVerificationPolicy::Required),
        )
        .unwrap();
    let (request, state) = core.generate_challenge_authenticate(builder).unwrap();
    let request_json = serde_json::to_string(&request).unwrap();
    let assertion = block_on(authenticator.get_assertion_json(&request_json)).unwrap();
    (assertion.response.to_json(), state)
}

#[test]
fn assertions_are_accepted_and_the_counter_grows() {
    let (authenticator, _, credential) = register(Attestation::PackedSelf, None);
    let core = rp();
    let mut last = 0;
    for _ in 0..3 {
        let (response, state) = sign_in(&core, &authenticator, &credential);
        let response: PublicKeyCredential = serde_json::from_value(response).unwrap();
        let result = core
            .authenticate_credential(&response, &state)
            .unwrap_or_else(|e| panic!("refused: {e:?}"));
        assert!(result.user_verified());
        assert!(result.counter() > last);
        last = result.counter();
    }
    assert_eq!(last, 3);
}

#[test]
fn tampered_assertions_are_rejected() {
    let (authenticator, _, credential) = register(Attestation::None, None);
    let core = rp();
    let (response, state) = sign_in(&core, &authenticator, &credential);
    let ok: PublicKeyCredential = serde_json::from_value(response.clone()).unwrap();
    assert!(core.authenticate_credential(&ok, &state).is_ok());

    let client_data = String::from_utf8(
        decode_lenient(response["response"]["clientDataJSON"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let cases = [
        ("/response/signature", 10),
        ("/response/signature", -1),
        ("/response/authenticatorData", 0),
        ("/response/authenticatorData", 36),
        (
            "/response/clientDataJSON",
            client_data.find("login.").unwrap() as isize,
        ),
        (
            "/response/clientDataJSON",
            client_data.find("\"challenge\":\"").unwrap() as isize + 14,
        ),
    ];
    for (pointer, index) in cases {
        let bad: PublicKeyCredential =
            serde_json::from_value(tamper(&response, pointer, index)).unwrap();
        assert!(
            core.authenticate_credential(&bad, &state).is_err(),
            "flipping {pointer}[{index}] went unnoticed"
        );
    }
}
