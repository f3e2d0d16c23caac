/*  engine/db/db_sqlite.c: the SQLite driver (the embedded default).

    One sqlite3 handle per rp_db_t, opened NOMUTEX: it belongs to one actor.
    WAL mode (readers never block the writer), synchronous=FULL (a commit
    is on disk before it returns: an acknowledged upload survives a power
    cut), foreign keys on, and a busy timeout so that several connections
    and processes take turns. Write transactions are BEGIN IMMEDIATE: they
    take the write lock first, so they never fail half way to upgrade a
    read lock, and two claimers are serialised.

    Statements are prepared once per connection, on first use, and every
    value is bound. Times are ISO 8601 UTC text with milliseconds, which
    sort as text: strftime('%Y-%m-%dT%H:%M:%fZ', 'now').
*/
#include "engine/db/db_private.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define S_BUSY_TIMEOUT_MS 10000

typedef struct {
    sqlite3 *db;                            //  the connection
    sqlite3_stmt *stmts [RP_SQL_COUNT];     //  prepared on first use
} s_sqlite_t;

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
//  The time `ms` milliseconds ago (a parameter), in NOW's format
#define S_AGO(ms) "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (CAST (" ms " AS INTEGER) / 1000.0) || ' seconds')"
#define PHOTO_COLUMNS \
    "p.id, p.filename, p.status, p.error, p.sha256, p.bytes, p.content_type, p.width, " \
    "p.height, p.taken_at, p.exif, " \
    "(SELECT json_group_array (t.tag) FROM tags t WHERE t.photo_id = p.id), " \
    "p.batch_id, p.created_at, p.attempts, " \
    "p.integrity, p.checked_at, p.thumbhash, p.phash"

//  A page of the timeline by `key` (the expression its V8 index holds).
//  The row value is exact; SQLite does not bound a DESC index scan by it,
//  so the plain key <= bound beside it does (without it a deep cursor
//  scans every row above it: 370 ms instead of 0.1 at 100,000 photos)
#define S_TIMELINE(key, status) \
    "SELECT " PHOTO_COLUMNS ", " key " FROM photos p WHERE p.user_id = ?1 " \
    "AND (" key ", p.id) < (coalesce (?4, 'A'), coalesce (?5, '')) " \
    "AND " key " <= coalesce (?4, 'A') " \
    "AND " key " >= coalesce (?6, '') " status \
    "AND (?2 IS NULL OR EXISTS (SELECT 1 FROM tags t WHERE t.photo_id = p.id AND t.tag = ?2)) " \
    "ORDER BY " key " DESC, p.id DESC LIMIT CAST (?3 AS INTEGER)"

