-- schemas/sqlite/V2__events.sql: photo status changes, for live status (SSE).
--
-- One row per change, written in the same transaction as the change itself,
-- so a client that resumes after event N (Last-Event-ID) misses nothing and
-- never sees a change that was rolled back. Rows outlive their photo (a
-- deleted photo's history stays consistent for clients that replay it).
-- Forward-only: V1 code neither reads nor writes this table.

CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: ids only grow
    user_id         TEXT NOT NULL,
    photo_id        TEXT NOT NULL,
    batch_id        TEXT,
    status          TEXT NOT NULL,
    error           TEXT,
    created_at      TEXT NOT NULL
);
-- A user's events after some id
CREATE INDEX events_user ON events (user_id, id);
