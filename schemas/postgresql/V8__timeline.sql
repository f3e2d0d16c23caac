-- schemas/postgresql/V8__timeline.sql: the timeline, photos by the date
-- they were taken (GET /api/v1/photos?sort=taken_at).
--
-- taken_at is the camera's local time as EXIF gives it (text,
-- "YYYY-MM-DDTHH:MM:SS" with an optional "+HH:MM"/"-HH:MM" offset). It does
-- not sort across offsets, so taken_sort holds it as a timestamptz(3):
-- with an offset, that instant; without one, taken as it is, as if it were
-- UTC (the camera's wall clock: nothing better is known), whatever the
-- session's TimeZone. Anything else (or a date PostgreSQL cannot hold)
-- leaves it NULL, never fails the write. A photo's sort key is
-- coalesce (taken_sort, created_at): a photo with no date taken (or none
-- yet, while it is processed) sorts by its upload time.
--
-- A trigger keeps taken_sort in step with taken_at whoever writes it (this
-- release committing an EXIF result, or the previous release after a
-- rollback), and the UPDATE at the end fills it for the rows already there.
-- Expand only (schemas/README.md): a nullable column, a trigger, indexes.

ALTER TABLE photos ADD COLUMN taken_sort timestamptz(3);

CREATE FUNCTION photos_taken_sort () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.taken_sort := NULL;
    IF NEW.taken_at ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([+-][0-9]{2}:[0-9]{2})?$' THEN
        BEGIN
            NEW.taken_sort := (CASE WHEN length (NEW.taken_at) = 19 THEN NEW.taken_at || '+00:00'
                                    ELSE NEW.taken_at END)::timestamptz;
        EXCEPTION WHEN others THEN
            NEW.taken_sort := NULL;
        END;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER photos_taken_sort BEFORE INSERT OR UPDATE OF taken_at ON photos
    FOR EACH ROW EXECUTE FUNCTION photos_taken_sort ();

-- A user's timeline, newest first (keyset pagination on the key, id)
CREATE INDEX photos_user_taken ON photos (user_id, (coalesce (taken_sort, created_at)) DESC, id DESC);
-- ... filtered by status
CREATE INDEX photos_user_status_taken ON photos (user_id, status, (coalesce (taken_sort, created_at)) DESC, id DESC);

-- The rows already there (fires the trigger)
UPDATE photos SET taken_at = taken_at WHERE taken_at IS NOT NULL;
