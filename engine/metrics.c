/*  engine/metrics.c: see metrics.h.

    The window is one static struct under one mutex: recorders hold it for
    a few stores, rp_metrics_take for one copy. The rendering follows
    CloudWatch's "Specification: Embedded metric format": each document is
    one JSON object on one line, its "_aws" member holding Timestamp (ms)
    and one MetricDirective (Namespace, Dimensions: one set, Metrics: each
    Name and Unit), and the root holding a member for every dimension and
    every metric named there (a number, or an array of at most 100). A
    metric with no sample this interval is left out rather than sent as an
    empty array.
*/
#include "engine/metrics.h"
#include "engine/alloc.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_failure_names [RP_FAILURE_CLASSES] = {
    "NotAnImage", "TooLarge", "Invalid", "DecodeError", "Lost", "StorageUnavailable", "Other"
};

//  jansson and stdio out of memory: the policy of engine/alloc.h
#define s_must(p) do { if (!(p)) rp_out_of_memory (0); } while (0)

static struct {
    pthread_mutex_t lock;
    rp_metrics_window_t window;
    uint64_t rng;                       //  xorshift64 state, for the reservoirs
} s_state = { .lock = PTHREAD_MUTEX_INITIALIZER, .rng = 0x9E3779B97F4A7C15ULL };

const char *
rp_failure_class_name (rp_failure_class_t why)
{
    return why >= 0 && why < RP_FAILURE_CLASSES ? s_failure_names [why] : "Other";
}

rp_failure_class_t
rp_failure_classify (const char *reason, bool lost)
{
    if (lost)
        return RP_FAILURE_LOST;
    if (!reason)
        return RP_FAILURE_OTHER;
    //  The resize worker's words (actors/resize/resize.c), checked in this
    //  order: a size message also names the file
    if (strstr (reason, "pixel limit") || strstr (reason, "more than the limit"))
        return RP_FAILURE_TOO_LARGE;
    if (strncmp (reason, "not a supported image", 21) == 0)
        return RP_FAILURE_NOT_AN_IMAGE;
    if (strstr (reason, "cannot decode") || strstr (reason, "damaged or incomplete")
    ||  strstr (reason, "cannot read header"))
        return RP_FAILURE_DECODE_ERROR;
    if (strstr (reason, "S3") || strstr (reason, "cannot read the file") || strstr (reason, "cannot fetch"))
        return RP_FAILURE_STORAGE_UNAVAILABLE;
    return RP_FAILURE_OTHER;
}

//  One sample into a reservoir (Vitter's algorithm R). Lock held.
static void
s_sample (rp_metrics_samples_t *samples, double value)
{
    if (!(value >= 0) || !isfinite (value))
        return;
    samples->seen++;
    if (samples->count < RP_METRICS_SAMPLES) {
        samples->values [samples->count++] = value;
        return;
    }
    s_state.rng ^= s_state.rng << 13;
    s_state.rng ^= s_state.rng >> 7;
    s_state.rng ^= s_state.rng << 17;
    uint64_t slot = s_state.rng % samples->seen;
    if (slot < RP_METRICS_SAMPLES)
        samples->values [slot] = value;
}

void
rp_metrics_upload (int64_t bytes)
{
    pthread_mutex_lock (&s_state.lock);
    s_state.window.uploads++;
    s_state.window.upload_bytes += bytes > 0 ? (uint64_t) bytes : 0;
    pthread_mutex_unlock (&s_state.lock);
}

void
rp_metrics_ack (double ms)
{
    pthread_mutex_lock (&s_state.lock);
    s_sample (&s_state.window.ack, ms);
    pthread_mutex_unlock (&s_state.lock);
}

void
rp_metrics_processing (const char *stage, double ms)
{
    pthread_mutex_lock (&s_state.lock);
    rp_metrics_window_t *w = &s_state.window;
    rp_metrics_samples_t *samples = NULL;
    if (!stage)
        samples = &w->processing;
    else
    if (*stage && strlen (stage) < sizeof w->stages [0].stage) {
        for (int i = 0; i < w->nstages && !samples; i++)
            if (strcmp (w->stages [i].stage, stage) == 0)
                samples = &w->stages [i].samples;
        if (!samples && w->nstages < RP_METRICS_STAGES) {
            rp_metrics_stage_t *entry = &w->stages [w->nstages++];
            snprintf (entry->stage, sizeof entry->stage, "%s", stage);
            samples = &entry->samples;
        }
    }
    if (samples)                        //  stages past the table are dropped
        s_sample (samples, ms);
    pthread_mutex_unlock (&s_state.lock);
}

void
rp_metrics_failure (rp_failure_class_t why)
{
    if (why < 0 || why >= RP_FAILURE_CLASSES)
        why = RP_FAILURE_OTHER;
    pthread_mutex_lock (&s_state.lock);
    s_state.window.failures [why]++;
    pthread_mutex_unlock (&s_state.lock);
}

void
rp_metrics_take (rp_metrics_window_t *window)
{
    pthread_mutex_lock (&s_state.lock);
    *window = s_state.window;
    memset (&s_state.window, 0, sizeof s_state.window);
    pthread_mutex_unlock (&s_state.lock);
}

//  ---------------------------------------------------------------------------
//  Rendering

