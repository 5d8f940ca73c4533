//! Every test runs on SQLite and on PostgreSQL (`BEHALF_TEST_POSTGRES`).

use base64::Engine;
use behalf_authenticator::{
    Aaguid, Attestation, Authenticator, AuthenticatorConfig, CreationOptions, RequestOptions,
    UserVerification,
};
use behalf_store::testing::TestStore;
use behalf_store::{Backend, each_backend};

use super::*;

const RP: &str = "login.microsoft.com";

async fn workspace(store: &Store, name: &str) -> WorkspaceId {
    store.ensure_workspace(name).await.unwrap().id
}

fn options(n: usize) -> CreationOptions {
    let user = b64url(format!("OID:user-{n}").as_bytes());
    CreationOptions::from_json(&format!(
        r#"{{"value":{{"publicKey":{{"challenge":"Y2hhbGxlbmdlLWZvci11c2VyLXt7bn19","rp":{{"id":"{RP}","name":"Microsoft"}},
        "user":{{"id":"{user}","name":"user{n}@contoso.com","displayName":"User {n}"}},
        "pubKeyCredParams":[{{"type":"public-key","alg":-7}}],"attestation":"direct",
        "authenticatorSelection":{{"requireResidentKey":true,"userVerification":"required"}},
        "extensions":{{"hmacCreateSecret":true,"credentialProtectionPolicy":"userVerificationOptional"}}}}}}}}"#
    ))
    .unwrap()
}

fn authenticator(vault: Vault) -> Authenticator<Vault> {
    Authenticator::new(
        AuthenticatorConfig {
            aaguid: Aaguid([0x42; 16]),
            attestation: Attestation::PackedSelf,
        },
        vault,
    )
}

fn request(credential_id: &[u8]) -> RequestOptions {
    RequestOptions {
        challenge: "c2lnbi1pbi1jaGVjaw".into(),
        rp_id: RP.into(),
        allow_credentials: vec![credential_id.to_vec()],
        user_verification: UserVerification::Required,
    }
}

/// Every form in which a secret could sit in a database dump.
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        secret.to_vec(),
        hex.into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(secret)
            .into_bytes(),
        b64url(secret).into_bytes(),
    ]
}

