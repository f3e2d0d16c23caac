/*  engine/broker_private.h: the broker's loop without its thread.

    For the broker's fuzz target (tests/fuzz/broker.c) and nothing else:
    everything else starts the actor (broker.h), which runs these same
    functions around its poller. Driven from one thread, a sequence of
    messages is handled in exactly the order given, so the broker's state
    machine can be replayed message by message.
*/
#ifndef RP_BROKER_PRIVATE_H
#define RP_BROKER_PRIVATE_H

#include "engine/broker.h"

typedef struct _rp_broker_core_t rp_broker_core_t;

//  The broker's state with its ROUTER sockets bound to args' endpoints
//  (args is copied), CURVE on them when args has keys. NULL with err when
//  an endpoint cannot be bound or the keys cannot be used.
rp_broker_core_t *rp_broker_core_new (const rp_broker_args_t *args, char *err, size_t errlen);
//  Close the sockets and forget every job and worker. Safe on NULL.
void rp_broker_core_destroy (rp_broker_core_t **self_p);

//  One turn of the actor's loop: handle one message waiting on `which`
//  (the core's frontend or backend, as rp_broker_core_socket gives them;
//  NULL when the poller woke with none), then look for dead workers and
//  stalled jobs (rp_clock_ms is the time) and hand queued jobs to idle
//  workers.
void rp_broker_core_turn (rp_broker_core_t *self, void *which);

//  The core's frontend (producers) or backend (workers) socket.
zsock_t *rp_broker_core_socket (rp_broker_core_t *self, bool backend);

#endif