static const char *const s_sql [RP_SQL_COUNT] = {
    [RP_SQL_PING] = "SELECT 1",

    //  Commands ----------------------------------------------------------------
    [RP_SQL_USER_INSERT] =
        "INSERT INTO users (id, name, password_hash, created_at) VALUES (?1, ?2, ?3, " NOW ")",
    [RP_SQL_USER_SET_PASSWORD] =
        "UPDATE users SET password_hash = ?2 WHERE name = ?1",
    [RP_SQL_PHOTO_BY_SHA] =
        "SELECT id, batch_id FROM photos WHERE user_id = ?1 AND sha256 = ?2",
    [RP_SQL_BATCH_OWNER] =
        "SELECT user_id FROM batches WHERE id = ?1",
    [RP_SQL_BATCH_INSERT] =
        "INSERT INTO batches (id, user_id, created_at) VALUES (?1, ?2, " NOW ") "
        "ON CONFLICT (id) DO NOTHING",
    [RP_SQL_PHOTO_INSERT] =
        "INSERT INTO photos (id, user_id, batch_id, filename, status, sha256, bytes, content_type, "
        "attempts, next_attempt_at, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, CAST (?7 AS INTEGER), ?8, 0, " NOW ", " NOW ", " NOW ") "
        "ON CONFLICT (user_id, sha256) DO NOTHING RETURNING id",
    [RP_SQL_PHOTO_LOCK] =
        "SELECT sha256 FROM photos WHERE user_id = ?1 AND id = ?2",
    [RP_SQL_TAG_INSERT] =
        "INSERT INTO tags (photo_id, tag) VALUES (?1, ?2) ON CONFLICT (photo_id, tag) DO NOTHING",
    [RP_SQL_TAG_DELETE] =
        "DELETE FROM tags WHERE photo_id = ?1 AND tag = ?2",
    [RP_SQL_TAGS_CLEAR] =
        "DELETE FROM tags WHERE photo_id = ?1",
    [RP_SQL_TAG_COUNT] =
        "SELECT count(*) FROM tags WHERE photo_id = ?1",
    [RP_SQL_PHOTO_CLAIM] =
        "UPDATE photos SET status = 'processing', attempts = attempts + 1, updated_at = " NOW " "
        "WHERE id IN (SELECT id FROM photos "     //  under BEGIN IMMEDIATE: no one else writes
        "  WHERE status = 'queued' AND next_attempt_at <= " NOW " "
        "  ORDER BY next_attempt_at, created_at, id LIMIT CAST (?1 AS INTEGER)) "
        "RETURNING id, user_id, sha256, filename, attempts, batch_id",
    [RP_SQL_PHOTO_COMPLETE] =
        "UPDATE photos SET status = 'complete', error = NULL, "
        "content_type = coalesce (?2, content_type), width = CAST (?3 AS INTEGER), "
        "height = CAST (?4 AS INTEGER), taken_at = ?5, exif = ?6, thumbhash = ?7, updated_at = " NOW " "
        "WHERE id = ?1 AND status = 'processing'",
    [RP_SQL_PHOTO_RETRY] =
        "UPDATE photos SET status = 'queued', error = ?2, updated_at = " NOW ", "
        "next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', "
        "  printf('%+.3f seconds', CAST (?3 AS INTEGER) / 1000.0)) "
        "WHERE id = ?1 AND status = 'processing'",
    [RP_SQL_PHOTO_FAIL] =
        "UPDATE photos SET status = 'failed', error = ?2, updated_at = " NOW " "
        "WHERE id = ?1 AND status = 'processing'",
    [RP_SQL_PHOTO_REQUEUE] =
        "UPDATE photos SET status = 'queued', next_attempt_at = " NOW ", updated_at = " NOW " "
        "WHERE status = 'processing' AND updated_at <= " S_AGO ("?1"),
    [RP_SQL_PHOTO_UPLOADED] =
        "UPDATE photos SET status = 'queued', next_attempt_at = " NOW ", updated_at = " NOW " "
        "WHERE id = ?1 AND status = 'uploading'",
    [RP_SQL_PHOTO_RELEASE] =
        "UPDATE photos SET status = 'queued', attempts = attempts - 1, next_attempt_at = " NOW ", "
        "updated_at = " NOW " WHERE id = ?1 AND status = 'processing' AND attempts = CAST (?2 AS INTEGER)",
    [RP_SQL_PHOTO_SHA] =
        "SELECT sha256 FROM photos WHERE user_id = ?1 AND id = ?2",
    [RP_SQL_PHOTO_DELETE] =
        "DELETE FROM photos WHERE user_id = ?1 AND id = ?2 AND sha256 = ?3 RETURNING sha256",
    [RP_SQL_EVENT_RECORD] =
        "INSERT INTO events (user_id, photo_id, batch_id, status, error, created_at, thumbhash) "
        "SELECT user_id, id, batch_id, status, error, " NOW ", "
        "CASE WHEN status = 'complete' THEN thumbhash END FROM photos WHERE id = ?1",
    [RP_SQL_EVENT_REQUEUE_ALL] =
        "INSERT INTO events (user_id, photo_id, batch_id, status, error, created_at) "
        "SELECT user_id, id, batch_id, 'queued', error, " NOW " FROM photos "
        "WHERE status = 'processing' AND updated_at <= " S_AGO ("?1") " ORDER BY id",

    //  Resumable uploads ---------------------------------------------------------
    [RP_SQL_TUS_INSERT] =
        "INSERT INTO tus_uploads (id, user_id, length, metadata, created_ms, expires_ms) "
        "VALUES (?1, ?2, CAST (?3 AS INTEGER), ?4, CAST (?5 AS INTEGER), CAST (?6 AS INTEGER))",
    [RP_SQL_TUS_GET] =
        "SELECT user_id, length, received, metadata, expires_ms, lock_owner, lock_until_ms, "
        "done, photo_id, duplicate FROM tus_uploads WHERE id = ?1",
    [RP_SQL_TUS_LOCK] =
        "UPDATE tus_uploads SET lock_owner = ?2, lock_until_ms = CAST (?4 AS INTEGER) "
        "WHERE id = ?1 AND (lock_owner IS NULL OR lock_owner = ?2 "
        "  OR lock_until_ms < CAST (?3 AS INTEGER) OR lock_owner = ?5) RETURNING id",
    [RP_SQL_TUS_UNLOCK] =
        "UPDATE tus_uploads SET lock_owner = NULL, lock_until_ms = 0 WHERE id = ?1 AND lock_owner = ?2",
    [RP_SQL_TUS_ADVANCE] =
        "UPDATE tus_uploads SET received = CAST (?4 AS INTEGER), "
        "length = coalesce (CAST (?5 AS INTEGER), length), lock_until_ms = CAST (?6 AS INTEGER) "
        "WHERE id = ?1 AND lock_owner = ?2 AND received = CAST (?3 AS INTEGER) AND done = 0 "
        "RETURNING length",
    [RP_SQL_TUS_PART_PUT] =
        "INSERT INTO tus_parts (upload_id, start, length, name) "
        "VALUES (?1, CAST (?2 AS INTEGER), CAST (?3 AS INTEGER), ?4) "
        "ON CONFLICT (upload_id, start) DO UPDATE SET length = excluded.length, name = excluded.name",
    [RP_SQL_TUS_PARTS] =
        "SELECT start, length, name FROM tus_parts WHERE upload_id = ?1 ORDER BY start",
    [RP_SQL_TUS_DONE] =
        "UPDATE tus_uploads SET done = 1, photo_id = ?2, duplicate = CAST (?3 AS INTEGER), "
        "lock_owner = NULL, lock_until_ms = 0 WHERE id = ?1",
    [RP_SQL_TUS_DELETE] =
        "DELETE FROM tus_uploads WHERE id = ?1",
    [RP_SQL_TUS_EXPIRED] =
        "SELECT id, done FROM tus_uploads WHERE expires_ms < CAST (?1 AS INTEGER) "
        "ORDER BY expires_ms LIMIT CAST (?2 AS INTEGER)",
    [RP_SQL_PHOTO_UPLOAD_DONE] =
        "UPDATE photos SET status = 'queued', sha256 = ?2, bytes = CAST (?3 AS INTEGER), "
        "content_type = ?4, next_attempt_at = " NOW ", updated_at = " NOW " "
        "WHERE id = ?1 AND status = 'uploading'",
    [RP_SQL_PHOTO_UPLOAD_FAIL] =
        "UPDATE photos SET status = 'failed', error = ?2, updated_at = " NOW " "
        "WHERE id = ?1 AND status = 'uploading'",
    [RP_SQL_PHOTO_UPLOAD_DROP] =
        "DELETE FROM photos WHERE id = ?1 AND status = 'uploading'",
    [RP_SQL_PHOTO_OWNER] =
        "SELECT user_id, status FROM photos WHERE id = ?1",
    [RP_SQL_EVENT_PROGRESS] =
        "INSERT INTO events (user_id, photo_id, batch_id, status, error, received, length, created_at) "
        "SELECT user_id, id, batch_id, status, NULL, CAST (?2 AS INTEGER), CAST (?3 AS INTEGER), " NOW " "
        "FROM photos WHERE id = ?1",
    [RP_SQL_EVENT_DUPLICATE] =
        "INSERT INTO events (user_id, photo_id, batch_id, status, error, duplicate_of, created_at) "
        "SELECT user_id, id, batch_id, 'duplicate', NULL, ?2, " NOW " FROM photos WHERE id = ?1",
    [RP_SQL_S3_OBJECT_FIND] =
        "SELECT photo_id FROM s3_objects WHERE bucket = ?1 AND object_key = ?2 AND etag = ?3",
    [RP_SQL_S3_OBJECT_RECORD] =
        "INSERT INTO s3_objects (bucket, object_key, etag, photo_id, created_at) "
        "VALUES (?1, ?2, ?3, ?4, " NOW ") ON CONFLICT DO NOTHING",
    [RP_SQL_OUTBOX_INIT] =
        "INSERT INTO outbox (name, last_event_id) SELECT ?1, coalesce (max (id), 0) FROM events "
        "WHERE true ON CONFLICT DO NOTHING",
    [RP_SQL_OUTBOX_LEASE] =
        "UPDATE outbox SET lease_owner = ?2, lease_until_ms = CAST (?4 AS INTEGER) "
        "WHERE name = ?1 AND (lease_owner IS NULL OR lease_owner = ?2 "
        "  OR lease_until_ms < CAST (?3 AS INTEGER)) RETURNING last_event_id, '0'",
    [RP_SQL_OUTBOX_EVENTS] =
        "SELECT e.id, e.photo_id, e.user_id, u.name, e.batch_id, e.status, e.error, p.sha256, p.bytes, "
        "e.thumbhash, e.similar_ids "
        "FROM events e JOIN users u ON u.id = e.user_id LEFT JOIN photos p ON p.id = e.photo_id "
        //  One writer at a time commits, and it takes the next id while it
        //  holds the write lock: ids are in commit order and the cursor
        //  never passes an event still to come (?3, PostgreSQL's
        //  transaction order, is not needed)
        "WHERE e.id > CAST (?1 AS INTEGER) AND e.status IN ('complete', 'failed') AND ?3 IS NOT NULL "
        "ORDER BY e.id LIMIT CAST (?2 AS INTEGER)",
    [RP_SQL_OUTBOX_ADVANCE] =
        "UPDATE outbox SET last_event_id = CAST (?3 AS INTEGER) "
        "WHERE name = ?1 AND lease_owner = ?2 AND last_event_id < CAST (?3 AS INTEGER)",

    [RP_SQL_OUTBOX_RELEASE] =
        "UPDATE outbox SET lease_owner = NULL, lease_until_ms = 0 WHERE name = ?1 AND lease_owner = ?2",
    [RP_SQL_OUTBOX_PENDING] =
        "SELECT (SELECT count(*) FROM outbox WHERE name = ?1), "
        "  (SELECT count(*) FROM events e JOIN outbox o ON o.name = ?1 "
        "   WHERE e.photo_id = ?2 AND e.status IN ('complete', 'failed') AND e.id > o.last_event_id)",

    //  Stored bytes: BEGIN IMMEDIATE holds the write lock, every address's -----
    [RP_SQL_BYTES_LOCK] = "SELECT ?1",
    [RP_SQL_TOMBSTONE_PUT] =
        "INSERT INTO blob_tombstones (sha256, created_at) VALUES (?1, " NOW ") ON CONFLICT DO NOTHING",
    [RP_SQL_TOMBSTONE_DROP] =
        "DELETE FROM blob_tombstones WHERE sha256 = ?1",
    [RP_SQL_TOMBSTONES] =
        "SELECT sha256 FROM blob_tombstones ORDER BY created_at, sha256 LIMIT CAST (?1 AS INTEGER)",

    //  Queries -----------------------------------------------------------------
    [RP_SQL_USER_FIND] =
        "SELECT id, password_hash FROM users WHERE name = ?1",
    [RP_SQL_USER_LIST] =
        "SELECT u.id, u.name, u.created_at, "
        "(SELECT count(*) FROM photos p WHERE p.user_id = u.id) FROM users u ORDER BY u.name",
    [RP_SQL_SHA_COUNT] =
        "SELECT count(*) FROM photos WHERE sha256 = ?1",
    [RP_SQL_PHOTO_GET] =
        "SELECT " PHOTO_COLUMNS " FROM photos p WHERE p.user_id = ?1 AND p.id = ?2",
    [RP_SQL_PHOTO_LIST] =
        "SELECT " PHOTO_COLUMNS " FROM photos p WHERE p.user_id = ?1 "
        "AND (?2 IS NULL OR EXISTS (SELECT 1 FROM tags t WHERE t.photo_id = p.id AND t.tag = ?2)) "
        "AND (?3 IS NULL OR p.status = ?3) "
        "ORDER BY p.created_at DESC, p.id DESC LIMIT CAST (?4 AS INTEGER)",
    [RP_SQL_PHOTO_LIST_AFTER] =
        "SELECT " PHOTO_COLUMNS " FROM photos p WHERE p.user_id = ?1 "
        "AND (p.created_at, p.id) < (?5, ?6) "
        "AND (?2 IS NULL OR EXISTS (SELECT 1 FROM tags t WHERE t.photo_id = p.id AND t.tag = ?2)) "
        "AND (?3 IS NULL OR p.status = ?3) "
        "ORDER BY p.created_at DESC, p.id DESC LIMIT CAST (?4 AS INTEGER)",
    [RP_SQL_BATCH_FIND] =
        "SELECT id FROM batches WHERE user_id = ?1 AND id = ?2",
    [RP_SQL_BATCH_COUNTS] =
        "SELECT status, count(*) FROM photos WHERE batch_id = ?1 GROUP BY status",
    [RP_SQL_BATCH_PHOTOS] =
        "SELECT " PHOTO_COLUMNS " FROM photos p WHERE p.user_id = ?1 AND p.batch_id = ?2 "
        "ORDER BY p.created_at, p.id LIMIT CAST (?3 AS INTEGER)",
    [RP_SQL_STATUS_COUNTS] =
        "SELECT status, count(*) FROM photos GROUP BY status",
    [RP_SQL_EVENTS_AFTER] =
        "SELECT id, photo_id, batch_id, status, error, received, length, duplicate_of, thumbhash, similar_ids "
        "FROM events "
        "WHERE user_id = ?1 AND id > CAST (?2 AS INTEGER) ORDER BY id LIMIT CAST (?3 AS INTEGER)",
    [RP_SQL_EVENTS_LAST] =
        "SELECT max(id) FROM events WHERE ?1 IS NULL OR user_id = ?1",
    [RP_SQL_EVENTS_USERS] =
        "SELECT user_id, max(id) FROM events WHERE id > CAST (?1 AS INTEGER) GROUP BY user_id "
        "LIMIT CAST (?2 AS INTEGER)",
    //  Near-duplicates (V9) -------------------------------------------------------
    [RP_SQL_PHOTO_PHASH_SET] =
        "UPDATE photos SET phash = ?2, phash_b0 = CAST (?3 AS INTEGER), phash_b1 = CAST (?4 AS INTEGER), "
        "phash_b2 = CAST (?5 AS INTEGER) WHERE id = ?1",
    //  64 steps along photos_phash_b0 from the query's band: how dense the
    //  user's hashes lie there, so how wide a prefix to search
    [RP_SQL_PHASH_ABOVE] =
        "SELECT phash_b0 FROM photos WHERE user_id = ?1 AND phash_b0 IS NOT NULL "
        "AND phash_b0 >= CAST (?2 AS INTEGER) ORDER BY phash_b0 LIMIT 1 OFFSET 63",
    [RP_SQL_PHASH_BELOW] =
        "SELECT phash_b0 FROM photos WHERE user_id = ?1 AND phash_b0 IS NOT NULL "
        "AND phash_b0 <= CAST (?2 AS INTEGER) ORDER BY phash_b0 DESC LIMIT 1 OFFSET 63",
    //  One indexed range scan per listed range (photos_phash_b<i>; CROSS
    //  JOIN keeps the list the outer loop); UNION drops a photo found twice
    [RP_SQL_PHASH_CANDIDATES] =
        "SELECT p.id, p.phash FROM json_each ('[' || ?3 || ']') AS v CROSS JOIN photos AS p "
        "  WHERE p.user_id = ?1 AND p.phash_b0 IS NOT NULL AND p.phash_b0 >= v.value "
        "  AND p.phash_b0 < v.value + CAST (?6 AS INTEGER) AND p.id <> ?2 AND p.status = 'complete' "
        "UNION "
        "SELECT p.id, p.phash FROM json_each ('[' || ?4 || ']') AS v CROSS JOIN photos AS p "
        "  WHERE p.user_id = ?1 AND p.phash_b1 IS NOT NULL AND p.phash_b1 >= v.value "
        "  AND p.phash_b1 < v.value + CAST (?6 AS INTEGER) AND p.id <> ?2 AND p.status = 'complete' "
        "UNION "
        "SELECT p.id, p.phash FROM json_each ('[' || ?5 || ']') AS v CROSS JOIN photos AS p "
        "  WHERE p.user_id = ?1 AND p.phash_b2 IS NOT NULL AND p.phash_b2 >= v.value "
        "  AND p.phash_b2 < v.value + CAST (?6 AS INTEGER) AND p.id <> ?2 AND p.status = 'complete' ",
    [RP_SQL_EVENT_SIMILAR] =
        "UPDATE events SET similar_ids = ?1 WHERE id = last_insert_rowid ()",
    [RP_SQL_USER_HASH] =
        "SELECT password_hash FROM users WHERE id = ?1",
    [RP_SQL_TUS_OPEN] =
        "SELECT count(*) FROM tus_uploads WHERE user_id = ?1 AND done = 0 AND expires_ms > CAST (?2 AS INTEGER)",

    //  Bit-rot checks (V10) ----------------------------------------------------
    [RP_SQL_SCRUB_ALL] =
        "SELECT sha256, max(bytes), min(id) FROM photos WHERE status = 'complete' AND sha256 > ?1 "
        "GROUP BY sha256 ORDER BY sha256 LIMIT CAST (?2 AS INTEGER)",
    [RP_SQL_SCRUB_DUE] =
        "SELECT sha256, max(bytes), min(id) FROM photos WHERE status = 'complete' "
        "AND (checked_at IS NULL OR checked_at < " S_AGO ("?1") ") "
        "GROUP BY sha256 ORDER BY min(coalesce (checked_at, '')), sha256 LIMIT CAST (?2 AS INTEGER)",
    [RP_SQL_SCRUB_MARK] =
        "UPDATE photos SET integrity = ?2, checked_at = " NOW " WHERE sha256 = ?1",
    [RP_SQL_SCRUB_CLAIM] =
        "UPDATE photos SET checked_at = " NOW " WHERE sha256 = ?1 AND status = 'complete' "
        "AND (checked_at IS NULL OR checked_at < " S_AGO ("?2") ")",
    [RP_SQL_SCRUB_COUNTS] =
        "SELECT coalesce (integrity, 'unchecked'), count(*) FROM photos WHERE status = 'complete' "
        "GROUP BY integrity",

    //  Migrations: BEGIN IMMEDIATE is the lock ---------------------------------
    [RP_SQL_MIG_LOCK] = "SELECT 1",
    [RP_SQL_MIG_HISTORY] =
        "SELECT installed_rank, version, checksum, success, script FROM flyway_schema_history "
        "ORDER BY installed_rank",
    [RP_SQL_MIG_RECORD] =
        "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
        "checksum, installed_by, execution_time, success) VALUES (CAST (?1 AS INTEGER), ?2, ?3, "
        "'SQL', ?4, CAST (?5 AS INTEGER), coalesce (?6, ''), CAST (?7 AS INTEGER), 1)",

    //  The timeline (V8): keys are text in created_at's form, which sorts;
    //  'A' is above every key (digits sort before letters), '' below
    [RP_SQL_TIMELINE_CREATED] =
        S_TIMELINE ("p.created_at", ""),
    [RP_SQL_TIMELINE_CREATED_STATUS] =
        S_TIMELINE ("p.created_at", "AND p.status = ?7 "),
    [RP_SQL_TIMELINE_TAKEN] =
        S_TIMELINE ("coalesce (p.taken_sort, p.created_at)", ""),
    [RP_SQL_TIMELINE_TAKEN_STATUS] =
        S_TIMELINE ("coalesce (p.taken_sort, p.created_at)", "AND p.status = ?7 "),
};

