/*  tests/test_broker.c: the broker with real worker pools, in one process.

    Each test starts a broker and worker actors over inproc, submits jobs as
    a producer would (a DEALER speaking SUBMIT), and checks every RESULT.
    Worker deaths across processes are in test_failover.c.
*/
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "engine/broker.h"
#include "engine/log.h"
#include "engine/msg.h"
#include "engine/runtime.h"
#include "actors/actors.h"
#include "tests/support/testdata.h"

#define FRONTEND "inproc://test-frontend"
#define BACKEND  "inproc://test-backend"

static void
s_setup (void)
{
    cr_assert_eq (VIPS_INIT ("test_broker"), 0);
    vips_cache_set_max (0);
    vips_concurrency_set (1);
    zsys_init ();
    zsys_set_logstream (stderr);
}

TestSuite (broker, .init = s_setup);

typedef struct {
    rp_runtime_t *runtime;
    zactor_t *broker;           //  borrowed: the runtime owns it
    zsock_t *client;
    rp_config_t config;
    char *dir;
} s_engine_t;

static void
s_engine_start (s_engine_t *e, int resize_workers, int exif_workers)
{
    char err [256];
    if (e->config.derivative_count == 0) {
        cr_assert_eq (rp_config_load (&e->config, NULL, err, sizeof err), 0, "%s", err);
        e->config.broker_heartbeat_ms = 100;
        e->config.broker_drain_ms = 200;
    }
    rp_broker_args_t args;
    rp_broker_args_from_config (&args, &e->config);
    snprintf (args.frontends [0], RP_STR_MAX, "%s", FRONTEND);
    snprintf (args.backends [0], RP_STR_MAX, "%s", BACKEND);
    zactor_t *broker = rp_broker_new (&args);
    cr_assert_not_null (broker);
    e->broker = broker;
    e->runtime = rp_runtime_new ();
    rp_runtime_adopt (e->runtime, "broker", &broker);
    if (resize_workers)
        cr_assert_eq (rp_actors_start_pool (e->runtime, "resize", resize_workers, BACKEND,
                                             &e->config, err, sizeof err), 0, "%s", err);
    if (exif_workers)
        cr_assert_eq (rp_actors_start_pool (e->runtime, "exif", exif_workers, BACKEND,
                                             &e->config, err, sizeof err), 0, "%s", err);
    e->client = zsock_new_dealer (FRONTEND);
    cr_assert_not_null (e->client);
    e->dir = rp_test_tmpdir ("broker");
}

static void
s_engine_stop (s_engine_t *e)
{
    zsock_destroy (&e->client);
    rp_runtime_destroy (&e->runtime);
    free (e->dir);
}

static void
s_submit (s_engine_t *e, const char *job_id, const char *kind, const char *src)
{
    rp_msg_t *msg = rp_msg_new (RP_MSG_SUBMIT);
    rp_msg_set (&msg->job_id, job_id);
    rp_msg_set (&msg->kind, kind);
    rp_msg_set (&msg->src, src);
    rp_msg_setf (&msg->dest, "%s/%s", e->dir, job_id);
    cr_assert_eq (rp_msg_send (msg, zsock_resolve (e->client), NULL), 0);
    rp_msg_destroy (&msg);
}

//  The next RESULT within timeout_ms, or NULL.
static rp_msg_t *
s_next_result (s_engine_t *e, int timeout_ms)
{
    zsock_set_rcvtimeo (e->client, timeout_ms);
    zmsg_t *zmsg = zmsg_recv (e->client);
    if (!zmsg)
        return NULL;
    char err [256];
    rp_msg_t *msg = rp_msg_decode (zmsg, err, sizeof err);
    zmsg_destroy (&zmsg);
    cr_assert_not_null (msg, "broker sent a malformed message: %s", err);
    cr_assert_eq (msg->command, RP_MSG_RESULT);
    return msg;
}

static char *
s_photo (s_engine_t *e, int n)
{
    char path [512];
    snprintf (path, sizeof path, "%s/photo-%d.jpg", e->dir, n);
    cr_assert_eq (rp_test_make_jpeg (path, 800 + 16 * n, 600, 0), 0);
    return strdup (path);
}

