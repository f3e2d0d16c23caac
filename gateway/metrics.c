/*  gateway/metrics.c: GET /metrics in Prometheus' text format, and the
    counters every request adds to.

    DESIGN
    Threads: rp_gw_metrics_record runs on every MHD thread (from the
    completion callback, routes.c); rp_gw_metrics_text on the thread that
    answers /metrics.
    Owns: one small fixed table (requests per route and status, the
    duration histogram, bytes received, accepted uploads' time) under one
    mutex. Past S_ROUTES_MAX route/status pairs new pairs are not counted
    by route, but still in the histogram and totals.
    The rest of the answer is what the process already knows: the
    pipeline's stage totals (library/pipeline.h), the open event streams,
    and what the readiness prober (readyz.c) last found: photos by status,
    queues and workers per pool (the broker's STATUS) and each check's
    state. Nothing is asked of a dependency while /metrics waits, so it
    answers in milliseconds whatever the database or the broker is doing;
    what the prober could not get is left out, the rest still comes.
    What it shows: counters and gauges, labelled by route (method and a
    fixed name), status, pool and stage; never a bucket, path, user or
    error text. With metrics.token set it wants that as a Bearer token
    (routes.c). Label values are escaped as the text format asks.
*/
#include "gateway/gateway_private.h"
#include <czmq.h>
#include "library/pipeline.h"
#include "gateway/events.h"
#include "engine/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define S_ROUTES_MAX 64
static const double s_buckets [] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define S_BUCKETS (sizeof s_buckets / sizeof s_buckets [0])

typedef struct {
    char route [48];
    int status;
    uint64_t count;
} s_counter_t;

static struct {
    pthread_mutex_t lock;
    s_counter_t counters [S_ROUTES_MAX];
    int ncounters;
    uint64_t buckets [S_BUCKETS];
    uint64_t observations;
    double duration_sum;
    uint64_t bytes_in;
    uint64_t uploads;
    double upload_seconds;          //  accepted uploads (202), first header to answer
    uint64_t upload_count;
} s_metrics = { .lock = PTHREAD_MUTEX_INITIALIZER };

//  A label value as the text format wants it: backslash, quote and new
//  line escaped (names from the broker are its workers' job kinds)
static void
s_label (const char *value, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *c = value; *c && o + 3 < outlen; c++) {
        if (*c == '\\' || *c == '"')
            out [o++] = '\\';
        if (*c == '\n') {
            out [o++] = '\\';
            out [o++] = 'n';
        }
        else
            out [o++] = *c;
    }
    out [o] = 0;
}

//  A request that would have taken an upload in: "POST upload", "POST
//  tus", "PATCH tus", "POST presign", "POST upload_complete"
static bool
s_upload_route (const char *route)
{
    return streq (route, "POST upload") || streq (route, "POST tus") || streq (route, "PATCH tus")
        || streq (route, "POST presign") || streq (route, "POST upload_complete");
}

//  For the EMF documents (engine/metrics.h): an acknowledgement's time, and
//  uploads refused for what they are. Uploads the storage could not take
//  (503) are counted where that was found, in the library's ingest; the
//  uploads themselves (UploadCount) too.
static void
s_metrics_emf (const rp_req_t *req, int64_t duration_ms)
{
    if (req->acknowledged)
        rp_metrics_ack ((double) duration_ms);
    if (!s_upload_route (req->route))
        return;
    if (req->status == 413)
        rp_metrics_failure (RP_FAILURE_TOO_LARGE);
    else
    if (req->status == 415)
        rp_metrics_failure (RP_FAILURE_NOT_AN_IMAGE);
    else
    if (req->status == 400)
        rp_metrics_failure (RP_FAILURE_INVALID);
}

void
rp_gw_metrics_record (const rp_req_t *req, int64_t duration_ms)
{
    s_metrics_emf (req, duration_ms);
    pthread_mutex_lock (&s_metrics.lock);
    s_counter_t *counter = NULL;
    for (int i = 0; i < s_metrics.ncounters && !counter; i++)
        if (s_metrics.counters [i].status == req->status && streq (s_metrics.counters [i].route, req->route))
            counter = &s_metrics.counters [i];
    if (!counter && s_metrics.ncounters < S_ROUTES_MAX) {
        counter = &s_metrics.counters [s_metrics.ncounters++];
        snprintf (counter->route, sizeof counter->route, "%s", req->route);
        counter->status = req->status;
    }
    if (counter)
        counter->count++;
    double seconds = (double) duration_ms / 1000.0;
    for (size_t i = 0; i < S_BUCKETS; i++)
        if (seconds <= s_buckets [i])
            s_metrics.buckets [i]++;
    s_metrics.observations++;
    s_metrics.duration_sum += seconds;
    s_metrics.bytes_in += (uint64_t) req->bytes_in;
    if (req->status == 202 && streq (req->route, "POST upload")) {
        s_metrics.upload_seconds += seconds;
        s_metrics.upload_count++;
    }
    pthread_mutex_unlock (&s_metrics.lock);
}

