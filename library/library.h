/*  library/library.h: the photo library's operations that span bytes and
    metadata: ingest, delete, recovery. Used by `rapidphoto import`, the
    pipeline actor at start-up, and (next) the HTTP gateway, so an import
    takes exactly the path an upload takes.

    The caller passes its own blob store and database connection (one per
    actor); nothing here keeps state.
*/
#ifndef RP_LIBRARY_H
#define RP_LIBRARY_H

#include <stdbool.h>
#include "engine/config.h"
#include "engine/db/db.h"
#include "library/blobstore.h"

typedef struct {
    char id [RP_ID_MAX];            //  the photo (the existing one when duplicate)
    char batch_id [RP_ID_MAX];
    char sha256 [65];
    int64_t bytes;
    const char *content_type;       //  static string
    bool duplicate;                 //  the user already had these bytes
    bool queued;                    //  rp_library_adopt_upload: this call queued the photo
} rp_ingested_t;

//  Ingest one file for a user: type by its bytes (non-images are refused
//  and nothing is stored), bytes made durable, then the photo row committed
//  as queued, in that order. Returns 0 when both are durable (the point at
//  which an upload may be acknowledged); -1 with a reason otherwise, and
//  then nothing new is left behind. batch_id may be NULL (a new batch).
int rp_library_ingest_file (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                            const char *user_id, const char *batch_id, const char *path,
                            const char *filename, const char *tags, rp_ingested_t *out,
                            char *err, size_t errlen);

//  The same, for bytes already written through a blob writer (streaming
//  uploads). Consumes the writer. RP_UNAVAILABLE when S3 could not
//  store the bytes; the row's statuses (RP_REFUSED: a batch id, tag or
//  file name it does not take; RP_NOT_FOUND: another user's batch).
int rp_library_ingest_writer (rp_blobstore_t *blobs, rp_db_t *db, rp_blob_writer_t **writer_p,
                              const char *user_id, const char *batch_id, const char *filename,
                              const char *tags, rp_ingested_t *out, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  S3 (storage.backend = s3): objects that arrive in the bucket

//  Bulk import: the object at `relative` ("incoming/<user>/<name>") becomes
//  a queued photo of user_id named filename, as an upload would (a
//  duplicate of the user's bytes makes no new photo). RP_NOT_YET,
//  RP_REFUSED (not an image; nothing kept), RP_UNAVAILABLE, -1.
int rp_library_import_object (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                              const char *user_id, const char *relative, const char *filename,
                              rp_ingested_t *out, char *err, size_t errlen);

//  A presigned upload's bytes arrived ("uploads/<id>"): check their size
//  and SHA-256 against what presign declared (the upload row's length and
//  metadata), store them under their content address, queue the photo
//  (uploading -> queued, or removed as a duplicate), and delete the upload
//  object. Idempotent: a finished upload answers its photo again.
//  user_id NULL: anyone's (the ingest bridge). RP_NOT_FOUND (no such
//  upload), RP_NOT_YET, RP_REFUSED (the photo is failed
//  with the reason), RP_UNAVAILABLE, -1.
int rp_library_adopt_upload (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                             const char *user_id, const char *photo_id, rp_ingested_t *out,
                             char *err, size_t errlen);
//  The metadata a presigned upload's row keeps (tus form: filename and
//  sha256, base64) into out.
int rp_library_presign_metadata (const char *filename, const char *sha256, char *out, size_t outlen);

//  Delete a user's photo; its bytes go when no photo refers to them any more.
//  RP_NOT_FOUND when it is not the user's.
int rp_library_delete (rp_blobstore_t *blobs, rp_db_t *db, const char *user_id, const char *id,
                       char *err, size_t errlen);

//  Start-up recovery: photos left processing are queued again, temporary
//  files older than storage.orphan_grace_s are removed, and stored bytes
//  that no photo refers to (a crash between storing and committing) and
//  older than the grace are removed. Logs what it did.
//  How long a photo may stay processing before it is taken to be lost (its
//  engine died): longer than every try the broker makes.
int64_t rp_library_stale_ms (const rp_config_t *config);

int rp_library_recover (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                        char *err, size_t errlen);

//  For commands that start an engine: open the database, apply migrations,
//  open the blob store and run recovery, then close both (the actors open
//  their own). 0 or -1 with err.
int rp_library_open_and_recover (const rp_config_t *config, char *err, size_t errlen);

#endif
