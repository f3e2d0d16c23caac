-- schemas/postgresql/V10__integrity.sql: bit-rot checks (issue 14, scrub).
--
-- `rapidphoto scrub` and the background scrub on serve re-read a photo's
-- original and compare its SHA-256 with the row's; what they found is kept
-- here: integrity 'ok' or 'damaged' (NULL: never checked), and when
-- (checked_at). Bytes are shared by every photo with the same sha256, so
-- one check marks all of those rows. The background scrub walks complete
-- photos by checked_at, never-checked first, which makes it resumable
-- across restarts: the index below.
-- Expand-only: V9 code neither reads nor writes these columns.

ALTER TABLE photos ADD COLUMN integrity text CHECK (integrity IS NULL OR integrity IN ('ok', 'damaged'));
ALTER TABLE photos ADD COLUMN checked_at timestamptz(3);
CREATE INDEX photos_status_checked ON photos (status, checked_at NULLS FIRST, id);
