-- schemas/postgresql/V3__tus.sql: resumable uploads (tus 1.0).
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
    id              text PRIMARY KEY NOT NULL,   -- = the photo's id at creation
    user_id         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    length          bigint,                     -- NULL while deferred
    received        bigint NOT NULL DEFAULT 0,  -- the durable offset
    metadata        text,                        -- Upload-Metadata as sent
    created_ms      bigint NOT NULL,
    expires_ms      bigint NOT NULL,
    lock_owner      text,
    lock_until_ms   bigint NOT NULL DEFAULT 0,
    done            integer NOT NULL DEFAULT 0,   -- the photo left 'uploading'
    photo_id        text,                        -- when done: the photo (the existing one for a duplicate)
    duplicate       integer NOT NULL DEFAULT 0
);
CREATE INDEX tus_uploads_expires ON tus_uploads (expires_ms);

CREATE TABLE tus_parts (
    upload_id       text NOT NULL REFERENCES tus_uploads (id) ON DELETE CASCADE,
    start           bigint NOT NULL,
    length          bigint NOT NULL,
    name            text NOT NULL,               -- file name under tus/<upload id>/
    PRIMARY KEY (upload_id, start)
);

-- Upload progress and duplicates in the event stream
ALTER TABLE events ADD COLUMN received bigint;
ALTER TABLE events ADD COLUMN length bigint;
ALTER TABLE events ADD COLUMN duplicate_of text;
