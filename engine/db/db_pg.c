/*  engine/db/db_pg.c: the PostgreSQL driver (libpq).

    One PGconn per rp_db_t: it belongs to one actor. Every statement is
    prepared (PQprepare) once per connection, on first use, and run with
    PQexecPrepared: values always travel as parameters, never inside SQL
    text. Only constant text goes through PQexec: BEGIN/COMMIT/ROLLBACK and
    the compiled-in migration scripts.

    Times are timestamptz, and the clock is the database's (now()), so
    engines on several hosts agree on what is due. created_at keeps
    milliseconds (timestamptz(3)): the text the API shows, and the list
    cursor carries, is exactly the stored value.

    Claiming locks the due rows with SELECT ... FOR UPDATE SKIP LOCKED and
    updates exactly those, RETURNING them: concurrent claimers (in any
    process) skip each other's rows instead of waiting for them or taking
    them twice. The SELECT is a CTE, evaluated once: written as
    "WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)" the planner
    may rescan the subquery per row and claim more than n.

    A connection found broken outside a transaction is reset once (its
    prepared statements with it) before the next statement.
*/
#include "engine/db/db_private.h"
#include "engine/log.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    PGconn *conn;                           //  the connection
    bool prepared [RP_SQL_COUNT];           //  statements prepared on this session
    bool in_txn;                            //  between BEGIN and COMMIT/ROLLBACK
} s_pg_t;

#define TS(x) "to_char (" x " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define PHOTO_COLUMNS \
    "p.id, p.filename, p.status, p.error, p.sha256, p.bytes, p.content_type, p.width, " \
    "p.height, p.taken_at, p.exif::text, " \
    "(SELECT coalesce (json_agg (t.tag), '[]'::json)::text FROM tags t WHERE t.photo_id = p.id), " \
    "p.batch_id, " TS ("p.created_at") ", p.attempts, " \
    "p.integrity, " TS ("p.checked_at") ", p.thumbhash, p.phash"

//  A page of the timeline by `key` (the expression its V8 index holds);
//  the plain key <= bound beside the exact row value bounds the index scan
#define S_TIMELINE(key, status) \
    "SELECT " PHOTO_COLUMNS ", " TS (key) " FROM photos p WHERE p.user_id = $1 " \
    "AND (" key ", p.id) < (coalesce ($4::timestamptz, 'infinity'), coalesce ($5::text, '')) " \
    "AND " key " <= coalesce ($4::timestamptz, 'infinity') " \
    "AND " key " >= coalesce ($6::timestamptz, '-infinity') " status \
    "AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM tags t WHERE t.photo_id = p.id AND t.tag = $2)) " \
    "ORDER BY " key " DESC, p.id DESC LIMIT $3::int"

