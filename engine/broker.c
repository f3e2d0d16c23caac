/*  engine/broker.c: the job broker.

    DESIGN
    Thread: one zactor thread. Owns two ROUTER sockets (ZMQ_ROUTER_MANDATORY
    on both, so a vanished peer is an error we see, not a silent drop):
      frontend  producers (the pipeline, `rapidphoto process`)
                send  SUBMIT {job_id, kind, src, dest, photo_id}
                get   RESULT {job_id, kind, status done|failed, result|error,
                              attempt, worker, duration_ms}
                and anyone (the gateway's /metrics) may send STATUS and get
                the queues and workers per pool (rp_broker_query_status)
      backend   workers send READY {pool, worker, pid}, then DONE or FAILED per
                job; both sides send HEARTBEAT every heartbeat_ms. The broker
                sends JOB and, to a worker it does not know, DISCONNECT; a
                stopping worker sends DISCONNECT too.
    State it owns: a queue per pool (job kind), the idle workers per pool, and
    every job it has accepted and not yet answered, with its worker and its
    deadline. Nothing is shared with other threads.

    Rules
    - A worker takes one job at a time. DONE or FAILED for the job it was
      sent makes it idle again; READY only registers it. A heartbeat never means ready. A worker that
      says DISCONNECT is stopping: it gets no new job and is forgotten after
      it reports the one it has.
    - Any message from a worker refreshes its expiry (now + heartbeat_ms *
      liveness). An expired worker is dead: forgotten, and its job queued again.
    - A job running past its deadline (job_timeout_ms) is stalled: it is
      queued again and its worker stays busy, untouched, until it reports.
    - A job lost max_attempts times fails with the reason of the last loss.
    - A handler's FAILED is final (bad input fails the same way twice); only
      lost workers and stalls are retried here. Retries of failures with
      backoff belong to the photo state machine, above the broker.
    - The first DONE or FAILED for a job answers it; the job is then
      forgotten, so a late duplicate (from a stalled worker that woke up) is
      dropped. Each job's RESULT is sent exactly once. Handlers are idempotent
      on job_id because a job may run twice.
    - A malformed message from outside is dropped and logged; so is a
      SUBMIT whose kind or job id does not fit the records kept of it.
    Pipe commands: $TERM; STATS -> "queued running workers completed retried".
    The loop's body is rp_broker_core_* (broker_private.h), so the fuzz
    target (tests/fuzz/broker.c) drives the same code without the thread.
*/
#include "engine/broker.h"
#include "engine/broker_private.h"
#include "engine/alloc.h"
#include "engine/clock.h"
#include "engine/log.h"
#include "engine/msg.h"
#include "engine/runtime.h"

typedef struct _s_worker_t s_worker_t;

typedef struct {
    rp_msg_t *submit;           //  the job as submitted; owned
    zframe_t *client;           //  producer's identity; owned
    char pool [32];             //  = submit->kind
    int attempts;               //  times dispatched so far
    s_worker_t *worker;         //  running on this worker; NULL while queued
    int64_t deadline;           //  running: when it counts as stalled
    int64_t submitted;          //  when it arrived, for logs
    char last_loss [256];       //  why the last attempt was lost
} s_job_t;

struct _s_worker_t {
    char key [64];              //  identity as hex, key of self->workers
    zframe_t *identity;         //  owned
    char name [64];             //  for logs: "resize-1@host:pid"
    char pool [32];
    char job_id [160];          //  the job it is running, "" when idle; may be
                                //  a job already answered elsewhere (stalled)
    int64_t expiry;             //  dead when the clock passes this
    bool leaving;               //  said DISCONNECT: no new jobs, gone after its last
};

typedef struct {
    zlist_t *queue;             //  s_job_t*, oldest first; borrowed from jobs
    zlist_t *idle;              //  s_worker_t*, borrowed from workers
    int64_t done;               //  jobs answered done, failed, and the time the
    int64_t failed;             //  workers spent on them, for STATUS (metrics)
    int64_t duration_ms_sum;
} s_pool_t;

