/*  engine/broker.c: the job broker.

    DESIGN
    Thread: one zactor thread. Owns two ROUTER sockets, each with
    ZMQ_ROUTER_MANDATORY (a vanished peer is an error we see, not a silent
    drop), a send timeout of 0 (a peer that stops reading loses what it
    does not read; the broker never waits on it) and rp_link_limits
    (libzmq drops a frame over RP_LINK_FRAME_MAX, with the connection that
    sent it, before buffering it):
      frontend  producers (the pipeline, `rapidphoto process`)
                send  SUBMIT {job_id, kind, src, photo_id, trace}
                get   RESULT {job_id, kind, status done|failed, result|error,
                              attempt, worker, duration_ms, retry}
                and anyone (the gateway's /metrics) may send STATUS and get
                the queues and workers per pool (rp_broker_query_status)
      backend   workers send READY {pool, worker, pid}, then DONE or FAILED per
                job; both sides send HEARTBEAT every heartbeat_ms. The broker
                sends JOB and, to a worker it does not know, DISCONNECT; a
                stopping worker sends DISCONNECT too.
    Security: with a key (curve_secret_key) every tcp/ipc endpoint of both
    sockets requires CURVE, and a zauth actor (czmq's ZAP handler: one per
    process context, so one CURVE broker per process) lets in only the
    public keys of curve_clients; it runs before the sockets bind and
    stops with the broker. inproc peers have no handshake: they are this
    process. Without a key, tcp is taken on loopback only (said once at
    INFO), unless trust_network says the network is trusted (a WARN at
    every start); rp_broker_new refuses anything else before binding.
    State it owns: a queue per pool (job kind), the idle workers per pool, and
    every job it has accepted and not yet answered, with its worker and its
    deadline. Nothing is shared with other threads.

    Rules. Every peer is taken to be hostile: a command is accepted only in
    the state it belongs to; anything else is dropped and logged, and
    changes neither a job nor the idle list.
    - READY registers an identity it does not know, idle, in its pool. READY
      from a registered identity is a protocol error. A pool name is 1..31
      of a-z 0-9 _ -; there are at most RP_BROKER_POOLS_MAX pools and
      RP_BROKER_WORKERS_MAX workers.
    - A worker is on its pool's idle list at most once, takes one job at a
      time, and is idle again after its DONE or FAILED. A heartbeat never
      means ready. A worker that says DISCONNECT is stopping: it gets no
      new job and is forgotten after it reports the one it has.
    - DONE or FAILED is accepted only from the worker that holds that job:
      the one it was sent to, also after a stall sent it again elsewhere.
      From an unknown identity, an idle worker, or a worker holding another
      job, it is dropped.
    - SUBMIT: the kind a pool name, job_id under 160 bytes, src, dest and
      photo_id and trace under 1 KiB, at most queue_max jobs waiting per kind. Past a
      bound it is answered at once: RESULT failed with no worker, naming
      the bound (producers take a RESULT without a worker as lost, and try
      again later).
    - Jobs of a kind that has no worker at all fail after queue_expiry_ms
      ("no resize worker joined within ..."), counted from when the job
      came or the pool's last worker went, whichever is later.
    - Any message from a worker refreshes its expiry (now + heartbeat_ms *
      liveness). An expired worker is dead: forgotten, and its job queued again.
    - A job running past its deadline (job_timeout_ms) is stalled: it is
      queued again and its worker stays busy, untouched, until it reports.
    - A job lost max_attempts times fails with the reason of the last loss.
    - A handler's FAILED is final (bad input fails the same way twice); only
      lost workers and stalls are retried here. Retries of failures with
      backoff belong to the photo state machine, above the broker (a FAILED
      with retry set is passed on as such).
    - The first accepted DONE or FAILED for a job answers it; the job is then
      forgotten, so a late duplicate (from a stalled worker that woke up) is
      dropped. Each job's RESULT is sent exactly once. Handlers are idempotent
      on job_id because a job may run twice.
    - A malformed message from outside is dropped and logged.
    Pipe commands: $TERM; STATS -> "queued running workers completed retried".
    The loop's body is rp_broker_core_* (broker_private.h), so the fuzz
    target (tests/fuzz/broker.c) drives the same code without the thread.
*/
#include "engine/broker.h"
#include "engine/alloc.h"
#include "engine/broker_private.h"
#include "engine/clock.h"
#include "engine/link.h"
#include "engine/log.h"
#include "engine/msg.h"
#include "engine/runtime.h"
#include "engine/thread.h"

