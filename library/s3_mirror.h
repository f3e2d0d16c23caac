/*  library/s3_mirror.h: the S3 side of the blob store.

    With storage.backend = s3 the bucket is where photo bytes live; the
    data folder is each engine's local cache of them (workers decode from
    local files). Keys are the configured prefix followed by a relative
    name: "objects/ab/cd/<sha256>" for an original, "...<sha256>.<name>.<ext>"
    for a derivative, "uploads/<photo id>" for a presigned upload,
    "incoming/<user>/..." for operators' bulk imports, "streams/<random>"
    for an upload streamed to S3 while it arrives (below).

    Thread safety: a mirror is shared by all threads of a process. It keeps
    a small pool of S3 clients (one curl handle each, so connections are
    reused); each call takes one for its duration. Credentials come from
    one provider (environment or ECS endpoint) and a client whose
    credentials were refreshed is made again.

    Returns: 0; RP_NOT_FOUND where an object may be absent; -1 with err
    naming S3's answer or why it could not be reached. The S3 client has
    already retried with backoff and jitter by then.
*/
#ifndef RP_S3_MIRROR_H
#define RP_S3_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/aws/s3.h"
#include "engine/config.h"

typedef struct _rp_s3_mirror_t rp_s3_mirror_t;

//  For config (storage.s3_bucket, storage.s3_prefix) and the AWS settings
//  of the environment. NULL with err (no credentials, no bucket).
rp_s3_mirror_t *rp_s3_mirror_new (const rp_config_t *config, char *err, size_t errlen);
void rp_s3_mirror_destroy (rp_s3_mirror_t **self_p);

//  The full key of a relative name (prefix + relative), whole: -1 with err
//  when it is longer than S3 takes (RP_S3_KEY_MAX bytes), never cut short
//  (a key cut short names another object).
int rp_s3_mirror_key (rp_s3_mirror_t *self, const char *relative, char key [RP_S3_KEY_MAX + 1], char *err,
                      size_t errlen);
const char *rp_s3_mirror_bucket (rp_s3_mirror_t *self);
const char *rp_s3_mirror_prefix (rp_s3_mirror_t *self);

//  Store a local file under relative. maybe_there: ask first, and when the
//  object is there with the same size (content-addressed names: the same
//  bytes) send nothing; else PUT at once (one request instead of two for
//  bytes seen for the first time).
int rp_s3_mirror_put (rp_s3_mirror_t *self, const char *relative, const char *path,
                      const char *content_type, bool maybe_there, char *err, size_t errlen);
//  The object into a local file (written as is; caller renames): the
//  whole of it, or (max_bytes >= 0) at most its first max_bytes + 1 bytes,
//  so a caller can tell an object over its limit without taking it all.
int rp_s3_mirror_get (rp_s3_mirror_t *self, const char *relative, const char *path,
                      int64_t max_bytes, char *err, size_t errlen);
int rp_s3_mirror_head (rp_s3_mirror_t *self, const char *relative, int64_t *size,
                       char etag [RP_S3_ETAG_MAX], char *err, size_t errlen);
int rp_s3_mirror_delete (rp_s3_mirror_t *self, const char *relative, char *err, size_t errlen);
//  A presigned URL for method on relative, valid expires_s, binding the
//  body's length when content_length >= 0 (rp_s3_presign); *url malloc'ed.
int rp_s3_mirror_presign (rp_s3_mirror_t *self, const char *method, const char *relative,
                          int expires_s, int64_t content_length, char **url, char *err, size_t errlen);
//  Relative names under relative_prefix, after start_after (relative; NULL
//  or "" from the first), at most max_keys: *names a JSON array (caller
//  decrefs); *truncated when there are more.
int rp_s3_mirror_list (rp_s3_mirror_t *self, const char *relative_prefix, const char *start_after,
                       int max_keys, json_t **names, bool *truncated, char *err, size_t errlen);
//  Can S3 be reached, and does it know our bucket and credentials? A HEAD
//  on a probe key, one try: 0 when S3 answered (absent is fine).
int rp_s3_mirror_ping (rp_s3_mirror_t *self, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Streams: a large upload sent to S3 while its bytes still arrive.
//
//  Its address (the SHA-256) is known only at the last byte, unless the
//  client declared it (X-Content-SHA256), so the bytes go to a key of
//  their own, "streams/<random>", as a multipart upload:
//  a thread of the stream's own sends each RP_S3_STREAM_PART bytes of the
//  local file as a part as soon as they are written (grow says how far
//  the file is), and finish sends the rest, completes the upload and
//  copies the object to its address inside S3 (CopyObject; the
//  streams/ object is then deleted). The acknowledgement thus follows the
//  last byte by one part, a completion and a copy, not by the whole
//  object's PUT; with a declared address, by one part and a completion. Any failure aborts the multipart upload; finish then
//  says so and the caller falls back to a whole PUT. Objects left under
//  streams/ by a crash are reaped by the bucket's lifecycle rules
//  (infrastructure/modules/storage). The writer that owns a stream uses
//  it from one thread.

#define RP_S3_STREAM_PART (8LL << 20)   //  8 MiB; S3 takes parts of 5 MiB and more

typedef struct _rp_s3_stream_t rp_s3_stream_t;

//  Start streaming the file at path (being written; its first part may
//  not be there yet). address: NULL, or the relative name the bytes will
//  have when the client declared their SHA-256 up front: the parts then go
//  straight there (nothing to copy at the end; when an object of the final
//  size is already there, nothing is sent), and the caller must never
//  finish a stream whose bytes turned out to be others (abort it). NULL
//  with err (no credentials, no thread).
rp_s3_stream_t *rp_s3_stream_begin (rp_s3_mirror_t *self, const char *path, const char *content_type,
                                    const char *address, char *err, size_t errlen);
//  The file now holds `size` bytes.
void rp_s3_stream_grow (rp_s3_stream_t *stream, int64_t size);
//  The file is whole at `size` bytes: store it at relative (the address
//  given at begin, if one was). maybe_there: ask first whether an object
//  of that size is there (then the stream is dropped and nothing is
//  copied). 0, or -1 with err (the stream is gone
//  either way; nothing of it is left in S3 but what a failed delete may
//  leave under streams/).
int rp_s3_stream_finish (rp_s3_stream_t **stream_p, int64_t size, const char *relative, bool maybe_there,
                         char *err, size_t errlen);
//  Give the stream up: the part being sent ends, the upload is aborted.
void rp_s3_stream_abort (rp_s3_stream_t **stream_p);

#endif