typedef struct _rp_broker_core_t s_broker_t;
struct _rp_broker_core_t {
    zsock_t *pipe;              //  our actor pipe (NULL when driven without one)
    zsock_t *frontend;          //  producers
    zsock_t *backend;           //  workers
    rp_broker_args_t args;      //  our copy of the settings
    zhash_t *jobs;              //  job_id -> s_job_t, owned
    zhash_t *workers;           //  identity hex -> s_worker_t, owned
    zhash_t *pools;             //  pool name -> s_pool_t, owned
    int64_t heartbeat_at;       //  when to send the next heartbeats
    int64_t completed;          //  jobs answered, for STATS
    int64_t retried;            //  jobs sent again after a loss
    bool terminated;
};

static void
s_job_destroy (void *item)
{
    s_job_t *job = (s_job_t *) item;
    rp_msg_destroy (&job->submit);
    zframe_destroy (&job->client);
    free (job);
}

static void
s_worker_destroy (void *item)
{
    s_worker_t *worker = (s_worker_t *) item;
    zframe_destroy (&worker->identity);
    free (worker);
}

static void
s_pool_destroy (void *item)
{
    s_pool_t *pool = (s_pool_t *) item;
    zlist_destroy (&pool->queue);
    zlist_destroy (&pool->idle);
    free (pool);
}

static s_pool_t *
s_pool_require (s_broker_t *self, const char *name)
{
    s_pool_t *pool = (s_pool_t *) zhash_lookup (self->pools, name);
    if (!pool) {
        pool = (s_pool_t *) rp_alloc (sizeof (s_pool_t));
        pool->queue = zlist_new ();
        pool->idle = zlist_new ();
        zhash_insert (self->pools, name, pool);
        zhash_freefn (self->pools, name, s_pool_destroy);
    }
    return pool;
}

static int64_t
s_result_duration (const rp_msg_t *outcome)
{
    return outcome ? outcome->duration_ms : 0;
}

//  Send a job's one RESULT to its producer and forget the job.
static void
s_job_answer (s_broker_t *self, s_job_t *job, const rp_msg_t *outcome, const char *worker)
{
    rp_msg_t *result = rp_msg_new (RP_MSG_RESULT);
    rp_msg_set (&result->job_id, job->submit->job_id);
    rp_msg_set (&result->kind, job->submit->kind);
    rp_msg_set (&result->photo_id, job->submit->photo_id);
    rp_msg_set (&result->worker, worker);
    result->attempt = job->attempts;
    if (outcome && outcome->command == RP_MSG_DONE) {
        rp_msg_set (&result->status, "done");
        rp_msg_set (&result->result, outcome->result);
        result->duration_ms = outcome->duration_ms;
    }
    else {
        rp_msg_set (&result->status, "failed");
        rp_msg_set (&result->error, outcome ? outcome->error : job->last_loss);
        result->duration_ms = outcome ? outcome->duration_ms : 0;
    }
    if (rp_msg_send (result, zsock_resolve (self->frontend), job->client))
        rp_warn ("broker", "job=%s producer is gone, result dropped (%s)",
                 job->submit->job_id, zmq_strerror (zmq_errno ()));
    rp_msg_destroy (&result);

    //  Forget it: out of its queue if it waits there, out of the table
    s_pool_t *pool = s_pool_require (self, job->pool);
    if (outcome && outcome->command == RP_MSG_DONE)
        pool->done++;
    else
        pool->failed++;
    pool->duration_ms_sum += s_result_duration (outcome);
    zlist_remove (pool->queue, job);
    self->completed++;
    zhash_delete (self->jobs, job->submit->job_id);
}

//  A job's attempt was lost (worker died or stalled): queue it again, or
//  fail it when it has had all its attempts.
static void
s_job_lost (s_broker_t *self, s_job_t *job, const char *why)
{
    snprintf (job->last_loss, sizeof job->last_loss, "%s", why);
    job->worker = NULL;
    if (job->attempts >= self->args.max_attempts) {
        char reason [256];
        snprintf (reason, sizeof reason, "job lost on all %d attempts; last: %s", job->attempts, why);
        snprintf (job->last_loss, sizeof job->last_loss, "%s", reason);
        rp_warn ("broker", "job=%s photo=%s failed: %s", job->submit->job_id,
                 job->submit->photo_id ? job->submit->photo_id : "-", reason);
        s_job_answer (self, job, NULL, NULL);
        return;
    }
    rp_warn ("broker", "job=%s attempt=%d lost (%s), queued again", job->submit->job_id,
             job->attempts, why);
    self->retried++;
    //  To the front: it has waited longest
    zlist_push (s_pool_require (self, job->pool)->queue, job);
}

