-- Behalf Key, the browser authenticator (docs/BEHALF_KEY.md): pairing codes, paired devices and
-- the users' PINs. The PostgreSQL migration of the same number must describe the same tables.
-- `user_id` has no foreign key, as directory_writes: deleting a user in Behalf must not fail on
-- their devices; their devices and PIN go with their deprovisioning.

-- A one-time pairing code: only its HMAC under the pepper is kept. `used_at` is set by the
-- pairing that consumed it, in the same transaction that records the device.
CREATE TABLE key_pairings (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    user_id       TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    code_hash     TEXT NOT NULL UNIQUE,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE INDEX key_pairings_by_user ON key_pairings (user_id);

-- A paired browser profile. `thumbprint` (RFC 7638, of the device key) is how a signed request
-- names it; `public_key_jwk` is the key it is verified with. A revoked device keeps its row.
CREATE TABLE key_devices (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id),
    user_id         TEXT NOT NULL,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    thumbprint      TEXT NOT NULL UNIQUE,
    public_key_jwk  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX key_devices_by_user ON key_devices (user_id);

-- A user's Behalf Key PIN: argon2id, and the retries left (CTAP 2.1: 8; 0 is blocked).
CREATE TABLE key_pins (
    user_id       TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id),
    pin_hash      TEXT NOT NULL,
    retries       BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Where a passkey registered through an admin's Behalf Key was made: the website's origin and the
-- device that asked (its event, in the same commit as the passkey, says so too).
CREATE TABLE passkey_origins (
    passkey_id     TEXT PRIMARY KEY,
    origin         TEXT NOT NULL,
    registered_by  TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

-- A local key's registration request, one per provisioning item (the engine makes it and watches
-- it): the user's Behalf Key lists it, approves it (fresh creation options from Graph, their
-- challenge kept here) and answers with the attestation, which the engine registers at Graph.
CREATE TABLE key_requests (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id),
    job_id           TEXT NOT NULL,
    item_id          TEXT NOT NULL UNIQUE,
    user_id          TEXT NOT NULL,
    rp_id            TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'attested', 'declined', 'expired', 'registered', 'failed')),
    asked_by         TEXT NOT NULL,
    challenge        TEXT,
    user_handle      TEXT,
    registration     TEXT,
    credential_id    BYTEA,
    public_key_cose  BYTEA,
    aaguid           TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX key_requests_by_user ON key_requests (user_id, state);
