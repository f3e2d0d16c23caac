/*  app/cmd_lambda.c: `rapidphoto lambda`, the image processor as an AWS
    Lambda function: a custom runtime on the Lambda Runtime API
    (engine/aws/lambda_runtime.h), fed by an SQS event source mapping on
    the ingest queue (S3 notifications for incoming/ and uploads/).

    DESIGN
    Initialisation, once per execution environment, before the first
    /next (Lambda bills it as the init phase and keeps it across warm
    invocations): the configuration (config file and RAPIDPHOTO_* as every
    role; storage.backend = s3 and a PostgreSQL db.url are required: a
    function's disk is neither shared nor kept), the database (migrations
    and the start-up recovery, which on PostgreSQL queues again only
    photos stuck longer than any engine takes), the blob store, then as
    `pipeline` does the in-process broker, the resize and exif pools and
    the pipeline (app/roles.c; no tcp ports), and the events bridge
    (actors/bridges/sqs_events.c) when sqs.events_queue_url is set. The
    ingest bridge is not started: Lambda's event source polls the queue.
    Any failure is posted to /runtime/init/error with a type naming its
    kind (Runtime.ConfigError, Runtime.DatabaseError, Runtime.StorageError,
    Runtime.StartError) and a message naming the cause; then exit 1.
    libvips is started by main, once.

    Each invocation is an SQS batch ({"Records":[{"messageId","body",
    "eventSource":"aws:sqs",...}]}); anything else is answered with
    invocation/error, type Runtime.InvalidEvent (Lambda retries the whole
    event). Each record's body goes through library/s3_ingest.h, the very
    code the SQS ingest bridge runs, in this (the main) thread with its own
    database connection and blob store; the photos it makes are queued in
    the database and the pipeline is woken (WAKE) after each record, so
    processing overlaps the taking-in of the next. Then the handler polls
    rp_db_photo_status until every photo is complete or failed (committed:
    a failed photo, e.g. bytes that do not decode, is an outcome, not a
    failure), and then, with the events bridge running, until each photo's
    photo.complete / photo.failed event is past the outbox's cursor
    (rp_db_outbox_pending), so it is on the events queue before Lambda
    freezes the process. On PostgreSQL the outbox reads events below the
    oldest transaction still running (db_pg.c, schema V6): ours commit
    before we look, so this costs one publisher round (500 ms) at most,
    unless another publisher holds the lease (then until it publishes, or
    its lease, 15 s, runs out; the wait stops after S_EVENTS_WAIT_MAX_MS,
    so an outbox that cannot publish does not hold every invocation to its
    timeout). An event still unpublished then or at the deadline
    is not a failure of the record (its photo is done; redelivery would
    not publish it sooner): it is logged, and published later at least once.
    The answer is {"batchItemFailures":[{"itemIdentifier":messageId}...]}
    (the event source mapping needs ReportBatchItemFailures): records that
    could not be taken in (not a notification, an unknown user, an object
    that is not an image by its first bytes, S3 or the database away: as
    the bridge, they come back and the redrive policy ends them in the
    dead-letter queue), records not taken for lack of time, and records
    whose photos were not finished in time.
    Deadline (Lambda-Runtime-Deadline-Ms): with M = lambda.deadline_margin_ms
    (1500 by default), a record is taken in only while more than 2 M
    remain (taking one in is an S3 GET and PUT and a commit, then its
    processing: a second or two for a 12 MP photo), and the waits stop
    when M remain, which leaves the answer (a local POST) and the outbox
    pause ample time. A record taken in is not interrupted: an S3 transfer
    that outlasts the deadline makes Lambda time the invocation out and
    reset the environment: the whole batch comes back, and the photos that
    process was working on stay claimed until a pipeline's stale sweep
    (rp_library_stale_ms, minutes). The function's timeout must therefore
    exceed 2 M plus a photo's processing with room to spare; an invocation
    given no more than 2 M says so in an ERROR line naming the setting.
    Idempotent on redelivery: a photo is found again by (bucket, key,
    ETag) or its upload id (library/s3_ingest.h), so a crash mid-batch and
    the redelivery make each photo once; a photo the crash left
    processing is queued again by a pipeline's stale sweep.
    Between invocations Lambda freezes the process. Before each /next the
    pipeline is paused (PAUSE, library/pipeline.h: it gives back every
    claim it has not finished, and claims nothing until RESUME), and so is
    the events bridge (it gives its outbox lease up), so a frozen
    environment holds nothing another needs: photos still processing when
    the answer goes (listed as failures), or claimed from other producers
    (the gateway's uploads, when the function runs beside the pipeline
    service), are queued again at once, for the redelivery or whichever
    engine comes first. Both resume with the next invocation.
    Trace: Lambda-Runtime-Trace-Id is entered (engine/trace.h) with
    Lambda's segment as parent: log lines of the invocation carry trace=, and subsegments
    (database, S3) hang under the function's segment when sampled.
    Logs: stderr (or stdout, log.output), which Lambda sends to CloudWatch;
    one summary line per invocation: request, records, failures, duration.
    SIGTERM (Lambda's shutdown, with extensions): the wait for /next is cut
    short, the events bridge gives its lease up, the actors stop, exit 0.
*/
#include "engine/alloc.h"
#include "engine/aws/lambda_runtime.h"
#include "engine/broker.h"
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/log.h"
#include "engine/runtime.h"
#include "engine/trace.h"
#include "library/blobstore.h"
#include "library/library.h"
#include "library/s3_ingest.h"
#include "actors/bridges/bridges.h"
#include "app/commands.h"
#include "app/roles.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define S_PHOTOS_MAX 100            //  photos per record we follow (S3 sends one record a message)
#define S_RECORDS_MAX 10000         //  an SQS event source's largest batch
#define S_POLL_MS 100               //  how often the waits look at the database
#define S_NEXT_FAILURES_MAX 5       //  /next failing this often in a row: exit 1
#define S_EVENTS_WAIT_MAX_MS 16000  //  the outbox's lease (15 s) and a round: then the
                                    //  events go later, at least once