static const char *const s_sql [RP_SQL_COUNT] = {
    [RP_SQL_PING] = "SELECT 1",

    //  Commands ----------------------------------------------------------------
    [RP_SQL_USER_INSERT] =
        "INSERT INTO users (id, name, password_hash) VALUES ($1, $2, $3)",
    [RP_SQL_USER_SET_PASSWORD] =
        "UPDATE users SET password_hash = $2 WHERE name = $1",
    [RP_SQL_PHOTO_BY_SHA] =
        "SELECT id, batch_id FROM photos WHERE user_id = $1 AND sha256 = $2",
    [RP_SQL_BATCH_OWNER] =
        "SELECT user_id FROM batches WHERE id = $1",
    [RP_SQL_BATCH_INSERT] =
        "INSERT INTO batches (id, user_id) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    [RP_SQL_PHOTO_INSERT] =
        "INSERT INTO photos (id, user_id, batch_id, filename, status, sha256, bytes, content_type) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::bigint, $8) "
        "ON CONFLICT (user_id, sha256) DO NOTHING RETURNING id",
    [RP_SQL_PHOTO_LOCK] =
        "SELECT sha256 FROM photos WHERE user_id = $1 AND id = $2 FOR UPDATE",
    [RP_SQL_TAG_INSERT] =
        "INSERT INTO tags (photo_id, tag) VALUES ($1, $2) ON CONFLICT (photo_id, tag) DO NOTHING",
    [RP_SQL_TAG_DELETE] =
        "DELETE FROM tags WHERE photo_id = $1 AND tag = $2",
    [RP_SQL_TAGS_CLEAR] =
        "DELETE FROM tags WHERE photo_id = $1",
    [RP_SQL_TAG_COUNT] =
        "SELECT count(*) FROM tags WHERE photo_id = $1",
    [RP_SQL_PHOTO_CLAIM] =
        "WITH due AS (SELECT id FROM photos "
        "  WHERE status = 'queued' AND next_attempt_at <= now() "
        "  ORDER BY next_attempt_at, created_at, id LIMIT $1::int FOR UPDATE SKIP LOCKED) "
        "UPDATE photos p SET status = 'processing', attempts = p.attempts + 1, updated_at = now() "
        "FROM due WHERE p.id = due.id AND p.status = 'queued' "
        "RETURNING p.id, p.user_id, p.sha256, p.filename, p.attempts, p.batch_id",
    [RP_SQL_PHOTO_COMPLETE] =
        "UPDATE photos SET status = 'complete', error = NULL, "
        "content_type = coalesce ($2, content_type), width = $3::int, height = $4::int, "
        "taken_at = $5, exif = $6::jsonb, thumbhash = $7, updated_at = now() "
        "WHERE id = $1 AND status = 'processing'",
    [RP_SQL_PHOTO_RETRY] =
        "UPDATE photos SET status = 'queued', error = $2, updated_at = now(), "
        "next_attempt_at = now() + $3::bigint * interval '1 millisecond' "
        "WHERE id = $1 AND status = 'processing'",
    [RP_SQL_PHOTO_FAIL] =
        "UPDATE photos SET status = 'failed', error = $2, updated_at = now() "
        "WHERE id = $1 AND status = 'processing'",
    [RP_SQL_PHOTO_REQUEUE] =
        "UPDATE photos SET status = 'queued', next_attempt_at = now(), updated_at = now() "
        "WHERE status = 'processing' AND updated_at <= now() - $1::bigint * interval '1 millisecond'",
    [RP_SQL_PHOTO_UPLOADED] =
        "UPDATE photos SET status = 'queued', next_attempt_at = now(), updated_at = now() "
        "WHERE id = $1 AND status = 'uploading'",
    [RP_SQL_PHOTO_RELEASE] =
        "UPDATE photos SET status = 'queued', attempts = attempts - 1, next_attempt_at = now(), "
        "updated_at = now() WHERE id = $1 AND status = 'processing' AND attempts = $2::int",
    [RP_SQL_PHOTO_SHA] =
        "SELECT sha256 FROM photos WHERE user_id = $1 AND id = $2",
    [RP_SQL_PHOTO_DELETE] =
        "DELETE FROM photos WHERE user_id = $1 AND id = $2 AND sha256 = $3 RETURNING sha256",
    [RP_SQL_EVENT_RECORD] =
        "INSERT INTO events (user_id, photo_id, batch_id, status, error, thumbhash) "
        "SELECT user_id, id, batch_id, status, error, "
        "CASE WHEN status = 'complete' THEN thumbhash END FROM photos WHERE id = $1",
    [RP_SQL_EVENT_REQUEUE_ALL] =
        "INSERT INTO events (user_id, photo_id, batch_id, status, error) "
        "SELECT user_id, id, batch_id, 'queued', error FROM photos "
        "WHERE status = 'processing' AND updated_at <= now() - $1::bigint * interval '1 millisecond' "
        "ORDER BY id",

    //  Resumable uploads ---------------------------------------------------------
    [RP_SQL_TUS_INSERT] =
        "INSERT INTO tus_uploads (id, user_id, length, metadata, created_ms, expires_ms) "
        "VALUES ($1, $2, $3::bigint, $4, $5::bigint, $6::bigint)",
    [RP_SQL_TUS_GET] =
        "SELECT user_id, length, received, metadata, expires_ms, lock_owner, lock_until_ms, "
        "done, photo_id, duplicate FROM tus_uploads WHERE id = $1",
    [RP_SQL_TUS_LOCK] =
        "UPDATE tus_uploads SET lock_owner = $2, lock_until_ms = $4::bigint "
        "WHERE id = $1 AND (lock_owner IS NULL OR lock_owner = $2 "
        "  OR lock_until_ms < $3::bigint OR lock_owner = $5::text) RETURNING id",
    [RP_SQL_TUS_UNLOCK] =
        "UPDATE tus_uploads SET lock_owner = NULL, lock_until_ms = 0 WHERE id = $1 AND lock_owner = $2",
    [RP_SQL_TUS_ADVANCE] =
        "UPDATE tus_uploads SET received = $4::bigint, "
        "length = coalesce ($5::bigint, length), lock_until_ms = $6::bigint "
        "WHERE id = $1 AND lock_owner = $2 AND received = $3::bigint AND done = 0 "
        "RETURNING length",
    [RP_SQL_TUS_PART_PUT] =
        "INSERT INTO tus_parts (upload_id, start, length, name) VALUES ($1, $2::bigint, $3::bigint, $4) "
        "ON CONFLICT (upload_id, start) DO UPDATE SET length = excluded.length, name = excluded.name",
    [RP_SQL_TUS_PARTS] =
        "SELECT start, length, name FROM tus_parts WHERE upload_id = $1 ORDER BY start",
    [RP_SQL_TUS_DONE] =
        "UPDATE tus_uploads SET done = 1, photo_id = $2, duplicate = $3::integer, "
        "lock_owner = NULL, lock_until_ms = 0 WHERE id = $1",
    [RP_SQL_TUS_DELETE] =
        "DELETE FROM tus_uploads WHERE id = $1",
    [RP_SQL_TUS_EXPIRED] =
        "SELECT id, done FROM tus_uploads WHERE expires_ms < $1::bigint "
        "ORDER BY expires_ms LIMIT $2::int",
    [RP_SQL_PHOTO_UPLOAD_DONE] =
        "UPDATE photos SET status = 'queued', sha256 = $2, bytes = $3::bigint, content_type = $4, "
        "next_attempt_at = now(), updated_at = now() WHERE id = $1 AND status = 'uploading'",
    [RP_SQL_PHOTO_UPLOAD_FAIL] =
        "UPDATE photos SET status = 'failed', error = $2, updated_at = now() "
        "WHERE id = $1 AND status = 'uploading'",
    [RP_SQL_PHOTO_UPLOAD_DROP] =
        "DELETE FROM photos WHERE id = $1 AND status = 'uploading'",
    [RP_SQL_PHOTO_OWNER] =
        "SELECT user_id, status FROM photos WHERE id = $1",
    [RP_SQL_EVENT_PROGRESS] =
        "INSERT INTO events (user_id, photo_id, batch_id, status, error, received, length) "
        "SELECT user_id, id, batch_id, status, NULL, $2::bigint, $3::bigint FROM photos WHERE id = $1",
    [RP_SQL_EVENT_DUPLICATE] =
        "INSERT INTO events (user_id, photo_id, batch_id, status, error, duplicate_of) "
        "SELECT user_id, id, batch_id, 'duplicate', NULL, $2 FROM photos WHERE id = $1",
    [RP_SQL_S3_OBJECT_FIND] =
        "SELECT photo_id FROM s3_objects WHERE bucket = $1 AND object_key = $2 AND etag = $3",
    [RP_SQL_S3_OBJECT_RECORD] =
        "INSERT INTO s3_objects (bucket, object_key, etag, photo_id) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
    [RP_SQL_OUTBOX_INIT] =
        //  A new publisher starts after the newest event: history is not replayed
        "INSERT INTO outbox (name, last_event_id, last_tx) "
        "SELECT $1, coalesce (max (id), 0), max (tx) FROM events "
        "ON CONFLICT DO NOTHING",
    [RP_SQL_OUTBOX_LEASE] =
        "UPDATE outbox SET lease_owner = $2, lease_until_ms = $4::bigint "
        "WHERE name = $1 AND (lease_owner IS NULL OR lease_owner = $2 "
        "  OR lease_until_ms < $3::bigint) RETURNING last_event_id, coalesce (last_tx, '0')::text",
    //  In the order the events' transactions ended (schema V6): an event's
    //  id is taken at insert, not at commit, so ids alone would let the
    //  cursor pass one whose transaction is still open. Every transaction
    //  older than the oldest still running (the snapshot's xmin) has ended:
    //  events below it are final, and (tx, id) order never passes one that
    //  may still come. Rows older than V6 have no tx and all came first.
    [RP_SQL_OUTBOX_EVENTS] =
        "SELECT e.id, e.photo_id, e.user_id, u.name, e.batch_id, e.status, e.error, p.sha256, p.bytes, "
        "e.thumbhash, e.similar_ids "
        "FROM (( SELECT 0 AS k, '0'::xid8 AS tx, id FROM events "
        "        WHERE tx IS NULL AND $3::xid8 = '0'::xid8 AND id > $1::bigint "
        "          AND status IN ('complete', 'failed') ORDER BY id LIMIT $2::int ) "
        "      UNION ALL "
        "      ( SELECT 1, tx, id FROM events "
        "        WHERE (tx, id) > ($3::xid8, $1::bigint) "
        "          AND tx < pg_snapshot_xmin (pg_current_snapshot ()) "
        "          AND status IN ('complete', 'failed') ORDER BY tx, id LIMIT $2::int )) n "
        "JOIN events e ON e.id = n.id JOIN users u ON u.id = e.user_id "
        "LEFT JOIN photos p ON p.id = e.photo_id "
        "ORDER BY n.k, n.tx, n.id LIMIT $2::int",
    [RP_SQL_OUTBOX_ADVANCE] =
        //  last_event_id too, for releases before V6 that read only it
        "UPDATE outbox o SET last_event_id = $3::bigint, last_tx = e.tx "
        "FROM events e WHERE e.id = $3::bigint AND o.name = $1 AND o.lease_owner = $2 "
        "  AND (coalesce (e.tx, '0'::xid8), e.id) > (coalesce (o.last_tx, '0'::xid8), o.last_event_id)",

    [RP_SQL_OUTBOX_RELEASE] =
        "UPDATE outbox SET lease_owner = NULL, lease_until_ms = 0 WHERE name = $1 AND lease_owner = $2",
    [RP_SQL_OUTBOX_PENDING] =
        //  The photo's outcome events past the cursor, in claim's order: rows
        //  from before V6 (no tx) only while the cursor has no tx either
        "SELECT (SELECT count(*) FROM outbox WHERE name = $1), "
        "  (SELECT count(*) FROM events e JOIN outbox o ON o.name = $1 "
        "   WHERE e.photo_id = $2 AND e.status IN ('complete', 'failed') "
        "     AND ((e.tx IS NULL AND o.last_tx IS NULL AND e.id > o.last_event_id) "
        "       OR (e.tx, e.id) > (coalesce (o.last_tx, '0'::xid8), o.last_event_id)))",

    //  Stored bytes --------------------------------------------------------------
    //  An address's lock, to the end of the transaction: the two-key form
    //  (a key space apart from the migrations' one-key lock), class "byte"
    //  in ASCII and the address's first 32 bits. Two addresses sharing
    //  those bits share a lock: they wait for each other, nothing worse
    [RP_SQL_BYTES_LOCK] =
        "SELECT pg_advisory_xact_lock (1652126821, ('x' || substr ($1::text, 1, 8))::bit(32)::int)",
    [RP_SQL_TOMBSTONE_PUT] =
        "INSERT INTO blob_tombstones (sha256) VALUES ($1) ON CONFLICT DO NOTHING",
    [RP_SQL_TOMBSTONE_DROP] =
        "DELETE FROM blob_tombstones WHERE sha256 = $1",
    [RP_SQL_TOMBSTONES] =
        "SELECT sha256 FROM blob_tombstones ORDER BY created_at, sha256 LIMIT $1::int",

    //  Queries -----------------------------------------------------------------
    [RP_SQL_USER_FIND] =
        "SELECT id, password_hash FROM users WHERE name = $1",
    [RP_SQL_USER_LIST] =
        "SELECT u.id, u.name, " TS ("u.created_at") ", "
        "(SELECT count(*) FROM photos p WHERE p.user_id = u.id) FROM users u ORDER BY u.name",
    [RP_SQL_SHA_COUNT] =
        "SELECT count(*) FROM photos WHERE sha256 = $1",
    [RP_SQL_PHOTO_GET] =
        "SELECT " PHOTO_COLUMNS " FROM photos p WHERE p.user_id = $1 AND p.id = $2",
    [RP_SQL_PHOTO_LIST] =
        "SELECT " PHOTO_COLUMNS " FROM photos p WHERE p.user_id = $1 "
        "AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM tags t WHERE t.photo_id = p.id AND t.tag = $2)) "
        "AND ($3::text IS NULL OR p.status = $3) "
        "ORDER BY p.created_at DESC, p.id DESC LIMIT $4::int",
    [RP_SQL_PHOTO_LIST_AFTER] =
        "SELECT " PHOTO_COLUMNS " FROM photos p WHERE p.user_id = $1 "
        "AND (p.created_at, p.id) < ($5::timestamptz, $6) "
        "AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM tags t WHERE t.photo_id = p.id AND t.tag = $2)) "
        "AND ($3::text IS NULL OR p.status = $3) "
        "ORDER BY p.created_at DESC, p.id DESC LIMIT $4::int",
    [RP_SQL_BATCH_FIND] =
        "SELECT id FROM batches WHERE user_id = $1 AND id = $2",
    [RP_SQL_BATCH_COUNTS] =
        "SELECT status, count(*) FROM photos WHERE batch_id = $1 GROUP BY status",
    [RP_SQL_BATCH_PHOTOS] =
        "SELECT " PHOTO_COLUMNS " FROM photos p WHERE p.user_id = $1 AND p.batch_id = $2 "
        "ORDER BY p.created_at, p.id LIMIT $3::int",
    [RP_SQL_STATUS_COUNTS] =
        "SELECT status, count(*) FROM photos GROUP BY status",
    [RP_SQL_EVENTS_AFTER] =
        "SELECT id, photo_id, batch_id, status, error, received, length, duplicate_of, thumbhash, similar_ids "
        "FROM events "
        "WHERE user_id = $1 AND id > $2::bigint "
        //  ids are taken at insert, not commit: wait out short transactions
        //  so a lower id can never become visible after a higher one was read
        "AND created_at < now() - interval '200 milliseconds' "
        "ORDER BY id LIMIT $3::int",
    [RP_SQL_EVENTS_LAST] =
        "SELECT max(id) FROM events WHERE $1::text IS NULL OR user_id = $1",
    [RP_SQL_EVENTS_USERS] =
        "SELECT user_id, max(id) FROM events WHERE id > $1::bigint GROUP BY user_id LIMIT $2::int",
    //  Near-duplicates (V9) -------------------------------------------------------
    [RP_SQL_PHOTO_PHASH_SET] =
        "UPDATE photos SET phash = $2, phash_b0 = $3::int, phash_b1 = $4::int, "
        "phash_b2 = $5::int WHERE id = $1",
    //  64 steps along photos_phash_b0 from the query's band: how dense the
    //  user's hashes lie there, so how wide a prefix to search
    [RP_SQL_PHASH_ABOVE] =
        "SELECT phash_b0 FROM photos WHERE user_id = $1 AND phash_b0 IS NOT NULL "
        "AND phash_b0 >= $2::int ORDER BY phash_b0 LIMIT 1 OFFSET 63",
    [RP_SQL_PHASH_BELOW] =
        "SELECT phash_b0 FROM photos WHERE user_id = $1 AND phash_b0 IS NOT NULL "
        "AND phash_b0 <= $2::int ORDER BY phash_b0 DESC LIMIT 1 OFFSET 63",
    //  One indexed range scan per listed range (photos_phash_b<i>; the
    //  LATERAL subquery runs once per range); UNION drops a photo found twice
    [RP_SQL_PHASH_CANDIDATES] =
        "SELECT p.id, p.phash FROM unnest (string_to_array ($3, ',')::int[]) AS v (lo) "
        "  JOIN LATERAL (SELECT id, phash FROM photos WHERE user_id = $1 AND phash_b0 IS NOT NULL "
        "    AND phash_b0 >= v.lo AND phash_b0 < v.lo + $6::int AND id <> $2 "
        "    AND status = 'complete') AS p ON true "
        "UNION "
        "SELECT p.id, p.phash FROM unnest (string_to_array ($4, ',')::int[]) AS v (lo) "
        "  JOIN LATERAL (SELECT id, phash FROM photos WHERE user_id = $1 AND phash_b1 IS NOT NULL "
        "    AND phash_b1 >= v.lo AND phash_b1 < v.lo + $6::int AND id <> $2 "
        "    AND status = 'complete') AS p ON true "
        "UNION "
        "SELECT p.id, p.phash FROM unnest (string_to_array ($5, ',')::int[]) AS v (lo) "
        "  JOIN LATERAL (SELECT id, phash FROM photos WHERE user_id = $1 AND phash_b2 IS NOT NULL "
        "    AND phash_b2 >= v.lo AND phash_b2 < v.lo + $6::int AND id <> $2 "
        "    AND status = 'complete') AS p ON true ",
    [RP_SQL_EVENT_SIMILAR] =
        "UPDATE events SET similar_ids = $1 WHERE id = currval (pg_get_serial_sequence ('events', 'id'))",
    [RP_SQL_USER_HASH] =
        "SELECT password_hash FROM users WHERE id = $1",
    [RP_SQL_TUS_OPEN] =
        "SELECT count(*) FROM tus_uploads WHERE user_id = $1 AND done = 0 AND expires_ms > $2::bigint",

    //  Bit-rot checks (V10) ----------------------------------------------------
    [RP_SQL_SCRUB_ALL] =
        "SELECT sha256, max(bytes), min(id) FROM photos WHERE status = 'complete' AND sha256 > $1 "
        "GROUP BY sha256 ORDER BY sha256 COLLATE \"C\" LIMIT $2::int",
    [RP_SQL_SCRUB_DUE] =
        "SELECT sha256, max(bytes), min(id) FROM photos WHERE status = 'complete' "
        "AND (checked_at IS NULL OR checked_at < now () - $1::bigint * interval '1 millisecond') "
        "GROUP BY sha256 ORDER BY min(checked_at) NULLS FIRST, sha256 LIMIT $2::int",
    [RP_SQL_SCRUB_MARK] =
        "UPDATE photos SET integrity = $2, checked_at = now () WHERE sha256 = $1",
    [RP_SQL_SCRUB_CLAIM] =
        "UPDATE photos SET checked_at = now () WHERE sha256 = $1 AND status = 'complete' "
        "AND (checked_at IS NULL OR checked_at < now () - $2::bigint * interval '1 millisecond')",
    [RP_SQL_SCRUB_COUNTS] =
        "SELECT coalesce (integrity, 'unchecked'), count(*) FROM photos WHERE status = 'complete' "
        "GROUP BY integrity",

    //  Migrations ----------------------------------------------------------------
    //  One lock for every migrator of this database, held to the end of the
    //  transaction; the key is "rapidpho" in ASCII
    [RP_SQL_MIG_LOCK] = "SELECT pg_advisory_xact_lock (8241992391023683695)",
    [RP_SQL_MIG_HISTORY] =
        "SELECT installed_rank, version, checksum, success, script FROM flyway_schema_history "
        "ORDER BY installed_rank",
    [RP_SQL_MIG_RECORD] =
        "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
        "checksum, installed_by, execution_time, success) VALUES ($1::int, $2, $3, 'SQL', $4, "
        "$5::int, coalesce ($6::text, current_user), $7::int, true)",

    //  The timeline (V8): keys are timestamptz(3), bounds default to +-infinity
    [RP_SQL_TIMELINE_CREATED] =
        S_TIMELINE ("p.created_at", ""),
    [RP_SQL_TIMELINE_CREATED_STATUS] =
        S_TIMELINE ("p.created_at", "AND p.status = $7 "),
    [RP_SQL_TIMELINE_TAKEN] =
        S_TIMELINE ("coalesce (p.taken_sort, p.created_at)", ""),
    [RP_SQL_TIMELINE_TAKEN_STATUS] =
        S_TIMELINE ("coalesce (p.taken_sort, p.created_at)", "AND p.status = $7 "),
};

