/*  library/library.c: see library.h. */
#include "library/library.h"
#include "engine/clock.h"
#include "engine/log.h"
#include "library/sniff.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

//  Undo a store that will not be acknowledged: remove the bytes if this
//  call put them there (they did not exist before) and no row refers to them.
static void
s_undo_store (rp_blobstore_t *blobs, rp_db_t *db, const char *sha256, bool existed)
{
    int64_t references = 1;
    char ignore [128];
    if (!existed && rp_db_sha_references (db, sha256, &references, ignore, sizeof ignore) == 0
    &&  references == 0)
        rp_blob_delete (blobs, sha256, ignore, sizeof ignore);
}

//  After the bytes are durable: the row, or undo what this call stored.
static int
s_commit_row (rp_blobstore_t *blobs, rp_db_t *db, const char *user_id, const char *batch_id,
              const char *filename, const char *tags, bool existed, rp_ingested_t *out,
              char *err, size_t errlen)
{
    rp_photo_new_t photo = {
        .user_id = user_id, .batch_id = batch_id, .filename = filename,
        .sha256 = out->sha256, .bytes = out->bytes, .content_type = out->content_type,
        .status = "queued", .tags = tags,
    };
    if (rp_db_photo_create (db, &photo, out->id, out->batch_id, &out->duplicate, err, errlen) == 0)
        return 0;
    s_undo_store (blobs, db, out->sha256, existed);
    return -1;
}

static const char *
s_check_type (const unsigned char *head, size_t size, char *err, size_t errlen)
{
    const char *mime = rp_sniff (head, size);
    if (!mime)
        snprintf (err, errlen, "not a supported image: the file is %s", rp_sniff_describe (head, size));
    return mime;
}

//  The type of stored bytes from their first bytes (head holds up to
//  RP_SNIFF_BYTES of them)
static const char *
s_stored_type (const unsigned char *head, int64_t bytes, char *err, size_t errlen)
{
    return s_check_type (head, (size_t) (bytes < RP_SNIFF_BYTES ? bytes : RP_SNIFF_BYTES), err, errlen);
}

int
rp_library_ingest_file (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                        const char *user_id, const char *batch_id, const char *path,
                        const char *filename, const char *tags, rp_ingested_t *out,
                        char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    //  Refuse non-images before storing anything
    const char *mime = NULL, *described = NULL;
    if (rp_sniff_file (path, &mime, &described)) {
        snprintf (err, errlen, "cannot read file: %s", strerror (errno));
        return -1;
    }
    if (!mime) {
        snprintf (err, errlen, "not a supported image: the file is %s", described);
        return -1;
    }
    unsigned char head [RP_SNIFF_BYTES];
    bool existed = false;
    int64_t started = rp_clock_ms ();
    int rc = rp_blob_put_file (blobs, path, config->limits_max_upload_bytes, out->sha256, &out->bytes,
                               &existed, head, sizeof head, err, errlen);
    if (rc)
        return rc;
    //  Sniff again what was stored: the file may have changed under us
    out->content_type = s_stored_type (head, out->bytes, err, errlen);
    if (!out->content_type) {
        s_undo_store (blobs, db, out->sha256, existed);
        return -1;
    }
    if (s_commit_row (blobs, db, user_id, batch_id, filename, tags, existed, out, err, errlen))
        return -1;
    rp_info ("library", "stored photo=%s sha256=%.12s bytes=%lld duration=%lldms%s file=%s",
             out->id, out->sha256, (long long) out->bytes, (long long) (rp_clock_ms () - started),
             out->duplicate ? " duplicate" : "", filename);
    return 0;
}

int
rp_library_ingest_writer (rp_blobstore_t *blobs, rp_db_t *db, rp_blob_writer_t **writer_p,
                          const char *user_id, const char *batch_id, const char *filename,
                          const char *tags, rp_ingested_t *out, char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    size_t got = 0;
    const unsigned char *head = rp_blob_head (*writer_p, &got);
    out->content_type = s_check_type (head, got, err, errlen);
    if (!out->content_type) {
        rp_blob_abort (writer_p);
        return -1;
    }
    out->bytes = rp_blob_size (*writer_p);
    bool existed = false;
    int rc = rp_blob_commit (writer_p, out->sha256, &existed, err, errlen);
    if (rc)
        return rc;
    if (s_commit_row (blobs, db, user_id, batch_id, filename, tags, existed, out, err, errlen))
        return -1;
    rp_info ("library", "stored photo=%s sha256=%.12s bytes=%lld%s file=%s", out->id, out->sha256,
             (long long) out->bytes, out->duplicate ? " duplicate" : "", filename);
    return 0;
}

