/*  tests/test_broker.c: the broker with real worker pools, in one process.

    Each test starts a broker and worker actors, submits jobs as a producer
    would (a DEALER speaking SUBMIT), and checks every RESULT. Jobs name
    their photo by store address: each test stores its photos in the data
    folder the workers are given. The first tests run over inproc; those
    about peers that break the rules run over tcp on 127.0.0.1, as the
    broker of `serve` listens: CURVE, a hostile worker, jobs that name
    paths, full queues. Worker deaths across processes are in
    test_failover.c.
*/
#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include "engine/broker.h"
#include "engine/link.h"
#include "engine/log.h"
#include "engine/msg.h"
#include "engine/runtime.h"
#include "library/blobstore.h"
#include "actors/actors.h"
#include "tests/support/hostile.h"
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
    rp_config_t config;         //  the workers' (data.dir: dir) and the broker's
    rp_config_t client_config;  //  the producer's (its CURVE keys, if any)
    char *dir;
    bool tcp;                   //  over tcp on 127.0.0.1 instead of inproc
    char frontend [64];
    char backend [64];
} s_engine_t;

//  The defaults, fast heartbeats; before s_engine_start, for tests that
//  change settings
static void
s_engine_config (s_engine_t *e)
{
    if (e->config.derivative_count)
        return;
    char err [256];
    cr_assert_eq (rp_config_load (&e->config, NULL, err, sizeof err), 0, "%s", err);
    e->config.broker_heartbeat_ms = 100;
    e->config.broker_drain_ms = 200;
    e->dir = rp_test_tmpdir ("broker");
    snprintf (e->config.data_dir, sizeof e->config.data_dir, "%s", e->dir);
    e->client_config = e->config;
}

static void
s_engine_start (s_engine_t *e, int resize_workers, int exif_workers)
{
    char err [512];
    s_engine_config (e);
    rp_broker_args_t args;
    rp_broker_args_from_config (&args, &e->config);
    if (e->tcp) {
        snprintf (e->frontend, sizeof e->frontend, "tcp://127.0.0.1:%d", rp_test_free_port ());
        snprintf (e->backend, sizeof e->backend, "tcp://127.0.0.1:%d", rp_test_free_port ());
    }
    else {
        snprintf (e->frontend, sizeof e->frontend, "%s", FRONTEND);
        snprintf (e->backend, sizeof e->backend, "%s", BACKEND);
    }
    snprintf (args.frontends [0], RP_STR_MAX, "%s", e->frontend);
    snprintf (args.backends [0], RP_STR_MAX, "%s", e->backend);
    zactor_t *broker = rp_broker_new (&args, err, sizeof err);
    cr_assert_not_null (broker, "%s", err);
    e->broker = broker;
    e->runtime = rp_runtime_new ();
    rp_runtime_adopt (e->runtime, "broker", &broker);
    if (resize_workers)
        cr_assert_eq (rp_actors_start_pool (e->runtime, "resize", resize_workers, e->backend,
                                             &e->config, err, sizeof err), 0, "%s", err);
    if (exif_workers)
        cr_assert_eq (rp_actors_start_pool (e->runtime, "exif", exif_workers, e->backend,
                                             &e->config, err, sizeof err), 0, "%s", err);
    e->client = rp_link_connect (ZMQ_DEALER, e->frontend, &e->client_config, RP_LINK_UNQUEUED,
                                 err, sizeof err);
    cr_assert_not_null (e->client, "%s", err);
}

static void
s_engine_stop (s_engine_t *e)
{
    zsock_destroy (&e->client);
    rp_runtime_destroy (&e->runtime);
    free (e->dir);
}

static void
s_stats (s_engine_t *e, int64_t *queued, int64_t *running, int64_t *workers, int64_t *completed)
{
    int64_t retried;
    cr_assert_eq (rp_broker_stats (e->broker, queued, running, workers, completed, &retried), 0);
}

//  Wait until the broker has this many workers registered
static void
s_wait_workers (s_engine_t *e, int64_t count)
{
    int64_t queued, running, workers = -1, completed;
    for (int waited = 0; waited < 10000; waited += 50) {
        s_stats (e, &queued, &running, &workers, &completed);
        if (workers == count)
            return;
        zclock_sleep (50);
    }
    cr_assert_fail ("the broker has %lld workers, not %lld", (long long) workers, (long long) count);
}

