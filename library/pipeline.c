/*  library/pipeline.c: the photo state machine, as an actor.

    DESIGN
    Thread: one zactor thread. Owns its own database connection (rp_db_t),
    a blob store handle, and a DEALER to the broker's frontend. Shares
    nothing.
    Loop: every tick (250 ms), or at once on WAKE from its pipe or from its
    PULL socket bound at RP_PIPELINE_WAKE (the gateway and the SQS ingest
    bridge push there after photos commit; several producers, no reply),
    or at once when a photo leaves and the last claim filled every place
    (more may be waiting), it claims
    due queued photos (queued -> processing, attempts + 1, one transaction;
    safe across engines) up to pipeline.in_flight photos at a time, and for
    each SUBMITs two jobs to the broker, resize and exif, naming the
    original by its store address (src = its SHA-256, never a path: a
    worker finds it in its own store, and the derivatives land beside it).
    Job ids are <photo>.<attempt>.<kind>.
    Checks: a worker may be buggy or not ours, so when both RESULTs are in
    what they say is checked against what we know before it reaches a row
    (s_check_results): the type is the one the stored bytes sniff as, the
    size within limits.max_pixels, the SHA-256 and byte count the
    original's, the date and EXIF strings sane and bounded, the perceptual
    hash 16 hex characters (or absent, from an earlier release), every
    derivative stored with the size it claims, the placeholder (thumbhash)
    null or base64 of a bounded length. A result that fails counts
    as a lost attempt (retried, below), logged with the worker's name.
    Outcomes: when both RESULTs are in, one transaction commits the photo:
      - both done                    processing -> complete, with size, type,
                                     date taken and EXIF
      - a handler said FAILED        processing -> failed with its reason:
                                     bad input fails the same way every time
      - the broker lost the job      processing -> queued again, due after
        (no worker answered; or a    pipeline.retry_base_ms * 2^(attempt-1),
        passing failure, S3 away;    until pipeline.max_attempts; then failed
        or a result failed a check)  with the last reason
    Stage times: each complete photo adds its workers' "timings", the
    jobs' wall time and the commit's to process-wide totals (a mutex-guarded
    table, the one thing shared: /metrics reads it; see pipeline.h).
    S3 (storage.backend = s3): before its jobs go out a photo's original is
    fetched into this engine's cache when it is not there (it came through
    another engine, or the ingest bridge); before a photo is committed
    complete its derivatives are stored in S3. While S3 is unreachable the
    pipeline claims nothing (backing off, with jitter, from 0.5 s to 8 s)
    and keeps finished photos until their derivatives are stored.
    A commit that fails (database away) is kept and tried again each tick;
    a crash before it leaves the photo processing, and start-up recovery
    (rp_library_recover) queues it again: jobs are idempotent, so running
    one twice is harmless.
    Stopping (engine/drain.h): while the process drains, it claims nothing
    and finishes what it holds; the photos it holds are counted in flight
    (RP_DRAIN_PHOTOS), which the stop waits for. At $TERM a finished photo
    gets one more try at its commit, and every other goes back to queued,
    its claim undone (rp_db_photo_release): none is left processing for
    recovery or another engine's stale sweep, unless the database is away.
    Pausing (PAUSE, answered with a signal when done; `rapidphoto lambda`
    sends it before Lambda may freeze the process): the same, but the
    actor lives on and claims nothing until RESUME. A frozen process thus
    holds no photo of anyone's: what it had not finished is queued again
    at once, for whichever engine or function comes first, instead of
    waiting for the stale sweep. Results that arrive later for a released
    photo are ignored (job ids carry the attempt).
    With several engines on one database, every
    minute each pipeline also queues again photos processing for longer
    than any live engine takes (rp_library_stale_ms): an engine that died
    mid-photo leaves nothing stuck, even when it never comes back. In S3
    mode the same minute trims the local cache of files written more than
    storage.orphan_grace_s ago, except those of photos in flight here: they
    are in S3 and fetched again if needed. And it collects the bytes that
    tombstones name (library.c's DESIGN), so bytes a failed collection left
    are removed by whichever engine comes first. A photo found deleted when
    its outcome is committed gets a tombstone and a collection at once: its
    jobs may have written derivatives after its bytes were collected.
*/
#include "library/pipeline.h"
#include "engine/alloc.h"
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/drain.h"
#include "engine/link.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/phash.h"
#include "engine/trace.h"
#include "engine/msg.h"
#include "engine/runtime.h"
#include "engine/thumbhash.h"
#include "engine/thread.h"
#include "engine/utf8.h"
#include "library/blobstore.h"
#include "library/library.h"
#include "library/sniff.h"

#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    char id [RP_ID_MAX];
    char sha256 [65];
    char filename [256];
    int attempts;
    json_t *resize;                 //  results, once in
    json_t *exif;
    char resize_worker [64];        //  who answered them, for logs
    char exif_worker [64];
    char *error;                    //  the first failure reason, if any
    bool lost;                      //  a job was lost, not refused: worth retrying
    int answers;
    bool finished;                  //  both in; waiting for its commit
    double submitted_ms;            //  when its jobs went to the broker
    double answered_ms;             //  when the second answer came
    int64_t commit_after;           //  rp_clock_ms: not before (S3 backoff)
    //  X-Ray: each processing is a trace of its own (engine/trace.h), its
    //  segment from claim to commit, its jobs' subsegments under it
    rp_trace_t trace;
    char segment [RP_TRACE_SPAN_MAX];
    double claimed_s;               //  epoch seconds
} s_photo_t;