#include <stdatomic.h>

#define S_NAME_MAX 32               //  pool names: 1..31 characters
#define S_JOB_ID_MAX 160            //  job ids: under this many bytes
#define S_FIELD_MAX 1024            //  src, dest, photo_id of a SUBMIT

typedef struct _s_worker_t s_worker_t;

typedef struct {
    rp_msg_t *submit;           //  the job as submitted (its fields we use); owned
    zframe_t *client;           //  producer's identity; owned
    char pool [S_NAME_MAX];     //  = submit->kind
    int attempts;               //  times dispatched so far
    s_worker_t *worker;         //  running on this worker; NULL while queued
    int64_t deadline;           //  running: when it counts as stalled
    int64_t submitted;          //  when it arrived: logs, and queue expiry
    char last_loss [256];       //  why the last attempt was lost
} s_job_t;

struct _s_worker_t {
    char key [64];              //  identity as hex, key of self->workers
    zframe_t *identity;         //  owned
    char name [64];             //  for logs: "resize-1@host:pid"
    char pool [S_NAME_MAX];
    char job_id [S_JOB_ID_MAX]; //  the job it holds, "" when it holds none; may
                                //  be a job already answered elsewhere (stalled)
    int64_t expiry;             //  dead when the clock passes this
    bool leaving;               //  said DISCONNECT: no new jobs, gone after its last
    bool idle;                  //  on its pool's idle list (at most once)
};

typedef struct {
    zlist_t *queue;             //  s_job_t*, oldest first; borrowed from jobs
    zlist_t *idle;              //  s_worker_t*, borrowed from workers; each once
    size_t workers;             //  registered workers of this pool, busy or idle
    int64_t workerless_since;   //  when it last had no worker (queue expiry)
    int64_t done;               //  jobs answered done, failed, and the time the
    int64_t failed;             //  workers spent on them, for STATUS (metrics)
    int64_t duration_ms_sum;
} s_pool_t;

typedef struct _rp_broker_core_t s_broker_t;
struct _rp_broker_core_t {
    zsock_t *pipe;              //  our actor pipe (NULL when driven without one)
    zsock_t *frontend;          //  producers
    zsock_t *backend;           //  workers
    zactor_t *auth;             //  zauth, when CURVE is on
    rp_broker_args_t args;      //  our copy of the settings
    zhash_t *jobs;              //  job_id -> s_job_t, owned
    zhash_t *workers;           //  identity hex -> s_worker_t, owned
    zhash_t *pools;             //  pool name -> s_pool_t, owned
    int64_t heartbeat_at;       //  when to send the next heartbeats
    int64_t completed;          //  jobs answered, for STATS
    int64_t retried;            //  jobs sent again after a loss
    bool terminated;
};

//  The process's one ZAP handler is ours while a CURVE broker runs
static atomic_flag s_zauth_taken = ATOMIC_FLAG_INIT;

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

//  1..31 of a-z 0-9 _ -: a name that is safe in logs, metrics labels and
//  JSON keys
static bool
s_pool_name_valid (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len >= S_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((name [i] >= 'a' && name [i] <= 'z') || (name [i] >= '0' && name [i] <= '9')
           || name [i] == '_' || name [i] == '-'))
            return false;
    return true;
}

//  The pool of that name, made when new. NULL with why when the name is
//  not a pool name, or there are RP_BROKER_POOLS_MAX pools already.
static s_pool_t *
s_pool_require (s_broker_t *self, const char *name, char *why, size_t whylen)
{
    if (!s_pool_name_valid (name)) {
        snprintf (why, whylen, "\"%.40s\" is not a pool name (1..31 of a-z, 0-9, _ and -)",
                  name ? name : "");
        return NULL;
    }
    s_pool_t *pool = (s_pool_t *) zhash_lookup (self->pools, name);
    if (!pool) {
        if (zhash_size (self->pools) >= RP_BROKER_POOLS_MAX) {
            snprintf (why, whylen, "\"%s\" would be a job kind too many: the broker serves at most %d",
                      name, RP_BROKER_POOLS_MAX);
            return NULL;
        }
        pool = (s_pool_t *) rp_alloc (sizeof (s_pool_t));
        pool->queue = zlist_new ();
        pool->idle = zlist_new ();
        pool->workerless_since = rp_clock_ms ();
        zhash_insert (self->pools, name, pool);
        zhash_freefn (self->pools, name, s_pool_destroy);
    }
    return pool;
}

