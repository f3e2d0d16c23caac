/*  engine/library.c: see library.h. */
#include "library.h"
#include "log.h"
#include "sniff.h"

#include <errno.h>
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
    if (rp_blob_put_file (blobs, path, config->limits_max_upload_bytes, out->sha256, &out->bytes,
                          &existed, head, sizeof head, err, errlen))
        return -1;
    //  Sniff again what was stored: the file may have changed under us
    out->content_type = s_check_type (head, (size_t) (out->bytes < RP_SNIFF_BYTES ? out->bytes : RP_SNIFF_BYTES),
                                      err, errlen);
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
    if (rp_blob_commit (writer_p, out->sha256, &existed, err, errlen))
        return -1;
    if (s_commit_row (blobs, db, user_id, batch_id, filename, tags, existed, out, err, errlen))
        return -1;
    rp_info ("library", "stored photo=%s sha256=%.12s bytes=%lld%s file=%s", out->id, out->sha256,
             (long long) out->bytes, out->duplicate ? " duplicate" : "", filename);
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

int
rp_library_recover (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                    char *err, size_t errlen)
{
    int64_t started = rp_clock_ms ();
    int requeued = 0;
    if (rp_db_photo_requeue_processing (db, &requeued, err, errlen))
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
    rp_blobstore_t *blobs = rp_blobstore_open_disk (config->data_dir, err, errlen);
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