//  0, or -1 when the socket has no peer to queue for (see rp_link_connect)
static int
s_try_submit (zsock_t *client, const char *job_id, const char *kind, const char *src, const char *dest)
{
    rp_msg_t *msg = rp_msg_new (RP_MSG_SUBMIT);
    rp_msg_set (&msg->job_id, job_id);
    rp_msg_set (&msg->kind, kind);
    rp_msg_set (&msg->src, src);
    rp_msg_set (&msg->dest, dest);
    int rc = rp_msg_send (msg, zsock_resolve (client), NULL);
    rp_msg_destroy (&msg);
    return rc;
}

static void
s_submit_to (zsock_t *client, const char *job_id, const char *kind, const char *src, const char *dest)
{
    cr_assert_eq (s_try_submit (client, job_id, kind, src, dest), 0);
}

static void
s_submit (s_engine_t *e, const char *job_id, const char *kind, const char *src)
{
    s_submit_to (e->client, job_id, kind, src, NULL);
}

//  The next RESULT on a producer's socket within timeout_ms, or NULL.
static rp_msg_t *
s_result_from (zsock_t *client, int timeout_ms)
{
    zsock_set_rcvtimeo (client, timeout_ms);
    zmsg_t *zmsg = zmsg_recv (client);
    if (!zmsg)
        return NULL;
    char err [256];
    rp_msg_t *msg = rp_msg_decode (zmsg, err, sizeof err);
    zmsg_destroy (&zmsg);
    cr_assert_not_null (msg, "broker sent a malformed message: %s", err);
    cr_assert_eq (msg->command, RP_MSG_RESULT);
    return msg;
}

static rp_msg_t *
s_next_result (s_engine_t *e, int timeout_ms)
{
    return s_result_from (e->client, timeout_ms);
}

//  A file into the workers' store: its address (caller frees).
static char *
s_store (s_engine_t *e, const char *path)
{
    char err [256], sha [65];
    rp_blobstore_t *store = rp_blobstore_open_disk (e->dir, err, sizeof err);
    cr_assert_not_null (store, "%s", err);
    rp_blob_writer_t *writer = rp_blob_begin_file (store, path, 1 << 30, err, sizeof err);
    cr_assert_not_null (writer, "%s", err);
    bool existed;
    cr_assert_eq (rp_blob_commit (&writer, sha, &existed, err, sizeof err), 0, "%s", err);
    rp_blobstore_close (&store);
    return strdup (sha);
}

//  A synthetic photo of 800+16n x 600, stored: its address (caller frees).
static char *
s_photo (s_engine_t *e, int n)
{
    char path [512];
    snprintf (path, sizeof path, "%s/photo-%d.jpg", e->dir, n);
    cr_assert_eq (rp_test_make_jpeg (path, 800 + 16 * n, 600, 0), 0);
    return s_store (e, path);
}

//  Where the store keeps an original (suffix "") or a derivative of it
static void
s_stored_path (s_engine_t *e, const char *sha, const char *suffix, char *path, size_t size)
{
    snprintf (path, size, "%s/objects/%.2s/%.2s/%s%s", e->dir, sha, sha + 2, sha, suffix);
}

static int64_t
s_file_size (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? (int64_t) st.st_size : -1;
}

//  A resize result is photo n's, and its derivatives are beside the original
static void
s_expect_resized (s_engine_t *e, const rp_msg_t *r, const char *sha, int n)
{
    cr_assert_str_eq (r->status, "done", "job %s: %s", r->job_id, r->error ? r->error : "");
    json_error_t jerr;
    json_t *result = json_loads (r->result, 0, &jerr);
    cr_assert_not_null (result, "result is not JSON: %s", jerr.text);
    cr_expect_str_eq (json_string_value (json_object_get (result, "content_type")), "image/jpeg");
    cr_expect_eq (json_integer_value (json_object_get (result, "width")), 800 + 16 * n);
    cr_expect_eq (json_integer_value (json_object_get (result, "height")), 600);
    json_t *thumbnail = json_object_get (json_object_get (result, "derivatives"), "thumbnail");
    cr_assert_not_null (thumbnail);
    char path [1024];
    s_stored_path (e, sha, ".thumbnail.webp", path, sizeof path);
    cr_expect_eq (s_file_size (path), json_integer_value (json_object_get (thumbnail, "bytes")),
                  "the thumbnail is beside the original, as big as the result says");
    json_decref (result);
}

