/*  tests/test_broker.c: the broker with real worker pools, in one process.

    Each test starts a broker and worker actors, submits jobs as a producer
    would (a DEALER speaking SUBMIT), and checks every RESULT. Jobs name
    their photo by store address: each test stores its photos in the data
    folder the workers are given. The first tests run over inproc; jobs
    that name paths run over tcp on 127.0.0.1, as the broker of `serve`
    listens. Worker deaths across processes are in test_failover.c.
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
    zactor_t *broker = rp_broker_new (&args);
    cr_assert_not_null (broker);
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
//  Jobs that name paths, over tcp on 127.0.0.1

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

