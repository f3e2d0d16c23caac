/*  actors/scrub/scrub.c: see scrub.h.

    DESIGN
    Threads: a scrub belongs to the thread that made it: `rapidphoto scrub`
    (main's) or the background actor's own.
    Owns: its blob store handle, its database connection, a temporary file
    per download (S3) under <data.dir>/objects/tmp (removed at once; one
    left by a crash goes with the other temporary files at start-up).
    The walk: the command takes every address by sha256 (a pass that
    changes nothing it walks by); the actor takes those due by checked_at,
    never checked first, so a restart resumes where it stopped: what it
    checked carries its new checked_at.
    Never in the way of uploads: the actor's thread runs at nice 19 and in
    the idle I/O class (the kernel serves its reads only when no one else
    reads the disk), reads one photo at a time in 1 MiB chunks, sleeps to
    keep to scrub.rate_mb_s, and writes one short UPDATE per address
    (SQLite's write lock for a moment). An upload's acknowledgement waits
    on its own fsync and commit, not on anything here.
    Deletes nothing: a damaged original keeps its bytes and its rows; a
    regenerated derivative replaces the old file by rename (resize.c).
    Several engines (pipelines sharing a database, each with a background
    scrub) take each due address first (rp_db_scrub_claim moves its
    checked_at to now), so one checks it; a check that then cannot finish
    (S3 away, the engine stopped) leaves it for the next round, recheck_s
    later, its integrity as the last finished check left it.
    Races: a photo deleted while it is checked may lose its bytes under the
    check; a missing original is only reported once the database says a
    photo still refers to it, and derivatives made for an address no photo
    refers to any more are handed to the collection.
*/
#include "actors/scrub/scrub.h"
#include "actors/resize/resize.h"
#include "engine/alloc.h"
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/fs.h"
#include "engine/hex.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/runtime.h"
#include "engine/thread.h"
#include "library/blobstore.h"
#include "library/library.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vips/vips.h>

#define S_CHUNK (1024 * 1024)
#define S_PAGE 100
#define S_PROGRESS_EVERY 100
#define S_PROGRESS_MS 10000

struct _rp_scrub_t {
    rp_config_t config;
    rp_blobstore_t *blobs;
    rp_db_t *db;
    rp_resize_opts_t resize;
    int64_t rate;                   //  bytes a second; 0: no limit
    int64_t window_start_ms;        //  the throttle's window
    int64_t window_bytes;
    zsock_t *pipe;                  //  the actor's, or NULL
    zpoller_t *poller;
    bool stopping;
    unsigned char *buffer;          //  S_CHUNK
};

rp_scrub_t *
rp_scrub_new (const rp_config_t *config, int64_t rate_bytes_s, char *err, size_t errlen)
{
    rp_scrub_t *self = (rp_scrub_t *) rp_alloc (sizeof (rp_scrub_t));
    self->config = *config;
    self->rate = rate_bytes_s > 0 ? rate_bytes_s : 0;
    self->blobs = rp_blobstore_open (config, err, errlen);
    if (self->blobs)
        self->db = rp_db_open (config->db_url, err, errlen);
    int applied = 0;
    if (!self->blobs || !self->db || rp_db_migrate (self->db, &applied, err, errlen)) {
        rp_scrub_destroy (&self);
        return NULL;
    }
    rp_resize_opts_from_config (&self->resize, config);
    self->buffer = (unsigned char *) rp_alloc (S_CHUNK);
    self->window_start_ms = rp_clock_ms ();
    return self;
}

void
rp_scrub_destroy (rp_scrub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rp_scrub_t *self = *self_p;
    zpoller_destroy (&self->poller);
    rp_blobstore_close (&self->blobs);
    rp_db_close (&self->db);
    free (self->buffer);
    free (self);
    *self_p = NULL;
}

void
rp_scrub_set_pipe (rp_scrub_t *self, zsock_t *pipe)
{
    self->pipe = pipe;
    zpoller_destroy (&self->poller);
    self->poller = zpoller_new (pipe, NULL);
}

