/*  engine/db/db_commands.c: the writes (see db.h). Each command is one
    transaction: it validates its input first, then begins, and on any
    failure rolls back, so nothing it was asked to change has changed.
    Commands return ids and flags only; the read models are in
    db_queries.c.
*/
#include "engine/db/db_private.h"
#include "engine/log.h"
#include "engine/thumbhash.h"
#include "engine/phash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TAGS_MAX      100         //  tags on one photo
#define S_FILENAME_MAX  1024        //  bytes
#define S_REASON_MAX    1000        //  bytes of a failure's reason kept
#define S_EXIF_MAX      65536       //  bytes of EXIF JSON kept
#define S_RETRY_MAX_MS  (30LL * 24 * 3600 * 1000)
#define S_CLAIM_MAX     1000
#define S_METADATA_MAX  8192        //  bytes of a resumable upload's Upload-Metadata

#define S_COUNT(a) ((int) (sizeof (a) / sizeof ((a) [0])))

//  Roll back and return rc (err was written by whoever failed).
static int
s_abort (rp_db_t *self, int rc)
{
    rp_db_rollback (self);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Users

static bool
s_valid_name (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > 64 || !rp_utf8_valid (name, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) name [i] < 0x20 || name [i] == 0x7f)
            return false;
    return true;
}

static bool
s_valid_hash (const char *hash)
{
    size_t len = hash ? strlen (hash) : 0;
    return len > 0 && len < 512 && rp_utf8_valid (hash, len);
}

int
rp_db_user_add (rp_db_t *self, const char *name, const char *password_hash,
                char id [RP_ID_MAX], char *err, size_t errlen)
{
    if (!s_valid_name (name)) {
        rp_db_err (err, errlen, "a user name must have 1 to 64 bytes of text");
        return RP_REFUSED;
    }
    if (!s_valid_hash (password_hash)) {
        rp_db_err (err, errlen, "the password hash is missing or malformed");
        return RP_REFUSED;
    }
    char new_id [RP_ID_MAX];
    rp_db_new_id (new_id);
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    const char *params [] = { new_id, name, password_hash };
    int rc = rp_db_exec (self, RP_SQL_USER_INSERT, params, S_COUNT (params), NULL, err, errlen);
    if (rc == RP_CONFLICT)
        rp_db_err (err, errlen, "user %s exists", name);
    if (rc)
        return s_abort (self, rc == RP_CONFLICT ? RP_CONFLICT : -1);
    if (rp_db_commit (self, err, errlen))
        return -1;
    snprintf (id, RP_ID_MAX, "%s", new_id);
    return 0;
}

int
rp_db_user_set_password (rp_db_t *self, const char *name, const char *password_hash,
                         char *err, size_t errlen)
{
    if (!s_valid_hash (password_hash)) {
        rp_db_err (err, errlen, "the password hash is missing or malformed");
        return RP_REFUSED;
    }
    if (!s_valid_name (name)) {
        rp_db_err (err, errlen, "no such user");
        return RP_NOT_FOUND;
    }
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    const char *params [] = { name, password_hash };
    if (rp_db_exec (self, RP_SQL_USER_SET_PASSWORD, params, S_COUNT (params), &rows, err, errlen))
        return s_abort (self, -1);
    if (rows.changes == 0) {
        rp_db_err (err, errlen, "no user %s", name);
        return s_abort (self, RP_NOT_FOUND);
    }
    return rp_db_commit (self, err, errlen);
}

//  ---------------------------------------------------------------------------
//  Photos

//  Split "a, b,c" into cleaned tags (empty pieces skipped). 0 or RP_REFUSED.
static int
s_split_tags (const char *list, char tags [][65], int *count, char *err, size_t errlen)
{
    *count = 0;
    const char *s = list;
    while (s && *s) {
        const char *comma = strchr (s, ',');
        size_t len = comma ? (size_t) (comma - s) : strlen (s);
        size_t blank = strspn (s, " \t\r\n");
        if (blank < len) {
            if (*count >= S_TAGS_MAX) {
                rp_db_err (err, errlen, "a photo has at most %d tags", S_TAGS_MAX);
                return RP_REFUSED;
            }
            int rc = rp_db_tag_clean (s, len, tags [*count], err, errlen);
            if (rc)
                return rc;
            (*count)++;
        }
        s = comma ? comma + 1 : NULL;
    }
    return 0;
}

