-- schemas/sqlite/V3__tus.sql: resumable uploads (tus 1.0).
--
-- An upload is a photo in status 'uploading' from its creation on; its id
-- is the photo's id. Until the last byte is in, the photo's sha256 is the
-- placeholder 'pending:<id>' (unique, never 64 hex characters, shown as
-- null by the API). The bytes arrive as parts: each PATCH writes its own
-- file under <data.dir>/tus/<id>/ and commits (start, length) here, so a
-- PATCH cut off keeps what arrived and two requests never write one file.
-- lock_owner/lock_until_ms is a lease: one request at a time appends, and a
-- lease that ran out (a dead request or engine) is taken over.
-- Times are milliseconds since the epoch (the engines' clocks).
-- Forward-only: V2 code neither reads nor writes these tables or columns.

CREATE TABLE tus_uploads (
    id              TEXT PRIMARY KEY NOT NULL,   -- = the photo's id at creation
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    length          INTEGER,                     -- NULL while deferred
    received        INTEGER NOT NULL DEFAULT 0,  -- the durable offset
    metadata        TEXT,                        -- Upload-Metadata as sent
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    lock_owner      TEXT,
    lock_until_ms   INTEGER NOT NULL DEFAULT 0,
    done            INTEGER NOT NULL DEFAULT 0,  -- the photo left 'uploading'
    photo_id        TEXT,                        -- when done: the photo (the existing one for a duplicate)
    duplicate       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tus_uploads_expires ON tus_uploads (expires_ms);

CREATE TABLE tus_parts (
    upload_id       TEXT NOT NULL REFERENCES tus_uploads (id) ON DELETE CASCADE,
    start           INTEGER NOT NULL,
    length          INTEGER NOT NULL,
    name            TEXT NOT NULL,               -- file name under tus/<upload id>/
    PRIMARY KEY (upload_id, start)
);

-- Upload progress and duplicates in the event stream
ALTER TABLE events ADD COLUMN received INTEGER;
ALTER TABLE events ADD COLUMN length INTEGER;
ALTER TABLE events ADD COLUMN duplicate_of TEXT;
