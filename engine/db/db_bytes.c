/*  engine/db/db_bytes.c: stored bytes, schema V5 (see db.h, "Stored bytes").

    The lock on an address, its tombstone, and the collection of bytes no
    photo refers to. The bytes themselves are the library's: it passes what
    to do with them as a hook, run here inside the transaction that holds
    the lock, so the db layer never sees a file or a bucket and the library
    never sees a transaction. Every command is one transaction and changes
    nothing when it fails.
*/
#include "engine/db/db_private.h"

#include <stdio.h>
#include <string.h>

static int
s_abort (rp_db_t *self, int rc)
{
    rp_db_rollback (self);
    return rc;
}

static bool
s_valid (const char *sha256, char *err, size_t errlen)
{
    if (rp_db_valid_sha256 (sha256))
        return true;
    rp_db_err (err, errlen, "sha256 must be 64 lowercase hex characters");
    return false;
}

int
rp_db_bytes_lock (rp_db_t *self, const char *sha256, char *err, size_t errlen)
{
    const char *params [] = { sha256 };
    return rp_db_exec (self, RP_SQL_BYTES_LOCK, params, 1, NULL, err, errlen) ? -1 : 0;
}

int
rp_db_bytes_references (rp_db_t *self, const char *sha256, int64_t *count, char *err, size_t errlen)
{
    rp_rows_t rows = { 0 };
    const char *params [] = { sha256 };
    if (rp_db_exec (self, RP_SQL_SHA_COUNT, params, 1, &rows, err, errlen))
        return -1;
    int bad = rp_db_parse_int (rp_rows_get (&rows, 0, 0), count);
    rp_rows_clear (&rows);
    if (bad)
        rp_db_err (err, errlen, "unreadable count");
    return bad ? -1 : 0;
}

int
rp_db_bytes_claim (rp_db_t *self, const char *sha256, const rp_db_bytes_hook_t *hook,
                   char *err, size_t errlen)
{
    const char *params [] = { sha256 };
    if (rp_db_bytes_lock (self, sha256, err, errlen)
    ||  rp_db_exec (self, RP_SQL_TOMBSTONE_DROP, params, 1, NULL, err, errlen))
        return -1;
    return hook && hook->fn ? hook->fn (hook->arg, sha256, err, errlen) : 0;
}

int
rp_db_bytes_tombstone (rp_db_t *self, const char *sha256, char *err, size_t errlen)
{
    if (!s_valid (sha256, err, errlen))
        return RP_REFUSED;
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    const char *params [] = { sha256 };
    if (rp_db_exec (self, RP_SQL_TOMBSTONE_PUT, params, 1, NULL, err, errlen))
        return s_abort (self, -1);
    return rp_db_commit (self, err, errlen);
}

int
rp_db_bytes_tombstones (rp_db_t *self, int limit, json_t **list, char *err, size_t errlen)
{
    *list = NULL;
    char max [16];
    snprintf (max, sizeof max, "%d", limit < 1 ? 1 : limit > 1000 ? 1000 : limit);
    rp_rows_t rows = { 0 };
    const char *params [] = { max };
    if (rp_db_exec (self, RP_SQL_TOMBSTONES, params, 1, &rows, err, errlen))
        return -1;
    json_t *out = json_array ();
    for (int r = 0; r < rows.rows; r++)
        if (rp_db_valid_sha256 (rp_rows_get (&rows, r, 0)))
            json_array_append_new (out, json_string (rp_rows_get (&rows, r, 0)));
    rp_rows_clear (&rows);
    *list = out;
    return 0;
}

int
rp_db_bytes_collect (rp_db_t *self, const char *sha256, const rp_db_bytes_hook_t *remove,
                     bool *removed, char *err, size_t errlen)
{
    *removed = false;
    if (!s_valid (sha256, err, errlen))
        return RP_REFUSED;
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    //  Under the lock, the count is the truth: a row committed before the
    //  lock was granted is counted, and none can be committed until the end
    const char *params [] = { sha256 };
    int64_t references = -1;
    if (rp_db_bytes_lock (self, sha256, err, errlen)
    ||  rp_db_bytes_references (self, sha256, &references, err, errlen))
        return s_abort (self, -1);
    if (references == 0 && remove && remove->fn) {
        int rc = remove->fn (remove->arg, sha256, err, errlen);
        if (rc)
            return s_abort (self, rc);
        *removed = true;
    }
    if (rp_db_exec (self, RP_SQL_TOMBSTONE_DROP, params, 1, NULL, err, errlen))
        return s_abort (self, -1);
    return rp_db_commit (self, err, errlen);
}
