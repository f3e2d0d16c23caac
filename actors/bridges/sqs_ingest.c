/*  actors/bridges/sqs_ingest.c: S3 event notifications in, photos out.

    DESIGN
    Thread: one zactor thread. Owns a database connection, a blob store
    (S3 with the local cache), an SQS client and a PUSH to the pipeline's
    wake-up endpoint. Shares nothing.
    Loop: long-poll sqs.ingest_queue_url (up to 10 messages, up to
    sqs.wait_s; shorter while messages are being watched so their deletes
    and extensions are timely) with sqs.visibility_s. Each message is S3's
    notification (engine/aws/s3_event.c), taken in by library/s3_ingest.h
    (shared with `rapidphoto lambda`, which gets the same bodies from
    Lambda's SQS event source):
      - s3:TestEvent, or records for other buckets or keys outside our
        prefix: deleted, nothing to do;
      - ObjectCreated under <prefix>uploads/<photo id>: a presigned upload
        arrived; rp_library_adopt_upload checks and queues it;
      - ObjectCreated under <prefix>incoming/<username>/...: operators' bulk
        import; the object becomes a queued photo of that user named after
        the key's last segment, cleaned as every file name is
        (library/filename.h), by rp_library_ingest; a key with an empty,
        "." or ".." segment is refused (an S3 key is a name, not a path:
        incoming/alice/../bob/x.jpg is neither alice's file nor bob's),
        and goes to the dead-letter queue like any other; remembered in
        s3_objects by (bucket, key, ETag), so a notification delivered
        twice, or to two engines, finds its photo instead of making one;
      - anything else (not a notification at all, an unknown user, an
        object that is not an image, S3 away): left alone, made visible
        again after a backoff (1, 2, 4 ... s), and after the queue's
        maxReceiveCount it goes to the dead-letter queue for an operator.
    A message whose photos were made is watched: it is deleted only once
    every one of its photos is complete or failed (committed), and its
    visibility is extended by sqs.visibility_s every half of that while
    they are processed. If this engine dies first, the message comes back
    and whichever engine gets it finds the photos by (bucket, key, ETag).
    Backpressure: at most pipeline.in_flight messages are watched; past
    that nothing more is received, so idle engines get the rest.
    Errors from SQS: backoff with jitter (0.5 s doubling to 30 s); the last
    outcome is "ingest_queue" in /readyz.
    Draining (engine/drain.h): nothing more is received (a long poll under
    way is cut short), so the queue keeps new messages for other engines;
    watched messages are still deleted as their photos finish.
*/
#include "engine/runtime.h"
#include "engine/alloc.h"
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/drain.h"
#include "engine/health.h"
#include "engine/log.h"
#include "engine/trace.h"
#include "engine/thread.h"
#include "library/blobstore.h"
#include "library/pipeline.h"
#include "library/s3_ingest.h"
#include "actors/bridges/bridges.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_PHOTOS_MAX 100            //  records per message we follow (S3 sends one)

typedef struct {
    char *receipt;
    char message_id [128];
    char photos [S_PHOTOS_MAX][RP_ID_MAX];
    int nphotos;
    int64_t extend_at;              //  rp_clock_ms
} s_watched_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *wake;                  //  PUSH to the pipeline
    rp_config_t config;
    rp_db_t *db;
    rp_blobstore_t *blobs;
    rp_aws_provider_t *provider;
    rp_aws_keys_t keys;
    rp_sqs_t *sqs;
    zlist_t *watched;               //  s_watched_t
    int failures;                   //  SQS errors in a row
    bool terminated;
    bool receiving;                 //  a receive (long poll) is under way
} s_ingest_t;

static void
s_watched_destroy (s_watched_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->receipt);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Photos of a watched message: true when every one has its outcome
static bool
s_outcomes_committed (s_ingest_t *self, s_watched_t *watched)
{
    for (int i = 0; i < watched->nphotos; i++) {
        char status [16], err [256];
        int rc = rp_db_photo_status (self->db, watched->photos [i], status, err, sizeof err);
        if (rc == RP_NOT_FOUND)
            continue;               //  deleted by its user meanwhile: nothing to wait for
        if (rc || (strcmp (status, "complete") != 0 && strcmp (status, "failed") != 0))
            return false;
    }
    return true;
}

//  A request gives up as soon as the actor is told to stop; a long poll
//  also when the process starts to stop (the signal, then its drain)
static bool
s_stopping (void *arg)
{
    s_ingest_t *self = (s_ingest_t *) arg;
    return (zsock_events (self->pipe) & ZMQ_POLLIN)
        || (self->receiving && (rp_interrupted () || rp_draining ()));
}

static bool
s_sqs_ready (s_ingest_t *self)
{
    char err [512];
    if (rp_bridge_sqs_client (self->provider, &self->config, &self->sqs, &self->keys, err, sizeof err)) {
        rp_health_set ("ingest_queue", false, err);
        return false;
    }
    rp_sqs_set_cancel (self->sqs, s_stopping, self);
    return true;
}

