/*  bench/load.c: rp_load, a load generator for a running `rapidphoto serve`.

    DESIGN
    One thread, one libcurl multi handle, no other state: every transfer is
    an easy handle in the multi, driven by curl_multi_poll.
    - Login (POST /api/v1/auth/login) or a given token.
    - One SSE stream (GET /api/v1/events) opened first, and its headers
      awaited, so that no photo's events are missed (a new stream starts at
      the newest event); it reconnects with Last-Event-ID if it drops.
    - Optionally K idle SSE streams, held open during the whole run (the
      "many open browser tabs" scenario); how many the gateway accepted is
      reported, refusals included.
    - N photos uploaded by C concurrent clients (raw POST /api/v1/photos,
      Content-Type image/jpeg, X-Filename): each client uploads its next
      photo when the previous one is acknowledged. Photos are made unique
      without copying: the body is the source JPEG's SOI, then a COM
      segment naming the run and the photo, then the rest of the source,
      streamed by a read callback. Unique bytes, so deduplication skips
      nothing and every photo is processed.
    - Done when every acknowledged photo reached complete or failed on the
      event stream, or at the timeout (the rest count as unfinished).
    - The engine's CPU (utime + stime of /proc/PID/stat) before and after,
      its resident memory sampled every 100 ms (VmRSS) and VmHWM at the
      end; /metrics before and after for the per-stage times.
    Output: a table on stdout and the JSON report (--json); the verdict
    against the thresholds: p95 acknowledgement latency, failed share, and
    optional bounds on the time to complete and on peak memory.
    Exit status: 0 every threshold met; 1 a threshold missed or the run
    could not be done (the reason on stderr); 2 wrong usage.
*/
#include "engine/buf.h"
#include "engine/clock.h"

#include <curl/curl.h>
#include <jansson.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_SOURCES_MAX 64
//  The bounds of what rp_load keeps of an answer (engine/buf.h): past
//  them the answer is not one of the gateway's, and is refused
#define S_RESPONSE_MAX (64 * 1024)          //  an upload's or a login's JSON answer: under 1 KiB
#define S_SSE_LINE_MAX (64 * 1024)          //  one SSE line, and one event's data: a photo's JSON
#define S_METRICS_MAX (4 * 1024 * 1024)     //  the /metrics text: tens of KiB
#define S_STAGES_MAX 32
#define S_ERRORS_KEPT 10

//  --------------------------------------------------------------------------
//  Options

typedef struct {
    const char *url;                //  http://127.0.0.1:8080
    const char *token;
    const char *user;
    const char *password;
    const char *sources [S_SOURCES_MAX];
    int nsources;
    int photos;
    int clients;
    int idle_sse;
    long pid;                       //  the engine's; 0 = find it, -1 = none
    const char *json_path;
    const char *label;
    double timeout_s;
    double p95_max_s;
    double failed_max_percent;
    double complete_max_s;          //  0 = no bound
    double rss_max_mb;              //  0 = no bound
    bool quiet;
} s_options_t;

//  --------------------------------------------------------------------------
//  Photos and transfers

typedef struct {
    char path [512];
    unsigned char *data;
    size_t size;
} s_source_t;

enum { S_PENDING, S_UPLOADING, S_ACKED, S_COMPLETE, S_FAILED, S_ERROR };

typedef struct {
    int index;
    const s_source_t *source;
    unsigned char head [96];        //  SOI + the COM segment that makes it unique
    size_t head_len;
    size_t total;                   //  bytes of the whole body
    size_t sent;
    double started;
    double acked;                   //  when the 202 came; 0 before
    double finished;                //  when complete/failed was seen
    int state;
    char id [64];
    char error [256];
    void *xfer;                     //  its upload, while running
} s_photo_t;

typedef enum { S_UPLOAD, S_EVENTS, S_IDLE } s_kind_t;

typedef struct {
    s_kind_t kind;
    CURL *easy;
    struct curl_slist *headers;
    s_photo_t *photo;               //  S_UPLOAD
    rp_buf_t body;                  //  the answer (S_UPLOAD) or the current SSE line
    long status;
    bool headers_done;
} s_xfer_t;

typedef struct {
    s_options_t *opt;
    CURLM *multi;
    char auth [2048];               //  "Authorization: Bearer ..."
    s_source_t sources [S_SOURCES_MAX];
    s_photo_t *photos;
    int next_photo;                 //  the next to start
    int uploading;
    int acked;
    int final;                      //  complete + failed among acked
    int errors;                     //  uploads not acknowledged
    int duplicates;
    json_t *seen;                   //  photo id -> final status, from events (any order)
    json_t *by_id;                  //  photo id -> index, once acknowledged
    s_xfer_t *events;
    char last_event_id [32];
    char event_name [32];
    rp_buf_t event_data;            //  the data lines of the event being read
    int events_reconnects;
    int idle_connected;
    int idle_refused;
    int idle_dropped;
    char idle_error [256];
    s_xfer_t **idle;
    char run [24];
    double t0;
    double last_ack;
    double last_final;
    uint64_t bytes_sent;
    char errors_kept [S_ERRORS_KEPT][256];
    int nerrors_kept;
} s_run_t;

//  Seconds on the monotonic clock
static double
s_now (void)
{
    return rp_clock_ms_precise () / 1000.0;
}

static void
s_say (s_run_t *self, const char *fmt, ...)
{
    if (self->opt->quiet)
        return;
    va_list ap;
    va_start (ap, fmt);
    fprintf (stderr, "rp_load: ");
    vfprintf (stderr, fmt, ap);
    fprintf (stderr, "\n");
    va_end (ap);
}

static void
s_keep_error (s_run_t *self, const char *fmt, ...)
{
    if (self->nerrors_kept >= S_ERRORS_KEPT)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->errors_kept [self->nerrors_kept++], sizeof self->errors_kept [0], fmt, ap);
    va_end (ap);
}

//  --------------------------------------------------------------------------
//  Sources

