/*  gateway/readyz.c: whether this gateway can take uploads now, kept fresh
    by a prober actor; GET /readyz answers from what it last found (GET
    /healthz, "the process answers", is one line in routes.c).

    DESIGN
    Thread: the prober, a zactor started by the gateway actor. Every
    S_PERIOD_MS it probes, one after the other, on resources of its own:
      database  a ping and the photo counts by status (for /metrics) on its
                own connection (a broken one is closed and opened again)
      storage   in S3 mode a request to the bucket (one try, short
                timeouts), then a file written and removed under
                <data.dir>/objects/tmp (in S3 mode the local cache)
      broker    a STATUS round trip (at most S_BROKER_MS) to the broker's
                frontend, whose answer (queues and workers per pool) is
                kept for /metrics; a gateway whose broker.frontend is empty
                (the API service on ECS) has none, and no such check
    and writes each outcome into one small state under a mutex. A change
    (ok to down, down to ok) is logged once, with the details: the bucket,
    the endpoint, the error text. Those never reach a client.
    Messages: takes $TERM on its pipe.
    GET /readyz (any MHD thread) reads the state and answers at once, 200
    when every check is ok, else 503: {"status", "checks": {"database":
    "ok"|"down", ...}}, with the SQS bridges' last outcome (engine/health.h)
    beside them, by name only. A probe that has not answered within
    S_STALL_MS counts as down (a database that hangs, an S3 that accepts
    and never answers), so the answer never waits for a dependency.
    Until the first probe of a check is done it is down: not yet known to
    be ready. A process that is stopping (engine/drain.h) answers 503
    {"status":"draining"} at once, so the load balancer takes it out.
*/
#include "gateway/gateway_private.h"
#include <czmq.h>
#include "engine/broker.h"
#include "engine/clock.h"
#include "engine/drain.h"
#include "engine/thread.h"
#include "engine/health.h"
#include "engine/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define S_PERIOD_MS 2000                //  between probes
#define S_BROKER_MS 1000                //  a STATUS round trip
#define S_STALL_MS 5000                 //  a probe running longer is down

typedef enum { S_DATABASE, S_STORAGE, S_BROKER, S_CHECKS } s_which_t;
static const char *const s_names [S_CHECKS] = { "database", "storage", "broker" };

typedef struct {
    bool known;                         //  probed at least once
    bool ok;
    int64_t started_ms;                 //  the probe running now; 0 when none
    bool unused;                        //  nothing to check: not in /readyz
} s_check_t;

static struct {
    pthread_mutex_t lock;
    s_check_t checks [S_CHECKS];
    json_t *counts;                     //  photos by status, or NULL
    json_t *broker;                     //  the broker's STATUS, or NULL
} s_state = { .lock = PTHREAD_MUTEX_INITIALIZER };

//  ---------------------------------------------------------------------------
//  The prober's side

typedef struct {
    rp_config_t config;
    rp_blobstore_t *blobs;              //  the gateway's (thread-safe for this)
    bool in_process_engine;
    rp_db_t *db;
    bool was_ok [S_CHECKS];
    bool said [S_CHECKS];
} s_prober_t;

static void
s_started (s_which_t which)
{
    pthread_mutex_lock (&s_state.lock);
    s_state.checks [which].started_ms = rp_clock_ms ();
    pthread_mutex_unlock (&s_state.lock);
}

//  Record an outcome; log it when it changed (why: the details, for the log only)
static void
s_outcome (s_prober_t *self, s_which_t which, bool ok, const char *why)
{
    pthread_mutex_lock (&s_state.lock);
    s_check_t *check = &s_state.checks [which];
    check->known = true;
    check->ok = ok;
    check->started_ms = 0;
    pthread_mutex_unlock (&s_state.lock);
    if (!self->said [which] || ok != self->was_ok [which]) {
        if (ok)
            rp_info ("gateway", "readiness: %s is ok%s", s_names [which], self->said [which] ? " again" : "");
        else
            rp_warn ("gateway", "readiness: %s is down: %s", s_names [which], why);
    }
    self->said [which] = true;
    self->was_ok [which] = ok;
}

static void
s_probe_database (s_prober_t *self)
{
    char err [256] = "";
    s_started (S_DATABASE);
    if (!self->db)
        self->db = rp_db_open (self->config.db_url, err, sizeof err);
    json_t *counts = NULL;
    bool ok = self->db && rp_db_ping (self->db, err, sizeof err) == 0
           && rp_db_status_counts (self->db, &counts, err, sizeof err) == 0;
    //  What the bit-rot checks found (schema V10), for /metrics as well
    json_t *integrity = NULL;
    if (ok && rp_db_scrub_counts (self->db, &integrity, err, sizeof err) == 0)
        json_object_set_new (counts, "integrity", integrity);
    if (!ok)
        rp_db_close (&self->db);        //  a new connection next time
    pthread_mutex_lock (&s_state.lock);
    json_decref (s_state.counts);
    s_state.counts = counts;
    pthread_mutex_unlock (&s_state.lock);
    s_outcome (self, S_DATABASE, ok, err);
}

