-- schemas/postgresql/V5__bytes.sql: tombstones for stored bytes (issue 13).
--
-- Bytes are stored once per SHA-256 and shared by every photo with it.
-- Nothing removes them outright any more: a delete that leaves no photo
-- referring to an address, an ingest undone and a photo deleted while it
-- was processing each record a tombstone here, in the transaction that
-- made the address unreferenced (or just after). The collector takes a
-- tombstone in a transaction that holds the address's lock
-- (pg_advisory_xact_lock on the address), checks again that no photo
-- refers to the address, removes the bytes and the tombstone; an ingest
-- commits its row under the same lock and drops the address's tombstone.
-- A tombstone is a hint, never a verdict: one whose address is referred to
-- again is dropped without removing anything.
-- Expand-only: V4 code neither reads nor writes this table.

CREATE TABLE blob_tombstones (
    sha256          text COLLATE "C" PRIMARY KEY,   -- the address, lowercase hex
    created_at      timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX blob_tombstones_created ON blob_tombstones (created_at);
