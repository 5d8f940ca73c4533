//! Group commit: the small writes that many concurrent tasks make one at a time (a provisioning
//! worker advancing its item, recording a passkey, appending an event), committed together.
//!
//! Committing is most of what such a write costs. On SQLite each commit appends every page it
//! touched to the WAL, and each statement is a hand-off to the connection's thread; on PostgreSQL
//! each statement is a round trip and each commit a WAL flush. So one writer task takes whatever
//! writes are queued when it is free, applies them in one transaction with one multi-row
//! statement per kind (on SQLite the whole transaction, `BEGIN` to `COMMIT`, goes as one query
//! string: one hand-off to the connection's thread), and then answers every caller. A caller's
//! `await` still returns only once its own write is committed: durability does not change for
//! it. Under load, batches grow by themselves (writes queue while the previous batch commits),
//! and while the writer is busy (its last batch held more than one set) it lingers [`LINGER`]
//! after a batch's first set, so that the sets of answers arriving together share one commit;
//! alone, a write commits at once.
//!
//! A caller submits a [`WriteSet`]: writes that commit together or not at all (an item's new
//! state with the passkey and event that go with it). A batch holds at most one write per row: a
//! caller awaits each set before making the next, so sets in one batch never depend on each
//! other, and a second write to a row already in the batch waits for the next one. A batch that
//! fails as a whole (one bad row fails its statement, or an update is refused) is rolled back and
//! applied again one set at a time, so each caller gets its own set's outcome.

use std::collections::HashSet;

use behalf_domain::{
    Event, EventId, ItemId, ItemOutcome, ItemPass, ItemState, NewEvent, Passkey, PasskeyId,
    PasskeyState, SecurityKey, SecurityKeyId, SecurityKeyKind, SecurityKeyState, UserId,
    WorkspaceId, now_millis,
};
use sqlx::any::AnyArguments;
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::keys::NewPasskey;
use crate::users::batches;
use crate::vault::VaultCredentialRow;
use crate::{Backend, StoreError};

/// One write the [`Writer`] batches.
#[derive(Debug)]
pub(crate) enum Write {
    InsertSecurityKey(SecurityKey),
    InsertVaultCredential {
        workspace_id: WorkspaceId,
        row: VaultCredentialRow,
    },
    InsertPasskey(Passkey),
    UpdateItem {
        id: ItemId,
        worker: String,
        state: ItemState,
        outcome: ItemOutcome,
        at: i64,
    },
    /// The manual path: a leased item moves to `waiting_for_user` with the pass that went out,
    /// and gives its lease back until `until` (its next look at the user's methods).
    WaitForUser {
        id: ItemId,
        worker: String,
        pass: ItemPass,
        until: i64,
        at: i64,
    },
    SetPasskeyState {
        id: PasskeyId,
        state: PasskeyState,
        rp_method_id: Option<String>,
        registered_at: Option<i64>,
        revoked_at: Option<i64>,
    },
    SetSecurityKeyState {
        id: SecurityKeyId,
        state: SecurityKeyState,
        at: i64,
    },
    /// The event, and its detail as stored (JSON text, serialised once).
    InsertEvent {
        event: Event,
        detail: String,
    },
}

/// The order kinds are applied in within a batch: rows before the rows that refer to them.
const KINDS: usize = 8;

impl Write {
    fn kind(&self) -> usize {
        match self {
            Write::InsertSecurityKey(_) => 0,
            Write::InsertVaultCredential { .. } => 1,
            Write::InsertPasskey(_) => 2,
            Write::UpdateItem { .. } => 3,
            Write::SetPasskeyState { .. } => 4,
            Write::SetSecurityKeyState { .. } => 5,
            Write::InsertEvent { .. } => 6,
            Write::WaitForUser { .. } => 7,
        }
    }

