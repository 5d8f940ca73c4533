//! Per-operation cost of the two ceremonies on the in-memory store:
//! `cargo bench -p behalf-authenticator --bench ceremonies`.

use std::hint::black_box;

use behalf_authenticator::*;
use criterion::{Criterion, criterion_group, criterion_main};

const GRAPH_OPTIONS: &str = r#"{"value":{"challengeTimeoutDateTime":"2026-11-20T10:05:00Z","publicKey":{
  "challenge":"ZXlKaGJHY2lPaUpJVXpJMU5pSjkuZXlKMFpYTjBJam9pZEdWemRDSjkuc2lnbmF0dXJl",
  "rp":{"id":"login.microsoft.com","name":"Microsoft"},
  "user":{"id":"T0lEOjE4MDA0MjA3LTI5NDYtNGQ2My05NTE1LTZkZDgzMjJhMmE0ZA","name":"AdeleV@contoso.com","displayName":"Adele Vance"},
  "pubKeyCredParams":[{"type":"public-key","alg":-7},{"type":"public-key","alg":-257}],
  "excludeCredentials":[{"id":"AQIDBA2","type":"public-key"}],
  "authenticatorSelection":{"authenticatorAttachment":"cross-platform","requireResidentKey":true,"userVerification":"required"},
  "attestation":"direct",
  "extensions":{"hmacCreateSecret":true,"enforceCredentialProtectionPolicy":true,"credentialProtectionPolicy":"userVerificationOptional"},
  "timeout":300000}}}"#;

fn authenticator(attestation: Attestation) -> Authenticator<MemoryStore> {
    Authenticator::new(
        AuthenticatorConfig {
            aaguid: Aaguid([0x42; 16]),
            attestation,
        },
        MemoryStore::new(),
    )
}

fn ceremonies(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ca = AttestationCa::generate(AttestationSubject {
        country: "US".into(),
        organization: "Contoso Ltd".into(),
        common_name: "Contoso Behalf Attestation CA".into(),
    })
    .unwrap();
    let key = ca.issue(Aaguid([0x42; 16]), 5).unwrap();

    let mut group = c.benchmark_group("make_credential");
    for (name, attestation) in [
        ("none", Attestation::None),
        ("packed_self", Attestation::PackedSelf),
        ("packed_x5c", Attestation::Packed(key)),
    ] {
        let a = authenticator(attestation);
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(a.make_credential_json(black_box(GRAPH_OPTIONS)))
                    .unwrap()
            })
        });
    }
    group.finish();

    let a = authenticator(Attestation::None);
    let registration = runtime
        .block_on(a.make_credential_json(GRAPH_OPTIONS))
        .unwrap();
    let request = RequestOptions {
        challenge: "c2lnbi1pbi1jaGFsbGVuZ2UtMTIzNDU2Nzg".into(),
        rp_id: "login.microsoft.com".into(),
        allow_credentials: vec![registration.credential.credential_id],
        user_verification: UserVerification::Required,
    };
    c.bench_function("get_assertion", |b| {
        b.iter(|| {
            runtime
                .block_on(a.get_assertion(black_box(&request)))
                .unwrap()
        })
    });
    c.bench_function("creation_options_parse", |b| {
        b.iter(|| CreationOptions::from_json(black_box(GRAPH_OPTIONS)).unwrap())
    });
}

criterion_group!(benches, ceremonies);
criterion_main!(benches);
