-- SCIM 2.0 service provider (RFC 7643, RFC 7644) at /scim/v2: the bearer tokens of SCIM
-- connections, and what SCIM keeps of users and groups beside the columns Behalf already has.
-- The SQLite migration of the same number must describe the same tables.

-- Whether a new active user pushed by this connection gets a passkey queued at once.
ALTER TABLE directory_connections ADD COLUMN scim_auto_provision BIGINT NOT NULL DEFAULT 0;

-- One connection may have several tokens (rotation). The store keeps only the HMAC of each.
CREATE TABLE scim_tokens (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces(id),
    connection_id  TEXT NOT NULL REFERENCES directory_connections(id),
    name           TEXT NOT NULL,
    token_hash     TEXT NOT NULL UNIQUE,
    created_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT,
    revoked_at     BIGINT
);
CREATE INDEX scim_tokens_by_connection ON scim_tokens (connection_id, created_at);

-- Users pushed by SCIM. `external_id` stays the Entra object id the engine addresses Graph with
-- (NULL for a pushed user, so the engine uses the UPN); the SCIM `externalId` has its own column.
-- `scim_display_key` is the lowercased SCIM displayName (NULL when the resource has none, where
-- `display_name` falls back to the userName). `scim_version` is the ETag; `scim_resource` the
-- RFC 7643 resource as last written (attributes without a column live only there); a DELETEd
-- user keeps its row (passkeys and events refer to it) with `scim_deleted_at` set.
ALTER TABLE users ADD COLUMN scim_external_id TEXT;
ALTER TABLE users ADD COLUMN scim_display_key TEXT;
ALTER TABLE users ADD COLUMN scim_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN scim_resource TEXT;
ALTER TABLE users ADD COLUMN scim_deleted_at BIGINT;
-- Filters and sorts within a connection (userName is compared on upn_key, case-insensitively;
-- the (workspace_id, upn_key) unique index answers `userName eq`).
CREATE INDEX users_scim_by_upn ON users (connection_id, upn_key);
CREATE INDEX users_scim_by_external_id ON users (connection_id, scim_external_id);
CREATE INDEX users_scim_by_display ON users (connection_id, scim_display_key);
CREATE INDEX users_scim_by_active ON users (connection_id, enabled);
CREATE INDEX users_scim_by_created ON users (connection_id, created_at);
CREATE INDEX users_scim_by_modified ON users (connection_id, updated_at);

-- A SCIM user's emails, one row each, for `emails.value` / `emails[type eq …]` filters.
-- `value_key` and `type_key` are lowercased (both are caseExact false in RFC 7643 §4.1.2).
CREATE TABLE scim_user_emails (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    value_key   TEXT NOT NULL,
    type_key    TEXT,
    is_primary  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, position)
);
CREATE INDEX scim_user_emails_by_value ON scim_user_emails (value_key);

-- Groups pushed by SCIM: as users (members stay in group_members).
ALTER TABLE directory_groups ADD COLUMN scim_external_id TEXT;
ALTER TABLE directory_groups ADD COLUMN scim_display_key TEXT;
ALTER TABLE directory_groups ADD COLUMN scim_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE directory_groups ADD COLUMN scim_resource TEXT;
CREATE INDEX directory_groups_scim_by_display ON directory_groups (connection_id, scim_display_key);
CREATE INDEX directory_groups_scim_by_external_id ON directory_groups (connection_id, scim_external_id);
CREATE INDEX directory_groups_scim_by_created ON directory_groups (connection_id, created_at);
CREATE INDEX directory_groups_scim_by_modified ON directory_groups (connection_id, updated_at);
