//! A tiny test-only FIDO2 authenticator (P-256, packed self attestation or `none`), written here
//! so the sandbox's tests never depend on Behalf's own authenticator crate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::value::Value as Cbor;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const AAGUID: &str = "6b1d4c7e-2f3a-4b5c-8d9e-0a1b2c3d4e5f";

pub struct TestKey {
    key: SigningKey,
    pub cred_id: Vec<u8>,
    pub aaguid: uuid::Uuid,
    counter: u32,
}

/// How to (mis)behave when creating a credential.
#[derive(Clone)]
pub struct Make {
    pub fmt: &'static str,
    pub origin: String,
    pub rp_id: String,
    pub kind: String,
    pub uv: bool,
    /// Replace the challenge (e.g. to replay an old one).
    pub challenge: Option<String>,
}

impl Default for Make {
    fn default() -> Self {
        Make {
            fmt: "packed",
            origin: "https://login.microsoft.com".into(),
            rp_id: "login.microsoft.com".into(),
            kind: "webauthn.create".into(),
            uv: true,
            challenge: None,
        }
    }
}

fn cbor_bytes(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap_or_else(|e| panic!("cbor: {e}"));
    out
}

impl TestKey {
    pub fn new() -> Self {
        Self::with_aaguid(AAGUID)
    }

    pub fn with_aaguid(aaguid: &str) -> Self {
        let mut rng = rand::rng();
        let key = loop {
            let secret: [u8; 32] = rng.random();
            if let Ok(k) = SigningKey::from_slice(&secret) {
                break k;
            }
        };
        let cred_id: [u8; 32] = rng.random();
        TestKey {
            key,
            cred_id: cred_id.to_vec(),
            aaguid: uuid::Uuid::parse_str(aaguid).unwrap_or_default(),
            counter: 0,
        }
    }

    /// Another key that claims the same credential id (to test duplicate detection).
    pub fn clone_id(&self) -> Self {
        let mut k = TestKey::with_aaguid(&self.aaguid.to_string());
        k.cred_id = self.cred_id.clone();
        k
    }

    fn cose_key(&self) -> Cbor {
        let point = self.key.verifying_key().to_sec1_point(false);
        let b = point.as_bytes();
        Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-2).into()), Cbor::Bytes(b[1..33].to_vec())),
            (Cbor::Integer((-3).into()), Cbor::Bytes(b[33..65].to_vec())),
        ])
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let sig: Signature = self.key.sign(msg);
        sig.to_der().as_bytes().to_vec()
    }

    /// Builds the Graph `POST …/fido2Methods` body from creationOptions (the Graph answer).
    pub fn register_body(&mut self, options: &Value, how: &Make) -> Value {
        let pk = if options.get("value").is_some() {
            &options["value"]["publicKey"]
        } else {
            &options["publicKey"]
        };
        let challenge = how
            .challenge
            .clone()
            .unwrap_or_else(|| pk["challenge"].as_str().unwrap_or_default().to_string());
        let client_data = json!({"type": how.kind, "challenge": challenge, "origin": how.origin, "crossOrigin": false}).to_string();
        let mut auth_data = Sha256::digest(how.rp_id.as_bytes()).to_vec();
        auth_data.push(0x01 | 0x40 | if how.uv { 0x04 } else { 0 });
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(self.aaguid.as_bytes());
        auth_data.extend_from_slice(&(self.cred_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.cred_id);
        auth_data.extend_from_slice(&cbor_bytes(&self.cose_key()));
        let att_stmt = match how.fmt {
            "packed" => {
                let mut msg = auth_data.clone();
                msg.extend_from_slice(&Sha256::digest(client_data.as_bytes()));
                Cbor::Map(vec![
                    (Cbor::Text("alg".into()), Cbor::Integer((-7).into())),
                    (Cbor::Text("sig".into()), Cbor::Bytes(self.sign(&msg))),
                ])
            }
            "none" => Cbor::Map(vec![]),
            _ => Cbor::Map(vec![(Cbor::Text("sig".into()), Cbor::Bytes(vec![0; 8]))]),
        };
        let att_obj = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text(how.fmt.into())),
            (Cbor::Text("attStmt".into()), att_stmt),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        let id = URL_SAFE_NO_PAD.encode(&self.cred_id);
        json!({
            "displayName": "Test key",
            "publicKeyCredential": {
                "id": id,
                "response": {
                    "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data.as_bytes()),
                    "attestationObject": URL_SAFE_NO_PAD.encode(cbor_bytes(&att_obj)),
                },
                "clientExtensionResults": {}
            }
        })
    }

    /// Answers `/sandbox/signin/begin` with an assertion for `/sandbox/signin/finish`.
    pub fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        let pk = &options["publicKey"];
        let client_data = json!({"type": "webauthn.get", "challenge": pk["challenge"], "origin": "https://login.microsoft.com", "crossOrigin": false}).to_string();
        let mut auth_data =
            Sha256::digest(pk["rpId"].as_str().unwrap_or_default().as_bytes()).to_vec();
        auth_data.push(0x01 | 0x04);
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        let mut msg = auth_data.clone();
        msg.extend_from_slice(&Sha256::digest(client_data.as_bytes()));
        let id = URL_SAFE_NO_PAD.encode(&self.cred_id);
        json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(&auth_data),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(client_data.as_bytes()),
                "signature": URL_SAFE_NO_PAD.encode(self.sign(&msg)),
            },
            "clientExtensionResults": {}
        })
    }

    /// Rewinds the signature counter (a cloned authenticator).
    pub fn set_counter(&mut self, c: u32) {
        self.counter = c;
    }
}