Test (broker, jobs_flow_through_both_pools_and_each_is_answered_once, .timeout = 120)
{
    s_engine_t e = { 0 };
    s_engine_start (&e, 2, 1);
    enum { N = 6 };
    for (int i = 0; i < N; i++) {
        char *src = s_photo (&e, i);
        char id [32];
        snprintf (id, sizeof id, "r%d", i);
        s_submit (&e, id, "resize", src);
        snprintf (id, sizeof id, "e%d", i);
        s_submit (&e, id, "exif", src);
        free (src);
    }
    zhash_t *seen = zhash_new ();
    for (int i = 0; i < 2 * N; i++) {
        rp_msg_t *r = s_next_result (&e, 30000);
        cr_assert_not_null (r, "only %d of %d results arrived", i, 2 * N);
        cr_assert_str_eq (r->status, "done", "job %s: %s", r->job_id, r->error ? r->error : "");
        cr_assert_null (zhash_lookup (seen, r->job_id), "job %s answered twice", r->job_id);
        zhash_insert (seen, r->job_id, (void *) 1);
        cr_assert_eq (r->attempt, 1);
        json_error_t jerr;
        json_t *result = json_loads (r->result, 0, &jerr);
        cr_assert_not_null (result, "result is not JSON: %s", jerr.text);
        if (r->job_id [0] == 'r')
            cr_assert_not_null (json_object_get (json_object_get (result, "derivatives"), "thumbnail"));
        else
            cr_assert_eq (strlen (json_string_value (json_object_get (result, "sha256"))), 64);
        json_decref (result);
        rp_msg_destroy (&r);
    }
    cr_assert_null (s_next_result (&e, 300), "an extra result arrived");
    zhash_destroy (&seen);
    s_engine_stop (&e);
}

Test (broker, a_stalled_job_is_sent_again_and_still_answered_once, .timeout = 120)
{
    //  The first job of this process sleeps 3 s while its worker keeps
    //  heartbeating: only the job deadline (800 ms) can notice
    setenv ("RP_FAULT_STALL_ONCE_MS", "3000", 1);
    s_engine_t e = { 0 };
    char err [256];
    cr_assert_eq (rp_config_load (&e.config, NULL, err, sizeof err), 0);
    e.config.broker_heartbeat_ms = 100;
    e.config.broker_job_timeout_ms = 800;
    e.config.broker_drain_ms = 5000;
    s_engine_start (&e, 2, 0);
    enum { N = 3 };
    for (int i = 0; i < N; i++) {
        char *src = s_photo (&e, i);
        char id [32];
        snprintf (id, sizeof id, "r%d", i);
        s_submit (&e, id, "resize", src);
        free (src);
    }
    zhash_t *seen = zhash_new ();
    int retried_answers = 0;
    for (int i = 0; i < N; i++) {
        rp_msg_t *r = s_next_result (&e, 30000);
        cr_assert_not_null (r);
        cr_assert_str_eq (r->status, "done", "%s", r->error ? r->error : "");
        cr_assert_null (zhash_lookup (seen, r->job_id), "job %s answered twice", r->job_id);
        zhash_insert (seen, r->job_id, (void *) 1);
        if (r->attempt > 1)
            retried_answers++;
        rp_msg_destroy (&r);
    }
    cr_assert_eq (retried_answers, 1, "the stalled job was answered by its second attempt");
    //  The stalled attempt wakes up and reports: that late result is dropped
    cr_assert_null (s_next_result (&e, 3500), "the late duplicate reached the producer");
    int64_t queued, running, workers, completed, retried;
    cr_assert_eq (rp_broker_stats (e.broker, &queued, &running, &workers, &completed, &retried), 0);
    cr_assert_eq (completed, N);
    cr_assert_eq (retried, 1);
    cr_assert_eq (queued + running, 0);
    zhash_destroy (&seen);
    s_engine_stop (&e);
    unsetenv ("RP_FAULT_STALL_ONCE_MS");
}