static int
s_source_load (s_source_t *source, const char *path)
{
    snprintf (source->path, sizeof source->path, "%s", path);
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "rp_load: cannot read %s: %s\n", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fileno (file), &st) || !S_ISREG (st.st_mode) || st.st_size < 4
    ||  st.st_size > (off_t) 1024 * 1024 * 1024) {
        fprintf (stderr, "rp_load: %s is not a regular file of 4 bytes to 1 GiB\n", path);
        fclose (file);
        return -1;
    }
    source->size = (size_t) st.st_size;
    source->data = (unsigned char *) malloc (source->size);
    if (!source->data || fread (source->data, 1, source->size, file) != source->size) {
        fprintf (stderr, "rp_load: cannot read %s\n", path);
        fclose (file);
        return -1;
    }
    fclose (file);
    if (source->data [0] != 0xFF || source->data [1] != 0xD8) {
        fprintf (stderr, "rp_load: %s is not a JPEG (no SOI marker)\n", path);
        return -1;
    }
    return 0;
}

//  SOI, then COM "rp_load <run> <index>": the photo's first bytes
static void
s_photo_prepare (s_run_t *self, s_photo_t *photo, int index)
{
    photo->index = index;
    photo->source = &self->sources [index % self->opt->nsources];
    char text [64];
    int n = snprintf (text, sizeof text, "rp_load %s %d", self->run, index);
    size_t seg = (size_t) n + 2;            //  the length field counts itself
    unsigned char *h = photo->head;
    h [0] = 0xFF; h [1] = 0xD8;             //  SOI
    h [2] = 0xFF; h [3] = 0xFE;             //  COM
    h [4] = (unsigned char) (seg >> 8);
    h [5] = (unsigned char) (seg & 0xFF);
    memcpy (h + 6, text, (size_t) n);
    photo->head_len = 6 + (size_t) n;
    photo->total = photo->head_len + photo->source->size - 2;
}

//  --------------------------------------------------------------------------
//  Transfers

static size_t
s_read_body (char *buffer, size_t size, size_t nitems, void *arg)
{
    s_photo_t *photo = (s_photo_t *) arg;
    size_t max = size * nitems, done = 0;
    while (done < max && photo->sent < photo->total) {
        const unsigned char *from;
        size_t left;
        if (photo->sent < photo->head_len) {
            from = photo->head + photo->sent;
            left = photo->head_len - photo->sent;
        }
        else {
            size_t at = photo->sent - photo->head_len + 2;     //  the source after its SOI
            from = photo->source->data + at;
            left = photo->source->size - at;
        }
        size_t n = left < max - done ? left : max - done;
        memcpy (buffer + done, from, n);
        done += n;
        photo->sent += n;
    }
    return done;
}

static size_t
s_header (char *data, size_t size, size_t nmemb, void *arg)
{
    s_xfer_t *xfer = (s_xfer_t *) arg;
    size_t n = size * nmemb;
    if (n == 2 && data [0] == '\r' && data [1] == '\n') {
        curl_easy_getinfo (xfer->easy, CURLINFO_RESPONSE_CODE, &xfer->status);
        if (xfer->status >= 200)
            xfer->headers_done = true;
    }
    return n;
}

static void
s_xfer_destroy (s_xfer_t **xfer_p)
{
    s_xfer_t *xfer = *xfer_p;
    if (!xfer)
        return;
    if (xfer->easy)
        curl_easy_cleanup (xfer->easy);
    curl_slist_free_all (xfer->headers);
    rp_buf_free (&xfer->body);
    free (xfer);
    *xfer_p = NULL;
}

