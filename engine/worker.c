/*  engine/worker.c: a worker actor.

    DESIGN
    Threads: two. The worker actor's thread owns the DEALER connected to the
    broker's backend and speaks the protocol; a runner actor (its child) owns
    the job handler's resources (libvips' per-thread state) and runs one job
    at a time. Keeping them apart lets heartbeats flow while a long decode
    runs, so the broker can tell a dead worker (silent) from a slow job
    (heartbeating past its deadline).
    Messages: to the broker READY {pool, worker, pid} when idle and not
    registered; DONE {job_id, attempt, result, duration_ms} or FAILED
    {job_id, attempt, error, duration_ms, retry: when the handler's
    failure is passing} per job; HEARTBEAT every heartbeat_ms while
    registered. From the broker: JOB, HEARTBEAT,
    DISCONNECT (the broker forgot us: reconnect with a new identity). On
    $TERM we send DISCONNECT (no new jobs, please), keep heartbeating while
    the job in flight finishes (bounded by drain_ms), report it and stop.
    Between worker and runner: the JOB message in, DONE/FAILED out, over the
    runner's pipe, encoded as on the wire.
    Liveness: no word from the broker for heartbeat_ms * liveness means the
    broker is gone or restarted; we reconnect (a new socket, a new identity)
    and register again once idle. A result finished while disconnected is
    still sent: the broker takes it if the job is still open.
    The DEALER is made by rp_link_connect: frames over RP_LINK_FRAME_MAX
    are refused, over tcp it speaks CURVE with the config's client keys,
    and its sends never block (a broker that refused our keys leaves no
    peer to queue for: what we send is then dropped, and we keep
    reconnecting).
    Priority: the runner runs at niceness config.pools_nice (Linux's nice
    is per thread, and the threads libvips starts from it inherit it), a
    lower priority than the HTTP and pipeline threads' niceness 0. With every core busy decoding, a thread
    receiving an upload, hashing it and committing its row is then run
    first whenever it is ready, so acknowledgements never queue behind
    processing; on idle cores the niceness costs nothing.
    Owns: the DEALER, the runner actor. Shares nothing.
*/
#include "engine/worker.h"
#include "engine/clock.h"
#include "engine/fault.h"
#include "engine/link.h"
#include "engine/log.h"
#include "engine/msg.h"
#include "engine/status.h"
#include "engine/thread.h"
#include "engine/trace.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct {
    rp_job_handler_fn *handler;
    rp_thread_exit_fn *thread_exit;
    const rp_config_t *config;      //  borrowed from the worker, outlives the runner
    const char *name;
} s_runner_args_t;

//  The runner actor: takes JOB messages on its pipe, answers DONE/FAILED.
static void
s_runner_run (zsock_t *pipe, void *arg)
{
    s_runner_args_t args = *(s_runner_args_t *) arg;
    //  Below the threads that acknowledge uploads (see Priority above)
    if (args.config->pools_nice > 0
    &&  setpriority (PRIO_PROCESS, (id_t) gettid (), args.config->pools_nice))
        rp_warn ("worker", "%s: cannot lower the job thread's priority to nice %d: %s",
                 args.name, args.config->pools_nice, strerror (errno));
    zsock_signal (pipe, 0);
    while (true) {
        zmsg_t *zmsg = zmsg_recv (pipe);
        if (!zmsg)
            break;
        zframe_t *first = zmsg_first (zmsg);
        if (zframe_streq (first, "$TERM")) {
            zmsg_destroy (&zmsg);
            break;
        }
        char err [1024] = "";
        rp_msg_t *job = rp_msg_decode (zmsg, err, sizeof err);
        zmsg_destroy (&zmsg);
        assert (job && job->command == RP_MSG_JOB);     //  from our own worker thread

        int64_t delay = rp_fault_value ("JOB_DELAY_MS");
        if (delay)
            zclock_sleep ((int) delay);
        if (rp_fault_once ("STALL_ONCE_MS"))
            zclock_sleep ((int) rp_fault_value ("STALL_ONCE_MS"));

        //  The job's trace (its SUBMIT's): on its log lines, and its
        //  subsegment, under the producer's segment, when sampled
        rp_trace_t trace = { .sampled = false };
        char span [RP_TRACE_SPAN_MAX] = "";
        double started_s = 0;
        if (job->trace && rp_trace_parse (job->trace, &trace) == 0) {
            rp_trace_new_span (span);
            rp_trace_enter (&trace, span);
            started_s = rp_trace_now ();
        }
        int64_t started = rp_clock_ms ();
        char *result = NULL;
        int rc = args.handler (args.config, job, &result, err, sizeof err);
        rp_msg_t *reply = rp_msg_new (rc == 0 ? RP_MSG_DONE : RP_MSG_FAILED);
        rp_msg_set (&reply->job_id, job->job_id);
        rp_msg_set (&reply->worker, args.name);
        reply->attempt = job->attempt;
        reply->duration_ms = rp_clock_ms () - started;
        if (rc == 0)
            reply->result = result;         //  handed over
        else {
            free (result);
            rp_msg_set (&reply->error, *err ? err : "the job failed without a reason");
            reply->retry = rc == RP_UNAVAILABLE;
        }
        rp_info (job->kind, "job=%s photo=%s attempt=%lld duration=%lld %s%s",
                 job->job_id, job->photo_id ? job->photo_id : "-", (long long) job->attempt,
                 (long long) reply->duration_ms, rc == 0 ? "done" : "failed: ",
                 rc == 0 ? "" : reply->error);
        if (*span && trace.sampled && rp_trace_sending ()) {
            json_t *document = rp_trace_segment (&trace, span, job->kind, started_s, rp_trace_now ());
            json_object_set_new (document, "type", json_string ("subsegment"));
            json_object_set_new (document, "annotations", json_pack ("{s:s, s:s, s:I}", "job", job->job_id,
                                 "photo", job->photo_id ? job->photo_id : "-", "attempt", (json_int_t) job->attempt));
            if (rc)
                json_object_set_new (document, rc == RP_UNAVAILABLE ? "fault" : "error", json_true ());
            rp_trace_send (&trace, &document);
        }
        rp_trace_leave ();
        zmsg_t *out = rp_msg_encode (reply);
        zmsg_send (&out, pipe);
        rp_msg_destroy (&reply);
        rp_msg_destroy (&job);
    }
    //  The handler's libraries may keep per-thread state (libvips does)
    if (args.thread_exit)
        args.thread_exit ();
}

