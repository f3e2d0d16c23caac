/*  engine/db/db_tus.c: resumable uploads (tus 1.0), schema V3 (see db.h).

    The rows behind gateway/tus.c. An upload is created with its photo by
    rp_db_photo_create (one transaction); here are its lease, its parts,
    its end (finish, fail, delete) and the expiry sweep's query. Every
    command is one transaction and changes nothing when it fails.
*/
#include "engine/alloc.h"
#include "engine/db/db_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_COUNT(a) ((int) (sizeof (a) / sizeof ((a) [0])))
#define S_NAME_MAX 200              //  a part's file name

static int
s_abort (rp_db_t *self, int rc)
{
    rp_db_rollback (self);
    return rc;
}

static bool
s_valid_upload_id (const char *id, char *err, size_t errlen)
{
    if (rp_db_valid_id (id))
        return true;
    rp_db_err (err, errlen, "upload not found");
    return false;
}

static int64_t
s_int (const rp_rows_t *rows, int row, int col, int64_t otherwise)
{
    int64_t value;
    return rp_db_parse_int (rp_rows_get (rows, row, col), &value) == 0 ? value : otherwise;
}

int
rp_db_tus_get (rp_db_t *self, const char *user_id, const char *id, rp_tus_t *upload,
               char *err, size_t errlen)
{
    memset (upload, 0, sizeof *upload);
    if (!s_valid_upload_id (id, err, errlen))
        return RP_NOT_FOUND;
    rp_rows_t rows = { 0 };
    const char *params [] = { id };
    if (rp_db_exec (self, RP_SQL_TUS_GET, params, 1, &rows, err, errlen))
        return -1;
    const char *owner = rp_rows_get (&rows, 0, 0);
    if (rows.rows == 0 || !owner || (user_id && strcmp (owner, user_id))) {
        rp_rows_clear (&rows);
        rp_db_err (err, errlen, "upload %s not found", id);
        return RP_NOT_FOUND;
    }
    snprintf (upload->id, sizeof upload->id, "%s", id);
    snprintf (upload->user_id, sizeof upload->user_id, "%s", owner);
    upload->length = s_int (&rows, 0, 1, -1);
    upload->received = s_int (&rows, 0, 2, 0);
    const char *metadata = rp_rows_get (&rows, 0, 3);
    upload->metadata = rp_strdup (metadata);
    upload->expires_ms = s_int (&rows, 0, 4, 0);
    const char *lock = rp_rows_get (&rows, 0, 5);
    snprintf (upload->lock_owner, sizeof upload->lock_owner, "%s", lock ? lock : "");
    upload->lock_until_ms = s_int (&rows, 0, 6, 0);
    upload->done = s_int (&rows, 0, 7, 0) != 0;
    const char *photo = rp_rows_get (&rows, 0, 8);
    snprintf (upload->photo_id, sizeof upload->photo_id, "%s", photo ? photo : "");
    upload->duplicate = s_int (&rows, 0, 9, 0) != 0;
    rp_rows_clear (&rows);
    return 0;
}

void
rp_db_tus_clear (rp_tus_t *upload)
{
    if (upload) {
        free (upload->metadata);
        upload->metadata = NULL;
    }
}

int
rp_db_tus_lock (rp_db_t *self, const char *id, const char *owner, const char *stale_owner,
                int64_t now_ms, int64_t until_ms, char *err, size_t errlen)
{
    if (!s_valid_upload_id (id, err, errlen))
        return RP_NOT_FOUND;
    char now [24], until [24];
    snprintf (now, sizeof now, "%lld", (long long) now_ms);
    snprintf (until, sizeof until, "%lld", (long long) until_ms);
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    const char *params [] = { id, owner, now, until, stale_owner };
    if (rp_db_exec (self, RP_SQL_TUS_LOCK, params, S_COUNT (params), &rows, err, errlen))
        return s_abort (self, -1);
    bool taken = rows.rows > 0;
    rp_rows_clear (&rows);
    if (!taken) {
        //  Held by another, or gone: tell which
        const char *get [] = { id };
        if (rp_db_exec (self, RP_SQL_TUS_GET, get, 1, &rows, err, errlen))
            return s_abort (self, -1);
        bool exists = rows.rows > 0;
        rp_rows_clear (&rows);
        rp_db_err (err, errlen, exists ? "upload %s is in use by another request" : "upload %s not found", id);
        return s_abort (self, exists ? RP_BUSY : RP_NOT_FOUND);
    }
    return rp_db_commit (self, err, errlen);
}

