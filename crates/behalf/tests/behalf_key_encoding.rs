//! Behalf Key's encoding checked by an independent verifier, as issue 17 asks: the extension's
//! own JavaScript (`extension/test/emit-vectors.mjs`, run with `node`) makes a local-key
//! credential (CTAP2 canonical CBOR attestation object with `fmt: "none"`, authenticator data,
//! COSE key, clientDataJSON) and signs assertions with it (DER signatures); webauthn-rs-core
//! verifies them against challenges it issued itself, the way the sandbox's Graph and sign-in
//! page verify passkeys (crates/sandbox/src/authmethods.rs, signin.rs).
//!
//! `node` (20 or later) is required: without it these tests fail and say so, they never skip.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use url::Url;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AttestationFormat, AuthenticatorAttachment, COSEAlgorithm,
    PublicKeyCredential, RegisterPublicKeyCredential, UserVerificationPolicy,
};

fn extension_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../extension")
}

/// `extension/test/emit-vectors.mjs` running under `node`, asked one JSON line at a time.
struct Emitter {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Emitter {
    fn start() -> Emitter {
        let script = extension_dir().join("test/emit-vectors.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `node {}`: {e}. Behalf Key's encoding tests need Node.js 20 or \
                     later on PATH (apt-get install nodejs)",
                    script.display()
                )
            });
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Emitter {
            child,
            stdin,
            stdout,
        }
    }

    fn ask(&mut self, question: &Value) -> Value {
        writeln!(self.stdin, "{question}").expect("node reads the question");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("node answers a line");
        assert!(!line.is_empty(), "emit-vectors.mjs ended without answering");
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("emit-vectors.mjs answered no JSON ({e}): {line}"));
        assert!(
            answer.get("error").is_none(),
            "emit-vectors.mjs failed: {}",
            answer["error"]
        );
        answer
    }
}

impl Drop for Emitter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relying party verifying with webauthn-rs-core, as Entra's passkey registration asks
/// (ES256 or RS256, resident key, user verification required, cross-platform).
fn relying_party(rp_id: &str, origin: &str) -> WebauthnCore {
    WebauthnCore::new_unsafe_experts_only(
        "Behalf Key test",
        rp_id,
        vec![Url::parse(origin).unwrap()],
        Duration::from_secs(300),
        None,
        None,
    )
}

fn register(
    rp: &WebauthnCore,
    emitter: &mut Emitter,
    origin: &str,
) -> webauthn_rs_core::proto::Credential {
    let builder = rp
        .new_challenge_register_builder(b"alice-user-handle", "alice@contoso.com", "Alice")
        .unwrap()
        .attestation(AttestationConveyancePreference::Direct)
        .user_verification_policy(UserVerificationPolicy::Required)
        .credential_algorithms(vec![COSEAlgorithm::ES256, COSEAlgorithm::RS256])
        .require_resident_key(true)
        .authenticator_attachment(Some(AuthenticatorAttachment::CrossPlatform));
    let (ccr, state) = rp.generate_challenge_register(builder).unwrap();
    let options = serde_json::to_value(&ccr).unwrap();
    let answer = emitter.ask(&json!({"origin": origin, "publicKey": options["publicKey"]}));
    let registration: RegisterPublicKeyCredential =
        serde_json::from_value(answer["registration"].clone())
            .unwrap_or_else(|e| panic!("the registration JSON is not a credential: {e}\n{answer}"));
    rp.register_credential(&registration, &state, None)
        .unwrap_or_else(|e| {
            panic!("webauthn-rs-core refused Behalf Key's registration: {e:?}\n{answer}")
        })
}

fn assertion_for(
    rp: &WebauthnCore,
    emitter: &mut Emitter,
    credential: &webauthn_rs_core::proto::Credential,
    tamper: bool,
) -> Result<webauthn_rs_core::proto::AuthenticationResult, webauthn_rs_core::error::WebauthnError> {
    let builder = rp
        .new_challenge_authenticate_builder(vec![credential.clone()], None)
        .unwrap();
    let (rcr, state) = rp.generate_challenge_authenticate(builder).unwrap();
    let options = serde_json::to_value(&rcr).unwrap();
    let mut question = json!({"publicKey": options["publicKey"]});
    if tamper {
        question["tamper"] = json!("signature");
    }
    let answer = emitter.ask(&question);
    let assertion: PublicKeyCredential = serde_json::from_value(answer["assertion"].clone())
        .unwrap_or_else(|e| panic!("the assertion JSON is not a credential: {e}\n{answer}"));
    rp.authenticate_credential(&assertion, &state)
}

/// A local key's registration for Microsoft (rp id and origin as Entra uses them) verifies,
/// with user verification and `fmt: "none"`; its assertions verify too, each with a
/// higher counter, and one whose signature lost a bit does not.
#[test]
fn webauthn_rs_verifies_behalf_keys_registration_and_assertions() {
    let origin = "https://login.microsoft.com";
    let rp = relying_party("login.microsoft.com", origin);
    let mut emitter = Emitter::start();
    let credential = register(&rp, &mut emitter, origin);
    assert_eq!(
        credential.registration_policy,
        UserVerificationPolicy::Required,
        "the registration carried UV"
    );
    assert_eq!(
        credential.attestation_format,
        AttestationFormat::None,
        "the attestation object says fmt none"
    );

    let first = assertion_for(&rp, &mut emitter, &credential, false)
        .unwrap_or_else(|e| panic!("webauthn-rs-core refused Behalf Key's assertion: {e:?}"));
    assert!(first.user_verified());
    assert_eq!(first.cred_id(), &credential.cred_id);
    let second = assertion_for(&rp, &mut emitter, &credential, false).unwrap();
    assert!(
        second.counter() > first.counter(),
        "the counter moves forward: {} then {}",
        first.counter(),
        second.counter()
    );

    let tampered = assertion_for(&rp, &mut emitter, &credential, true);
    assert!(
        tampered.is_err(),
        "a signature with one bit flipped must not verify"
    );
}

/// An RP id that is a registrable suffix of the origin's host (a second website on a
/// subdomain, `shop.contoso.example` using `contoso.example`) verifies as well: the RP id hash
/// and the origin are each the right one.
#[test]
fn a_parent_domain_rp_id_verifies() {
    let origin = "https://shop.contoso.example";
    let rp = relying_party("contoso.example", origin);
    let mut emitter = Emitter::start();
    let credential = register(&rp, &mut emitter, origin);
    let result = assertion_for(&rp, &mut emitter, &credential, false)
        .unwrap_or_else(|e| panic!("webauthn-rs-core refused the assertion: {e:?}"));
    assert!(result.user_verified());
}
