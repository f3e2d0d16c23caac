/*  engine/db/db_private.h: what the parts of engine/db/ share. Not for use
    outside engine/db/.

    The layers:
      db.c            open/close, dispatch to a driver, transactions (and the
                      commit fault hook), ids, validation, cursors, and the
                      photo read model assembled from a row
      db_commands.c   the writes: each one transaction, rolled back on failure
      db_queries.c    the reads: read models as JSON
      db_tus.c        resumable uploads' rows: lease, parts, end, expiry
      db_bridges.c    the AWS bridges' rows: S3 objects seen, the events
                      outbox's cursor
      db_bytes.c      stored bytes: the lock on an address, tombstones,
                      the collection of unreferenced bytes
      migrate.c       rp_db_migrate, Flyway's history table and checksum
      passwords.c     scrypt hashes
      db_sqlite.c     the SQLite driver and its SQL text
      db_pg.c         the PostgreSQL driver and its SQL text

    The logic is written once, over statements named by rp_sql_t. Each driver
    holds its own SQL text for each statement (its dialect, its placeholders)
    and returns rows with every cell as text, so the logic never sees
    sqlite3_* or PQ* and never builds SQL from values.
*/
#ifndef RP_DB_PRIVATE_H
#define RP_DB_PRIVATE_H

#include "engine/db/db.h"
#include "engine/utf8.h"

#include <stdarg.h>


