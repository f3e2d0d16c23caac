/*  actors/bridges/sqs_events.c: photo.complete and photo.failed, out to SQS.

    DESIGN
    Thread: one zactor thread. Owns a database connection and an SQS
    client. Shares nothing.
    Source: the events table, written in the same transaction as every
    state change, read as an outbox: the "sqs-events" row of the outbox
    table says up to which event id messages were sent, and carries a
    lease, so across many engines one publishes at a time (another takes
    over within S_LEASE_MS of its death) and every outcome is published.
    Loop: take the lease and up to 10 complete/failed events after the
    cursor; send them in one SendMessageBatch; move the cursor past them
    (only while still holding the lease). A full batch is followed at
    once; otherwise the next look is S_IDLE_MS later.
    Delivery is at least once: a crash between the send and the cursor's
    move, or entries SQS refused in a batch, send the batch again, so
    consumers key on the photo id. On PostgreSQL, where event ids are taken
    at insert and become visible at commit, events are read in the order
    their transactions ended, and only below the oldest transaction still
    running (db_pg.c, schema V6), so one committing late is not passed over.
    PAUSE (a reply once done): the lease is given up and nothing is
    published until RESUME. `rapidphoto lambda` pauses before Lambda
    freezes it between invocations, so a frozen process never holds the
    lease that another one needs to publish its photos' events.
    Bodies are ASCII (\u escapes): SQS refuses some valid UTF-8.
    Message: {"type":"photo.complete"|"photo.failed","id","user_id","user",
    "sha256","bytes","original","derivatives":{name: key},"error",
    "batch_id","event_id","thumbhash"}; keys are full S3 keys (prefix
    included); thumbhash is the placeholder's base64 (complete) or null;
    on photo.complete, "similar":[ids] (its near-duplicates at completion).
    Errors: backoff with jitter (0.5 s doubling to 30 s); the last outcome
    is "events_queue" in /readyz.
*/
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/health.h"
#include "engine/log.h"
#include "engine/trace.h"
#include "engine/thread.h"
#include "library/blobstore.h"
#include "actors/bridges/bridges.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_LEASE_MS 15000
#define S_IDLE_MS 500
#define S_OUTBOX RP_SQS_EVENTS_OUTBOX

typedef struct {
    rp_config_t config;
    rp_db_t *db;
    rp_aws_provider_t *provider;
    rp_aws_keys_t keys;
    rp_sqs_t *sqs;
    char owner [128];               //  host:pid:random, for the lease
    int failures;
} s_events_t;

