-- schemas/sqlite/V8__timeline.sql: the timeline, photos by the date they
-- were taken (GET /api/v1/photos?sort=taken_at).
--
-- taken_at is the camera's local time as EXIF gives it,
-- "YYYY-MM-DDTHH:MM:SS" with an optional "+HH:MM"/"-HH:MM" offset. It does
-- not sort as text across offsets, so taken_sort holds it normalised in
-- created_at's form, "2026-11-29T02:10:00.000Z": with an offset, converted
-- to UTC; without one, taken as it is (as if it were UTC: the camera's
-- wall clock, nothing better is known). Anything else leaves it NULL.
-- A photo's sort key is coalesce (taken_sort, created_at): a photo with no
-- date taken (or none yet, while it is processed) sorts by its upload time.
--
-- Triggers keep taken_sort in step with taken_at whoever writes it (this
-- release committing an EXIF result, or the previous release after a
-- rollback), and the UPDATE at the end fills it for the rows already there.
-- Expand only (schemas/README.md): a nullable column, triggers, indexes.

ALTER TABLE photos ADD COLUMN taken_sort TEXT;

CREATE TRIGGER photos_taken_sort_insert AFTER INSERT ON photos
WHEN NEW.taken_at IS NOT NULL
BEGIN
    UPDATE photos SET taken_sort =
        CASE WHEN NEW.taken_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]'
               OR NEW.taken_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9][+][0-9][0-9]:[0-9][0-9]'
               OR NEW.taken_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9][-][0-9][0-9]:[0-9][0-9]'
             THEN strftime ('%Y-%m-%dT%H:%M:%fZ', NEW.taken_at) END
    WHERE id = NEW.id;
END;

CREATE TRIGGER photos_taken_sort_update AFTER UPDATE OF taken_at ON photos
BEGIN
    UPDATE photos SET taken_sort =
        CASE WHEN NEW.taken_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]'
               OR NEW.taken_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9][+][0-9][0-9]:[0-9][0-9]'
               OR NEW.taken_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9][-][0-9][0-9]:[0-9][0-9]'
             THEN strftime ('%Y-%m-%dT%H:%M:%fZ', NEW.taken_at) END
    WHERE id = NEW.id;
END;

-- A user's timeline, newest first (keyset pagination on the key, id)
CREATE INDEX photos_user_taken ON photos (user_id, coalesce (taken_sort, created_at) DESC, id DESC);
-- ... filtered by status
CREATE INDEX photos_user_status_taken ON photos (user_id, status, coalesce (taken_sort, created_at) DESC, id DESC);

-- The rows already there (fires photos_taken_sort_update)
UPDATE photos SET taken_at = taken_at WHERE taken_at IS NOT NULL;