static void
s_worker_delete (s_broker_t *self, s_worker_t *worker, const char *why)
{
    if (*worker->job_id) {
        s_job_t *job = (s_job_t *) zhash_lookup (self->jobs, worker->job_id);
        if (job && job->worker == worker) {
            char loss [160];
            snprintf (loss, sizeof loss, "worker %s %s", worker->name, why);
            s_job_lost (self, job, loss);
        }
    }
    s_pool_t *pool = (s_pool_t *) zhash_lookup (self->pools, worker->pool);
    if (pool)
        zlist_remove (pool->idle, worker);
    zhash_delete (self->workers, worker->key);
}

static void
s_send_command (s_broker_t *self, zframe_t *identity, rp_command_t command)
{
    rp_msg_t *msg = rp_msg_new (command);
    rp_msg_send (msg, zsock_resolve (self->backend), identity);
    rp_msg_destroy (&msg);
}

//  Match queued jobs with idle workers, pool by pool.
static void
s_dispatch (s_broker_t *self)
{
    for (s_pool_t *pool = (s_pool_t *) zhash_first (self->pools); pool;
         pool = (s_pool_t *) zhash_next (self->pools)) {
        while (zlist_size (pool->queue) && zlist_size (pool->idle)) {
            s_job_t *job = (s_job_t *) zlist_pop (pool->queue);
            s_worker_t *worker = (s_worker_t *) zlist_pop (pool->idle);
            job->attempts++;
            job->worker = worker;
            job->deadline = rp_clock_ms () + self->args.job_timeout_ms;
            snprintf (worker->job_id, sizeof worker->job_id, "%s", job->submit->job_id);

            rp_msg_t *msg = rp_msg_dup (job->submit);
            msg->command = RP_MSG_JOB;
            msg->attempt = job->attempts;
            msg->timeout_ms = self->args.job_timeout_ms;
            if (rp_msg_send (msg, zsock_resolve (self->backend), worker->identity)) {
                //  The worker vanished between its last word and now
                rp_msg_destroy (&msg);
                job->attempts--;
                job->worker = NULL;
                zlist_push (pool->queue, job);
                *worker->job_id = 0;
                s_worker_delete (self, worker, "unreachable");
                continue;
            }
            rp_msg_destroy (&msg);
            rp_debug ("broker", "job=%s attempt=%d sent to worker=%s", job->submit->job_id,
                      job->attempts, worker->name);
        }
    }
}

//  STATUS from a producer: queues, workers and timings per pool, as JSON.
static void
s_answer_status (s_broker_t *self, zframe_t *client, const rp_msg_t *request)
{
    json_t *pools = json_object ();
    for (s_pool_t *pool = (s_pool_t *) zhash_first (self->pools); pool;
         pool = (s_pool_t *) zhash_next (self->pools)) {
        json_t *entry = json_object ();
        json_object_set_new (entry, "queued", json_integer ((json_int_t) zlist_size (pool->queue)));
        json_object_set_new (entry, "idle", json_integer ((json_int_t) zlist_size (pool->idle)));
        json_object_set_new (entry, "running", json_integer (0));
        json_object_set_new (entry, "workers", json_integer (0));
        json_object_set_new (entry, "done", json_integer (pool->done));
        json_object_set_new (entry, "failed", json_integer (pool->failed));
        json_object_set_new (entry, "duration_ms_sum", json_integer (pool->duration_ms_sum));
        json_object_set_new (pools, zhash_cursor (self->pools), entry);
    }
    for (s_worker_t *worker = (s_worker_t *) zhash_first (self->workers); worker;
         worker = (s_worker_t *) zhash_next (self->workers)) {
        json_t *entry = json_object_get (pools, worker->pool);
        if (entry)
            json_object_set_new (entry, "workers", json_integer (
                json_integer_value (json_object_get (entry, "workers")) + 1));
    }
    for (s_job_t *job = (s_job_t *) zhash_first (self->jobs); job;
         job = (s_job_t *) zhash_next (self->jobs)) {
        json_t *entry = json_object_get (pools, job->pool);
        if (entry && job->worker)
            json_object_set_new (entry, "running", json_integer (
                json_integer_value (json_object_get (entry, "running")) + 1));
    }
    json_t *status = json_object ();
    json_object_set_new (status, "pools", pools);
    json_object_set_new (status, "completed", json_integer (self->completed));
    json_object_set_new (status, "retried", json_integer (self->retried));
    rp_msg_t *reply = rp_msg_new (RP_MSG_STATUS);
    rp_msg_set (&reply->job_id, request->job_id);
    reply->result = json_dumps (status, JSON_COMPACT);
    json_decref (status);
    if (rp_msg_send (reply, zsock_resolve (self->frontend), client))
        rp_debug ("broker", "status asker is gone");
    rp_msg_destroy (&reply);
}

