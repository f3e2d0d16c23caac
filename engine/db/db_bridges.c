/*  engine/db/db_bridges.c: the rows behind the AWS bridges, schema V4
    (see db.h): which S3 objects became which photos, and how far the SQS
    events producer got in the events table.
*/
#include "engine/db/db_private.h"
#include "engine/thumbhash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_COUNT(a) ((int) (sizeof (a) / sizeof ((a) [0])))

int
rp_db_photo_status (rp_db_t *self, const char *id, char status [16], char *err, size_t errlen)
{
    status [0] = 0;
    if (!rp_db_valid_id (id)) {
        rp_db_err (err, errlen, "photo not found");
        return RP_NOT_FOUND;
    }
    rp_rows_t rows = { 0 };
    const char *params [] = { id };
    if (rp_db_exec (self, RP_SQL_PHOTO_OWNER, params, 1, &rows, err, errlen))
        return -1;
    const char *value = rp_rows_get (&rows, 0, 1);
    int rc = rows.rows && value ? 0 : RP_NOT_FOUND;
    if (rc == 0)
        snprintf (status, 16, "%s", value);
    else
        rp_db_err (err, errlen, "photo %s not found", id);
    rp_rows_clear (&rows);
    return rc;
}

int
rp_db_s3_object_find (rp_db_t *self, const char *bucket, const char *key, const char *etag,
                      char photo_id [RP_ID_MAX], char *err, size_t errlen)
{
    photo_id [0] = 0;
    rp_rows_t rows = { 0 };
    const char *params [] = { bucket, key, etag };
    if (rp_db_exec (self, RP_SQL_S3_OBJECT_FIND, params, S_COUNT (params), &rows, err, errlen))
        return -1;
    const char *value = rp_rows_get (&rows, 0, 0);
    int rc = rows.rows && value ? 0 : RP_NOT_FOUND;
    if (rc == 0)
        snprintf (photo_id, RP_ID_MAX, "%s", value);
    rp_rows_clear (&rows);
    return rc;
}

int
rp_db_s3_object_record (rp_db_t *self, const char *bucket, const char *key, const char *etag,
                        const char *photo_id, char *err, size_t errlen)
{
    const char *params [] = { bucket, key, etag, photo_id };
    return rp_db_exec (self, RP_SQL_S3_OBJECT_RECORD, params, S_COUNT (params), NULL, err, errlen);
}