int
rp_db_tus_unlock (rp_db_t *self, const char *id, const char *owner, char *err, size_t errlen)
{
    if (!s_valid_upload_id (id, err, errlen))
        return RP_NOT_FOUND;
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    const char *params [] = { id, owner };
    if (rp_db_exec (self, RP_SQL_TUS_UNLOCK, params, S_COUNT (params), NULL, err, errlen))
        return s_abort (self, -1);
    return rp_db_commit (self, err, errlen);
}

int
rp_db_tus_append (rp_db_t *self, const char *id, const char *owner, int64_t expected,
                  int64_t start, int64_t length, const char *name, int64_t new_length,
                  int64_t until_ms, char *err, size_t errlen)
{
    if (!s_valid_upload_id (id, err, errlen))
        return RP_NOT_FOUND;
    if (start < 0 || length < 0 || expected < start || !name || !*name || strlen (name) > S_NAME_MAX
    ||  strchr (name, '/')) {
        rp_db_err (err, errlen, "a part must have a start, a length and a plain file name");
        return RP_REFUSED;
    }
    char s_expected [24], s_start [24], s_length [24], s_received [24], s_new_length [24], s_until [24];
    snprintf (s_expected, sizeof s_expected, "%lld", (long long) expected);
    snprintf (s_start, sizeof s_start, "%lld", (long long) start);
    snprintf (s_length, sizeof s_length, "%lld", (long long) length);
    snprintf (s_received, sizeof s_received, "%lld", (long long) (start + length));
    snprintf (s_new_length, sizeof s_new_length, "%lld", (long long) new_length);
    snprintf (s_until, sizeof s_until, "%lld", (long long) until_ms);
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    const char *advance [] = { id, owner, s_expected, s_received,
                               new_length >= 0 ? s_new_length : NULL, s_until };
    if (rp_db_exec (self, RP_SQL_TUS_ADVANCE, advance, S_COUNT (advance), &rows, err, errlen))
        return s_abort (self, -1);
    if (rows.rows == 0) {
        rp_rows_clear (&rows);
        rp_db_err (err, errlen, "upload %s moved on or its lease was taken over", id);
        return s_abort (self, RP_CONFLICT);
    }
    const char *total = rp_rows_get (&rows, 0, 0);
    char s_total [24] = "";
    if (total)
        snprintf (s_total, sizeof s_total, "%s", total);
    rp_rows_clear (&rows);
    const char *part [] = { id, s_start, s_length, name };
    const char *progress [] = { id, s_received, *s_total ? s_total : NULL };
    if (rp_db_exec (self, RP_SQL_TUS_PART_PUT, part, S_COUNT (part), NULL, err, errlen)
    ||  rp_db_exec (self, RP_SQL_EVENT_PROGRESS, progress, S_COUNT (progress), NULL, err, errlen))
        return s_abort (self, -1);
    return rp_db_commit (self, err, errlen);
}

int
rp_db_tus_parts (rp_db_t *self, const char *id, json_t **parts, char *err, size_t errlen)
{
    *parts = NULL;
    if (!s_valid_upload_id (id, err, errlen))
        return RP_NOT_FOUND;
    rp_rows_t rows = { 0 };
    const char *params [] = { id };
    if (rp_db_exec (self, RP_SQL_TUS_PARTS, params, 1, &rows, err, errlen))
        return -1;
    json_t *list = json_array ();
    for (int r = 0; r < rows.rows; r++)
        json_array_append_new (list, json_pack ("{s:I, s:I, s:s?}",
                               "start", (json_int_t) s_int (&rows, r, 0, -1),
                               "length", (json_int_t) s_int (&rows, r, 1, -1),
                               "name", rp_rows_get (&rows, r, 2)));
    rp_rows_clear (&rows);
    *parts = list;
    return 0;
}