//  Note an SQS outcome for /readyz and the backoff
static void
s_sqs_outcome (s_ingest_t *self, int rc, const char *err)
{
    rp_bridge_outcome ("sqs-ingest", "ingest_queue", &self->failures, rc, err);
}

static void
s_delete (s_ingest_t *self, const char *receipt, const char *message_id, const char *why)
{
    char err [512];
    int rc = rp_sqs_delete (self->sqs, self->config.sqs_ingest_queue_url, receipt, err, sizeof err);
    if (rc == 0 || strstr (err, "cannot reach"))
        s_sqs_outcome (self, rc, err);
    else                            //  SQS answered: a receipt gone stale, say; the queue is fine
        rp_warn ("sqs-ingest", "message=%s not deleted (it comes back and is found done): %s", message_id, err);
    if (rc == 0)
        rp_debug ("sqs-ingest", "message=%s deleted: %s", message_id, why);
}

//  Check watched messages: delete those whose photos are all done, extend
//  the others before they would show again.
static void
s_check_watched (s_ingest_t *self)
{
    int64_t now = rp_clock_ms ();
    s_watched_t *watched = (s_watched_t *) zlist_first (self->watched);
    while (watched) {
        s_watched_t *next = (s_watched_t *) zlist_next (self->watched);
        if (s_outcomes_committed (self, watched)) {
            s_delete (self, watched->receipt, watched->message_id, "its photos are complete or failed");
            zlist_remove (self->watched, watched);
            s_watched_destroy (&watched);
        }
        else
        if (now >= watched->extend_at) {
            char err [512];
            int rc = rp_sqs_change_visibility (self->sqs, self->config.sqs_ingest_queue_url, watched->receipt,
                                               (int) self->config.sqs_visibility_s, err, sizeof err);
            s_sqs_outcome (self, rc, err);
            watched->extend_at = now + (rc == 0 ? self->config.sqs_visibility_s * 500 : 1000);
        }
        watched = next;
    }
}

static void
s_wake_pipeline (s_ingest_t *self)
{
    if (self->wake)
        zstr_send (self->wake, "WAKE");     //  full or absent: the tick will do
}

//  One received message
static void
s_message (s_ingest_t *self, rp_sqs_message_t *message)
{
    char err [1024] = "";
    s_watched_t *watched = (s_watched_t *) rp_alloc (sizeof (s_watched_t));
    //  Taken in as every consumer of S3's notifications does (library/s3_ingest.h)
    rp_s3_ingest_outcome_t outcome = rp_s3_ingest_body (self->blobs, self->db, &self->config, "sqs-ingest",
                                                        message->body, watched->photos, S_PHOTOS_MAX,
                                                        &watched->nphotos, err, sizeof err);
    if (outcome == RP_S3_INGEST_NOTHING && watched->nphotos == 0) {
        s_delete (self, message->receipt, message->id, "no object of ours created (s3:TestEvent, another bucket ...)");
        s_watched_destroy (&watched);
        return;
    }
    bool retry = outcome == RP_S3_INGEST_RETRY;
    if (retry) {
        //  Seen again after a backoff; the redrive policy ends it
        int64_t backoff_s = 1LL << (message->receive_count - 1 < 10 ? (message->receive_count > 0 ? message->receive_count - 1 : 0) : 10);
        if (backoff_s > self->config.sqs_visibility_s)
            backoff_s = self->config.sqs_visibility_s;
        rp_warn ("sqs-ingest", "message=%s receive %d not processed, again in %lld s: %s", message->id,
                 message->receive_count, (long long) backoff_s, err);
        char ignore [512];
        rp_sqs_change_visibility (self->sqs, self->config.sqs_ingest_queue_url, message->receipt,
                                  (int) backoff_s, ignore, sizeof ignore);
        s_watched_destroy (&watched);
        return;
    }
    if (watched->nphotos)
        s_wake_pipeline (self);
    watched->receipt = rp_strdup (message->receipt);
    snprintf (watched->message_id, sizeof watched->message_id, "%s", message->id);
    watched->extend_at = rp_clock_ms () + self->config.sqs_visibility_s * 500;
    if (s_outcomes_committed (self, watched)) {
        s_delete (self, watched->receipt, watched->message_id, "nothing left to process");
        s_watched_destroy (&watched);
    }
    else
        zlist_append (self->watched, watched);
}