typedef enum {
    S_UNTAKEN,                      //  not taken for lack of time: a failure
    S_REFUSED,                      //  could not be taken in now: a failure
    S_WAITING,                      //  its photos are processing
    S_DONE                          //  nothing to do, or every photo complete or failed
} s_state_t;

typedef struct {
    const char *message_id;         //  borrowed from the event
    s_state_t state;
    char (*photos) [RP_ID_MAX];
    int nphotos;
    int finished;                   //  photos whose outcome is committed
} s_record_t;

typedef struct {
    rp_config_t config;
    rp_lambda_runtime_t *api;
    rp_db_t *db;                    //  the handler's (the actors have their own)
    rp_blobstore_t *blobs;
    rp_runtime_t *runtime;
    zactor_t *pipeline;             //  borrowed from runtime, for WAKE
    zactor_t *events;               //  borrowed from runtime; NULL without sqs.events_queue_url
} s_lambda_t;

static bool
s_cancel (void *arg)
{
    return rp_interrupted ();
}

//  Initialisation (DESIGN). 0, or -1 with the error's type and message.
static int
s_init (s_lambda_t *self, const char *config_path, char *type, size_t typelen, char *err, size_t errlen)
{
    snprintf (type, typelen, "Runtime.ConfigError");
    if (rp_cmd_config ("lambda", config_path, &self->config, err, errlen))
        return -1;
    if (strcmp (self->config.storage_backend, "s3") != 0) {
        snprintf (err, errlen, "rapidphoto lambda needs storage.backend = s3 (RAPIDPHOTO_STORAGE_BACKEND=s3), "
                  "not \"%s\": photos arrive in the bucket, and a function's disk is neither shared nor kept",
                  self->config.storage_backend);
        return -1;
    }
    if (strncmp (self->config.db_url, "postgresql://", 13) != 0 && strncmp (self->config.db_url, "postgres://", 11) != 0) {
        snprintf (err, errlen, "rapidphoto lambda needs a PostgreSQL db.url (RAPIDPHOTO_DB_URL=postgresql://...), "
                  "not \"%.60s\": a database file in a function's /tmp is neither shared nor kept",
                  self->config.db_url);
        return -1;
    }
    snprintf (type, typelen, "Runtime.StorageError");
    self->blobs = rp_blobstore_open (&self->config, err, errlen);
    if (!self->blobs)
        return -1;
    snprintf (type, typelen, "Runtime.DatabaseError");
    self->db = rp_db_open (self->config.db_url, err, errlen);
    if (!self->db)
        return -1;
    int applied = 0;
    if (rp_db_migrate (self->db, &applied, err, errlen))
        return -1;
    if (applied)
        rp_info ("lambda", "applied %d schema migrations", applied);
    if (rp_library_recover (self->blobs, self->db, &self->config, err, errlen))
        return -1;
    snprintf (type, typelen, "Runtime.StartError");
    self->runtime = rp_runtime_new ();
    rp_roles_opts_t opts = { .listen_tcp = false, .pools = true, .pipeline = true };
    if (rp_roles_start (self->runtime, &self->config, &opts, &self->pipeline, err, errlen))
        return -1;
    if (*self->config.sqs_events_queue_url) {
        rp_bridge_args_t *args = (rp_bridge_args_t *) rp_alloc (sizeof (rp_bridge_args_t));
        args->config = self->config;
        zactor_t *actor = rp_actor_start_checked (rp_sqs_events_actor, args, &args->start_failed);
        free (args);
        if (!actor) {
            snprintf (err, errlen, "the sqs-events bridge cannot start (see the log line above)");
            return -1;
        }
        self->events = actor;
        rp_runtime_adopt (self->runtime, "sqs-events", &actor);
    }
    if (*self->config.sqs_ingest_queue_url)
        rp_info ("lambda", "sqs.ingest_queue_url is set but not polled here: the event source mapping "
                 "delivers its messages");
    if (rp_roles_start_emf (self->runtime, &self->config, "lambda", RP_INPROC_FRONTEND, err, errlen))
        return -1;
    return 0;
}

