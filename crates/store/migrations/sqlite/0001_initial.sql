-- Behalf's schema on SQLite. Identifiers are UUID text, times are Unix milliseconds, flags 0/1.
-- The PostgreSQL migration of the same number must describe the same tables.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE admins (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id),
    username        TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    can_edit_users  INTEGER NOT NULL DEFAULT 0,
    password_hash   TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (workspace_id, username)
);

CREATE TABLE directory_connections (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL REFERENCES workspaces(id),
    kind               TEXT NOT NULL CHECK (kind IN ('entra_id', 'scim')),
    name               TEXT NOT NULL,
    tenant_id          TEXT,
    client_id          TEXT,
    graph_base_url     TEXT,
    login_base_url     TEXT,
    -- sealed by the vault's master key; never clear text
    sealed_secret      BLOB,
    users_delta_link   TEXT,
    groups_delta_link  TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces(id),
    connection_id  TEXT REFERENCES directory_connections(id),
    external_id    TEXT,
    upn            TEXT NOT NULL,
    upn_key        TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    mail           TEXT,
    department     TEXT,
    enabled        INTEGER NOT NULL,
    lifecycle      TEXT NOT NULL CHECK (lifecycle IN ('active', 'deprovision_pending', 'deprovisioned')),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (workspace_id, upn_key),
    UNIQUE (workspace_id, external_id)
);
CREATE INDEX users_by_lifecycle ON users (workspace_id, lifecycle);

CREATE TABLE directory_groups (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces(id),
    connection_id  TEXT REFERENCES directory_connections(id),
    external_id    TEXT,
    display_name   TEXT NOT NULL,
    description    TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (workspace_id, external_id)
);

CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES directory_groups(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE security_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    user_id       TEXT NOT NULL REFERENCES users(id),
    kind          TEXT NOT NULL CHECK (kind IN ('vault', 'device', 'ctap2')),
    state         TEXT NOT NULL CHECK (state IN ('assigned', 'active', 'revoked')),
    label         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX security_keys_by_user ON security_keys (user_id, state);

CREATE TABLE passkeys (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id),
    user_id          TEXT NOT NULL REFERENCES users(id),
    security_key_id  TEXT NOT NULL REFERENCES security_keys(id),
    rp_id            TEXT NOT NULL,
    credential_id    BLOB NOT NULL,
    public_key_cose  BLOB NOT NULL,
    aaguid           TEXT NOT NULL,
    rp_method_id     TEXT,
    state            TEXT NOT NULL CHECK (state IN ('created', 'registered', 'revoked')),
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    registered_at    INTEGER,
    revoked_at       INTEGER,
    UNIQUE (rp_id, credential_id)
);
CREATE INDEX passkeys_by_user ON passkeys (user_id, rp_id, state);

CREATE TABLE provisioning_jobs (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    rp_id         TEXT NOT NULL,
    options       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'completed', 'cancelled')),
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE provisioning_items (
    id            TEXT PRIMARY KEY,
    job_id        TEXT NOT NULL REFERENCES provisioning_jobs(id),
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    user_id       TEXT NOT NULL REFERENCES users(id),
    state         TEXT NOT NULL CHECK (state IN ('pending', 'options_fetched', 'credential_created', 'registered', 'failed', 'skipped')),
    reason        TEXT,
    error_code    TEXT,
    request_id    TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    passkey_id    TEXT REFERENCES passkeys(id),
    locked_by     TEXT,
    locked_until  INTEGER,
    updated_at    INTEGER NOT NULL,
    UNIQUE (job_id, user_id)
);
CREATE INDEX provisioning_items_claim ON provisioning_items (job_id, state, locked_until);

CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    at            INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    user_id       TEXT,
    rp_id         TEXT,
    outcome       TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'skipped')),
    detail        TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (workspace_id, at);
CREATE INDEX events_by_user ON events (user_id, at);

-- Events are append-only: the database itself refuses to change or remove one.
CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