//  An EXIF result names the photo by its address and size
static void
s_expect_exif (s_engine_t *e, const rp_msg_t *r, const char *sha)
{
    cr_assert_str_eq (r->status, "done", "job %s: %s", r->job_id, r->error ? r->error : "");
    json_error_t jerr;
    json_t *result = json_loads (r->result, 0, &jerr);
    cr_assert_not_null (result, "result is not JSON: %s", jerr.text);
    cr_expect_str_eq (json_string_value (json_object_get (result, "sha256")), sha);
    char path [1024];
    s_stored_path (e, sha, "", path, sizeof path);
    cr_expect_eq (json_integer_value (json_object_get (result, "bytes")), s_file_size (path));
    json_decref (result);
}

//  Photos base .. base+count-1 stored, a resize and an EXIF job for each:
//  every job answered once, done by a worker of ours ("kind-n@host:pid"),
//  with the right result. first_try: each on its first attempt.
static void
s_run_photos (s_engine_t *e, int base, int count, bool first_try)
{
    char **shas = calloc ((size_t) count, sizeof (char *));
    for (int i = 0; i < count; i++) {
        shas [i] = s_photo (e, base + i);
        char id [32];
        snprintf (id, sizeof id, "r%d", i);
        s_submit (e, id, "resize", shas [i]);
        snprintf (id, sizeof id, "e%d", i);
        s_submit (e, id, "exif", shas [i]);
    }
    zhash_t *seen = zhash_new ();
    for (int i = 0; i < 2 * count; i++) {
        rp_msg_t *r = s_next_result (e, 30000);
        cr_assert_not_null (r, "only %d of %d results arrived", i, 2 * count);
        cr_assert_null (zhash_lookup (seen, r->job_id), "job %s answered twice", r->job_id);
        zhash_insert (seen, r->job_id, (void *) 1);
        cr_assert (r->worker && strstr (r->worker, "@"), "job %s answered by %s", r->job_id, r->worker);
        if (first_try)
            cr_assert_eq (r->attempt, 1);
        int n = (int) strtol (r->job_id + 1, NULL, 10);
        if (r->job_id [0] == 'r')
            s_expect_resized (e, r, shas [n], base + n);
        else
            s_expect_exif (e, r, shas [n]);
        rp_msg_destroy (&r);
    }
    cr_assert_null (s_next_result (e, 500), "an extra result arrived");
    zhash_destroy (&seen);
    for (int i = 0; i < count; i++)
        free (shas [i]);
    free (shas);
}

Test (broker, jobs_flow_through_both_pools_and_each_is_answered_once, .timeout = 120)
{
    s_engine_t e = { 0 };
    s_engine_start (&e, 2, 1);
    s_run_photos (&e, 0, 6, true);
    s_engine_stop (&e);
}

Test (broker, a_stalled_job_is_sent_again_and_still_answered_once, .timeout = 120)
{
    //  The first job of this process sleeps 3 s while its worker keeps
    //  heartbeating: only the job deadline (800 ms) can notice
    setenv ("RP_FAULT_STALL_ONCE_MS", "3000", 1);
    s_engine_t e = { 0 };
    s_engine_config (&e);
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
    s_engine_config (&e);
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
    char *sha = s_store (&e, path);
    s_submit (&e, "text", "resize", sha);
    free (sha);
    rp_msg_t *r = s_next_result (&e, 10000);
    cr_assert_not_null (r);
    cr_assert_str_eq (r->status, "failed");
    cr_assert_eq (r->attempt, 1, "bad input is not retried");
    cr_assert (r->error && strstr (r->error, "not a supported image"), "reason: %s",
               r->error ? r->error : "(none)");
    cr_assert_eq (r->retry, 0, "bad input is not worth another try");
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
    cr_assert_eq (rp_broker_query_status (FRONTEND, NULL, 2000, &status, err, sizeof err), 0, "%s", err);
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
    cr_assert_eq (rp_broker_query_status ("inproc://nobody-here", NULL, 300, &status, err, sizeof err), -1);
    cr_assert (strstr (err, "did not answer"), "%s", err);
    s_engine_stop (&e);
}