//  Stage totals for rp_pipeline_stage_totals: a fixed table, since stages
//  are few (derivative names come from the config)
#define S_STAGES_MAX 24
static pthread_mutex_t s_stages_lock = PTHREAD_MUTEX_INITIALIZER;
static rp_stage_total_t s_stages [S_STAGES_MAX];
static int s_nstages;

//  Add ms to a stage's total; stages past the table's size are dropped.
//  Caller holds s_stages_lock.
static void
s_stage_add (const char *stage, size_t len, double ms)
{
    if (len == 0 || len >= sizeof s_stages [0].stage || !(ms >= 0))
        return;
    for (size_t i = 0; i < len; i++)        //  a Prometheus label value as is
        if (!isalnum ((unsigned char) stage [i]) && stage [i] != '_' && stage [i] != '-')
            return;
    rp_stage_total_t *total = NULL;
    for (int i = 0; i < s_nstages && !total; i++)
        if (strlen (s_stages [i].stage) == len && memcmp (s_stages [i].stage, stage, len) == 0)
            total = &s_stages [i];
    if (!total && s_nstages < S_STAGES_MAX) {
        total = &s_stages [s_nstages++];
        memcpy (total->stage, stage, len);
        total->stage [len] = 0;
    }
    if (total) {
        total->seconds += ms / 1000.0;
        total->count++;
        rp_metrics_processing (total->stage, ms);   //  and this interval's, for EMF
    }
}

//  A complete photo's stage times into the totals
static void
s_stages_record (s_photo_t *photo, double commit_ms)
{
    pthread_mutex_lock (&s_stages_lock);
    json_t *results [2] = { photo->exif, photo->resize };
    for (int k = 0; k < 2; k++) {
        json_t *timings = results [k] ? json_object_get (results [k], "timings") : NULL;
        const char *key;
        json_t *value;
        json_object_foreach (timings, key, value) {
            size_t len = strlen (key);
            if (json_is_number (value) && len > 3 && streq (key + len - 3, "_ms"))
                s_stage_add (key, len - 3, json_number_value (value));
        }
    }
    s_stage_add ("jobs", 4, photo->answered_ms - photo->submitted_ms);
    s_stage_add ("database", 8, commit_ms);
    pthread_mutex_unlock (&s_stages_lock);
}

int
rp_pipeline_stage_totals (rp_stage_total_t *totals, int max)
{
    pthread_mutex_lock (&s_stages_lock);
    int n = s_nstages < max ? s_nstages : max;
    if (n > 0)
        memcpy (totals, s_stages, sizeof (rp_stage_total_t) * (size_t) n);
    pthread_mutex_unlock (&s_stages_lock);
    return n;
}

typedef struct {
    zsock_t *pipe;
    zsock_t *broker;
    zsock_t *wakeups;               //  PULL at RP_PIPELINE_WAKE; NULL if taken
    rp_db_t *db;
    rp_blobstore_t *blobs;
    rp_pipeline_args_t args;
    zhash_t *photos;                //  id -> s_photo_t, in flight or awaiting commit
    bool wake;
    bool maybe_more;                //  the last claim filled the room: more may be queued
    bool paused;                    //  PAUSE: no claims until RESUME
    int64_t s3_down_until;          //  rp_clock_ms: no claims before (S3 unreachable)
    int64_t s3_backoff_ms;          //  the current wait; 0 while S3 answers
} s_pipeline_t;

//  S3 failed: wait longer before trying again (0.5 s doubling to 8 s, so
//  work resumes within seconds of S3's return, plus up to 50 % jitter so
//  engines do not return in step)
static int64_t
s_s3_backoff (s_pipeline_t *self)
{
    self->s3_backoff_ms = self->s3_backoff_ms ? self->s3_backoff_ms * 2 : 500;
    if (self->s3_backoff_ms > 8000)
        self->s3_backoff_ms = 8000;
    int64_t wait = self->s3_backoff_ms + (int64_t) (random () % (self->s3_backoff_ms / 2 + 1));
    self->s3_down_until = rp_clock_ms () + wait;
    return wait;
}

static void
s_photo_destroy (void *item)
{
    s_photo_t *photo = (s_photo_t *) item;
    json_decref (photo->resize);
    json_decref (photo->exif);
    free (photo->error);
    free (photo);
}

static void
s_submit (s_pipeline_t *self, s_photo_t *photo, const char *kind)
{
    rp_msg_t *msg = rp_msg_new (RP_MSG_SUBMIT);
    rp_msg_setf (&msg->job_id, "%s.%d.%s", photo->id, photo->attempts, kind);
    rp_msg_set (&msg->kind, kind);
    rp_msg_set (&msg->src, photo->sha256);        //  its store address
    rp_msg_set (&msg->photo_id, photo->id);
    char header [RP_TRACE_HEADER_MAX];
    rp_trace_header (&photo->trace, photo->segment, header);
    rp_msg_set (&msg->trace, header);
    rp_msg_send (msg, zsock_resolve (self->broker), NULL);
    rp_msg_destroy (&msg);
}

