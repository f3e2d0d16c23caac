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
      3. Stored (fsync'd; with S3, in the bucket): from here on the bytes
         may be new in the store and must not outlive a failure. The
         writer keeps them under its temporary name too, until step 4 ends.
      4. The row, in one transaction holding the address's lock (below): a
         new photo, queued (rp_db_photo_create), or an uploading photo made
         queued (rp_db_tus_finish); either may find the user has these
         bytes already (a duplicate: no new photo). Inside it, before the
         row is written, the bytes are made sure of (rp_blob_restore).
      5. The undo, the only one: when the row fails, bytes this call added
         to the store get a tombstone and are collected at once (they go
         unless a row, of any user, refers to them by then).
      6. A refusal: nothing was stored; for an upload row the photo is
         failed with the reason (then RP_REFUSED), so a client or a bridge
         asking again finds the outcome.
    The log line "stored photo=<id>" is written only once both are durable
    (tests/test_crash.c counts on it).

    NO ACKNOWLEDGED BYTE IS LOST. Bytes live once per address (their
    SHA-256), shared by every photo of any user with them, and several
    engines share one database and one bucket (or data folder). So a
    removal is a race with whoever takes the same bytes in: a delete that
    counted no reference and then unlinked would unlink the bytes an upload
    found present (link: EEXIST) and was acknowledged for in between. The
    database is the lock that closes that race:
      - The lock on an address is taken in the transaction that commits a
        row referring to it and in the one that removes its bytes, and is
        held to its end: PostgreSQL pg_advisory_xact_lock on the address;
        SQLite the write lock, which BEGIN IMMEDIATE takes for every write
        transaction (one writer at a time, on one file, for every engine
        sharing it). A removal and a commit referring to the address
        never interleave, on one engine or several.
      - Only the collection removes bytes (rp_library_collect): in one
        transaction holding the lock it counts the rows referring to the
        address, removes the bytes (original, derivatives, local and S3)
        only when there are none, and drops the address's tombstone.
        Under the lock the count is the truth: no row can be committed
        between it and the removal.
      - Deletes, undos and a photo deleted while processing do not remove
        anything: they record a tombstone (schema V5; the delete in its
        own transaction, with the lock) and ask for a collection at once.
        A collection that fails (S3 away) leaves the tombstone for the
        pipeline's minute tick, on any engine, to try again. Tombstones are
        hints: the count under the lock decides.
      - An ingest stores its bytes first (step 3), outside any
        transaction: a large file or an S3 PUT is never done holding a
        lock. A collection may strike between that and step 4 and take
        bytes the ingest found there. So step 4, under the lock, makes
        sure the bytes are at the address and puts them back from its own
        temporary name if not (S3: HEAD, PUT when missing); its row is
        committed only then, and the collection cannot strike again until
        that row counts. Hence the writer lives until step 4 is over.
      - The start-up sweep of unreferenced originals goes through the same
        collection, so it needs no age check to be safe (link() does not
        refresh a file's age anyway); it keeps storage.orphan_grace_s only
        so as not to make uploads in flight put their bytes back.
      - S3 mode: the local folder is a cache. The minute trim of the cache
        (rp_blobstore_trim_cache) skips the addresses of photos the
        pipeline has in flight; everything else in it is in S3 and
        fetched again when needed.
    Why the db layer takes hooks, not a transaction API: every command of
    engine/db stays one transaction that rolls back on failure, and the
    lock is taken where the command knows it must be (before any row
    referring to the address is written); the library's step on the bytes
    runs inside it as a callback (rp_db_bytes_hook_t). A transaction
    exposed to callers (begin, lock, commit) would spread that knowledge
    over every caller and let one forget the lock or leave a transaction
    open. The cost of the design: an ingest runs one access() (S3: one
    HEAD) inside its transaction, and on SQLite a collection holds the
    database's write lock while it unlinks (S3: deletes objects).
*/
#include "library/library.h"
#include "engine/clock.h"
#include "engine/fault.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "library/sniff.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

//  The collection's step, run under the address's lock once no row refers
//  to it: remove the bytes. Says when it was the removal that failed (not
//  the database).
typedef struct {
    rp_blobstore_t *blobs;
    bool failed;
} s_remove_t;

static int
s_remove (void *arg, const char *sha256, char *err, size_t errlen)
{
    s_remove_t *remove = (s_remove_t *) arg;
    int rc = rp_blob_delete (remove->blobs, sha256, err, errlen);
    remove->failed = rc != 0;
    return rc;
}

//  rp_library_collect; *storage_failed: the failure was the removal's
static int
s_collect (rp_blobstore_t *blobs, rp_db_t *db, const char *sha256, bool *removed, bool *storage_failed,
           char *err, size_t errlen)
{
    s_remove_t remove = { blobs, false };
    rp_db_bytes_hook_t hook = { s_remove, &remove };
    int rc = rp_db_bytes_collect (db, sha256, &hook, removed, err, errlen);
    *storage_failed = remove.failed;
    if (rc == 0 && *removed)
        rp_info ("library", "collected sha256=%.12s: no photo refers to it", sha256);
    return rc;
}

int
rp_library_collect (rp_blobstore_t *blobs, rp_db_t *db, const char *sha256, bool *removed,
                    char *err, size_t errlen)
{
    bool storage_failed = false;
    return s_collect (blobs, db, sha256, removed, &storage_failed, err, errlen);
}

void
rp_library_unreference (rp_blobstore_t *blobs, rp_db_t *db, const char *sha256, const char *why)
{
    char err [256];
    bool removed = false;
    if (rp_db_bytes_tombstone (db, sha256, err, sizeof err)
    ||  rp_library_collect (blobs, db, sha256, &removed, err, sizeof err))
        rp_warn ("library", "sha256=%.12s (%s) is left for a later collection: %s", sha256, why, err);
}

//  Step 4's hook, under the address's lock: the bytes this ingest stored
//  must still be there, or be put back
typedef struct {
    rp_blob_writer_t *writer;
    bool restored;
} s_present_t;

static int
s_present (void *arg, const char *sha256, char *err, size_t errlen)
{
    s_present_t *present = (s_present_t *) arg;
    bool restored = false;
    int rc = rp_blob_restore (present->writer, &restored, err, errlen);
    if (rc == 0 && restored) {
        present->restored = true;
        rp_info ("library", "sha256=%.12s was collected while it was taken in: put back", sha256);
    }
    return rc;
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

static int
s_ingest (rp_blobstore_t *blobs, rp_db_t *db, rp_blob_writer_t **writer_p,
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
    rc = rp_blob_store (writer_p, out->sha256, &existed, err, errlen);
    if (rc)
        return rc;
    rp_fault_hold ("HOLD_INGEST_MS");
    //  Step 4
    s_present_t present = { *writer_p, false };
    rp_db_bytes_hook_t hook = { s_present, &present };
    if (ingest->upload_id)
        rc = rp_db_tus_finish (db, ingest->upload_id, ingest->upload_owner, out->sha256, out->bytes,
                               out->content_type, &hook, out->id, &out->duplicate, err, errlen);
    else {
        rp_photo_new_t photo = {
            .user_id = ingest->user_id, .batch_id = ingest->batch_id, .filename = ingest->filename,
            .sha256 = out->sha256, .bytes = out->bytes, .content_type = out->content_type,
            .status = "queued", .tags = ingest->tags, .hook = &hook,
        };
        rc = rp_db_photo_create (db, &photo, out->id, out->batch_id, &out->duplicate, err, errlen);
    }
    rp_blob_abort (writer_p);       //  the temporary name; the address keeps the bytes
    if (rc) {
        //  Step 5: bytes this call put there (stored new, or put back)
        if (!existed || present.restored)
            rp_library_unreference (blobs, db, out->sha256, "an upload undone");
        return rc;
    }
    out->queued = !out->duplicate;
    rp_metrics_upload (out->bytes);
    rp_info ("library", "stored photo=%s sha256=%.12s bytes=%lld duration=%lld%s %s=%s%s%s", out->id,
             out->sha256, (long long) out->bytes, (long long) (rp_clock_ms () - started),
             out->duplicate ? " duplicate" : "", ingest->upload_id ? "upload" : "file",
             ingest->upload_id ? ingest->upload_id : ingest->filename,
             object ? " object=" : "", object ? object : "");
    return 0;
}

int
rp_library_ingest (rp_blobstore_t *blobs, rp_db_t *db, rp_blob_writer_t **writer_p,
                   const rp_ingest_t *ingest, rp_ingested_t *out, char *err, size_t errlen)
{
    int rc = s_ingest (blobs, db, writer_p, ingest, out, err, errlen);
    //  Bytes the storage or the database could not take, for the EMF
    //  documents (engine/metrics.h); refusals are counted by who answers
    //  them (the gateway), uploads on success (s_ingest)
    if (rc == RP_UNAVAILABLE || rc == RP_ERROR)
        rp_metrics_failure (RP_FAILURE_STORAGE_UNAVAILABLE);
    return rc;
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
    if ((rc == RP_CONFLICT || rc == RP_NOT_FOUND)
    &&  rp_db_tus_get (db, user_id, photo_id, &upload, ignore, sizeof ignore) == 0) {
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
    rp_fault_hold ("HOLD_DELETE_MS");
    //  The tombstone is in; the bytes go now unless a row refers to them
    //  again by the time the collection holds the lock
    bool removed = false;
    char why [256];
    if (unreferenced && rp_library_collect (blobs, db, sha256, &removed, why, sizeof why))
        rp_warn ("library", "photo=%s deleted; its bytes are left for a later collection: %s", id, why);
    rp_info ("library", "deleted photo=%s%s", id, removed ? ", bytes removed" : "");
    return 0;
}

int
rp_library_collect_all (rp_blobstore_t *blobs, rp_db_t *db, int *removed, char *err, size_t errlen)
{
    *removed = 0;
    json_t *tombstones = NULL;
    if (rp_db_bytes_tombstones (db, 1000, &tombstones, err, errlen))
        return -1;
    size_t index;
    json_t *sha256;
    int rc = 0;
    json_array_foreach (tombstones, index, sha256) {
        bool gone = false;
        char why [256];
        if (rp_library_collect (blobs, db, json_string_value (sha256), &gone, why, sizeof why)) {
            snprintf (err, errlen, "%s", why);
            rc = -1;                //  on to the next: one S3 failure is not all of them
        }
        *removed += gone;
    }
    json_decref (tombstones);
    return rc;
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
    //  Not for safety (the collection holds the lock): so that an upload
    //  in flight on another engine need not put its bytes back
    if (age_s < sweep->grace_s)
        return 0;
    bool removed = false, storage_failed = false;
    char err [256];
    int rc = s_collect (sweep->blobs, sweep->db, sha256, &removed, &storage_failed, err, sizeof err);
    if (rc && !storage_failed) {
        rp_warn ("library", "the sweep stops: %s", err);
        sweep->failed = 1;
        return 1;                   //  the database is unwell: stop, remove nothing more
    }
    if (removed) {
        rp_info ("library", "removed unreferenced bytes sha256=%.12s (age %llds)", sha256, (long long) age_s);
        sweep->removed++;
    }
    return 0;
}

int64_t
rp_library_minute_ms (void)
{
    //  RP_FAULT_MINUTE_MS: a shorter minute, for tests (engine/fault.h)
    int64_t minute_ms = rp_fault_value ("MINUTE_MS");
    return minute_ms > 0 ? minute_ms : 60000;
}

int64_t
rp_library_stale_ms (const rp_config_t *config)
{
    //  Past every try the broker would make, twice over, and a tick of the
    //  sweep that looks
    return 2 * config->broker_job_timeout_ms * config->broker_max_attempts + rp_library_minute_ms ();
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
    //  And what deletes left for a later collection
    int collected = 0;
    char why [256];
    if (rp_library_collect_all (blobs, db, &collected, why, sizeof why))
        rp_warn ("library", "recovery: some tombstones stay for a later collection: %s", why);
    sweep.removed += collected;
    rp_info ("library", "recovery: %d photos queued again, %d temporary files and %d unreferenced "
             "originals removed duration=%lld", requeued, removed_tmp, sweep.removed,
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
