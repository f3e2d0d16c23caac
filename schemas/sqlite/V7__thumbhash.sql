-- schemas/sqlite/V7__thumbhash.sql: a ThumbHash placeholder for each photo
-- (issue 14), and on the events that record its completion.
--
-- photos.thumbhash is the placeholder's base64 (standard alphabet, padded;
-- 5 to 32 bytes, about 25: engine/thumbhash.h), set when the photo
-- completes; NULL before, and for photos an older release completed.
-- events.thumbhash is the photo's, copied when a 'complete' event is
-- recorded, so live status (SSE) and the outbox carry it even after the
-- photo is gone.
-- Expand-only (schemas/README.md): nullable columns; V6 code neither reads
-- nor writes them, and what it writes stays valid.

ALTER TABLE photos ADD COLUMN thumbhash TEXT;
ALTER TABLE events ADD COLUMN thumbhash TEXT;