//  ---------------------------------------------------------------------------
//  Checking what workers answered

#define S_EXIF_STRING_MAX 256       //  actors/exif bounds its strings to this
#define S_EXIF_FIELDS_MAX 32

static int
s_refute (char *why, size_t whylen, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static int
s_refute (char *why, size_t whylen, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (why, whylen, fmt, args);
    va_end (args);
    return -1;
}

//  An integer in 1..max
static bool
s_positive (json_t *value, json_int_t max)
{
    return json_is_integer (value) && json_integer_value (value) > 0 && json_integer_value (value) <= max;
}

//  Bounded, valid UTF-8 as the database takes it
static bool
s_text_sane (json_t *value)
{
    size_t len = json_string_length (value);
    return len <= S_EXIF_STRING_MAX && rp_utf8_valid (json_string_value (value), len);
}

//  n digits at s, as a number within lo..hi
static bool
s_digits (const char *s, int n, int lo, int hi)
{
    int value = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit ((unsigned char) s [i]))
            return false;
        value = value * 10 + s [i] - '0';
    }
    return value >= lo && value <= hi;
}

//  "YYYY-MM-DDTHH:MM:SS", then nothing or "+HH:MM" / "-HH:MM"
static bool
s_date_sane (const char *s)
{
    size_t len = strlen (s);
    if ((len != 19 && len != 25)
    ||  !s_digits (s, 4, 1, 9999) || s [4] != '-' || !s_digits (s + 5, 2, 1, 12) || s [7] != '-'
    ||  !s_digits (s + 8, 2, 1, 31) || s [10] != 'T' || !s_digits (s + 11, 2, 0, 23) || s [13] != ':'
    ||  !s_digits (s + 14, 2, 0, 59) || s [16] != ':' || !s_digits (s + 17, 2, 0, 60))
        return false;
    return len == 19
        || ((s [19] == '+' || s [19] == '-') && s_digits (s + 20, 2, 0, 23) && s [22] == ':'
            && s_digits (s + 23, 2, 0, 59));
}

static bool
s_number_sane (json_t *value, double lo, double hi)
{
    return json_is_null (value)
        || (json_is_number (value) && isfinite (json_number_value (value))
            && json_number_value (value) >= lo && json_number_value (value) <= hi);
}

//  The EXIF job's "taken_at" and "exif": a sane date or null; an object of
//  at most S_EXIF_FIELDS_MAX fields, each null, a finite number or a sane
//  string, and "gps" null or {lat, lon, alt} in range.
static int
s_check_exif_fields (json_t *result, char *why, size_t whylen)
{
    json_t *taken = json_object_get (result, "taken_at");
    if (taken && !json_is_null (taken)
    &&  !(json_is_string (taken) && s_text_sane (taken) && s_date_sane (json_string_value (taken))))
        return s_refute (why, whylen, "taken_at is not a date (YYYY-MM-DDTHH:MM:SS[+HH:MM])");
    json_t *exif = json_object_get (result, "exif");
    if (!exif || json_is_null (exif))
        return 0;
    if (!json_is_object (exif) || json_object_size (exif) > S_EXIF_FIELDS_MAX)
        return s_refute (why, whylen, "exif is not an object of at most %d fields", S_EXIF_FIELDS_MAX);
    const char *key;
    json_t *value;
    json_object_foreach (exif, key, value) {
        if (strlen (key) > 64)
            return s_refute (why, whylen, "exif has a field name over 64 bytes");
        if (streq (key, "gps") && json_is_object (value)) {
            if (json_object_size (value) > 3
            ||  !s_number_sane (json_object_get (value, "lat"), -90, 90)
            ||  !s_number_sane (json_object_get (value, "lon"), -180, 180)
            ||  !s_number_sane (json_object_get (value, "alt"), -1e6, 1e6))
                return s_refute (why, whylen, "exif.gps is not {lat, lon, alt} in range");
        }
        else
        if (json_is_string (value)) {
            if (!s_text_sane (value))
                return s_refute (why, whylen, "exif.%.64s is not valid UTF-8 of at most %d bytes",
                                 key, S_EXIF_STRING_MAX);
        }
        else
        if (!s_number_sane (value, -1e300, 1e300))
            return s_refute (why, whylen, "exif.%.64s is neither a string, a number nor null", key);
    }
    return 0;
}

