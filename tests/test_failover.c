/*  tests/test_failover.c: workers in other processes die, stall and stop.

    A real `rapidphoto broker` and `rapidphoto worker` processes on tcp, and
    `rapidphoto process --connect` as the producer. Every job handler sleeps
    RP_FAULT_JOB_DELAY_MS first, so that jobs are surely in flight when the
    test kills one worker (SIGKILL) and freezes another (SIGSTOP): every file
    must still complete, each reported exactly once.
*/
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <czmq.h>

#include "tests/support/testdata.h"

typedef struct {
    char frontend [64];
    char backend [64];
    char env_frontend [96];
    char env_backend [96];
    char dir [256];
    pid_t broker;
} s_cluster_t;

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
    char log [512];
    snprintf (log, sizeof log, "%s/broker.log", c->dir);
    c->broker = rp_test_spawn ((char *[]) { "broker", NULL }, NULL, NULL, log);
    cr_assert_gt (c->broker, 0);
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
    kill (c.broker, SIGTERM);
    cr_assert_eq (rp_test_wait (c.broker, 10000), 0);
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
    kill (c.broker, SIGTERM);
    cr_assert_eq (rp_test_wait (c.broker, 10000), 0);
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
    kill (c.broker, SIGTERM);
    cr_assert_eq (rp_test_wait (c.broker, 10000), 0);
}