//  A document with its dimensions set: Service, and one more (key may be
//  NULL). Its Metrics array is where s_count and s_samples add.
static json_t *
s_document (const rp_metrics_context_t *context, const char *key, const char *value)
{
    json_t *dimensions = json_pack ("[s]", "Service");
    if (key)
        json_array_append_new (dimensions, json_string (key));
    json_t *doc = json_pack ("{s:{s:I, s:[{s:s, s:[o], s:[]}]}, s:s}",
                             "_aws", "Timestamp", (json_int_t) context->timestamp_ms,
                             "CloudWatchMetrics", "Namespace", context->ns,
                             "Dimensions", dimensions, "Metrics",
                             "Service", context->service);
    s_must (doc);
    if (key)
        json_object_set_new (doc, key, json_string (value));
    return doc;
}

static void
s_metric (json_t *doc, const char *name, const char *unit, json_t *value)
{
    json_t *directive = json_array_get (json_object_get (json_object_get (doc, "_aws"), "CloudWatchMetrics"), 0);
    json_array_append_new (json_object_get (directive, "Metrics"), json_pack ("{s:s, s:s}", "Name", name, "Unit", unit));
    json_object_set_new (doc, name, value);
}

static void
s_count (json_t *doc, const char *name, int64_t value)
{
    s_metric (doc, name, "Count", json_integer ((json_int_t) value));
}

//  Milliseconds to the microsecond: short numbers, nothing lost that matters
static void
s_samples (json_t *doc, const char *name, const rp_metrics_samples_t *samples)
{
    if (samples->count == 0)
        return;
    json_t *values = json_array ();
    for (int i = 0; i < samples->count; i++)
        json_array_append_new (values, json_real (round (samples->values [i] * 1000.0) / 1000.0));
    s_metric (doc, name, "Milliseconds", values);
}

static void
s_emit (FILE *out, json_t **doc_p)
{
    char *line = json_dumps (*doc_p, JSON_COMPACT | JSON_REAL_PRECISION (12));
    s_must (line);
    fprintf (out, "%s\n", line);
    free (line);
    json_decref (*doc_p);
}

static int64_t
s_field (json_t *object, const char *key)
{
    json_t *value = json_object_get (object, key);
    return json_is_integer (value) ? (int64_t) json_integer_value (value) : 0;
}

char *
rp_metrics_render (const rp_metrics_window_t *window, const rp_metrics_context_t *context)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    s_must (out);
    //  The role's own: uploads, times, failures, the queue
    json_t *doc = s_document (context, NULL, NULL);
    s_count (doc, "UploadCount", (int64_t) window->uploads);
    s_metric (doc, "UploadBytes", "Bytes", json_integer ((json_int_t) window->upload_bytes));
    s_samples (doc, "AckLatency", &window->ack);
    s_samples (doc, "ProcessingLatency", &window->processing);
    uint64_t failures = 0;
    for (int i = 0; i < RP_FAILURE_CLASSES; i++)
        failures += window->failures [i];
    s_count (doc, "Failures", (int64_t) failures);
    if (context->counts)
        s_count (doc, "QueueDepth", s_field (context->counts, "queued"));
    json_t *pools = context->broker ? json_object_get (context->broker, "pools") : NULL;
    if (pools) {
        int64_t running = 0, workers = 0;
        const char *pool;
        json_t *entry;
        json_object_foreach (pools, pool, entry) {
            running += s_field (entry, "running");
            workers += s_field (entry, "workers");
        }
        s_count (doc, "JobsInFlight", running);
        s_count (doc, "Workers", workers);
    }
    s_emit (out, &doc);
    //  Per pool: the broker's queue, jobs running, workers
    const char *pool;
    json_t *entry;
    json_object_foreach (pools, pool, entry) {
        doc = s_document (context, "Pool", pool);
        s_count (doc, "QueueDepth", s_field (entry, "queued"));
        s_count (doc, "JobsInFlight", s_field (entry, "running"));
        s_count (doc, "Workers", s_field (entry, "workers"));
        s_emit (out, &doc);
    }
    //  Per stage: the photos' times in it
    for (int i = 0; i < window->nstages; i++)
        if (window->stages [i].samples.count) {
            doc = s_document (context, "Stage", window->stages [i].stage);
            s_samples (doc, "ProcessingLatency", &window->stages [i].samples);
            s_emit (out, &doc);
        }
    //  Per reason: the failures of the classes seen
    for (int i = 0; i < RP_FAILURE_CLASSES; i++)
        if (window->failures [i]) {
            doc = s_document (context, "Reason", s_failure_names [i]);
            s_count (doc, "Failures", (int64_t) window->failures [i]);
            s_emit (out, &doc);
        }
    fclose (out);
    return text;
}

//  ---------------------------------------------------------------------------
//  The scrub's totals

static struct {
    pthread_mutex_t lock;
    rp_metrics_scrub_t totals;
} s_scrub = { .lock = PTHREAD_MUTEX_INITIALIZER };

void
rp_metrics_scrub_add (const rp_metrics_scrub_t *delta)
{
    pthread_mutex_lock (&s_scrub.lock);
    s_scrub.totals.checked += delta->checked;
    s_scrub.totals.bytes += delta->bytes;
    s_scrub.totals.damaged += delta->damaged;
    s_scrub.totals.regenerated += delta->regenerated;
    s_scrub.totals.errors += delta->errors;
    pthread_mutex_unlock (&s_scrub.lock);
}

void
rp_metrics_scrub_get (rp_metrics_scrub_t *totals)
{
    pthread_mutex_lock (&s_scrub.lock);
    *totals = s_scrub.totals;
    pthread_mutex_unlock (&s_scrub.lock);
}