//  Flyway's own table for SQLite
static const char s_history_ddl [] =
    "CREATE TABLE IF NOT EXISTS \"flyway_schema_history\" ("
    "  \"installed_rank\" INT NOT NULL PRIMARY KEY,"
    "  \"version\" VARCHAR(50),"
    "  \"description\" VARCHAR(200) NOT NULL,"
    "  \"type\" VARCHAR(20) NOT NULL,"
    "  \"script\" VARCHAR(1000) NOT NULL,"
    "  \"checksum\" INT,"
    "  \"installed_by\" VARCHAR(100) NOT NULL,"
    "  \"installed_on\" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),"
    "  \"execution_time\" INT NOT NULL,"
    "  \"success\" BOOLEAN NOT NULL);"
    "CREATE INDEX IF NOT EXISTS \"flyway_schema_history_s_idx\" "
    "  ON \"flyway_schema_history\" (\"success\");";

static int
s_error (s_sqlite_t *self, char *err, size_t errlen)
{
    int code = sqlite3_extended_errcode (self->db);
    rp_db_err (err, errlen, "database error: %s", sqlite3_errmsg (self->db));
    return code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY
         ? RP_CONFLICT : -1;
}

//  As s_error, for callers to whom a conflict is just a failure.
static int
s_fail (s_sqlite_t *self, char *err, size_t errlen)
{
    s_error (self, err, errlen);
    return -1;
}

