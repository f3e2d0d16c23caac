/*  engine/db/db.c: see db.h. The shared layer: open and dispatch to a
    driver, transactions and the commit fault hook, ids, validation, list
    cursors, and the photo read model assembled from a row. The SQL lives in
    the drivers (db_sqlite.c, db_pg.c); commands and queries in
    db_commands.c and db_queries.c.
*/
#include "engine/clock.h"
#include "engine/db/db_private.h"
#include "engine/thumbhash.h"
#include "engine/fault.h"
#include "engine/hex.h"
#include "engine/log.h"
#include "engine/phash.h"
#include "engine/trace.h"

#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

const char *const rp_db_statuses [5] = { "uploading", "queued", "processing", "complete", "failed" };

//  Commits seen while RP_FAULT_DB_COMMIT is set, across the process.
static atomic_llong s_commits = 0;
//  Write transactions committed, across the process (rp_db_write_commits)
static atomic_llong s_write_commits = 0;

void
rp_db_err (char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (err, errlen, fmt, args);
    va_end (args);
}

//  ---------------------------------------------------------------------------
//  Connection

rp_db_t *
rp_db_open (const char *url, char *err, size_t errlen)
{
    if (!url || !*url) {
        rp_db_err (err, errlen, "db.url is empty: use sqlite:<path> or postgresql://...");
        return NULL;
    }
    const rp_db_driver_t *driver = NULL;
    void *handle = NULL;
    if (strncmp (url, "sqlite:", 7) == 0) {
        const char *path = url + 7;
        if (strncmp (path, "//", 2) == 0)
            path += 2;                  //  sqlite:///abs/path, sqlite://relative
        if (!*path) {
            rp_db_err (err, errlen, "db.url sqlite: names no file (sqlite:<path>)");
            return NULL;
        }
        driver = &rp_db_sqlite_driver;
        handle = rp_db_sqlite_open (path, err, errlen);
    }
    else
    if (strncmp (url, "postgresql://", 13) == 0 || strncmp (url, "postgres://", 11) == 0) {
        driver = &rp_db_pg_driver;
        handle = rp_db_pg_open (url, err, errlen);
    }
    else {
        //  Not echoed: a url may hold a password
        rp_db_err (err, errlen, "db.url has an unknown scheme: use sqlite:<path> or postgresql://...");
        return NULL;
    }
    if (!handle)
        return NULL;
    rp_db_t *self = (rp_db_t *) calloc (1, sizeof (rp_db_t));
    if (!self) {
        driver->close (handle);
        rp_db_err (err, errlen, "out of memory");
        return NULL;
    }
    self->driver = driver;
    self->handle = handle;
    return self;
}

void
rp_db_close (rp_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rp_db_t *self = *self_p;
    if (self->in_txn)
        self->driver->rollback (self->handle);
    self->driver->close (self->handle);
    free (self);
    *self_p = NULL;
}

const char *
rp_db_backend (rp_db_t *self)
{
    return self->driver->name;
}

int
rp_db_ping (rp_db_t *self, char *err, size_t errlen)
{
    rp_rows_t rows = { 0 };
    int rc = rp_db_exec (self, RP_SQL_PING, NULL, 0, &rows, err, errlen);
    rp_rows_clear (&rows);
    return rc ? -1 : 0;
}

//  ---------------------------------------------------------------------------
//  Transactions

int
rp_db_begin (rp_db_t *self, rp_txn_t kind, char *err, size_t errlen)
{
    if (self->in_txn) {
        //  A programmer's mistake (a path that forgot to end one): end it
        //  rather than nest, and say so
        rp_warn ("db", "a transaction was left open; rolled back");
        rp_db_rollback (self);
    }
    if (self->driver->begin (self->handle, kind, err, errlen))
        return -1;
    self->in_txn = true;
    self->txn = kind;
    return 0;
}

int
rp_db_commit (rp_db_t *self, char *err, size_t errlen)
{
    if (self->txn == RP_TXN_WRITE) {
        //  RP_FAULT_DB_COMMIT=N: the Nth write commit (counted while the hook
        //  is set) is refused, as if the database had failed it
        int64_t nth = rp_fault_value ("DB_COMMIT");
        if (nth > 0 && atomic_fetch_add (&s_commits, 1) + 1 == nth) {
            rp_db_rollback (self);
            rp_db_err (err, errlen, "the database refused the commit (fault hook RP_FAULT_DB_COMMIT)");
            return -1;
        }
    }
    int rc = self->driver->commit (self->handle, err, errlen);
    if (rc)
        self->driver->rollback (self->handle);
    else
    if (self->txn == RP_TXN_WRITE)
        atomic_fetch_add (&s_write_commits, 1);
    self->in_txn = false;
    return rc ? -1 : 0;
}