int
rp_db_outbox_claim (rp_db_t *self, const char *name, const char *owner, int64_t now_ms,
                    int64_t until_ms, int limit, int64_t *cursor, json_t **events,
                    char *err, size_t errlen)
{
    *events = NULL;
    *cursor = 0;
    char now [24], until [24], max [16];
    snprintf (now, sizeof now, "%lld", (long long) now_ms);
    snprintf (until, sizeof until, "%lld", (long long) until_ms);
    snprintf (max, sizeof max, "%d", limit < 1 ? 10 : limit > 1000 ? 1000 : limit);
    const char *init [] = { name };
    if (rp_db_exec (self, RP_SQL_OUTBOX_INIT, init, 1, NULL, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    const char *lease [] = { name, owner, now, until };
    if (rp_db_exec (self, RP_SQL_OUTBOX_LEASE, lease, S_COUNT (lease), &rows, err, errlen))
        return -1;
    bool taken = rows.rows > 0 && rp_db_parse_int (rp_rows_get (&rows, 0, 0), cursor) == 0;
    //  Where the publisher got to in its transactions' order (PostgreSQL's
    //  xid8 as text; "0" before any, and on SQLite)
    char after_tx [32] = "0";
    if (taken && rp_rows_get (&rows, 0, 1))
        snprintf (after_tx, sizeof after_tx, "%s", rp_rows_get (&rows, 0, 1));
    rp_rows_clear (&rows);
    if (!taken) {
        rp_db_err (err, errlen, "another engine is publishing %s", name);
        return RP_BUSY;
    }
    char after [24];
    snprintf (after, sizeof after, "%lld", (long long) *cursor);
    const char *params [] = { after, max, after_tx };
    if (rp_db_exec (self, RP_SQL_OUTBOX_EVENTS, params, S_COUNT (params), &rows, err, errlen))
        return -1;
    json_t *list = json_array ();
    for (int r = 0; r < rows.rows; r++) {
        int64_t id = 0, bytes = 0;
        if (rp_db_parse_int (rp_rows_get (&rows, r, 0), &id))
            continue;
        const char *batch = rp_rows_get (&rows, r, 4);
        const char *error = rp_rows_get (&rows, r, 6);
        const char *sha = rp_rows_get (&rows, r, 7);
        bool has_bytes = rp_db_parse_int (rp_rows_get (&rows, r, 8), &bytes) == 0;
        json_t *event = json_pack (
            "{s:I, s:s?, s:s?, s:s?, s:o, s:s?, s:o, s:o, s:o}",
            "event_id", (json_int_t) id,
            "id", rp_rows_get (&rows, r, 1),
            "user_id", rp_rows_get (&rows, r, 2),
            "user", rp_rows_get (&rows, r, 3),
            "batch_id", batch ? json_string (batch) : json_null (),
            "status", rp_rows_get (&rows, r, 5),
            "error", error ? json_string (error) : json_null (),
            //  a photo deleted since, or whose bytes never arrived: no sha
            "sha256", sha && rp_db_valid_sha256 (sha) ? json_string (sha) : json_null (),
            "bytes", has_bytes ? json_integer (bytes) : json_null ());
        if (!event)
            continue;           //  out of memory: its extras must not land on another
        //  A complete event carries the photo's placeholder (V7)
        const char *thumbhash = rp_rows_get (&rows, r, 9);
        json_object_set_new (event, "thumbhash",
                             thumbhash && rp_thumbhash_valid (thumbhash, strlen (thumbhash))
                             ? json_string (thumbhash) : json_null ());
        rp_db_event_similar (event, rp_rows_get (&rows, r, 10));
        json_array_append_new (list, event);
    }
    rp_rows_clear (&rows);
    *events = list;
    return 0;
}

int
rp_db_outbox_advance (rp_db_t *self, const char *name, const char *owner, int64_t cursor,
                      char *err, size_t errlen)
{
    char to [24];
    snprintf (to, sizeof to, "%lld", (long long) cursor);
    rp_rows_t rows = { 0 };
    const char *params [] = { name, owner, to };
    if (rp_db_exec (self, RP_SQL_OUTBOX_ADVANCE, params, S_COUNT (params), &rows, err, errlen))
        return -1;
    bool moved = rows.changes > 0;
    rp_rows_clear (&rows);
    if (!moved) {
        rp_db_err (err, errlen, "%s is published by another engine now", name);
        return RP_CONFLICT;
    }
    return 0;
}

int
rp_db_outbox_pending (rp_db_t *self, const char *name, const char *photo_id, bool *pending,
                      char *err, size_t errlen)
{
    *pending = true;
    rp_rows_t rows = { 0 };
    const char *params [] = { name, photo_id };
    if (rp_db_exec (self, RP_SQL_OUTBOX_PENDING, params, S_COUNT (params), &rows, err, errlen))
        return -1;
    int64_t publishers = 0, unpublished = 0;
    int rc = rows.rows == 1 && rp_db_parse_int (rp_rows_get (&rows, 0, 0), &publishers) == 0
          && rp_db_parse_int (rp_rows_get (&rows, 0, 1), &unpublished) == 0 ? 0 : -1;
    rp_rows_clear (&rows);
    if (rc) {
        rp_db_err (err, errlen, "the outbox %s cannot be read", name);
        return -1;
    }
    *pending = publishers == 0 || unpublished > 0;
    return 0;
}

int
rp_db_outbox_release (rp_db_t *self, const char *name, const char *owner, char *err, size_t errlen)
{
    const char *params [] = { name, owner };
    return rp_db_exec (self, RP_SQL_OUTBOX_RELEASE, params, S_COUNT (params), NULL, err, errlen);
}