/// The database's bytes: the SQLite file and its WAL, or every vault row as PostgreSQL text.
async fn database_bytes(store: &TestStore) -> Vec<u8> {
    match store.backend() {
        Backend::Sqlite => {
            let path = store.sqlite_path().unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            let mut wal = path.into_os_string();
            wal.push("-wal");
            bytes.extend(std::fs::read(wal).unwrap_or_default());
            bytes
        }
        Backend::Postgres => {
            let mut dump = Vec::new();
            for table in ["vault_credentials", "vault_secrets"] {
                let sql = format!("SELECT CAST(row_to_json(t) AS TEXT) FROM {table} t");
                let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
                for row in rows {
                    dump.extend(row.into_bytes());
                }
            }
            dump
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

each_backend!(
    the_database_holds_no_key_material_in_clear,
    |store: TestStore| async move {
        let ws = workspace(&store, "scan").await;
        let master = MasterKey::generate();
        let vault = Vault::new(store.store.clone(), ws, master.clone());
        let a = authenticator(vault.clone());
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(
                a.make_credential(&options(n))
                    .await
                    .unwrap()
                    .credential
                    .credential_id,
            );
        }
        vault
            .put_secret(
                "attestation-ca-key",
                b"-----BEGIN PRIVATE KEY----- CA secret",
            )
            .await
            .unwrap();

        let dump = database_bytes(&store).await;
        // The scan sees the rows it checks: the (public) credential id is there, raw or as hex.
        let visible = if store.backend() == Backend::Sqlite {
            forms(&ids[0]).swap_remove(0)
        } else {
            forms(&ids[0]).swap_remove(1)
        };
        assert!(
            contains(&dump, &visible),
            "the scan does not see the vault rows"
        );
        let mut secrets: Vec<Vec<u8>> = vec![master.expose().to_vec(), b"CA secret".to_vec()];
        for id in &ids {
            let credential = vault.load(RP, id).await.unwrap().unwrap();
            secrets.push(credential.secret.private_key.expose().to_vec());
            secrets.push(
                credential
                    .secret
                    .cred_random
                    .as_ref()
                    .unwrap()
                    .expose()
                    .to_vec(),
            );
            let row = store
                .vault_get_credential(ws, RP, id)
                .await
                .unwrap()
                .unwrap();
            let identity = RowIdentity::Credential {
                rp_id: RP,
                credential_id: id,
            };
            secrets.push(
                vault
                    .unwrap_data_key(&identity, &row.key)
                    .unwrap()
                    .expose()
                    .to_vec(),
            );
        }
        assert_eq!(secrets.len(), 2 + 3 * ids.len());
        for secret in &secrets {
            for form in forms(secret) {
                assert!(
                    !contains(&dump, &form),
                    "{} bytes of key material found in clear in the {:?} database",
                    secret.len(),
                    store.backend()
                );
            }
        }
    }
);

each_backend!(
    credentials_survive_a_restart_and_count_up,
    |store: TestStore| async move {
        let ws = workspace(&store, "restart").await;
        let master = MasterKey::generate();
        let reg = authenticator(Vault::new(store.store.clone(), ws, master.clone()))
            .make_credential(&options(1))
            .await
            .unwrap();

        // A second instance (same database, same master key) signs with it; counters are shared.
        let other = authenticator(Vault::new(store.store.clone(), ws, master.clone()));
        assert_eq!(
            other
                .get_assertion(&request(&reg.credential.credential_id))
                .await
                .unwrap()
                .sign_count,
            1
        );
        let first = authenticator(Vault::new(store.store.clone(), ws, master));
        assert_eq!(
            first
                .get_assertion(&request(&reg.credential.credential_id))
                .await
                .unwrap()
                .sign_count,
            2
        );
        let loaded = first
            .store()
            .load(RP, &reg.credential.credential_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            loaded.info,
            CredentialInfo {
                sign_count: 2,
                ..reg.credential.clone()
            }
        );

        // The exclude list is honoured through the database.
        let mut again = options(1);
        again.exclude_credentials = vec![vec![0; 32], reg.credential.credential_id.clone()];
        let err = first.make_credential(&again).await.unwrap_err();
        assert!(
            matches!(err, AuthenticatorError::CredentialExcluded { .. }),
            "{err}"
        );

        // Another workspace sees nothing of it.
        let stranger = Vault::new(
            store.store.clone(),
            workspace(&store, "other").await,
            MasterKey::generate(),
        );
        assert!(
            stranger
                .load(RP, &reg.credential.credential_id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(stranger.list(RP, None).await.unwrap().is_empty());
        assert_eq!(
            first
                .store()
                .list(RP, Some(&reg.credential.user_handle))
                .await
                .unwrap()
                .len(),
            1
        );
    }
);

each_backend!(
    a_wrong_master_key_or_a_moved_row_does_not_open,
    |store: TestStore| async move {
        let ws = workspace(&store, "wrong").await;
        let vault = Vault::new(store.store.clone(), ws, MasterKey::generate());
        let a = authenticator(vault.clone());
        let one = a
            .make_credential(&options(1))
            .await
            .unwrap()
            .credential
            .credential_id;
        let two = a
            .make_credential(&options(2))
            .await
            .unwrap()
            .credential
            .credential_id;

        let err = Vault::new(store.store.clone(), ws, MasterKey::generate())
            .load(RP, &one)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not have"), "{err}");

        // Copy credential one's sealed key and data key onto credential two: it must not open.
        let row = store
            .vault_get_credential(ws, RP, &one)
            .await
            .unwrap()
            .unwrap();
        sqlx::query("UPDATE vault_credentials SET sealed_secret = $1, wrapped_data_key = $2 WHERE credential_id = $3")
        .bind(row.sealed_secret.as_slice())
        .bind(row.key.wrapped_data_key.as_slice())
        .bind(two.as_slice())
        .execute(store.pool())
        .await
        .unwrap();
        let err = vault.load(RP, &two).await.unwrap_err().to_string();
        assert!(err.contains("altered or moved"), "{err}");
        assert!(vault.load(RP, &one).await.unwrap().is_some());
    }
);

each_backend!(
    rotation_rewraps_data_keys_and_leaves_sealed_keys_alone,
    |store: TestStore| async move {
        let ws = workspace(&store, "rotate").await;
        let old = MasterKey::generate();
        let before_vault = Vault::new(store.store.clone(), ws, old.clone());
        let a = authenticator(before_vault.clone());
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(
                a.make_credential(&options(n))
                    .await
                    .unwrap()
                    .credential
                    .credential_id,
            );
        }
        before_vault
            .put_secret("client-secret", b"s3cret")
            .await
            .unwrap();
        let before: Vec<VaultCredentialRow> =
            store.vault_list_credentials(ws, RP, None).await.unwrap();
        let keys_before: Vec<Vec<u8>> = futures_collect(&before_vault, &ids).await;

        let new = MasterKey::generate();
        let rotating =
            Vault::new(store.store.clone(), ws, new.clone()).with_previous_keys(vec![old.clone()]);
        // Before rotation, the new instance still opens old rows through the previous key.
        assert!(rotating.load(RP, &ids[0]).await.unwrap().is_some());
        assert_eq!(
            rotating.rotate().await.unwrap(),
            RotationReport { rewrapped: 4 }
        );
        assert_eq!(
            rotating.rotate().await.unwrap(),
            RotationReport { rewrapped: 0 },
            "idempotent"
        );
        assert_eq!(
            rotating.master_key_usage().await.unwrap(),
            vec![(new.id().to_owned(), 4)]
        );

        let after: Vec<VaultCredentialRow> =
            store.vault_list_credentials(ws, RP, None).await.unwrap();
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.credential_id, a.credential_id);
            assert_eq!(
                b.sealed_secret, a.sealed_secret,
                "private-key ciphertext untouched"
            );
            assert_ne!(b.key, a.key, "data key re-wrapped");
            assert_eq!(a.key.master_key_id, new.id());
        }

        // The new key alone now opens everything, and yields the same private keys; the old alone nothing.
        let only_new = Vault::new(store.store.clone(), ws, new);
        assert_eq!(futures_collect(&only_new, &ids).await, keys_before);
        assert_eq!(
            only_new
                .get_secret("client-secret")
                .await
                .unwrap()
                .unwrap()
                .expose(),
            b"s3cret"
        );
        let only_old = Vault::new(store.store.clone(), ws, old);
        assert!(only_old.load(RP, &ids[0]).await.is_err());
        assert!(only_old.get_secret("client-secret").await.is_err());
    }
);

each_backend!(
    rotating_to_a_new_key_switches_every_clone_and_the_old_key_opens_nothing,
    |store: TestStore| async move {
        let ws = workspace(&store, "rotate-to").await;
        let old = MasterKey::generate();
        let vault = Vault::new(store.store.clone(), ws, old.clone());
        // The engine holds a clone of the app's vault: it must follow the rotation.
        let engines = authenticator(vault.clone());
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(
                engines
                    .make_credential(&options(n))
                    .await
                    .unwrap()
                    .credential
                    .credential_id,
            );
        }
        vault.put_secret("pepper", b"pepper-bytes").await.unwrap();

        let new = MasterKey::generate();
        assert_eq!(
            vault.rotate_to(new.clone()).await.unwrap(),
            RotationReport { rewrapped: 4 }
        );
        assert_eq!(vault.master_key_id(), new.id());
        assert_eq!(
            vault.master_key_usage().await.unwrap(),
            vec![(new.id().to_owned(), 4)]
        );
        assert!(
            vault.rotate_to(new.clone()).await.is_err(),
            "rotating to the current key is refused"
        );

        // Every credential still signs, through the clone made before the rotation.
        for id in &ids {
            let signed = engines.get_assertion(&request(id)).await.unwrap();
            assert_eq!(signed.sign_count, 1);
        }
        // New rows are wrapped with the new key.
        let fresh = engines
            .make_credential(&options(9))
            .await
            .unwrap()
            .credential
            .credential_id;
        assert_eq!(
            vault.master_key_usage().await.unwrap(),
            vec![(new.id().to_owned(), 5)]
        );

        // The old key opens nothing, not even in this instance (it forgot it).
        let only_old = authenticator(Vault::new(store.store.clone(), ws, old.clone()));
        for id in ids.iter().chain([&fresh]) {
            assert!(only_old.get_assertion(&request(id)).await.is_err());
        }
        assert!(
            Vault::new(store.store.clone(), ws, old)
                .get_secret("pepper")
                .await
                .is_err()
        );
        let only_new = Vault::new(store.store.clone(), ws, new);
        assert_eq!(
            only_new
                .get_secret("pepper")
                .await
                .unwrap()
                .unwrap()
                .expose(),
            b"pepper-bytes"
        );
    }
);

