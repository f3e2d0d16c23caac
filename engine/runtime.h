/*  engine/runtime.h: start actors in order, stop them in reverse.

    main() owns shutdown: it starts what a command needs through a runtime,
    waits for SIGINT or SIGTERM (the signal thread sets zsys_interrupted), then
    destroys the runtime, which stops the actors newest first. A worker asked
    to stop finishes its job in flight (bounded by broker.drain_ms) and
    reports it before the broker behind it goes away.
*/
#ifndef RP_RUNTIME_H
#define RP_RUNTIME_H

#include <czmq.h>
#include "engine/config.h"
#include "engine/worker.h"

typedef struct _rp_runtime_t rp_runtime_t;

rp_runtime_t *rp_runtime_new (void);
//  Stop every actor, newest first, then free the runtime.
void rp_runtime_destroy (rp_runtime_t **self_p);

//  Start an actor that may fail to start. czmq's zactor_new drops the
//  status an actor signals, so such an actor sets *start_failed (a field of
//  the args it was given, still the caller's memory until it signals)
//  before it signals and returns. Returns the actor, or NULL when it failed.
zactor_t *rp_actor_start_checked (zactor_fn *fn, void *args, const int *start_failed);

//  Take ownership of a started actor; `name` is for logs.
void rp_runtime_adopt (rp_runtime_t *self, const char *name, zactor_t **actor_p);

//  Start `threads` worker actors of `kind` connected to `endpoint`.
void rp_runtime_start_pool (rp_runtime_t *self, const rp_job_kind_t *kind, int threads,
                            const char *endpoint, const rp_config_t *config);

//  How many actors run.
size_t rp_runtime_size (rp_runtime_t *self);

//  Block until SIGINT or SIGTERM arrives.
void rp_runtime_wait_for_signal (void);

//  Take SIGINT and SIGTERM on one thread of their own: called first in
//  main, before any thread exists (and before zsys_init, which keeps the
//  handler set here). The signals are blocked in this thread, so in every
//  thread made after it, but for one that only waits for them: the
//  kernel delivers them there, and the handler sets zsys_interrupted (in
//  a signal handler, as czmq's own does), which the commands' loops and
//  rp_runtime_wait_for_signal read. No call in any thread is ever cut
//  short by them: a signal that fell on zactor_new's handshake made it
//  return before the actor had copied its arguments, which the caller then
//  freed. A second signal ends the process at once (exit status 128+sig),
//  for an operator whose drain takes too long.
void rp_runtime_take_signals (void);

//  Whether SIGINT or SIGTERM came (zsys_interrupted, read atomically: our
//  code reads it through this, never directly).
bool rp_interrupted (void);

#endif
