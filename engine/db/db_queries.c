/*  engine/db/db_queries.c: the reads (see db.h). Queries change nothing;
    they return read models as JSON, shaped like the API's photo, assembled
    by rp_db_photo_json from the same columns on both backends.
*/
#include "engine/db/db_private.h"
#include "engine/thumbhash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_LIST_DEFAULT   50
#define S_LIST_MAX       500
#define S_BATCH_PHOTOS   1000

int
rp_db_user_find (rp_db_t *self, const char *name, char id [RP_ID_MAX],
                 char *hash, size_t hashlen, char *err, size_t errlen)
{
    if (!name || !*name) {
        rp_db_err (err, errlen, "no such user");
        return RP_NOT_FOUND;
    }
    rp_rows_t rows = { 0 };
    const char *params [] = { name };
    if (rp_db_exec (self, RP_SQL_USER_FIND, params, 1, &rows, err, errlen))
        return -1;
    int rc = 0;
    const char *found = rp_rows_get (&rows, 0, 0);
    const char *stored = rp_rows_get (&rows, 0, 1);
    if (rows.rows == 0) {
        rp_db_err (err, errlen, "no user %s", name);
        rc = RP_NOT_FOUND;
    }
    else
    if (!found || strlen (found) >= RP_ID_MAX || !stored) {
        rp_db_err (err, errlen, "unreadable user row");
        rc = -1;
    }
    else
    if (hash && strlen (stored) >= hashlen) {
        rp_db_err (err, errlen, "the password hash does not fit in %zu bytes", hashlen);
        rc = -1;
    }
    else {
        snprintf (id, RP_ID_MAX, "%s", found);
        if (hash && hashlen)
            snprintf (hash, hashlen, "%s", stored);
    }
    rp_rows_clear (&rows);
    return rc;
}

int
rp_db_user_list (rp_db_t *self, json_t **users, char *err, size_t errlen)
{
    *users = NULL;
    rp_rows_t rows = { 0 };
    if (rp_db_exec (self, RP_SQL_USER_LIST, NULL, 0, &rows, err, errlen))
        return -1;
    json_t *list = json_array ();
    for (int r = 0; r < rows.rows; r++) {
        int64_t photos = 0;
        if (rp_db_parse_int (rp_rows_get (&rows, r, 3), &photos) || !rp_rows_get (&rows, r, 0)) {
            json_decref (list);
            rp_rows_clear (&rows);
            rp_db_err (err, errlen, "unreadable user row");
            return -1;
        }
        json_t *user = json_object ();
        json_object_set_new (user, "id", json_string (rp_rows_get (&rows, r, 0)));
        json_t *name = json_string (rp_rows_get (&rows, r, 1));
        json_t *created = json_string (rp_rows_get (&rows, r, 2));
        json_object_set_new (user, "name", name ? name : json_null ());
        json_object_set_new (user, "created_at", created ? created : json_null ());
        json_object_set_new (user, "photos", json_integer (photos));
        json_array_append_new (list, user);
    }
    rp_rows_clear (&rows);
    *users = list;
    return 0;
}

int
rp_db_photo_get (rp_db_t *self, const char *user_id, const char *id, json_t **photo,
                 char *err, size_t errlen)
{
    *photo = NULL;
    if (!rp_db_valid_id (user_id) || !rp_db_valid_id (id)) {
        rp_db_err (err, errlen, "photo not found");
        return RP_NOT_FOUND;
    }
    rp_rows_t rows = { 0 };
    const char *params [] = { user_id, id };
    if (rp_db_exec (self, RP_SQL_PHOTO_GET, params, 2, &rows, err, errlen))
        return -1;
    int rc = 0;
    if (rows.rows == 0) {
        rp_db_err (err, errlen, "photo %s not found", id);
        rc = RP_NOT_FOUND;
    }
    else
    if (!(*photo = rp_db_photo_json (&rows, 0, err, errlen)))
        rc = -1;
    rp_rows_clear (&rows);
    return rc;
}

//  Photo rows into a JSON array, at most `max` of them. NULL with err.
static json_t *
s_photos (const rp_rows_t *rows, int max, char *err, size_t errlen)
{
    json_t *items = json_array ();
    for (int r = 0; r < rows->rows && r < max; r++) {
        json_t *photo = rp_db_photo_json (rows, r, err, errlen);
        if (!photo) {
            json_decref (items);
            return NULL;
        }
        json_array_append_new (items, photo);
    }
    return items;
}

