-- The manual path (issue 16): an item may wait for its user to register a passkey themselves
-- with a Temporary Access Pass Behalf mailed them. The pass's Graph id and lifetime are kept on
-- the item (never the pass), written in the commit that moves it to 'waiting_for_user'.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt with the new state
-- and columns, the rows copied, and its indexes made again. No table refers to it.
CREATE TABLE provisioning_items_new (
    id              TEXT PRIMARY KEY,
    job_id          TEXT NOT NULL REFERENCES provisioning_jobs(id),
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id),
    user_id         TEXT NOT NULL REFERENCES users(id),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'options_fetched', 'credential_created', 'waiting_for_user', 'registered', 'failed', 'skipped')),
    reason          TEXT,
    error_code      TEXT,
    request_id      TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    passkey_id      TEXT REFERENCES passkeys(id),
    locked_by       TEXT,
    locked_until    INTEGER,
    updated_at      INTEGER NOT NULL,
    pass_method_id  TEXT,
    pass_issued_at  INTEGER,
    pass_expires_at INTEGER,
    UNIQUE (job_id, user_id)
);
INSERT INTO provisioning_items_new (id, job_id, workspace_id, user_id, state, reason, error_code,
    request_id, attempts, passkey_id, locked_by, locked_until, updated_at)
SELECT id, job_id, workspace_id, user_id, state, reason, error_code, request_id, attempts,
    passkey_id, locked_by, locked_until, updated_at FROM provisioning_items;
DROP TABLE provisioning_items;
ALTER TABLE provisioning_items_new RENAME TO provisioning_items;
CREATE INDEX provisioning_items_claim ON provisioning_items (job_id, state, locked_until);
CREATE INDEX provisioning_items_by_job ON provisioning_items (job_id, id);
