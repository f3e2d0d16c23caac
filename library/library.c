/*  library/library.c: see library.h.

    DESIGN
    Ingest is one function, rp_library_ingest, for every way bytes arrive
    (library.h lists them). Its steps, in this order, each ending the call
    when it fails:
      1. The bytes in a blob writer: the caller's, or the object fetched
         from the bucket (at most max_bytes, or the declared size, are ever
         downloaded). Not in the bucket: RP_NOT_YET. Empty or too big:
         refused (step 6).
      2. Checked, still uncommitted: against the declared size and SHA-256
         (rp_blob_digest), then the type by magic bytes (rp_sniff_check).
         Refused: step 6.
      3. Committed to the store (fsync'd; with S3, in the bucket): from here
         on the bytes may be new in the store and must not outlive a
         failure.
      4. The row: a new photo, queued (rp_db_photo_create), or an uploading
         photo made queued (rp_db_tus_finish); either may find the user has
         these bytes already (a duplicate: no new photo).
      5. The undo, the only one: when the row fails, bytes this call added
         to the store go again, unless a row (any user's) refers to them.
      6. A refusal: nothing was stored; for an upload row the photo is
         failed with the reason (then RP_REFUSED), so a client or a bridge
         asking again finds the outcome.
    The log line "stored photo=<id>" is written only once both are durable
    (tests/test_crash.c counts on it).
*/
#include "library/library.h"
#include "engine/clock.h"
#include "engine/fault.h"
#include "engine/log.h"
#include "library/sniff.h"

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

//  Refuse the bytes (nothing was stored; reason is not err): an upload's
//  photo fails with the reason, which err then holds. RP_REFUSED, or -1 when the failure cannot
//  be written (the upload stays as it was, to be asked again).
static int
s_refuse (rp_db_t *db, const rp_ingest_t *ingest, const char *reason, char *err, size_t errlen)
{
    if (ingest->upload_id && rp_db_tus_fail (db, ingest->upload_id, reason, err, errlen))
        return RP_ERROR;
    snprintf (err, errlen, "%s", reason);
    return RP_REFUSED;
}

//  Step 2: what the client declared, then the type. 0 with *mime set;
//  RP_REFUSED with the reason; -1 (the reason is the error).
static int
s_check (rp_blob_writer_t *writer, const rp_ingest_t *ingest, const char **mime, char *reason, size_t size)
{
    int64_t bytes = rp_blob_size (writer);
    if (ingest->declared_bytes >= 0 && bytes != ingest->declared_bytes) {
        snprintf (reason, size, "the upload has %lld bytes, but %lld were declared",
                  (long long) bytes, (long long) ingest->declared_bytes);
        return RP_REFUSED;
    }
    char sha256 [65];
    if (ingest->declared_sha256 && rp_blob_digest (writer, sha256)) {
        snprintf (reason, size, "cannot compute the upload's SHA-256");
        return RP_ERROR;
    }
    if (ingest->declared_sha256 && strcmp (sha256, ingest->declared_sha256) != 0) {
        snprintf (reason, size, "the upload's SHA-256 is %s, but %s was declared", sha256,
                  ingest->declared_sha256);
        return RP_REFUSED;
    }
    size_t got = 0;
    const unsigned char *head = rp_blob_head (writer, &got);
    *mime = rp_sniff_check (head, got, reason, size);
    return *mime ? RP_OK : RP_REFUSED;
}