#[test]
fn a_key_file_is_written_private_once_and_replaced_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let old = MasterKey::load_or_create(&path).unwrap();
    let pending = MasterKey::pending_path(&path);
    assert_eq!(pending, dir.path().join("master.key.next"));
    let new = MasterKey::generate();
    new.write_new(&pending).unwrap();
    assert!(
        new.write_new(&pending).is_err(),
        "a waiting key is never overwritten"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pending).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(MasterKey::load(&path).unwrap().id(), old.id());
    MasterKey::replace_file(&pending, &path).unwrap();
    assert_eq!(MasterKey::load(&path).unwrap().id(), new.id());
    assert!(!pending.exists());
}

async fn futures_collect(vault: &Vault, ids: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for id in ids {
        keys.push(
            vault
                .load(RP, id)
                .await
                .unwrap()
                .unwrap()
                .secret
                .private_key
                .expose()
                .to_vec(),
        );
    }
    keys
}

each_backend!(
    a_destroyed_credential_is_gone,
    |store: TestStore| async move {
        let ws = workspace(&store, "destroy").await;
        let vault = Vault::new(store.store.clone(), ws, MasterKey::generate());
        let a = authenticator(vault.clone());
        let id = a
            .make_credential(&options(1))
            .await
            .unwrap()
            .credential
            .credential_id;
        let row = store
            .vault_get_credential(ws, RP, &id)
            .await
            .unwrap()
            .unwrap();

        assert!(vault.delete(RP, &id).await.unwrap());
        assert!(!vault.delete(RP, &id).await.unwrap());
        assert!(vault.load(RP, &id).await.unwrap().is_none());
        assert!(matches!(
            a.get_assertion(&request(&id)).await,
            Err(AuthenticatorError::NoCredentials { .. })
        ));

        if store.backend() == Backend::Sqlite {
            // secure_delete overwrote the page; once the WAL is checkpointed, the sealed bytes are
            // nowhere in the files.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(store.pool())
                .await
                .unwrap();
            let dump = database_bytes(&store).await;
            assert!(!contains(&dump, &row.sealed_secret));
            assert!(!contains(&dump, &row.key.wrapped_data_key));
        }
    }
);

each_backend!(secrets_round_trip, |store: TestStore| async move {
    let ws = workspace(&store, "secrets").await;
    let vault = Vault::new(store.store.clone(), ws, MasterKey::generate());
    assert!(vault.get_secret("ca").await.unwrap().is_none());
    vault.put_secret("ca", b"one").await.unwrap();
    vault.put_secret("ca", b"two").await.unwrap();
    assert_eq!(
        vault.get_secret("ca").await.unwrap().unwrap().expose(),
        b"two"
    );
    assert!(vault.delete_secret("ca").await.unwrap());
    assert!(vault.get_secret("ca").await.unwrap().is_none());
});