//  The actor: its loop, then what its thread kept is freed (engine/thread.h)
static void
s_runner_actor (zsock_t *pipe, void *arg)
{
    s_runner_run (pipe, arg);
    rp_thread_end ();
}

typedef struct {
    zsock_t *pipe;
    zsock_t *dealer;                //  to the broker; replaced on reconnect
    zactor_t *runner;
    rp_worker_args_t args;          //  our copy
    bool registered;                //  READY sent on the current socket
    bool busy;                      //  the runner has a job
    int64_t heartbeat_at;           //  next heartbeat to send
    int64_t broker_expiry;          //  broker dead if silent past this
    zpoller_t *poller;
} s_worker_t;

static void
s_send (s_worker_t *self, rp_command_t command)
{
    rp_msg_t *msg = rp_msg_new (command);
    if (command == RP_MSG_READY) {
        rp_msg_set (&msg->pool, self->args.pool);
        rp_msg_set (&msg->worker, self->args.name);
        msg->pid = getpid ();
    }
    rp_msg_send (msg, zsock_resolve (self->dealer), NULL);
    rp_msg_destroy (&msg);
}

static void
s_connect (s_worker_t *self)
{
    if (self->dealer) {
        zpoller_remove (self->poller, self->dealer);
        zsock_destroy (&self->dealer);
    }
    char err [256];
    self->dealer = rp_link_connect (ZMQ_DEALER, self->args.endpoint, &self->args.config,
                                    RP_LINK_UNQUEUED, err, sizeof err);
    if (!self->dealer) {
        //  Keys the config took, or an endpoint it took: not ours to fix.
        //  A socket that goes nowhere keeps the loop simple; we try again
        //  when the broker has been silent for long enough
        rp_error ("worker", "worker=%s %s", self->args.name, err);
        self->dealer = zsock_new (ZMQ_DEALER);
    }
    zsock_set_linger (self->dealer, 2000);      //  let a last result leave on shutdown
    zpoller_add (self->poller, self->dealer);
    self->registered = false;
    int64_t now = rp_clock_ms ();
    self->broker_expiry = now + self->args.config.broker_heartbeat_ms * self->args.config.broker_liveness;
    self->heartbeat_at = now + self->args.config.broker_heartbeat_ms;
    if (!self->busy) {
        s_send (self, RP_MSG_READY);
        self->registered = true;
    }
}

