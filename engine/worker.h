/*  engine/worker.h: a worker actor of one pool, joined to a broker.

    The same code serves in-process pools (endpoint inproc://...) and the
    `rapidphoto worker` command (endpoint tcp://HOST:PORT). It knows no job
    kind: whoever starts it passes the kind's handler in (actors/actors.h
    keeps the registry).
*/
#ifndef RP_WORKER_H
#define RP_WORKER_H

#include <czmq.h>
#include "engine/config.h"
#include "engine/msg.h"

//  Do `job`. On success return 0 and set *result to JSON text (caller
//  frees). On failure return -1 with a reason a person can read in err,
//  or RP_UNAVAILABLE when the failure is passing (S3 away: the FAILED
//  says retry, and the producer may try again later).
//  Handlers keep no state between calls, are safe on many threads, and are
//  idempotent on the job id (every job may run twice).
typedef int (rp_job_handler_fn) (const rp_config_t *config, const rp_msg_t *job,
                                 char **result, char *err, size_t errlen);
//  Called on a handler's thread as it ends: per-thread state the handler's
//  libraries keep (libvips' vips_thread_shutdown). May be NULL.
typedef void (rp_thread_exit_fn) (void);

//  A job kind: the pool's name and what its workers run.
typedef struct {
    const char *pool;
    rp_job_handler_fn *handler;
    rp_thread_exit_fn *thread_exit;
} rp_job_kind_t;

typedef struct {
    char pool [32];                 //  job kind this worker serves
    rp_job_handler_fn *handler;     //  what a job of that kind runs
    rp_thread_exit_fn *thread_exit; //  may be NULL
    char endpoint [RP_STR_MAX];     //  broker backend to connect to
    char name [64];                 //  for logs, e.g. "resize-2@host:pid"
    rp_config_t config;             //  settings the handler needs
} rp_worker_args_t;

//  The actor: zactor_new (rp_worker_actor, &args). args is copied before
//  the actor signals. On $TERM it finishes the job in flight (for at most
//  config.broker_drain_ms), sends its result, and stops.
void rp_worker_actor (zsock_t *pipe, void *args);

#endif
