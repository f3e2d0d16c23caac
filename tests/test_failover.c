/*  tests/test_failover.c: workers in other processes die, stall and stop.

    A real `rapidphoto broker` and `rapidphoto worker` processes on tcp, and
    `rapidphoto process --connect` as the producer. Every job handler sleeps
    RP_FAULT_JOB_DELAY_MS first, so that jobs are surely in flight when the
    test kills one worker (SIGKILL) and freezes another (SIGSTOP): every file
    must still complete, each reported exactly once.
    As a deployment would run them: the broker requires CURVE, with keys
    from `rapidphoto keygen` (its own pair; one client pair for the workers
    and the producer), and they all share one data folder, the store the
    jobs name their photos in.
*/
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <czmq.h>

#include "engine/broker.h"
#include "tests/support/testdata.h"

typedef struct {
    char frontend [64];
    char backend [64];
    char env_frontend [96];
    char env_backend [96];
    char env_data [600];
    char env_keys [4][128];         //  the broker's key and list, the clients' keys
    char dir [256];
    pid_t broker;
} s_cluster_t;

//  One pair from `rapidphoto keygen`: its secret and public keys
static void
s_keygen (char secret [41], char public_key [41])
{
    char *out = NULL;
    char command [1024];
    snprintf (command, sizeof command, "%s keygen", rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 0, "%s", out);
    const char *s = strstr (out, "\ncurve_secret_key = ");
    const char *p = strstr (out, "\ncurve_server_key = ");
    cr_assert (s && p, "%s", out);
    snprintf (secret, 41, "%.40s", s + 20);
    snprintf (public_key, 41, "%.40s", p + 20);
    cr_assert_eq (strlen (secret), 40);
    free (out);
}

static char *s_timing_env [] = {
    "RAPIDPHOTO_BROKER_HEARTBEAT_MS=200",
    "RAPIDPHOTO_BROKER_LIVENESS=3",
    "RAPIDPHOTO_BROKER_JOB_TIMEOUT_MS=20000",
    "RAPIDPHOTO_BROKER_DRAIN_MS=5000",
    NULL
};

static void
s_cluster_start (s_cluster_t *c)
{
    char *dir = rp_test_tmpdir ("failover");
    cr_assert_not_null (dir);
    snprintf (c->dir, sizeof c->dir, "%s", dir);
    free (dir);
    snprintf (c->frontend, sizeof c->frontend, "tcp://127.0.0.1:%d", rp_test_free_port ());
    snprintf (c->backend, sizeof c->backend, "tcp://127.0.0.1:%d", rp_test_free_port ());
    snprintf (c->env_frontend, sizeof c->env_frontend, "RAPIDPHOTO_BROKER_FRONTEND=%s", c->frontend);
    snprintf (c->env_backend, sizeof c->env_backend, "RAPIDPHOTO_BROKER_BACKEND=%s", c->backend);
    for (int i = 0; s_timing_env [i]; i++)
        putenv (s_timing_env [i]);
    putenv (c->env_frontend);
    putenv (c->env_backend);
    snprintf (c->env_data, sizeof c->env_data, "RAPIDPHOTO_DATA_DIR=%s/store", c->dir);
    putenv (c->env_data);
    char broker_secret [41], broker_public [41], client_secret [41], client_public [41];
    s_keygen (broker_secret, broker_public);
    s_keygen (client_secret, client_public);
    snprintf (c->env_keys [0], sizeof c->env_keys [0], "RAPIDPHOTO_BROKER_CURVE_SECRET_KEY=%s", broker_secret);
    snprintf (c->env_keys [1], sizeof c->env_keys [1], "RAPIDPHOTO_BROKER_CURVE_CLIENTS=%s", client_public);
    snprintf (c->env_keys [2], sizeof c->env_keys [2], "RAPIDPHOTO_BROKER_CURVE_SERVER_KEY=%s", broker_public);
    snprintf (c->env_keys [3], sizeof c->env_keys [3], "RAPIDPHOTO_BROKER_CURVE_CLIENT_SECRET_KEY=%s",
              client_secret);
    for (int i = 0; i < 4; i++)
        putenv (c->env_keys [i]);
    char log [512];
    snprintf (log, sizeof log, "%s/broker.log", c->dir);
    c->broker = rp_test_spawn ((char *[]) { "broker", NULL }, NULL, NULL, log);
    cr_assert_gt (c->broker, 0);
}