//  Record a photo's current state as an event, in the open transaction.
static int
s_event (rp_db_t *self, const char *photo_id, char *err, size_t errlen)
{
    const char *params [] = { photo_id };
    return rp_db_exec (self, RP_SQL_EVENT_RECORD, params, 1, NULL, err, errlen);
}

int
rp_db_photo_create (rp_db_t *self, const rp_photo_new_t *photo,
                    char id [RP_ID_MAX], char batch_id [RP_ID_MAX], bool *duplicate,
                    char *err, size_t errlen)
{
    *duplicate = false;
    size_t name_len = photo->filename ? strlen (photo->filename) : 0;
    if (!rp_db_valid_id (photo->user_id)) {
        rp_db_err (err, errlen, "no such user");
        return RP_NOT_FOUND;
    }
    if (name_len == 0 || name_len > S_FILENAME_MAX || !rp_utf8_valid (photo->filename, name_len)) {
        rp_db_err (err, errlen, "a file name must have 1 to %d bytes of UTF-8 text", S_FILENAME_MAX);
        return RP_REFUSED;
    }
    if (photo->upload) {
        //  A resumable upload: its bytes, and so its sha256, are to come
        if (photo->sha256 || !photo->status || strcmp (photo->status, "uploading")) {
            rp_db_err (err, errlen, "a resumable upload's photo is uploading, without a sha256");
            return RP_REFUSED;
        }
        const char *metadata = photo->upload->metadata;
        if (metadata && strlen (metadata) > S_METADATA_MAX) {
            rp_db_err (err, errlen, "Upload-Metadata is over %d bytes", S_METADATA_MAX);
            return RP_REFUSED;
        }
        if (metadata && !rp_utf8_valid (metadata, strlen (metadata))) {
            rp_db_err (err, errlen, "Upload-Metadata must be UTF-8 text");
            return RP_REFUSED;
        }
    }
    else
    if (!rp_db_valid_sha256 (photo->sha256)) {
        rp_db_err (err, errlen, "sha256 must be 64 lowercase hex characters");
        return RP_REFUSED;
    }
    if (photo->bytes < 0) {
        rp_db_err (err, errlen, "the size of a photo cannot be negative");
        return RP_REFUSED;
    }
    if (!photo->status || (strcmp (photo->status, "queued") && strcmp (photo->status, "uploading"))) {
        rp_db_err (err, errlen, "a new photo is queued or uploading");
        return RP_REFUSED;
    }
    if (photo->content_type && (!*photo->content_type || strlen (photo->content_type) > 255)) {
        rp_db_err (err, errlen, "the content type is malformed");
        return RP_REFUSED;
    }
    if (photo->batch_id && !rp_db_valid_id (photo->batch_id)) {
        rp_db_err (err, errlen, "a batch id has 1 to %d letters, digits, - or _", RP_ID_MAX - 1);
        return RP_REFUSED;
    }
    char tags [S_TAGS_MAX][65];
    int tag_count = 0;
    int refused = s_split_tags (photo->tags, tags, &tag_count, err, errlen);
    if (refused)
        return refused;

    char batch [RP_ID_MAX], new_id [RP_ID_MAX], bytes [24];
    if (photo->batch_id)
        snprintf (batch, sizeof batch, "%s", photo->batch_id);
    else
        rp_db_new_id (batch);
    rp_db_new_id (new_id);
    snprintf (bytes, sizeof bytes, "%lld", (long long) photo->bytes);

    //  An upload's placeholder: unique, and never 64 hex characters
    char pending [RP_ID_MAX + 16];
    snprintf (pending, sizeof pending, "pending:%s", new_id);
    const char *sha256 = photo->upload ? pending : photo->sha256;

    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    //  The bytes: no collection of the address from here to the commit, and
    //  the caller's hook makes sure they are there
    if (!photo->upload) {
        int rc = rp_db_bytes_claim (self, sha256, photo->hook, err, errlen);
        if (rc)
            return s_abort (self, rc);
    }
    rp_rows_t rows = { 0 };
    //  The user has these bytes already: nothing is created
    const char *by_sha [] = { photo->user_id, sha256 };
    if (rp_db_exec (self, RP_SQL_PHOTO_BY_SHA, by_sha, S_COUNT (by_sha), &rows, err, errlen))
        return s_abort (self, -1);
    if (rows.rows > 0 && rp_rows_get (&rows, 0, 0)) {
        snprintf (id, RP_ID_MAX, "%s", rp_rows_get (&rows, 0, 0));
        snprintf (batch_id, RP_ID_MAX, "%s", batch);
        *duplicate = true;
        rp_rows_clear (&rows);
        return s_abort (self, 0);
    }
    rp_rows_clear (&rows);

    //  The batch: the caller's (made when absent), or a new one. A batch id
    //  that is another user's is "not found", as their photos are
    const char *owner [] = { batch };
    if (rp_db_exec (self, RP_SQL_BATCH_OWNER, owner, 1, &rows, err, errlen))
        return s_abort (self, -1);
    if (rows.rows == 0) {
        rp_rows_clear (&rows);
        const char *insert [] = { batch, photo->user_id };
        if (rp_db_exec (self, RP_SQL_BATCH_INSERT, insert, 2, NULL, err, errlen)
        ||  rp_db_exec (self, RP_SQL_BATCH_OWNER, owner, 1, &rows, err, errlen))
            return s_abort (self, -1);
    }
    const char *batch_owner = rp_rows_get (&rows, 0, 0);
    bool mine = batch_owner && strcmp (batch_owner, photo->user_id) == 0;
    rp_rows_clear (&rows);
    if (!mine) {
        rp_db_err (err, errlen, "batch %s not found", batch);
        return s_abort (self, RP_NOT_FOUND);
    }

    const char *insert [] = { new_id, photo->user_id, batch, photo->filename, photo->status,
                              sha256, bytes, photo->content_type };
    if (rp_db_exec (self, RP_SQL_PHOTO_INSERT, insert, S_COUNT (insert), &rows, err, errlen))
        return s_abort (self, -1);
    bool inserted = rows.rows > 0;
    rp_rows_clear (&rows);
    if (!inserted) {
        //  Another connection stored the same bytes for this user since we
        //  looked: theirs is the photo, and this call created nothing
        rp_db_rollback (self);
        if (rp_db_exec (self, RP_SQL_PHOTO_BY_SHA, by_sha, S_COUNT (by_sha), &rows, err, errlen))
            return -1;
        const char *existing = rp_rows_get (&rows, 0, 0);
        if (!existing) {
            rp_rows_clear (&rows);
            rp_db_err (err, errlen, "the photo was created and deleted meanwhile; try again");
            return -1;
        }
        snprintf (id, RP_ID_MAX, "%s", existing);
        snprintf (batch_id, RP_ID_MAX, "%s", batch);
        *duplicate = true;
        rp_rows_clear (&rows);
        return 0;
    }
    for (int i = 0; i < tag_count; i++) {
        const char *tag [] = { new_id, tags [i] };
        if (rp_db_exec (self, RP_SQL_TAG_INSERT, tag, 2, NULL, err, errlen))
            return s_abort (self, -1);
    }
    if (photo->upload) {
        const rp_tus_new_t *upload = photo->upload;
        char length [24], created [24], expires [24];
        snprintf (length, sizeof length, "%lld", (long long) upload->length);
        snprintf (created, sizeof created, "%lld", (long long) upload->now_ms);
        snprintf (expires, sizeof expires, "%lld", (long long) upload->expires_ms);
        const char *params [] = { new_id, photo->user_id, upload->length >= 0 ? length : NULL,
                                  upload->metadata, created, expires };
        if (rp_db_exec (self, RP_SQL_TUS_INSERT, params, S_COUNT (params), NULL, err, errlen))
            return s_abort (self, -1);
    }
    if (s_event (self, new_id, err, errlen))
        return s_abort (self, -1);
    if (rp_db_commit (self, err, errlen))
        return -1;
    snprintf (id, RP_ID_MAX, "%s", new_id);
    snprintf (batch_id, RP_ID_MAX, "%s", batch);
    return 0;
}