static s_xfer_t *
s_xfer_new (s_run_t *self, s_kind_t kind, const char *path)
{
    s_xfer_t *xfer = (s_xfer_t *) calloc (1, sizeof (s_xfer_t));
    if (!xfer)
        return NULL;
    xfer->kind = kind;
    xfer->easy = curl_easy_init ();
    if (!xfer->easy) {
        free (xfer);
        return NULL;
    }
    char url [1024];
    snprintf (url, sizeof url, "%s%s", self->opt->url, path);
    CURL *e = xfer->easy;
    curl_easy_setopt (e, CURLOPT_URL, url);
    curl_easy_setopt (e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (e, CURLOPT_PRIVATE, xfer);
    curl_easy_setopt (e, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt (e, CURLOPT_HEADERDATA, xfer);
    //  The answer's start, at most body's maximum: the rest is read and dropped
    curl_easy_setopt (e, CURLOPT_WRITEFUNCTION, rp_buf_collect_head);
    curl_easy_setopt (e, CURLOPT_WRITEDATA, &xfer->body);
    curl_easy_setopt (e, CURLOPT_CONNECTTIMEOUT, 30L);
    xfer->headers = curl_slist_append (NULL, self->auth);
    rp_buf_init (&xfer->body, S_RESPONSE_MAX);
    return xfer;
}

static int
s_upload_start (s_run_t *self)
{
    s_photo_t *photo = &self->photos [self->next_photo++];
    s_photo_prepare (self, photo, (int) (photo - self->photos));
    s_xfer_t *xfer = s_xfer_new (self, S_UPLOAD, "/api/v1/photos");
    if (!xfer)
        return -1;
    xfer->photo = photo;
    photo->xfer = xfer;
    char name [128];
    snprintf (name, sizeof name, "X-Filename: load-%s-%05d.jpg", self->run, photo->index);
    xfer->headers = curl_slist_append (xfer->headers, "Content-Type: image/jpeg");
    xfer->headers = curl_slist_append (xfer->headers, name);
    xfer->headers = curl_slist_append (xfer->headers, "Expect:");
    CURL *e = xfer->easy;
    curl_easy_setopt (e, CURLOPT_HTTPHEADER, xfer->headers);
    curl_easy_setopt (e, CURLOPT_POST, 1L);
    curl_easy_setopt (e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) photo->total);
    curl_easy_setopt (e, CURLOPT_READFUNCTION, s_read_body);
    curl_easy_setopt (e, CURLOPT_READDATA, photo);
    curl_easy_setopt (e, CURLOPT_TIMEOUT, (long) ceil (self->opt->timeout_s));
    photo->state = S_UPLOADING;
    photo->started = s_now ();
    self->uploading++;
    curl_multi_add_handle (self->multi, e);
    return 0;
}

//  A final status for an acknowledged photo
static void
s_photo_final (s_run_t *self, s_photo_t *photo, const char *status, const char *error)
{
    if (photo->state != S_ACKED)
        return;
    photo->state = strcmp (status, "complete") == 0 ? S_COMPLETE : S_FAILED;
    photo->finished = s_now ();
    self->last_final = photo->finished;
    self->final++;
    if (photo->state == S_FAILED) {
        snprintf (photo->error, sizeof photo->error, "%s", error ? error : "failed");
        s_keep_error (self, "photo %d (%s) failed: %s", photo->index, photo->id, photo->error);
    }
}

static void
s_upload_done (s_run_t *self, s_xfer_t *xfer, CURLcode code)
{
    s_photo_t *photo = xfer->photo;
    photo->xfer = NULL;
    self->uploading--;
    curl_easy_getinfo (xfer->easy, CURLINFO_RESPONSE_CODE, &xfer->status);
    json_error_t jerr;
    json_t *answer = code == CURLE_OK && xfer->status == 202 && rp_buf_len (&xfer->body)
                   ? json_loads (rp_buf_data (&xfer->body), 0, &jerr) : NULL;
    json_t *entry = json_array_get (json_object_get (answer, "photos"), 0);
    const char *id = json_string_value (json_object_get (entry, "id"));
    if (!id || strlen (id) >= sizeof photo->id) {
        photo->state = S_ERROR;
        self->errors++;
        if (code != CURLE_OK)
            snprintf (photo->error, sizeof photo->error, "%s", curl_easy_strerror (code));
        else
            snprintf (photo->error, sizeof photo->error, "HTTP %ld: %.200s", xfer->status,
                      rp_buf_len (&xfer->body) ? rp_buf_data (&xfer->body) : "(no body)");
        s_keep_error (self, "upload %d: %s", photo->index, photo->error);
        json_decref (answer);
        return;
    }
    photo->acked = s_now ();
    self->last_ack = photo->acked;
    self->bytes_sent += photo->total;
    snprintf (photo->id, sizeof photo->id, "%s", id);
    photo->state = S_ACKED;
    self->acked++;
    if (json_is_true (json_object_get (entry, "duplicate")))
        self->duplicates++;
    json_object_set_new (self->by_id, id, json_integer (photo->index));
    //  Its events may have come before its answer
    json_t *seen = json_object_get (self->seen, id);
    if (seen)
        s_photo_final (self, photo, json_string_value (json_object_get (seen, "status")),
                       json_string_value (json_object_get (seen, "error")));
    const char *status = json_string_value (json_object_get (entry, "status"));
    if (status && (strcmp (status, "complete") == 0 || strcmp (status, "failed") == 0))
        s_photo_final (self, photo, status, NULL);     //  a duplicate already processed
    json_decref (answer);
}

//  --------------------------------------------------------------------------
//  The event stream

static void
s_event_dispatch (s_run_t *self)
{
    //  An event whose data went over S_SSE_LINE_MAX is not ours: dropped
    if (strcmp (self->event_name, "photo") == 0 && rp_buf_len (&self->event_data)
    &&  !rp_buf_error (&self->event_data)) {
        json_error_t jerr;
        json_t *data = json_loads (rp_buf_data (&self->event_data), 0, &jerr);
        const char *id = json_string_value (json_object_get (data, "id"));
        const char *status = json_string_value (json_object_get (data, "status"));
        if (id && status && (strcmp (status, "complete") == 0 || strcmp (status, "failed") == 0)) {
            json_object_set (self->seen, id, data);
            json_t *index = json_object_get (self->by_id, id);
            if (index)
                s_photo_final (self, &self->photos [json_integer_value (index)], status,
                               json_string_value (json_object_get (data, "error")));
        }
        json_decref (data);
    }
    self->event_name [0] = 0;
    rp_buf_reset (&self->event_data);
}

//  One line of the stream (without its '\n'): "field: value", a comment,
//  or the empty line that ends an event
static void
s_event_line (s_run_t *self, const char *line, size_t len)
{
    if (len && line [len - 1] == '\r')
        len--;
    if (len == 0) {
        s_event_dispatch (self);
        return;
    }
    if (line [0] == ':')
        return;                     //  a heartbeat comment
    const char *colon = memchr (line, ':', len);
    size_t name_len = colon ? (size_t) (colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    if (value < line + len && *value == ' ')
        value++;
    int value_len = (int) (line + len - value);
    if (name_len == 5 && memcmp (line, "event", 5) == 0)
        snprintf (self->event_name, sizeof self->event_name, "%.*s", value_len, value);
    else
    if (name_len == 2 && memcmp (line, "id", 2) == 0)
        snprintf (self->last_event_id, sizeof self->last_event_id, "%.*s", value_len, value);
    else
    if (name_len == 4 && memcmp (line, "data", 4) == 0)
        rp_buf_printf (&self->event_data, "%s%.*s", rp_buf_len (&self->event_data) ? "\n" : "",
                       value_len, value);
}

static s_run_t *s_self;             //  for the SSE write callback only

//  The stream cut into lines, each handed to s_event_line. A line over
//  S_SSE_LINE_MAX is not ours: the buffer refuses it, and it is dropped.
static size_t
s_write_events (char *data, size_t size, size_t nmemb, void *arg)
{
    rp_buf_t *line = (rp_buf_t *) arg;     //  the transfer's body (CURLOPT_WRITEDATA)
    size_t n = size * nmemb;
    for (const char *p = data, *end = data + n; p < end;) {
        const char *newline = memchr (p, '\n', (size_t) (end - p));
        rp_buf_append (line, p, (size_t) ((newline ? newline : end) - p));
        if (rp_buf_error (line) == ENOMEM)
            return 0;
        if (!newline)
            break;
        if (!rp_buf_error (line))
            s_event_line (s_self, rp_buf_data (line), rp_buf_len (line));
        rp_buf_reset (line);
        p = newline + 1;
    }
    return n;
}

static size_t
s_write_discard (char *data, size_t size, size_t nmemb, void *arg)
{
    return size * nmemb;
}

static s_xfer_t *
s_sse_start (s_run_t *self, s_kind_t kind)
{
    s_xfer_t *xfer = s_xfer_new (self, kind, "/api/v1/events");
    if (!xfer)
        return NULL;
    xfer->headers = curl_slist_append (xfer->headers, "Accept: text/event-stream");
    if (kind == S_EVENTS && self->last_event_id [0]) {
        char resume [64];
        snprintf (resume, sizeof resume, "Last-Event-ID: %s", self->last_event_id);
        xfer->headers = curl_slist_append (xfer->headers, resume);
    }
    CURL *e = xfer->easy;
    curl_easy_setopt (e, CURLOPT_HTTPHEADER, xfer->headers);
    if (kind == S_EVENTS) {
        rp_buf_init (&xfer->body, S_SSE_LINE_MAX);
        curl_easy_setopt (e, CURLOPT_WRITEFUNCTION, s_write_events);
    }
    else
        curl_easy_setopt (e, CURLOPT_WRITEFUNCTION, s_write_discard);
    curl_multi_add_handle (self->multi, e);
    return xfer;
}

//  --------------------------------------------------------------------------
//  The engine's process

//  utime + stime in seconds; -1 when unreadable
static double
s_proc_cpu (long pid)
{
    char path [64], buf [2048];
    snprintf (path, sizeof path, "/proc/%ld/stat", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    size_t n = fread (buf, 1, sizeof buf - 1, file);
    fclose (file);
    buf [n] = 0;
    char *end = strrchr (buf, ')');         //  the name may hold spaces
    if (!end)
        return -1;
    unsigned long long utime = 0, stime = 0;
    //  after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt
    //  majflt cmajflt utime(14) stime(15)
    if (sscanf (end + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

//  A "VmRSS:"/"VmHWM:" line of /proc/PID/status in MB; -1 when unreadable
static double
s_proc_memory (long pid, const char *key)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%ld/status", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    double mb = -1;
    size_t keylen = strlen (key);
    while (fgets (line, sizeof line, file))
        if (strncmp (line, key, keylen) == 0) {
            mb = strtod (line + keylen, NULL) / 1024.0;
            break;
        }
    fclose (file);
    return mb;
}

//  The one `rapidphoto serve` running, or 0 (with a reason) when none or several
static long
s_find_engine (char *why, size_t whylen)
{
    DIR *dir = opendir ("/proc");
    if (!dir) {
        snprintf (why, whylen, "cannot list /proc");
        return 0;
    }
    long found = 0;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (!isdigit ((unsigned char) entry->d_name [0]))
            continue;
        char path [300], args [4096];
        snprintf (path, sizeof path, "/proc/%s/cmdline", entry->d_name);
        FILE *file = fopen (path, "r");
        if (!file)
            continue;
        size_t n = fread (args, 1, sizeof args - 1, file);
        fclose (file);
        args [n] = 0;
        const char *argv0 = args;
        const char *argv1 = strlen (args) < n ? args + strlen (args) + 1 : "";
        const char *base = strrchr (argv0, '/') ? strrchr (argv0, '/') + 1 : argv0;
        if (strcmp (base, "rapidphoto") == 0 && strcmp (argv1, "serve") == 0) {
            found = strtol (entry->d_name, NULL, 10);
            count++;
        }
    }
    closedir (dir);
    if (count != 1) {
        snprintf (why, whylen, count ? "%d `rapidphoto serve` processes run: pass --pid" :
                  "no `rapidphoto serve` process found: pass --pid", count);
        return 0;
    }
    return found;
}

//  --------------------------------------------------------------------------
//  Simple requests: login, /metrics

static char *
s_get_simple (s_run_t *self, const char *path, const char *post, long *status, size_t max)
{
    s_xfer_t *xfer = s_xfer_new (self, S_UPLOAD, path);
    if (!xfer)
        return NULL;
    rp_buf_init (&xfer->body, max);
    if (post) {
        xfer->headers = curl_slist_append (xfer->headers, "Content-Type: application/json");
        curl_easy_setopt (xfer->easy, CURLOPT_POSTFIELDS, post);
    }
    curl_easy_setopt (xfer->easy, CURLOPT_HTTPHEADER, xfer->headers);
    curl_easy_setopt (xfer->easy, CURLOPT_TIMEOUT, 30L);
    CURLcode code = curl_easy_perform (xfer->easy);
    curl_easy_getinfo (xfer->easy, CURLINFO_RESPONSE_CODE, status);
    char *body = NULL;
    if (code == CURLE_OK && !rp_buf_error (&xfer->body))
        body = rp_buf_take (&xfer->body);
    else
    if (code != CURLE_OK)
        fprintf (stderr, "rp_load: %s%s: %s\n", self->opt->url, path, curl_easy_strerror (code));
    else
        fprintf (stderr, "rp_load: %s%s: the answer is over %zu bytes\n", self->opt->url, path, max);
    s_xfer_destroy (&xfer);
    return body;
}

static int
s_login (s_run_t *self)
{
    if (self->opt->token) {
        snprintf (self->auth, sizeof self->auth, "Authorization: Bearer %s", self->opt->token);
        return 0;
    }
    json_t *request = json_pack ("{s:s, s:s}", "username", self->opt->user, "password", self->opt->password);
    char *text = json_dumps (request, JSON_COMPACT);
    json_decref (request);
    self->auth [0] = 0;
    long status = 0;
    char *body = text ? s_get_simple (self, "/api/v1/auth/login", text, &status, S_RESPONSE_MAX) : NULL;
    free (text);
    json_error_t jerr;
    json_t *answer = body && status == 200 ? json_loads (body, 0, &jerr) : NULL;
    const char *token = json_string_value (json_object_get (answer, "token"));
    int rc = -1;
    if (token && strlen (token) < sizeof self->auth - 32) {
        snprintf (self->auth, sizeof self->auth, "Authorization: Bearer %s", token);
        rc = 0;
    }
    else
    if (body)
        fprintf (stderr, "rp_load: login as %s refused: HTTP %ld %.200s\n", self->opt->user, status, body);
    json_decref (answer);
    free (body);
    return rc;
}

typedef struct {
    char stage [48];
    double seconds;
    double count;
} s_stage_t;

//  rapidphoto_stage_seconds_total / _observations_total from /metrics
static int
s_metrics_stages (s_run_t *self, s_stage_t *stages, int max)
{
    long status = 0;
    char *text = s_get_simple (self, "/metrics", NULL, &status, S_METRICS_MAX);
    int n = 0;
    char *next = NULL;
    for (char *line = text; line && *line; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        static const char *names [2] = { "rapidphoto_stage_seconds_total{stage=\"",
                                         "rapidphoto_stage_observations_total{stage=\"" };
        for (int k = 0; k < 2; k++) {
            size_t len = strlen (names [k]);
            if (strncmp (line, names [k], len) != 0)
                continue;
            char *name = line + len, *quote = strchr (name, '"');
            if (!quote || quote [1] != '}' || (size_t) (quote - name) >= sizeof stages [0].stage)
                continue;
            *quote = 0;
            double value = strtod (quote + 2, NULL);
            int i = 0;
            while (i < n && strcmp (stages [i].stage, name) != 0)
                i++;
            if (i == n) {
                if (n == max)
                    continue;
                memset (&stages [n], 0, sizeof stages [n]);
                snprintf (stages [n].stage, sizeof stages [n].stage, "%s", name);
                n++;
            }
            if (k == 0)
                stages [i].seconds = value;
            else
                stages [i].count = value;
        }
    }
    free (text);
    return n;
}

//  How many observations a stage gained between two readings
static double
s_stage_delta (const s_stage_t *before, int nbefore, const s_stage_t *after, int nafter,
               const char *stage)
{
    double a = 0, b = 0;
    for (int i = 0; i < nbefore; i++)
        if (strcmp (before [i].stage, stage) == 0)
            a = before [i].count;
    for (int i = 0; i < nafter; i++)
        if (strcmp (after [i].stage, stage) == 0)
            b = after [i].count;
    return b - a;
}

static int
s_count_complete (s_run_t *self)
{
    int n = 0;
    for (int i = 0; i < self->opt->photos; i++)
        n += self->photos [i].state == S_COMPLETE;
    return n;
}

//  --------------------------------------------------------------------------
//  Figures

static int
s_compare_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  Nearest-rank percentile of sorted values
static double
s_percentile (const double *sorted, int n, double p)
{
    if (n == 0)
        return 0;
    int rank = (int) ceil (p / 100.0 * n);
    if (rank < 1)
        rank = 1;
    return sorted [rank - 1];
}

static json_t *
s_round (double value, int digits)
{
    double scale = pow (10, digits);
    return json_real (round (value * scale) / scale);
}

//  --------------------------------------------------------------------------

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: rp_load --url URL (--token TOKEN | --user NAME [--password P | env RP_LOAD_PASSWORD])\n"
        "               --source FILE.jpg [--source ...] [--photos N] [--clients C] [--idle-sse K]\n"
        "               [--pid PID | --no-pid] [--json FILE] [--label TEXT] [--timeout S]\n"
        "               [--p95-max S] [--failed-max PERCENT] [--complete-max S] [--rss-max MB] [--quiet]\n"
        "Uploads N unique photos (made from the sources) with C concurrent clients to a running\n"
        "`rapidphoto serve`, follows /api/v1/events until each is complete or failed, and reports\n"
        "latency, throughput, errors, the engine's CPU and memory, and the per-stage times.\n"
        "Exit: 0 thresholds met, 1 missed or error, 2 usage.\n");
}

static int
s_parse (int argc, char **argv, s_options_t *o)
{
    static const struct option longopts [] = {
        { "url", required_argument, NULL, 'u' },
        { "token", required_argument, NULL, 't' },
        { "user", required_argument, NULL, 'U' },
        { "password", required_argument, NULL, 'P' },
        { "source", required_argument, NULL, 's' },
        { "photos", required_argument, NULL, 'n' },
        { "clients", required_argument, NULL, 'c' },
        { "idle-sse", required_argument, NULL, 'i' },
        { "pid", required_argument, NULL, 'p' },
        { "no-pid", no_argument, NULL, 'N' },
        { "json", required_argument, NULL, 'j' },
        { "label", required_argument, NULL, 'l' },
        { "timeout", required_argument, NULL, 'T' },
        { "p95-max", required_argument, NULL, '9' },
        { "failed-max", required_argument, NULL, 'f' },
        { "complete-max", required_argument, NULL, 'C' },
        { "rss-max", required_argument, NULL, 'R' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    opterr = 0;
    while ((opt = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
        char *end = NULL;
        errno = 0;
        switch (opt) {
            case 'u': o->url = optarg; break;
            case 't': o->token = optarg; break;
            case 'U': o->user = optarg; break;
            case 'P': o->password = optarg; break;
            case 's':
                if (o->nsources == S_SOURCES_MAX) {
                    fprintf (stderr, "rp_load: at most %d --source files\n", S_SOURCES_MAX);
                    return 2;
                }
                o->sources [o->nsources++] = optarg;
                break;
            case 'n': case 'c': case 'i': case 'p': {
                long v = strtol (optarg, &end, 10);
                if (errno || *end || v < (opt == 'i' ? 0 : 1) || v > 1000000) {
                    fprintf (stderr, "rp_load: %s wants a number, not \"%s\"\n", argv [optind - 1], optarg);
                    return 2;
                }
                if (opt == 'n') o->photos = (int) v;
                if (opt == 'c') o->clients = (int) v;
                if (opt == 'i') o->idle_sse = (int) v;
                if (opt == 'p') o->pid = v;
                break;
            }
            case 'N': o->pid = -1; break;
            case 'j': o->json_path = optarg; break;
            case 'l': o->label = optarg; break;
            case 'T': case '9': case 'f': case 'C': case 'R': {
                double v = strtod (optarg, &end);
                if (errno || *end || !(v >= 0) || v > 1e9) {
                    fprintf (stderr, "rp_load: %s wants a number, not \"%s\"\n", argv [optind - 1], optarg);
                    return 2;
                }
                if (opt == 'T') o->timeout_s = v;
                if (opt == '9') o->p95_max_s = v;
                if (opt == 'f') o->failed_max_percent = v;
                if (opt == 'C') o->complete_max_s = v;
                if (opt == 'R') o->rss_max_mb = v;
                break;
            }
            case 'q': o->quiet = true; break;
            case 'h': s_usage (stdout); exit (0);
            default:
                fprintf (stderr, "rp_load: unknown option or missing value: %s\n", argv [optind - 1]);
                s_usage (stderr);
                return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "rp_load: unexpected argument \"%s\"\n", argv [optind]);
        return 2;
    }
    if (!o->password)
        o->password = getenv ("RP_LOAD_PASSWORD");
    if (!o->url || !o->nsources || (!o->token && !(o->user && o->password))) {
        fprintf (stderr, "rp_load: --url, at least one --source, and --token or --user with a password are needed\n");
        s_usage (stderr);
        return 2;
    }
    size_t len = strlen (o->url);
    if (len && o->url [len - 1] == '/') {
        fprintf (stderr, "rp_load: --url without a trailing slash, e.g. http://127.0.0.1:8080\n");
        return 2;
    }
    return 0;
}

//  Raise the open-files limit to the hard limit: each stream is a socket
static void
s_raise_nofile (s_run_t *self, int wanted)
{
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit (RLIMIT_NOFILE, &rl);
    }
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && (rlim_t) wanted > rl.rlim_cur)
        s_say (self, "warning: RLIMIT_NOFILE is %llu, fewer than the %d sockets wanted",
               (unsigned long long) rl.rlim_cur, wanted);
}

//  Drive the multi until cond or the deadline; false on the deadline
static bool
s_pump (s_run_t *self, bool (*cond) (s_run_t *), double deadline, long pid, double *peak_rss);

static bool
s_events_ready (s_run_t *self)
{
    return self->events && self->events->headers_done;
}

static bool
s_idle_ready (s_run_t *self)
{
    return self->idle_connected + self->idle_refused >= self->opt->idle_sse;
}

static bool
s_all_final (s_run_t *self)
{
    return self->next_photo == self->opt->photos && self->uploading == 0
        && self->final == self->acked;
}

static void
s_handle_done (s_run_t *self, CURLMsg *msg)
{
    s_xfer_t *xfer = NULL;
    curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &xfer);
    curl_multi_remove_handle (self->multi, msg->easy_handle);
    if (xfer->kind == S_UPLOAD) {
        s_upload_done (self, xfer, msg->data.result);
        s_xfer_destroy (&xfer);
    }
    else
    if (xfer->kind == S_EVENTS) {
        //  The stream ended: come back where it stopped
        long status = 0;
        curl_easy_getinfo (xfer->easy, CURLINFO_RESPONSE_CODE, &status);
        s_keep_error (self, "event stream ended (HTTP %ld, %s); reconnecting", status,
                      curl_easy_strerror (msg->data.result));
        s_xfer_destroy (&self->events);
        self->events_reconnects++;
        if (self->events_reconnects <= 20)
            self->events = s_sse_start (self, S_EVENTS);
    }
    else {
        //  An idle stream ended or was refused
        long status = 0;
        curl_easy_getinfo (xfer->easy, CURLINFO_RESPONSE_CODE, &status);
        if (!xfer->headers_done || status != 200) {
            self->idle_refused++;
            if (!self->idle_error [0])
                snprintf (self->idle_error, sizeof self->idle_error, "HTTP %ld, %s", status,
                          curl_easy_strerror (msg->data.result));
        }
        else
            self->idle_dropped++;           //  it was open, and the server ended it
        for (int i = 0; i < self->opt->idle_sse; i++)
            if (self->idle [i] == xfer)
                self->idle [i] = NULL;
        s_xfer_destroy (&xfer);
    }
}

static bool
s_pump (s_run_t *self, bool (*cond) (s_run_t *), double deadline, long pid, double *peak_rss)
{
    double next_sample = 0;
    while (!cond (self)) {
        double now = s_now ();
        if (now >= deadline)
            return false;
        while (self->next_photo < self->opt->photos && self->uploading < self->opt->clients
           &&  self->t0 > 0)
            if (s_upload_start (self))
                return false;
        int running = 0;
        curl_multi_perform (self->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read (self->multi, &left)))
            if (msg->msg == CURLMSG_DONE)
                s_handle_done (self, msg);
        //  Idle streams count as connected once their headers are in
        if (self->idle) {
            int connected = 0;
            for (int i = 0; i < self->opt->idle_sse; i++)
                if (self->idle [i] && self->idle [i]->headers_done && self->idle [i]->status == 200)
                    connected++;
            self->idle_connected = connected;
        }
        if (pid > 0 && now >= next_sample) {
            double rss = s_proc_memory (pid, "VmRSS:");
            if (rss > *peak_rss)
                *peak_rss = rss;
            next_sample = now + 0.1;
        }
        curl_multi_poll (self->multi, NULL, 0, 50, NULL);
    }
    return true;
}

static void
s_table_row (const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    printf ("  %-34s ", name);
    vprintf (fmt, ap);
    printf ("\n");
    va_end (ap);
}

int
main (int argc, char **argv)
{
    s_options_t o = { .photos = 100, .clients = 100, .timeout_s = 600, .p95_max_s = 2.0,
                      .failed_max_percent = 1.0, .label = "load" };
    int rc = s_parse (argc, argv, &o);
    if (rc)
        return rc;
    s_run_t run;
    memset (&run, 0, sizeof run);
    s_run_t *self = &run;
    s_self = self;
    self->opt = &o;
    rp_buf_init (&self->event_data, S_SSE_LINE_MAX);
    for (int i = 0; i < o.nsources; i++)
        if (s_source_load (&self->sources [i], o.sources [i]))
            return 1;
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_raise_nofile (self, o.clients + o.idle_sse + 64);
    self->multi = curl_multi_init ();
    curl_multi_setopt (self->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) (o.clients + o.idle_sse + 8));
    self->photos = (s_photo_t *) calloc ((size_t) o.photos, sizeof (s_photo_t));
    self->seen = json_object ();
    self->by_id = json_object ();
    snprintf (self->run, sizeof self->run, "%lx%04lx", (long) getpid (), (long) (s_now () * 1000) % 0x10000);

    long pid = o.pid;
    char why [256] = "";
    if (pid == 0)
        pid = s_find_engine (why, sizeof why);
    if (pid > 0 && s_proc_cpu (pid) < 0) {
        snprintf (why, sizeof why, "cannot read /proc/%ld/stat", pid);
        pid = 0;
    }
    if (pid <= 0 && o.pid != -1)
        s_say (self, "no engine figures: %s", why);

    if (s_login (self)) {
        fprintf (stderr, "rp_load: cannot get a token from %s\n", o.url);
        return 1;
    }
    s_stage_t stages0 [S_STAGES_MAX], stages1 [S_STAGES_MAX];
    int nstages0 = s_metrics_stages (self, stages0, S_STAGES_MAX);

    //  The event stream first, then the idle ones, then the uploads
    double peak_rss = -1;
    self->events = s_sse_start (self, S_EVENTS);
    if (!s_pump (self, s_events_ready, s_now () + 30, pid, &peak_rss) || self->events->status != 200) {
        fprintf (stderr, "rp_load: the event stream %s/api/v1/events did not open (HTTP %ld)\n", o.url,
                 self->events ? self->events->status : 0L);
        return 1;
    }
    if (o.idle_sse) {
        self->idle = (s_xfer_t **) calloc ((size_t) o.idle_sse, sizeof (s_xfer_t *));
        for (int i = 0; i < o.idle_sse; i++)
            self->idle [i] = s_sse_start (self, S_IDLE);
        s_pump (self, s_idle_ready, s_now () + 60, pid, &peak_rss);
        s_say (self, "%d of %d idle event streams open%s%s", self->idle_connected, o.idle_sse,
               self->idle_refused ? "; refused: " : "", self->idle_error);
    }
    int idle_open_at_start = self->idle_connected;
    double cpu0 = pid > 0 ? s_proc_cpu (pid) : -1;
    s_say (self, "%d photos from %d source(s), %d clients, run %s", o.photos, o.nsources, o.clients, self->run);
    self->t0 = s_now ();
    bool finished = s_pump (self, s_all_final, self->t0 + o.timeout_s, pid, &peak_rss);
    double t_end = s_now ();
    double cpu1 = pid > 0 ? s_proc_cpu (pid) : -1;
    double hwm = pid > 0 ? s_proc_memory (pid, "VmHWM:") : -1;
    int idle_open_at_end = self->idle_connected;
    //  The last photo's stage times are added just after its commit (and
    //  the last upload's when its request is closed): give them a moment
    int nstages1 = 0;
    for (int attempt = 0; attempt < 20; attempt++) {
        nstages1 = s_metrics_stages (self, stages1, S_STAGES_MAX);
        double uploads = s_stage_delta (stages0, nstages0, stages1, nstages1, "upload");
        double commits = s_stage_delta (stages0, nstages0, stages1, nstages1, "database");
        if (nstages1 == 0 || (uploads >= self->acked && commits >= s_count_complete (self)))
            break;
        usleep (100 * 1000);
    }

    //  ------------------------------------------------------------ figures
    int complete = 0, failed = 0, unfinished = 0;
    double *lat = (double *) calloc ((size_t) o.photos + 1, sizeof (double));
    int nlat = 0;
    for (int i = 0; i < o.photos; i++) {
        s_photo_t *p = &self->photos [i];
        if (p->state == S_COMPLETE) complete++;
        if (p->state == S_FAILED) failed++;
        if (p->state == S_ACKED || p->state == S_PENDING || p->state == S_UPLOADING) unfinished++;
        if (p->acked > 0)
            lat [nlat++] = p->acked - p->started;
    }
    qsort (lat, (size_t) nlat, sizeof (double), s_compare_double);
    double lat_sum = 0;
    for (int i = 0; i < nlat; i++)
        lat_sum += lat [i];
    double p50 = s_percentile (lat, nlat, 50), p95 = s_percentile (lat, nlat, 95),
           p99 = s_percentile (lat, nlat, 99), lat_max = nlat ? lat [nlat - 1] : 0;
    double upload_s = self->last_ack > 0 ? self->last_ack - self->t0 : 0;
    double complete_s = finished && self->last_final > 0 ? self->last_final - self->t0 : t_end - self->t0;
    double mb = (double) self->bytes_sent / 1e6;
    double photos_per_s = complete_s > 0 ? complete / complete_s : 0;
    double not_ok = self->errors + failed + unfinished;
    double failed_percent = o.photos ? 100.0 * not_ok / o.photos : 0;
    double cpu_s = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;

    bool pass_p95 = nlat > 0 && p95 < o.p95_max_s;
    bool pass_failed = failed_percent < o.failed_max_percent;
    bool pass_complete = o.complete_max_s <= 0 || (finished && complete_s < o.complete_max_s);
    double rss_peak = hwm > peak_rss ? hwm : peak_rss;
    bool pass_rss = o.rss_max_mb <= 0 || (rss_peak > 0 && rss_peak < o.rss_max_mb);
    bool pass = pass_p95 && pass_failed && pass_complete && pass_rss && finished;

    //  Stages: the difference over the run, per photo
    json_t *jstages = json_object ();
    for (int i = 0; i < nstages1; i++) {
        double s0 = 0, c0 = 0;
        for (int k = 0; k < nstages0; k++)
            if (strcmp (stages0 [k].stage, stages1 [i].stage) == 0) {
                s0 = stages0 [k].seconds;
                c0 = stages0 [k].count;
            }
        double count = stages1 [i].count - c0;
        if (count <= 0)
            continue;
        json_object_set_new (jstages, stages1 [i].stage,
                             json_pack ("{s:o, s:o, s:o}",
                                        "ms_per_photo", s_round ((stages1 [i].seconds - s0) * 1000.0 / count, 2),
                                        "seconds", s_round (stages1 [i].seconds - s0, 3),
                                        "count", json_integer ((json_int_t) count)));
    }

    json_t *report = json_object ();
    json_object_set_new (report, "label", json_string (o.label));
    json_object_set_new (report, "url", json_string (o.url));
    json_t *sources = json_array ();
    uint64_t source_bytes = 0;
    for (int i = 0; i < o.nsources; i++) {
        json_array_append_new (sources, json_string (self->sources [i].path));
        source_bytes += self->sources [i].size;
    }
    json_object_set_new (report, "sources", sources);
    json_object_set_new (report, "photo_bytes_average", json_integer ((json_int_t) (source_bytes / (uint64_t) o.nsources)));
    json_object_set_new (report, "clients", json_integer (o.clients));
    json_object_set_new (report, "photos", json_pack ("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
        "requested", o.photos, "acknowledged", self->acked, "complete", complete, "failed", failed,
        "upload_errors", self->errors, "unfinished", unfinished, "duplicates", self->duplicates));
    json_object_set_new (report, "ack_latency_s", json_pack ("{s:o, s:o, s:o, s:o, s:o}",
        "p50", s_round (p50, 4), "p95", s_round (p95, 4), "p99", s_round (p99, 4),
        "max", s_round (lat_max, 4), "mean", s_round (nlat ? lat_sum / nlat : 0, 4)));
    json_object_set_new (report, "all_acknowledged_s", s_round (upload_s, 3));
    json_object_set_new (report, "all_complete_s", s_round (complete_s, 3));
    json_object_set_new (report, "finished", json_boolean (finished));
    json_object_set_new (report, "photos_per_s", s_round (photos_per_s, 2));
    json_object_set_new (report, "uploaded_mb", s_round (mb, 2));
    json_object_set_new (report, "upload_mb_per_s", s_round (upload_s > 0 ? mb / upload_s : 0, 2));
    json_object_set_new (report, "processed_mb_per_s", s_round (complete_s > 0 ? mb * complete / (o.photos ? o.photos : 1) / complete_s : 0, 2));
    json_object_set_new (report, "engine", pid > 0
        ? json_pack ("{s:I, s:o, s:o, s:o, s:o}", "pid", (json_int_t) pid,
                     "cpu_s", s_round (cpu_s, 2),
                     "cpu_s_per_photo", s_round (complete + failed ? cpu_s / (complete + failed) : 0, 4),
                     "peak_rss_mb_sampled", s_round (peak_rss, 1), "vm_hwm_mb", s_round (hwm, 1))
        : json_pack ("{s:s}", "unavailable", why));
    json_object_set_new (report, "idle_sse", json_pack ("{s:i, s:i, s:i, s:i, s:i, s:s}",
        "requested", o.idle_sse, "open_at_start", idle_open_at_start, "open_at_end", idle_open_at_end,
        "refused", self->idle_refused, "dropped", self->idle_dropped, "first_refusal", self->idle_error));
    json_object_set_new (report, "event_stream_reconnects", json_integer (self->events_reconnects));
    json_object_set_new (report, "stages", jstages);
    json_t *errors = json_array ();
    for (int i = 0; i < self->nerrors_kept; i++)
        json_array_append_new (errors, json_string (self->errors_kept [i]));
    json_object_set_new (report, "errors", errors);
    json_object_set_new (report, "thresholds", json_pack ("{s:f, s:f, s:o, s:o, s:b, s:b, s:b, s:b, s:b}",
        "p95_ack_s_max", o.p95_max_s, "failed_percent_max", o.failed_max_percent,
        "complete_s_max", o.complete_max_s > 0 ? json_real (o.complete_max_s) : json_null (),
        "rss_mb_max", o.rss_max_mb > 0 ? json_real (o.rss_max_mb) : json_null (),
        "p95_ok", pass_p95, "failed_ok", pass_failed, "complete_ok", pass_complete,
        "rss_ok", pass_rss, "finished", finished));
    json_object_set_new (report, "failed_percent", s_round (failed_percent, 2));
    json_object_set_new (report, "pass", json_boolean (pass));

    //  ------------------------------------------------------------ table
    printf ("%s: %d photos (%.2f MB average), %d clients, %d idle event streams\n", o.label, o.photos,
            (double) source_bytes / o.nsources / 1e6, o.clients, o.idle_sse);
    s_table_row ("photos acknowledged / complete", "%d / %d (failed %d, upload errors %d, unfinished %d)",
                 self->acked, complete, failed, self->errors, unfinished);
    s_table_row ("ack latency p50 / p95 / p99 (s)", "%.3f / %.3f / %.3f (max %.3f)", p50, p95, p99, lat_max);
    s_table_row ("all acknowledged after (s)", "%.2f", upload_s);
    s_table_row ("all complete after (s)", "%.2f%s", complete_s, finished ? "" : " (timed out)");
    s_table_row ("photos/s (complete)", "%.2f", photos_per_s);
    s_table_row ("MB/s (upload, processed)", "%.2f, %.2f", upload_s > 0 ? mb / upload_s : 0,
                 complete_s > 0 ? mb * complete / (o.photos ? o.photos : 1) / complete_s : 0);
    if (pid > 0) {
        s_table_row ("engine CPU s per photo", "%.3f (%.1f s in all)",
                     complete + failed ? cpu_s / (complete + failed) : 0, cpu_s);
        s_table_row ("engine peak RSS (MB)", "%.1f (VmHWM), %.1f (sampled VmRSS)", hwm, peak_rss);
    }
    else
        s_table_row ("engine CPU and memory", "unavailable: %s", why);
    if (o.idle_sse)
        s_table_row ("idle event streams open", "%d of %d at the start, %d at the end%s%s",
                     idle_open_at_start, o.idle_sse, idle_open_at_end,
                     self->idle_refused ? "; refused: " : "", self->idle_error);
    if (json_object_size (jstages)) {
        printf ("  stage breakdown (ms per photo; upload = receive + hash + store + row, per request):\n");
        const char *key;
        json_t *value;
        json_object_foreach (jstages, key, value)
            printf ("    %-16s %9.2f\n", key, json_real_value (json_object_get (value, "ms_per_photo")));
    }
    for (int i = 0; i < self->nerrors_kept; i++)
        printf ("  error: %s\n", self->errors_kept [i]);
    printf ("  thresholds: p95 ack < %.2f s %s; failed < %.2f %% %s (%.2f %%)", o.p95_max_s,
            pass_p95 ? "ok" : "MISSED", o.failed_max_percent, pass_failed ? "ok" : "MISSED", failed_percent);
    if (o.complete_max_s > 0)
        printf ("; complete < %.1f s %s", o.complete_max_s, pass_complete ? "ok" : "MISSED");
    if (o.rss_max_mb > 0)
        printf ("; peak RSS < %.0f MB %s", o.rss_max_mb, pass_rss ? "ok" : "MISSED");
    printf ("\n%s\n", pass ? "PASS" : "FAIL");
    fflush (stdout);

    int out_rc = 0;
    if (o.json_path) {
        if (json_dump_file (report, o.json_path, JSON_INDENT (2) | JSON_SORT_KEYS)) {
            fprintf (stderr, "rp_load: cannot write %s\n", o.json_path);
            out_rc = 1;
        }
    }

    //  ------------------------------------------------------------ cleanup
    for (int i = 0; self->idle && i < o.idle_sse; i++)
        if (self->idle [i]) {
            curl_multi_remove_handle (self->multi, self->idle [i]->easy);
            s_xfer_destroy (&self->idle [i]);
        }
    free (self->idle);
    if (self->events)
        curl_multi_remove_handle (self->multi, self->events->easy);
    s_xfer_destroy (&self->events);
    //  Uploads still running (timeout)
    for (int i = 0; i < o.photos; i++) {
        s_xfer_t *xfer = (s_xfer_t *) self->photos [i].xfer;
        if (xfer) {
            curl_multi_remove_handle (self->multi, xfer->easy);
            s_xfer_destroy (&xfer);
        }
    }
    curl_multi_cleanup (self->multi);
    curl_global_cleanup ();
    json_decref (report);
    json_decref (self->seen);
    json_decref (self->by_id);
    rp_buf_free (&self->event_data);
    free (lat);
    free (self->photos);
    for (int i = 0; i < o.nsources; i++)
        free (self->sources [i].data);
    return out_rc ? 1 : pass ? 0 : 1;
}