static void
s_cluster_stop (s_cluster_t *c)
{
    kill (c->broker, SIGTERM);
    cr_assert_eq (rp_test_wait (c->broker, 10000), 0);
    char broker_log [512];
    snprintf (broker_log, sizeof broker_log, "%s/broker.log", c->dir);
    cr_assert_eq (rp_test_count_in_file (broker_log, "CURVE required"), 1, "see %s", broker_log);
    //  The environment outlives the test's stack
    unsetenv ("RAPIDPHOTO_BROKER_CURVE_SECRET_KEY");
    unsetenv ("RAPIDPHOTO_BROKER_CURVE_CLIENTS");
    unsetenv ("RAPIDPHOTO_BROKER_CURVE_SERVER_KEY");
    unsetenv ("RAPIDPHOTO_BROKER_CURVE_CLIENT_SECRET_KEY");
    unsetenv ("RAPIDPHOTO_DATA_DIR");
}

static pid_t
s_worker_start (s_cluster_t *c, const char *name, const char *delay_ms)
{
    char log [512];
    snprintf (log, sizeof log, "%s/%s.log", c->dir, name);
    static char env [4][64];
    static int slot = 0;
    char *entry = env [slot++ % 4];
    snprintf (entry, 64, "RP_FAULT_JOB_DELAY_MS=%s", delay_ms);
    pid_t pid = rp_test_spawn ((char *[]) { "worker", "--pool", "resize,exif", "--threads", "1", NULL },
                               (char *[]) { entry, NULL }, NULL, log);
    cr_assert_gt (pid, 0);
    return pid;
}

static void
s_make_photos (s_cluster_t *c, int count, char **paths)
{
    for (int i = 0; i < count; i++) {
        paths [i] = malloc (512);
        snprintf (paths [i], 512, "%s/in/photo%02d.jpg", c->dir, i);
        if (i == 0) {
            char in [512];
            snprintf (in, sizeof in, "%s/in", c->dir);
            mkdir (in, 0755);
        }
        cr_assert_eq (rp_test_make_jpeg (paths [i], 640 + i, 480, 0), 0);
    }
}

//  Run `process --connect` over the photos; returns its pid.
static pid_t
s_process_start (s_cluster_t *c, int count, char **paths, const char *stdout_path)
{
    char *args [64] = { "process", "--connect", c->frontend, "--out", NULL };
    char out [512];
    snprintf (out, sizeof out, "%s/out", c->dir);
    args [3] = "--out";
    args [4] = out;
    int n = 5;
    for (int i = 0; i < count && n < 62; i++)
        args [n++] = paths [i];
    args [n] = NULL;
    char err [512];
    snprintf (err, sizeof err, "%s/process.log", c->dir);
    //  args is copied by exec in the child; out must live until fork returns
    return rp_test_spawn (args, NULL, stdout_path, err);
}

//  Every photo exactly once in the output, complete.
static void
s_expect_all_complete_once (const char *stdout_path, int count, char **paths)
{
    for (int i = 0; i < count; i++) {
        char needle [600];
        snprintf (needle, sizeof needle, "\"file\":\"%s\"", paths [i]);
        cr_expect_eq (rp_test_count_in_file (stdout_path, needle), 1,
                      "%s reported %d times", paths [i], rp_test_count_in_file (stdout_path, needle));
    }
    cr_assert_eq (rp_test_count_in_file (stdout_path, "\"status\":\"complete\""), count);
    cr_assert_eq (rp_test_count_in_file (stdout_path, "\"file\""), count, "one line per file");
}

Test (failover, a_killed_and_a_frozen_worker_lose_no_job, .timeout = 180)
{
    s_cluster_t c = { 0 };
    s_cluster_start (&c);
    pid_t killed = s_worker_start (&c, "killed", "500");
    pid_t frozen = s_worker_start (&c, "frozen", "500");
    pid_t healthy = s_worker_start (&c, "healthy", "500");
    enum { N = 16 };
    char *paths [N];
    s_make_photos (&c, N, paths);
    char stdout_path [512];
    snprintf (stdout_path, sizeof stdout_path, "%s/results.jsonl", c.dir);
    zclock_sleep (500);                 //  let the workers join
    pid_t producer = s_process_start (&c, N, paths, stdout_path);

    zclock_sleep (900);                 //  jobs are in flight on every worker now
    kill (killed, SIGKILL);
    kill (frozen, SIGSTOP);
    int status = rp_test_wait (producer, 120000);
    kill (frozen, SIGCONT);             //  wakes up, reports late: must be dropped

    cr_assert_eq (status, 0, "process exit status %d", status);
    s_expect_all_complete_once (stdout_path, N, paths);
    char broker_log [512];
    snprintf (broker_log, sizeof broker_log, "%s/broker.log", c.dir);
    cr_assert_geq (rp_test_count_in_file (broker_log, "queued again"), 2,
                   "both lost workers had jobs that were sent again (see %s)", broker_log);
    cr_assert_geq (rp_test_count_in_file (broker_log, "silent for"), 2);

    //  SIGTERM stops the others cleanly and within the drain bound
    kill (healthy, SIGTERM);
    kill (frozen, SIGTERM);
    cr_assert_eq (rp_test_wait (healthy, 10000), 0);
    cr_assert_eq (rp_test_wait (frozen, 10000), 0);
    cr_assert_eq (rp_test_wait (killed, 1000), 128 + SIGKILL);
    s_cluster_stop (&c);
    for (int i = 0; i < N; i++)
        free (paths [i]);
}

