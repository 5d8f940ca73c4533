-- Password-reset links (issue 16): a one-time link mailed to a user, to a Behalf page where they
-- set a new password that Behalf writes to Entra ID and never keeps. The link's token is kept
-- only as its HMAC under the vault's pepper (token_hash), like every secret Behalf hands out.
-- A link is used (used_at) once Entra ID accepted a password through it; 'attempts' counts the
-- passwords Entra ID refused through it, and a link with too many is spent.
CREATE TABLE password_reset_links (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX password_reset_links_by_user ON password_reset_links (user_id);