static void
s_handle_broker (s_worker_t *self)
{
    zmsg_t *zmsg = zmsg_recv (self->dealer);
    if (!zmsg)
        return;
    char err [256];
    rp_msg_t *msg = rp_msg_decode (zmsg, err, sizeof err);
    if (!msg) {
        rp_warn ("worker", "worker=%s dropped a malformed message from the broker: %s",
                 self->args.name, err);
        zmsg_destroy (&zmsg);
        return;
    }
    self->broker_expiry = rp_clock_ms ()
                        + self->args.config.broker_heartbeat_ms * self->args.config.broker_liveness;
    switch (msg->command) {
        case RP_MSG_JOB:
            if (self->busy)
                //  The broker hands out one job at a time; never here
                rp_error ("worker", "worker=%s got job=%s while busy, dropped", self->args.name, msg->job_id);
            else {
                zmsg_send (&zmsg, self->runner);
                self->busy = true;
            }
            break;
        case RP_MSG_DISCONNECT:
            rp_info ("worker", "worker=%s: broker asks us to register again", self->args.name);
            s_connect (self);
            break;
        case RP_MSG_HEARTBEAT:
            break;
        default:
            rp_warn ("worker", "worker=%s dropped %s from the broker", self->args.name,
                     rp_command_name (msg->command));
    }
    zmsg_destroy (&zmsg);
    rp_msg_destroy (&msg);
}

//  The runner finished a job: pass its DONE/FAILED on.
static void
s_handle_runner (s_worker_t *self, bool stopping)
{
    zmsg_t *zmsg = zmsg_recv (self->runner);
    if (!zmsg)
        return;
    if (zmsg_send (&zmsg, self->dealer)) {
        //  No broker to queue it for (it refused our keys): the broker, if
        //  any, sends the job again once it misses us
        rp_warn ("worker", "worker=%s cannot send its result to %s: %s", self->args.name,
                 self->args.endpoint, zmq_strerror (zmq_errno ()));
        zmsg_destroy (&zmsg);
    }
    self->busy = false;
    if (!self->registered && !stopping) {
        s_send (self, RP_MSG_READY);
        self->registered = true;
    }
}

static void
s_worker_run (zsock_t *pipe, void *arg)
{
    s_worker_t self;
    memset (&self, 0, sizeof self);
    self.pipe = pipe;
    self.args = *(rp_worker_args_t *) arg;
    s_runner_args_t runner_args = { self.args.handler, self.args.thread_exit, &self.args.config,
                                    self.args.name };
    assert (runner_args.handler);       //  the caller passes its kind's handler
    self.runner = zactor_new (s_runner_actor, &runner_args);
    self.poller = zpoller_new (pipe, self.runner, NULL);
    zpoller_set_nonstop (self.poller, true);
    s_connect (&self);
    zsock_signal (pipe, 0);

    //  Stopping: tell the broker we take no new work, keep heartbeating
    //  while the job in flight finishes (at most drain_ms), report it, go.
    bool stopping = false;
    int64_t drain_deadline = 0;
    while (!stopping || (self.busy && rp_clock_ms () < drain_deadline)) {
        int64_t now = rp_clock_ms ();
        int64_t wait = self.heartbeat_at - now;
        if (stopping && drain_deadline - now < wait)
            wait = drain_deadline - now;
        void *which = zpoller_wait (self.poller, wait < 0 ? 0 : (int) wait);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            if ((!command || streq (command, "$TERM")) && !stopping) {
                stopping = true;
                drain_deadline = rp_clock_ms () + self.args.config.broker_drain_ms;
                if (self.registered)
                    s_send (&self, RP_MSG_DISCONNECT);
                if (self.busy)
                    rp_info ("worker", "worker=%s draining its job in flight", self.args.name);
            }
            zstr_free (&command);
        }
        else
        if (which == self.runner)
            s_handle_runner (&self, stopping);
        else
        if (which && which == self.dealer)
            s_handle_broker (&self);

        now = rp_clock_ms ();
        if (now >= self.heartbeat_at) {
            if (self.registered)
                s_send (&self, RP_MSG_HEARTBEAT);
            self.heartbeat_at = now + self.args.config.broker_heartbeat_ms;
        }
        if (now > self.broker_expiry && !stopping) {
            rp_warn ("worker", "worker=%s: broker silent, reconnecting to %s", self.args.name,
                     self.args.endpoint);
            s_connect (&self);
        }
    }
    if (self.busy)
        rp_warn ("worker", "worker=%s: job still running after %lld ms; its result is lost "
                 "and the broker will send it again", self.args.name,
                 (long long) self.args.config.broker_drain_ms);
    zpoller_destroy (&self.poller);
    zactor_destroy (&self.runner);      //  waits for the runner's job to end
    zsock_destroy (&self.dealer);
}

//  The actor: its loop, then what its thread kept is freed (engine/thread.h)
void
rp_worker_actor (zsock_t *pipe, void *arg)
{
    s_worker_run (pipe, arg);
    rp_thread_end ();
}
