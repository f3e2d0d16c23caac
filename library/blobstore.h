/*  library/blobstore.h: content-addressed storage for photo bytes.

    An original lives at <root>/objects/ab/cd/<sha256>; its derivatives beside
    it as <sha256>.<name>.<ext>. The same bytes stored twice are stored once.
    Writes stream into a temporary file under <root>/objects/tmp while their
    SHA-256 is computed, are fsync'd, and linked into place (the temporary
    then goes); the folder is fsync'd too, and every folder made is fsync'd
    into its parent, so a committed blob survives a crash. Folders are
    0700, files 0600: only the engine's user reads them.

    Nothing here decides when bytes may go: rp_blob_delete removes what it
    is told to. library.c removes bytes only through the collection, under
    the address's lock in the database (library.c's DESIGN).

    With storage.backend = s3 the bucket is the store and the folder is
    this engine's cache of it (s3_mirror.h): a commit is durable once S3
    has the object under "objects/ab/cd/<sha256>" (RP_UNAVAILABLE when
    S3 cannot be reached: nothing may be acknowledged), workers fetch an
    original they do not have (rp_blob_fetch), derivatives are pushed once
    made (rp_blob_push_derivatives), and delete removes the objects too.

    Thread safety: a blobstore is plain configuration and may be shared
    read-only; each writer belongs to the one thread that made it.
*/
#ifndef RP_BLOBSTORE_H
#define RP_BLOBSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/config.h"
#include "engine/status.h"
#include "library/s3_mirror.h"

typedef struct _rp_blobstore_t rp_blobstore_t;
typedef struct _rp_blob_writer_t rp_blob_writer_t;

//  Open the disk backend rooted at `dir` (made if missing). NULL with err.
rp_blobstore_t *rp_blobstore_open_disk (const char *dir, char *err, size_t errlen);
void rp_blobstore_close (rp_blobstore_t **self_p);
//  A disk store for scratch work that is thrown away when done (`rapidphoto
//  process`): as rp_blobstore_open_disk, but commits skip fsync, since
//  nothing in it must outlive a crash.
rp_blobstore_t *rp_blobstore_open_scratch (const char *dir, char *err, size_t errlen);
//  Open the store the configuration names: disk under data.dir, or S3 with
//  data.dir as the local cache. NULL with err.
rp_blobstore_t *rp_blobstore_open (const rp_config_t *config, char *err, size_t errlen);
//  The S3 side; NULL for the disk backend.
rp_s3_mirror_t *rp_blobstore_s3 (rp_blobstore_t *self);

//  True when text is a store address: the SHA-256 of an original, 64
//  lowercase hex digits and nothing else (what jobs name blobs by; a path,
//  "..", upper case or a suffix is not one).
bool rp_blob_is_address (const char *text);

//  A stored name relative to the store: "objects/ab/cd/<sha256><suffix>"
//  (suffix "" for the original, ".<derivative>.<ext>" for a derivative).
int rp_blob_relative (const char *sha256, const char *suffix, char *buf, size_t size);

//  Start a new blob. At most max_bytes may be written (a hard limit: going
//  over is an ordinary error). NULL with err.
rp_blob_writer_t *rp_blob_begin (rp_blobstore_t *self, int64_t max_bytes, char *err, size_t errlen);
//  Append bytes. -1 with err on an I/O error or when over max_bytes; the
//  writer must then be aborted.
int rp_blob_write (rp_blob_writer_t *writer, const void *data, size_t size, char *err, size_t errlen);
//  Bytes written so far, and the first bytes (for sniffing the type).
int64_t rp_blob_size (rp_blob_writer_t *writer);
const unsigned char *rp_blob_head (rp_blob_writer_t *writer, size_t *size);
//  The SHA-256 (hex) of the bytes written so far, before committing them;
//  writing may go on. 0 or -1.
int rp_blob_digest (rp_blob_writer_t *writer, char sha256 [65]);
//  The client declared the bytes' SHA-256 (64 hex characters, lower case)
//  before sending them. In S3 mode a large upload then streams straight to
//  its address instead of under streams/ (no copy at the end). The caller
//  checks the declaration against rp_blob_digest before storing; the store
//  never completes a stream at an address the bytes do not have.
void rp_blob_expect (rp_blob_writer_t *writer, const char *sha256);
//  Make the blob durable under its content address. Sets sha256 (hex) and
//  *existed (the same bytes were already stored: nothing new was written).
//  The writer stays, holding the bytes under a temporary name too, until
//  the caller aborts it (the address keeps them): so a caller that still
//  has a row to commit can put them back (rp_blob_restore). On error
//  nothing is stored and the writer is destroyed.
int rp_blob_store (rp_blob_writer_t **writer_p, char sha256 [65], bool *existed,
                   char *err, size_t errlen);
