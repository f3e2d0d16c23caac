/*  tests/fuzz/broker.c: the broker's state machine (engine/broker.c),
    driven by sequences of messages from several producers and workers.

    The broker runs without its thread (engine/broker_private.h): its two
    ROUTER sockets are bound on inproc endpoints of their own for each
    input, three workers ("w0".."w2") and two producers ("c0", "c1") are
    DEALER sockets connected to them, and after each message the harness
    gives the broker exactly one turn of its loop (handle that message,
    look for dead workers and stalled jobs, dispatch). Time is ours too:
    this file defines rp_clock_ms, so the engine's clock.c is not linked,
    and time moves only when the input says so. One input therefore always
    replays the same way.

    The input is a list of steps, each a byte choosing what happens:
      raw frames from a producer or a worker (a length byte, then frames
      split at 0xC1, as in tests/fuzz/msg.c), a SUBMIT or a STATUS from a
      producer, a READY, DONE, FAILED, HEARTBEAT or DISCONNECT from a
      worker (job ids, kinds and pools from small sets, so that they meet),
      or time passing (heartbeats, dead workers, stalled jobs, retries).
    What the workers and producers receive is read after every turn and
    held against the broker's promises (broker.c's DESIGN):
      - each accepted job gets exactly one RESULT, sent to its producer;
      - a worker is sent a JOB only when it is idle (it said READY, DONE or
        FAILED after its last JOB): one job at a time;
      - no attempt is numbered past broker.max_attempts.
*/
#include "engine/broker_private.h"
#include "engine/clock.h"
#include "engine/log.h"
#include "engine/msg.h"
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <sched.h>
#include <sys/resource.h>

#define S_WORKERS 3
#define S_CLIENTS 2
#define S_JOBS 6
#define S_JOB_ID_MAX 300
#define S_STEPS_MAX 400
#define S_MAX_ATTEMPTS 2

//  ---------------------------------------------------------------------------
//  The clock the broker reads: ours (see above)

static int64_t s_now = 0;

int64_t
rp_clock_ms (void)
{
    return s_now;
}

double
rp_clock_ms_precise (void)
{
    return (double) s_now;
}

int64_t
rp_clock_wall_ms (void)
{
    return 1700000000000LL + s_now;
}

//  ---------------------------------------------------------------------------

static const char *const s_kinds [] = {
    "resize", "exif", "", "a-job-kind-far-too-long-for-a-pool-name"
};

typedef struct {
    zsock_t *socket;
    char name [64];             //  its identity
    bool busy;                  //  got a JOB and has not reported since
} s_peer_t;

typedef struct {
    bool open;                  //  accepted and not yet answered
    int client;                 //  who submitted it
} s_job_model_t;

typedef struct {
    rp_broker_core_t *core;
    s_peer_t workers [S_WORKERS];
    s_peer_t clients [S_CLIENTS];
    s_job_model_t jobs [S_JOBS];
} s_run_t;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    //  Each input makes seven sockets and closes them; libzmq's reaper
    //  thread finishes closing them later, and counts them against its
    //  limit (1024 by default) until it has. On a busy machine it falls
    //  behind by more than that, so the limit is what the process may
    //  open (as many files as it may), and each input ends with a yield
    zsys_handler_set (NULL);    //  libFuzzer owns the signals
    struct rlimit files;
    if (getrlimit (RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit (RLIMIT_NOFILE, &files);
    }
    zsys_set_max_sockets (0);
    zsys_init ();
    zsys_set_linger (0);
    rp_log_set_level (RP_LOG_ERROR);
    return 0;
}

//  Job ids: four plain ones, an empty one, one longer than any of the
//  broker's records of it
static void
s_job_id (int j, char *out, size_t outlen)
{
    if (j == S_JOBS - 2)
        snprintf (out, outlen, "%s", "");
    else
    if (j == S_JOBS - 1)
        snprintf (out, outlen, "job-%0250d", j);
    else
        snprintf (out, outlen, "job-%d", j);
}

static int
s_job_index (const char *job_id)
{
    for (int j = 0; j < S_JOBS; j++) {
        char id [S_JOB_ID_MAX];
        s_job_id (j, id, sizeof id);
        if (job_id && strcmp (job_id, id) == 0)
            return j;
    }
    return -1;
}

//  Wait until the broker's socket has the message just sent (inproc: at
//  once), then give the broker its turn. libFuzzer's timer (SIGALRM, for
//  -timeout) may interrupt the wait: it goes on.
static void
s_turn_on (s_run_t *run, bool backend)
{
    zsock_t *socket = rp_broker_core_socket (run->core, backend);
    zmq_pollitem_t item = { zsock_resolve (socket), 0, ZMQ_POLLIN, 0 };
    int ready;
    while ((ready = zmq_poll (&item, 1, 1000)) < 0 && zmq_errno () == EINTR)
        ;
    RP_FUZZ_CHECK (ready == 1, "a message sent on inproc did not arrive (%s)",
                   ready < 0 ? zmq_strerror (zmq_errno ()) : "none in 1 s");
    rp_broker_core_turn (run->core, socket);
}