static void
s_destroy (s_lambda_t *self)
{
    rp_runtime_destroy (&self->runtime);
    rp_db_close (&self->db);
    rp_blobstore_close (&self->blobs);
    rp_lambda_runtime_destroy (&self->api);
}

//  Whether the photo's outcome is committed (complete, failed, or gone)
static bool
s_photo_finished (s_lambda_t *self, const char *id)
{
    char status [16], err [256];
    int rc = rp_db_photo_status (self->db, id, status, err, sizeof err);
    if (rc == RP_NOT_FOUND)
        return true;                //  deleted by its user meanwhile
    return rc == 0 && (streq (status, "complete") || streq (status, "failed"));
}

//  Wait until every waiting record's photos are finished, or until is
//  reached (wall ms), or the process is told to stop
static void
s_wait_photos (s_lambda_t *self, s_record_t *records, size_t count, int64_t until)
{
    for (;;) {
        bool waiting = false;
        for (size_t i = 0; i < count; i++) {
            s_record_t *record = &records [i];
            if (record->state != S_WAITING)
                continue;
            while (record->finished < record->nphotos && s_photo_finished (self, record->photos [record->finished]))
                record->finished++;
            if (record->finished == record->nphotos)
                record->state = S_DONE;
            else
                waiting = true;
        }
        if (!waiting || rp_clock_wall_ms () + S_POLL_MS >= until || rp_interrupted ())
            return;
        zclock_sleep (S_POLL_MS);
    }
}

//  Wait until the events of the done records' photos are published (or
//  until); how many photos' events are still to go
static int
s_wait_events (s_lambda_t *self, s_record_t *records, size_t count, int64_t until)
{
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i < count; i++) {
            s_record_t *record = &records [i];
            if (record->state != S_DONE)
                continue;
            for (int p = 0; p < record->nphotos; p++) {
                bool unpublished = true;
                char err [256];
                if (rp_db_outbox_pending (self->db, RP_SQS_EVENTS_OUTBOX, record->photos [p], &unpublished,
                                          err, sizeof err))
                    rp_debug ("lambda", "cannot read the outbox: %s", err);
                pending += unpublished;
            }
        }
        if (!pending || rp_clock_wall_ms () + S_POLL_MS >= until || rp_interrupted ())
            return pending;
        zclock_sleep (S_POLL_MS);
    }
}