int
rp_db_photo_claim (rp_db_t *self, int max, json_t **claimed, char *err, size_t errlen)
{
    *claimed = NULL;
    if (max <= 0) {
        rp_db_err (err, errlen, "claim at least one photo");
        return RP_REFUSED;
    }
    char limit [16];
    snprintf (limit, sizeof limit, "%d", max < S_CLAIM_MAX ? max : S_CLAIM_MAX);
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    const char *params [] = { limit };
    if (rp_db_exec (self, RP_SQL_PHOTO_CLAIM, params, 1, &rows, err, errlen))
        return s_abort (self, -1);
    json_t *list = json_array ();
    for (int r = 0; r < rows.rows; r++) {
        int64_t attempts = 0;
        const char *photo_id = rp_rows_get (&rows, r, 0);
        if (!photo_id || rp_db_parse_int (rp_rows_get (&rows, r, 4), &attempts)) {
            json_decref (list);
            rp_rows_clear (&rows);
            rp_db_err (err, errlen, "unreadable photo row");
            return s_abort (self, -1);
        }
        json_t *item = json_object ();
        json_object_set_new (item, "id", json_string (photo_id));
        static const struct { const char *key; int col; } strings [] = {
            { "user_id", 1 }, { "sha256", 2 }, { "filename", 3 }, { "batch_id", 5 }
        };
        for (int k = 0; k < S_COUNT (strings); k++) {
            json_t *value = json_string (rp_rows_get (&rows, r, strings [k].col));
            json_object_set_new (item, strings [k].key, value ? value : json_null ());
        }
        json_object_set_new (item, "attempts", json_integer (attempts));
        json_array_append_new (list, item);
        if (s_event (self, photo_id, err, errlen)) {
            json_decref (list);
            rp_rows_clear (&rows);
            return s_abort (self, -1);
        }
    }
    rp_rows_clear (&rows);
    if (rp_db_commit (self, err, errlen)) {
        json_decref (list);
        return -1;
    }
    *claimed = list;
    return 0;
}