static void
s_close (void *handle)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    for (int i = 0; i < RP_SQL_COUNT; i++)
        sqlite3_finalize (self->stmts [i]);
    sqlite3_close_v2 (self->db);
    free (self);
}

//  A pragma that must read back as `want` (NULL: any).
static int
s_pragma (s_sqlite_t *self, const char *sql, const char *want, const char *also,
          char *err, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return s_fail (self, err, errlen);
    int rc = sqlite3_step (stmt);
    const char *got = rc == SQLITE_ROW ? (const char *) sqlite3_column_text (stmt, 0) : NULL;
    int result = 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        result = s_fail (self, err, errlen);
    else
    if (want && (!got || (strcasecmp (got, want) && (!also || strcasecmp (got, also))))) {
        rp_db_err (err, errlen, "the database refused \"%s\" (got %s)", sql, got ? got : "nothing");
        result = -1;
    }
    sqlite3_finalize (stmt);
    return result;
}

//  The database holds password hashes and every user's photo metadata (GPS
//  included): its files are the engine's user's alone. SQLite makes the
//  file as the umask allows (and its journals with the file's mode), so
//  whatever is open to others is closed once it is open: a new file, or one
//  an older version made. By name only: opening and closing a descriptor
//  on the file would drop the locks this process's other connections hold
//  on it (POSIX locks are per process), and corrupt it.
static int
s_private_files (const char *path, char *err, size_t errlen)
{
    static const char *const suffixes [] = { "", "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes [0]; i++) {
        char file [4096];
        struct stat st;
        snprintf (file, sizeof file, "%s%s", path, suffixes [i]);
        if (stat (file, &st) == 0 && S_ISREG (st.st_mode) && (st.st_mode & 077)
        &&  chmod (file, st.st_mode & 0600) != 0 && errno != ENOENT) {
            rp_db_err (err, errlen, "cannot make database %s private: %s", file, strerror (errno));
            return -1;
        }
    }
    return 0;
}

