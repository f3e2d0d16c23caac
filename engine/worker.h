/*  engine/worker.h: a worker actor of one pool, joined to a broker.

    The same code serves in-process pools (endpoint inproc://...) and the
    `rapidphoto worker` command (endpoint tcp://HOST:PORT).
*/
#ifndef RP_WORKER_H
#define RP_WORKER_H

#include <czmq.h>
#include "config.h"

typedef struct {
    char pool [32];                 //  job kind this worker serves
    char endpoint [RP_STR_MAX];     //  broker backend to connect to
    char name [64];                 //  for logs, e.g. "resize-2@host:pid"
    rp_config_t config;             //  settings the handler needs
} rp_worker_args_t;

//  The actor: zactor_new (rp_worker_actor, &args). args is copied before
//  the actor signals. On $TERM it finishes the job in flight (for at most
//  config.broker_drain_ms), sends its result, and stops.
void rp_worker_actor (zsock_t *pipe, void *args);

#endif