//  One event as the message body (malloc'ed)
static char *
s_body (s_events_t *self, json_t *event)
{
    const char *status = json_string_value (json_object_get (event, "status"));
    bool complete = status && streq (status, "complete");
    const char *sha = json_string_value (json_object_get (event, "sha256"));
    char relative [200], key [RP_STR_MAX + 200];
    json_t *original = json_null ();
    json_t *derivatives = json_object ();
    if (sha && rp_blob_relative (sha, "", relative, sizeof relative) == 0) {
        snprintf (key, sizeof key, "%s%s", self->config.storage_s3_prefix, relative);
        original = json_string (key);
        for (int i = 0; complete && i < self->config.derivative_count; i++) {
            const rp_derivative_t *d = &self->config.derivatives [i];
            char suffix [64];
            snprintf (suffix, sizeof suffix, ".%s.%s", d->name, rp_derivative_ext (d->format, NULL));
            rp_blob_relative (sha, suffix, relative, sizeof relative);
            snprintf (key, sizeof key, "%s%s", self->config.storage_s3_prefix, relative);
            json_object_set_new (derivatives, d->name, json_string (key));
        }
    }
    json_t *body = json_pack ("{s:s, s:O, s:O, s:O, s:O, s:O, s:o, s:o, s:O, s:O, s:O, s:O}",
                              "type", complete ? "photo.complete" : "photo.failed",
                              "id", json_object_get (event, "id"),
                              "user_id", json_object_get (event, "user_id"),
                              "user", json_object_get (event, "user"),
                              "sha256", json_object_get (event, "sha256"),
                              "bytes", json_object_get (event, "bytes"),
                              "original", original,
                              "derivatives", derivatives,
                              "error", json_object_get (event, "error"),
                              "batch_id", json_object_get (event, "batch_id"),
                              "event_id", json_object_get (event, "event_id"),
                              "thumbhash", complete && json_object_get (event, "thumbhash")
                                           ? json_object_get (event, "thumbhash") : json_null ());
    //  A complete event's near-duplicates (engine/phash.h), when it has them
    if (body && complete && json_is_array (json_object_get (event, "similar")))
        json_object_set (body, "similar", json_object_get (event, "similar"));
    char *text = body ? json_dumps (body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref (body);
    return text;
}

//  One round: returns how many events were published (-1 on an error)
static int
s_publish (s_events_t *self)
{
    char err [1024];
    if (rp_bridge_sqs_client (self->provider, &self->config, &self->sqs, &self->keys, err, sizeof err)) {
        rp_bridge_outcome ("sqs-events", "events_queue", &self->failures, -1, err);
        return -1;
    }
    int64_t now = rp_clock_wall_ms ();
    int64_t cursor = 0;
    json_t *events = NULL;
    int rc = rp_db_outbox_claim (self->db, S_OUTBOX, self->owner, now, now + S_LEASE_MS, 10, &cursor,
                                 &events, err, sizeof err);
    if (rc == RP_BUSY)
        return 0;                   //  another engine publishes
    if (rc) {
        rp_warn ("sqs-events", "cannot read the events: %s", err);
        return -1;
    }
    size_t count = json_array_size (events);
    if (count == 0) {
        json_decref (events);
        return 0;
    }
    char *bodies [10] = { NULL };
    //  Where the batch ends: its last event in the order claim gives them
    //  (the order their transactions committed), not the highest id
    int64_t last = (int64_t) json_integer_value (json_object_get (json_array_get (events, count - 1),
                                                                  "event_id"));
    size_t i;
    json_t *event;
    json_array_foreach (events, i, event)
        bodies [i] = s_body (self, event);
    json_decref (events);
    //  Each publication is a trace: its segment holds the SQS call, and
    //  the messages carry it (AWSTraceHeader) to whoever consumes them
    rp_trace_t trace;
    char segment [RP_TRACE_SPAN_MAX], header [RP_TRACE_HEADER_MAX];
    rp_trace_start (&trace);
    rp_trace_new_span (segment);
    rp_trace_header (&trace, segment, header);
    double started = rp_trace_now ();
    rp_trace_enter (&trace, segment);
    size_t refused = 0;
    rc = rp_sqs_send_batch (self->sqs, self->config.sqs_events_queue_url, (const char *const *) bodies,
                            count, header, &refused, err, sizeof err);
    rp_trace_leave ();
    if (trace.sampled && rp_trace_sending ()) {
        json_t *document = rp_trace_segment (&trace, segment, NULL, started, rp_trace_now ());
        json_object_set_new (document, "annotations", json_pack ("{s:s, s:I}", "operation", "publish events",
                                                                 "events", (json_int_t) count));
        if (rc || refused)
            json_object_set_new (document, "fault", json_true ());
        rp_trace_send (&trace, &document);
    }
    for (i = 0; i < count; i++)
        free (bodies [i]);
    if (rc == 0 && refused) {
        snprintf (err, sizeof err, "SQS refused %zu of %zu messages in a batch", refused, count);
        rc = -1;
    }
    rp_bridge_outcome ("sqs-events", "events_queue", &self->failures, rc, err);
    if (rc)
        return -1;                  //  the cursor stays: the batch is sent again
    rc = rp_db_outbox_advance (self->db, S_OUTBOX, self->owner, last, err, sizeof err);
    if (rc)
        rp_warn ("sqs-events", "published up to event %lld but cannot record it: %s", (long long) last, err);
    else
        rp_debug ("sqs-events", "published %zu events up to %lld", count, (long long) last);
    return (int) count;
}

static void
s_sqs_events_run (zsock_t *pipe, void *arg)
{
    s_events_t self;
    memset (&self, 0, sizeof self);
    rp_bridge_args_t *args = (rp_bridge_args_t *) arg;
    self.config = args->config;
    char err [512], host [64] = "host";
    gethostname (host, sizeof host - 1);
    snprintf (self.owner, sizeof self.owner, "%.60s:%d:%08lx", host, (int) getpid (),
              (unsigned long) (random () & 0xffffffff));
    self.db = rp_db_open (self.config.db_url, err, sizeof err);
    if (self.db)
        self.provider = rp_aws_provider_new (err, sizeof err);
    if (!self.provider) {
        rp_error ("sqs-events", "cannot start: %s", err);
        rp_db_close (&self.db);
        args->start_failed = 1;
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    //  Through a drain (engine/drain.h) the photos that finish are still
    //  published; only $TERM stops it (main owns the signal)
    zpoller_set_nonstop (poller, true);
    int64_t next = 0;
    bool paused = false;
    while (true) {
        int64_t wait = next - rp_clock_ms ();
        void *which = zpoller_wait (poller, wait > 0 ? (int) wait : 0);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool stop = !command || streq (command, "$TERM");
            if (command && streq (command, "PAUSE")) {
                paused = true;
                char why [512];
                if (rp_db_outbox_release (self.db, S_OUTBOX, self.owner, why, sizeof why))
                    rp_warn ("sqs-events", "cannot give the lease up (it runs out in %d s): %s",
                             S_LEASE_MS / 1000, why);
                zsock_signal (pipe, 0);
            }
            else
            if (command && streq (command, "RESUME")) {
                paused = false;
                next = 0;
            }
            zstr_free (&command);
            if (stop)
                break;
            continue;
        }
        if (zpoller_terminated (poller))
            break;
        if (paused) {
            next = rp_clock_ms () + S_IDLE_MS;
            continue;
        }
        if (rp_clock_ms () < next)
            continue;
        int published = s_publish (&self);
        next = rp_clock_ms () + (published < 0 ? rp_bridge_backoff_ms (self.failures ? self.failures : 1, 30000)
                                 : published == 10 ? 0 : S_IDLE_MS);
    }
    zpoller_destroy (&poller);
    rp_sqs_destroy (&self.sqs);
    rp_aws_provider_destroy (&self.provider);
    rp_db_close (&self.db);
}

//  The actor: its loop, then what its thread kept is freed (engine/thread.h)
void
rp_sqs_events_actor (zsock_t *pipe, void *arg)
{
    s_sqs_events_run (pipe, arg);
    rp_thread_end ();
}