int64_t
rp_db_write_commits (void)
{
    return atomic_load (&s_write_commits);
}

void
rp_db_rollback (rp_db_t *self)
{
    if (!self->in_txn)
        return;
    self->driver->rollback (self->handle);
    self->in_txn = false;
}

int
rp_db_exec (rp_db_t *self, rp_sql_t sql, const char *const *params, int nparams,
            rp_rows_t *rows, char *err, size_t errlen)
{
    if (!rp_trace_active ())
        return self->driver->exec (self->handle, sql, params, nparams, rows, err, errlen);
    //  Traced: one "database" subsegment per statement (RP_ERROR a fault;
    //  not found, a conflict... are answers, not failures)
    double start = rp_trace_now ();
    int rc = self->driver->exec (self->handle, sql, params, nparams, rows, err, errlen);
    rp_trace_subsegment ("database", "remote", NULL, start, rp_trace_now (), rc == RP_ERROR ? -1 : 0,
                         json_pack ("{s:{s:s}}", "sql", "database_type", self->driver->name));
    return rc;
}

//  ---------------------------------------------------------------------------
//  Rows

const char *
rp_rows_get (const rp_rows_t *rows, int row, int col)
{
    if (!rows || row < 0 || row >= rows->rows || col < 0 || col >= rows->cols)
        return NULL;
    return rows->cells [(size_t) row * (size_t) rows->cols + (size_t) col];
}

int
rp_rows_append (rp_rows_t *rows, int cols, const char *const *cells, const size_t *lengths)
{
    if (rows->rows == 0)
        rows->cols = cols;
    if (cols != rows->cols || rows->rows >= RP_ROWS_MAX)
        return -1;
    size_t have = (size_t) rows->rows * (size_t) cols;
    char **grown = (char **) realloc (rows->cells, (have + (size_t) cols) * sizeof (char *));
    if (!grown)
        return -1;
    rows->cells = grown;
    for (int c = 0; c < cols; c++) {
        char *copy = NULL;
        if (cells [c]) {
            copy = (char *) malloc (lengths [c] + 1);
            if (!copy) {
                for (int k = 0; k < c; k++)
                    free (grown [have + (size_t) k]);
                return -1;
            }
            memcpy (copy, cells [c], lengths [c]);
            copy [lengths [c]] = 0;
        }
        grown [have + (size_t) c] = copy;
    }
    rows->rows++;
    return 0;
}

void
rp_rows_clear (rp_rows_t *rows)
{
    if (!rows)
        return;
    size_t cells = (size_t) rows->rows * (size_t) rows->cols;
    for (size_t i = 0; i < cells; i++)
        free (rows->cells [i]);
    free (rows->cells);
    memset (rows, 0, sizeof *rows);
}

//  ---------------------------------------------------------------------------
//  Ids

//  Ids sort in the order this process made them, like a UUIDv7: 48 bits of
//  milliseconds since the epoch, a 16-bit sequence that keeps ids made in the
//  same millisecond in order, then 64 random bits. Rows that tie on a
//  millisecond created_at (SQLite's resolution) still list in upload order.

void
rp_db_new_id (char id [RP_ID_MAX])
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t last_ms = 0;
    static uint32_t sequence = 0;
    uint64_t now = (uint64_t) rp_clock_wall_ms ();
    pthread_mutex_lock (&lock);
    if (now > last_ms) {
        last_ms = now;
        sequence = 0;
    }
    else
    if (++sequence > 0xffff) {          //  65536 ids in one ms: borrow the next
        last_ms++;
        sequence = 0;
    }
    uint64_t ms = last_ms;
    uint32_t seq = sequence;
    pthread_mutex_unlock (&lock);

    unsigned char bytes [16];
    for (int i = 0; i < 6; i++)
        bytes [i] = (unsigned char) (ms >> (8 * (5 - i)));
    bytes [6] = (unsigned char) (seq >> 8);
    bytes [7] = (unsigned char) seq;
    size_t got = 0;
    while (got < 8) {
        ssize_t n = getrandom (bytes + 8 + got, 8 - got, 0);
        if (n > 0)
            got += (size_t) n;
        else
        if (n < 0 && errno != EINTR)
            break;
    }
    if (got < 8 && RAND_bytes (bytes + 8, 8) != 1) {
        //  No randomness at all: the process id keeps engines apart
        uint64_t pid = (uint64_t) getpid ();
        memcpy (bytes + 8, &pid, sizeof pid);
    }
    rp_hex_encode (bytes, sizeof bytes, id);
}

//  ---------------------------------------------------------------------------
//  Validation

bool
rp_db_valid_id (const char *id)
{
    if (!id)
        return false;
    size_t len = 0;
    for (const char *c = id; *c; c++, len++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
               || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_';
        if (!ok || len >= RP_ID_MAX - 1)
            return false;
    }
    return len > 0;
}