//  A derivative the resize job says it made: named in the config, in the
//  configured format and box, and stored (here, or in S3) with the bytes
//  it claims
static int
s_check_derivative (s_pipeline_t *self, s_photo_t *photo, const rp_derivative_t *spec, json_t *made,
                    char *why, size_t whylen)
{
    if (!json_is_object (made))
        return s_refute (why, whylen, "derivative %s is missing", spec->name);
    json_t *format = json_object_get (made, "format");
    //  No encoding of the box takes more than 8 bytes a pixel and a header
    json_int_t max_bytes = (json_int_t) spec->width * spec->height * 8 + (1 << 20);
    if (!json_is_string (format) || !streq (json_string_value (format), spec->format)
    ||  !s_positive (json_object_get (made, "width"), spec->width)
    ||  !s_positive (json_object_get (made, "height"), spec->height)
    ||  !s_positive (json_object_get (made, "bytes"), max_bytes))
        return s_refute (why, whylen, "derivative %s is not a %s within %dx%d with a size in bytes",
                         spec->name, spec->format, spec->width, spec->height);
    int64_t claimed = json_integer_value (json_object_get (made, "bytes"));
    const char *ext = rp_derivative_ext (spec->format, NULL);
    char suffix [64], path [PATH_MAX];
    snprintf (suffix, sizeof suffix, ".%s.%s", spec->name, ext ? ext : "bin");
    rp_blob_path (self->blobs, photo->sha256, path, sizeof path);
    size_t len = strlen (path);
    snprintf (path + len, sizeof path - len, "%s", suffix);
    struct stat st;
    int64_t stored = -1;
    if (stat (path, &st) == 0)
        stored = (int64_t) st.st_size;
    else
    if (rp_blobstore_s3 (self->blobs)) {
        //  A worker elsewhere stored it in S3 itself
        char relative [160], etag [RP_S3_ETAG_MAX], err [256];
        rp_blob_relative (photo->sha256, suffix, relative, sizeof relative);
        if (rp_s3_mirror_head (rp_blobstore_s3 (self->blobs), relative, &stored, etag, err, sizeof err))
            stored = -1;
    }
    if (stored != claimed)
        return s_refute (why, whylen, "derivative %s is %s, not the %lld bytes claimed", spec->name,
                         stored < 0 ? "not stored" : "stored with another size", (long long) claimed);
    return 0;
}

//  Both results, against what the pipeline knows. 0, or -1 with why (and
//  *who: the worker whose result it was).
static int
s_check_results (s_pipeline_t *self, s_photo_t *photo, const char **who, char *why, size_t whylen)
{
    //  The original, as stored (in S3 mode: in this engine's cache, fetched
    //  before the jobs went out)
    char path [PATH_MAX];
    struct stat st;
    const char *mime = NULL, *described = NULL;
    *who = "-";
    if (rp_blob_path (self->blobs, photo->sha256, path, sizeof path) || stat (path, &st)
    ||  rp_sniff_file (path, &mime, &described))
        return s_refute (why, whylen, "the original cannot be read to check the results");
    if (!mime)
        return s_refute (why, whylen, "the stored original is not an accepted image");

    json_t *exif = photo->exif;
    *who = photo->exif_worker;
    json_t *sha = json_object_get (exif, "sha256");
    json_t *exif_type = json_object_get (exif, "content_type");
    if (!json_is_object (exif))
        return s_refute (why, whylen, "the EXIF result is not an object");
    if (!json_is_string (sha) || !streq (json_string_value (sha), photo->sha256))
        return s_refute (why, whylen, "sha256 is not the photo's");
    if (!json_is_integer (json_object_get (exif, "bytes"))
    ||  json_integer_value (json_object_get (exif, "bytes")) != (json_int_t) st.st_size)
        return s_refute (why, whylen, "bytes is not the photo's size (%lld)", (long long) st.st_size);
    if (exif_type && !json_is_null (exif_type)
    &&  !(json_is_string (exif_type) && streq (json_string_value (exif_type), mime)))
        return s_refute (why, whylen, "the EXIF content_type is not what the stored bytes are (%s)", mime);
    if (s_check_exif_fields (exif, why, whylen))
        return -1;

    json_t *resize = photo->resize;
    *who = photo->resize_worker;
    json_t *type = json_object_get (resize, "content_type");
    json_t *width = json_object_get (resize, "width"), *height = json_object_get (resize, "height");
    json_int_t max_pixels = (json_int_t) self->args.config.limits_max_pixels;
    if (!json_is_object (resize))
        return s_refute (why, whylen, "the resize result is not an object");
    if (!json_is_string (type) || !streq (json_string_value (type), mime))
        return s_refute (why, whylen, "content_type is not what the stored bytes are (%s)", mime);
    if (!s_positive (width, max_pixels) || !s_positive (height, max_pixels / json_integer_value (width)))
        return s_refute (why, whylen, "width and height are not positive within limits.max_pixels");
    //  The placeholder: null, or the base64 of 5 to 32 bytes
    json_t *thumbhash = json_object_get (resize, "thumbhash");
    if (thumbhash && !json_is_null (thumbhash)
    &&  !(json_is_string (thumbhash)
          && rp_thumbhash_valid (json_string_value (thumbhash), json_string_length (thumbhash))))
        return s_refute (why, whylen, "thumbhash is neither null nor the base64 of %d bytes at most",
                         RP_THUMBHASH_MAX);
    //  A worker of an earlier release sends no phash: the photo has none
    json_t *phash = json_object_get (resize, "phash");
    uint64_t ignored;
    if (phash && !(json_is_string (phash) && rp_phash_parse (json_string_value (phash), &ignored) == 0))
        return s_refute (why, whylen, "phash is not 16 lowercase hex characters");
    json_t *made = json_object_get (resize, "derivatives");
    for (int i = 0; i < self->args.config.derivative_count; i++) {
        const rp_derivative_t *spec = &self->args.config.derivatives [i];
        if (s_check_derivative (self, photo, spec, json_object_get (made, spec->name), why, whylen))
            return -1;
    }
    return 0;
}