//  ---------------------------------------------------------------------------
//  Peers that break the rules, over tcp on 127.0.0.1

typedef struct {
    char public_key [41];
    char secret_key [41];
} s_pair_t;

static void
s_keypair (s_pair_t *pair)
{
    cr_assert_eq (zmq_curve_keypair (pair->public_key, pair->secret_key), 0, "libzmq without CURVE");
}

//  A producer's socket with these client keys (NULL: none at all)
static zsock_t *
s_producer (s_engine_t *e, const s_pair_t *client, const s_pair_t *broker)
{
    rp_config_t config = e->config;
    *config.broker_curve_server_key = *config.broker_curve_client_secret_key = 0;
    if (client) {
        snprintf (config.broker_curve_server_key, sizeof config.broker_curve_server_key, "%s",
                  broker->public_key);
        snprintf (config.broker_curve_client_secret_key, sizeof config.broker_curve_client_secret_key,
                  "%s", client->secret_key);
    }
    char err [256];
    zsock_t *producer = rp_link_connect (ZMQ_DEALER, e->frontend, &config, 0, err, sizeof err);
    cr_assert_not_null (producer, "%s", err);
    return producer;
}

Test (broker, curve_lets_in_the_listed_keys_only, .timeout = 120)
{
    s_pair_t broker, worker, client, stranger;
    s_keypair (&broker);
    s_keypair (&worker);
    s_keypair (&client);
    s_keypair (&stranger);
    s_engine_t e = { .tcp = true };
    s_engine_config (&e);
    //  The broker lets in the worker's and the client's keys; the workers
    //  know the broker's public key and their own pair
    snprintf (e.config.broker_curve_secret_key, sizeof e.config.broker_curve_secret_key, "%s",
              broker.secret_key);
    snprintf (e.config.broker_curve_clients, sizeof e.config.broker_curve_clients, "%s,%s",
              worker.public_key, client.public_key);
    snprintf (e.config.broker_curve_server_key, sizeof e.config.broker_curve_server_key, "%s",
              broker.public_key);
    snprintf (e.config.broker_curve_client_secret_key, sizeof e.config.broker_curve_client_secret_key,
              "%s", worker.secret_key);
    e.client_config = e.config;
    s_engine_start (&e, 0, 1);
    s_wait_workers (&e, 1);
    char *sha = s_photo (&e, 5);

    //  No keys at all, and a key not on the list: their SUBMITs never reach
    //  the broker (they are queued until the handshake fails, or find no
    //  peer to queue for once it has), and nothing comes back
    zsock_t *plain = s_producer (&e, NULL, NULL);
    zsock_t *unknown = s_producer (&e, &stranger, &broker);
    s_try_submit (plain, "plain", "exif", sha, NULL);
    s_try_submit (unknown, "unknown", "exif", sha, NULL);
    //  Nor does a plain peer on the worker side get to be a worker
    char err [256];
    zsock_t *plain_worker = rp_link_connect (ZMQ_DEALER, e.backend, NULL, 0, err, sizeof err);
    cr_assert_not_null (plain_worker, "%s", err);
    zstr_sendx (plain_worker, "RP1", "READY", "\x81\xa4" "pool" "\xa4" "exif", NULL);
    cr_assert_null (s_result_from (plain, 1500), "a peer without keys got an answer");
    cr_assert_null (s_result_from (unknown, 500), "a key not on the list got an answer");
    int64_t queued, running, workers, completed;
    s_stats (&e, &queued, &running, &workers, &completed);
    cr_assert_eq (queued + running + completed, 0, "a refused SUBMIT reached the broker");
    cr_assert_eq (workers, 1, "only the worker with a listed key joined");
    zstr_sendx (plain_worker, "RP1", "HEARTBEAT", NULL);
    zsock_set_rcvtimeo (plain_worker, 500);
    char *said = zstr_recv (plain_worker);
    cr_assert_null (said, "the broker answered a worker without keys");

    //  The listed client key works, and the job runs on the keyed worker
    zsock_t *allowed = s_producer (&e, &client, &broker);
    s_submit_to (allowed, "allowed", "exif", sha, NULL);
    rp_msg_t *r = s_result_from (allowed, 20000);
    cr_assert_not_null (r, "the listed key got no answer");
    cr_assert_str_eq (r->job_id, "allowed");
    s_expect_exif (&e, r, sha);
    rp_msg_destroy (&r);
    s_stats (&e, &queued, &running, &workers, &completed);
    cr_assert_eq (completed, 1, "only the allowed SUBMIT ran");

    zsock_destroy (&plain);
    zsock_destroy (&unknown);
    zsock_destroy (&plain_worker);
    zsock_destroy (&allowed);
    free (sha);
    s_engine_stop (&e);
}