//  Read what the broker sent to one peer and check it.
static void
s_drain (s_run_t *run, s_peer_t *peer, int client)
{
    zmsg_t *zmsg;
    while ((zmsg = zmsg_recv_nowait (peer->socket))) {
        char err [256];
        rp_msg_t *msg = rp_msg_decode (zmsg, err, sizeof err);
        zmsg_destroy (&zmsg);
        RP_FUZZ_CHECK (msg, "the broker sent %s a malformed message: %s", peer->name, err);
        if (client >= 0) {
            RP_FUZZ_CHECK (msg->command == RP_MSG_RESULT || msg->command == RP_MSG_STATUS,
                           "a producer got %s", rp_command_name (msg->command));
            if (msg->command == RP_MSG_RESULT) {
                int j = s_job_index (msg->job_id);
                RP_FUZZ_CHECK (j >= 0, "a RESULT for a job never submitted: %s", msg->job_id);
                RP_FUZZ_CHECK (run->jobs [j].open, "a second RESULT for %s", msg->job_id);
                RP_FUZZ_CHECK (run->jobs [j].client == client, "the RESULT for %s went to c%d, not c%d",
                               msg->job_id, client, run->jobs [j].client);
                RP_FUZZ_CHECK (strcmp (msg->status, "done") == 0 || strcmp (msg->status, "failed") == 0,
                               "RESULT status %s", msg->status);
                RP_FUZZ_CHECK (msg->attempt <= S_MAX_ATTEMPTS, "RESULT after attempt %lld",
                               (long long) msg->attempt);
                run->jobs [j].open = false;
            }
        }
        else {
            RP_FUZZ_CHECK (msg->command == RP_MSG_JOB || msg->command == RP_MSG_HEARTBEAT
                           || msg->command == RP_MSG_DISCONNECT, "a worker got %s", rp_command_name (msg->command));
            if (msg->command == RP_MSG_JOB) {
                RP_FUZZ_CHECK (!peer->busy, "%s was sent %s while it runs another job", peer->name, msg->job_id);
                RP_FUZZ_CHECK (msg->attempt >= 1 && msg->attempt <= S_MAX_ATTEMPTS, "JOB attempt %lld",
                               (long long) msg->attempt);
                peer->busy = true;
            }
        }
        rp_msg_destroy (&msg);
    }
}

static void
s_drain_all (s_run_t *run)
{
    for (int w = 0; w < S_WORKERS; w++)
        s_drain (run, &run->workers [w], -1);
    for (int c = 0; c < S_CLIENTS; c++)
        s_drain (run, &run->clients [c], c);
}

static void
s_send (s_run_t *run, s_peer_t *peer, rp_msg_t **msg_p, bool backend)
{
    RP_FUZZ_CHECK (rp_msg_send (*msg_p, zsock_resolve (peer->socket), NULL) == 0, "cannot send on inproc");
    rp_msg_destroy (msg_p);
    s_turn_on (run, backend);
}

//  Raw frames: a length byte, then that many bytes split at 0xC1.
static void
s_send_raw (s_run_t *run, s_peer_t *peer, rp_fuzz_in_t *in, bool backend)
{
    size_t want = rp_fuzz_byte (in);
    rp_fuzz_in_t raw = rp_fuzz_in (in->data, want < in->size ? want : in->size);
    in->data += raw.size;
    in->size -= raw.size;
    zmsg_t *zmsg = rp_fuzz_frames (&raw);
    RP_FUZZ_CHECK (zmsg_send (&zmsg, peer->socket) == 0, "cannot send on inproc");
    s_turn_on (run, backend);
}