void *
rp_db_sqlite_open (const char *path, char *err, size_t errlen)
{
    s_sqlite_t *self = (s_sqlite_t *) calloc (1, sizeof (s_sqlite_t));
    if (!self) {
        rp_db_err (err, errlen, "out of memory");
        return NULL;
    }
    int rc = sqlite3_open_v2 (path, &self->db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rp_db_err (err, errlen, "cannot open database %s: %s", path,
                   self->db ? sqlite3_errmsg (self->db) : sqlite3_errstr (rc));
        s_close (self);
        return NULL;
    }
    sqlite3_extended_result_codes (self->db, 1);
    sqlite3_busy_timeout (self->db, S_BUSY_TIMEOUT_MS);
    char why [256] = "";
    //  Switching a new database to WAL takes an exclusive lock, and SQLite
    //  answers "locked" at once, without its busy handler, when another
    //  connection is opening the same new file: wait and try again, within
    //  the same bound as the busy timeout
    int wal = -1;
    for (int waited = 0; wal != 0 && waited <= S_BUSY_TIMEOUT_MS; waited += 20) {
        wal = s_pragma (self, "PRAGMA journal_mode = WAL", "wal", "memory", why, sizeof why);
        int code = sqlite3_errcode (self->db) & 0xff;
        if (wal == 0 || (code != SQLITE_BUSY && code != SQLITE_LOCKED))
            break;
        sqlite3_sleep (20);
    }
    if (wal
    ||  s_pragma (self, "PRAGMA synchronous = FULL", NULL, NULL, why, sizeof why)
    ||  s_pragma (self, "PRAGMA foreign_keys = ON", NULL, NULL, why, sizeof why)
    ||  s_pragma (self, "PRAGMA foreign_keys", "1", NULL, why, sizeof why)) {
        rp_db_err (err, errlen, "cannot open database %s: %s", path, why);
        s_close (self);
        return NULL;
    }
    if (s_private_files (path, err, errlen)) {
        s_close (self);
        return NULL;
    }
    return self;
}

