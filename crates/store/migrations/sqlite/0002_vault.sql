-- The vault: credential private keys and other workspace secrets, sealed (envelope encryption).
-- Each secret is encrypted with its own random data key (AES-256-GCM, the row's identity as
-- associated data); the data key is encrypted by the workspace master key named master_key_id.
-- Nothing in these tables is key material in clear. The PostgreSQL migration of the same number
-- describes the same tables. SQLite runs with PRAGMA secure_delete, so a deleted row is overwritten
-- in the file, not left in a free page.

CREATE TABLE vault_credentials (
    workspace_id       TEXT NOT NULL REFERENCES workspaces(id),
    rp_id              TEXT NOT NULL,
    credential_id      BLOB NOT NULL,
    user_handle        BLOB NOT NULL,
    user_name          TEXT NOT NULL,
    user_display_name  TEXT NOT NULL,
    algorithm          INTEGER NOT NULL,
    public_key_cose    BLOB NOT NULL,
    aaguid             TEXT NOT NULL,
    sign_count         INTEGER NOT NULL DEFAULT 0,
    cred_protect       INTEGER,
    created_at         INTEGER NOT NULL,
    master_key_id      TEXT NOT NULL,
    wrapped_data_key   BLOB NOT NULL,
    sealed_secret      BLOB NOT NULL,
    PRIMARY KEY (workspace_id, rp_id, credential_id)
);
CREATE INDEX vault_credentials_by_user ON vault_credentials (workspace_id, rp_id, user_handle);
CREATE INDEX vault_credentials_by_master_key ON vault_credentials (workspace_id, master_key_id);

CREATE TABLE vault_secrets (
    workspace_id      TEXT NOT NULL REFERENCES workspaces(id),
    name              TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    master_key_id     TEXT NOT NULL,
    wrapped_data_key  BLOB NOT NULL,
    sealed_secret     BLOB NOT NULL,
    PRIMARY KEY (workspace_id, name)
);
CREATE INDEX vault_secrets_by_master_key ON vault_secrets (workspace_id, master_key_id);