//  One photo state transition, in one transaction: run `sql` (which must
//  change exactly the photo's row when it is in the expected state), record
//  the event, commit. RP_NOT_FOUND, with "photo <id> is not <state>",
//  when the row was not in that state; on any failure nothing changes.
static int
s_transition (rp_db_t *self, rp_sql_t sql, const char *const *params, int count,
              const char *id, const char *state, char *err, size_t errlen)
{
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    int rc;
    if (rp_db_exec (self, sql, params, count, &rows, err, errlen))
        rc = s_abort (self, -1);
    else
    if (rows.changes == 0) {
        rp_db_err (err, errlen, "photo %s is not %s", id, state);
        rc = s_abort (self, RP_NOT_FOUND);
    }
    else
    if (s_event (self, id, err, errlen))
        rc = s_abort (self, -1);
    else
        rc = rp_db_commit (self, err, errlen);
    rp_rows_clear (&rows);
    return rc;
}

//  The perceptual hash and its bands onto the photo, and its near-
//  duplicates at this moment onto the complete event just recorded, in
//  the open transaction. A photo with no hash gets "similar": [].
static int
s_similar_record (rp_db_t *self, const char *id, const uint64_t *hash, char *err, size_t errlen)
{
    rp_similar_t *found = NULL;
    int count = 0;
    if (hash) {
        char hex [17], bands [RP_PHASH_BANDS][8];
        rp_phash_hex (*hash, hex);
        for (int b = 0; b < RP_PHASH_BANDS; b++)
            snprintf (bands [b], sizeof bands [b], "%u", rp_phash_band (*hash, b));
        const char *set [] = { id, hex, bands [0], bands [1], bands [2] };
        rp_rows_t rows = { 0 };
        const char *owner [] = { id };
        if (rp_db_exec (self, RP_SQL_PHOTO_PHASH_SET, set, S_COUNT (set), NULL, err, errlen)
        ||  rp_db_exec (self, RP_SQL_PHOTO_OWNER, owner, 1, &rows, err, errlen))
            return -1;
        char user [RP_ID_MAX] = "";
        if (rows.rows > 0 && rp_rows_get (&rows, 0, 0))
            snprintf (user, sizeof user, "%s", rp_rows_get (&rows, 0, 0));
        rp_rows_clear (&rows);
        //  The hint must never keep a photo from completing: a search that
        //  fails (too many candidates) leaves the event's list empty
        char why [256] = "";
        if (*user && rp_db_similar_search (self, user, id, *hash, RP_PHASH_THRESHOLD,
                                           &found, &count, NULL, why, sizeof why)) {
            rp_warn ("db", "photo=%s its near-duplicates are not listed: %s", id, why);
            found = NULL;
            count = 0;
        }
    }
    //  The nearest few: a library of many near-identical pictures (every
    //  flat one hashes alike) must not grow each event, and the SQS
    //  message carrying it, with the library
    json_t *ids = json_array ();
    for (int i = 0; i < count && i < RP_SIMILAR_EVENT_MAX; i++)
        json_array_append_new (ids, json_string (found [i].id));
    free (found);
    char *text = json_dumps (ids, JSON_COMPACT);
    json_decref (ids);
    if (!text) {
        rp_db_err (err, errlen, "out of memory");
        return -1;
    }
    const char *params [] = { text };
    int rc = rp_db_exec (self, RP_SQL_EVENT_SIMILAR, params, 1, NULL, err, errlen);
    free (text);
    return rc;
}