static int
s_run (s_sqlite_t *self, const char *sql, char *err, size_t errlen)
{
    if (sqlite3_exec (self->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return s_fail (self, err, errlen);
    return 0;
}

static int
s_begin (void *handle, rp_txn_t kind, char *err, size_t errlen)
{
    return s_run ((s_sqlite_t *) handle, kind == RP_TXN_WRITE ? "BEGIN IMMEDIATE" : "BEGIN",
                  err, errlen);
}

static int
s_commit (void *handle, char *err, size_t errlen)
{
    return s_run ((s_sqlite_t *) handle, "COMMIT", err, errlen);
}

static void
s_rollback (void *handle)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    if (!sqlite3_get_autocommit (self->db))
        sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
}

static int
s_exec (void *handle, rp_sql_t sql, const char *const *params, int nparams,
        rp_rows_t *rows, char *err, size_t errlen)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    rp_rows_t ignored = { 0 };
    if (!rows)
        rows = &ignored;
    rp_rows_clear (rows);
    sqlite3_stmt *stmt = self->stmts [sql];
    if (!stmt) {
        if (sqlite3_prepare_v3 (self->db, s_sql [sql], -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL)
            != SQLITE_OK)
            return s_fail (self, err, errlen);
        self->stmts [sql] = stmt;
    }
    int rc = 0;
    for (int i = 0; i < nparams && rc == 0; i++)
        if ((params [i] ? sqlite3_bind_text (stmt, i + 1, params [i], -1, SQLITE_STATIC)
                        : sqlite3_bind_null (stmt, i + 1)) != SQLITE_OK)
            rc = s_error (self, err, errlen);
    while (rc == 0) {
        int step = sqlite3_step (stmt);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = s_error (self, err, errlen);
            break;
        }
        int cols = sqlite3_column_count (stmt);
        const char *cells [RP_PC_COUNT + 8];
        size_t lengths [RP_PC_COUNT + 8];
        if (cols > (int) (sizeof cells / sizeof cells [0])) {
            rp_db_err (err, errlen, "a statement returned too many columns");
            rc = -1;
            break;
        }
        for (int c = 0; c < cols; c++) {
            bool null = sqlite3_column_type (stmt, c) == SQLITE_NULL;
            cells [c] = null ? NULL : (const char *) sqlite3_column_text (stmt, c);
            lengths [c] = null ? 0 : (size_t) sqlite3_column_bytes (stmt, c);
            if (!null && !cells [c]) {
                rp_db_err (err, errlen, "out of memory");
                rc = -1;
            }
        }
        if (rc == 0 && rp_rows_append (rows, cols, cells, lengths)) {
            rp_db_err (err, errlen, "a statement returned too many rows");
            rc = -1;
        }
    }
    if (rc == 0)
        rows->changes = sqlite3_stmt_readonly (stmt) ? rows->rows : sqlite3_changes64 (self->db);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    if (rc)
        rp_rows_clear (rows);
    rp_rows_clear (&ignored);
    return rc;
}

static int
s_script (void *handle, const char *text, char *err, size_t errlen)
{
    return s_run ((s_sqlite_t *) handle, text, err, errlen);
}

const rp_db_driver_t rp_db_sqlite_driver = {
    .name = "sqlite",
    .close = s_close,
    .begin = s_begin,
    .commit = s_commit,
    .rollback = s_rollback,
    .exec = s_exec,
    .script = s_script,
    .history_ddl = s_history_ddl,
};
