-- Sign-in, API tokens, the CLI's device login, idempotent job creation, and the user list's
-- search keys. The SQLite migration of the same number must describe the same tables.
-- Secrets never reach the database: every *_hash column holds what the application layer
-- computed from a token it showed once.

-- `username` holds the admin's email, lowercased (the column keeps its name).
ALTER TABLE admins ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE admins ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE admins SET username = lower(username), updated_at = created_at;

-- Deleting an admin deletes what signs in as them.
CREATE TABLE admin_sessions (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    admin_id      TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE,
    csrf_hash     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    revoked_at    BIGINT,
    address       TEXT,
    user_agent    TEXT
);
CREATE INDEX admin_sessions_by_admin ON admin_sessions (admin_id);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    admin_id      TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    scope         TEXT NOT NULL CHECK (scope IN ('read', 'provision', 'admin')),
    kind          TEXT NOT NULL CHECK (kind IN ('api', 'cli')),
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_tokens_by_workspace ON api_tokens (workspace_id, created_at);
CREATE INDEX api_tokens_by_admin ON api_tokens (admin_id);

-- One-time links that let an admin set their password.
CREATE TABLE setup_tokens (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    admin_id      TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE INDEX setup_tokens_by_admin ON setup_tokens (admin_id);

-- `behalf --server URL login`: the CLI polls with its device code (kept hashed), a human types
-- the short user code into the panel, and an admin approves it there.
CREATE TABLE device_logins (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces(id),
    device_code_hash  TEXT NOT NULL UNIQUE,
    user_code         TEXT NOT NULL UNIQUE,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    approved_by       TEXT REFERENCES admins(id) ON DELETE CASCADE,
    approved_at       BIGINT,
    scope             TEXT CHECK (scope IN ('read', 'provision', 'admin')),
    consumed_at       BIGINT
);

-- A retried `POST /api/v1/jobs` with the same Idempotency-Key returns the job it made first.
CREATE TABLE idempotency_keys (
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    key           TEXT NOT NULL,
    admin_id      TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    request_hash  TEXT NOT NULL,
    job_id        TEXT NOT NULL REFERENCES provisioning_jobs(id),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, key)
);

-- The user list: case-folded search keys beside upn_key (written by the store with Rust's
-- to_lowercase, like upn_key; lower() here backfills the rows that exist).
-- The keys are COLLATE "C" (bytewise, as SQLite's BINARY) rather than indexed with
-- text_pattern_ops: under a linguistic collation a prefix range `key >= q AND key < q || U+10FFFF`
-- is not a prefix match (punctuation and case weigh differently), and a text_pattern_ops index
-- serves LIKE 'q%' but not ORDER BY or the keyset comparison `upn_key > cursor`, so paging would
-- need a second index. With "C" one index per key serves the prefix range, and the unique
-- (workspace_id, upn_key) index also the ordering and the cursor; and both backends order the
-- list the same way, so a cursor means the same thing on each. (Changing upn_key's collation
-- rebuilds its unique index.)
ALTER TABLE users ALTER COLUMN upn_key TYPE TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN name_key TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN mail_key TEXT COLLATE "C";
UPDATE users SET name_key = lower(display_name), mail_key = lower(mail);
CREATE INDEX users_by_name_key ON users (workspace_id, name_key);
CREATE INDEX users_by_mail_key ON users (workspace_id, mail_key);

-- The job list (newest first) and a job's items in id order, paged.
CREATE INDEX provisioning_jobs_by_workspace ON provisioning_jobs (workspace_id, id);
CREATE INDEX provisioning_items_by_job ON provisioning_items (job_id, id);
