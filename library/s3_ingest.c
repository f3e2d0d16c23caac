/*  library/s3_ingest.c: S3 event notifications taken in as photos.

    DESIGN
    No state and no thread of its own: the caller's blob store and database
    connection do the work, in the caller's thread. What a record becomes
    is decided here once (see s3_ingest.h); what to do with the message
    afterwards (delete it, let it come back, list it in a Lambda batch's
    failures) is the caller's, since an SQS consumer and a Lambda function
    answer to the queue differently.
    Idempotence: an import is found again by (bucket, key, ETag) in
    s3_objects before anything is made, and a presigned upload by its
    photo id (rp_library_adopt_upload answers a finished upload's photo
    again), so a message handled twice, by one consumer or two, makes
    each photo once. A crash between the photo's commit and its
    s3_objects row is covered too: the next delivery does not find the
    object, but the same user's same bytes are a duplicate, which
    rp_library_ingest answers with the existing photo (no new row).
*/
#include "library/s3_ingest.h"
#include "engine/log.h"
#include "library/filename.h"
#include "library/library.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

//  Whether every segment of path ("a/b/c") is a name: not empty, not "."
//  or ".."
static bool
s_segments_named (const char *path)
{
    for (const char *segment = path;;) {
        size_t len = strcspn (segment, "/");
        if (len == 0 || (len == 1 && segment [0] == '.') || (len == 2 && strncmp (segment, "..", 2) == 0))
            return false;
        if (!segment [len])
            return true;
        segment += len + 1;
    }
}

rp_s3_ingest_outcome_t
rp_s3_ingest_record (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config, const char *source,
                     const rp_s3_object_event_t *event, char photo_id [RP_ID_MAX], char *err, size_t errlen)
{
    rp_s3_mirror_t *s3 = rp_blobstore_s3 (blobs);
    if (!s3) {
        snprintf (err, errlen, "s3://%s/%s: storage.backend is not s3", event->bucket, event->key);
        return RP_S3_INGEST_RETRY;
    }
    const char *prefix = rp_s3_mirror_prefix (s3);
    size_t prefix_len = strlen (prefix);
    if (strcmp (event->bucket, rp_s3_mirror_bucket (s3)) != 0
    ||  strncmp (event->key, prefix, prefix_len) != 0) {
        rp_debug (source, "s3://%s/%s is not ours; ignored", event->bucket, event->key);
        return RP_S3_INGEST_NOTHING;
    }
    const char *relative = event->key + prefix_len;
    rp_ingested_t out;
    if (strncmp (relative, "uploads/", 8) == 0) {
        int rc = rp_library_adopt_upload (blobs, db, config, NULL, relative + 8, &out, err, errlen);
        if (rc == 0 || rc == RP_REFUSED) {
            //  Refused: the photo is failed with the reason, an outcome
            if (rc == 0)
                snprintf (photo_id, RP_ID_MAX, "%s", out.id);
            else
                snprintf (photo_id, RP_ID_MAX, "%.39s", relative + 8);
            return RP_S3_INGEST_PHOTO;
        }
        if (rc == RP_NOT_FOUND) {
            rp_info (source, "s3://%s/%s: no such presigned upload (deleted or expired); ignored",
                     event->bucket, event->key);
            return RP_S3_INGEST_NOTHING;
        }
        return RP_S3_INGEST_RETRY;
    }
    if (strncmp (relative, "incoming/", 9) != 0) {
        rp_debug (source, "s3://%s/%s is not an upload or an import; ignored", event->bucket, event->key);
        return RP_S3_INGEST_NOTHING;
    }
    //  incoming/<username>/<...>/<name>
    const char *user = relative + 9;
    size_t user_len = strcspn (user, "/");
    const char *name = strrchr (relative, '/') + 1;
    if (user_len && user [user_len] == '/' && !*name) {
        rp_debug (source, "s3://%s/%s is a folder marker; ignored", event->bucket, event->key);
        return RP_S3_INGEST_NOTHING;
    }
    if (user_len == 0 || user [user_len] != '/') {
        snprintf (err, errlen, "s3://%s/%s: imports go under incoming/<username>/<file name>",
                  event->bucket, event->key);
        return RP_S3_INGEST_RETRY;
    }
    if (!s_segments_named (user)) {
        snprintf (err, errlen, "s3://%s/%s: a segment of the key is empty, \".\" or \"..\"; imports go under "
                  "incoming/<username>/<file name>", event->bucket, event->key);
        return RP_S3_INGEST_RETRY;
    }
    int rc = rp_db_s3_object_find (db, event->bucket, event->key, event->etag, photo_id, err, errlen);
    if (rc == 0)
        return RP_S3_INGEST_PHOTO;  //  delivered before: the same photo
    if (rc != RP_NOT_FOUND)
        return RP_S3_INGEST_RETRY;
    char username [128], user_id [RP_ID_MAX];
    snprintf (username, sizeof username, "%.*s", (int) (user_len < 127 ? user_len : 127), user);
    rc = rp_db_user_find (db, username, user_id, NULL, 0, err, errlen);
    if (rc) {
        if (rc == RP_NOT_FOUND)
            snprintf (err, errlen, "s3://%s/%s: there is no user named \"%s\"", event->bucket, event->key,
                      username);
        return RP_S3_INGEST_RETRY;
    }
    //  The key's last segment, as every file name is cleaned
    char filename [RP_FILENAME_MAX + 1];
    rp_filename_clean (name, strlen (name), filename, sizeof filename);
    rp_ingest_t ingest = {
        .object = relative, .max_bytes = config->limits_max_upload_bytes, .declared_bytes = -1,
        .user_id = user_id, .filename = filename,
    };
    rc = rp_library_ingest (blobs, db, NULL, &ingest, &out, err, errlen);
    if (rc)
        return RP_S3_INGEST_RETRY;
    if (rp_db_s3_object_record (db, event->bucket, event->key, event->etag, out.id, err, errlen))
        rp_warn (source, "photo=%s cannot remember its object: %s", out.id, err);
    snprintf (photo_id, RP_ID_MAX, "%s", out.id);
    return RP_S3_INGEST_PHOTO;
}

rp_s3_ingest_outcome_t
rp_s3_ingest_body (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config, const char *source,
                   const char *body, char (*photos) [RP_ID_MAX], int max, int *count,
                   char *err, size_t errlen)
{
    *count = 0;
    rp_s3_object_event_t *events = NULL;
    size_t n = 0;
    int created = rp_s3_events_parse (body, &events, &n, err, errlen);
    if (created < 0)
        return RP_S3_INGEST_RETRY;
    rp_s3_ingest_outcome_t outcome = RP_S3_INGEST_NOTHING;
    for (size_t i = 0; i < n; i++) {
        char photo_id [RP_ID_MAX];
        rp_s3_ingest_outcome_t one = rp_s3_ingest_record (blobs, db, config, source, &events [i], photo_id,
                                                          err, errlen);
        if (one == RP_S3_INGEST_RETRY) {
            outcome = RP_S3_INGEST_RETRY;
            break;
        }
        if (one == RP_S3_INGEST_PHOTO && *count < max)
            snprintf (photos [(*count)++], RP_ID_MAX, "%s", photo_id);
    }
    rp_s3_events_free (&events, n);
    if (outcome != RP_S3_INGEST_RETRY && *count > 0)
        outcome = RP_S3_INGEST_PHOTO;
    return outcome;
}