bool
rp_db_valid_sha256 (const char *sha256)
{
    if (!sha256)
        return false;
    size_t len = 0;
    for (const char *c = sha256; *c; c++, len++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')) || len >= 64)
            return false;
    return len == 64;
}

bool
rp_db_valid_status (const char *status)
{
    for (int i = 0; status && i < 5; i++)
        if (strcmp (status, rp_db_statuses [i]) == 0)
            return true;
    return false;
}

int
rp_db_tag_clean (const char *tag, size_t len, char out [65], char *err, size_t errlen)
{
    while (len > 0 && (*tag == ' ' || *tag == '\t' || *tag == '\r' || *tag == '\n'))
        tag++, len--;
    while (len > 0 && (tag [len - 1] == ' ' || tag [len - 1] == '\t'
                    || tag [len - 1] == '\r' || tag [len - 1] == '\n'))
        len--;
    if (len == 0 || len > 64) {
        rp_db_err (err, errlen, "a tag must have 1 to 64 bytes");
        return RP_REFUSED;
    }
    if (!rp_utf8_valid (tag, len)) {
        rp_db_err (err, errlen, "a tag must be UTF-8 text");
        return RP_REFUSED;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) tag [i] < 0x20 || tag [i] == 0x7f) {
            rp_db_err (err, errlen, "a tag may not hold control characters");
            return RP_REFUSED;
        }
    memcpy (out, tag, len);
    out [len] = 0;
    return 0;
}

int
rp_db_parse_int (const char *text, int64_t *value)
{
    if (!text || !*text)
        return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll (text, &end, 10);
    if (errno || !end || *end)
        return -1;
    *value = (int64_t) v;
    return 0;
}

//  ---------------------------------------------------------------------------
//  The photo read model