Test (broker, a_job_lost_on_every_attempt_fails_with_the_reason, .timeout = 120)
{
    setenv ("RP_FAULT_JOB_DELAY_MS", "2500", 1);
    s_engine_t e = { 0 };
    char err [256];
    cr_assert_eq (rp_config_load (&e.config, NULL, err, sizeof err), 0);
    e.config.broker_heartbeat_ms = 100;
    e.config.broker_job_timeout_ms = 300;
    e.config.broker_max_attempts = 2;
    e.config.broker_drain_ms = 100;
    s_engine_start (&e, 2, 0);
    char *src = s_photo (&e, 1);
    s_submit (&e, "doomed", "resize", src);
    free (src);
    rp_msg_t *r = s_next_result (&e, 10000);
    cr_assert_not_null (r);
    cr_assert_str_eq (r->status, "failed");
    cr_assert_eq (r->attempt, 2);
    cr_assert (strstr (r->error, "lost on all 2 attempts"), "%s", r->error);
    cr_assert (strstr (r->error, "deadline"), "%s", r->error);
    rp_msg_destroy (&r);
    cr_assert_null (s_next_result (&e, 3000), "the late results must be dropped");
    s_engine_stop (&e);
    unsetenv ("RP_FAULT_JOB_DELAY_MS");
}

Test (broker, a_handler_failure_is_final_and_readable, .timeout = 60)
{
    s_engine_t e = { 0 };
    s_engine_start (&e, 1, 1);
    char path [512];
    snprintf (path, sizeof path, "%s/notes.jpg", e.dir);
    FILE *file = fopen (path, "w");
    fputs ("this is not a photo\n", file);
    fclose (file);
    s_submit (&e, "text", "resize", path);
    rp_msg_t *r = s_next_result (&e, 10000);
    cr_assert_not_null (r);
    cr_assert_str_eq (r->status, "failed");
    cr_assert_eq (r->attempt, 1, "bad input is not retried");
    cr_assert (r->error && strlen (r->error) > 10, "reason: %s", r->error ? r->error : "(none)");
    rp_msg_destroy (&r);
    s_engine_stop (&e);
}

Test (broker, malformed_messages_are_dropped_and_the_broker_keeps_serving, .timeout = 60)
{
    s_engine_t e = { 0 };
    s_engine_start (&e, 1, 0);
    //  Garbage at both doors
    zsock_t *rogue_worker = zsock_new_dealer (BACKEND);
    zstr_sendx (rogue_worker, "RP1", "DONE", "\xc1\xc1", NULL);
    zstr_sendx (rogue_worker, "HELLO", NULL);
    zstr_sendx (rogue_worker, "RP1", "READY", NULL);
    zstr_sendx (e.client, "RP1", "SUBMIT", "not msgpack", NULL);
    zstr_sendx (e.client, "RP1", "DONE", "\x80", NULL);
    zstr_sendx (e.client, "junk", NULL);
    //  A real job still goes through
    char *src = s_photo (&e, 2);
    s_submit (&e, "after-junk", "resize", src);
    free (src);
    rp_msg_t *r = s_next_result (&e, 20000);
    cr_assert_not_null (r);
    cr_assert_str_eq (r->job_id, "after-junk");
    cr_assert_str_eq (r->status, "done");
    rp_msg_destroy (&r);
    zsock_destroy (&rogue_worker);
    s_engine_stop (&e);
}

Test (broker, a_duplicate_submit_is_answered_once, .timeout = 60)
{
    s_engine_t e = { 0 };
    s_engine_start (&e, 0, 0);
    char *src = s_photo (&e, 3);
    s_submit (&e, "twice", "exif", src);
    s_submit (&e, "twice", "exif", src);
    free (src);
    //  Both submits reach the broker before any worker can answer the first
    zclock_sleep (200);
    char err [256];
    cr_assert_eq (rp_actors_start_pool (e.runtime, "exif", 1, BACKEND, &e.config, err, sizeof err), 0);
    rp_msg_t *r = s_next_result (&e, 20000);
    cr_assert_not_null (r);
    cr_assert_str_eq (r->status, "done");
    rp_msg_destroy (&r);
    cr_assert_null (s_next_result (&e, 1000), "the duplicate submit was answered again");
    s_engine_stop (&e);
}