//  Flyway's own table for PostgreSQL
static const char s_history_ddl [] =
    "CREATE TABLE IF NOT EXISTS \"flyway_schema_history\" ("
    "  \"installed_rank\" INT NOT NULL,"
    "  \"version\" VARCHAR(50),"
    "  \"description\" VARCHAR(200) NOT NULL,"
    "  \"type\" VARCHAR(20) NOT NULL,"
    "  \"script\" VARCHAR(1000) NOT NULL,"
    "  \"checksum\" INTEGER,"
    "  \"installed_by\" VARCHAR(100) NOT NULL,"
    "  \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),"
    "  \"execution_time\" INTEGER NOT NULL,"
    "  \"success\" BOOLEAN NOT NULL,"
    "  CONSTRAINT \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\"));"
    "CREATE INDEX IF NOT EXISTS \"flyway_schema_history_s_idx\" "
    "  ON \"flyway_schema_history\" (\"success\");";

//  libpq's messages end in a newline and may run over several lines: keep
//  the first.
static void
s_first_line (const char *text, char *err, size_t errlen, const char *prefix)
{
    if (!text || !*text)
        text = "unknown error";
    size_t len = strcspn (text, "\n");
    rp_db_err (err, errlen, "%s%.*s", prefix, (int) len, text);
}