Test (broker, a_hostile_worker_changes_no_job_and_no_idle_list, .timeout = 180)
{
    //  Real jobs take 800 ms more, so the victim is surely in flight while
    //  the hostile peer claims it
    setenv ("RP_FAULT_JOB_DELAY_MS", "800", 1);
    s_engine_t e = { .tcp = true };
    s_engine_config (&e);
    e.config.broker_liveness = 3;
    s_engine_start (&e, 1, 1);
    s_wait_workers (&e, 2);
    char *victim_sha = s_photo (&e, 6);
    s_submit (&e, "victim", "resize", victim_sha);
    zclock_sleep (200);                 //  running on the real resize worker

    zsock_t *hostile = rp_test_hostile_peer (e.backend, "victim");

    //  The victim is answered by its worker, not failed or forged by the peer
    rp_msg_t *r = s_next_result (&e, 20000);
    cr_assert_not_null (r, "the victim was never answered");
    cr_assert_str_eq (r->job_id, "victim");
    cr_assert (r->worker && strncmp (r->worker, "resize-", 7) == 0, "answered by %s", r->worker);
    s_expect_resized (&e, r, victim_sha, 6);
    rp_msg_destroy (&r);

    //  Silent now: whatever job went to it is lost and sent again; every
    //  job submitted afterwards completes with the right result
    s_run_photos (&e, 10, 4, false);
    //  The peer is forgotten; the real workers remain, each once
    s_wait_workers (&e, 2);
    json_t *status = NULL;
    char err [256];
    cr_assert_eq (rp_broker_query_status (e.frontend, NULL, 2000, &status, err, sizeof err), 0, "%s", err);
    json_t *pools = json_object_get (status, "pools");
    cr_assert_eq (json_integer_value (json_object_get (json_object_get (pools, "resize"), "idle")), 1);
    cr_assert_eq (json_integer_value (json_object_get (json_object_get (pools, "exif"), "idle")), 1);
    cr_assert_eq (json_object_size (pools), 2, "no pool was made from garbage");
    json_decref (status);

    zsock_destroy (&hostile);
    free (victim_sha);
    s_engine_stop (&e);
    unsetenv ("RP_FAULT_JOB_DELAY_MS");
}