int
rp_db_photo_list (rp_db_t *self, const char *user_id, int limit, const char *cursor,
                  const char *tag, const char *status, json_t **page,
                  char *err, size_t errlen)
{
    *page = NULL;
    if (limit <= 0)
        limit = S_LIST_DEFAULT;
    if (limit > S_LIST_MAX)
        limit = S_LIST_MAX;
    char after_at [32], after_id [RP_ID_MAX], clean_tag [65];
    //  An empty filter (?tag=&status=) is no filter
    if (cursor && !*cursor)
        cursor = NULL;
    if (tag && !*tag)
        tag = NULL;
    if (status && !*status)
        status = NULL;
    int refused = cursor ? rp_db_cursor_decode (cursor, after_at, after_id, err, errlen) : 0;
    if (refused)
        return refused;
    if (status && !rp_db_valid_status (status)) {
        rp_db_err (err, errlen, "unknown status: use uploading, queued, processing, complete or failed");
        return RP_REFUSED;
    }
    refused = tag ? rp_db_tag_clean (tag, strlen (tag), clean_tag, err, errlen) : 0;
    if (refused)
        return refused;
    json_t *result = json_object ();
    json_object_set_new (result, "items", json_array ());
    json_object_set_new (result, "next_cursor", json_null ());
    if (!rp_db_valid_id (user_id)) {
        *page = result;             //  nobody's library is empty
        return 0;
    }
    //  One row more than asked tells whether there is a next page
    char fetch [16];
    snprintf (fetch, sizeof fetch, "%d", limit + 1);
    const char *params [] = { user_id, tag ? clean_tag : NULL, status, fetch, after_at, after_id };
    rp_rows_t rows = { 0 };
    if (rp_db_exec (self, cursor ? RP_SQL_PHOTO_LIST_AFTER : RP_SQL_PHOTO_LIST, params,
                    cursor ? 6 : 4, &rows, err, errlen)) {
        json_decref (result);
        return -1;
    }
    json_t *items = s_photos (&rows, limit, err, errlen);
    bool more = rows.rows > limit;
    rp_rows_clear (&rows);
    if (!items) {
        json_decref (result);
        return -1;
    }
    json_object_set_new (result, "items", items);
    if (more) {
        json_t *last = json_array_get (items, json_array_size (items) - 1);
        const char *at = json_string_value (json_object_get (last, "created_at"));
        const char *last_id = json_string_value (json_object_get (last, "id"));
        char next [192];
        if (!at || !last_id || rp_db_cursor_encode (at, last_id, next, sizeof next)) {
            json_decref (result);
            rp_db_err (err, errlen, "unreadable photo row");
            return -1;
        }
        json_object_set_new (result, "next_cursor", json_string (next));
    }
    *page = result;
    return 0;
}

