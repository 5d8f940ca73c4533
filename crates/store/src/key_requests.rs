//! Local keys' registration requests (docs/BEHALF_KEY.md "Local keys"), one per provisioning
//! item: made by the engine, listed and answered by the user's Behalf Key, each step one
//! conditional UPDATE on the state it expects, so two answers never both win.

use behalf_domain::{
    ItemId, KeyRequest, KeyRequestId, KeyRequestState, Millis, UserId, WorkspaceId,
};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::Reader;
use crate::{Store, StoreError};

const COLUMNS: &str = "id, workspace_id, job_id, item_id, user_id, rp_id, state, asked_by, \
     challenge, user_handle, registration, credential_id, public_key_cose, aaguid, created_at, \
     expires_at, updated_at";

fn request_from(row: &AnyRow) -> Result<KeyRequest, StoreError> {
    let r = Reader::new(row, "key_requests");
    Ok(KeyRequest {
        id: r.parse("id")?,
        workspace_id: r.parse("workspace_id")?,
        job_id: r.parse("job_id")?,
        item_id: r.parse("item_id")?,
        user_id: r.parse("user_id")?,
        rp_id: r.text("rp_id")?,
        state: r.parse("state")?,
        asked_by: r.text("asked_by")?,
        challenge: r.opt_text("challenge")?,
        user_handle: r.opt_text("user_handle")?,
        registration: r.opt_text("registration")?,
        credential_id: r.opt_bytes("credential_id")?,
        public_key_cose: r.opt_bytes("public_key_cose")?,
        aaguid: r.opt_text("aaguid")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        updated_at: r.int("updated_at")?,
    })
}

/// What an attested request carries to the engine.
#[derive(Debug, Clone)]
pub struct Attestation<'a> {
    pub registration: &'a str,
    pub credential_id: &'a [u8],
    pub public_key_cose: &'a [u8],
    pub aaguid: &'a str,
}

impl Store {
    /// Records the item's request, unless it has one already (a re-run after a crash): the
    /// item's request either way.
    pub async fn ensure_key_request(&self, request: &KeyRequest) -> Result<KeyRequest, StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO key_requests ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, NULL, NULL, NULL, $9, $10, $9) \
             ON CONFLICT (item_id) DO NOTHING"
        )))
        .bind(request.id.to_string())
        .bind(request.workspace_id.to_string())
        .bind(request.job_id.to_string())
        .bind(request.item_id.to_string())
        .bind(request.user_id.to_string())
        .bind(&request.rp_id)
        .bind(request.state.as_str())
        .bind(&request.asked_by)
        .bind(request.created_at)
        .bind(request.expires_at)
        .execute(self.pool())
        .await?;
        self.key_request_of_item(request.item_id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "key request",
                key: request.item_id.to_string(),
            })
    }

    pub async fn key_request_of_item(
        &self,
        item_id: ItemId,
    ) -> Result<Option<KeyRequest>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM key_requests WHERE item_id = $1"
        )))
        .bind(item_id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(request_from).transpose()
    }

    /// The request whose attested credential is `credential_id`.
    pub async fn key_request_of_credential(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<KeyRequest>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM key_requests WHERE credential_id = $1"
        )))
        .bind(credential_id.to_vec())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(request_from).transpose()
    }

    pub async fn key_request(&self, id: KeyRequestId) -> Result<Option<KeyRequest>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM key_requests WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(request_from).transpose()
    }

    /// The user's requests still waiting for them (pending or approved, not expired at `now`).
    pub async fn open_key_requests(
        &self,
        workspace_id: WorkspaceId,
        user_id: UserId,
        now: Millis,
    ) -> Result<Vec<KeyRequest>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM key_requests WHERE workspace_id = $1 AND user_id = $2 \
             AND state IN ('pending', 'approved') AND expires_at > $3 ORDER BY created_at, id"
        )))
        .bind(workspace_id.to_string())
        .bind(user_id.to_string())
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(request_from).collect()
    }

    /// Moves a request from `from` to `to` at `now` (only if it is unexpired when `from` is
    /// pending or approved); `false` when it was not in `from` any more.
    pub async fn move_key_request(
        &self,
        id: KeyRequestId,
        from: &[KeyRequestState],
        to: KeyRequestState,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let states = from
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let live = if from
            .iter()
            .any(|s| matches!(s, KeyRequestState::Pending | KeyRequestState::Approved))
        {
            " AND expires_at > $2"
        } else {
            ""
        };
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE key_requests SET state = $1, updated_at = $2 \
             WHERE id = $3 AND state IN ({states}){live}"
        )))
        .bind(to.as_str())
        .bind(now)
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Expired: a request still waiting for its user when its time ran out.
    pub async fn expire_key_request(
        &self,
        id: KeyRequestId,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE key_requests SET state = 'expired', updated_at = $1 \
             WHERE id = $2 AND state IN ('pending', 'approved')",
        )
        .bind(now)
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Approved: the creation options' challenge and user handle are kept with the request.
    pub async fn approve_key_request(
        &self,
        id: KeyRequestId,
        challenge: &str,
        user_handle: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE key_requests SET state = 'approved', challenge = $1, user_handle = $2, \
             updated_at = $3 WHERE id = $4 AND state IN ('pending', 'approved') AND expires_at > $3",
        )
        .bind(challenge)
        .bind(user_handle)
        .bind(now)
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Attested: the new credential, for the engine to register. Only an approved, unexpired
    /// request takes it, once.
    pub async fn attest_key_request(
        &self,
        id: KeyRequestId,
        attestation: &Attestation<'_>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE key_requests SET state = 'attested', registration = $1, credential_id = $2, \
             public_key_cose = $3, aaguid = $4, updated_at = $5 \
             WHERE id = $6 AND state = 'approved' AND expires_at > $5",
        )
        .bind(attestation.registration)
        .bind(attestation.credential_id.to_vec())
        .bind(attestation.public_key_cose.to_vec())
        .bind(attestation.aaguid)
        .bind(now)
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Makes a deferred, unleased item claimable now (a person answered what it waited for);
    /// `false` while a worker holds it (it is looking at it at this moment).
    pub async fn wake_item(&self, id: ItemId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE provisioning_items SET locked_until = NULL \
             WHERE id = $1 AND locked_by IS NULL",
        )
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
