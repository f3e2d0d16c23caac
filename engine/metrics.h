/*  engine/metrics.h: what this process did since the last look, for
    CloudWatch's Embedded Metric Format (engine/emf.h writes it out).

    Any thread records (uploads, acknowledgement and processing times,
    failures by class) into one process-wide window under a mutex; the EMF
    actor takes the window once per interval, which empties it, and renders
    it with the gauges it asked for (photos queued in the database, the
    broker's pools) into EMF documents. Recording costs a lock and a few
    stores: nothing is written per request.
    Times are kept as samples, at most RP_METRICS_SAMPLES per metric and
    interval (EMF takes at most 100 values per member); past that a
    uniform sample of them is kept (reservoir sampling), so percentiles
    stay right while the counts (UploadCount, Failures) stay exact.
*/
#ifndef RP_METRICS_H
#define RP_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define RP_METRICS_SAMPLES 100          //  EMF: at most 100 values in one member
#define RP_METRICS_STAGES 24            //  pipeline stages kept per interval

//  Why a photo or an upload failed: a small fixed set, the Reason dimension
typedef enum {
    RP_FAILURE_NOT_AN_IMAGE = 0,        //  not a supported image type (415, or the decoder says so)
    RP_FAILURE_TOO_LARGE,               //  bytes or pixels over a limit (413, or the pixel limit)
    RP_FAILURE_INVALID,                 //  an upload refused for what it declared (400)
    RP_FAILURE_DECODE_ERROR,            //  an image the decoder could not read
    RP_FAILURE_LOST,                    //  jobs lost on every try (workers died or stalled)
    RP_FAILURE_STORAGE_UNAVAILABLE,     //  S3, the disk or the database could not take or give the bytes
    RP_FAILURE_OTHER,
    RP_FAILURE_CLASSES
} rp_failure_class_t;

//  The class's name as the Reason dimension shows it ("NotAnImage"...)
const char *rp_failure_class_name (rp_failure_class_t why);

//  The class of a processing failure from its reason text (the workers'
//  words: "not a supported image: ...", "cannot decode image: ...", "...
//  more than the pixel limit ..."); lost: the broker gave the job up.
rp_failure_class_t rp_failure_classify (const char *reason, bool lost);

//  Recording: any thread.
//  An upload acknowledged (its photo committed queued, or a duplicate)
void rp_metrics_upload (int64_t bytes);
//  An upload's time from its first header to its acknowledgement
void rp_metrics_ack (double ms);
//  A photo processed: stage NULL for the whole of it (claim to commit),
//  else one stage's time ("decode", "jobs", "database"...)
void rp_metrics_processing (const char *stage, double ms);
void rp_metrics_failure (rp_failure_class_t why);

//  One stored metric's samples
typedef struct {
    int count;                          //  in values (at most RP_METRICS_SAMPLES)
    uint64_t seen;                      //  recorded in the interval
    double values [RP_METRICS_SAMPLES];
} rp_metrics_samples_t;

typedef struct {
    char stage [32];
    rp_metrics_samples_t samples;
} rp_metrics_stage_t;

//  One interval's recordings
typedef struct {
    uint64_t uploads;
    uint64_t upload_bytes;
    rp_metrics_samples_t ack;
    rp_metrics_samples_t processing;    //  whole photos
    rp_metrics_stage_t stages [RP_METRICS_STAGES];
    int nstages;
    uint64_t failures [RP_FAILURE_CLASSES];
} rp_metrics_window_t;

//  Copy the window into *window and empty it. Thread-safe.
void rp_metrics_take (rp_metrics_window_t *window);

//  What the documents describe and what was asked at emit time
typedef struct {
    const char *ns;                     //  the CloudWatch namespace
    const char *service;                //  the Service dimension: the role (serve, gateway, pipeline)
    int64_t timestamp_ms;               //  the documents' time
    json_t *counts;                     //  photos by status (rp_db_status_counts), or NULL
    json_t *broker;                     //  the broker's STATUS (rp_broker_query_status), or NULL
} rp_metrics_context_t;

//  Render a window as EMF documents, one line each ('\n'-terminated): one
//  for the Service dimension, then one per Pool, per Stage and per failure
//  Reason seen (EMF gives one value per dimension in a document). Returns
//  a string the caller frees; never NULL.
char *rp_metrics_render (const rp_metrics_window_t *window, const rp_metrics_context_t *context);

//  ---------------------------------------------------------------------------
//  Bit-rot checks (the scrub): process-wide totals since start, any thread.
//  GET /metrics shows them as rapidphoto_scrub_*_total counters.
typedef struct {
    uint64_t checked;                   //  addresses whose original was read and hashed
    uint64_t bytes;                     //  bytes read doing so
    uint64_t damaged;                   //  originals found missing or not hashing to their name
    uint64_t regenerated;               //  derivatives made again (lost or not decoding)
    uint64_t errors;                    //  checks that could not finish (storage away)
} rp_metrics_scrub_t;

void rp_metrics_scrub_add (const rp_metrics_scrub_t *delta);
void rp_metrics_scrub_get (rp_metrics_scrub_t *totals);

#endif