//  Write the error of `res` (or the connection's); RP_CONFLICT for a
//  unique violation, else -1.
static int
s_error (s_pg_t *self, PGresult *res, char *err, size_t errlen)
{
    const char *state = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    s_first_line (primary ? primary : PQerrorMessage (self->conn), err, errlen, "database error: ");
    return state && strcmp (state, "23505") == 0 ? RP_CONFLICT : -1;
}

static void
s_notice (void *arg, const char *message)
{
    //  "relation already exists, skipping" and the like: not for stderr
    rp_debug ("db", "postgresql: %.*s", (int) strcspn (message, "\n"), message);
}

static void
s_close (void *handle)
{
    s_pg_t *self = (s_pg_t *) handle;
    if (self->conn)
        PQfinish (self->conn);
    free (self);
}

//  Session settings, after every connect: no JIT. Our statements are
//  short lookups; a range scan per listed range (the near-duplicate
//  search) is estimated at thousands of rows a range, as PostgreSQL
//  guesses for a range on a value it cannot see, so its estimated cost
//  crossed jit_above_cost and each search paid 40 to 50 ms compiling.
//  A server without the setting (before PostgreSQL 11) has no JIT
//  either: a refusal is not an error.
static void
s_session (s_pg_t *self)
{
    PQclear (PQexec (self->conn, "SET jit = off"));
}