//  Statements, each with its parameters (all passed as text, NULL for SQL
//  NULL) and the columns it returns.
typedef enum {
    RP_SQL_PING,                //  -> 1
    //  Users: commands
    RP_SQL_USER_INSERT,         //  id, name, password_hash
    RP_SQL_USER_SET_PASSWORD,   //  name, password_hash
    //  Photos: commands
    RP_SQL_PHOTO_BY_SHA,        //  user_id, sha256 -> id, batch_id
    RP_SQL_BATCH_OWNER,         //  batch_id -> user_id
    RP_SQL_BATCH_INSERT,        //  id, user_id (nothing when it exists)
    RP_SQL_PHOTO_INSERT,        //  id, user_id, batch_id, filename, status, sha256, bytes,
                                //  content_type -> id (no row: (user, sha256) exists)
    RP_SQL_PHOTO_LOCK,          //  user_id, id -> sha256 (PostgreSQL: row locked)
    RP_SQL_TAG_INSERT,          //  photo_id, tag (nothing when it exists)
    RP_SQL_TAG_DELETE,          //  photo_id, tag
    RP_SQL_TAGS_CLEAR,          //  photo_id
    RP_SQL_TAG_COUNT,           //  photo_id -> n
    RP_SQL_PHOTO_CLAIM,         //  max -> id, user_id, sha256, filename, attempts, batch_id
    RP_SQL_PHOTO_COMPLETE,      //  id, content_type, width, height, taken_at, exif, thumbhash
    RP_SQL_PHOTO_RETRY,         //  id, reason, retry_in_ms
    RP_SQL_PHOTO_FAIL,          //  id, reason
    RP_SQL_PHOTO_REQUEUE,       //  older_than_ms (processing, not changed for so long)
    RP_SQL_PHOTO_UPLOADED,      //  id
    RP_SQL_PHOTO_RELEASE,       //  id, attempts (processing as that claim -> queued, the claim undone)
    RP_SQL_PHOTO_SHA,           //  user_id, id -> sha256
    RP_SQL_PHOTO_DELETE,        //  user_id, id, sha256 (only while it is still that) -> sha256
    //  Events (V2): written in the transaction of the change they record
    RP_SQL_EVENT_RECORD,        //  photo_id (its row as it is now; thumbhash when complete, V7)
    RP_SQL_EVENT_REQUEUE_ALL,   //  older_than_ms (a 'queued' event for each photo PHOTO_REQUEUE takes)
    //  Resumable uploads (V3)
    RP_SQL_TUS_INSERT,          //  id, user_id, length, metadata, created_ms, expires_ms
    RP_SQL_TUS_GET,             //  id -> user_id, length, received, metadata, expires_ms,
                                //  lock_owner, lock_until_ms, done, photo_id, duplicate
    RP_SQL_TUS_LOCK,            //  id, owner, now_ms, until_ms, stale_owner -> id
    RP_SQL_TUS_UNLOCK,          //  id, owner
    RP_SQL_TUS_ADVANCE,         //  id, owner, expected, received, new_length, until_ms -> length
    RP_SQL_TUS_PART_PUT,        //  upload_id, start, length, name (made or replaced)
    RP_SQL_TUS_PARTS,           //  upload_id -> start, length, name
    RP_SQL_TUS_DONE,            //  id, photo_id, duplicate
    RP_SQL_TUS_DELETE,          //  id
    RP_SQL_TUS_EXPIRED,         //  now_ms, limit -> id, done
    RP_SQL_PHOTO_UPLOAD_DONE,   //  id, sha256, bytes, content_type (uploading -> queued)
    RP_SQL_PHOTO_UPLOAD_FAIL,   //  id, reason (uploading -> failed)
    RP_SQL_PHOTO_UPLOAD_DROP,   //  id (an uploading photo's row goes)
    RP_SQL_PHOTO_OWNER,         //  id -> user_id, status
    RP_SQL_EVENT_PROGRESS,      //  photo_id, received, length
    RP_SQL_EVENT_DUPLICATE,     //  photo_id, duplicate_of
    //  The AWS bridges (schema V4, db_bridges.c)
    RP_SQL_S3_OBJECT_FIND,      //  bucket, key, etag -> photo_id
    RP_SQL_S3_OBJECT_RECORD,    //  bucket, key, etag, photo_id (nothing when it exists)
    RP_SQL_OUTBOX_INIT,         //  name (at the newest event; nothing when it exists)
    RP_SQL_OUTBOX_LEASE,        //  name, owner, now_ms, until_ms -> last_event_id
    RP_SQL_OUTBOX_EVENTS,       //  after_id, limit -> id, photo_id, user_id, user, batch_id,
                                //  status, error, sha256, bytes, thumbhash
    RP_SQL_OUTBOX_ADVANCE,      //  name, owner, last_event_id
    RP_SQL_OUTBOX_RELEASE,      //  name, owner (its lease given up)
    RP_SQL_OUTBOX_PENDING,      //  name, photo_id -> outbox rows (0 or 1), events not published yet
    //  Stored bytes (schema V5, db_bytes.c)
    RP_SQL_BYTES_LOCK,          //  sha256: its lock, held to the end of the transaction
                                //  (SQLite: the write lock, which the transaction holds)
    RP_SQL_TOMBSTONE_PUT,       //  sha256 (nothing when there is one)
    RP_SQL_TOMBSTONE_DROP,      //  sha256
    RP_SQL_TOMBSTONES,          //  limit -> sha256, oldest first
    //  Queries
    RP_SQL_USER_FIND,           //  name -> id, password_hash
    RP_SQL_USER_LIST,           //  -> id, name, created_at, photos
    RP_SQL_SHA_COUNT,           //  sha256 -> n
    RP_SQL_PHOTO_GET,           //  user_id, id -> RP_PHOTO_COLUMNS
    RP_SQL_PHOTO_LIST,          //  user_id, tag, status, limit -> RP_PHOTO_COLUMNS
    RP_SQL_PHOTO_LIST_AFTER,    //  user_id, tag, status, limit, created_at, id -> RP_PHOTO_COLUMNS
    RP_SQL_BATCH_FIND,          //  user_id, batch_id -> id
    RP_SQL_BATCH_COUNTS,        //  batch_id -> status, n
    RP_SQL_BATCH_PHOTOS,        //  user_id, batch_id, limit -> RP_PHOTO_COLUMNS
    RP_SQL_STATUS_COUNTS,       //  -> status, n
    RP_SQL_EVENTS_AFTER,        //  user_id, after_id, limit -> id, photo_id, batch_id, status, error,
                                //  received, length, duplicate_of, thumbhash
    RP_SQL_EVENTS_LAST,         //  user_id or NULL (all) -> max id or NULL
    //  The gateway's limits: whose streams to wake, token stamps, open uploads
    RP_SQL_EVENTS_USERS,        //  after_id, limit -> user_id, max id (users with newer events)
    RP_SQL_USER_HASH,           //  id -> password_hash
    RP_SQL_TUS_OPEN,            //  user_id, now_ms -> n (unfinished uploads not expired)
    //  Bit-rot checks (schema V10, db_integrity.c)
    RP_SQL_SCRUB_ALL,           //  after_sha256 ("" first), limit -> sha256, bytes, id
                                //  (complete photos, one row per address, by sha256)
    RP_SQL_SCRUB_DUE,           //  older_than_ms, limit -> sha256, bytes, id (complete
                                //  photos never checked or checked longer ago, one row
                                //  per address, never checked first, then oldest check)
    RP_SQL_SCRUB_MARK,          //  sha256, integrity ('ok'|'damaged') (every row with it)
    RP_SQL_SCRUB_CLAIM,         //  sha256, older_than_ms: checked_at now on its complete rows
                                //  when still due (changes: 0 when another took it)
    RP_SQL_SCRUB_COUNTS,        //  -> integrity, n (complete photos)
    //  Near-duplicates (schema V9)
    RP_SQL_PHOTO_PHASH_SET,     //  id, phash, b0, b1, b2 (the bands as decimal)
    RP_SQL_PHASH_ABOVE,         //  user_id, b0: the 64th band-0 value at or above b0, if any
    RP_SQL_PHASH_BELOW,         //  user_id, b0: the 64th band-0 value at or below b0, if any
    RP_SQL_PHASH_CANDIDATES,    //  user_id, exclude_id, lo0, lo1, lo2 (each "n,n,...": the low
                                //  ends of the ranges to look up in band i), span (each
                                //  range is lo..lo+span-1) -> id, phash, complete ones
    RP_SQL_EVENT_SIMILAR,       //  similar (JSON array): onto the event just recorded
    //  Migrations
    RP_SQL_MIG_LOCK,            //  serialises migrators (PostgreSQL: advisory lock)
    RP_SQL_MIG_HISTORY,         //  -> installed_rank, version, checksum, success
    RP_SQL_MIG_RECORD,          //  installed_rank, version, description, script,
                                //  checksum, installed_by, execution_time
    //  The timeline (db_timeline.c): user_id, tag, limit, before_key, before_id,
    //  from_key[, status] -> RP_PHOTO_COLUMNS, sort key; newest first by
    //  (key, id) strictly below (before_key, before_id) (NULL: no bound)
    //  and key >= from_key (NULL: none)
    RP_SQL_TIMELINE_CREATED,        //  key: created_at
    RP_SQL_TIMELINE_CREATED_STATUS,
    RP_SQL_TIMELINE_TAKEN,          //  key: coalesce (taken_sort, created_at)
    RP_SQL_TIMELINE_TAKEN_STATUS,
    RP_SQL_COUNT
} rp_sql_t;