//  Per-stage time: the upload (receive, SHA-256 on the way, fsync, the
//  row's commit: one span, the acknowledgement) and, when this process runs
//  the pipeline, its stages (see pipeline.h)
//  The scrub's totals in this process (engine/metrics.h): the background
//  scrub of serve; `rapidphoto scrub` logs its own
static void
s_metrics_scrub (FILE *out)
{
    rp_metrics_scrub_t scrub;
    rp_metrics_scrub_get (&scrub);
    const struct { const char *name; const char *help; uint64_t value; } rows [] = {
        { "checked", "Originals re-read and hashed by the scrub.", scrub.checked },
        { "bytes", "Bytes the scrub read.", scrub.bytes },
        { "damaged", "Originals the scrub found missing or not hashing to their name.", scrub.damaged },
        { "regenerated", "Derivatives the scrub made again (lost or not decoding).", scrub.regenerated },
        { "errors", "Scrub checks that could not finish (storage unreachable).", scrub.errors },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows [0]; i++)
        fprintf (out, "# HELP rapidphoto_scrub_%s_total %s\n# TYPE rapidphoto_scrub_%s_total counter\n"
                      "rapidphoto_scrub_%s_total %llu\n", rows [i].name, rows [i].help, rows [i].name,
                 rows [i].name, (unsigned long long) rows [i].value);
}

static void
s_metrics_stages (FILE *out, double upload_seconds, uint64_t upload_count)
{
    rp_stage_total_t stages [32];
    int n = rp_pipeline_stage_totals (stages, 32);
    fprintf (out, "# HELP rapidphoto_stage_seconds_total Time spent per stage (upload: receive, hash, "
                  "store and row until the 202; the others per photo completed in this process).\n"
                  "# TYPE rapidphoto_stage_seconds_total counter\n"
                  "rapidphoto_stage_seconds_total{stage=\"upload\"} %.6f\n", upload_seconds);
    for (int i = 0; i < n; i++)
        fprintf (out, "rapidphoto_stage_seconds_total{stage=\"%s\"} %.6f\n", stages [i].stage, stages [i].seconds);
    fprintf (out, "# HELP rapidphoto_stage_observations_total Uploads or photos counted in each stage's time.\n"
                  "# TYPE rapidphoto_stage_observations_total counter\n"
                  "rapidphoto_stage_observations_total{stage=\"upload\"} %llu\n",
             (unsigned long long) upload_count);
    for (int i = 0; i < n; i++)
        fprintf (out, "rapidphoto_stage_observations_total{stage=\"%s\"} %llu\n", stages [i].stage,
                 (unsigned long long) stages [i].count);
}

