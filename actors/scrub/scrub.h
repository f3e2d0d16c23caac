/*  actors/scrub/scrub.h: bit-rot checks of the stored photos.

    One check takes one address (the sha256 of an original, shared by every
    photo with those bytes): the original is read again whole and its
    SHA-256 compared with its name, each configured derivative must be
    there and decode (libvips: header and every pixel), and one that is
    lost or does not decode is made again from the original through the
    resize job's own code (rp_resize_photo) when the original is sound.
    What it found goes to the database (rp_db_scrub_mark: integrity "ok" or
    "damaged", checked_at now, on every photo with the address). A damaged
    original is an ERROR line naming a photo, the expected and the actual
    hash; nothing is ever deleted (the bytes stay for whoever can mend
    them: a backup, the S3 version history).

    S3 mode (storage.backend = s3): the bucket is the store. The original's
    object must be there (HEAD) with the row's size, and is downloaded and
    hashed: its SHA-256 must be its name, and for an object stored in one
    PUT its ETag must be the MD5 of the bytes downloaded. A multipart
    object's ETag ("<md5 of the parts' MD5s>-<parts>") depends on the part
    size of the upload that made it: only its form is checked; the SHA-256
    of the whole download covers its bytes. Derivatives are HEAD'ed and
    downloaded and decoded the same way, and made again into the local
    cache and stored in S3. The local cache is not checked (it is a copy).

    Reads are throttled to rate_bytes_s (0: as fast as storage gives them).
    A scrub belongs to one thread (its own database connection).
*/
#ifndef RP_SCRUB_H
#define RP_SCRUB_H

#include <czmq.h>
#include <jansson.h>
#include <stdint.h>

#include "engine/config.h"

typedef struct {
    int64_t checked;            //  addresses checked to the end
    int64_t bytes;              //  bytes of originals read
    int64_t damaged;            //  originals missing or not hashing to their name
    int64_t regenerated;        //  derivatives made again
    int64_t unrepaired;         //  derivatives lost or damaged that could not be made again
    int64_t errors;             //  checks that could not finish (storage or database away)
} rp_scrub_counts_t;

typedef struct _rp_scrub_t rp_scrub_t;

//  Open the configured blob store and database (schema migrated). NULL with err.
rp_scrub_t *rp_scrub_new (const rp_config_t *config, int64_t rate_bytes_s, char *err, size_t errlen);
void rp_scrub_destroy (rp_scrub_t **self_p);
//  Sleep through this socket (the background actor's pipe): a message on
//  it ends any wait at once and rp_scrub_stopping turns true.
void rp_scrub_set_pipe (rp_scrub_t *self, zsock_t *pipe);
bool rp_scrub_stopping (rp_scrub_t *self);

//  Check one address (what rp_db_scrub_due lists), adding what was found
//  to *counts (and to the process's metrics). *finding: NULL when all was
//  well, else a JSON object (caller decrefs) {"sha256","photo","integrity",
//  "expected","actual","regenerated":[names],"unrepaired":[names],
//  "error"}. 0 when checked; RP_UNAVAILABLE when storage or the database
//  could not be reached (nothing was marked; try later).
int rp_scrub_address (rp_scrub_t *self, const char *sha256, int64_t bytes, const char *photo_id,
                      rp_scrub_counts_t *counts, json_t **finding, char *err, size_t errlen);

//  A whole pass over every complete photo, as `rapidphoto scrub` runs it:
//  progress (every 100 addresses or 10 s) to progress_fn, each finding to
//  finding_fn. Stops early on SIGINT/SIGTERM. 0, or -1 with err when the
//  database failed.
typedef void (rp_scrub_progress_fn) (const rp_scrub_counts_t *counts, bool done, void *arg);
typedef void (rp_scrub_finding_fn) (json_t *finding, void *arg);
int rp_scrub_pass (rp_scrub_t *self, rp_scrub_counts_t *counts, rp_scrub_progress_fn *progress_fn,
                   rp_scrub_finding_fn *finding_fn, void *arg, char *err, size_t errlen);

//  The background scrub (serve, pipeline): an actor that checks the photos
//  due (never checked, or checked scrub.recheck_s ago), oldest check
//  first, at scrub.rate_mb_s, on a thread at idle CPU and I/O priority.
//  args: a copy of the config (read during start-up). $TERM stops it
//  within one chunk of reading.
void rp_scrub_actor (zsock_t *pipe, void *args);

#endif