//  rp_blob_store, then the writer goes, whatever the outcome.
int rp_blob_commit (rp_blob_writer_t **writer_p, char sha256 [65], bool *existed,
                    char *err, size_t errlen);
//  After rp_blob_store: make sure the bytes are at their address (a
//  collection may have removed them since), linking them there again from
//  the writer's temporary name (S3: storing them again when the bucket
//  lacks them). *restored: they had gone and are back. 0; RP_UNAVAILABLE
//  when S3 cannot be reached; -1 with err.
int rp_blob_restore (rp_blob_writer_t *writer, bool *restored, char *err, size_t errlen);
//  Throw the blob away. Safe on NULL.
void rp_blob_abort (rp_blob_writer_t **writer_p);

//  A new blob holding a copy of a whole local file (at most max_bytes),
//  not committed yet. NULL with err (unreadable, too big, a write failed).
rp_blob_writer_t *rp_blob_begin_file (rp_blobstore_t *self, const char *path, int64_t max_bytes,
                                      char *err, size_t errlen);

//  The local path of an original ("<root>/objects/ab/cd/<sha>") into buf.
int rp_blob_path (rp_blobstore_t *self, const char *sha256, char *buf, size_t size);
//  True when the original is stored.
bool rp_blob_exists (rp_blobstore_t *self, const char *sha256);
//  Make sure the original is in the local cache (S3: download it, check
//  its SHA-256, move it into place; one already there is marked as just
//  used, so rp_blobstore_trim_cache keeps it). 0; RP_UNAVAILABLE (S3
//  away, or no room in the cache); -1 when the bytes are gone or damaged.
//  Disk backend: whether the file is there.
int rp_blob_fetch (rp_blobstore_t *self, const char *sha256, char *err, size_t errlen);
//  S3: store every derivative of this original that is in the cache.
//  Disk backend: nothing to do.
int rp_blob_push_derivatives (rp_blobstore_t *self, const char *sha256, char *err, size_t errlen);
//  S3: the object at `relative` (a presigned upload, a bulk import) into a
//  new blob, not committed yet (*writer_p; the caller commits or aborts
//  it), as rp_blob_begin_file does for a local file. RP_NOT_FOUND when
//  there is no such object; RP_REFUSED (err says which) when it is empty
//  or over max_bytes, of which at most max_bytes + 1 are ever downloaded;
//  RP_UNAVAILABLE when S3 cannot be reached; -1.
int rp_blob_import_object (rp_blobstore_t *self, const char *relative, int64_t max_bytes,
                           rp_blob_writer_t **writer_p, char *err, size_t errlen);

//  Delete an original and all its derivatives. Missing files are no error.
int rp_blob_delete (rp_blobstore_t *self, const char *sha256, char *err, size_t errlen);

//  Remove temporary files left by interrupted writes, those not touched for
//  older_than_s seconds (a live upload keeps its file fresh). *removed = how many.
int rp_blobstore_clean_tmp (rp_blobstore_t *self, int64_t older_than_s, int *removed);

//  S3: remove files from the local cache (originals and derivatives) not
//  written for older_than_s seconds, except those of an address keep says
//  is in use (keep NULL: none is); they are in S3 and are fetched again
//  when needed. Disk backend: nothing (the folder is the store). *removed =
//  how many.
typedef bool (rp_blob_keep_fn) (const char *sha256, void *arg);
int rp_blobstore_trim_cache (rp_blobstore_t *self, int64_t older_than_s, rp_blob_keep_fn *keep, void *arg,
                             int *removed);

//  Call fn for every stored original (sha256), for orphan sweeps. Stops
//  early when fn returns non-zero.
typedef int (rp_blob_each_fn) (const char *sha256, int64_t age_s, void *arg);
int rp_blobstore_each (rp_blobstore_t *self, rp_blob_each_fn *fn, void *arg);

#endif