static void
s_receive (s_ingest_t *self)
{
    int room = self->config.pipeline_in_flight - (int) zlist_size (self->watched);
    if (room <= 0) {
        zclock_sleep (200);         //  busy: leave the queue to others
        return;
    }
    //  Watching: come back soon to delete and extend; else the long poll
    int wait_s = (int) self->config.sqs_wait_s;
    if (zlist_size (self->watched) && wait_s > 1)
        wait_s = 1;
    if (wait_s > self->config.sqs_visibility_s / 3)
        wait_s = (int) (self->config.sqs_visibility_s / 3);
    rp_sqs_message_t *messages = NULL;
    size_t count = 0;
    char err [1024];
    self->receiving = true;
    int rc = rp_sqs_receive (self->sqs, self->config.sqs_ingest_queue_url, room < 10 ? room : 10, wait_s,
                             (int) self->config.sqs_visibility_s, &messages, &count, err, sizeof err);
    bool cut = rc && s_stopping (self);
    self->receiving = false;
    if (cut)
        return;                     //  cut short to stop: not a failure
    s_sqs_outcome (self, rc, err);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        //  A message that carries a trace (AWSTraceHeader) is handled in
        //  it: its log lines carry the trace id, and its segment (with the
        //  database's and S3's subsegments) goes to X-Ray when sampled
        rp_trace_t trace;
        char segment [RP_TRACE_SPAN_MAX];
        bool traced = messages [i].trace_header && rp_trace_parse (messages [i].trace_header, &trace) == 0;
        double started = rp_trace_now ();
        if (traced) {
            rp_trace_new_span (segment);
            rp_trace_enter (&trace, segment);
        }
        s_message (self, &messages [i]);
        rp_trace_leave ();
        if (traced && trace.sampled && rp_trace_sending ()) {
            json_t *document = rp_trace_segment (&trace, segment, NULL, started, rp_trace_now ());
            json_object_set_new (document, "annotations", json_pack ("{s:s, s:s}", "operation", "ingest message",
                                                                     "message_id", messages [i].id));
            rp_trace_send (&trace, &document);
        }
    }
    rp_sqs_messages_free (&messages, count);
    if (rc == 0 && count == 0 && wait_s == 0)
        zclock_sleep (1000);        //  no long poll (sqs.wait_s = 0): do not spin
}

static void
s_sqs_ingest_run (zsock_t *pipe, void *arg)
{
    s_ingest_t self;
    memset (&self, 0, sizeof self);
    self.pipe = pipe;
    rp_bridge_args_t *args = (rp_bridge_args_t *) arg;
    self.config = args->config;
    char err [512];
    self.blobs = rp_blobstore_open (&self.config, err, sizeof err);
    if (self.blobs)
        self.db = rp_db_open (self.config.db_url, err, sizeof err);
    if (self.db)
        self.provider = rp_aws_provider_new (err, sizeof err);
    if (!self.provider) {
        rp_error ("sqs-ingest", "cannot start: %s", err);
        rp_db_close (&self.db);
        rp_blobstore_close (&self.blobs);
        args->start_failed = 1;
        zsock_signal (pipe, 1);
        return;
    }
    self.wake = zsock_new (ZMQ_PUSH);
    if (self.wake) {
        zsock_set_sndhwm (self.wake, 16);
        zsock_set_sndtimeo (self.wake, 0);
        zsock_connect (self.wake, "%s", RP_PIPELINE_WAKE);
    }
    self.watched = zlist_new ();
    zsock_signal (pipe, 0);

    zpoller_t *poller = zpoller_new (pipe, NULL);
    //  Through a drain (engine/drain.h) watched messages are still deleted;
    //  only $TERM stops it (main owns the signal)
    zpoller_set_nonstop (poller, true);
    int64_t not_before = 0;
    while (!self.terminated) {
        //  The pipe between polls: $TERM ends the loop
        int64_t wait = not_before - rp_clock_ms ();
        void *which = zpoller_wait (poller, wait > 0 ? (int) (wait < 250 ? wait : 250) : 0);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM"))
                self.terminated = true;
            zstr_free (&command);
            continue;
        }
        if (zpoller_terminated (poller))
            break;
        if (wait > 0)
            continue;
        if (!s_sqs_ready (&self)) {
            not_before = rp_clock_ms () + rp_bridge_backoff_ms (++self.failures, 30000);
            continue;
        }
        s_check_watched (&self);
        if (rp_draining ()) {
            not_before = rp_clock_ms () + 250;
            continue;
        }
        s_receive (&self);
        if (self.failures)
            not_before = rp_clock_ms () + rp_bridge_backoff_ms (self.failures, 30000);
    }
    zpoller_destroy (&poller);
    //  Messages still watched come back after their visibility: the photos
    //  they made are found again by their objects
    if (zlist_size (self.watched))
        rp_info ("sqs-ingest", "stopping with %zu messages in progress; they are delivered again",
                 zlist_size (self.watched));
    s_watched_t *watched;
    while ((watched = (s_watched_t *) zlist_pop (self.watched)))
        s_watched_destroy (&watched);
    zlist_destroy (&self.watched);
    zsock_destroy (&self.wake);
    rp_sqs_destroy (&self.sqs);
    rp_aws_provider_destroy (&self.provider);
    rp_blobstore_close (&self.blobs);
    rp_db_close (&self.db);
}

//  The actor: its loop, then what its thread kept is freed (engine/thread.h)
void
rp_sqs_ingest_actor (zsock_t *pipe, void *arg)
{
    s_sqs_ingest_run (pipe, arg);
    rp_thread_end ();
}
