-- The vault (PostgreSQL): credential private keys and other workspace secrets, sealed (envelope encryption).
-- Each secret is encrypted with its own random data key (AES-256-GCM, the row's identity as
-- associated data); the data key is encrypted by the workspace master key named master_key_id.
-- Nothing in these tables is key material in clear. The SQLite migration of the same number
-- describes the same tables.
-- A deleted row is gone from queries at once, but PostgreSQL (MVCC) leaves the dead tuple in its
-- data file until VACUUM reclaims the space, and it may persist in WAL, replicas and backups.
-- What stays there is sealed: a destroyed credential is unrecoverable without the master key
-- that wrapped its data key. Someone holding both such a stale copy and that master key could
-- still open it; rotating the master key and destroying the old one ends that (crypto-shredding).

CREATE TABLE vault_credentials (
    workspace_id       TEXT NOT NULL REFERENCES workspaces(id),
    rp_id              TEXT NOT NULL,
    credential_id      BYTEA NOT NULL,
    user_handle        BYTEA NOT NULL,
    user_name          TEXT NOT NULL,
    user_display_name  TEXT NOT NULL,
    algorithm          BIGINT NOT NULL,
    public_key_cose    BYTEA NOT NULL,
    aaguid             TEXT NOT NULL,
    sign_count         BIGINT NOT NULL DEFAULT 0,
    cred_protect       BIGINT,
    created_at         BIGINT NOT NULL,
    master_key_id      TEXT NOT NULL,
    wrapped_data_key   BYTEA NOT NULL,
    sealed_secret      BYTEA NOT NULL,
    PRIMARY KEY (workspace_id, rp_id, credential_id)
);
CREATE INDEX vault_credentials_by_user ON vault_credentials (workspace_id, rp_id, user_handle);
CREATE INDEX vault_credentials_by_master_key ON vault_credentials (workspace_id, master_key_id);

CREATE TABLE vault_secrets (
    workspace_id      TEXT NOT NULL REFERENCES workspaces(id),
    name              TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    master_key_id     TEXT NOT NULL,
    wrapped_data_key  BYTEA NOT NULL,
    sealed_secret     BYTEA NOT NULL,
    PRIMARY KEY (workspace_id, name)
);
CREATE INDEX vault_secrets_by_master_key ON vault_secrets (workspace_id, master_key_id);