int
rp_db_tus_finish (rp_db_t *self, const char *id, const char *owner, const char *sha256,
                  int64_t bytes, const char *content_type, const rp_db_bytes_hook_t *hook,
                  char photo_id [RP_ID_MAX], bool *duplicate, char *err, size_t errlen)
{
    *duplicate = false;
    if (!s_valid_upload_id (id, err, errlen))
        return RP_NOT_FOUND;
    if (!rp_db_valid_sha256 (sha256) || bytes < 0) {
        rp_db_err (err, errlen, "sha256 must be 64 lowercase hex characters");
        return RP_REFUSED;
    }
    char s_bytes [24];
    snprintf (s_bytes, sizeof s_bytes, "%lld", (long long) bytes);
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    int rc = rp_db_bytes_claim (self, sha256, hook, err, errlen);
    if (rc)
        return s_abort (self, rc);
    rp_rows_t rows = { 0 };
    const char *photo [] = { id };
    //  Only the lease's holder finishes, and only once: a request that lost
    //  its lease, or came second, changes nothing (and must not take the
    //  upload for deleted)
    if (rp_db_exec (self, RP_SQL_TUS_GET, photo, 1, &rows, err, errlen))
        return s_abort (self, -1);
    const char *lock_owner = rp_rows_get (&rows, 0, 5);
    bool exists = rows.rows > 0;
    bool finished = s_int (&rows, 0, 7, 0) != 0;
    bool leased = !owner || (lock_owner && strcmp (lock_owner, owner) == 0);
    rp_rows_clear (&rows);
    if (!exists) {
        rp_db_err (err, errlen, "upload %s not found", id);
        return s_abort (self, RP_NOT_FOUND);
    }
    if (finished || !leased) {
        rp_db_err (err, errlen, finished ? "upload %s was finished by another request"
                                     : "upload %s was taken over by another request", id);
        return s_abort (self, RP_CONFLICT);
    }
    if (rp_db_exec (self, RP_SQL_PHOTO_OWNER, photo, 1, &rows, err, errlen))
        return s_abort (self, -1);
    const char *user_id = rp_rows_get (&rows, 0, 0);
    const char *status = rp_rows_get (&rows, 0, 1);
    if (!user_id || !status || strcmp (status, "uploading")) {
        rp_rows_clear (&rows);
        rp_db_err (err, errlen, "photo %s is no longer uploading", id);
        return s_abort (self, RP_NOT_FOUND);
    }
    char user [RP_ID_MAX];
    snprintf (user, sizeof user, "%s", user_id);
    rp_rows_clear (&rows);

    const char *by_sha [] = { user, sha256 };
    if (rp_db_exec (self, RP_SQL_PHOTO_BY_SHA, by_sha, S_COUNT (by_sha), &rows, err, errlen))
        return s_abort (self, -1);
    const char *existing = rp_rows_get (&rows, 0, 0);
    char result [RP_ID_MAX];
    snprintf (result, sizeof result, "%s", existing ? existing : id);
    *duplicate = existing != NULL;
    rp_rows_clear (&rows);

    if (*duplicate) {
        //  The user has these bytes: the event names their photo, then the
        //  uploading one goes (its tags with it)
        const char *event [] = { id, result };
        rc = rp_db_exec (self, RP_SQL_EVENT_DUPLICATE, event, S_COUNT (event), NULL, err, errlen);
        if (!rc)
            rc = rp_db_exec (self, RP_SQL_PHOTO_UPLOAD_DROP, photo, 1, NULL, err, errlen);
    }
    else {
        const char *done [] = { id, sha256, s_bytes, content_type };
        rc = rp_db_exec (self, RP_SQL_PHOTO_UPLOAD_DONE, done, S_COUNT (done), NULL, err, errlen);
        if (!rc)
            rc = rp_db_exec (self, RP_SQL_EVENT_RECORD, photo, 1, NULL, err, errlen);
    }
    const char *mark [] = { id, result, *duplicate ? "1" : "0" };
    if (rc || rp_db_exec (self, RP_SQL_TUS_DONE, mark, S_COUNT (mark), NULL, err, errlen))
        return s_abort (self, -1);
    if (rp_db_commit (self, err, errlen))
        return -1;
    snprintf (photo_id, RP_ID_MAX, "%s", result);
    return 0;
}