    /// The table an update changes, `None` for an insert: an update that matches no row there
    /// is refused.
    fn updated_table(&self) -> Option<&'static str> {
        match self {
            Write::UpdateItem { .. } | Write::WaitForUser { .. } => Some("provisioning_items"),
            Write::SetPasskeyState { .. } => Some("passkeys"),
            Write::SetSecurityKeyState { .. } => Some("security_keys"),
            Write::InsertSecurityKey(_)
            | Write::InsertVaultCredential { .. }
            | Write::InsertPasskey(_)
            | Write::InsertEvent { .. } => None,
        }
    }

    /// The row this write touches, for the one-write-per-row rule.
    fn row_key(&self) -> (usize, String) {
        let key = match self {
            Write::InsertSecurityKey(key) => key.id.to_string(),
            Write::InsertVaultCredential { row, .. } => {
                format!("{}/{:?}", row.rp_id, row.credential_id)
            }
            Write::InsertPasskey(passkey) => passkey.id.to_string(),
            Write::UpdateItem { id, .. } | Write::WaitForUser { id, .. } => id.to_string(),
            Write::SetPasskeyState { id, .. } => id.to_string(),
            Write::SetSecurityKeyState { id, .. } => id.to_string(),
            Write::InsertEvent { event, .. } => event.id.to_string(),
        };
        (self.kind(), key)
    }

    /// Encoded size of the write's parameters, for [`batches`].
    fn bytes(&self) -> usize {
        match self {
            Write::InsertSecurityKey(key) => 3 * 36 + key.label.len() + 64,
            Write::InsertVaultCredential { row, .. } => {
                36 + row.rp_id.len()
                    + row.credential_id.len()
                    + row.user_handle.len()
                    + row.user_name.len()
                    + row.user_display_name.len()
                    + row.public_key_cose.len()
                    + row.aaguid.len()
                    + row.key.master_key_id.len()
                    + row.key.wrapped_data_key.len()
                    + row.sealed_secret.len()
                    + 15 * 8
            }
            Write::InsertPasskey(p) => {
                4 * 36
                    + p.rp_id.len()
                    + p.credential_id.len()
                    + p.public_key_cose.len()
                    + p.aaguid.len()
                    + p.created_by.len()
                    + 48
            }
            Write::UpdateItem {
                worker, outcome, ..
            } => {
                let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
                2 * 36
                    + worker.len()
                    + text(&outcome.reason)
                    + text(&outcome.error_code)
                    + text(&outcome.request_id)
                    + 64
            }
            Write::SetPasskeyState { rp_method_id, .. } => {
                36 + rp_method_id.as_ref().map_or(0, String::len) + 48
            }
            Write::SetSecurityKeyState { .. } => 36 + 32,
            Write::WaitForUser { worker, pass, .. } => {
                36 + worker.len() + pass.method_id.len() + 4 * 8
            }
            Write::InsertEvent { event: e, detail } => {
                3 * 36
                    + e.actor.len()
                    + e.action.as_str().len()
                    + e.rp_id.as_ref().map_or(0, String::len)
                    + detail.len()
                    + 48
            }
        }
    }
}

type Reply = oneshot::Sender<Result<(), StoreError>>;

/// Writes that commit together or not at all: if one is refused (an item no longer leased to
/// the writer, a row gone), none is applied. Built by the store's methods; committed by
/// [`Store::commit`](crate::Store::commit).
#[derive(Debug, Default)]
pub struct WriteSet {
    pub(crate) writes: Vec<Write>,
}