int
rp_library_import_object (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                          const char *user_id, const char *relative, const char *filename,
                          rp_ingested_t *out, char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    unsigned char head [RP_SNIFF_BYTES];
    bool existed = false;
    int rc = rp_blob_import_object (blobs, relative, config->limits_max_upload_bytes, out->sha256,
                                    &out->bytes, &existed, head, sizeof head, err, errlen);
    if (rc == RP_S3_NOT_FOUND) {
        snprintf (err, errlen, "the object %s is not in the bucket", relative);
        return RP_LIBRARY_NOT_YET;
    }
    if (rc == RP_BLOB_REFUSED)
        return RP_LIBRARY_REFUSED;
    if (rc)
        return rc;
    out->content_type = s_stored_type (head, out->bytes, err, errlen);
    if (!out->content_type) {
        s_undo_store (blobs, db, out->sha256, existed);
        return RP_LIBRARY_REFUSED;
    }
    if (s_commit_row (blobs, db, user_id, NULL, filename, NULL, existed, out, err, errlen))
        return -1;
    rp_info ("library", "imported photo=%s sha256=%.12s bytes=%lld%s from s3 key %s", out->id, out->sha256,
             (long long) out->bytes, out->duplicate ? " duplicate" : "", relative);
    return 0;
}

int
rp_library_presign_metadata (const char *filename, const char *sha256, char *out, size_t outlen)
{
    unsigned char name64 [4 * 256 / 3 + 8], sha64 [96];
    size_t len = strlen (filename);
    if (len > 255 || strlen (sha256) != 64)
        return -1;
    EVP_EncodeBlock (name64, (const unsigned char *) filename, (int) len);
    EVP_EncodeBlock (sha64, (const unsigned char *) sha256, 64);
    int n = snprintf (out, outlen, "filename %s,sha256 %s", name64, sha64);
    return n < 0 || (size_t) n >= outlen ? -1 : 0;
}

//  The declared sha256 in a presigned upload's metadata
static int
s_declared_sha256 (const char *metadata, char sha256 [65])
{
    const char *at = metadata ? strstr (metadata, "sha256 ") : NULL;
    if (!at)
        return -1;
    at += 7;
    size_t len = strcspn (at, ",");
    if (len != 88)                  //  64 bytes in base64
        return -1;
    unsigned char decoded [72];
    if (EVP_DecodeBlock (decoded, (const unsigned char *) at, (int) len) < 64)
        return -1;
    memcpy (sha256, decoded, 64);
    sha256 [64] = 0;
    return 0;
}

int
rp_library_adopt_upload (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                         const char *user_id, const char *photo_id, rp_ingested_t *out,
                         char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    rp_tus_t upload;
    int rc = rp_db_tus_get (db, user_id, photo_id, &upload, err, errlen);
    if (rc)
        return rc;
    char declared [65];
    bool presigned = s_declared_sha256 (upload.metadata, declared) == 0;
    rp_db_tus_clear (&upload);
    if (!presigned) {
        snprintf (err, errlen, "upload %s is not a presigned upload", photo_id);
        return RP_DB_NOT_FOUND;
    }
    if (upload.done) {
        //  Already taken in (the S3 event and a complete call both came)
        snprintf (out->id, sizeof out->id, "%s", upload.photo_id);
        snprintf (out->sha256, sizeof out->sha256, "%s", declared);
        out->duplicate = upload.duplicate;
        return 0;
    }
    char relative [64], ignore [256], reason [512] = "";
    snprintf (relative, sizeof relative, "uploads/%s", photo_id);
    //  Nothing over what presign declared is ever downloaded: a client may
    //  PUT anything to its URL
    unsigned char head [RP_SNIFF_BYTES];
    bool existed = false;
    rc = rp_blob_import_object (blobs, relative, upload.length >= 0 ? upload.length : config->limits_max_upload_bytes,
                                out->sha256, &out->bytes, &existed, head, sizeof head, err, errlen);
    if (rc == RP_S3_NOT_FOUND) {
        snprintf (err, errlen, "the upload's object is not in the bucket yet: PUT it to the presigned URL first");
        return RP_LIBRARY_NOT_YET;
    }
    if (rc == RP_BLOB_REFUSED)
        snprintf (reason, sizeof reason, "the uploaded object does not have the %lld bytes declared: %s",
                  (long long) upload.length, err);
    else
    if (rc)
        return rc;
    if (!reason [0]) {
        out->content_type = s_stored_type (head, out->bytes, reason, sizeof reason);
        if (out->bytes != upload.length && upload.length >= 0)
            snprintf (reason, sizeof reason, "the uploaded object has %lld bytes, but %lld were declared",
                      (long long) out->bytes, (long long) upload.length);
        else
        if (strcmp (out->sha256, declared) != 0)
            snprintf (reason, sizeof reason, "the uploaded object's SHA-256 is %s, but %s was declared",
                      out->sha256, declared);
        if (reason [0])
            s_undo_store (blobs, db, out->sha256, existed);
    }
    if (reason [0]) {
        //  The outcome first, then the object: a retry finds the photo failed
        if (rp_db_tus_fail (db, photo_id, reason, err, errlen))
            return -1;
        rp_s3_mirror_delete (rp_blobstore_s3 (blobs), relative, ignore, sizeof ignore);
        snprintf (err, errlen, "%s", reason);
        return RP_LIBRARY_REFUSED;
    }
    rc = rp_db_tus_finish (db, photo_id, out->sha256, out->bytes, out->content_type, out->id,
                           &out->duplicate, err, errlen);
    if (rc == RP_DB_NOT_FOUND && rp_db_tus_get (db, user_id, photo_id, &upload, ignore, sizeof ignore) == 0) {
        //  The S3 event and a complete call raced: the other one finished it
        rp_db_tus_clear (&upload);
        if (upload.done) {
            snprintf (out->id, sizeof out->id, "%s", upload.photo_id);
            out->duplicate = upload.duplicate;
            return 0;
        }
    }
    if (rc) {
        s_undo_store (blobs, db, out->sha256, existed);
        return rc;
    }
    out->queued = !out->duplicate;
    //  Its bytes live under their content address now
    if (rp_s3_mirror_delete (rp_blobstore_s3 (blobs), relative, ignore, sizeof ignore))
        rp_warn ("library", "photo=%s the upload object stays in the bucket: %s", out->id, ignore);
    rp_info ("library", "presigned upload=%s arrived: photo=%s sha256=%.12s bytes=%lld%s", photo_id, out->id,
             out->sha256, (long long) out->bytes, out->duplicate ? " duplicate" : "");
    return 0;
}

