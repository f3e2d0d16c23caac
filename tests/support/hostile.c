/*  tests/support/hostile.c: see hostile.h. */
#include "tests/support/hostile.h"
#include "engine/msg.h"

//  What rp_link_limits lets through (engine/link.h): the oversized frame
//  goes 2 MiB past it
#define S_FRAME_LIMIT (RP_MSG_BODY_MAX + 64 * 1024)

static void
s_say (zsock_t *peer, rp_msg_t **msg_p, int pause_ms)
{
    rp_msg_send (*msg_p, zsock_resolve (peer), NULL);
    rp_msg_destroy (msg_p);
    zclock_sleep (pause_ms);
}

static rp_msg_t *
s_outcome (rp_command_t command, const char *job_id)
{
    rp_msg_t *msg = rp_msg_new (command);
    rp_msg_set (&msg->job_id, job_id);
    rp_msg_set (&msg->worker, "hostile");
    if (command == RP_MSG_DONE)
        rp_msg_set (&msg->result, "{\"content_type\":\"text/html\",\"width\":1,\"height\":1,"
                                  "\"sha256\":\"forged\",\"derivatives\":{}}");
    else
        rp_msg_set (&msg->error, "forged failure from a peer that holds no job");
    return msg;
}

zsock_t *
rp_test_hostile_peer_paced (const char *backend, const char *victim_job, int pause_ms)
{
    zsock_t *peer = zsock_new (ZMQ_DEALER);
    zsock_set_sndhwm (peer, 0);
    zsock_set_linger (peer, 0);
    if (zsock_connect (peer, "%s", backend))
        return peer;
    rp_msg_t *msg = rp_msg_new (RP_MSG_READY);
    rp_msg_set (&msg->pool, "resize");
    rp_msg_set (&msg->worker, "hostile");
    s_say (peer, &msg, pause_ms);
    //  An outcome for a job it never had: must not make it idle twice
    msg = s_outcome (RP_MSG_DONE, "no-such-job");
    s_say (peer, &msg, pause_ms);
    if (victim_job) {
        msg = s_outcome (RP_MSG_FAILED, victim_job);
        s_say (peer, &msg, pause_ms);
        msg = s_outcome (RP_MSG_DONE, victim_job);
        s_say (peer, &msg, pause_ms);
    }
    //  Registered already: READY again is a protocol error
    msg = rp_msg_new (RP_MSG_READY);
    rp_msg_set (&msg->pool, "resize");
    rp_msg_set (&msg->worker, "hostile-again");
    s_say (peer, &msg, pause_ms);
    msg = s_outcome (RP_MSG_DONE, "no-such-job-either");
    s_say (peer, &msg, pause_ms);

    //  Garbage of every kind
    zstr_sendx (peer, "HELLO", NULL);
    zstr_sendx (peer, "RP1", "DONE", "\xc1\xc1", NULL);
    zstr_sendx (peer, "RP1", "READY", NULL);
    zstr_sendx (peer, "RP1", "FROB", "\x80", NULL);
    msg = rp_msg_new (RP_MSG_SUBMIT);           //  the producer's command, on the worker socket
    rp_msg_set (&msg->job_id, "sideways");
    rp_msg_set (&msg->kind, "resize");
    rp_msg_set (&msg->src, "/etc/passwd");
    s_say (peer, &msg, 0);
    msg = rp_msg_new (RP_MSG_JOB);              //  the broker's command
    rp_msg_set (&msg->job_id, "backwards");
    rp_msg_set (&msg->kind, "resize");
    rp_msg_set (&msg->src, "/etc/passwd");
    s_say (peer, &msg, 0);
    msg = rp_msg_new (RP_MSG_READY);
    rp_msg_set (&msg->pool, "../../etc");
    s_say (peer, &msg, 0);
    zmsg_t *many = zmsg_new ();
    for (int i = 0; i < 200; i++)
        zmsg_addstr (many, i == 0 ? "RP1" : "HEARTBEAT");
    zmsg_send (&many, peer);
    zclock_sleep (pause_ms);

    //  A frame the broker must not buffer: 2 MiB past the limit
    zframe_t *huge = zframe_new (NULL, S_FRAME_LIMIT + 2 * 1024 * 1024);
    memset (zframe_data (huge), 'A', zframe_size (huge));
    zmsg_t *oversized = zmsg_new ();
    zmsg_addstr (oversized, "RP1");
    zmsg_addstr (oversized, "DONE");
    zmsg_append (oversized, &huge);
    zmsg_send (&oversized, peer);
    zclock_sleep (pause_ms);
    return peer;
}

zsock_t *
rp_test_hostile_peer (const char *backend, const char *victim_job)
{
    return rp_test_hostile_peer_paced (backend, victim_job, 50);
}