bool
rp_scrub_stopping (rp_scrub_t *self)
{
    //  A message on the pipe ($TERM) is left there for the actor to read
    if (!self->stopping && self->poller && zpoller_wait (self->poller, 0))
        self->stopping = true;
    return self->stopping || (!self->pipe && rp_interrupted ());
}

//  Wait ms, or less when told to stop
static void
s_sleep (rp_scrub_t *self, int64_t ms)
{
    while (ms > 0 && !rp_scrub_stopping (self)) {
        int slice = ms > 200 ? 200 : (int) ms;
        if (self->poller) {
            if (zpoller_wait (self->poller, slice) || zpoller_terminated (self->poller))
                self->stopping = true;
        }
        else
            zclock_sleep (slice);
        ms -= slice;
    }
}

//  Keep to the rate: n more bytes were read
static void
s_throttle (rp_scrub_t *self, int64_t n)
{
    if (!self->rate)
        return;
    int64_t now = rp_clock_ms ();
    //  Idle time earns no burst beyond a second's worth
    if (now - self->window_start_ms > 1000 + self->window_bytes * 1000 / self->rate) {
        self->window_start_ms = now - 1000;
        self->window_bytes = self->rate;
    }
    self->window_bytes += n;
    int64_t due_ms = self->window_bytes * 1000 / self->rate;
    s_sleep (self, due_ms - (now - self->window_start_ms));
}