//  The columns of the photo read model, in the order every statement marked
//  RP_PHOTO_COLUMNS returns them. "tags" is a JSON array; created_at is ISO
//  8601 UTC with milliseconds.
enum {
    RP_PC_ID, RP_PC_FILENAME, RP_PC_STATUS, RP_PC_ERROR, RP_PC_SHA256, RP_PC_BYTES,
    RP_PC_CONTENT_TYPE, RP_PC_WIDTH, RP_PC_HEIGHT, RP_PC_TAKEN_AT, RP_PC_EXIF, RP_PC_TAGS,
    RP_PC_BATCH_ID, RP_PC_CREATED_AT, RP_PC_ATTEMPTS,
    RP_PC_INTEGRITY, RP_PC_CHECKED_AT,      //  schema V10
    RP_PC_THUMBHASH,                        //  schema V7
    RP_PC_PHASH,                            //  schema V9
    RP_PC_COUNT
};

//  Result rows, every cell copied out as text (NULL for SQL NULL).
typedef struct {
    int rows;                   //  how many rows
    int cols;                   //  columns per row
    char **cells;               //  rows * cols cells, row-major, owned
    int64_t changes;            //  rows changed by a command (or returned)
} rp_rows_t;

//  A cell, or NULL (SQL NULL, or out of range).
const char *rp_rows_get (const rp_rows_t *rows, int row, int col);
//  Append one row of `cols` cells (copied). 0 or -1 (out of memory, too many).
int rp_rows_append (rp_rows_t *rows, int cols, const char *const *cells, const size_t *lengths);
void rp_rows_clear (rp_rows_t *rows);

#define RP_ROWS_MAX 100000      //  a bound on what one statement may return

typedef enum { RP_TXN_READ, RP_TXN_WRITE } rp_txn_t;

//  What a backend provides. Every function writes err on failure, once.
typedef struct {
    const char *name;           //  "sqlite" or "postgresql"
    void (*close) (void *handle);
    //  A write transaction takes the write lock at once (SQLite BEGIN
    //  IMMEDIATE); a read transaction sees one snapshot.
    int (*begin) (void *handle, rp_txn_t kind, char *err, size_t errlen);
    int (*commit) (void *handle, char *err, size_t errlen);
    void (*rollback) (void *handle);
    //  Run a statement. rows may be NULL. 0, -1 or RP_CONFLICT.
    int (*exec) (void *handle, rp_sql_t sql, const char *const *params, int nparams,
                 rp_rows_t *rows, char *err, size_t errlen);
    //  Run a script of several statements (migrations: no values in it).
    int (*script) (void *handle, const char *text, char *err, size_t errlen);
    //  Creates flyway_schema_history when absent, as Flyway does.
    const char *history_ddl;
} rp_db_driver_t;