Test (broker, jobs_that_name_paths_are_refused_and_reveal_nothing, .timeout = 120)
{
    s_engine_t e = { .tcp = true };
    s_engine_start (&e, 1, 1);
    char *sha = s_photo (&e, 7);
    //  A secret beside the store, as serve keeps its JWT key in data.dir
    char secret [512];
    snprintf (secret, sizeof secret, "%s/jwt_secret", e.dir);
    FILE *file = fopen (secret, "w");
    fputs ("s3cr3t-jwt-key-that-must-stay-here\n", file);
    fclose (file);
    char upper [65], absent [65], tricks [6][600];
    snprintf (upper, sizeof upper, "%s", sha);
    for (char *c = upper; *c; c++)
        *c = (char) toupper ((unsigned char) *c);
    snprintf (absent, sizeof absent, "%064d", 7);
    snprintf (tricks [0], sizeof tricks [0], "/etc/passwd");
    snprintf (tricks [1], sizeof tricks [1], "%s", secret);
    snprintf (tricks [2], sizeof tricks [2], "../../../../../../etc/passwd");
    snprintf (tricks [3], sizeof tricks [3], "%.2s/%.2s/%s/../../../../jwt_secret", sha, sha + 2, sha);
    snprintf (tricks [4], sizeof tricks [4], "objects/%.2s/%.2s/%s", sha, sha + 2, sha);
    snprintf (tricks [5], sizeof tricks [5], "%s/..", sha);
    const char *srcs [] = { tricks [0], tricks [1], tricks [2], tricks [3], tricks [4], tricks [5],
                            upper, absent, "" };
    enum { N = sizeof srcs / sizeof srcs [0] };
    for (int i = 0; i < N; i++) {
        char id [16];
        snprintf (id, sizeof id, "e%d", i);
        s_submit (&e, id, "exif", srcs [i]);
    }
    for (int i = 0; i < N; i++) {
        rp_msg_t *r = s_next_result (&e, 20000);
        cr_assert_not_null (r);
        int n = (int) strtol (r->job_id + 1, NULL, 10);
        cr_assert_str_eq (r->status, "failed", "exif of \"%s\" was done: %s", srcs [n], r->result);
        cr_assert_null (r->result);
        cr_assert (r->error && (strstr (r->error, "store address") || strstr (r->error, "missing")),
                   "%s: %s", srcs [n], r->error);
        cr_assert_null (strstr (r->error, "s3cr3t"), "%s", r->error);
        cr_assert_null (strstr (r->error, "root:"), "%s", r->error);
        cr_assert_null (strstr (r->error, e.dir), "the reason names a path: %s", r->error);
        if (srcs [n] == absent)
            cr_assert (strstr (r->error, "missing from storage"), "%s", r->error);
        rp_msg_destroy (&r);
    }

    //  A resize job cannot write outside the store: dest is not looked at,
    //  and a path as src is refused before anything is written
    char evil [512];
    snprintf (evil, sizeof evil, "%s/evil", e.dir);
    cr_assert_eq (mkdir (evil, 0755), 0);
    char outside [600];
    snprintf (outside, sizeof outside, "%s/outside", evil);
    s_submit_to (e.client, "r-dest", "resize", sha, outside);
    s_submit_to (e.client, "r-path", "resize", "/etc/passwd", outside);
    for (int i = 0; i < 2; i++) {
        rp_msg_t *r = s_next_result (&e, 20000);
        cr_assert_not_null (r);
        if (streq (r->job_id, "r-dest"))
            s_expect_resized (&e, r, sha, 7);
        else {
            cr_assert_str_eq (r->status, "failed");
            cr_assert (strstr (r->error, "store address"), "%s", r->error);
        }
        rp_msg_destroy (&r);
    }
    char *listing = NULL;
    char command [700];
    snprintf (command, sizeof command, "ls -A %s", evil);
    cr_assert_eq (rp_test_run (command, &listing), 0);
    cr_assert_str_eq (listing, "", "written outside the store: %s", listing);
    free (listing);
    free (sha);
    s_engine_stop (&e);
}

