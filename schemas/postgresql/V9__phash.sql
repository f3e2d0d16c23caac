-- schemas/postgresql/V9__phash.sql: near-duplicates (issue 14, item 4).
--
-- phash is the photo's 64-bit perceptual hash (engine/phash.h) as 16
-- lowercase hex characters, NULL until it completes (and for photos that
-- completed before this release). phash_b0..phash_b2 are its three 21-bit
-- bands (bits 63..43, 42..22, 21..1), each indexed per user: a
-- Hamming-distance search scans, in each band, the ranges of values whose
-- leading bits (about log2 of the library's size of them) are within a
-- small radius of the query's (multi-index hashing, engine/phash.h) and
-- checks only those candidates. events.similar_ids is a complete event's list of the user's
-- photos within the threshold at completion time, as a JSON array of ids.
-- Expand-only: nullable columns and indexes; V8 code neither reads nor
-- writes them.

ALTER TABLE photos ADD COLUMN phash text COLLATE "C";
ALTER TABLE photos ADD COLUMN phash_b0 integer;
ALTER TABLE photos ADD COLUMN phash_b1 integer;
ALTER TABLE photos ADD COLUMN phash_b2 integer;
CREATE INDEX photos_phash_b0 ON photos (user_id, phash_b0) WHERE phash_b0 IS NOT NULL;
CREATE INDEX photos_phash_b1 ON photos (user_id, phash_b1) WHERE phash_b1 IS NOT NULL;
CREATE INDEX photos_phash_b2 ON photos (user_id, phash_b2) WHERE phash_b2 IS NOT NULL;

ALTER TABLE events ADD COLUMN similar_ids text;