int
rp_library_delete (rp_blobstore_t *blobs, rp_db_t *db, const char *user_id, const char *id,
                   char *err, size_t errlen)
{
    char sha256 [65] = "";
    bool unreferenced = false;
    int rc = rp_db_photo_delete (db, user_id, id, sha256, &unreferenced, err, errlen);
    if (rc)
        return rc;
    //  An upload cut short has a placeholder, not bytes in the store
    if (strncmp (sha256, "pending:", 8) == 0)
        unreferenced = false;
    if (unreferenced && rp_blob_delete (blobs, sha256, err, errlen))
        //  The row is gone; bytes left behind are swept at the next recovery
        rp_warn ("library", "photo=%s deleted but its bytes remain: %s", id, err);
    rp_info ("library", "deleted photo=%s%s", id, unreferenced ? ", bytes removed" : "");
    return 0;
}

typedef struct {
    rp_blobstore_t *blobs;
    rp_db_t *db;
    int64_t grace_s;
    int removed;
    int failed;
} s_sweep_t;

static int
s_sweep_one (const char *sha256, int64_t age_s, void *arg)
{
    s_sweep_t *sweep = (s_sweep_t *) arg;
    if (age_s < sweep->grace_s)
        return 0;
    int64_t references = 0;
    char err [256];
    if (rp_db_sha_references (sweep->db, sha256, &references, err, sizeof err)) {
        sweep->failed = 1;
        return 1;                   //  the database is unwell: stop, delete nothing
    }
    if (references == 0 && rp_blob_delete (sweep->blobs, sha256, err, sizeof err) == 0) {
        rp_info ("library", "removed unreferenced bytes sha256=%.12s (age %llds)", sha256, (long long) age_s);
        sweep->removed++;
    }
    return 0;
}

int64_t
rp_library_stale_ms (const rp_config_t *config)
{
    //  Past every try the broker would make, twice over
    return 2 * config->broker_job_timeout_ms * config->broker_max_attempts + 60000;
}

int
rp_library_recover (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                    char *err, size_t errlen)
{
    int64_t started = rp_clock_ms ();
    int requeued = 0;
    //  SQLite: this engine is the only one (or others on this host share its
    //  file and will be fine redoing a photo). PostgreSQL: other engines may
    //  be mid-photo; only photos stuck too long are anybody's to take
    bool shared = strncmp (config->db_url, "sqlite:", 7) != 0;
    if (rp_db_photo_requeue_processing (db, shared ? rp_library_stale_ms (config) : 0, &requeued,
                                        err, errlen))
        return -1;
    int removed_tmp = 0;
    rp_blobstore_clean_tmp (blobs, config->storage_orphan_grace_s, &removed_tmp);
    s_sweep_t sweep = { blobs, db, config->storage_orphan_grace_s, 0, 0 };
    rp_blobstore_each (blobs, s_sweep_one, &sweep);
    rp_info ("library", "recovery: %d photos queued again, %d temporary files and %d unreferenced "
             "originals removed duration=%lldms", requeued, removed_tmp, sweep.removed,
             (long long) (rp_clock_ms () - started));
    return 0;
}

int
rp_library_open_and_recover (const rp_config_t *config, char *err, size_t errlen)
{
    //  The blob store first: it makes data.dir, where SQLite's file lives
    rp_blobstore_t *blobs = rp_blobstore_open (config, err, errlen);
    if (!blobs)
        return -1;
    rp_db_t *db = rp_db_open (config->db_url, err, errlen);
    if (!db) {
        rp_blobstore_close (&blobs);
        return -1;
    }
    int applied = 0;
    int rc = rp_db_migrate (db, &applied, err, errlen);
    if (rc == 0 && applied)
        rp_info ("library", "applied %d schema migrations", applied);
    if (rc == 0)
        rc = rp_library_recover (blobs, db, config, err, errlen);
    rp_blobstore_close (&blobs);
    rp_db_close (&db);
    return rc;
}