static void s_trace_send (const s_photo_t *photo, double end, const char *outcome);

//  S3: the original into this engine's cache. False when it cannot be
//  had now: the photo is queued again (S3 away) or failed (bytes gone).
static bool
s_fetched (s_pipeline_t *self, s_photo_t *photo)
{
    char err [512], ignore [256];
    //  S3 failed for an earlier photo of this claim: do not wait on it again
    int rc = rp_clock_ms () < self->s3_down_until && !rp_blob_exists (self->blobs, photo->sha256)
           ? RP_UNAVAILABLE : rp_blob_fetch (self->blobs, photo->sha256, err, sizeof err);
    if (rc == RP_UNAVAILABLE && rp_clock_ms () < self->s3_down_until && self->s3_backoff_ms)
        snprintf (err, sizeof err, "S3 cannot be reached (backing off)");
    if (rc == 0) {
        self->s3_backoff_ms = 0;
        return true;
    }
    int64_t retry = rc != RP_UNAVAILABLE ? 0
                  : rp_clock_ms () < self->s3_down_until ? self->s3_down_until - rp_clock_ms () + 1
                  : s_s3_backoff (self);
    rp_warn ("pipeline", "photo=%s cannot fetch its original: %s%s", photo->id, err,
             retry ? "; queued again" : "");
    if (rp_db_photo_fail (self->db, photo->id, err, retry, ignore, sizeof ignore))
        rp_warn ("pipeline", "photo=%s stays processing until recovery: %s", photo->id, ignore);
    else    //  failed for good (its bytes are gone), or queued again (S3 away)
        rp_metrics_failure (retry ? RP_FAILURE_STORAGE_UNAVAILABLE : RP_FAILURE_LOST);
    return false;
}

static void
s_claim (s_pipeline_t *self)
{
    int room = self->args.config.pipeline_in_flight - (int) zhash_size (self->photos);
    if (room <= 0 || rp_clock_ms () < self->s3_down_until || rp_draining ())
        return;
    json_t *claimed = NULL;
    char err [256];
    if (rp_db_photo_claim (self->db, room, &claimed, err, sizeof err)) {
        rp_warn ("pipeline", "cannot claim photos: %s", err);
        return;
    }
    self->maybe_more = json_array_size (claimed) == (size_t) room;
    size_t i;
    json_t *row;
    json_array_foreach (claimed, i, row) {
        s_photo_t *photo = (s_photo_t *) rp_alloc (sizeof (s_photo_t));
        snprintf (photo->id, sizeof photo->id, "%s", json_string_value (json_object_get (row, "id")));
        snprintf (photo->sha256, sizeof photo->sha256, "%s", json_string_value (json_object_get (row, "sha256")));
        const char *filename = json_string_value (json_object_get (row, "filename"));
        snprintf (photo->filename, sizeof photo->filename, "%s", filename ? filename : "");
        photo->attempts = (int) json_integer_value (json_object_get (row, "attempts"));
        rp_trace_start (&photo->trace);
        rp_trace_new_span (photo->segment);
        photo->claimed_s = rp_trace_now ();
        s_trace_send (photo, 0, NULL);
        rp_trace_enter (&photo->trace, photo->segment);
        bool fetched = !rp_blobstore_s3 (self->blobs) || s_fetched (self, photo);
        rp_trace_leave ();
        if (!fetched) {
            s_trace_send (photo, rp_trace_now (), "original not fetched");
            free (photo);
            continue;
        }
        zhash_insert (self->photos, photo->id, photo);
        zhash_freefn (self->photos, photo->id, s_photo_destroy);
        rp_drain_count (RP_DRAIN_PHOTOS, 1);
        photo->submitted_ms = rp_clock_ms_precise ();
        s_submit (self, photo, "resize");
        s_submit (self, photo, "exif");
        rp_debug ("pipeline", "photo=%s attempt=%d processing", photo->id, photo->attempts);
    }
    json_decref (claimed);
}

//  Done with a photo (committed, moot or given back): it leaves the table
static void
s_forget (s_pipeline_t *self, const char *id)
{
    zhash_delete (self->photos, id);
    rp_drain_count (RP_DRAIN_PHOTOS, -1);
    //  Its place is free: when the queue may hold more, claim at once
    //  rather than at the next tick (a tick's wait per in_flight photos
    //  capped throughput at in_flight / 250 ms once uploads stopped waking us)
    if (self->maybe_more)
        self->wake = true;
}

//  The photo's segment: in progress (end 0), or done with its outcome
static void
s_trace_send (const s_photo_t *photo, double end, const char *outcome)
{
    if (!photo->trace.sampled || !rp_trace_sending ())
        return;
    json_t *document = rp_trace_segment (&photo->trace, photo->segment, NULL, photo->claimed_s, end);
    json_object_set_new (document, "annotations", json_pack ("{s:s, s:i}", "photo", photo->id,
                                                             "attempt", photo->attempts));
    if (outcome) {
        json_object_set_new (json_object_get (document, "annotations"), "outcome", json_string (outcome));
        if (!streq (outcome, "complete"))
            json_object_set_new (document, "error", json_true ());
    }
    rp_trace_send (&photo->trace, &document);
}

