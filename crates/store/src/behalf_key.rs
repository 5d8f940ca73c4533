//! Behalf Key: pairing codes (kept as their HMAC), paired devices (by their key's thumbprint) and
//! the users' PINs (argon2id, with CTAP's retry counter). See docs/BEHALF_KEY.md.

use behalf_domain::{
    KeyDevice, KeyDeviceId, KeyPairing, KeyPairingId, KeyPin, Millis, UserId, WorkspaceId,
};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::sessions::{TOUCH_INTERVAL_MS, needs_touch};
use crate::{Store, StoreError};

const DEVICE_COLUMNS: &str = "id, workspace_id, user_id, name, role, thumbprint, public_key_jwk, \
     created_at, last_seen_at, revoked_at";
const PAIRING_COLUMNS: &str =
    "id, workspace_id, user_id, role, created_by, created_at, expires_at, used_at";

fn device_from(row: &AnyRow) -> Result<KeyDevice, StoreError> {
    let r = Reader::new(row, "key_devices");
    Ok(KeyDevice {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        user_id: r.parse("user_id")?,
        name: r.text("name")?,
        role: r.parse("role")?,
        thumbprint: r.text("thumbprint")?,
        public_key_jwk: r.text("public_key_jwk")?,
        created_at: r.int("created_at")?,
        last_seen_at: r.opt_int("last_seen_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

fn pairing_from(row: &AnyRow) -> Result<KeyPairing, StoreError> {
    let r = Reader::new(row, "key_pairings");
    Ok(KeyPairing {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        user_id: r.parse("user_id")?,
        role: r.parse("role")?,
        created_by: r.text("created_by")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        used_at: r.opt_int("used_at")?,
    })
}

/// What a pairing writes besides the device: the user's PIN when they had none (or it was
/// blocked), as an argon2id hash.
#[derive(Debug, Clone, Copy)]
pub enum PinOnPairing<'a> {
    /// The user's PIN stays as it is (the pairing checked it).
    Keep,
    /// The PIN is set to this hash, with all its retries.
    Set(&'a str),
}

/// The outcome of taking one PIN attempt.
#[derive(Clone, PartialEq, Eq)]
pub enum PinAttempt {
    /// The user has no PIN.
    NoPin,
    /// The PIN is blocked (no retries left): nothing was taken.
    Blocked,
    /// One retry was taken; `retries_left` is what remains if this attempt is wrong.
    Taken { hash: String, retries_left: i64 },
}

impl std::fmt::Debug for PinAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinAttempt::NoPin => f.write_str("NoPin"),
            PinAttempt::Blocked => f.write_str("Blocked"),
            PinAttempt::Taken { retries_left, .. } => f
                .debug_struct("Taken")
                .field("hash", &"<hidden>")
                .field("retries_left", retries_left)
                .finish(),
        }
    }
}

impl Store {
    /// Records a pairing code issued for a user (`code_hash`: its HMAC).
    pub async fn create_key_pairing(
        &self,
        pairing: &KeyPairing,
        code_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO key_pairings (id, workspace_id, user_id, role, code_hash, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(pairing.id.to_string())
        .bind(pairing.workspace_id.to_string())
        .bind(pairing.user_id.to_string())
        .bind(pairing.role.as_str())
        .bind(code_hash)
        .bind(&pairing.created_by)
        .bind(pairing.created_at)
        .bind(pairing.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The unused pairing whose code hashes to `code_hash`, if it has not expired at `now`.
    pub async fn live_key_pairing(
        &self,
        code_hash: &str,
        now: Millis,
    ) -> Result<Option<KeyPairing>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PAIRING_COLUMNS} FROM key_pairings \
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2"
        )))
        .bind(code_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(pairing_from).transpose()
    }

    /// Pairs `device` through `pairing`: in one transaction the pairing is used (only if it is
    /// still unused and unexpired at `now`: a code pairs once, even under a race), the device is
    /// recorded and, with [`PinOnPairing::Set`], the user's PIN is set with all its retries.
    /// `false` when the pairing was no longer live.
    pub async fn pair_key_device(
        &self,
        pairing: KeyPairingId,
        device: &KeyDevice,
        pin: PinOnPairing<'_>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let used = sqlx::query(
            "UPDATE key_pairings SET used_at = $1 \
             WHERE id = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(pairing.to_string())
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO key_devices ({DEVICE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(device.id.to_string())
        .bind(device.workspace_id.to_string())
        .bind(device.user_id.to_string())
        .bind(&device.name)
        .bind(device.role.as_str())
        .bind(&device.thumbprint)
        .bind(&device.public_key_jwk)
        .bind(device.created_at)
        .bind(device.last_seen_at)
        .bind(device.revoked_at)
        .execute(&mut *tx)
        .await?;
        if let PinOnPairing::Set(hash) = pin {
            sqlx::query(
                "INSERT INTO key_pins (user_id, workspace_id, pin_hash, retries, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (user_id) DO UPDATE SET pin_hash = $3, retries = $4, updated_at = $5",
            )
            .bind(device.user_id.to_string())
            .bind(device.workspace_id.to_string())
            .bind(hash)
            .bind(KeyPin::MAX_RETRIES)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The device whose key has this thumbprint, revoked or not.
    pub async fn key_device_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<KeyDevice>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM key_devices WHERE thumbprint = $1"
        )))
        .bind(thumbprint)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(device_from).transpose()
    }

    pub async fn key_device(&self, id: KeyDeviceId) -> Result<Option<KeyDevice>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM key_devices WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(device_from).transpose()
    }

    /// A user's devices, newest first, revoked ones included.
    pub async fn list_key_devices(
        &self,
        workspace_id: WorkspaceId,
        user_id: UserId,
    ) -> Result<Vec<KeyDevice>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM key_devices \
             WHERE workspace_id = $1 AND user_id = $2 ORDER BY created_at DESC, id DESC"
        )))
        .bind(workspace_id.to_string())
        .bind(user_id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(device_from).collect()
    }

    /// Revokes a device of the workspace; `false` when it was already revoked or is not there.
    pub async fn revoke_key_device(
        &self,
        workspace_id: WorkspaceId,
        id: KeyDeviceId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE key_devices SET revoked_at = $1 \
             WHERE id = $2 AND workspace_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id.to_string())
        .bind(workspace_id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records that the device was seen at `now`, unless it was within [`TOUCH_INTERVAL_MS`].
    pub async fn touch_key_device(
        &self,
        device: &KeyDevice,
        now: Millis,
    ) -> Result<(), StoreError> {
        if !needs_touch(device.last_seen_at, now) {
            return Ok(());
        }
        sqlx::query(
            "UPDATE key_devices SET last_seen_at = $1 WHERE id = $2 \
             AND (last_seen_at IS NULL OR last_seen_at <= $3)",
        )
        .bind(now)
        .bind(device.id.to_string())
        .bind(now - TOUCH_INTERVAL_MS)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The user's PIN, if they have one.
    pub async fn key_pin(&self, user_id: UserId) -> Result<Option<KeyPin>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, pin_hash, retries, updated_at FROM key_pins WHERE user_id = $1",
        )
        .bind(user_id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let r = Reader::new(&row, "key_pins");
            Ok(KeyPin {
                user_id: r.parse("user_id")?,
                hash: r.text("pin_hash")?,
                retries: r.int("retries")?,
                updated_at: r.int("updated_at")?,
            })
        })
        .transpose()
    }

    /// Takes one PIN attempt before the PIN is checked, as CTAP 2.1 §6.5.5.5 does ("decrement
    /// pinRetries by 1" first): however many guesses arrive at once, no more than the retries
    /// left are ever checked. A right PIN then gives the retries back
    /// ([`Store::key_pin_verified`]).
    pub async fn take_key_pin_attempt(
        &self,
        user_id: UserId,
        now: Millis,
    ) -> Result<PinAttempt, StoreError> {
        let row = sqlx::query(
            "UPDATE key_pins SET retries = retries - 1, updated_at = $1 \
             WHERE user_id = $2 AND retries > 0 RETURNING pin_hash, retries",
        )
        .bind(now)
        .bind(user_id.to_string())
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = row {
            let r = Reader::new(&row, "key_pins");
            return Ok(PinAttempt::Taken {
                hash: r.text("pin_hash")?,
                retries_left: r.int("retries")?,
            });
        }
        Ok(match self.key_pin(user_id).await? {
            None => PinAttempt::NoPin,
            Some(_) => PinAttempt::Blocked,
        })
    }

    /// A right PIN: its retries are full again (CTAP 2.1 §6.5.5.5: "resets pinRetries to the
    /// maximum"). A PIN blocked meanwhile stays blocked.
    pub async fn key_pin_verified(&self, user_id: UserId, now: Millis) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE key_pins SET retries = $1, updated_at = $2 WHERE user_id = $3 AND retries > 0",
        )
        .bind(KeyPin::MAX_RETRIES)
        .bind(now)
        .bind(user_id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the website origin a passkey was registered at, and by whom.
    pub async fn record_passkey_origin(
        &self,
        passkey_id: behalf_domain::PasskeyId,
        origin: &str,
        registered_by: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO passkey_origins (passkey_id, origin, registered_by, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(passkey_id.to_string())
        .bind(origin)
        .bind(registered_by)
        .bind(behalf_domain::now_millis())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The website origin a passkey was registered at through Behalf Key, if it was.
    pub async fn passkey_origin(
        &self,
        passkey_id: behalf_domain::PasskeyId,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT origin FROM passkey_origins WHERE passkey_id = $1")
                .bind(passkey_id.to_string())
                .fetch_optional(self.pool())
                .await?,
        )
    }
}
