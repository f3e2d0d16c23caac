-- schemas/postgresql/V1__init.sql: the photo library's metadata (PostgreSQL).
--
-- Forward-only: never edit a released migration; add V2__*.sql instead, and
-- keep the previous release working against the new schema (add columns
-- with defaults, do not rename or drop what it still reads).
--
-- Ids, names, hashes and tags compare bytewise (COLLATE "C"), as in SQLite,
-- whatever the database's locale. created_at keeps milliseconds, the
-- precision the API shows and the list cursor carries. taken_at is the
-- camera's time as given, with its offset. Ids are 32 lowercase hex characters.

CREATE TABLE users (
    id              text COLLATE "C" PRIMARY KEY,
    name            text COLLATE "C" NOT NULL UNIQUE,
    password_hash   text NOT NULL,
    created_at      timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE batches (
    id              text COLLATE "C" PRIMARY KEY,
    user_id         text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX batches_user ON batches (user_id, created_at);

CREATE TABLE photos (
    id              text COLLATE "C" PRIMARY KEY,
    user_id         text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    batch_id        text COLLATE "C" NOT NULL REFERENCES batches (id),
    filename        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('uploading', 'queued', 'processing', 'complete', 'failed')),
    error           text,                       -- the last failure's reason
    sha256          text COLLATE "C" NOT NULL,  -- of the original bytes, lowercase hex
    bytes           bigint NOT NULL DEFAULT 0,
    content_type    text,
    width           integer,                    -- as displayed (after orientation)
    height          integer,
    taken_at        text,
    exif            jsonb,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),  -- queued photos are claimed once due
    created_at      timestamptz(3) NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT photos_user_sha256 UNIQUE (user_id, sha256)  -- duplicate detection, per user
);
-- A user's library, newest first (keyset pagination on created_at, id)
CREATE INDEX photos_user_created ON photos (user_id, created_at DESC, id DESC);
-- A user's library filtered by status
CREATE INDEX photos_user_status ON photos (user_id, status, created_at DESC, id DESC);
-- Status counts
CREATE INDEX photos_status ON photos (status);
-- Claiming the due queued photos
CREATE INDEX photos_due ON photos (next_attempt_at) WHERE status = 'queued';
CREATE INDEX photos_batch ON photos (batch_id, created_at);
-- Whether any photo (of any user) still refers to some bytes
CREATE INDEX photos_sha256 ON photos (sha256);

CREATE TABLE tags (
    photo_id        text COLLATE "C" NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    tag             text COLLATE "C" NOT NULL,  -- trimmed, 1..64 bytes, case kept
    PRIMARY KEY (photo_id, tag)
);
CREATE INDEX tags_tag ON tags (tag, photo_id);