void *
rp_db_pg_open (const char *url, char *err, size_t errlen)
{
    s_pg_t *self = (s_pg_t *) calloc (1, sizeof (s_pg_t));
    if (!self) {
        rp_db_err (err, errlen, "out of memory");
        return NULL;
    }
    self->conn = PQconnectdb (url);
    if (!self->conn || PQstatus (self->conn) != CONNECTION_OK) {
        s_first_line (self->conn ? PQerrorMessage (self->conn) : "out of memory", err, errlen,
                      "cannot connect to PostgreSQL: ");
        s_close (self);
        return NULL;
    }
    PQsetNoticeProcessor (self->conn, s_notice, NULL);
    if (PQsetClientEncoding (self->conn, "UTF8") != 0) {
        s_first_line (PQerrorMessage (self->conn), err, errlen, "cannot use UTF-8 with PostgreSQL: ");
        s_close (self);
        return NULL;
    }
    s_session (self);
    return self;
}

//  A usable connection: reset once when broken between transactions.
static int
s_ready (s_pg_t *self, char *err, size_t errlen)
{
    if (PQstatus (self->conn) == CONNECTION_OK)
        return 0;
    if (!self->in_txn) {
        rp_warn ("db", "the PostgreSQL connection was lost; reconnecting");
        PQreset (self->conn);
        memset (self->prepared, 0, sizeof self->prepared);
        if (PQstatus (self->conn) == CONNECTION_OK) {
            s_session (self);
            return 0;
        }
    }
    s_first_line (PQerrorMessage (self->conn), err, errlen, "database connection lost: ");
    return -1;
}