static void
s_step (s_run_t *run, rp_fuzz_in_t *in)
{
    uint8_t op = rp_fuzz_byte (in);
    uint8_t arg = rp_fuzz_byte (in);
    s_peer_t *worker = &run->workers [arg % S_WORKERS];
    s_peer_t *client = &run->clients [arg % S_CLIENTS];
    int j = (arg >> 2) % S_JOBS;
    char job_id [S_JOB_ID_MAX];
    s_job_id (j, job_id, sizeof job_id);
    rp_msg_t *msg = NULL;
    switch (op % 10) {
        case 0:
            s_send_raw (run, client, in, false);
            break;
        case 1:
            s_send_raw (run, worker, in, true);
            break;
        case 2: {
            const char *kind = s_kinds [(arg >> 5) % 4];
            msg = rp_msg_new (RP_MSG_SUBMIT);
            rp_msg_set (&msg->job_id, job_id);
            rp_msg_set (&msg->kind, kind);
            rp_msg_set (&msg->src, "/src");
            if (arg & 0x80)
                rp_msg_set (&msg->photo_id, "photo");
            //  Every SUBMIT but a repeat of a job still open gets exactly one
            //  RESULT: at once when it is past a bound (a kind that is no
            //  pool name, an empty or over-long id, a full queue), else
            //  when it is done, fails, is lost or expires (schemas/messages.md)
            if (!run->jobs [j].open) {
                run->jobs [j].open = true;
                run->jobs [j].client = (int) (client - run->clients);
            }
            s_send (run, client, &msg, false);
            break;
        }
        case 3:
            msg = rp_msg_new (RP_MSG_STATUS);
            rp_msg_set (&msg->job_id, "status-1");
            s_send (run, client, &msg, false);
            break;
        case 4:
            msg = rp_msg_new (RP_MSG_READY);
            rp_msg_set (&msg->pool, s_kinds [(arg >> 5) % 4]);
            if (arg & 0x10)
                rp_msg_set (&msg->worker, worker->name);
            msg->pid = 42;
            worker->busy = false;
            s_send (run, worker, &msg, true);
            break;
        case 5:
        case 6:
            msg = rp_msg_new (op % 10 == 5 ? RP_MSG_DONE : RP_MSG_FAILED);
            rp_msg_set (&msg->job_id, job_id);
            if (msg->command == RP_MSG_DONE)
                rp_msg_set (&msg->result, "{}");
            else
                rp_msg_set (&msg->error, "bad input");
            msg->duration_ms = arg;
            worker->busy = false;
            s_send (run, worker, &msg, true);
            break;
        case 7:
            msg = rp_msg_new (RP_MSG_HEARTBEAT);
            s_send (run, worker, &msg, true);
            break;
        case 8:
            msg = rp_msg_new (RP_MSG_DISCONNECT);
            s_send (run, worker, &msg, true);
            break;
        default:
            //  Time passes: heartbeats go out, silent workers die, jobs stall
            s_now += (int64_t) arg * 50;
            rp_broker_core_turn (run->core, NULL);
    }
    s_drain_all (run);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static unsigned runs = 0;
    runs++;
    s_now = 1000000;
    rp_broker_args_t args;
    memset (&args, 0, sizeof args);
    snprintf (args.frontends [0], RP_STR_MAX, "inproc://fuzz-frontend-%u", runs);
    snprintf (args.backends [0], RP_STR_MAX, "inproc://fuzz-backend-%u", runs);
    args.heartbeat_ms = 1000;
    args.liveness = 3;
    args.job_timeout_ms = 5000;
    args.max_attempts = S_MAX_ATTEMPTS;
    //  Small enough that the fuzzer reaches both bounds
    args.queue_max = 4;
    args.queue_expiry_ms = 8000;

    s_run_t run;
    memset (&run, 0, sizeof run);
    char err [RP_STR_MAX] = "";
    run.core = rp_broker_core_new (&args, err, sizeof err);
    RP_FUZZ_CHECK (run.core, "the broker cannot start on %s: %s", args.frontends [0], err);
    for (int w = 0; w < S_WORKERS; w++) {
        s_peer_t *peer = &run.workers [w];
        //  The last one's identity is too long for the broker's records
        snprintf (peer->name, sizeof peer->name, w == S_WORKERS - 1 ? "w%d-with-an-identity-of-forty-bytes----" : "w%d", w);
        peer->socket = zsock_new (ZMQ_DEALER);
        zsock_set_identity (peer->socket, peer->name);
        zsock_set_linger (peer->socket, 0);
        RP_FUZZ_CHECK (zsock_connect (peer->socket, "%s", args.backends [0]) == 0, "cannot connect");
    }
    for (int c = 0; c < S_CLIENTS; c++) {
        s_peer_t *peer = &run.clients [c];
        snprintf (peer->name, sizeof peer->name, "c%d", c);
        peer->socket = zsock_new (ZMQ_DEALER);
        zsock_set_identity (peer->socket, peer->name);
        zsock_set_linger (peer->socket, 0);
        RP_FUZZ_CHECK (zsock_connect (peer->socket, "%s", args.frontends [0]) == 0, "cannot connect");
    }

    rp_fuzz_in_t in = rp_fuzz_in (data, size);
    for (int steps = 0; in.size && steps < S_STEPS_MAX; steps++)
        s_step (&run, &in);

    for (int w = 0; w < S_WORKERS; w++)
        zsock_destroy (&run.workers [w].socket);
    for (int c = 0; c < S_CLIENTS; c++)
        zsock_destroy (&run.clients [c].socket);
    rp_broker_core_destroy (&run.core);
    sched_yield ();             //  to the reaper (see LLVMFuzzerInitialize)
    return 0;
}
