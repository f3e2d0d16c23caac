-- schemas/postgresql/V2__events.sql: photo status changes, for live status (SSE).
--
-- One row per change, written in the same transaction as the change itself,
-- so a client that resumes after event N (Last-Event-ID) misses nothing and
-- never sees a change that was rolled back. Rows outlive their photo.
-- Forward-only: V1 code neither reads nor writes this table.
--
-- Note: bigserial ids are handed out at insert, not at commit, so under
-- concurrent writers an id can become visible after a higher one. Readers
-- therefore only trust ids older than a short settling time, or re-read a
-- little behind (the gateway re-reads from its last id each time).

CREATE TABLE events (
    id              bigserial PRIMARY KEY,
    user_id         text NOT NULL,
    photo_id        text NOT NULL,
    batch_id        text,
    status          text NOT NULL,
    error           text,
    created_at      timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX events_user ON events (user_id, id);