static void
s_handle_frontend (s_broker_t *self)
{
    zmsg_t *zmsg = zmsg_recv (self->frontend);
    if (!zmsg)
        return;
    zframe_t *client = zmsg_pop (zmsg);
    char err [256];
    rp_msg_t *msg = client ? rp_msg_decode (zmsg, err, sizeof err) : NULL;
    if (!msg) {
        rp_warn ("broker", "dropped malformed message from a producer: %s", client ? err : "no identity");
        zframe_destroy (&client);
        zmsg_destroy (&zmsg);
        return;
    }
    zmsg_destroy (&zmsg);
    if (msg->command == RP_MSG_STATUS) {
        s_answer_status (self, client, msg);
        rp_msg_destroy (&msg);
    }
    else
    if (msg->command == RP_MSG_SUBMIT) {
        if (zhash_lookup (self->jobs, msg->job_id)) {
            //  Submitted twice (a producer retrying): it is already ours
            rp_debug ("broker", "job=%s already accepted, duplicate submit ignored", msg->job_id);
            rp_msg_destroy (&msg);
        }
        else
        if (strlen (msg->kind) >= sizeof ((s_job_t *) 0)->pool) {
            rp_warn ("broker", "job=%s dropped: kind name too long", msg->job_id);
            rp_msg_destroy (&msg);
        }
        else
        if (!*msg->job_id || strlen (msg->job_id) >= sizeof ((s_worker_t *) 0)->job_id) {
            //  Its worker's record of it must name it whole: the worker's
            //  job is found again (and lost with it) by that record
            rp_warn ("broker", "job=%.40s dropped: a job id is 1 to %zu bytes", msg->job_id,
                     sizeof ((s_worker_t *) 0)->job_id - 1);
            rp_msg_destroy (&msg);
        }
        else {
            s_job_t *job = (s_job_t *) rp_alloc (sizeof (s_job_t));
            job->submit = msg;
            job->client = client;
            client = NULL;
            job->submitted = rp_clock_ms ();
            snprintf (job->pool, sizeof job->pool, "%s", msg->kind);
            zhash_insert (self->jobs, msg->job_id, job);
            zhash_freefn (self->jobs, msg->job_id, s_job_destroy);
            zlist_append (s_pool_require (self, job->pool)->queue, job);
        }
    }
    else {
        rp_warn ("broker", "dropped %s on the producer socket", rp_command_name (msg->command));
        rp_msg_destroy (&msg);
    }
    zframe_destroy (&client);
}