int
rp_db_batch_get (rp_db_t *self, const char *user_id, const char *batch_id,
                 json_t **batch, char *err, size_t errlen)
{
    *batch = NULL;
    if (!rp_db_valid_id (user_id) || !rp_db_valid_id (batch_id)) {
        rp_db_err (err, errlen, "batch not found");
        return RP_NOT_FOUND;
    }
    //  One snapshot: the counts and the photos agree
    if (rp_db_begin (self, RP_TXN_READ, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    const char *find [] = { user_id, batch_id };
    if (rp_db_exec (self, RP_SQL_BATCH_FIND, find, 2, &rows, err, errlen)) {
        rp_db_rollback (self);
        return -1;
    }
    bool found = rows.rows > 0;
    rp_rows_clear (&rows);
    if (!found) {
        rp_db_rollback (self);
        rp_db_err (err, errlen, "batch %s not found", batch_id);
        return RP_NOT_FOUND;
    }
    json_t *counts = json_object ();
    for (int i = 0; i < 5; i++)
        json_object_set_new (counts, rp_db_statuses [i], json_integer (0));
    int64_t total = 0;
    const char *only [] = { batch_id };
    if (rp_db_exec (self, RP_SQL_BATCH_COUNTS, only, 1, &rows, err, errlen)) {
        json_decref (counts);
        rp_db_rollback (self);
        return -1;
    }
    for (int r = 0; r < rows.rows; r++) {
        const char *status = rp_rows_get (&rows, r, 0);
        int64_t n = 0;
        if (rp_db_valid_status (status) && rp_db_parse_int (rp_rows_get (&rows, r, 1), &n) == 0) {
            json_object_set_new (counts, status, json_integer (n));
            total += n;
        }
    }
    rp_rows_clear (&rows);
    char limit [16];
    snprintf (limit, sizeof limit, "%d", S_BATCH_PHOTOS);
    const char *photos_of [] = { user_id, batch_id, limit };
    json_t *photos = NULL;
    if (rp_db_exec (self, RP_SQL_BATCH_PHOTOS, photos_of, 3, &rows, err, errlen) == 0)
        photos = s_photos (&rows, S_BATCH_PHOTOS, err, errlen);
    rp_rows_clear (&rows);
    rp_db_rollback (self);          //  a read: nothing to commit
    if (!photos) {
        json_decref (counts);
        return -1;
    }
    json_t *result = json_object ();
    json_object_set_new (result, "id", json_string (batch_id));
    json_object_set_new (result, "total", json_integer (total));
    json_object_set_new (result, "counts", counts);
    json_object_set_new (result, "photos", photos);
    *batch = result;
    return 0;
}

int
rp_db_photo_find_sha (rp_db_t *self, const char *user_id, const char *sha256,
                      char id [RP_ID_MAX], char *err, size_t errlen)
{
    id [0] = 0;
    if (!rp_db_valid_sha256 (sha256)) {
        rp_db_err (err, errlen, "sha256 must be 64 lowercase hex characters");
        return RP_REFUSED;
    }
    rp_rows_t rows = { 0 };
    const char *params [] = { user_id, sha256 };
    if (rp_db_exec (self, RP_SQL_PHOTO_BY_SHA, params, 2, &rows, err, errlen))
        return -1;
    const char *found = rp_rows_get (&rows, 0, 0);
    int rc = found ? 0 : RP_NOT_FOUND;
    if (found)
        snprintf (id, RP_ID_MAX, "%s", found);
    rp_rows_clear (&rows);
    return rc;
}

int
rp_db_sha_references (rp_db_t *self, const char *sha256, int64_t *count,
                      char *err, size_t errlen)
{
    *count = 0;
    if (!rp_db_valid_sha256 (sha256)) {
        rp_db_err (err, errlen, "sha256 must be 64 lowercase hex characters");
        return RP_REFUSED;
    }
    return rp_db_bytes_references (self, sha256, count, err, errlen);
}

int
rp_db_status_counts (rp_db_t *self, json_t **counts, char *err, size_t errlen)
{
    *counts = NULL;
    rp_rows_t rows = { 0 };
    if (rp_db_exec (self, RP_SQL_STATUS_COUNTS, NULL, 0, &rows, err, errlen))
        return -1;
    json_t *result = json_object ();
    for (int i = 0; i < 5; i++)
        json_object_set_new (result, rp_db_statuses [i], json_integer (0));
    for (int r = 0; r < rows.rows; r++) {
        const char *status = rp_rows_get (&rows, r, 0);
        int64_t n = 0;
        if (rp_db_valid_status (status) && rp_db_parse_int (rp_rows_get (&rows, r, 1), &n) == 0)
            json_object_set_new (result, status, json_integer (n));
    }
    rp_rows_clear (&rows);
    *counts = result;
    return 0;
}

int
rp_db_events_after (rp_db_t *self, const char *user_id, int64_t after_id, int limit,
                    json_t **events, char *err, size_t errlen)
{
    *events = NULL;
    char after [24], max [16];
    snprintf (after, sizeof after, "%lld", (long long) (after_id > 0 ? after_id : 0));
    snprintf (max, sizeof max, "%d", limit < 1 ? 100 : limit > 1000 ? 1000 : limit);
    rp_rows_t rows = { 0 };
    const char *params [] = { user_id, after, max };
    if (rp_db_exec (self, RP_SQL_EVENTS_AFTER, params, 3, &rows, err, errlen))
        return -1;
    json_t *list = json_array ();
    for (int r = 0; r < rows.rows; r++) {
        int64_t id = 0;
        if (rp_db_parse_int (rp_rows_get (&rows, r, 0), &id))
            continue;
        const char *error = rp_rows_get (&rows, r, 4);
        const char *batch = rp_rows_get (&rows, r, 2);
        json_t *event = json_pack ("{s:I, s:s?, s:o, s:s?, s:o}", "event_id", (json_int_t) id,
                                   "id", rp_rows_get (&rows, r, 1),
                                   "batch_id", batch ? json_string (batch) : json_null (),
                                   "status", rp_rows_get (&rows, r, 3),
                                   "error", error ? json_string (error) : json_null ());
        //  Upload progress, and the photo a resumable upload duplicated
        int64_t received = 0, length = 0;
        if (rp_db_parse_int (rp_rows_get (&rows, r, 5), &received) == 0) {
            json_object_set_new (event, "received", json_integer (received));
            json_object_set_new (event, "length", rp_db_parse_int (rp_rows_get (&rows, r, 6), &length) == 0
                                                  ? json_integer (length) : json_null ());
        }
        const char *duplicate_of = rp_rows_get (&rows, r, 7);
        if (duplicate_of)
            json_object_set_new (event, "duplicate_of", json_string (duplicate_of));
        //  A complete event carries the photo's placeholder (V7)
        const char *status = json_string_value (json_object_get (event, "status"));
        if (status && strcmp (status, "complete") == 0) {
            const char *thumbhash = rp_rows_get (&rows, r, 8);
            json_object_set_new (event, "thumbhash", thumbhash && rp_thumbhash_valid (thumbhash, strlen (thumbhash))
                                                     ? json_string (thumbhash) : json_null ());
        }
        rp_db_event_similar (event, rp_rows_get (&rows, r, 9));
        json_array_append_new (list, event);
    }
    rp_rows_clear (&rows);
    *events = list;
    return 0;
}

int
rp_db_events_last (rp_db_t *self, const char *user_id, int64_t *last_id, char *err, size_t errlen)
{
    *last_id = 0;
    rp_rows_t rows = { 0 };
    const char *params [] = { user_id };
    if (rp_db_exec (self, RP_SQL_EVENTS_LAST, params, 1, &rows, err, errlen))
        return -1;
    const char *value = rp_rows_get (&rows, 0, 0);
    if (value)
        rp_db_parse_int (value, last_id);
    rp_rows_clear (&rows);
    return 0;
}

int
rp_db_events_users (rp_db_t *self, int64_t after_id, int limit, json_t **users, char *err, size_t errlen)
{
    *users = NULL;
    char after [24], max [16];
    snprintf (after, sizeof after, "%lld", (long long) (after_id > 0 ? after_id : 0));
    snprintf (max, sizeof max, "%d", limit < 1 ? 1000 : limit);
    rp_rows_t rows = { 0 };
    const char *params [] = { after, max };
    if (rp_db_exec (self, RP_SQL_EVENTS_USERS, params, 2, &rows, err, errlen))
        return -1;
    json_t *map = json_object ();
    for (int r = 0; r < rows.rows; r++) {
        const char *user = rp_rows_get (&rows, r, 0);
        int64_t id = 0;
        if (user && rp_db_parse_int (rp_rows_get (&rows, r, 1), &id) == 0)
            json_object_set_new (map, user, json_integer (id));
    }
    rp_rows_clear (&rows);
    *users = map;
    return 0;
}

int
rp_db_user_hash (rp_db_t *self, const char *id, char *hash, size_t hashlen, char *err, size_t errlen)
{
    rp_rows_t rows = { 0 };
    const char *params [] = { id };
    if (rp_db_exec (self, RP_SQL_USER_HASH, params, 1, &rows, err, errlen))
        return -1;
    const char *stored = rp_rows_get (&rows, 0, 0);
    int rc = 0;
    if (rows.rows == 0) {
        rp_db_err (err, errlen, "no such user");
        rc = RP_NOT_FOUND;
    }
    else
    if (!stored || strlen (stored) >= hashlen) {
        rp_db_err (err, errlen, "unreadable user row");
        rc = -1;
    }
    else
        snprintf (hash, hashlen, "%s", stored);
    rp_rows_clear (&rows);
    return rc;
}