static bool s_commit_traced (s_pipeline_t *self, s_photo_t *photo, const char **outcome);

//  Commit a finished photo; true when done with it (committed or moot).
//  Its log lines and database calls are in its trace; its segment ends
//  with the commit.
static bool
s_commit (s_pipeline_t *self, s_photo_t *photo)
{
    rp_trace_enter (&photo->trace, photo->segment);
    const char *outcome = NULL;
    bool done = s_commit_traced (self, photo, &outcome);
    if (done)
        s_trace_send (photo, rp_trace_now (), outcome ? outcome : "dropped");
    rp_trace_leave ();
    return done;
}

static bool
s_commit_traced (s_pipeline_t *self, s_photo_t *photo, const char **outcome_p)
{
    char err [512];
    int rc;
    const char *outcome;
    if (!photo->error && rp_blobstore_s3 (self->blobs)) {
        if (rp_clock_ms () < photo->commit_after || rp_clock_ms () < self->s3_down_until)
            return false;
        if (rp_blob_push_derivatives (self->blobs, photo->sha256, err, sizeof err)) {
            photo->commit_after = rp_clock_ms () + s_s3_backoff (self);
            rp_warn ("pipeline", "photo=%s cannot store its derivatives in S3 yet: %s", photo->id, err);
            return false;
        }
        self->s3_backoff_ms = 0;
    }
    if (!photo->error) {
        json_t *result = json_object ();
        json_object_set (result, "content_type", json_object_get (photo->resize, "content_type"));
        json_object_set (result, "width", json_object_get (photo->resize, "width"));
        json_object_set (result, "height", json_object_get (photo->resize, "height"));
        json_object_set (result, "taken_at", json_object_get (photo->exif, "taken_at"));
        json_object_set (result, "exif", json_object_get (photo->exif, "exif"));
        json_object_set (result, "thumbhash", json_object_get (photo->resize, "thumbhash"));
        if (json_object_get (photo->resize, "phash"))
            json_object_set (result, "phash", json_object_get (photo->resize, "phash"));
        double started = rp_clock_ms_precise ();
        rc = rp_db_photo_complete (self->db, photo->id, result, err, sizeof err);
        json_decref (result);
        if (rc == 0) {
            s_stages_record (photo, rp_clock_ms_precise () - started);
            rp_metrics_processing (NULL, rp_clock_ms_precise () - photo->submitted_ms);
        }
        outcome = "complete";
    }
    else
    if (photo->lost && photo->attempts < self->args.config.pipeline_max_attempts) {
        int64_t backoff = self->args.config.pipeline_retry_base_ms << (photo->attempts - 1 < 16 ? photo->attempts - 1 : 16);
        rc = rp_db_photo_fail (self->db, photo->id, photo->error, backoff > 0 ? backoff : 1, err, sizeof err);
        outcome = "queued again";
    }
    else {
        rc = rp_db_photo_fail (self->db, photo->id, photo->error, 0, err, sizeof err);
        if (rc == 0)
            rp_metrics_failure (rp_failure_classify (photo->error, photo->lost));
        outcome = "failed";
    }
    if (rc == RP_NOT_FOUND) {
        //  Deleted meanwhile, or another engine finished it. Deleted, its
        //  bytes may have been collected before the jobs wrote derivatives
        //  beside them (and pushed them to S3): collect again now that the
        //  jobs are over (a photo that still refers to them keeps them)
        rp_info ("pipeline", "photo=%s no longer processing here; outcome dropped", photo->id);
        rp_library_unreference (self->blobs, self->db, photo->sha256, "its photo was deleted while processing");
        return true;
    }
    if (rc) {
        rp_warn ("pipeline", "photo=%s cannot commit its outcome yet: %s", photo->id, err);
        return false;
    }
    //  duration: from its jobs' dispatch to this commit
    rp_info ("pipeline", "photo=%s attempt=%d duration=%lld %s%s%s", photo->id, photo->attempts,
             (long long) (rp_clock_ms_precise () - photo->submitted_ms), outcome,
             photo->error ? ": " : "", photo->error ? photo->error : "");
    *outcome_p = outcome;
    return true;
}