//  s_transition for processing -> complete, with the near-duplicates
static int
s_complete (rp_db_t *self, const char *const *params, int count, const char *id,
            const uint64_t *hash, char *err, size_t errlen)
{
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    int rc;
    if (rp_db_exec (self, RP_SQL_PHOTO_COMPLETE, params, count, &rows, err, errlen))
        rc = s_abort (self, -1);
    else
    if (rows.changes == 0) {
        rp_db_err (err, errlen, "photo %s is not processing", id);
        rc = s_abort (self, RP_NOT_FOUND);
    }
    else
    if (s_event (self, id, err, errlen) || s_similar_record (self, id, hash, err, errlen))
        rc = s_abort (self, -1);
    else
        rc = rp_db_commit (self, err, errlen);
    rp_rows_clear (&rows);
    return rc;
}

int
rp_db_photo_complete (rp_db_t *self, const char *id, json_t *result, char *err, size_t errlen)
{
    if (!rp_db_valid_id (id)) {
        rp_db_err (err, errlen, "photo not found");
        return RP_NOT_FOUND;
    }
    if (result && !json_is_object (result)) {
        rp_db_err (err, errlen, "a photo's result must be a JSON object");
        return RP_REFUSED;
    }
    json_t *content_type = json_object_get (result, "content_type");
    json_t *width = json_object_get (result, "width");
    json_t *height = json_object_get (result, "height");
    json_t *taken_at = json_object_get (result, "taken_at");
    json_t *exif = json_object_get (result, "exif");
    json_t *thumbhash = json_object_get (result, "thumbhash");
    if ((content_type && !json_is_null (content_type)
         && (!json_is_string (content_type) || json_string_length (content_type) == 0
             || json_string_length (content_type) > 255))
    ||  (width && !json_is_null (width) && (!json_is_integer (width) || json_integer_value (width) < 0
                                            || json_integer_value (width) > 0x7fffffff))
    ||  (height && !json_is_null (height) && (!json_is_integer (height) || json_integer_value (height) < 0
                                              || json_integer_value (height) > 0x7fffffff))
    ||  (taken_at && !json_is_null (taken_at) && !json_is_string (taken_at))
    ||  (exif && !json_is_null (exif) && !json_is_object (exif))
    ||  (thumbhash && !json_is_null (thumbhash) && !json_is_string (thumbhash))) {
        rp_db_err (err, errlen, "a photo's result has a field of the wrong type");
        return RP_REFUSED;
    }
    json_t *phash = json_object_get (result, "phash");
    uint64_t hash = 0;
    if (phash && !json_is_null (phash)
    &&  !(json_is_string (phash) && rp_phash_parse (json_string_value (phash), &hash) == 0)) {
        rp_db_err (err, errlen, "a photo's phash must be 16 lowercase hex characters");
        return RP_REFUSED;
    }
    char w [24] = "", h [24] = "";
    if (json_is_integer (width))
        snprintf (w, sizeof w, "%lld", (long long) json_integer_value (width));
    if (json_is_integer (height))
        snprintf (h, sizeof h, "%lld", (long long) json_integer_value (height));
    //  What the camera wrote is outside input: keep what fits, drop the rest
    const char *taken = json_string_value (taken_at);
    if (taken && (json_string_length (taken_at) > 64 || json_string_length (taken_at) != strlen (taken))) {
        rp_warn ("db", "photo=%s taken_at is malformed; stored as null", id);
        taken = NULL;
    }
    char *exif_text = json_is_object (exif) ? json_dumps (exif, JSON_COMPACT) : NULL;
    if (exif_text && strlen (exif_text) > S_EXIF_MAX) {
        rp_warn ("db", "photo=%s exif is over %d bytes; stored as null", id, S_EXIF_MAX);
        free (exif_text);
        exif_text = NULL;
    }
    //  The placeholder: base64 of 5 to 32 bytes, or nothing
    const char *placeholder = json_string_value (thumbhash);
    if (placeholder && !rp_thumbhash_valid (placeholder, json_string_length (thumbhash))) {
        rp_warn ("db", "photo=%s thumbhash is not the base64 of a placeholder; stored as null", id);
        placeholder = NULL;
    }
    const char *params [] = { id, json_string_value (content_type), *w ? w : NULL,
                              *h ? h : NULL, taken, exif_text, placeholder };
    int rc = s_complete (self, params, S_COUNT (params), id, json_is_string (phash) ? &hash : NULL,
                         err, errlen);
    free (exif_text);
    return rc;
}

