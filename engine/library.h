/*  engine/library.h: the photo library's operations that span bytes and
    metadata: ingest, delete, recovery. Used by `rapidphoto import`, the
    pipeline actor at start-up, and (next) the HTTP gateway, so an import
    takes exactly the path an upload takes.

    The caller passes its own blob store and database connection (one per
    actor); nothing here keeps state.
*/
#ifndef RP_LIBRARY_H
#define RP_LIBRARY_H

#include <stdbool.h>
#include "actors/store/blobstore.h"
#include "config.h"
#include "db/db.h"

typedef struct {
    char id [RP_ID_MAX];            //  the photo (the existing one when duplicate)
    char batch_id [RP_ID_MAX];
    char sha256 [65];
    int64_t bytes;
    const char *content_type;       //  static string
    bool duplicate;                 //  the user already had these bytes
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
//  uploads). Consumes the writer.
int rp_library_ingest_writer (rp_blobstore_t *blobs, rp_db_t *db, rp_blob_writer_t **writer_p,
                              const char *user_id, const char *batch_id, const char *filename,
                              const char *tags, rp_ingested_t *out, char *err, size_t errlen);

//  Delete a user's photo; its bytes go when no photo refers to them any more.
//  RP_DB_NOT_FOUND when it is not the user's.
int rp_library_delete (rp_blobstore_t *blobs, rp_db_t *db, const char *user_id, const char *id,
                       char *err, size_t errlen);

//  Start-up recovery: photos left processing are queued again, temporary
//  files older than storage.orphan_grace_s are removed, and stored bytes
//  that no photo refers to (a crash between storing and committing) and
//  older than the grace are removed. Logs what it did.
int rp_library_recover (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                        char *err, size_t errlen);

//  For commands that start an engine: open the database, apply migrations,
//  open the blob store and run recovery, then close both (the actors open
//  their own). 0 or -1 with err.
int rp_library_open_and_recover (const rp_config_t *config, char *err, size_t errlen);

#endif