static void
s_handle_result (s_pipeline_t *self)
{
    zmsg_t *zmsg = zmsg_recv (self->broker);
    char err [256];
    rp_msg_t *msg = zmsg ? rp_msg_decode (zmsg, err, sizeof err) : NULL;
    zmsg_destroy (&zmsg);
    if (!msg || msg->command != RP_MSG_RESULT) {
        rp_warn ("pipeline", "dropped an unexpected message from the broker");
        rp_msg_destroy (&msg);
        return;
    }
    //  <photo>.<attempt>.<kind>
    char id [RP_ID_MAX] = "", kind [16] = "";
    int attempt = 0;
    if (sscanf (msg->job_id, "%39[^.].%d.%15s", id, &attempt, kind) != 3) {
        rp_warn ("pipeline", "dropped a result with a foreign job id");
        rp_msg_destroy (&msg);
        return;
    }
    s_photo_t *photo = (s_photo_t *) zhash_lookup (self->photos, id);
    if (!photo || photo->attempts != attempt || photo->finished) {
        rp_debug ("pipeline", "job=%s result for no photo in flight, dropped", msg->job_id);
        rp_msg_destroy (&msg);
        return;
    }
    bool is_resize = streq (kind, "resize");
    snprintf (is_resize ? photo->resize_worker : photo->exif_worker, sizeof photo->resize_worker,
              "%s", msg->worker ? msg->worker : "-");
    if (streq (msg->status, "done")) {
        json_error_t jerr;
        json_t *result = json_loads (msg->result ? msg->result : "", 0, &jerr);
        if (!result && !photo->error) {
            photo->error = rp_strdup ("a worker's result was not valid JSON");
            photo->lost = true;
        }
        json_decref (is_resize ? photo->resize : photo->exif);
        if (is_resize)
            photo->resize = result;
        else
            photo->exif = result;
    }
    else
    if (!photo->error) {
        photo->error = rp_strdup (msg->error ? msg->error : "failed without a reason");
        //  The broker gave up (no worker refused it), or the worker's
        //  failure is passing (S3 away): worth another try later
        photo->lost = msg->worker == NULL || msg->retry;
    }
    rp_msg_destroy (&msg);
    if (++photo->answers == 2) {
        photo->finished = true;
        photo->answered_ms = rp_clock_ms_precise ();
        const char *who = "-";
        char why [256];
        if (!photo->error && s_check_results (self, photo, &who, why, sizeof why)) {
            rp_warn ("pipeline", "photo=%s attempt=%d: the result of worker=%s fails a check: %s",
                     photo->id, photo->attempts, who, why);
            char reason [320];
            snprintf (reason, sizeof reason, "a worker's result failed a check: %s", why);
            photo->error = rp_strdup (reason);
            photo->lost = true;
        }
        if (s_commit (self, photo))
            s_forget (self, photo->id);
        //  else: kept, and tried again at the next tick
    }
}

//  The trim's keep: true when a photo in flight here has this address (its
//  original, and the derivatives its jobs write beside it).
static bool
s_in_flight (const char *sha256, void *arg)
{
    s_pipeline_t *self = (s_pipeline_t *) arg;
    for (s_photo_t *photo = (s_photo_t *) zhash_first (self->photos); photo;
         photo = (s_photo_t *) zhash_next (self->photos))
        if (streq (photo->sha256, sha256))
            return true;
    return false;
}

//  Commits that failed earlier: try again.
static void
s_retry_commits (s_pipeline_t *self)
{
    zlist_t *done = zlist_new ();
    for (s_photo_t *photo = (s_photo_t *) zhash_first (self->photos); photo;
         photo = (s_photo_t *) zhash_next (self->photos))
        if (photo->finished && s_commit (self, photo))
            zlist_append (done, photo->id);
    for (char *id = (char *) zlist_first (done); id; id = (char *) zlist_next (done))
        s_forget (self, id);
    zlist_destroy (&done);
}

//  Stopping: what is finished gets one more try at its commit, the rest
//  goes back to queued; a photo the database cannot take now stays
//  processing, for start-up recovery or another engine's stale sweep
static void
s_release_all (s_pipeline_t *self)
{
    s_retry_commits (self);
    int released = 0, kept = 0;
    char err [256];
    for (s_photo_t *photo = (s_photo_t *) zhash_first (self->photos); photo;
         photo = (s_photo_t *) zhash_next (self->photos)) {
        int rc = photo->finished ? -1 : rp_db_photo_release (self->db, photo->id, photo->attempts, err, sizeof err);
        if (rc == 0 || rc == RP_NOT_FOUND)
            released += rc == 0;
        else {
            kept++;
            rp_warn ("pipeline", "photo=%s stays processing (recovery queues it again): %s", photo->id,
                     photo->finished ? "its commit failed" : err);
        }
        rp_drain_count (RP_DRAIN_PHOTOS, -1);
    }
    if (released || kept)
        rp_info ("pipeline", "stopping: %d photos in flight queued again, %d left processing", released, kept);
}

//  PAUSE: finished photos get one more try at their commit (kept for the
//  next tick if the database cannot take it), every other claim is undone
//  and forgotten. 0 when every photo was committed or given back.
static int
s_pause (s_pipeline_t *self)
{
    s_retry_commits (self);
    zlist_t *released = zlist_new ();
    int kept = 0;
    char err [256];
    for (s_photo_t *photo = (s_photo_t *) zhash_first (self->photos); photo;
         photo = (s_photo_t *) zhash_next (self->photos)) {
        if (photo->finished) {
            kept++;                 //  its commit failed: tried again each tick
            continue;
        }
        int rc = rp_db_photo_release (self->db, photo->id, photo->attempts, err, sizeof err);
        if (rc == 0 || rc == RP_NOT_FOUND)
            zlist_append (released, photo->id);
        else {
            kept++;
            rp_warn ("pipeline", "photo=%s stays processing here (pausing): %s", photo->id, err);
        }
    }
    size_t count = zlist_size (released);
    for (char *id = (char *) zlist_first (released); id; id = (char *) zlist_next (released))
        s_forget (self, id);
    zlist_destroy (&released);
    if (count)
        rp_info ("pipeline", "pausing: %zu photos in flight queued again", count);
    self->paused = true;
    return kept ? -1 : 0;
}