//  A reason fit to show a person: valid UTF-8, no control characters, at
//  most S_REASON_MAX bytes (cut on a character boundary).
void
rp_db_clean_reason (const char *reason, char *out, size_t outlen)
{
    if (!reason || !*reason)
        reason = "unknown error";
    size_t o = 0, len = strlen (reason);
    for (size_t i = 0; i < len && o + 4 < outlen;) {
        unsigned char c = (unsigned char) reason [i];
        size_t seq = rp_utf8_char (reason + i, len - i);
        if (seq > 1) {
            memcpy (out + o, reason + i, seq);
            o += seq;
            i += seq;
        }
        else {
            out [o++] = seq == 1 && c >= 0x20 && c != 0x7f ? (char) c : seq == 1 ? ' ' : '?';
            i++;
        }
    }
    out [o] = 0;
}

int
rp_db_photo_fail (rp_db_t *self, const char *id, const char *reason, int64_t retry_in_ms,
                  char *err, size_t errlen)
{
    if (!rp_db_valid_id (id)) {
        rp_db_err (err, errlen, "photo not found");
        return RP_NOT_FOUND;
    }
    char text [S_REASON_MAX + 1], retry [24];
    rp_db_clean_reason (reason, text, sizeof text);
    snprintf (retry, sizeof retry, "%lld",
              (long long) (retry_in_ms < S_RETRY_MAX_MS ? retry_in_ms : S_RETRY_MAX_MS));
    const char *params [] = { id, text, retry };
    return retry_in_ms > 0
         ? s_transition (self, RP_SQL_PHOTO_RETRY, params, 3, id, "processing", err, errlen)
         : s_transition (self, RP_SQL_PHOTO_FAIL, params, 2, id, "processing", err, errlen);
}

