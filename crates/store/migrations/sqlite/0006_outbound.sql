-- Outbound writes: Behalf as the source, users and groups written to Entra ID through Graph.
-- The PostgreSQL migration of the same number must describe the same tables.

-- A connection Behalf may write to (create, change and delete users and groups). Off unless an
-- admin turns it on: a read-only connection refuses writes.
ALTER TABLE directory_connections ADD COLUMN writable INTEGER NOT NULL DEFAULT 0;

-- Graph's mailNickname (required to create a user or a group); a group's is the stable key it is
-- looked up by before it is created, so that a create that may have reached Graph is found.
ALTER TABLE users ADD COLUMN mail_nickname TEXT;
ALTER TABLE directory_groups ADD COLUMN mail_nickname TEXT;

-- One write to Entra ID, a leased queue as provisioning_items is. `seq` orders the writes of one
-- user or group: a write is claimed only when no earlier write on its user (or, for a group's
-- creation or deletion, on its group) is still open, so a member is added after the user and the
-- group exist. `user_id` / `group_id` are Behalf's ids, without a foreign key: a delete's row
-- stays as history after the user or group row is gone. `payload` is the JSON of what to write
-- (never a password). `next_attempt_at` is when it may be sent (a Retry-After, a backoff), kept
-- with the write so that a run after a crash does not send early.
CREATE TABLE directory_writes (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id),
    connection_id    TEXT NOT NULL REFERENCES directory_connections(id),
    kind             TEXT NOT NULL CHECK (kind IN ('create_user', 'update_user', 'delete_user', 'create_group', 'delete_group', 'add_member', 'remove_member')),
    user_id          TEXT,
    group_id         TEXT,
    subject          TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'done', 'failed', 'discarded')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    graph_id         TEXT,
    error            TEXT,
    error_code       TEXT,
    request_id       TEXT,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    locked_by        TEXT,
    locked_until     INTEGER
);
CREATE INDEX directory_writes_claim ON directory_writes (workspace_id, state, next_attempt_at);
CREATE INDEX directory_writes_by_user ON directory_writes (user_id, seq);
CREATE INDEX directory_writes_by_group ON directory_writes (group_id, seq);