static void
s_handle_backend (s_broker_t *self)
{
    zmsg_t *zmsg = zmsg_recv (self->backend);
    if (!zmsg)
        return;
    zframe_t *identity = zmsg_pop (zmsg);
    char err [256];
    rp_msg_t *msg = identity ? rp_msg_decode (zmsg, err, sizeof err) : NULL;
    zmsg_destroy (&zmsg);
    if (!msg) {
        rp_warn ("broker", "dropped malformed message from a worker: %s", identity ? err : "no identity");
        zframe_destroy (&identity);
        return;
    }
    char *key = zframe_strhex (identity);
    s_worker_t *worker = (s_worker_t *) zhash_lookup (self->workers, key);
    if (worker)
        worker->expiry = rp_clock_ms () + self->args.heartbeat_ms * self->args.liveness;

    switch (msg->command) {
        case RP_MSG_READY:
            if (worker)     //  Registering twice means it restarted: forget the old one
                s_worker_delete (self, worker, "registered again");
            if (strlen (msg->pool) >= sizeof worker->pool || strlen (key) >= sizeof worker->key) {
                rp_warn ("broker", "dropped READY with an over-long pool name");
                break;
            }
            worker = (s_worker_t *) rp_alloc (sizeof (s_worker_t));
            snprintf (worker->key, sizeof worker->key, "%s", key);
            worker->identity = zframe_dup (identity);
            snprintf (worker->name, sizeof worker->name, "%s", msg->worker ? msg->worker : key);
            snprintf (worker->pool, sizeof worker->pool, "%s", msg->pool);
            worker->expiry = rp_clock_ms () + self->args.heartbeat_ms * self->args.liveness;
            zhash_insert (self->workers, key, worker);
            zhash_freefn (self->workers, key, s_worker_destroy);
            zlist_append (s_pool_require (self, worker->pool)->idle, worker);
            rp_info ("broker", "worker=%s joined pool %s", worker->name, worker->pool);
            break;

        case RP_MSG_DONE:
        case RP_MSG_FAILED: {
            s_job_t *job = (s_job_t *) zhash_lookup (self->jobs, msg->job_id);
            if (job) {
                if (msg->command == RP_MSG_FAILED)
                    rp_info ("broker", "job=%s failed on worker=%s: %s", msg->job_id,
                             worker ? worker->name : "(unregistered)", msg->error);
                //  The first outcome wins, whichever attempt it came from
                if (job->worker && job->worker != worker)
                    job->worker = NULL;     //  the other attempt's result will be dropped
                s_job_answer (self, job, msg, worker ? worker->name : msg->worker);
            }
            else
                rp_info ("broker", "job=%s late result from worker=%s dropped: already answered",
                         msg->job_id, worker ? worker->name : "(unregistered)");
            //  Only the outcome of its own job makes a worker idle: one for
            //  a job it was not sent leaves it as it was, busy with its own
            //  job or idle already (in its pool's idle list, once)
            if (worker && *worker->job_id && streq (worker->job_id, msg->job_id)) {
                *worker->job_id = 0;
                if (worker->leaving)
                    s_worker_delete (self, worker, "left");
                else
                    zlist_append (s_pool_require (self, worker->pool)->idle, worker);
            }
            //  A result from a worker we had given up for dead still counts;
            //  it registers again with READY once it is idle.
            break;
        }
        case RP_MSG_DISCONNECT:
            //  The worker is stopping: no new jobs; it reports the one it has
            if (worker) {
                rp_info ("broker", "worker=%s leaving%s", worker->name,
                         *worker->job_id ? " after its job in flight" : "");
                worker->leaving = true;
                zlist_remove (s_pool_require (self, worker->pool)->idle, worker);
                if (!*worker->job_id)
                    s_worker_delete (self, worker, "left");
            }
            break;
        case RP_MSG_HEARTBEAT:
            if (!worker)
                s_send_command (self, identity, RP_MSG_DISCONNECT);
            break;

        default:
            rp_warn ("broker", "dropped %s on the worker socket", rp_command_name (msg->command));
    }
    zstr_free (&key);
    zframe_destroy (&identity);
    rp_msg_destroy (&msg);
}

