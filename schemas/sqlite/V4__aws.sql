-- schemas/sqlite/V4__aws.sql: the AWS bridges (issue 6).
--
-- s3_objects: every S3 object the ingest bridge took in, by the identity S3
-- gives it (bucket, key, ETag), and the photo it became. A notification
-- delivered twice, or to two engines, finds its object here and makes no
-- second photo.
-- outbox: where each publisher (the SQS events producer, 'sqs-events') got
-- to in the events table, and a lease (lease_owner until lease_until_ms,
-- milliseconds since the epoch) so one engine at a time publishes.
-- Forward-only: V3 code neither reads nor writes these tables.

CREATE TABLE s3_objects (
    bucket          TEXT NOT NULL,
    object_key      TEXT NOT NULL,
    etag            TEXT NOT NULL,
    photo_id        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (bucket, object_key, etag)
);

CREATE TABLE outbox (
    name            TEXT PRIMARY KEY NOT NULL,
    last_event_id   INTEGER NOT NULL DEFAULT 0,  -- the last event id published
    lease_owner     TEXT,
    lease_until_ms  INTEGER NOT NULL DEFAULT 0
);
