-- schemas/sqlite/V1__init.sql: the photo library's metadata (SQLite).
--
-- Forward-only: never edit a released migration; add V2__*.sql instead, and
-- keep the previous release working against the new schema (add columns
-- with defaults, do not rename or drop what it still reads).
--
-- Times are ISO 8601 UTC text with milliseconds, "2026-11-29T02:10:00.123Z":
-- they sort as text. taken_at is the camera's time as given, with its offset.
-- Ids are 32 lowercase hex characters.

CREATE TABLE users (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE TABLE batches (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      TEXT NOT NULL
);
CREATE INDEX batches_user ON batches (user_id, created_at);

CREATE TABLE photos (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    batch_id        TEXT NOT NULL REFERENCES batches (id),
    filename        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('uploading', 'queued', 'processing', 'complete', 'failed')),
    error           TEXT,                       -- the last failure's reason
    sha256          TEXT NOT NULL,              -- of the original bytes, lowercase hex
    bytes           INTEGER NOT NULL DEFAULT 0,
    content_type    TEXT,
    width           INTEGER,                    -- as displayed (after orientation)
    height          INTEGER,
    taken_at        TEXT,
    exif            TEXT,                       -- JSON object
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,              -- queued photos are claimed once due
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (user_id, sha256)                    -- duplicate detection, per user
);
-- A user's library, newest first (keyset pagination on created_at, id)
CREATE INDEX photos_user_created ON photos (user_id, created_at DESC, id DESC);
-- A user's library filtered by status
CREATE INDEX photos_user_status ON photos (user_id, status, created_at DESC, id DESC);
-- Status counts, and claiming the due queued photos
CREATE INDEX photos_status_due ON photos (status, next_attempt_at);
CREATE INDEX photos_batch ON photos (batch_id, created_at);
-- Whether any photo (of any user) still refers to some bytes
CREATE INDEX photos_sha256 ON photos (sha256);

CREATE TABLE tags (
    photo_id        TEXT NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    tag             TEXT NOT NULL,              -- trimmed, 1..64 bytes, case kept
    PRIMARY KEY (photo_id, tag)
);
CREATE INDEX tags_tag ON tags (tag, photo_id);