//  Heartbeats out; dead workers and stalled jobs found.
static void
s_housekeeping (s_broker_t *self)
{
    int64_t now = rp_clock_ms ();
    if (now >= self->heartbeat_at) {
        zlist_t *dead = zlist_new ();
        for (s_worker_t *worker = (s_worker_t *) zhash_first (self->workers); worker;
             worker = (s_worker_t *) zhash_next (self->workers)) {
            if (now > worker->expiry)
                zlist_append (dead, worker);
            else
                s_send_command (self, worker->identity, RP_MSG_HEARTBEAT);
        }
        for (s_worker_t *worker = (s_worker_t *) zlist_first (dead); worker;
             worker = (s_worker_t *) zlist_next (dead)) {
            rp_warn ("broker", "worker=%s pool=%s silent for %lld ms, dropped", worker->name,
                     worker->pool, (long long) (self->args.heartbeat_ms * self->args.liveness));
            s_worker_delete (self, worker, "stopped answering heartbeats");
        }
        zlist_destroy (&dead);
        self->heartbeat_at = now + self->args.heartbeat_ms;
    }
    zlist_t *stalled = zlist_new ();
    for (s_job_t *job = (s_job_t *) zhash_first (self->jobs); job;
         job = (s_job_t *) zhash_next (self->jobs))
        if (job->worker && now > job->deadline)
            zlist_append (stalled, job);
    for (s_job_t *job = (s_job_t *) zlist_first (stalled); job;
         job = (s_job_t *) zlist_next (stalled)) {
        char loss [160];
        snprintf (loss, sizeof loss, "worker %s stalled past the %lld ms deadline",
                  job->worker->name, (long long) self->args.job_timeout_ms);
        s_job_lost (self, job, loss);      //  the worker stays busy until it reports
    }
    zlist_destroy (&stalled);
}

static int64_t
s_next_wakeup (s_broker_t *self)
{
    int64_t next = self->heartbeat_at;
    for (s_job_t *job = (s_job_t *) zhash_first (self->jobs); job;
         job = (s_job_t *) zhash_next (self->jobs))
        if (job->worker && job->deadline < next)
            next = job->deadline;
    int64_t wait = next - rp_clock_ms ();
    return wait < 0 ? 0 : wait > self->args.heartbeat_ms ? self->args.heartbeat_ms : wait;
}

static void
s_handle_pipe (s_broker_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "STATS")) {
        int64_t queued = 0, running = 0;
        for (s_job_t *job = (s_job_t *) zhash_first (self->jobs); job;
             job = (s_job_t *) zhash_next (self->jobs))
            job->worker ? running++ : queued++;
        zstr_sendf (self->pipe, "%lld %lld %zu %lld %lld", (long long) queued, (long long) running,
                    zhash_size (self->workers), (long long) self->completed, (long long) self->retried);
    }
    zstr_free (&command);
}

static int
s_bind_all (zsock_t *socket, char endpoints [][RP_STR_MAX])
{
    for (int i = 0; i < RP_BROKER_ENDPOINTS; i++) {
        if (!*endpoints [i])
            continue;
        if (zsock_bind (socket, "%s", endpoints [i]) < 0) {
            rp_error ("broker", "cannot bind %s: %s", endpoints [i], zmq_strerror (zmq_errno ()));
            return -1;
        }
        rp_info ("broker", "listening on %s", endpoints [i]);
    }
    return 0;
}

rp_broker_core_t *
rp_broker_core_new (const rp_broker_args_t *args)
{
    s_broker_t *self = (s_broker_t *) rp_alloc (sizeof (s_broker_t));
    self->args = *args;
    self->frontend = zsock_new (ZMQ_ROUTER);
    self->backend = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (self->frontend, 1);
    zsock_set_router_mandatory (self->backend, 1);
    zsock_set_linger (self->frontend, 1000);
    zsock_set_linger (self->backend, 0);
    if (!self->frontend || !self->backend
    ||  s_bind_all (self->frontend, self->args.frontends)
    ||  s_bind_all (self->backend, self->args.backends)) {
        rp_broker_core_destroy (&self);
        return NULL;
    }
    self->jobs = zhash_new ();
    self->workers = zhash_new ();
    self->pools = zhash_new ();
    self->heartbeat_at = rp_clock_ms () + self->args.heartbeat_ms;
    return self;
}

void
rp_broker_core_destroy (rp_broker_core_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_broker_t *self = *self_p;
    zhash_destroy (&self->pools);
    zhash_destroy (&self->jobs);
    zhash_destroy (&self->workers);
    zsock_destroy (&self->frontend);
    zsock_destroy (&self->backend);
    free (self);
    *self_p = NULL;
}

void
rp_broker_core_turn (rp_broker_core_t *self, void *which)
{
    if (which && which == self->pipe)
        s_handle_pipe (self);
    else
    if (which && which == self->frontend)
        s_handle_frontend (self);
    else
    if (which && which == self->backend)
        s_handle_backend (self);
    s_housekeeping (self);
    s_dispatch (self);
}