static void
s_pipeline_run (zsock_t *pipe, void *arg)
{
    s_pipeline_t self;
    memset (&self, 0, sizeof self);
    self.pipe = pipe;
    self.args = *(rp_pipeline_args_t *) arg;
    char err [512];
    self.blobs = rp_blobstore_open (&self.args.config, err, sizeof err);
    if (self.blobs)
        self.db = rp_db_open (self.args.config.db_url, err, sizeof err);
    if (self.db)
        self.broker = rp_link_connect (ZMQ_DEALER, self.args.frontend, &self.args.config,
                                       RP_LINK_UNQUEUED, err, sizeof err);
    if (!self.broker) {
        rp_error ("pipeline", "cannot start: %s", err);
        rp_db_close (&self.db);
        rp_blobstore_close (&self.blobs);
        ((rp_pipeline_args_t *) arg)->start_failed = 1;
        zsock_signal (pipe, 1);
        return;
    }
    self.photos = zhash_new ();
    //  One pipeline per process takes in-process wake-ups; another (tests)
    //  still ticks
    self.wakeups = zsock_new (ZMQ_PULL);
    if (self.wakeups && zsock_bind (self.wakeups, "%s", RP_PIPELINE_WAKE) != 0) {
        rp_debug ("pipeline", "%s is taken: waking by tick and pipe only", RP_PIPELINE_WAKE);
        zsock_destroy (&self.wakeups);
    }
    zpoller_t *poller = zpoller_new (pipe, self.broker, NULL);
    if (self.wakeups)
        zpoller_add (poller, self.wakeups);
    zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, 0);

    int64_t next_tick = 0;
    int64_t minute_ms = rp_library_minute_ms ();
    int64_t next_sweep = rp_clock_ms () + minute_ms;
    bool terminated = false;
    while (!terminated) {
        int64_t wait = next_tick - rp_clock_ms ();
        void *which = zpoller_wait (poller, self.wake ? 0 : wait < 0 ? 0 : (int) wait);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM"))
                terminated = true;
            else
            if (streq (command, "WAKE"))
                self.wake = true;
            else
            if (streq (command, "IN_FLIGHT"))
                zstr_sendf (pipe, "%zu", zhash_size (self.photos));
            else
            if (streq (command, "PAUSE"))
                zsock_signal (pipe, s_pause (&self) ? 1 : 0);
            else
            if (streq (command, "RESUME")) {
                self.paused = false;
                self.wake = true;
            }
            zstr_free (&command);
        }
        else
        if (which == self.broker)
            s_handle_result (&self);
        else
        if (which && which == self.wakeups) {
            //  Drain what queued up: one claim serves them all
            char frame [16];
            while (zmq_recv (zsock_resolve (self.wakeups), frame, sizeof frame, ZMQ_DONTWAIT) >= 0)
                ;
            self.wake = true;
        }
        if (rp_clock_ms () >= next_sweep) {
            //  Photos an engine that died was processing (a crash here is
            //  handled at start-up, but with several engines nobody restarts)
            int requeued = 0;
            if (rp_db_photo_requeue_processing (self.db, rp_library_stale_ms (&self.args.config), &requeued,
                                                err, sizeof err))
                rp_warn ("pipeline", "cannot look for stuck photos: %s", err);
            else
            if (requeued)
                rp_warn ("pipeline", "%d photos were stuck processing (their engine is gone?): queued again",
                         requeued);
            //  S3: the local cache keeps what was written within the grace,
            //  and whatever a photo in flight here uses
            int trimmed = 0;
            rp_blobstore_trim_cache (self.blobs, self.args.config.storage_orphan_grace_s, s_in_flight, &self,
                                     &trimmed);
            if (trimmed)
                rp_info ("pipeline", "local cache: %d files older than %llds removed (they are in S3)", trimmed,
                         (long long) self.args.config.storage_orphan_grace_s);
            //  Bytes deletes left behind (their collection failed, or a
            //  photo was deleted while processing on an engine that died)
            int collected = 0;
            if (rp_library_collect_all (self.blobs, self.db, &collected, err, sizeof err))
                rp_warn ("pipeline", "some unreferenced bytes stay for the next minute: %s", err);
            if (collected)
                rp_info ("pipeline", "collected the bytes of %d addresses no photo refers to", collected);
            next_sweep = rp_clock_ms () + minute_ms;
        }
        if (self.wake || rp_clock_ms () >= next_tick) {
            s_retry_commits (&self);
            if (!self.paused)
                s_claim (&self);
            self.wake = false;
            next_tick = rp_clock_ms () + 250;
        }
    }
    s_release_all (&self);
    zpoller_destroy (&poller);
    zhash_destroy (&self.photos);
    zsock_destroy (&self.broker);
    zsock_destroy (&self.wakeups);
    rp_blobstore_close (&self.blobs);
    rp_db_close (&self.db);
}

//  The actor: its loop, then what its thread kept is freed (engine/thread.h)
void
rp_pipeline_actor (zsock_t *pipe, void *arg)
{
    s_pipeline_run (pipe, arg);
    rp_thread_end ();
}

zactor_t *
rp_pipeline_new (rp_pipeline_args_t *args)
{
    args->start_failed = 0;
    return rp_actor_start_checked (rp_pipeline_actor, args, &args->start_failed);
}