int
rp_db_photo_requeue_processing (rp_db_t *self, int64_t older_than_ms, int *requeued, char *err, size_t errlen)
{
    *requeued = 0;
    char older [24];
    snprintf (older, sizeof older, "%lld", (long long) (older_than_ms > 0 ? older_than_ms : 0));
    const char *params [] = { older };
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    //  The events first: afterwards the photos are no longer told apart
    if (rp_db_exec (self, RP_SQL_EVENT_REQUEUE_ALL, params, 1, NULL, err, errlen)
    ||  rp_db_exec (self, RP_SQL_PHOTO_REQUEUE, params, 1, &rows, err, errlen))
        return s_abort (self, -1);
    if (rp_db_commit (self, err, errlen))
        return -1;
    *requeued = (int) rows.changes;
    return 0;
}

int
rp_db_photo_release (rp_db_t *self, const char *id, int attempts, char *err, size_t errlen)
{
    if (!rp_db_valid_id (id)) {
        rp_db_err (err, errlen, "photo not found");
        return RP_NOT_FOUND;
    }
    char attempt [16];
    snprintf (attempt, sizeof attempt, "%d", attempts);
    const char *params [] = { id, attempt };
    return s_transition (self, RP_SQL_PHOTO_RELEASE, params, 2, id, "processing as that claim", err, errlen);
}

int
rp_db_photo_uploaded (rp_db_t *self, const char *id, char *err, size_t errlen)
{
    if (!rp_db_valid_id (id)) {
        rp_db_err (err, errlen, "photo not found");
        return RP_NOT_FOUND;
    }
    const char *params [] = { id };
    return s_transition (self, RP_SQL_PHOTO_UPLOADED, params, 1, id, "uploading", err, errlen);
}

//  One try of rp_db_photo_delete. RP_CONFLICT: the photo's sha256 changed
//  between reading it and deleting the row (an upload's bytes arrived):
//  nothing was changed, try again.
static int
s_photo_delete (rp_db_t *self, const char *user_id, const char *id, char deleted [65],
                bool *unreferenced, char *err, size_t errlen)
{
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    const char *photo [] = { user_id, id };
    if (rp_db_exec (self, RP_SQL_PHOTO_SHA, photo, 2, &rows, err, errlen))
        return s_abort (self, -1);
    const char *sha = rp_rows_get (&rows, 0, 0);
    if (!sha) {
        rp_rows_clear (&rows);
        rp_db_err (err, errlen, "photo %s not found", id);
        return s_abort (self, RP_NOT_FOUND);
    }
    snprintf (deleted, 65, "%s", sha);
    rp_rows_clear (&rows);
    //  The address's lock before the row goes, as every writer of a row
    //  referring to it takes it first (an upload's placeholder has no bytes)
    bool bytes = rp_db_valid_sha256 (deleted);
    if (bytes && rp_db_bytes_lock (self, deleted, err, errlen))
        return s_abort (self, -1);
    const char *params [] = { user_id, id, deleted };
    if (rp_db_exec (self, RP_SQL_PHOTO_DELETE, params, 3, &rows, err, errlen))
        return s_abort (self, -1);
    bool gone = rows.rows > 0;
    rp_rows_clear (&rows);
    if (!gone)
        return s_abort (self, RP_CONFLICT);
    int64_t references = 1;
    const char *tombstone [] = { deleted };
    if (bytes
    &&  (rp_db_bytes_references (self, deleted, &references, err, errlen)
         || (references == 0 && rp_db_exec (self, RP_SQL_TOMBSTONE_PUT, tombstone, 1, NULL, err, errlen))))
        return s_abort (self, -1);
    if (rp_db_commit (self, err, errlen))
        return -1;
    *unreferenced = references == 0;
    return 0;
}

int
rp_db_photo_delete (rp_db_t *self, const char *user_id, const char *id,
                    char sha256 [65], bool *sha_unreferenced, char *err, size_t errlen)
{
    *sha_unreferenced = false;
    if (!rp_db_valid_id (user_id) || !rp_db_valid_id (id)) {
        rp_db_err (err, errlen, "photo not found");
        return RP_NOT_FOUND;
    }
    char deleted [65] = "";
    for (int attempt = 0; attempt < 3; attempt++) {
        int rc = s_photo_delete (self, user_id, id, deleted, sha_unreferenced, err, errlen);
        if (rc == 0)
            snprintf (sha256, 65, "%s", deleted);
        if (rc != RP_CONFLICT)
            return rc;
    }
    rp_db_err (err, errlen, "photo %s keeps changing; try again", id);
    return -1;
}