static int
s_cmp_strings (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

//  Tags as a sorted array of strings (the order is the same on both backends).
static json_t *
s_tags_json (const char *text)
{
    json_t *tags = json_array ();
    json_t *parsed = text ? json_loads (text, 0, NULL) : NULL;
    if (!json_is_array (parsed)) {
        json_decref (parsed);
        return tags;
    }
    size_t count = json_array_size (parsed);
    const char **names = (const char **) calloc (count ? count : 1, sizeof (char *));
    size_t n = 0;
    for (size_t i = 0; names && i < count; i++) {
        const char *name = json_string_value (json_array_get (parsed, i));
        if (name)
            names [n++] = name;
    }
    if (names) {
        qsort (names, n, sizeof (char *), s_cmp_strings);
        for (size_t i = 0; i < n; i++)
            json_array_append_new (tags, json_string (names [i]));
    }
    free (names);
    json_decref (parsed);
    return tags;
}

static json_t *
s_string_or_null (const char *text)
{
    json_t *value = text ? json_string (text) : NULL;
    return value ? value : json_null ();
}

json_t *
rp_db_photo_json (const rp_rows_t *rows, int row, char *err, size_t errlen)
{
    if (rows->cols < RP_PC_COUNT) {
        rp_db_err (err, errlen, "unreadable photo row");
        return NULL;
    }
    const char *id = rp_rows_get (rows, row, RP_PC_ID);
    int64_t bytes = 0, width = 0, height = 0, attempts = 0;
    const char *c_bytes = rp_rows_get (rows, row, RP_PC_BYTES);
    const char *c_width = rp_rows_get (rows, row, RP_PC_WIDTH);
    const char *c_height = rp_rows_get (rows, row, RP_PC_HEIGHT);
    const char *c_attempts = rp_rows_get (rows, row, RP_PC_ATTEMPTS);
    if (!id || (c_bytes && rp_db_parse_int (c_bytes, &bytes))
    ||  (c_width && rp_db_parse_int (c_width, &width))
    ||  (c_height && rp_db_parse_int (c_height, &height))
    ||  (c_attempts && rp_db_parse_int (c_attempts, &attempts))) {
        rp_db_err (err, errlen, "unreadable photo row");
        return NULL;
    }
    json_t *exif = NULL;
    const char *c_exif = rp_rows_get (rows, row, RP_PC_EXIF);
    if (c_exif) {
        exif = json_loads (c_exif, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object (exif)) {
            rp_warn ("db", "photo=%s has unreadable exif; shown as null", id);
            json_decref (exif);
            exif = NULL;
        }
    }
    json_t *photo = json_object ();
    json_object_set_new (photo, "id", json_string (id));
    json_object_set_new (photo, "filename", s_string_or_null (rp_rows_get (rows, row, RP_PC_FILENAME)));
    json_object_set_new (photo, "status", s_string_or_null (rp_rows_get (rows, row, RP_PC_STATUS)));
    json_object_set_new (photo, "error", s_string_or_null (rp_rows_get (rows, row, RP_PC_ERROR)));
    //  An upload whose bytes are not all in has a placeholder, not a sha256
    const char *sha256 = rp_rows_get (rows, row, RP_PC_SHA256);
    json_object_set_new (photo, "sha256", s_string_or_null (rp_db_valid_sha256 (sha256) ? sha256 : NULL));
    json_object_set_new (photo, "bytes", json_integer (bytes));
    json_object_set_new (photo, "content_type",
                         s_string_or_null (rp_rows_get (rows, row, RP_PC_CONTENT_TYPE)));
    json_object_set_new (photo, "width", c_width ? json_integer (width) : json_null ());
    json_object_set_new (photo, "height", c_height ? json_integer (height) : json_null ());
    json_object_set_new (photo, "taken_at", s_string_or_null (rp_rows_get (rows, row, RP_PC_TAKEN_AT)));
    json_object_set_new (photo, "exif", exif ? exif : json_null ());
    json_object_set_new (photo, "tags", s_tags_json (rp_rows_get (rows, row, RP_PC_TAGS)));
    json_object_set_new (photo, "batch_id", s_string_or_null (rp_rows_get (rows, row, RP_PC_BATCH_ID)));
    json_object_set_new (photo, "created_at",
                         s_string_or_null (rp_rows_get (rows, row, RP_PC_CREATED_AT)));
    json_object_set_new (photo, "attempts", json_integer (attempts));
    //  Schema V10: what the last bit-rot check found (null: never checked)
    json_object_set_new (photo, "integrity", s_string_or_null (rp_rows_get (rows, row, RP_PC_INTEGRITY)));
    json_object_set_new (photo, "checked_at", s_string_or_null (rp_rows_get (rows, row, RP_PC_CHECKED_AT)));
    //  The placeholder (V7): only one of ours is shown, null otherwise
    const char *thumbhash = rp_rows_get (rows, row, RP_PC_THUMBHASH);
    json_object_set_new (photo, "thumbhash", s_string_or_null (
        thumbhash && rp_thumbhash_valid (thumbhash, strlen (thumbhash)) ? thumbhash : NULL));
    uint64_t phash;
    const char *c_phash = rp_rows_get (rows, row, RP_PC_PHASH);
    json_object_set_new (photo, "phash", s_string_or_null (c_phash && rp_phash_parse (c_phash, &phash) == 0
                                                           ? c_phash : NULL));
    return photo;
}

//  ---------------------------------------------------------------------------
//  List cursors: base64url (no padding) of "<created_at> <id>"

static const char s_b64 [] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

//  created_at as both backends write it: "2026-11-29T02:10:00.123Z"
static bool
s_valid_created_at (const char *text)
{
    static const char shape [] = "dddd-dd-ddTdd:dd:dd.dddZ";
    size_t len = strlen (text);
    if (len != sizeof shape - 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (shape [i] == 'd' ? !(text [i] >= '0' && text [i] <= '9') : text [i] != shape [i])
            return false;
    return true;
}

int
rp_db_cursor_encode (const char *created_at, const char *id, char *out, size_t outlen)
{
    char plain [128];
    int n = snprintf (plain, sizeof plain, "%s %s", created_at, id);
    if (n < 0 || (size_t) n >= sizeof plain || outlen < ((size_t) n * 4) / 3 + 4)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < n; i++) {
        acc = (acc << 8) | (unsigned char) plain [i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out [o++] = s_b64 [(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out [o++] = s_b64 [(acc << (6 - bits)) & 63];
    out [o] = 0;
    return 0;
}

int
rp_db_cursor_decode (const char *cursor, char created_at [32], char id [RP_ID_MAX],
                     char *err, size_t errlen)
{
    char plain [128];
    size_t len = strlen (cursor), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (len == 0 || len > 160)
        goto malformed;
    for (size_t i = 0; i < len; i++) {
        const char *at = strchr (s_b64, cursor [i]);
        if (!at || !cursor [i])
            goto malformed;
        acc = (acc << 6) | (uint32_t) (at - s_b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= sizeof plain - 1)
                goto malformed;
            plain [o++] = (char) ((acc >> bits) & 0xFF);
        }
    }
    plain [o] = 0;
    if (memchr (plain, 0, o))
        goto malformed;
    char *space = strchr (plain, ' ');
    if (!space)
        goto malformed;
    *space = 0;
    if (!s_valid_created_at (plain) || !rp_db_valid_id (space + 1))
        goto malformed;
    snprintf (created_at, 32, "%s", plain);
    snprintf (id, RP_ID_MAX, "%s", space + 1);
    return 0;
malformed:
    rp_db_err (err, errlen, "malformed cursor: pass next_cursor from the previous page as it was");
    return RP_REFUSED;
}