//  One invocation. *response the answer, or NULL with the error's type
//  and message (the event is not an SQS batch). *records_n and *failures_n
//  for the summary line.
static void
s_handle (s_lambda_t *self, const rp_lambda_invocation_t *invocation, json_t **response, char *type,
          size_t typelen, char *message, size_t messagelen, size_t *records_n, size_t *failures_n)
{
    *response = NULL;
    *records_n = *failures_n = 0;
    int64_t started = rp_clock_wall_ms ();
    int64_t deadline = invocation->deadline_ms > 0 ? invocation->deadline_ms : started + 900000;
    int64_t margin = self->config.lambda_deadline_margin_ms;
    if (deadline - started <= 2 * margin)
        rp_error ("lambda", "the invocation has %lld ms, no more than twice lambda.deadline_margin_ms "
                  "(%lld): no record can be taken in; raise the function's timeout or lower the margin",
                  (long long) (deadline - started), (long long) margin);
    json_error_t jerr;
    json_t *event = json_loadb (invocation->event, invocation->event_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *list = event ? json_object_get (event, "Records") : NULL;
    snprintf (type, typelen, "Runtime.InvalidEvent");
    if (!json_is_object (event) || !json_is_array (list)) {
        snprintf (message, messagelen, "the event is not an SQS batch: %s",
                  !event ? jerr.text : "it has no \"Records\" array");
        json_decref (event);
        return;
    }
    size_t count = json_array_size (list);
    if (count > S_RECORDS_MAX) {
        snprintf (message, messagelen, "the event holds %zu records; an SQS batch holds at most %d", count,
                  S_RECORDS_MAX);
        json_decref (event);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *record = json_array_get (list, i);
        const char *id = json_string_value (json_object_get (record, "messageId"));
        const char *source = json_string_value (json_object_get (record, "eventSource"));
        if (!id || !*id || !source || !streq (source, "aws:sqs")) {
            snprintf (message, messagelen, "the event is not an SQS batch: record %zu has %s", i,
                      !id || !*id ? "no messageId" : "an eventSource other than \"aws:sqs\"");
            json_decref (event);
            return;
        }
    }
    s_record_t *records = (s_record_t *) rp_alloc ((count ? count : 1) * sizeof (s_record_t));
    char (*photos) [RP_ID_MAX] = (char (*) [RP_ID_MAX]) rp_alloc ((count ? count : 1) * S_PHOTOS_MAX * RP_ID_MAX);
    //  Take the records in while there is time, waking the pipeline after each
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_array_get (list, i);
        s_record_t *record = &records [i];
        record->message_id = json_string_value (json_object_get (item, "messageId"));
        record->photos = photos + i * S_PHOTOS_MAX;
        const char *receives = json_string_value (json_object_get (json_object_get (item, "attributes"),
                                                                   "ApproximateReceiveCount"));
        if (rp_clock_wall_ms () + 2 * margin >= deadline || rp_interrupted ()) {
            record->state = S_UNTAKEN;
            continue;
        }
        const char *body = json_string_value (json_object_get (item, "body"));
        char err [1024] = "";
        rp_s3_ingest_outcome_t outcome = body
            ? rp_s3_ingest_body (self->blobs, self->db, &self->config, "lambda", body, record->photos, S_PHOTOS_MAX,
                                 &record->nphotos, err, sizeof err)
            : RP_S3_INGEST_RETRY;
        if (!body)
            snprintf (err, sizeof err, "the record has no \"body\" string");
        if (outcome == RP_S3_INGEST_RETRY) {
            record->state = S_REFUSED;
            rp_warn ("lambda", "message=%s receive %s not taken in (it comes back): %s", record->message_id,
                     receives ? receives : "?", err);
            continue;
        }
        record->state = record->nphotos ? S_WAITING : S_DONE;
        if (record->nphotos)
            zstr_send (self->pipeline, "WAKE");
    }
    s_wait_photos (self, records, count, deadline - margin);
    if (self->events) {
        //  Bounded apart from the deadline: an outbox that cannot publish
        //  (SQS or its permissions failing, another publisher's lease)
        //  must not hold every invocation to its timeout
        int64_t until = rp_clock_wall_ms () + S_EVENTS_WAIT_MAX_MS;
        int pending = s_wait_events (self, records, count, until < deadline - margin ? until : deadline - margin);
        if (pending)
            rp_warn ("lambda", "the events of %d photos are not on the events queue yet; the outbox "
                     "publishes them later", pending);
    }
    json_t *failures = json_array ();
    for (size_t i = 0; i < count; i++) {
        s_record_t *record = &records [i];
        if (record->state == S_DONE)
            continue;
        if (record->state == S_UNTAKEN)
            rp_info ("lambda", "message=%s not taken: too close to the deadline; it comes back", record->message_id);
        else
        if (record->state == S_WAITING)
            rp_info ("lambda", "message=%s: %d of its %d photos not finished by the deadline; it comes back",
                     record->message_id, record->nphotos - record->finished, record->nphotos);
        json_array_append_new (failures, json_pack ("{s:s}", "itemIdentifier", record->message_id));
    }
    *records_n = count;
    *failures_n = json_array_size (failures);
    *response = json_pack ("{s:o}", "batchItemFailures", failures);
    free (photos);
    free (records);
    json_decref (event);
}

//  The invocation's trace, for this thread's log lines and subsegments
static void
s_trace_enter (const rp_lambda_invocation_t *invocation)
{
    rp_trace_t trace;
    if (*invocation->trace && rp_trace_parse (invocation->trace, &trace) == 0) {
        //  Lambda made the function's segment (Parent=): ours hang under it
        char segment [RP_TRACE_SPAN_MAX];
        if (*trace.parent)
            snprintf (segment, sizeof segment, "%s", trace.parent);
        else
            rp_trace_new_span (segment);
        rp_trace_enter (&trace, segment);
    }
}