zsock_t *
rp_broker_core_socket (rp_broker_core_t *self, bool backend)
{
    return backend ? self->backend : self->frontend;
}

void
rp_broker_actor (zsock_t *pipe, void *args)
{
    s_broker_t *self = rp_broker_core_new ((rp_broker_args_t *) args);     //  our copy, before we signal
    if (!self) {
        ((rp_broker_args_t *) args)->start_failed = 1;
        zsock_signal (pipe, 1);
        return;
    }
    self->pipe = pipe;
    zpoller_t *poller = zpoller_new (pipe, self->frontend, self->backend, NULL);
    zpoller_set_nonstop (poller, true);     //  main owns shutdown, not SIGINT
    zsock_signal (pipe, 0);

    while (!self->terminated)
        rp_broker_core_turn (self, zpoller_wait (poller, (int) s_next_wakeup (self)));
    size_t unanswered = zhash_size (self->jobs);
    if (unanswered)
        rp_warn ("broker", "stopping with %zu jobs unanswered", unanswered);
    zpoller_destroy (&poller);
    rp_broker_core_destroy (&self);
}

zactor_t *
rp_broker_new (rp_broker_args_t *args)
{
    args->start_failed = 0;
    return rp_actor_start_checked (rp_broker_actor, args, &args->start_failed);
}

int
rp_broker_query_status (const char *endpoint, int timeout_ms, json_t **status,
                        char *err, size_t errlen)
{
    zsock_t *asker = zsock_new (ZMQ_DEALER);
    zsock_set_linger (asker, 0);
    if (!asker || zsock_connect (asker, "%s", endpoint)) {
        snprintf (err, errlen, "cannot connect to the broker at %s", endpoint);
        zsock_destroy (&asker);
        return -1;
    }
    char tag [32];
    snprintf (tag, sizeof tag, "status-%08x", (unsigned) randof (0x7fffffff));
    rp_msg_t *request = rp_msg_new (RP_MSG_STATUS);
    rp_msg_set (&request->job_id, tag);
    zsock_set_sndtimeo (asker, timeout_ms);
    rp_msg_send (request, zsock_resolve (asker), NULL);
    rp_msg_destroy (&request);
    zsock_set_rcvtimeo (asker, timeout_ms);
    int rc = -1;
    zmsg_t *zmsg = zmsg_recv (asker);
    char why [256] = "no answer";
    rp_msg_t *reply = zmsg ? rp_msg_decode (zmsg, why, sizeof why) : NULL;
    zmsg_destroy (&zmsg);
    if (reply && reply->command == RP_MSG_STATUS && reply->job_id && streq (reply->job_id, tag)
    &&  reply->result && (*status = json_loads (reply->result, 0, NULL)))
        rc = 0;
    else
        snprintf (err, errlen, "the broker at %s did not answer STATUS within %d ms (%s)",
                  endpoint, timeout_ms, why);
    rp_msg_destroy (&reply);
    zsock_destroy (&asker);
    return rc;
}

int
rp_broker_stats (zactor_t *broker, int64_t *queued, int64_t *running, int64_t *workers,
                 int64_t *completed, int64_t *retried)
{
    if (zstr_send (broker, "STATS"))
        return -1;
    char *answer = zstr_recv (broker);
    if (!answer)
        return -1;
    long long q = 0, r = 0, w = 0, c = 0, t = 0;
    int n = sscanf (answer, "%lld %lld %lld %lld %lld", &q, &r, &w, &c, &t);
    zstr_free (&answer);
    if (n != 5)
        return -1;
    *queued = q; *running = r; *workers = w; *completed = c; *retried = t;
    return 0;
}

void
rp_broker_args_from_config (rp_broker_args_t *args, const rp_config_t *config)
{
    memset (args, 0, sizeof *args);
    args->heartbeat_ms = config->broker_heartbeat_ms;
    args->liveness = config->broker_liveness;
    args->job_timeout_ms = config->broker_job_timeout_ms;
    args->max_attempts = config->broker_max_attempts;
}