//  The pool of a job or worker we hold: it exists (made when they came)
static s_pool_t *
s_pool_of (s_broker_t *self, const char *name)
{
    s_pool_t *pool = (s_pool_t *) zhash_lookup (self->pools, name);
    assert (pool);
    return pool;
}

static void
s_worker_idle (s_broker_t *self, s_worker_t *worker)
{
    if (!worker->idle) {
        zlist_append (s_pool_of (self, worker->pool)->idle, worker);
        worker->idle = true;
    }
}

static void
s_worker_busy (s_broker_t *self, s_worker_t *worker)
{
    if (worker->idle) {
        zlist_remove (s_pool_of (self, worker->pool)->idle, worker);
        worker->idle = false;
    }
}

//  Send a RESULT to a producer. 0, or -1 when it cannot take it now.
static int
s_send_result (s_broker_t *self, zframe_t *client, rp_msg_t *result)
{
    int rc = rp_msg_send (result, zsock_resolve (self->frontend), client);
    if (rc)
        rp_warn ("broker", "job=%s producer is gone or not reading, result dropped (%s)",
                 result->job_id, zmq_strerror (zmq_errno ()));
    return rc;
}

//  A SUBMIT past a bound: answered at once, failed, with no worker (the
//  producer takes it as lost), and never held.
static void
s_refuse (s_broker_t *self, zframe_t *client, const rp_msg_t *submit, const char *reason)
{
    rp_warn ("broker", "job=%.80s kind=%.40s refused: %s", submit->job_id, submit->kind, reason);
    rp_msg_t *result = rp_msg_new (RP_MSG_RESULT);
    rp_msg_set (&result->job_id, submit->job_id);
    rp_msg_set (&result->kind, submit->kind);
    rp_msg_set (&result->photo_id, submit->photo_id);
    rp_msg_set (&result->status, "failed");
    rp_msg_set (&result->error, reason);
    s_send_result (self, client, result);
    rp_msg_destroy (&result);
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
        result->retry = outcome && outcome->retry ? 1 : 0;
    }
    s_send_result (self, job->client, result);
    rp_msg_destroy (&result);

    //  Forget it: out of its queue if it waits there, out of the table
    s_pool_t *pool = s_pool_of (self, job->pool);
    if (outcome && outcome->command == RP_MSG_DONE)
        pool->done++;
    else
        pool->failed++;
    pool->duration_ms_sum += outcome ? outcome->duration_ms : 0;
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
    zlist_push (s_pool_of (self, job->pool)->queue, job);
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
    s_worker_busy (self, worker);
    s_pool_t *pool = s_pool_of (self, worker->pool);
    if (--pool->workers == 0)
        pool->workerless_since = rp_clock_ms ();
    zhash_delete (self->workers, worker->key);
}