int
rp_cmd_lambda (int argc, char **argv)
{
    const char *config_path = NULL;
    int rc = rp_cmd_parse_config ("lambda", argc, argv, &config_path, 0);
    if (rc)
        return rc;
    int64_t began = rp_clock_ms ();
    s_lambda_t self;
    memset (&self, 0, sizeof self);
    char err [1024];
    const char *api = getenv ("AWS_LAMBDA_RUNTIME_API");
    if (!api || !*api) {
        fprintf (stderr, "rapidphoto lambda: AWS_LAMBDA_RUNTIME_API is not set: this command is a Lambda "
                 "function's runtime, started by Lambda (or by something serving its Runtime API)\n");
        return 1;
    }
    self.api = rp_lambda_runtime_new (api, err, sizeof err);
    if (!self.api) {
        fprintf (stderr, "rapidphoto lambda: %s\n", err);
        return 1;
    }
    rp_lambda_runtime_set_cancel (self.api, s_cancel, NULL);
    char type [64];
    if (s_init (&self, config_path, type, sizeof type, err, sizeof err)) {
        fprintf (stderr, "rapidphoto lambda: cannot start (%s): %s\n", type, err);
        char why [512];
        if (rp_lambda_init_error (self.api, type, err, why, sizeof why))
            fprintf (stderr, "rapidphoto lambda: %s\n", why);
        s_destroy (&self);
        return 1;
    }
    rp_info ("lambda", "ready: init_ms=%lld; %d resize and %d exif workers, library %s, events %s",
             (long long) (rp_clock_ms () - began), self.config.pools_resize, self.config.pools_exif,
             strncmp (self.config.db_url, "postgres", 8) == 0 ? "on PostgreSQL" : self.config.db_url,
             self.events ? self.config.sqs_events_queue_url : "not published (sqs.events_queue_url unset)");
    int failures = 0;
    int status = 0;
    while (!rp_interrupted ()) {
        //  Frozen from here until the next event: no claim on a photo and
        //  no outbox lease held meanwhile (DESIGN)
        zstr_send (self.pipeline, "PAUSE");
        if (zsock_wait (self.pipeline))
            rp_warn ("lambda", "some photos stay claimed here while frozen (the database did not take them back)");
        if (self.events) {
            zstr_send (self.events, "PAUSE");
            zsock_wait (self.events);
        }
        rp_lambda_invocation_t invocation;
        rc = rp_lambda_next (self.api, &invocation, err, sizeof err);
        if (rc) {
            if (rp_interrupted ())
                break;
            rp_error ("lambda", "%s", err);
            if (rc == RP_UNAVAILABLE || ++failures >= S_NEXT_FAILURES_MAX) {
                status = 1;
                break;
            }
            zclock_sleep (200 * failures);
            continue;
        }
        failures = 0;
        zstr_send (self.pipeline, "RESUME");
        if (self.events)
            zstr_send (self.events, "RESUME");
        int64_t started = rp_clock_ms ();
        s_trace_enter (&invocation);
        json_t *response = NULL;
        char message [1024] = "";
        size_t records = 0, failed = 0;
        s_handle (&self, &invocation, &response, type, sizeof type, message, sizeof message, &records, &failed);
        char *body = response ? json_dumps (response, JSON_COMPACT) : NULL;
        if (body)
            rc = rp_lambda_respond (self.api, invocation.request_id, body, err, sizeof err);
        else {
            rp_warn ("lambda", "request=%s failed (%s): %s", invocation.request_id, type, message);
            rc = rp_lambda_fail (self.api, invocation.request_id, type, message, err, sizeof err);
        }
        if (rc)
            rp_error ("lambda", "request=%s: the answer was not taken: %s", invocation.request_id, err);
        rp_info ("lambda", "request=%s records=%zu failures=%zu duration_ms=%lld%s", invocation.request_id,
                 records, failed, (long long) (rp_clock_ms () - started), body ? "" : " error=invalid-event");
        free (body);
        json_decref (response);
        rp_trace_leave ();
        rp_lambda_invocation_clear (&invocation);
        if (rc == RP_UNAVAILABLE) {
            status = 1;
            break;
        }
    }
    rp_info ("lambda", "stopping%s", status ? " (the Runtime API failed)" : "");
    if (self.events) {
        zstr_send (self.events, "PAUSE");
        zsock_wait (self.events);
    }
    s_destroy (&self);
    return status;
}
