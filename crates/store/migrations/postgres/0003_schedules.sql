-- Recurring background work (the server's directory sync), run by one instance at a time.
-- An instance takes a due schedule with a lease (locked_by, locked_until) in one conditional
-- UPDATE; a crashed instance's lease expires and another takes over. Finishing moves next_run_at.
CREATE TABLE schedules (
    name              TEXT PRIMARY KEY,
    next_run_at       BIGINT NOT NULL,
    locked_by         TEXT,
    locked_until      BIGINT,
    last_started_at   BIGINT,
    last_finished_at  BIGINT,
    last_outcome      TEXT,
    last_error        TEXT
);