Test (broker, status_tells_queues_workers_and_times_per_pool, .timeout = 60)
{
    s_engine_t e = { 0 };
    s_engine_start (&e, 2, 1);
    char *src = s_photo (&e, 4);
    s_submit (&e, "timed", "resize", src);
    free (src);
    rp_msg_t *r = s_next_result (&e, 20000);
    cr_assert_not_null (r);
    rp_msg_destroy (&r);
    json_t *status = NULL;
    char err [256];
    cr_assert_eq (rp_broker_query_status (FRONTEND, 2000, &status, err, sizeof err), 0, "%s", err);
    json_t *resize = json_object_get (json_object_get (status, "pools"), "resize");
    cr_assert_not_null (resize);
    cr_assert_eq (json_integer_value (json_object_get (resize, "workers")), 2);
    cr_assert_eq (json_integer_value (json_object_get (resize, "done")), 1);
    cr_assert_eq (json_integer_value (json_object_get (resize, "queued")), 0);
    cr_assert_eq (json_integer_value (json_object_get (resize, "running")), 0);
    cr_assert_gt (json_integer_value (json_object_get (resize, "duration_ms_sum")), 0);
    cr_assert_eq (json_integer_value (json_object_get (json_object_get (json_object_get (status, "pools"),
                                                                        "exif"), "workers")), 1);
    json_decref (status);
    //  Nobody home: a readable error, not a hang
    cr_assert_eq (rp_broker_query_status ("inproc://nobody-here", 300, &status, err, sizeof err), -1);
    cr_assert (strstr (err, "did not answer"), "%s", err);
    s_engine_stop (&e);
}

//  ---------------------------------------------------------------------------
//  A worker speaking the protocol by hand (a DEALER), for what no real
//  worker does. The inputs come from tests/fuzz/broker.c's findings.

static void
s_worker_says (zsock_t *worker, rp_command_t command, const char *job_id, const char *pool)
{
    rp_msg_t *msg = rp_msg_new (command);
    rp_msg_set (&msg->job_id, job_id);
    rp_msg_set (&msg->pool, pool);
    if (command == RP_MSG_DONE)
        rp_msg_set (&msg->result, "{}");
    cr_assert_eq (rp_msg_send (msg, zsock_resolve (worker), NULL), 0);
    rp_msg_destroy (&msg);
}

//  A broker with no pools, and one hand-made worker registered in pool
//  (caller destroys it). Heartbeats every second: it stays alive for the test.
static zsock_t *
s_engine_start_by_hand (s_engine_t *e, const char *pool)
{
    char err [256];
    cr_assert_eq (rp_config_load (&e->config, NULL, err, sizeof err), 0, "%s", err);
    e->config.broker_heartbeat_ms = 1000;
    s_engine_start (e, 0, 0);
    zsock_t *worker = zsock_new_dealer (BACKEND);
    cr_assert_not_null (worker);
    s_worker_says (worker, RP_MSG_READY, NULL, pool);
    return worker;
}

//  The broker's STATUS numbers for one pool ("queued", "idle", ...).
static int64_t
s_pool_number (const char *pool, const char *name)
{
    json_t *status = NULL;
    char err [256];
    cr_assert_eq (rp_broker_query_status (FRONTEND, 2000, &status, err, sizeof err), 0, "%s", err);
    int64_t value = json_integer_value (json_object_get (json_object_get (json_object_get (status, "pools"), pool),
                                                         name));
    json_decref (status);
    return value;
}

//  The next JOB the broker sends this worker within timeout_ms (heartbeats
//  skipped), or NULL.
static rp_msg_t *
s_worker_next_job (zsock_t *worker, int timeout_ms)
{
    int64_t until = zclock_mono () + timeout_ms;
    while (zclock_mono () < until) {
        zsock_set_rcvtimeo (worker, (int) (until - zclock_mono () > 0 ? until - zclock_mono () : 1));
        zmsg_t *zmsg = zmsg_recv (worker);
        if (!zmsg)
            break;
        char err [256];
        rp_msg_t *msg = rp_msg_decode (zmsg, err, sizeof err);
        zmsg_destroy (&zmsg);
        cr_assert_not_null (msg, "broker sent a malformed message: %s", err);
        if (msg->command == RP_MSG_JOB)
            return msg;
        rp_msg_destroy (&msg);
    }
    return NULL;
}