void
rp_gw_metrics_text (char **text, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&buf, &size);
    pthread_mutex_lock (&s_metrics.lock);
    fprintf (out, "# HELP rapidphoto_http_requests_total HTTP requests by route and status.\n"
                  "# TYPE rapidphoto_http_requests_total counter\n");
    for (int i = 0; i < s_metrics.ncounters; i++)
        fprintf (out, "rapidphoto_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                 s_metrics.counters [i].route, s_metrics.counters [i].status,
                 (unsigned long long) s_metrics.counters [i].count);
    fprintf (out, "# HELP rapidphoto_http_request_duration_seconds Time from first header to last byte queued.\n"
                  "# TYPE rapidphoto_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < S_BUCKETS; i++)
        fprintf (out, "rapidphoto_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                 s_buckets [i], (unsigned long long) s_metrics.buckets [i]);
    fprintf (out, "rapidphoto_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                  "rapidphoto_http_request_duration_seconds_sum %.6f\n"
                  "rapidphoto_http_request_duration_seconds_count %llu\n",
             (unsigned long long) s_metrics.observations, s_metrics.duration_sum,
             (unsigned long long) s_metrics.observations);
    fprintf (out, "# HELP rapidphoto_http_received_bytes_total Request body bytes received.\n"
                  "# TYPE rapidphoto_http_received_bytes_total counter\n"
                  "rapidphoto_http_received_bytes_total %llu\n",
             (unsigned long long) s_metrics.bytes_in);
    double upload_seconds = s_metrics.upload_seconds;
    uint64_t upload_count = s_metrics.upload_count;
    pthread_mutex_unlock (&s_metrics.lock);
    s_metrics_stages (out, upload_seconds, upload_count);
    s_metrics_scrub (out);
    json_t *counts = NULL, *broker = NULL;
    bool ready [3];
    rp_gw_probe_state (&counts, &broker, ready);
    static const char *const checks [3] = { "database", "storage", "broker" };
    fprintf (out, "# HELP rapidphoto_ready 1 when the dependency answered the last readiness probe.\n"
                  "# TYPE rapidphoto_ready gauge\n");
    for (int i = 0; i < 3; i++)
        fprintf (out, "rapidphoto_ready{check=\"%s\"} %d\n", checks [i], ready [i] ? 1 : 0);
    if (counts) {
        fprintf (out, "# HELP rapidphoto_photos Photos by status, all users.\n"
                      "# TYPE rapidphoto_photos gauge\n");
        const char *status;
        json_t *value;
        json_object_foreach (counts, status, value) {
            if (!json_is_integer (value))
                continue;               //  "integrity", below
            char label [64];
            s_label (status, label, sizeof label);
            fprintf (out, "rapidphoto_photos{status=\"%s\"} %lld\n", label, (long long) json_integer_value (value));
        }
        //  Complete photos by what the last bit-rot check found, whoever ran it
        json_t *integrity = json_object_get (counts, "integrity");
        if (json_is_object (integrity)) {
            fprintf (out, "# HELP rapidphoto_photos_integrity Complete photos by the last bit-rot check: ok, "
                          "damaged, unchecked.\n# TYPE rapidphoto_photos_integrity gauge\n");
            json_object_foreach (integrity, status, value)
                if (json_is_integer (value))
                    fprintf (out, "rapidphoto_photos_integrity{integrity=\"%s\"} %lld\n",
                             streq (status, "ok") ? "ok" : streq (status, "damaged") ? "damaged" : "unchecked",
                             (long long) json_integer_value (value));
        }
        json_decref (counts);
    }
    //  Queues and workers per pool, from the broker itself
    if (broker) {
        static const struct { const char *key, *name, *type, *help; } series [] = {
            { "queued", "rapidphoto_jobs_queued", "gauge", "Jobs waiting for a worker, by pool." },
            { "running", "rapidphoto_jobs_in_flight", "gauge", "Jobs running on a worker, by pool." },
            { "workers", "rapidphoto_workers", "gauge", "Workers registered with the broker, by pool." },
            { "done", "rapidphoto_jobs_done_total", "counter", "Jobs finished, by pool." },
            { "failed", "rapidphoto_jobs_failed_total", "counter", "Jobs failed or lost, by pool." },
            { "duration_ms_sum", "rapidphoto_stage_duration_seconds_sum", "counter",
              "Time workers spent on jobs, by pool (stage); divide by jobs done + failed." },
        };
        json_t *pools = json_object_get (broker, "pools");
        for (size_t k = 0; k < sizeof series / sizeof series [0]; k++) {
            fprintf (out, "# HELP %s %s\n# TYPE %s %s\n", series [k].name, series [k].help,
                     series [k].name, series [k].type);
            const char *pool;
            json_t *entry;
            json_object_foreach (pools, pool, entry) {
                char label [96];
                s_label (pool, label, sizeof label);
                json_int_t value = json_integer_value (json_object_get (entry, series [k].key));
                if (streq (series [k].key, "duration_ms_sum"))
                    fprintf (out, "%s{pool=\"%s\"} %.3f\n", series [k].name, label, (double) value / 1000.0);
                else
                    fprintf (out, "%s{pool=\"%s\"} %lld\n", series [k].name, label, (long long) value);
            }
        }
        json_decref (broker);
    }
    uint64_t reads = 0;
    int streams = rp_events_streams (&reads);
    fprintf (out, "# HELP rapidphoto_event_streams Open live status streams.\n"
                  "# TYPE rapidphoto_event_streams gauge\nrapidphoto_event_streams %d\n"
                  "# HELP rapidphoto_event_stream_reads_total Reads of a stream's events from the database.\n"
                  "# TYPE rapidphoto_event_stream_reads_total counter\nrapidphoto_event_stream_reads_total %llu\n",
             streams, (unsigned long long) reads);
    fprintf (out, "# HELP rapidphoto_up 1 while the gateway serves.\n# TYPE rapidphoto_up gauge\n"
                  "rapidphoto_up 1\n");
    fclose (out);
    *text = buf;
    *len = size;
}