//  SHA-256 (and MD5, when md5 is not NULL) of a file, read at the rate.
//  *size: its length. 0; RP_NOT_FOUND when it is not there; -1 with err.
static int
s_hash_file (rp_scrub_t *self, const char *path, char sha256 [65], char md5 [33], int64_t *size,
             char *err, size_t errlen)
{
    *size = 0;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return RP_NOT_FOUND;
        snprintf (err, errlen, "cannot read the original: %s", strerror (errno));
        return -1;
    }
    posix_fadvise (fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    EVP_MD_CTX *sha = EVP_MD_CTX_new (), *m5 = md5 ? EVP_MD_CTX_new () : NULL;
    EVP_DigestInit_ex (sha, EVP_sha256 (), NULL);
    if (m5)
        EVP_DigestInit_ex (m5, EVP_md5 (), NULL);
    int rc = 0;
    while (!rp_scrub_stopping (self)) {
        ssize_t n = read (fd, self->buffer, S_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            //  An unreadable sector is damage too, not an outage
            snprintf (err, errlen, "read error: %s", strerror (errno));
            rc = RP_REFUSED;
            break;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate (sha, self->buffer, (size_t) n);
        if (m5)
            EVP_DigestUpdate (m5, self->buffer, (size_t) n);
        *size += n;
        s_throttle (self, n);
    }
    //  Done with these pages: a scrub should not push the photos being
    //  uploaded and processed out of the page cache
    posix_fadvise (fd, 0, 0, POSIX_FADV_DONTNEED);
    close (fd);
    if (rp_scrub_stopping (self) && rc == 0) {
        snprintf (err, errlen, "stopped");
        rc = RP_UNAVAILABLE;
    }
    unsigned char digest [32];
    unsigned int len = 0;
    EVP_DigestFinal_ex (sha, digest, &len);
    rp_hex_encode (digest, 32, sha256);
    if (m5) {
        EVP_DigestFinal_ex (m5, digest, &len);
        rp_hex_encode (digest, 16, md5);
    }
    EVP_MD_CTX_free (sha);
    EVP_MD_CTX_free (m5);
    return rc;
}

//  Does the file decode (header, then every pixel)? 0, or -1 with why.
static int
s_decodes (const char *path, char *why, size_t whylen)
{
    VipsImage *image = vips_image_new_from_file (path, "access", VIPS_ACCESS_SEQUENTIAL,
                                                 "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    double avg = 0;
    int rc = image && vips_avg (image, &avg, NULL) == 0 ? 0 : -1;
    if (rc) {
        const char *text = vips_error_buffer ();
        snprintf (why, whylen, "does not decode: %.*s", (int) strcspn (text, "\n"), text);
        vips_error_clear ();
    }
    if (image)
        g_object_unref (image);
    return rc;
}

//  A fresh temporary file's path under <data.dir>/objects/tmp
static int
s_tmp (rp_scrub_t *self, char *path, size_t size)
{
    snprintf (path, size, "%s/objects/tmp/scrub-XXXXXX", self->config.data_dir);
    int fd = mkostemp (path, O_CLOEXEC);
    if (fd < 0)
        return -1;
    close (fd);
    return 0;
}

static void
s_note (json_t **finding, const char *sha256, const char *photo_id)
{
    if (!*finding)
        *finding = json_pack ("{s:s,s:s,s:s,s:[],s:[]}", "sha256", sha256, "photo", photo_id,
                              "integrity", "ok", "regenerated", "unrepaired");
}

//  Does a photo still refer to the address? (a delete may race a check)
static bool
s_referenced (rp_scrub_t *self, const char *sha256)
{
    int64_t count = 1;
    char err [256];
    if (rp_db_sha_references (self->db, sha256, &count, err, sizeof err))
        return true;            //  cannot tell: report what was seen
    return count > 0;
}

//  The original: *sound when it hashes to its name. In S3 mode it is
//  downloaded into local (a temporary file the caller removes).
//  0; RP_UNAVAILABLE; -1 with err.
static int
s_check_original (rp_scrub_t *self, const char *sha256, int64_t bytes, const char *local, bool *sound,
                  char actual [80], char *detail, size_t detaillen, char *err, size_t errlen)
{
    *sound = false;
    *detail = 0;
    rp_s3_mirror_t *s3 = rp_blobstore_s3 (self->blobs);
    char etag [RP_S3_ETAG_MAX] = "";
    if (s3) {
        char relative [160];
        rp_blob_relative (sha256, "", relative, sizeof relative);
        int64_t size = -1;
        int rc = rp_s3_mirror_head (s3, relative, &size, etag, err, errlen);
        if (rc == RP_NOT_FOUND) {
            snprintf (actual, 80, "missing");
            snprintf (detail, detaillen, "the object is missing from S3");
            return 0;
        }
        if (rc)
            return RP_UNAVAILABLE;
        if (size != bytes) {
            snprintf (actual, 80, "size %lld", (long long) size);
            snprintf (detail, detaillen, "the object in S3 is %lld bytes, not %lld", (long long) size,
                      (long long) bytes);
            return 0;
        }
        if (rp_s3_mirror_get (s3, relative, local, -1, err, errlen))
            return RP_UNAVAILABLE;
    }
    char got [65], md5 [33];
    int64_t size = 0;
    int rc = s_hash_file (self, local, got, s3 ? md5 : NULL, &size, err, errlen);
    if (rc == RP_UNAVAILABLE)
        return rc;
    if (rc == RP_NOT_FOUND) {
        snprintf (actual, 80, "missing");
        snprintf (detail, detaillen, "the original is missing from storage");
        return 0;
    }
    if (rc) {
        snprintf (actual, 80, "unreadable");
        snprintf (detail, detaillen, "%s", err);
        return 0;
    }
    rp_metrics_scrub_t delta = { .bytes = (uint64_t) size };
    rp_metrics_scrub_add (&delta);
    if (strcmp (got, sha256) != 0) {
        snprintf (actual, 80, "%s", got);
        snprintf (detail, detaillen, "%lld bytes that hash to another SHA-256", (long long) size);
        return 0;
    }
    if (s3 && !strchr (etag, '-') && strcasecmp (etag, md5) != 0) {
        snprintf (actual, 80, "etag %.40s", etag);
        snprintf (detail, detaillen, "its ETag %.40s is not the MD5 of its bytes (%s)", etag, md5);
        return 0;
    }
    if (s3 && strchr (etag, '-') && strspn (etag, "0123456789abcdefABCDEF") != 32) {
        snprintf (actual, 80, "etag %.40s", etag);
        snprintf (detail, detaillen, "its multipart ETag %.40s is malformed", etag);
        return 0;
    }
    *sound = true;
    return 0;
}

//  One derivative: there and decoding? 0 (*bad set with why); RP_UNAVAILABLE.
static int
s_check_derivative (rp_scrub_t *self, const char *path, const char *relative, bool *bad,
                    char *why, size_t whylen, char *err, size_t errlen)
{
    *bad = false;
    rp_s3_mirror_t *s3 = rp_blobstore_s3 (self->blobs);
    char tmp [PATH_MAX] = "";
    const char *file = path;
    if (s3) {
        int64_t size = -1;
        char etag [RP_S3_ETAG_MAX];
        int rc = rp_s3_mirror_head (s3, relative, &size, etag, err, errlen);
        if (rc == RP_NOT_FOUND) {
            *bad = true;
            snprintf (why, whylen, "missing from S3");
            return 0;
        }
        if (rc || s_tmp (self, tmp, sizeof tmp) || rp_s3_mirror_get (s3, relative, tmp, -1, err, errlen)) {
            if (*tmp)
                unlink (tmp);
            return RP_UNAVAILABLE;
        }
        file = tmp;
    }
    else
    if (access (path, F_OK) != 0) {
        *bad = true;
        snprintf (why, whylen, "missing");
        return 0;
    }
    *bad = s_decodes (file, why, whylen) != 0;
    if (*tmp)
        unlink (tmp);
    return 0;
}

int
rp_scrub_address (rp_scrub_t *self, const char *sha256, int64_t bytes, const char *photo_id,
                  rp_scrub_counts_t *counts, json_t **finding, char *err, size_t errlen)
{
    *finding = NULL;
    char path [PATH_MAX], local [PATH_MAX];
    if (rp_blob_path (self->blobs, sha256, path, sizeof path)) {
        snprintf (err, errlen, "not a SHA-256: %.80s", sha256);
        return -1;
    }
    rp_s3_mirror_t *s3 = rp_blobstore_s3 (self->blobs);
    snprintf (local, sizeof local, "%s", path);
    if (s3 && s_tmp (self, local, sizeof local)) {
        snprintf (err, errlen, "cannot create a temporary file: %s", strerror (errno));
        counts->errors++;
        return RP_UNAVAILABLE;
    }
    bool sound = false;
    char actual [80] = "", detail [300] = "";
    int rc = s_check_original (self, sha256, bytes, local, &sound, actual, detail, sizeof detail, err, errlen);
    rp_metrics_scrub_t delta = { 0 };
    if (rc == 0 && !sound && !s_referenced (self, sha256)) {
        if (s3)
            unlink (local);
        return 0;                   //  deleted while it was checked: nothing to say
    }
    //  The derivatives (whatever the original: a sound derivative of a
    //  damaged original is still worth knowing about)
    json_t *redo = json_array (), *bad_names = json_array ();
    for (int i = 0; rc == 0 && i < self->config.derivative_count; i++) {
        const rp_derivative_t *spec = &self->config.derivatives [i];
        const char *ext = rp_derivative_ext (spec->format, NULL);
        char suffix [64], dpath [PATH_MAX + 64], relative [200], why [300];
        snprintf (suffix, sizeof suffix, ".%s.%s", spec->name, ext ? ext : "bin");
        snprintf (dpath, sizeof dpath, "%s%s", path, suffix);
        rp_blob_relative (sha256, suffix, relative, sizeof relative);
        bool bad = false;
        rc = s_check_derivative (self, dpath, relative, &bad, why, sizeof why, err, errlen);
        if (rc == 0 && bad) {
            rp_warn ("scrub", "photo=%s sha256=%s derivative %s %s", photo_id, sha256, spec->name, why);
            json_array_append_new (redo, json_string (spec->name));
        }
    }
    //  Make lost or damaged derivatives again, from a sound original
    //  only, through the resize job's code (every derivative: each is
    //  written under a temporary name and renamed into place)
    if (rc == 0 && json_array_size (redo) > 0) {
        bool made = false;
        char why [512] = "";
        if (sound) {
            char dir [PATH_MAX];
            snprintf (dir, sizeof dir, "%s", path);
            char *slash = strrchr (dir, '/');
            if (slash)
                *slash = 0;
            json_t *result = NULL;
            if (rp_fs_mkdirs (dir, 0700, why, sizeof why) == 0
            &&  rp_resize_photo (&self->resize, local, path, &result, why, sizeof why) == 0) {
                json_decref (result);
                int pushed = rp_blob_push_derivatives (self->blobs, sha256, err, errlen);
                if (pushed)
                    rc = RP_UNAVAILABLE;
                else
                    made = true;
                if (!s_referenced (self, sha256))
                    rp_library_unreference (self->blobs, self->db, sha256, "scrub made derivatives of deleted bytes");
            }
        }
        else
            snprintf (why, sizeof why, "the original is damaged");
        if (rc == 0) {
            s_note (finding, sha256, photo_id);
            size_t i;
            json_t *name;
            json_array_foreach (redo, i, name) {
                json_array_append (json_object_get (*finding, made ? "regenerated" : "unrepaired"), name);
                if (made)
                    rp_info ("scrub", "photo=%s sha256=%s derivative %s made again", photo_id, sha256,
                             json_string_value (name));
                else
                    rp_error ("scrub", "photo=%s sha256=%s derivative %s cannot be made again: %s", photo_id,
                              sha256, json_string_value (name), why);
            }
            if (!made)
                json_object_set_new (*finding, "error", json_string (why));
            int64_t n = (int64_t) json_array_size (redo);
            *(made ? &counts->regenerated : &counts->unrepaired) += n;
            delta.regenerated = made ? (uint64_t) n : 0;
        }
    }
    json_decref (redo);
    json_decref (bad_names);
    if (s3)
        unlink (local);
    if (rc == 0) {
        int64_t marked = 0;
        rc = rp_db_scrub_mark (self->db, sha256, sound ? "ok" : "damaged", &marked, err, errlen);
        if (rc)
            rc = RP_UNAVAILABLE;
    }
    if (rc) {
        counts->errors++;
        delta.errors = 1;
        json_decref (*finding);
        *finding = NULL;
        rp_metrics_scrub_add (&delta);
        return RP_UNAVAILABLE;
    }
    counts->checked++;
    counts->bytes += sound ? bytes : 0;
    delta.checked = 1;
    if (!sound) {
        counts->damaged++;
        delta.damaged = 1;
        rp_error ("scrub", "photo=%s original damaged: sha256 expected %s, actual %s (%s); kept as it is",
                  photo_id, sha256, actual, detail);
        s_note (finding, sha256, photo_id);
        json_object_set_new (*finding, "integrity", json_string ("damaged"));
        json_object_set_new (*finding, "expected", json_string (sha256));
        json_object_set_new (*finding, "actual", json_string (actual));
        json_object_set_new (*finding, "detail", json_string (detail));
    }
    rp_metrics_scrub_add (&delta);
    return 0;
}

int
rp_scrub_pass (rp_scrub_t *self, rp_scrub_counts_t *counts, rp_scrub_progress_fn *progress_fn,
               rp_scrub_finding_fn *finding_fn, void *arg, char *err, size_t errlen)
{
    char after [65] = "";
    int64_t last_ms = rp_clock_ms (), last_count = 0;
    while (!rp_scrub_stopping (self)) {
        json_t *due = NULL;
        if (rp_db_scrub_due (self->db, after, 0, S_PAGE, &due, err, errlen))
            return -1;
        size_t i;
        json_t *item;
        json_array_foreach (due, i, item) {
            if (rp_scrub_stopping (self))
                break;
            const char *sha256 = json_string_value (json_object_get (item, "sha256"));
            snprintf (after, sizeof after, "%s", sha256);
            json_t *finding = NULL;
            char why [512];
            if (rp_scrub_address (self, sha256, json_integer_value (json_object_get (item, "bytes")),
                                  json_string_value (json_object_get (item, "id")), counts, &finding,
                                  why, sizeof why))
                rp_warn ("scrub", "photo=%s sha256=%s not checked: %s",
                         json_string_value (json_object_get (item, "id")), sha256, why);
            if (finding && finding_fn)
                finding_fn (finding, arg);
            json_decref (finding);
            int64_t seen = counts->checked + counts->errors;
            if (progress_fn && (seen - last_count >= S_PROGRESS_EVERY || rp_clock_ms () - last_ms >= S_PROGRESS_MS)) {
                progress_fn (counts, false, arg);
                last_count = seen;
                last_ms = rp_clock_ms ();
            }
        }
        size_t got = json_array_size (due);
        json_decref (due);
        if (got < S_PAGE)
            break;
    }
    if (progress_fn)
        progress_fn (counts, true, arg);
    return 0;
}

//  ---------------------------------------------------------------------------
//  The background actor

//  This thread only: lowest CPU priority, idle I/O class
static void
s_lower_priority (void)
{
    pid_t tid = (pid_t) syscall (SYS_gettid);
    if (setpriority (PRIO_PROCESS, (id_t) tid, 19))
        rp_warn ("scrub", "cannot lower the scrub's CPU priority: %s", strerror (errno));
#ifdef SYS_ioprio_set
    //  IOPRIO_WHO_PROCESS = 1, IOPRIO_CLASS_IDLE = 3 (linux/ioprio.h)
    if (syscall (SYS_ioprio_set, 1, (int) tid, 3 << 13))
        rp_warn ("scrub", "cannot put the scrub in the idle I/O class: %s", strerror (errno));
#endif
}

void
rp_scrub_actor (zsock_t *pipe, void *args)
{
    const rp_config_t *config = (const rp_config_t *) args;
    char err [512];
    rp_scrub_t *self = rp_scrub_new (config, config->scrub_rate_mb_s * 1000000, err, sizeof err);
    zsock_signal (pipe, 0);
    if (!self) {
        rp_error ("scrub", "the background scrub cannot start: %s", err);
        //  Wait for $TERM all the same
        char *command = zstr_recv (pipe);
        zstr_free (&command);
        rp_thread_end ();
        return;
    }
    rp_scrub_set_pipe (self, pipe);
    s_lower_priority ();
    rp_info ("scrub", "background scrub at %lld MB/s, every original again after %lld s",
             (long long) config->scrub_rate_mb_s, (long long) config->scrub_recheck_s);
    int64_t idle_ms = config->scrub_recheck_s * 1000 < 60000 ? config->scrub_recheck_s * 1000 : 60000;
    rp_scrub_counts_t counts = { 0 };
    while (!rp_scrub_stopping (self)) {
        json_t *due = NULL;
        if (rp_db_scrub_due (self->db, NULL, config->scrub_recheck_s * 1000, 20, &due, err, sizeof err)) {
            rp_warn ("scrub", "cannot list the photos to check: %s", err);
            s_sleep (self, 30000);
            continue;
        }
        bool unavailable = false;
        size_t i;
        json_t *item;
        json_array_foreach (due, i, item) {
            if (rp_scrub_stopping (self))
                break;
            const char *sha256 = json_string_value (json_object_get (item, "sha256"));
            const char *id = json_string_value (json_object_get (item, "id"));
            //  Another engine's scrub may have taken it since the list
            bool claimed = false;
            if (rp_db_scrub_claim (self->db, sha256, config->scrub_recheck_s * 1000, &claimed, err, sizeof err)) {
                rp_warn ("scrub", "photo=%s sha256=%s cannot be taken for a check: %s", id, sha256, err);
                unavailable = true;
                break;
            }
            if (!claimed)
                continue;
            json_t *finding = NULL;
            if (rp_scrub_address (self, sha256, json_integer_value (json_object_get (item, "bytes")), id,
                                  &counts, &finding, err, sizeof err)) {
                if (!rp_scrub_stopping (self))
                    rp_warn ("scrub", "photo=%s sha256=%s not checked (taken as checked now: due again "
                             "after scrub.recheck_s, %lld s): %s", id, sha256, (long long) config->scrub_recheck_s, err);
                unavailable = true;
                break;
            }
            json_decref (finding);
        }
        size_t got = json_array_size (due);
        json_decref (due);
        if (unavailable)
            s_sleep (self, 30000);
        else
        if (got == 0)
            s_sleep (self, idle_ms);
    }
    rp_info ("scrub", "background scrub stops: %lld checked, %lld damaged, %lld derivatives made again",
             (long long) counts.checked, (long long) counts.damaged, (long long) counts.regenerated);
    //  The message that stopped it ($TERM) is still on the pipe
    char *command = zstr_recv (pipe);
    zstr_free (&command);
    rp_scrub_destroy (&self);
    rp_thread_end ();
}