int
rp_library_ingest (rp_blobstore_t *blobs, rp_db_t *db, rp_blob_writer_t **writer_p,
                   const rp_ingest_t *ingest, rp_ingested_t *out, char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    int64_t started = rp_clock_ms ();
    rp_blob_writer_t *fetched = NULL;
    const char *object = NULL;          //  the bytes came from the bucket
    if (!writer_p || !*writer_p) {
        object = ingest->object;
        //  Step 1: the object. Nothing over what was declared is ever
        //  downloaded: a client may PUT anything to its URL
        int64_t limit = ingest->declared_bytes >= 0 ? ingest->declared_bytes : ingest->max_bytes;
        int rc = rp_blob_import_object (blobs, object, limit, &fetched, err, errlen);
        if (rc == RP_NOT_FOUND) {
            snprintf (err, errlen, "the object %s is not in the bucket yet: PUT it there first", object);
            return RP_NOT_YET;
        }
        if (rc == RP_REFUSED) {
            char reason [512];
            if (ingest->declared_bytes >= 0)
                snprintf (reason, sizeof reason, "the upload does not have the %lld bytes declared: %s",
                          (long long) ingest->declared_bytes, err);
            else
                snprintf (reason, sizeof reason, "%s", err);
            return s_refuse (db, ingest, reason, err, errlen);
        }
        if (rc)
            return rc;
        writer_p = &fetched;
    }
    //  Step 2
    char reason [512];
    int rc = s_check (*writer_p, ingest, &out->content_type, reason, sizeof reason);
    if (rc) {
        rp_blob_abort (writer_p);
        if (rc == RP_REFUSED)
            return s_refuse (db, ingest, reason, err, errlen);
        snprintf (err, errlen, "%s", reason);
        return rc;
    }
    //  Step 3
    out->bytes = rp_blob_size (*writer_p);
    bool existed = false;
    rc = rp_blob_commit (writer_p, out->sha256, &existed, err, errlen);
    if (rc)
        return rc;
    rp_fault_hold ("HOLD_INGEST_MS");
    //  Step 4
    if (ingest->upload_id)
        rc = rp_db_tus_finish (db, ingest->upload_id, out->sha256, out->bytes, out->content_type, out->id,
                               &out->duplicate, err, errlen);
    else {
        rp_photo_new_t photo = {
            .user_id = ingest->user_id, .batch_id = ingest->batch_id, .filename = ingest->filename,
            .sha256 = out->sha256, .bytes = out->bytes, .content_type = out->content_type,
            .status = "queued", .tags = ingest->tags,
        };
        rc = rp_db_photo_create (db, &photo, out->id, out->batch_id, &out->duplicate, err, errlen);
    }
    if (rc) {
        //  Step 5
        s_undo_store (blobs, db, out->sha256, existed);
        return rc;
    }
    out->queued = !out->duplicate;
    rp_info ("library", "stored photo=%s sha256=%.12s bytes=%lld duration=%lldms%s %s=%s%s%s", out->id,
             out->sha256, (long long) out->bytes, (long long) (rp_clock_ms () - started),
             out->duplicate ? " duplicate" : "", ingest->upload_id ? "upload" : "file",
             ingest->upload_id ? ingest->upload_id : ingest->filename,
             object ? " object=" : "", object ? object : "");
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
        return RP_NOT_FOUND;
    }
    if (upload.done) {
        //  Already taken in (the S3 event and a complete call both came)
        snprintf (out->id, sizeof out->id, "%s", upload.photo_id);
        snprintf (out->sha256, sizeof out->sha256, "%s", declared);
        out->duplicate = upload.duplicate;
        return 0;
    }
    char relative [64], ignore [256];
    snprintf (relative, sizeof relative, "uploads/%s", photo_id);
    rp_ingest_t ingest = {
        .object = relative, .max_bytes = config->limits_max_upload_bytes,
        .declared_bytes = upload.length, .declared_sha256 = declared, .upload_id = photo_id,
    };
    rc = rp_library_ingest (blobs, db, NULL, &ingest, out, err, errlen);
    if (rc == RP_NOT_FOUND && rp_db_tus_get (db, user_id, photo_id, &upload, ignore, sizeof ignore) == 0) {
        //  The S3 event and a complete call raced: the other one finished it
        rp_db_tus_clear (&upload);
        if (upload.done) {
            snprintf (out->id, sizeof out->id, "%s", upload.photo_id);
            out->duplicate = upload.duplicate;
            out->queued = false;
            return 0;
        }
    }
    //  Taken in, or refused (the photo failed first: a retry finds it so):
    //  the bytes live under their content address now, or nowhere
    if ((rc == 0 || rc == RP_REFUSED)
    &&  rp_s3_mirror_delete (rp_blobstore_s3 (blobs), relative, ignore, sizeof ignore))
        rp_warn ("library", "upload=%s the upload object stays in the bucket: %s", photo_id, ignore);
    return rc;
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
    rp_fault_hold ("HOLD_DELETE_MS");
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