//  ---------------------------------------------------------------------------
//  Tags

typedef enum { S_TAGS_SET, S_TAGS_ADD, S_TAG_REMOVE } s_tags_op_t;

static int
s_tags_change (rp_db_t *self, const char *user_id, const char *id, s_tags_op_t op,
               const char *const *tags, size_t count, char *err, size_t errlen)
{
    if (count > S_TAGS_MAX) {
        rp_db_err (err, errlen, "a photo has at most %d tags", S_TAGS_MAX);
        return RP_REFUSED;
    }
    char clean [S_TAGS_MAX][65];
    for (size_t i = 0; i < count; i++)
        if (!tags [i] || rp_db_tag_clean (tags [i], strlen (tags [i]), clean [i], err, errlen)) {
            if (!tags [i])
                rp_db_err (err, errlen, "a tag must have 1 to 64 bytes");
            return RP_REFUSED;
        }
    if (!rp_db_valid_id (user_id) || !rp_db_valid_id (id)) {
        rp_db_err (err, errlen, "photo not found");
        return RP_NOT_FOUND;
    }
    if (rp_db_begin (self, RP_TXN_WRITE, err, errlen))
        return -1;
    rp_rows_t rows = { 0 };
    const char *photo [] = { user_id, id };
    //  The photo is the user's (and, on PostgreSQL, locked against a
    //  concurrent change of its tags)
    if (rp_db_exec (self, RP_SQL_PHOTO_LOCK, photo, 2, &rows, err, errlen))
        return s_abort (self, -1);
    bool found = rows.rows > 0;
    rp_rows_clear (&rows);
    if (!found) {
        rp_db_err (err, errlen, "photo %s not found", id);
        return s_abort (self, RP_NOT_FOUND);
    }
    const char *only [] = { id };
    if (op == S_TAGS_SET && rp_db_exec (self, RP_SQL_TAGS_CLEAR, only, 1, NULL, err, errlen))
        return s_abort (self, -1);
    for (size_t i = 0; i < count; i++) {
        const char *pair [] = { id, clean [i] };
        if (rp_db_exec (self, op == S_TAG_REMOVE ? RP_SQL_TAG_DELETE : RP_SQL_TAG_INSERT,
                        pair, 2, NULL, err, errlen))
            return s_abort (self, -1);
    }
    if (op == S_TAGS_ADD) {
        int64_t total = 0;
        if (rp_db_exec (self, RP_SQL_TAG_COUNT, only, 1, &rows, err, errlen))
            return s_abort (self, -1);
        int bad = rp_db_parse_int (rp_rows_get (&rows, 0, 0), &total);
        rp_rows_clear (&rows);
        if (bad)
            rp_db_err (err, errlen, "unreadable count");
        else
        if (total > S_TAGS_MAX)
            rp_db_err (err, errlen, "a photo has at most %d tags", S_TAGS_MAX);
        if (bad || total > S_TAGS_MAX)
            return s_abort (self, bad ? -1 : RP_REFUSED);
    }
    return rp_db_commit (self, err, errlen);
}

int
rp_db_photo_tags_set (rp_db_t *self, const char *user_id, const char *id,
                      const char *const *tags, size_t count, char *err, size_t errlen)
{
    return s_tags_change (self, user_id, id, S_TAGS_SET, tags, count, err, errlen);
}

int
rp_db_photo_tags_add (rp_db_t *self, const char *user_id, const char *id,
                      const char *const *tags, size_t count, char *err, size_t errlen)
{
    return s_tags_change (self, user_id, id, S_TAGS_ADD, tags, count, err, errlen);
}

int
rp_db_photo_tag_remove (rp_db_t *self, const char *user_id, const char *id,
                        const char *tag, char *err, size_t errlen)
{
    const char *one [] = { tag };
    return s_tags_change (self, user_id, id, S_TAG_REMOVE, one, 1, err, errlen);
}