Test (broker, bounds_answer_at_once_and_a_kind_without_workers_expires, .timeout = 120)
{
    s_engine_t e = { .tcp = true };
    s_engine_config (&e);
    e.config.broker_queue_max = 3;
    e.config.broker_queue_expiry_ms = 1000;
    s_engine_start (&e, 0, 1);          //  exif workers only: no one serves resize
    s_wait_workers (&e, 1);
    char *sha = s_photo (&e, 8);
    //  A worker of a pool with no sane name is not taken
    zsock_t *odd = zsock_new_dealer (e.backend);
    rp_msg_t *ready = rp_msg_new (RP_MSG_READY);
    rp_msg_set (&ready->pool, "../../etc");
    rp_msg_send (ready, zsock_resolve (odd), NULL);
    rp_msg_destroy (&ready);
    zclock_sleep (300);
    s_wait_workers (&e, 1);
    zsock_destroy (&odd);

    //  Five resize jobs where three may wait: two are answered at once
    int64_t started = zclock_mono ();
    for (int i = 0; i < 5; i++) {
        char id [16];
        snprintf (id, sizeof id, "r%d", i);
        s_submit (&e, id, "resize", sha);
    }
    for (int i = 0; i < 2; i++) {
        rp_msg_t *r = s_next_result (&e, 500);
        cr_assert_not_null (r, "a SUBMIT over the queue's bound waits");
        cr_assert_str_eq (r->status, "failed");
        cr_assert_null (r->worker, "no worker: the producer may try again later");
        cr_assert (strstr (r->error, "broker.queue_max") && strstr (r->error, " 3 "), "%s", r->error);
        cr_assert (streq (r->job_id, "r3") || streq (r->job_id, "r4"), "%s", r->job_id);
        rp_msg_destroy (&r);
    }
    //  Bounds on names and sizes are answered at once too
    char long_id [300];
    memset (long_id, 'x', sizeof long_id - 1);
    long_id [sizeof long_id - 1] = 0;
    s_submit (&e, long_id, "exif", sha);
    s_submit (&e, "bad-kind", "../../etc", sha);
    for (int i = 0; i < 2; i++) {
        rp_msg_t *r = s_next_result (&e, 500);
        cr_assert_not_null (r);
        cr_assert_str_eq (r->status, "failed");
        cr_assert (strstr (r->error, "longer than") || strstr (r->error, "not a pool name"), "%s", r->error);
        rp_msg_destroy (&r);
    }
    //  At most RP_BROKER_POOLS_MAX kinds: exif and resize are two
    for (int i = 0; i < RP_BROKER_POOLS_MAX; i++) {
        char id [16], kind [16];
        snprintf (id, sizeof id, "k%d", i);
        snprintf (kind, sizeof kind, "kind%d", i);
        s_submit (&e, id, kind, sha);
    }
    int too_many = 0;
    for (int i = 0; i < 2; i++) {
        rp_msg_t *r = s_next_result (&e, 500);
        cr_assert_not_null (r, "a kind past the bound was held");
        too_many += strstr (r->error, "a job kind too many") != NULL;
        rp_msg_destroy (&r);
    }
    cr_assert_eq (too_many, 2);

    //  The kinds no worker serves: their waiting jobs fail after the expiry,
    //  naming the kind; the exif pool is not affected
    s_submit (&e, "e-ok", "exif", sha);
    int expired = 0, done = 0;
    for (int i = 0; i < 3 + RP_BROKER_POOLS_MAX - 2 + 1; i++) {
        rp_msg_t *r = s_next_result (&e, 5000);
        cr_assert_not_null (r, "%d jobs expired, %d done", expired, done);
        if (streq (r->job_id, "e-ok")) {
            s_expect_exif (&e, r, sha);
            done++;
        }
        else {
            cr_assert_str_eq (r->status, "failed");
            cr_assert_null (r->worker);
            cr_assert (strstr (r->error, "worker joined within 1000 ms"), "%s", r->error);
            if (r->job_id [0] == 'r')
                cr_assert (strstr (r->error, "no resize worker"), "%s", r->error);
            expired++;
        }
        rp_msg_destroy (&r);
    }
    cr_assert_eq (done, 1);
    cr_assert_geq (zclock_mono () - started, 1000, "expired before queue_expiry_ms");
    int64_t queued, running, workers, completed;
    s_stats (&e, &queued, &running, &workers, &completed);
    cr_assert_eq (queued + running, 0);
    json_t *status = NULL;
    char err [256];
    cr_assert_eq (rp_broker_query_status (e.frontend, NULL, 2000, &status, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_object_size (json_object_get (status, "pools")), RP_BROKER_POOLS_MAX);
    cr_assert_null (json_object_get (json_object_get (status, "pools"), "../../etc"));
    json_decref (status);
    free (sha);
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
    s_engine_config (e);
    e->config.broker_heartbeat_ms = 1000;
    s_engine_start (e, 0, 0);
    zsock_t *worker = zsock_new_dealer (e->backend);
    cr_assert_not_null (worker);
    s_worker_says (worker, RP_MSG_READY, NULL, pool);
    return worker;
}

//  The broker's STATUS numbers for one pool ("queued", "idle", ...).
static int64_t
s_pool_number (s_engine_t *e, const char *pool, const char *name)
{
    json_t *status = NULL;
    char err [256];
    cr_assert_eq (rp_broker_query_status (e->frontend, NULL, 2000, &status, err, sizeof err), 0, "%s", err);
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
    cr_assert_eq (s_pool_number (&e, "resize", "workers"), 0);
    cr_assert_eq (s_pool_number (&e, "resize", "idle"), 0);
    cr_assert_eq (s_pool_number (&e, "resize", "queued"), 1);
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
    cr_assert_eq (s_pool_number (&e, "exif", "queued"), 0);
    cr_assert_eq (s_pool_number (&e, "exif", "idle"), 1);
    //  A plain id still goes through
    s_submit (&e, "plain", "exif", "/nowhere/3.jpg");
    job = s_worker_next_job (worker, 5000);
    cr_assert_not_null (job);
    cr_assert_str_eq (job->job_id, "plain");
    rp_msg_destroy (&job);
    zsock_destroy (&worker);
    s_engine_stop (&e);
}