//  Run constant text (no values in it). 0 or -1.
static int
s_run (s_pg_t *self, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec (self->conn, sql);
    ExecStatusType status = res ? PQresultStatus (res) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        s_error (self, res, err, errlen);
        rc = -1;
    }
    PQclear (res);
    return rc;
}

static int
s_begin (void *handle, rp_txn_t kind, char *err, size_t errlen)
{
    s_pg_t *self = (s_pg_t *) handle;
    if (s_ready (self, err, errlen)
    ||  s_run (self, kind == RP_TXN_WRITE ? "BEGIN"
                                          : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
               err, errlen))
        return -1;
    self->in_txn = true;
    return 0;
}

static int
s_commit (void *handle, char *err, size_t errlen)
{
    s_pg_t *self = (s_pg_t *) handle;
    PGresult *res = PQexec (self->conn, "COMMIT");
    int rc = 0;
    if (!res || PQresultStatus (res) != PGRES_COMMAND_OK) {
        s_error (self, res, err, errlen);
        rc = -1;
    }
    else
    if (strcmp (PQcmdStatus (res), "COMMIT") != 0) {
        //  COMMIT of a failed transaction answers ROLLBACK, without an error
        rp_db_err (err, errlen, "database error: the transaction was rolled back");
        rc = -1;
    }
    PQclear (res);
    self->in_txn = false;
    return rc;
}