static void
s_probe_storage (s_prober_t *self)
{
    char err [256] = "", why [600] = "";
    s_started (S_STORAGE);
    rp_s3_mirror_t *s3 = rp_blobstore_s3 (self->blobs);
    bool ok = true;
    if (s3 && rp_s3_mirror_ping (s3, err, sizeof err)) {
        snprintf (why, sizeof why, "S3 bucket %s cannot be reached: %s", rp_s3_mirror_bucket (s3), err);
        ok = false;
    }
    if (ok) {
        char path [RP_STR_MAX + 64];
        snprintf (path, sizeof path, "%s/objects/tmp/.ready.%d", self->config.data_dir, (int) getpid ());
        int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ok = fd >= 0 && write (fd, "ok", 2) == 2;
        if (!ok)
            snprintf (why, sizeof why, "%s/objects/tmp is not writable: %s", self->config.data_dir, strerror (errno));
        if (fd >= 0)
            close (fd);
        unlink (path);
    }
    s_outcome (self, S_STORAGE, ok, why);
}

static void
s_probe_broker (s_prober_t *self)
{
    char err [256] = "", why [600] = "";
    s_started (S_BROKER);
    const char *endpoint = self->in_process_engine ? RP_INPROC_FRONTEND : self->config.broker_frontend;
    json_t *status = NULL;
    bool ok = rp_broker_query_status (endpoint, &self->config, S_BROKER_MS, &status, err, sizeof err) == 0;
    if (!ok)
        snprintf (why, sizeof why, "the broker at %s: %s", endpoint, err);
    pthread_mutex_lock (&s_state.lock);
    json_decref (s_state.broker);
    s_state.broker = status;
    pthread_mutex_unlock (&s_state.lock);
    s_outcome (self, S_BROKER, ok, why);
}

void
rp_gw_prober_actor (zsock_t *pipe, void *arg)
{
    const rp_gw_prober_args_t *args = (const rp_gw_prober_args_t *) arg;
    s_prober_t self = { .config = args->config, .blobs = args->blobs,
                        .in_process_engine = args->in_process_engine };
    //  A gateway with no broker (the API service on ECS: the pipeline
    //  takes photos from the database) has nothing to wait for there
    bool no_broker = !self.in_process_engine && !*self.config.broker_frontend;
    pthread_mutex_lock (&s_state.lock);
    if (no_broker)
        s_state.checks [S_BROKER] = (s_check_t) { .known = true, .ok = true, .unused = true };
    pthread_mutex_unlock (&s_state.lock);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zsock_signal (pipe, 0);
    int64_t next = 0;
    while (true) {
        int64_t wait = next - rp_clock_ms ();
        if (wait > 0 && zpoller_wait (poller, (int) wait) == pipe) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
            continue;
        }
        if (zpoller_terminated (poller))
            break;
        if (wait > 0)
            continue;
        s_probe_database (&self);
        s_probe_storage (&self);
        if (!no_broker)
            s_probe_broker (&self);
        next = rp_clock_ms () + S_PERIOD_MS;
    }
    zpoller_destroy (&poller);
    rp_db_close (&self.db);
    pthread_mutex_lock (&s_state.lock);
    json_decref (s_state.counts);
    json_decref (s_state.broker);
    s_state.counts = s_state.broker = NULL;
    memset (s_state.checks, 0, sizeof s_state.checks);
    pthread_mutex_unlock (&s_state.lock);
    //  This thread's OpenSSL state (S3 requests are signed here) goes now,
    //  before the actor says it is done (engine/thread.h)
    rp_thread_end ();
}

//  ---------------------------------------------------------------------------
//  The HTTP side

//  Whether a check is ok now. Lock held.
static bool
s_ok (const s_check_t *check, int64_t now)
{
    bool stalled = check->started_ms && now - check->started_ms > S_STALL_MS;
    return check->known && check->ok && !stalled;
}

typedef struct {
    json_t *checks;
    bool ready;
} s_health_t;

static void
s_health_check (const char *name, bool ok, const char *why, void *arg)
{
    s_health_t *health = (s_health_t *) arg;
    json_object_set_new (health->checks, name, json_string (ok ? "ok" : "down"));
    health->ready &= ok;
}

enum MHD_Result
rp_gw_readyz (struct MHD_Connection *c, rp_req_t *req)
{
    if (rp_draining ())
        return rp_gw_json (c, req, 503, json_pack ("{s:s}", "status", "draining"));
    s_health_t health = { json_object (), true };
    int64_t now = rp_clock_ms ();
    pthread_mutex_lock (&s_state.lock);
    for (int i = 0; i < S_CHECKS; i++) {
        if (s_state.checks [i].unused)
            continue;
        bool ok = s_ok (&s_state.checks [i], now);
        json_object_set_new (health.checks, s_names [i], json_string (ok ? "ok" : "down"));
        health.ready &= ok;
    }
    pthread_mutex_unlock (&s_state.lock);
    //  The SQS bridges' last word (engine/health.h)
    rp_health_each (s_health_check, &health);
    return rp_gw_json (c, req, health.ready ? 200 : 503,
                       json_pack ("{s:s, s:o}", "status", health.ready ? "ready" : "unavailable",
                                  "checks", health.checks));
}

void
rp_gw_probe_state (json_t **counts, json_t **broker, bool ready [3])
{
    int64_t now = rp_clock_ms ();
    pthread_mutex_lock (&s_state.lock);
    *counts = s_state.counts ? json_deep_copy (s_state.counts) : NULL;
    *broker = s_state.broker ? json_deep_copy (s_state.broker) : NULL;
    for (int i = 0; i < S_CHECKS; i++)
        ready [i] = s_ok (&s_state.checks [i], now);
    pthread_mutex_unlock (&s_state.lock);
}