Test (failover, sigterm_drains_the_job_in_flight, .timeout = 120)
{
    s_cluster_t c = { 0 };
    s_cluster_start (&c);
    pid_t worker = s_worker_start (&c, "draining", "1500");
    char *paths [1];
    s_make_photos (&c, 1, paths);
    char stdout_path [512];
    snprintf (stdout_path, sizeof stdout_path, "%s/results.jsonl", c.dir);
    zclock_sleep (500);
    pid_t producer = s_process_start (&c, 1, paths, stdout_path);
    zclock_sleep (700);                 //  both jobs are mid-way through their 1.5 s
    kill (worker, SIGTERM);
    cr_assert_eq (rp_test_wait (worker, 10000), 0, "the worker stops by itself after draining");
    //  Its results were delivered, not lost: the producer finishes without
    //  any other worker existing
    cr_assert_eq (rp_test_wait (producer, 10000), 0);
    s_expect_all_complete_once (stdout_path, 1, paths);
    char broker_log [512];
    snprintf (broker_log, sizeof broker_log, "%s/broker.log", c.dir);
    cr_assert_eq (rp_test_count_in_file (broker_log, "queued again"), 0);
    s_cluster_stop (&c);
    free (paths [0]);
}

Test (failover, usage_errors_exit_2_with_one_line, .timeout = 30)
{
    char *out = NULL;
    char command [1024];
    snprintf (command, sizeof command, "%s worker --pool nosuch 2>&1", rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 2);
    cr_assert (strstr (out, "unknown pool \"nosuch\""), "%s", out);
    free (out);
    snprintf (command, sizeof command, "%s process 2>&1", rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 2);
    cr_assert (strstr (out, "no files given"), "%s", out);
    free (out);
    snprintf (command, sizeof command, "%s frobnicate 2>&1", rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 2);
    free (out);
    snprintf (command, sizeof command, "RAPIDPHOTO_LIMITS_MAX_PIXELS=many %s process x.jpg 2>&1",
              rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 1);
    cr_assert (strstr (out, "RAPIDPHOTO_LIMITS_MAX_PIXELS"), "%s", out);
    free (out);

    //  A broker whose port is taken says so and exits, never half-starts
    s_cluster_t c = { 0 };
    s_cluster_start (&c);
    zclock_sleep (300);
    snprintf (command, sizeof command, "%s broker 2>&1", rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 1, "%s", out);
    cr_assert (strstr (out, "cannot bind"), "%s", out);
    free (out);
    s_cluster_stop (&c);
}

//  The broker's workers, asked as a client with the cluster's keys
static int64_t
s_workers (s_cluster_t *c)
{
    rp_config_t config;
    char err [512];
    cr_assert_eq (rp_config_load (&config, NULL, err, sizeof err), 0, "%s", err);
    json_t *status = NULL;
    cr_assert_eq (rp_broker_query_status (c->frontend, &config, 2000, &status, err, sizeof err), 0,
                  "%s", err);
    int64_t workers = 0;
    const char *pool;
    json_t *entry;
    json_object_foreach (json_object_get (status, "pools"), pool, entry)
        workers += json_integer_value (json_object_get (entry, "workers"));
    json_decref (status);
    return workers;
}

Test (failover, a_worker_without_a_listed_key_never_joins, .timeout = 60)
{
    s_cluster_t c = { 0 };
    s_cluster_start (&c);
    //  A pair of its own, not on the broker's list
    char secret [41], public_key [41], env [128];
    s_keygen (secret, public_key);
    snprintf (env, sizeof env, "RAPIDPHOTO_BROKER_CURVE_CLIENT_SECRET_KEY=%s", secret);
    char log [512];
    snprintf (log, sizeof log, "%s/stranger.log", c.dir);
    pid_t stranger = rp_test_spawn ((char *[]) { "worker", "--pool", "resize", "--threads", "1", NULL },
                                    (char *[]) { env, NULL }, NULL, log);
    zclock_sleep (1500);
    cr_assert_eq (s_workers (&c), 0, "a worker with an unlisted key joined");
    pid_t listed = s_worker_start (&c, "listed", "0");
    int64_t workers = 0;
    for (int waited = 0; waited < 5000 && workers < 2; waited += 100) {
        zclock_sleep (100);
        workers = s_workers (&c);
    }
    cr_assert_eq (workers, 2, "the listed worker (both its pools) joined, the stranger did not");
    kill (stranger, SIGTERM);
    kill (listed, SIGTERM);
    cr_assert_eq (rp_test_wait (stranger, 10000), 0);
    cr_assert_eq (rp_test_wait (listed, 10000), 0);
    s_cluster_stop (&c);
}