impl WriteSet {
    pub fn new() -> Self {
        WriteSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Moves a leased item to `state` (a final state also releases the lease); refused when
    /// `worker` no longer holds the lease.
    pub fn update_item(
        &mut self,
        id: ItemId,
        worker: &str,
        state: ItemState,
        outcome: &ItemOutcome,
    ) {
        self.writes.push(Write::UpdateItem {
            id,
            worker: worker.to_owned(),
            state,
            outcome: outcome.clone(),
            at: now_millis(),
        });
    }

    /// Moves a leased item of the manual path to `waiting_for_user`, recording the pass that
    /// was mailed (Graph's id and lifetime, never the pass), and gives the lease back until
    /// `look_again_in_ms` from now, as [`Store::defer_item`](crate::Store::defer_item) does;
    /// refused when `worker` no longer holds the lease.
    pub fn wait_for_user(
        &mut self,
        id: ItemId,
        worker: &str,
        pass: &ItemPass,
        look_again_in_ms: i64,
    ) {
        let at = now_millis();
        self.writes.push(Write::WaitForUser {
            id,
            worker: worker.to_owned(),
            pass: pass.clone(),
            until: at.saturating_add(look_again_in_ms.max(0)),
            at,
        });
    }

    /// Assigns a new security key of `kind` to the user.
    pub fn assign_security_key(
        &mut self,
        workspace_id: WorkspaceId,
        user_id: UserId,
        kind: SecurityKeyKind,
        label: &str,
    ) -> SecurityKey {
        let now = now_millis();
        let key = SecurityKey {
            id: SecurityKeyId::new(),
            workspace_id,
            user_id,
            kind,
            state: SecurityKeyState::Assigned,
            label: label.to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.writes.push(Write::InsertSecurityKey(key.clone()));
        key
    }

    /// Refused when the key does not exist.
    pub fn set_security_key_state(&mut self, id: SecurityKeyId, state: SecurityKeyState) {
        self.writes.push(Write::SetSecurityKeyState {
            id,
            state,
            at: now_millis(),
        });
    }

    /// Records a passkey about to be registered (its credential already sealed in the vault).
    pub fn insert_passkey(&mut self, new: &NewPasskey) -> Passkey {
        let passkey = Passkey {
            id: new.id,
            workspace_id: new.workspace_id,
            user_id: new.user_id,
            security_key_id: new.security_key_id,
            rp_id: new.rp_id.clone(),
            credential_id: new.credential_id.clone(),
            public_key_cose: new.public_key_cose.clone(),
            aaguid: new.aaguid.clone(),
            rp_method_id: None,
            state: PasskeyState::Created,
            created_by: new.created_by.clone(),
            created_at: now_millis(),
            registered_at: None,
            revoked_at: None,
        };
        self.writes.push(Write::InsertPasskey(passkey.clone()));
        passkey
    }

    /// Records that the RP accepted the passkey, with the RP's own id for it. Refused when the
    /// passkey does not exist.
    pub fn mark_passkey_registered(&mut self, id: PasskeyId, rp_method_id: &str) {
        self.set_passkey_state(id, PasskeyState::Registered, Some(rp_method_id));
    }

    /// Refused when the passkey does not exist.
    pub fn mark_passkey_revoked(&mut self, id: PasskeyId) {
        self.set_passkey_state(id, PasskeyState::Revoked, None);
    }

    fn set_passkey_state(
        &mut self,
        id: PasskeyId,
        state: PasskeyState,
        rp_method_id: Option<&str>,
    ) {
        let now = now_millis();
        let (registered_at, revoked_at) = match state {
            PasskeyState::Created => (None, None),
            PasskeyState::Registered => (Some(now), None),
            PasskeyState::Revoked => (None, Some(now)),
        };
        self.writes.push(Write::SetPasskeyState {
            id,
            state,
            rp_method_id: rp_method_id.map(str::to_owned),
            registered_at,
            revoked_at,
        });
    }

    pub fn append_event(&mut self, workspace_id: WorkspaceId, event: NewEvent) -> Event {
        let event = Event {
            id: EventId::new(),
            workspace_id,
            at: now_millis(),
            actor: event.actor,
            action: event.action,
            user_id: event.user_id,
            rp_id: event.rp_id,
            outcome: event.outcome,
            detail: event.detail,
        };
        self.writes.push(Write::InsertEvent {
            detail: serde_json::to_string(&event.detail).unwrap_or_else(|_| "{}".into()),
            event: event.clone(),
        });
        event
    }

    /// Saves a sealed credential; the same RP and credential id twice fails the set.
    pub fn vault_insert_credential(&mut self, workspace_id: WorkspaceId, row: &VaultCredentialRow) {
        self.writes.push(Write::InsertVaultCredential {
            workspace_id,
            row: row.clone(),
        });
    }
}

/// The handle through which store methods submit batched writes.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: mpsc::UnboundedSender<(WriteSet, Reply)>,
}

/// Writes per batch at most: bounds a transaction's length (and so how long readers of the one
/// SQLite connection wait behind it).
const MAX_BATCH: usize = 256;

/// How long a busy writer waits after a batch's first set for others to join it. Answers to
/// concurrent Graph requests arrive a few milliseconds apart; without the wait each would be
/// committed nearly alone (measured: 1.0 ms of CPU per provisioned user without it, 0.86 ms with
/// 4 ms, worse again at 10 ms, where the wait starts to hold back the workers).
const LINGER: std::time::Duration = std::time::Duration::from_millis(4);

impl Writer {
    /// Starts the writer task on the current runtime. It ends when the last handle is dropped.
    pub(crate) fn spawn(pool: AnyPool, backend: Backend) -> Writer {
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, backend, receiver));
        Writer { queue }
    }

    /// Applies `set` in the next batch; returns once that batch is committed.
    pub(crate) async fn write(&self, set: WriteSet) -> Result<(), StoreError> {
        if set.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((set, reply))
            .map_err(|_| StoreError::NotReady("the store's writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::NotReady("the store's writer has stopped".into()))?
    }
}

async fn run(
    pool: AnyPool,
    backend: Backend,
    mut receiver: mpsc::UnboundedReceiver<(WriteSet, Reply)>,
) {
    // A set that did not fit the last batch (one of its rows was already in it) starts the next.
    let mut held: Option<(WriteSet, Reply)> = None;
    // A writer whose last batch held one set is not busy: a lone caller (a command-line edit,
    // a sequential import) never waits for company that will not come.
    let mut busy = false;
    loop {
        let first = match held.take() {
            Some(first) => first,
            None => match receiver.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        if busy {
            tokio::time::sleep(LINGER).await;
        }
        let mut rows: HashSet<(usize, String)> =
            first.0.writes.iter().map(Write::row_key).collect();
        let mut writes = first.0.writes.len();
        let mut batch = vec![first];
        while writes < MAX_BATCH {
            let Ok(next) = receiver.try_recv() else { break };
            let keys: Vec<_> = next.0.writes.iter().map(Write::row_key).collect();
            if keys.iter().any(|k| rows.contains(k)) {
                held = Some(next);
                break;
            }
            rows.extend(keys);
            writes += next.0.writes.len();
            batch.push(next);
        }
        let (sets, replies): (Vec<WriteSet>, Vec<Reply>) = batch.into_iter().unzip();
        busy = sets.len() > 1;
        let outcomes = match apply(&pool, backend, &sets).await {
            Ok(()) => sets.iter().map(|_| Ok(())).collect(),
            Err(e) if sets.len() == 1 => vec![Err(e)],
            Err(e) => {
                tracing::debug!(error = %e, sets = sets.len(), "a batch failed; applying its sets one by one");
                let mut outcomes = Vec::with_capacity(sets.len());
                for set in &sets {
                    outcomes.push(apply(&pool, backend, std::slice::from_ref(set)).await);
                }
                outcomes
            }
        };
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // The caller may have gone (its task was cancelled): its writes stand anyway.
            let _ = reply.send(outcome);
        }
    }
}

/// Applies every write of `sets` in one transaction, or none: `Err` when a statement failed or
/// an update was refused (then the refusal itself, so that a batch of one set reports it).
async fn apply(pool: &AnyPool, backend: Backend, sets: &[WriteSet]) -> Result<(), StoreError> {
    let writes: Vec<&Write> = sets.iter().flat_map(|set| &set.writes).collect();
    let mut by_kind: [Vec<usize>; KINDS] = Default::default();
    for (i, write) in writes.iter().enumerate() {
        by_kind[write.kind()].push(i);
    }
    let chunks: Vec<&[usize]> = by_kind
        .iter()
        .flat_map(|indices| batches(indices, |&i| writes[i].bytes(), 500))
        .collect();
    let mut conn = pool.acquire().await?;
    if backend == Backend::Sqlite {
        match commit_in_one_query(&mut conn, &writes, &chunks).await {
            Ok(()) => return Ok(()),
            // Rolled back: find out which write failed, and how, the slow way.
            Err(e) => {
                tracing::debug!(error = %e, "a batch failed; applying it again with RETURNING to name the failed write")
            }
        }
    }
    // SQLite takes the statements as one query string (one hand-off to the connection's
    // thread); PostgreSQL's extended protocol takes one statement per query.
    let queries: Vec<&[&[usize]]> = match backend {
        Backend::Sqlite => vec![&chunks[..]],
        Backend::Postgres => chunks.iter().map(std::slice::from_ref).collect(),
    };
    if let ([_], [query @ [_]]) = (sets, &queries[..]) {
        // One set, one statement: atomic on its own; BEGIN and COMMIT would be two more trips.
        return run_query(&mut conn, backend, &writes, query).await;
    }
    let mut tx = conn.begin().await?;
    for query in queries {
        // On a refusal, the transaction rolls back as it is dropped.
        run_query(&mut tx, backend, &writes, query).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// SQLite's fast path: the whole transaction as one query string, `BEGIN IMMEDIATE` to
/// `COMMIT`, so that a batch costs one hand-off to the connection's thread instead of three
/// (sqlx's `begin()` and `commit()` are one each). An update that matches fewer rows than it
/// has writes must abort the transaction before `COMMIT` runs, and SQLite can only raise an
/// error from SQL in a trigger: so each update is followed by a guard that fails on purpose
/// (`json()` of text that is not JSON) when `changes()` falls short. On any failure the
/// transaction is rolled back and the caller learns only that it failed; `run_query` then
/// says which write and why.
async fn commit_in_one_query(
    conn: &mut PoolConnection<Any>,
    writes: &[&Write],
    chunks: &[&[usize]],
) -> Result<(), StoreError> {
    let mut sql = String::from("BEGIN IMMEDIATE");
    for chunk in chunks {
        let first = writes[chunk[0]];
        sql.push_str(";\n");
        sql.push_str(&statement(first, chunk.len(), Backend::Sqlite));
        if first.updated_table().is_some() {
            // Rows have one write each in a batch: all matched means exactly chunk.len().
            sql.push_str(&format!(
                ";\nSELECT json(CASE WHEN changes() = {} THEN '0' ELSE 'update refused' END)",
                chunk.len()
            ));
        }
    }
    sql.push_str(";\nCOMMIT");
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for &i in chunks.iter().flat_map(|chunk| chunk.iter()) {
        query = bind(query, writes[i]);
    }
    let Err(failed) = query.execute(&mut **conn).await else {
        return Ok(());
    };
    // SQLite has already rolled back after some errors (a full disk, say), and then ROLLBACK
    // fails too; either way the connection is not reused, in case a transaction is still open.
    if sqlx::query("ROLLBACK").execute(&mut **conn).await.is_err() {
        conn.close_on_drop();
    }
    Err(failed.into())
}

/// Runs the statements for `chunks` (each chunk: writes of one kind, one statement) as one
/// query; an update that matched no row is a refusal.
async fn run_query(
    conn: &mut AnyConnection,
    backend: Backend,
    writes: &[&Write],
    chunks: &[&[usize]],
) -> Result<(), StoreError> {
    let mut sql = String::new();
    let mut returns_ids = false;
    for chunk in chunks {
        let first = writes[chunk[0]];
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&statement(first, chunk.len(), backend));
        if let Some(table) = first.updated_table() {
            sql.push_str(&format!(" RETURNING {table}.id"));
            returns_ids = true;
        }
    }
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for &i in chunks.iter().flat_map(|chunk| chunk.iter()) {
        query = bind(query, writes[i]);
    }
    if !returns_ids {
        query.execute(&mut *conn).await?;
        return Ok(());
    }
    let found: HashSet<String> = query
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| crate::rows::Reader::new(row, "batch").text("id"))
        .collect::<Result<_, _>>()?;
    let refused = chunks
        .iter()
        .flat_map(|chunk| chunk.iter())
        .map(|&i| writes[i])
        .filter(|write| write.updated_table().is_some())
        .find(|write| !found.contains(&write.row_key().1));
    match refused {
        Some(write) => Err(refusal(write)),
        None => Ok(()),
    }
}

/// What an update that matched no row means for its caller.
fn refusal(write: &Write) -> StoreError {
    match write {
        Write::UpdateItem { id, worker, .. } | Write::WaitForUser { id, worker, .. } => {
            StoreError::LeaseLost {
                what: format!("item {id} is no longer leased to {worker}"),
            }
        }
        Write::SetPasskeyState { id, .. } => StoreError::NotFound {
            kind: "passkey",
            key: id.to_string(),
        },
        Write::SetSecurityKeyState { id, .. } => StoreError::NotFound {
            kind: "security key",
            key: id.to_string(),
        },
        other => StoreError::LeaseLost {
            what: format!("{:?} matched no row", other.row_key()),
        },
    }
}

/// `($1, $2, …), ($n+1, …)`: `rows` rows of `params` placeholders each. SQLite gets `?`, bound
/// in order of appearance, because the numbers of `$n` count across the statements of a query
/// there: a later statement's gaps would be bound too.
fn values(rows: usize, params: usize, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => {
            let row = format!("({})", vec!["?"; params].join(", "));
            vec![row; rows].join(", ")
        }
        Backend::Postgres => (0..rows)
            .map(|r| format!("({})", crate::placeholders(r * params + 1, params)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The statement for `n` writes of `first`'s kind. Updates join a `VALUES` list, whose columns
/// both databases name `column1`, `column2`, ….
fn statement(first: &Write, n: usize, backend: Backend) -> String {
    match first {
        Write::InsertSecurityKey(_) => format!(
            "INSERT INTO security_keys (id, workspace_id, user_id, kind, state, label, created_at, updated_at) \
                 VALUES {}",
            values(n, 8, backend)
        ),
        Write::InsertVaultCredential { .. } => format!(
            "INSERT INTO vault_credentials (workspace_id, {}) VALUES {}",
            crate::vault::CREDENTIAL_COLUMNS,
            values(n, 15, backend)
        ),
        Write::InsertPasskey(_) => format!(
            "INSERT INTO passkeys (id, workspace_id, user_id, security_key_id, rp_id, credential_id, \
                 public_key_cose, aaguid, state, created_by, created_at) VALUES {}",
            values(n, 11, backend)
        ),
        Write::UpdateItem { .. } => format!(
            "UPDATE provisioning_items SET state = v.column3, reason = v.column4, error_code = v.column5, \
                 request_id = v.column6, passkey_id = COALESCE(v.column7, provisioning_items.passkey_id), \
                 updated_at = v.column8, \
                 locked_by = CASE WHEN v.column9 = 1 THEN NULL ELSE provisioning_items.locked_by END, \
                 locked_until = CASE WHEN v.column9 = 1 THEN NULL ELSE provisioning_items.locked_until END \
                 FROM (VALUES {}) AS v \
                 WHERE provisioning_items.id = v.column1 AND provisioning_items.locked_by = v.column2",
            values(n, 9, backend)
        ),
        Write::WaitForUser { .. } => format!(
            "UPDATE provisioning_items SET state = 'waiting_for_user', reason = NULL, error_code = NULL, \
                 request_id = NULL, pass_method_id = v.column3, pass_issued_at = v.column4, \
                 pass_expires_at = v.column5, locked_by = NULL, locked_until = v.column6, \
                 updated_at = v.column7 \
                 FROM (VALUES {}) AS v \
                 WHERE provisioning_items.id = v.column1 AND provisioning_items.locked_by = v.column2",
            values(n, 7, backend)
        ),
        Write::SetPasskeyState { .. } => format!(
            "UPDATE passkeys SET state = v.column2, rp_method_id = COALESCE(v.column3, passkeys.rp_method_id), \
                 registered_at = COALESCE(v.column4, passkeys.registered_at), \
                 revoked_at = COALESCE(v.column5, passkeys.revoked_at) \
                 FROM (VALUES {}) AS v WHERE passkeys.id = v.column1",
            values(n, 5, backend)
        ),
        Write::SetSecurityKeyState { .. } => format!(
            "UPDATE security_keys SET state = v.column2, updated_at = v.column3 \
                 FROM (VALUES {}) AS v WHERE security_keys.id = v.column1",
            values(n, 3, backend)
        ),
        Write::InsertEvent { .. } => format!(
            "INSERT INTO events (id, workspace_id, at, actor, action, user_id, rp_id, outcome, detail) \
                 VALUES {}",
            values(n, 9, backend)
        ),
    }
}

fn bind<'q>(query: Query<'q, Any, AnyArguments>, write: &Write) -> Query<'q, Any, AnyArguments> {
    match write {
        Write::InsertSecurityKey(key) => query
            .bind(key.id.to_string())
            .bind(key.workspace_id.to_string())
            .bind(key.user_id.to_string())
            .bind(key.kind.as_str())
            .bind(key.state.as_str())
            .bind(key.label.clone())
            .bind(key.created_at)
            .bind(key.updated_at),
        Write::InsertVaultCredential { workspace_id, row } => query
            .bind(workspace_id.to_string())
            .bind(row.rp_id.clone())
            .bind(row.credential_id.clone())
            .bind(row.user_handle.clone())
            .bind(row.user_name.clone())
            .bind(row.user_display_name.clone())
            .bind(row.algorithm)
            .bind(row.public_key_cose.clone())
            .bind(row.aaguid.clone())
            .bind(row.sign_count)
            .bind(row.cred_protect)
            .bind(row.created_at)
            .bind(row.key.master_key_id.clone())
            .bind(row.key.wrapped_data_key.clone())
            .bind(row.sealed_secret.clone()),
        Write::InsertPasskey(p) => query
            .bind(p.id.to_string())
            .bind(p.workspace_id.to_string())
            .bind(p.user_id.to_string())
            .bind(p.security_key_id.to_string())
            .bind(p.rp_id.clone())
            .bind(p.credential_id.clone())
            .bind(p.public_key_cose.clone())
            .bind(p.aaguid.clone())
            .bind(p.state.as_str())
            .bind(p.created_by.clone())
            .bind(p.created_at),
        Write::UpdateItem {
            id,
            worker,
            state,
            outcome,
            at,
        } => query
            .bind(id.to_string())
            .bind(worker.clone())
            .bind(state.as_str())
            .bind(outcome.reason.clone())
            .bind(outcome.error_code.clone())
            .bind(outcome.request_id.clone())
            .bind(outcome.passkey_id.map(|p| p.to_string()))
            .bind(*at)
            .bind(i64::from(state.is_final())),
        Write::SetPasskeyState {
            id,
            state,
            rp_method_id,
            registered_at,
            revoked_at,
        } => query
            .bind(id.to_string())
            .bind(state.as_str())
            .bind(rp_method_id.clone())
            .bind(*registered_at)
            .bind(*revoked_at),
        Write::WaitForUser {
            id,
            worker,
            pass,
            until,
            at,
        } => query
            .bind(id.to_string())
            .bind(worker.clone())
            .bind(pass.method_id.clone())
            .bind(pass.issued_at)
            .bind(pass.expires_at)
            .bind(*until)
            .bind(*at),
        Write::SetSecurityKeyState { id, state, at } => {
            query.bind(id.to_string()).bind(state.as_str()).bind(*at)
        }
        Write::InsertEvent { event: e, detail } => query
            .bind(e.id.to_string())
            .bind(e.workspace_id.to_string())
            .bind(e.at)
            .bind(e.actor.clone())
            .bind(e.action.as_str())
            .bind(e.user_id.map(|u| u.to_string()))
            .bind(e.rp_id.clone())
            .bind(e.outcome.as_str())
            .bind(detail.clone()),
    }
}
