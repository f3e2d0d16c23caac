/*  actors/store/blobstore.h: content-addressed storage for photo bytes.

    An original lives at <root>/objects/ab/cd/<sha256>; its derivatives beside
    it as <sha256>.<name>.<ext>. The same bytes stored twice are stored once.
    Writes stream into a temporary file under <root>/objects/tmp while their
    SHA-256 is computed, are fsync'd, and renamed into place; the folder is
    fsync'd too, so a committed blob survives a crash. The backend sits
    behind the ops table so an S3 backend can take its place.

    Thread safety: a blobstore is plain configuration and may be shared
    read-only; each writer belongs to the one thread that made it.
*/
#ifndef RP_BLOBSTORE_H
#define RP_BLOBSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _rp_blobstore_t rp_blobstore_t;
typedef struct _rp_blob_writer_t rp_blob_writer_t;

//  Open the disk backend rooted at `dir` (made if missing). NULL with err.
rp_blobstore_t *rp_blobstore_open_disk (const char *dir, char *err, size_t errlen);
void rp_blobstore_close (rp_blobstore_t **self_p);

//  Start a new blob. At most max_bytes may be written (a hard limit: going
//  over is an ordinary error). NULL with err.
rp_blob_writer_t *rp_blob_begin (rp_blobstore_t *self, int64_t max_bytes, char *err, size_t errlen);
//  Append bytes. -1 with err on an I/O error or when over max_bytes; the
//  writer must then be aborted.
int rp_blob_write (rp_blob_writer_t *writer, const void *data, size_t size, char *err, size_t errlen);
//  Bytes written so far, and the first bytes (for sniffing the type).
int64_t rp_blob_size (rp_blob_writer_t *writer);
const unsigned char *rp_blob_head (rp_blob_writer_t *writer, size_t *size);
//  Make the blob durable under its content address. Sets sha256 (hex) and
//  *existed (the same bytes were already stored: nothing new was written).
//  Destroys the writer, whatever the outcome; on error nothing is stored.
int rp_blob_commit (rp_blob_writer_t **writer_p, char sha256 [65], bool *existed,
                    char *err, size_t errlen);
//  Throw the blob away. Safe on NULL.
void rp_blob_abort (rp_blob_writer_t **writer_p);

//  Store a whole file (convenience over begin/write/commit).
int rp_blob_put_file (rp_blobstore_t *self, const char *path, int64_t max_bytes,
                      char sha256 [65], int64_t *size, bool *existed,
                      unsigned char *head, size_t headlen, char *err, size_t errlen);

//  The local path of an original ("<root>/objects/ab/cd/<sha>") into buf.
int rp_blob_path (rp_blobstore_t *self, const char *sha256, char *buf, size_t size);
//  True when the original is stored.
bool rp_blob_exists (rp_blobstore_t *self, const char *sha256);
//  Delete an original and all its derivatives. Missing files are no error.
int rp_blob_delete (rp_blobstore_t *self, const char *sha256, char *err, size_t errlen);

//  Remove temporary files left by interrupted writes, those not touched for
//  older_than_s seconds (a live upload keeps its file fresh). *removed = how many.
int rp_blobstore_clean_tmp (rp_blobstore_t *self, int64_t older_than_s, int *removed);

//  Call fn for every stored original (sha256), for orphan sweeps. Stops
//  early when fn returns non-zero.
typedef int (rp_blob_each_fn) (const char *sha256, int64_t age_s, void *arg);
int rp_blobstore_each (rp_blobstore_t *self, rp_blob_each_fn *fn, void *arg);

#endif