static void
s_rollback (void *handle)
{
    s_pg_t *self = (s_pg_t *) handle;
    if (PQstatus (self->conn) == CONNECTION_OK
    &&  PQtransactionStatus (self->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec (self->conn, "ROLLBACK");
        PQclear (res);
    }
    self->in_txn = false;
}

static int
s_exec (void *handle, rp_sql_t sql, const char *const *params, int nparams,
        rp_rows_t *rows, char *err, size_t errlen)
{
    s_pg_t *self = (s_pg_t *) handle;
    if (rows)
        rp_rows_clear (rows);
    if (s_ready (self, err, errlen))
        return -1;
    char name [16];
    snprintf (name, sizeof name, "rp_%d", (int) sql);
    if (!self->prepared [sql]) {
        PGresult *res = PQprepare (self->conn, name, s_sql [sql], 0, NULL);
        int rc = res && PQresultStatus (res) == PGRES_COMMAND_OK ? 0 : s_error (self, res, err, errlen);
        PQclear (res);
        if (rc)
            return -1;
        self->prepared [sql] = true;
    }
    PGresult *res = PQexecPrepared (self->conn, name, nparams, params, NULL, NULL, 0);
    ExecStatusType status = res ? PQresultStatus (res) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        int rc = s_error (self, res, err, errlen);
        PQclear (res);
        return rc;
    }
    int rc = 0;
    if (rows) {
        int cols = PQnfields (res);
        const char *cells [RP_PC_COUNT + 8];
        size_t lengths [RP_PC_COUNT + 8];
        if (cols > (int) (sizeof cells / sizeof cells [0])) {
            rp_db_err (err, errlen, "a statement returned too many columns");
            rc = -1;
        }
        for (int r = 0; r < PQntuples (res) && rc == 0; r++) {
            for (int c = 0; c < cols; c++) {
                bool null = PQgetisnull (res, r, c);
                cells [c] = null ? NULL : PQgetvalue (res, r, c);
                lengths [c] = null ? 0 : (size_t) PQgetlength (res, r, c);
            }
            if (rp_rows_append (rows, cols, cells, lengths)) {
                rp_db_err (err, errlen, "a statement returned too many rows");
                rc = -1;
            }
        }
        int64_t changes = 0;
        const char *tuples = PQcmdTuples (res);
        rows->changes = tuples && *tuples && rp_db_parse_int (tuples, &changes) == 0
                      ? changes : PQntuples (res);
        if (rc)
            rp_rows_clear (rows);
    }
    PQclear (res);
    return rc;
}

static int
s_script (void *handle, const char *text, char *err, size_t errlen)
{
    s_pg_t *self = (s_pg_t *) handle;
    return s_ready (self, err, errlen) || s_run (self, text, err, errlen) ? -1 : 0;
}

const rp_db_driver_t rp_db_pg_driver = {
    .name = "postgresql",
    .close = s_close,
    .begin = s_begin,
    .commit = s_commit,
    .rollback = s_rollback,
    .exec = s_exec,
    .script = s_script,
    .history_ddl = s_history_ddl,
};