//  tests/fuzz/broker.c found it: a DONE from a worker that was not running
//  that job put the worker in its pool's idle list once more. It was then
//  sent two jobs at once, and when it left, the list kept a pointer to it
//  (a use after free in the next dispatch, under ASan).
Test (broker, a_worker_reporting_a_job_it_does_not_run_still_takes_one_job_at_a_time, .timeout = 60)
{
    s_engine_t e = { 0 };
    zsock_t *worker = s_engine_start_by_hand (&e, "resize");
    s_worker_says (worker, RP_MSG_DONE, "never-sent", NULL);
    s_worker_says (worker, RP_MSG_DONE, "never-sent", NULL);
    s_submit (&e, "first", "resize", "/nowhere/1.jpg");
    s_submit (&e, "second", "resize", "/nowhere/2.jpg");
    rp_msg_t *job = s_worker_next_job (worker, 5000);
    cr_assert_not_null (job, "the worker got no job");
    cr_assert_str_eq (job->job_id, "first");
    rp_msg_destroy (&job);
    job = s_worker_next_job (worker, 300);
    cr_assert_null (job, "the worker was sent %s while it runs another job", job ? job->job_id : "");
    //  Its own DONE makes it idle: then it gets the second
    s_worker_says (worker, RP_MSG_DONE, "first", NULL);
    rp_msg_t *r = s_next_result (&e, 5000);
    cr_assert_not_null (r);
    cr_assert_str_eq (r->job_id, "first");
    rp_msg_destroy (&r);
    job = s_worker_next_job (worker, 5000);
    cr_assert_not_null (job);
    cr_assert_str_eq (job->job_id, "second");
    rp_msg_destroy (&job);
    //  It leaves after its job: nothing of it stays behind
    s_worker_says (worker, RP_MSG_DISCONNECT, NULL, NULL);
    s_worker_says (worker, RP_MSG_DONE, "second", NULL);
    r = s_next_result (&e, 5000);
    cr_assert_not_null (r);
    cr_assert_str_eq (r->job_id, "second");
    rp_msg_destroy (&r);
    s_submit (&e, "third", "resize", "/nowhere/3.jpg");
    zclock_sleep (200);
    cr_assert_eq (s_pool_number ("resize", "workers"), 0);
    cr_assert_eq (s_pool_number ("resize", "idle"), 0);
    cr_assert_eq (s_pool_number ("resize", "queued"), 1);
    zsock_destroy (&worker);
    s_engine_stop (&e);
}

//  tests/fuzz/broker.c found it: a job with an empty id, or one longer
//  than the worker's record of the job it runs, was dispatched, and the
//  worker looked idle (or its job could not be found again). When the
//  worker died the job kept a pointer to it (a use after free in the
//  stalled-job check, under ASan). Such a job is refused on arrival.
Test (broker, a_job_without_an_id_or_with_one_too_long_is_refused, .timeout = 60)
{
    s_engine_t e = { 0 };
    zsock_t *worker = s_engine_start_by_hand (&e, "exif");
    char long_id [300];
    memset (long_id, 'j', sizeof long_id - 1);
    long_id [sizeof long_id - 1] = 0;
    s_submit (&e, "", "exif", "/nowhere/1.jpg");
    s_submit (&e, long_id, "exif", "/nowhere/2.jpg");
    rp_msg_t *job = s_worker_next_job (worker, 300);
    cr_assert_null (job, "a job with id \"%.20s\"... was dispatched", job ? job->job_id : "");
    cr_assert_eq (s_pool_number ("exif", "queued"), 0);
    cr_assert_eq (s_pool_number ("exif", "idle"), 1);
    //  A plain id still goes through
    s_submit (&e, "plain", "exif", "/nowhere/3.jpg");
    job = s_worker_next_job (worker, 5000);
    cr_assert_not_null (job);
    cr_assert_str_eq (job->job_id, "plain");
    rp_msg_destroy (&job);
    zsock_destroy (&worker);
    s_engine_stop (&e);
}