int
rp_db_tus_fail (rp_db_t *self, const char *id, const char *reason, char *err, size_t errlen)
{
    if (!s_valid_upload_id (id, err, errlen))
        return RP_NOT_FOUND;
    char text [1024];
    rp_db_clean_reason (reason, text, sizeof text);
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    const char *fail [] = { id, text };
    const char *one [] = { id };
    if (rp_db_exec (self, RP_SQL_PHOTO_UPLOAD_FAIL, fail, S_COUNT (fail), &rows, err, errlen))
        return s_abort (self, -1);
    bool failed = rows.changes > 0;
    rp_rows_clear (&rows);
    if ((failed && rp_db_exec (self, RP_SQL_EVENT_RECORD, one, 1, NULL, err, errlen))
    ||  rp_db_exec (self, RP_SQL_TUS_DELETE, one, 1, NULL, err, errlen))
        return s_abort (self, -1);
    return rp_db_commit (self, err, errlen);
}

int
rp_db_tus_delete (rp_db_t *self, const char *user_id, const char *id, char *err, size_t errlen)
{
    if (!s_valid_upload_id (id, err, errlen))
        return RP_NOT_FOUND;
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    const char *one [] = { id };
    if (rp_db_exec (self, RP_SQL_TUS_GET, one, 1, &rows, err, errlen))
        return s_abort (self, -1);
    const char *owner = rp_rows_get (&rows, 0, 0);
    bool mine = owner && (!user_id || strcmp (owner, user_id) == 0);
    rp_rows_clear (&rows);
    if (!mine) {
        rp_db_err (err, errlen, "upload %s not found", id);
        return s_abort (self, RP_NOT_FOUND);
    }
    //  The photo goes with the upload only while its bytes were still coming
    if (rp_db_exec (self, RP_SQL_PHOTO_UPLOAD_DROP, one, 1, NULL, err, errlen)
    ||  rp_db_exec (self, RP_SQL_TUS_DELETE, one, 1, NULL, err, errlen))
        return s_abort (self, -1);
    return rp_db_commit (self, err, errlen);
}

int
rp_db_tus_expired (rp_db_t *self, int64_t now_ms, int limit, json_t **uploads,
                   char *err, size_t errlen)
{
    *uploads = NULL;
    char now [24], max [16];
    snprintf (now, sizeof now, "%lld", (long long) now_ms);
    snprintf (max, sizeof max, "%d", limit < 1 ? 100 : limit > 1000 ? 1000 : limit);
    rp_rows_t rows = { 0 };
    const char *params [] = { now, max };
    if (rp_db_exec (self, RP_SQL_TUS_EXPIRED, params, S_COUNT (params), &rows, err, errlen))
        return -1;
    json_t *list = json_array ();
    for (int r = 0; r < rows.rows; r++)
        if (rp_rows_get (&rows, r, 0))
            json_array_append_new (list, json_pack ("{s:s, s:b}", "id", rp_rows_get (&rows, r, 0),
                                                    "done", s_int (&rows, r, 1, 0) != 0));
    rp_rows_clear (&rows);
    *uploads = list;
    return 0;
}

int
rp_db_tus_open (rp_db_t *self, const char *user_id, int64_t now_ms, int64_t *count, char *err, size_t errlen)
{
    *count = 0;
    char now [24];
    snprintf (now, sizeof now, "%lld", (long long) now_ms);
    rp_rows_t rows = { 0 };
    const char *params [] = { user_id, now };
    if (rp_db_exec (self, RP_SQL_TUS_OPEN, params, S_COUNT (params), &rows, err, errlen))
        return -1;
    *count = s_int (&rows, 0, 0, 0);
    rp_rows_clear (&rows);
    return 0;
}
