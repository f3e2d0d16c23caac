/*  library/library.h: the photo library's operations that span bytes and
    metadata: ingest, delete, recovery.

    INGEST: one path, whichever way the bytes came. rp_library_ingest takes
    them from where they are (a blob writer holding them, or an object in
    the bucket) to a committed row: the photo queued, or found to be a
    duplicate of one the user has. Everything that takes photos in goes
    through it:
        POST /photos, multipart and raw     gateway/upload.c    writer, new row
        tus, once the last byte is in       gateway/tus.c       writer, upload row
        presigned upload completed          rp_library_adopt_upload (the
                                            complete call, the ingest bridge)
                                                                object, upload row
        S3 bulk import (incoming/)          actors/bridges      object, new row
        `rapidphoto import`                 app/cmd_library.c   writer, new row
    so the type check (magic bytes, rp_sniff_check), the check against what
    the client declared, the order (bytes durable before the row), the
    answer on failure and the undo are written once, here. What callers
    keep is theirs alone: upload.c refuses early and all or nothing over
    several files, tus assembles its parts and holds its lease and folder,
    a presigned upload reads what was declared from its row and deletes its
    object when done.

    The caller passes its own blob store and database connection (one per
    actor); nothing here keeps state. Statuses are engine/status.h's.
*/
#ifndef RP_LIBRARY_H
#define RP_LIBRARY_H

#include <stdbool.h>
#include "engine/config.h"
#include "engine/db/db.h"
#include "engine/status.h"
#include "library/blobstore.h"

//  What to ingest, and into which row
typedef struct {
    //  Where the bytes are when no writer is passed: an object in the bucket
    //  (storage.backend = s3), "uploads/<id>" or "incoming/<user>/...", of
    //  which at most max_bytes are taken (an object over it is refused)
    const char *object;
    int64_t max_bytes;
    //  What the client declared, when it did (a presigned upload): the size
    //  (-1: not declared) and the SHA-256 (NULL: not declared). Bytes that
    //  differ are refused before anything is stored.
    int64_t declared_bytes;
    const char *declared_sha256;
    //  The row: an uploading photo (a resumable or presigned upload, by its
    //  id) that now goes queued; or, when upload_id is NULL, a new queued
    //  photo of user_id named filename (as the caller cleaned it), in
    //  batch_id (NULL: a new batch), with tags (NULL or comma-separated).
    const char *upload_id;
    //  The request holding the upload's lease (tus), or NULL: only while it
    //  still holds it is the upload finished (RP_CONFLICT otherwise)
    const char *upload_owner;
    const char *user_id;
    const char *batch_id;
    const char *filename;
    const char *tags;
} rp_ingest_t;

typedef struct {
    char id [RP_ID_MAX];            //  the photo (the existing one when duplicate)
    char batch_id [RP_ID_MAX];      //  new rows: the batch used
    char sha256 [65];
    int64_t bytes;
    const char *content_type;       //  static string
    bool duplicate;                 //  the user already had these bytes
    bool queued;                    //  this call queued the photo
} rp_ingested_t;

//  Take bytes in: type by their first bytes, then what was declared, then
//  the bytes made durable under their content address, then the row
//  committed, in that order. 0 when both are durable (the point at which
//  an upload may be acknowledged): out says which photo. writer_p: the
//  writer holding the bytes, consumed whatever the outcome; NULL (or
//  *writer_p NULL) to take ingest->object instead. Otherwise nothing new
//  is left stored, and:
//    RP_REFUSED      the bytes are not a supported image, or not what was
//                    declared, or the object is empty or too big; or the
//                    row refused the input (a batch id, tag or file name).
//                    err is the reason a user sees. For an upload row the
//                    photo is failed with it (when that cannot be written:
//                    -1, and the upload stays as it was)
//    RP_NOT_FOUND    the upload's photo is no longer uploading (deleted);
//                    a batch_id of another user's
//    RP_CONFLICT     another call finished the upload, or upload_owner
//                    lost the lease: nothing was changed
//    RP_NOT_YET      the object is not in the bucket yet
//    RP_UNAVAILABLE  S3 cannot be reached: try again later
//    -1              storage or the database failed: try again later
int rp_library_ingest (rp_blobstore_t *blobs, rp_db_t *db, rp_blob_writer_t **writer_p,
                       const rp_ingest_t *ingest, rp_ingested_t *out, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Presigned uploads (storage.backend = s3)

//  A presigned upload's bytes arrived ("uploads/<id>"): ingest them against
//  the size and SHA-256 presign declared (the upload row's length and
//  metadata), then delete the upload object. Idempotent: a finished upload
//  answers its photo again (out->queued false). user_id NULL: anyone's (the
//  ingest bridge). 0; RP_NOT_FOUND (no such upload); RP_NOT_YET,
//  RP_REFUSED (the photo is failed with the reason), RP_UNAVAILABLE, -1 as
//  rp_library_ingest.
int rp_library_adopt_upload (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                             const char *user_id, const char *photo_id, rp_ingested_t *out,
                             char *err, size_t errlen);
//  The metadata a presigned upload's row keeps (tus form: filename and
//  sha256, base64) into out.
int rp_library_presign_metadata (const char *filename, const char *sha256, char *out, size_t outlen);

//  Delete a user's photo. Its bytes go when no photo refers to them any
//  more: a tombstone is recorded with the delete and they are collected at
//  once (or, when that fails, by a later collection). RP_NOT_FOUND when it
//  is not the user's.
int rp_library_delete (rp_blobstore_t *blobs, rp_db_t *db, const char *user_id, const char *id,
                       char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  The collection of bytes no photo refers to (library.c's DESIGN): the only
//  way stored bytes are ever removed.

//  Collect one address: under its lock, when no photo refers to it, its
//  bytes (original and derivatives, local and S3) go (*removed), then its
//  tombstone. RP_UNAVAILABLE when S3 cannot be reached (nothing changed).
int rp_library_collect (rp_blobstore_t *blobs, rp_db_t *db, const char *sha256, bool *removed,
                        char *err, size_t errlen);
//  Collect every address with a tombstone (at most 1000 a call): the
//  pipeline's minute tick. *removed: how many had their bytes removed. -1
//  when one failed (the others were still tried).
int rp_library_collect_all (rp_blobstore_t *blobs, rp_db_t *db, int *removed, char *err, size_t errlen);
//  Bytes may no longer be referred to (an undo, a photo deleted while it
//  was processing): a tombstone, and a collection now. What fails is left
//  to a later collection (logged with why).
void rp_library_unreference (rp_blobstore_t *blobs, rp_db_t *db, const char *sha256, const char *why);

//  Start-up recovery: photos left processing are queued again, temporary
//  files older than storage.orphan_grace_s are removed, and stored bytes
//  older than the grace are collected (a crash between storing and
//  committing leaves bytes no photo refers to). Logs what it did.
//  The pipeline's minute: how often it looks for stuck photos and trims
//  its cache. 60 s; RP_FAULT_MINUTE_MS shortens it for tests.
int64_t rp_library_minute_ms (void);
//  How long a photo may stay processing before it is taken to be lost (its
//  engine died): longer than every try the broker makes, plus a minute.
int64_t rp_library_stale_ms (const rp_config_t *config);

int rp_library_recover (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                        char *err, size_t errlen);

//  For commands that start an engine: open the database, apply migrations,
//  open the blob store and run recovery, then close both (the actors open
//  their own). 0 or -1 with err.
int rp_library_open_and_recover (const rp_config_t *config, char *err, size_t errlen);

#endif