static void
s_send_command (s_broker_t *self, zframe_t *identity, rp_command_t command)
{
    rp_msg_t *msg = rp_msg_new (command);
    if (rp_msg_send (msg, zsock_resolve (self->backend), identity))
        rp_debug ("broker", "%s not sent: %s", rp_command_name (command), zmq_strerror (zmq_errno ()));
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
            worker->idle = false;
            job->attempts++;
            job->worker = worker;
            job->deadline = rp_clock_ms () + self->args.job_timeout_ms;
            snprintf (worker->job_id, sizeof worker->job_id, "%s", job->submit->job_id);

            rp_msg_t *msg = rp_msg_dup (job->submit);
            msg->command = RP_MSG_JOB;
            msg->attempt = job->attempts;
            msg->timeout_ms = self->args.job_timeout_ms;
            if (rp_msg_send (msg, zsock_resolve (self->backend), worker->identity)) {
                //  The worker vanished between its last word and now, or
                //  stopped reading
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
        json_object_set_new (entry, "workers", json_integer ((json_int_t) pool->workers));
        json_object_set_new (entry, "done", json_integer (pool->done));
        json_object_set_new (entry, "failed", json_integer (pool->failed));
        json_object_set_new (entry, "duration_ms_sum", json_integer (pool->duration_ms_sum));
        json_object_set_new (pools, zhash_cursor (self->pools), entry);
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

static bool
s_field_too_long (const char *value)
{
    return value && strlen (value) >= S_FIELD_MAX;
}

//  SUBMIT: held as a job, or refused at once when past a bound.
static void
s_handle_submit (s_broker_t *self, zframe_t *client, rp_msg_t *msg)
{
    char reason [256];
    s_pool_t *pool = NULL;
    //  A worker's record of its job must name it whole, and "" means it
    //  runs none: its job is found again (and lost with it) by that record
    if (!*msg->job_id) {
        snprintf (reason, sizeof reason, "job_id is empty");
        s_refuse (self, client, msg, reason);
    }
    else
    if (strlen (msg->job_id) >= S_JOB_ID_MAX) {
        snprintf (reason, sizeof reason, "job_id is longer than %d bytes", S_JOB_ID_MAX - 1);
        s_refuse (self, client, msg, reason);
    }
    else
    if (zhash_lookup (self->jobs, msg->job_id))
        //  Submitted twice (a producer retrying): it is already ours
        rp_debug ("broker", "job=%s already accepted, duplicate submit ignored", msg->job_id);
    else
    if (s_field_too_long (msg->src) || s_field_too_long (msg->dest) || s_field_too_long (msg->photo_id)
    ||  s_field_too_long (msg->trace)) {
        snprintf (reason, sizeof reason, "src, dest, photo_id and trace must be under %d bytes", S_FIELD_MAX);
        s_refuse (self, client, msg, reason);
    }
    else
    if (!(pool = s_pool_require (self, msg->kind, reason, sizeof reason)))
        s_refuse (self, client, msg, reason);
    else
    if ((int64_t) zlist_size (pool->queue) >= self->args.queue_max) {
        snprintf (reason, sizeof reason, "the %s queue is full: %lld jobs wait (broker.queue_max)",
                  msg->kind, (long long) self->args.queue_max);
        s_refuse (self, client, msg, reason);
    }
    else {
        //  Only what a job needs is kept, whatever else the message carried
        s_job_t *job = (s_job_t *) rp_alloc (sizeof (s_job_t));
        job->submit = rp_msg_new (RP_MSG_SUBMIT);
        rp_msg_set (&job->submit->job_id, msg->job_id);
        rp_msg_set (&job->submit->kind, msg->kind);
        rp_msg_set (&job->submit->src, msg->src);
        rp_msg_set (&job->submit->dest, msg->dest);
        rp_msg_set (&job->submit->photo_id, msg->photo_id);
        rp_msg_set (&job->submit->trace, msg->trace);
        job->client = zframe_dup (client);
        job->submitted = rp_clock_ms ();
        snprintf (job->pool, sizeof job->pool, "%s", msg->kind);
        zhash_insert (self->jobs, job->submit->job_id, job);
        zhash_freefn (self->jobs, job->submit->job_id, s_job_destroy);
        zlist_append (pool->queue, job);
    }
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
    zmsg_destroy (&zmsg);
    if (!msg)
        rp_warn ("broker", "dropped malformed message from a producer: %s", client ? err : "no identity");
    else
    if (msg->command == RP_MSG_STATUS)
        s_answer_status (self, client, msg);
    else
    if (msg->command == RP_MSG_SUBMIT)
        s_handle_submit (self, client, msg);
    else
        rp_warn ("broker", "dropped %s on the producer socket", rp_command_name (msg->command));
    rp_msg_destroy (&msg);
    zframe_destroy (&client);
}

//  READY from an identity we do not know: registered, idle.
static void
s_handle_ready (s_broker_t *self, zframe_t *identity, const char *key, const rp_msg_t *msg)
{
    char why [256];
    s_pool_t *pool = NULL;
    if (strlen (key) >= sizeof ((s_worker_t *) 0)->key)
        snprintf (why, sizeof why, "its identity is longer than 31 bytes");
    else
    if (zhash_size (self->workers) >= RP_BROKER_WORKERS_MAX)
        snprintf (why, sizeof why, "the broker has %d workers already", RP_BROKER_WORKERS_MAX);
    else
        pool = s_pool_require (self, msg->pool, why, sizeof why);
    if (!pool) {
        rp_warn ("broker", "dropped READY: %s", why);
        return;
    }
    s_worker_t *worker = (s_worker_t *) rp_alloc (sizeof (s_worker_t));
    snprintf (worker->key, sizeof worker->key, "%s", key);
    worker->identity = zframe_dup (identity);
    snprintf (worker->name, sizeof worker->name, "%s", msg->worker ? msg->worker : key);
    snprintf (worker->pool, sizeof worker->pool, "%s", msg->pool);
    worker->expiry = rp_clock_ms () + self->args.heartbeat_ms * self->args.liveness;
    zhash_insert (self->workers, key, worker);
    zhash_freefn (self->workers, key, s_worker_destroy);
    pool->workers++;
    s_worker_idle (self, worker);
    rp_info ("broker", "worker=%s joined pool %s", worker->name, worker->pool);
}

//  DONE or FAILED: taken only from the worker that holds the job.
static void
s_handle_outcome (s_broker_t *self, s_worker_t *worker, const char *key, const rp_msg_t *msg)
{
    if (!worker) {
        rp_warn ("broker", "dropped %s for job=%.80s from an unregistered peer %s",
                 rp_command_name (msg->command), msg->job_id, key);
        return;
    }
    if (!*worker->job_id || strcmp (worker->job_id, msg->job_id) != 0) {
        rp_warn ("broker", "dropped %s for job=%.80s from worker=%s, which holds %s",
                 rp_command_name (msg->command), msg->job_id, worker->name,
                 *worker->job_id ? worker->job_id : "no job");
        return;
    }
    s_job_t *job = (s_job_t *) zhash_lookup (self->jobs, msg->job_id);
    if (job) {
        if (msg->command == RP_MSG_FAILED)
            rp_info ("broker", "job=%s failed on worker=%s: %s", msg->job_id, worker->name, msg->error);
        //  The first outcome wins, whichever attempt it came from; the
        //  other attempt's worker still holds the job id, and its late
        //  result will find the job gone
        s_job_answer (self, job, msg, worker->name);
    }
    else
        rp_info ("broker", "job=%s late result from worker=%s dropped: already answered",
                 msg->job_id, worker->name);
    *worker->job_id = 0;
    if (worker->leaving)
        s_worker_delete (self, worker, "left");
    else
        s_worker_idle (self, worker);
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
            if (worker)
                //  A worker that reconnects does so with a new socket, so
                //  a new identity: this one is confused or hostile
                rp_warn ("broker", "dropped READY from worker=%s: it is registered already",
                         worker->name);
            else
                s_handle_ready (self, identity, key, msg);
            break;
        case RP_MSG_DONE:
        case RP_MSG_FAILED:
            s_handle_outcome (self, worker, key, msg);
            break;
        case RP_MSG_DISCONNECT:
            //  The worker is stopping: no new jobs; it reports the one it has
            if (worker) {
                rp_info ("broker", "worker=%s leaving%s", worker->name,
                         *worker->job_id ? " after its job in flight" : "");
                worker->leaving = true;
                s_worker_busy (self, worker);
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

//  Jobs of a kind with no worker at all, waiting longer than queue_expiry_ms:
//  failed, naming the kind, with no worker (the producer may try later).
static void
s_expire_workerless (s_broker_t *self, int64_t now)
{
    zlist_t *expired = zlist_new ();
    for (s_pool_t *pool = (s_pool_t *) zhash_first (self->pools); pool;
         pool = (s_pool_t *) zhash_next (self->pools)) {
        if (pool->workers)
            continue;
        for (s_job_t *job = (s_job_t *) zlist_first (pool->queue); job;
             job = (s_job_t *) zlist_next (pool->queue)) {
            int64_t since = job->submitted > pool->workerless_since ? job->submitted : pool->workerless_since;
            if (now - since > self->args.queue_expiry_ms)
                zlist_append (expired, job);
        }
    }
    for (s_job_t *job = (s_job_t *) zlist_first (expired); job; job = (s_job_t *) zlist_next (expired)) {
        snprintf (job->last_loss, sizeof job->last_loss, "no %s worker joined within %lld ms",
                  job->pool, (long long) self->args.queue_expiry_ms);
        rp_warn ("broker", "job=%s failed: %s", job->submit->job_id, job->last_loss);
        s_job_answer (self, job, NULL, NULL);
    }
    zlist_destroy (&expired);
}

//  Heartbeats out; dead workers, stalled jobs and jobs no one serves found.
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
        s_expire_workerless (self, now);
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

static bool
s_curve (const rp_broker_args_t *args)
{
    return *args->curve_secret_key != 0;
}

//  May the broker listen where args say? Each tcp endpoint beyond loopback
//  needs CURVE, or the network declared trusted. 0, or -1 with the one
//  line that names the endpoint and the settings.
static int
s_check_endpoints (const rp_broker_args_t *args, char *err, size_t errlen)
{
    if (s_curve (args)) {
        char public_key [RP_CURVE_KEY_LEN + 1];
        if (!rp_curve_available () || rp_curve_public (args->curve_secret_key, public_key)) {
            snprintf (err, errlen, "broker.curve_secret_key: %s", rp_curve_available ()
                      ? "not a Z85 secret key" : "this libzmq was built without CURVE");
            return -1;
        }
        return 0;
    }
    for (int side = 0; side < 2; side++)
        for (int i = 0; i < RP_BROKER_ENDPOINTS; i++) {
            const char *endpoint = side ? args->backends [i] : args->frontends [i];
            if (*endpoint && !rp_link_is_loopback (endpoint) && !args->trust_network) {
                snprintf (err, errlen, "refusing to listen on %s without CURVE: anyone who reaches "
                          "it could submit jobs or take them. Set broker.curve_secret_key and "
                          "broker.curve_clients (`rapidphoto keygen` makes keys), or listen on "
                          "127.0.0.1, or set broker.trust_network = yes", endpoint);
                return -1;
            }
        }
    return 0;
}

//  Say once how the endpoints are protected
static void
s_log_security (const rp_broker_args_t *args)
{
    char open [3 * RP_STR_MAX] = "", local [3 * RP_STR_MAX] = "";
    for (int side = 0; side < 2; side++)
        for (int i = 0; i < RP_BROKER_ENDPOINTS; i++) {
            const char *endpoint = side ? args->backends [i] : args->frontends [i];
            if (!*endpoint || !rp_link_has_handshake (endpoint))
                continue;
            char *list = rp_link_is_loopback (endpoint) ? local : open;
            size_t used = strlen (list);
            snprintf (list + used, sizeof open - used, "%s%s", used ? " " : "", endpoint);
        }
    if (s_curve (args)) {
        size_t keys = 1;
        for (const char *c = args->curve_clients; *c; c++)
            keys += *c == ',';
        if (*open || *local)
            rp_info ("broker", "CURVE required on %s%s%s: %zu client keys allowed", open,
                     *open && *local ? " " : "", local, keys);
        return;
    }
    if (*open)
        rp_warn ("broker", "%s open to the network WITHOUT CURVE (broker.trust_network = yes): "
                 "anyone who reaches it can submit jobs, read their results, or pose as a worker",
                 open);
    if (*local)
        rp_info ("broker", "%s take peers without keys: loopback only, this machine's processes "
                 "(set broker.curve_secret_key to require keys)", local);
}

//  zauth with the allowed client keys, before anything binds. 0, or -1
//  with err.
static int
s_auth_start (s_broker_t *self, char *err, size_t errlen)
{
    bool needed = false;
    for (int i = 0; i < RP_BROKER_ENDPOINTS; i++)
        needed |= rp_link_has_handshake (self->args.frontends [i])
               || rp_link_has_handshake (self->args.backends [i]);
    if (!s_curve (&self->args) || !needed)
        return 0;
    if (atomic_flag_test_and_set (&s_zauth_taken)) {
        snprintf (err, errlen, "another broker with CURVE runs in this process (ZAP is one per process)");
        return -1;
    }
    zcertstore_t *allowed = zcertstore_new (NULL);
    char list [RP_CURVE_CLIENTS_MAX];
    snprintf (list, sizeof list, "%s", self->args.curve_clients);
    for (char *key = list, *next; key && *key; key = next) {
        next = strchr (key, ',');
        if (next)
            *next++ = 0;
        byte public_key [32], no_secret [32] = { 0 };
        if (!zmq_z85_decode (public_key, key))
            continue;               //  checked when the setting was read
        zcert_t *cert = zcert_new_from (public_key, no_secret);
        zcertstore_insert (allowed, &cert);
    }
    self->auth = zactor_new (zauth, allowed);      //  takes the store
    return 0;
}

static void
s_auth_stop (s_broker_t *self)
{
    if (self->auth) {
        zactor_destroy (&self->auth);
        atomic_flag_clear (&s_zauth_taken);
    }
}

//  A ROUTER of ours, not bound yet
static zsock_t *
s_router (s_broker_t *self)
{
    zsock_t *socket = zsock_new (ZMQ_ROUTER);
    rp_link_limits (socket);
    zsock_set_router_mandatory (socket, 1);
    zsock_set_sndtimeo (socket, 0);
    if (s_curve (&self->args)) {
        char public_key [RP_CURVE_KEY_LEN + 1];
        rp_curve_public (self->args.curve_secret_key, public_key);     //  checked before
        zsock_set_curve_server (socket, 1);
        zsock_set_curve_publickey (socket, public_key);
        zsock_set_curve_secretkey (socket, self->args.curve_secret_key);
    }
    return socket;
}

static int
s_bind_all (zsock_t *socket, char endpoints [][RP_STR_MAX], char *err, size_t errlen)
{
    for (int i = 0; i < RP_BROKER_ENDPOINTS; i++) {
        if (!*endpoints [i])
            continue;
        if (zsock_bind (socket, "%s", endpoints [i]) < 0) {
            snprintf (err, errlen, "cannot bind %s: %s", endpoints [i], zmq_strerror (zmq_errno ()));
            return -1;
        }
        rp_info ("broker", "listening on %s", endpoints [i]);
    }
    return 0;
}

rp_broker_core_t *
rp_broker_core_new (const rp_broker_args_t *args, char *err, size_t errlen)
{
    s_broker_t *self = (s_broker_t *) rp_alloc (sizeof (s_broker_t));
    self->args = *args;
    if (s_auth_start (self, err, errlen) == 0) {
        self->frontend = s_router (self);
        self->backend = s_router (self);
        zsock_set_linger (self->frontend, 1000);
        zsock_set_linger (self->backend, 0);
    }
    if (!self->frontend || !self->backend
    ||  s_bind_all (self->frontend, self->args.frontends, err, errlen)
    ||  s_bind_all (self->backend, self->args.backends, err, errlen)) {
        rp_broker_core_destroy (&self);
        return NULL;
    }
    s_log_security (&self->args);
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
    zhash_destroy (&self->jobs);
    zhash_destroy (&self->workers);
    zhash_destroy (&self->pools);
    zsock_destroy (&self->frontend);
    zsock_destroy (&self->backend);
    s_auth_stop (self);
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

static void
s_broker_run (zsock_t *pipe, void *args)
{
    rp_broker_args_t *caller = (rp_broker_args_t *) args;
    char err [RP_STR_MAX] = "";
    s_broker_t *self = rp_broker_core_new (caller, err, sizeof err);    //  our copy, before we signal
    if (!self) {
        snprintf (caller->start_error, sizeof caller->start_error, "%s", err);
        caller->start_failed = 1;
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

//  The actor: its loop, then what its thread kept is freed (engine/thread.h)
void
rp_broker_actor (zsock_t *pipe, void *args)
{
    s_broker_run (pipe, args);
    rp_thread_end ();
}

zactor_t *
rp_broker_new (rp_broker_args_t *args, char *err, size_t errlen)
{
    if (s_check_endpoints (args, err, errlen))
        return NULL;
    args->start_failed = 0;
    *args->start_error = 0;
    zactor_t *actor = rp_actor_start_checked (rp_broker_actor, args, &args->start_failed);
    if (!actor)
        snprintf (err, errlen, "%s", *args->start_error ? args->start_error : "the broker did not start");
    return actor;
}

int
rp_broker_query_status (const char *endpoint, const rp_config_t *config, int timeout_ms,
                        json_t **status, char *err, size_t errlen)
{
    char why [256] = "no answer";
    zsock_t *asker = rp_link_connect (ZMQ_DEALER, endpoint, config, 0, why, sizeof why);
    if (!asker) {
        snprintf (err, errlen, "cannot ask the broker at %s: %s", endpoint, why);
        return -1;
    }
    zsock_set_linger (asker, 0);
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
    args->queue_max = config->broker_queue_max;
    args->queue_expiry_ms = config->broker_queue_expiry_ms ? config->broker_queue_expiry_ms
                                                           : config->broker_job_timeout_ms;
    snprintf (args->curve_secret_key, sizeof args->curve_secret_key, "%s", config->broker_curve_secret_key);
    snprintf (args->curve_clients, sizeof args->curve_clients, "%s", config->broker_curve_clients);
    args->trust_network = config->broker_trust_network != 0;
}