struct _rp_db_t {
    const rp_db_driver_t *driver;   //  the backend
    void *handle;                   //  the driver's connection, owned
    bool in_txn;                    //  a transaction is open
    rp_txn_t txn;                   //  and its kind
};

extern const rp_db_driver_t rp_db_sqlite_driver;
extern const rp_db_driver_t rp_db_pg_driver;
//  Open a driver's connection: NULL with the reason in err.
void *rp_db_sqlite_open (const char *path, char *err, size_t errlen);
void *rp_db_pg_open (const char *url, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Shared helpers (db.c)

//  Write one line into err (safe when err is NULL).
void rp_db_err (char *err, size_t errlen, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Transactions. rp_db_commit applies the RP_FAULT_DB_COMMIT hook to write
//  transactions; when the commit fails the transaction is rolled back.
int rp_db_begin (rp_db_t *self, rp_txn_t kind, char *err, size_t errlen);
int rp_db_commit (rp_db_t *self, char *err, size_t errlen);
void rp_db_rollback (rp_db_t *self);
int rp_db_exec (rp_db_t *self, rp_sql_t sql, const char *const *params, int nparams,
                rp_rows_t *rows, char *err, size_t errlen);

//  Validation of what callers pass in.
bool rp_db_valid_sha256 (const char *sha256);      //  64 lowercase hex
bool rp_db_valid_status (const char *status);      //  one of the five
//  Trim a tag into out (1..64 bytes, valid UTF-8). 0 or RP_REFUSED with err.
int rp_db_tag_clean (const char *tag, size_t len, char out [65], char *err, size_t errlen);

//  A failure's reason fit to show a person: valid UTF-8, no control
//  characters, cut to fit out (db_commands.c).
void rp_db_clean_reason (const char *reason, char *out, size_t outlen);

//  Stored bytes (db_bytes.c). In an open write transaction, before any row
//  that refers to sha256 is written: take the address's lock, drop its
//  tombstone, and run the caller's hook (NULL: none). 0, or the status
//  that failed (err written): the caller rolls back.
int rp_db_bytes_claim (rp_db_t *self, const char *sha256, const rp_db_bytes_hook_t *hook,
                       char *err, size_t errlen);
//  In an open write transaction: take sha256's lock. 0 or -1.
int rp_db_bytes_lock (rp_db_t *self, const char *sha256, char *err, size_t errlen);
//  How many photo rows refer to sha256 (in the open transaction, if any).
//  0 or -1 with err.
int rp_db_bytes_references (rp_db_t *self, const char *sha256, int64_t *count, char *err, size_t errlen);

//  Parse a whole decimal integer. 0 or -1.
int rp_db_parse_int (const char *text, int64_t *value);

//  The five statuses, in state-machine order.
extern const char *const rp_db_statuses [5];

//  The photo read model from row `row` (RP_PHOTO_COLUMNS). NULL with err.
json_t *rp_db_photo_json (const rp_rows_t *rows, int row, char *err, size_t errlen);

//  List cursors: the (created_at, id) of the last item, as opaque text.
//  rp_db_cursor_decode returns RP_REFUSED with a readable reason when malformed.
int rp_db_cursor_encode (const char *created_at, const char *id, char *out, size_t outlen);
int rp_db_cursor_decode (const char *cursor, char created_at [32], char id [RP_ID_MAX],
                         char *err, size_t errlen);

//  Near-duplicates (db_similar.c): the user's complete photos, but
//  exclude_id, whose hash is within max_distance (0..RP_PHASH_DISTANCE_MAX) bits of `hash`,
//  nearest first, into *found (caller frees; NULL when none) and *count;
//  *examined (may be NULL) gets how many candidates the band indexes
//  handed back. RP_REFUSED for a distance out of range.
typedef struct {
    char id [RP_ID_MAX];
    int distance;
} rp_similar_t;
int rp_db_similar_search (rp_db_t *self, const char *user_id, const char *exclude_id, uint64_t hash,
                          int max_distance, rp_similar_t **found, int *count, int *examined,
                          char *err, size_t errlen);

//  A complete event's "similar" (V9's events.similar_ids, a JSON array of
//  ids) onto event; nothing when the column is NULL (an event of another
//  status, or recorded before V9) or not such an array.
void rp_db_event_similar (json_t *event, const char *similar);

#endif
