/*  actors/actors.h: the job kinds the engine knows, and their handlers.

    A handler does one job of its kind. Every handler is a plain function:
    no state between calls, safe on many threads, idempotent on the job id
    (a job may run twice: outputs are written under a temporary name and
    renamed). The worker actor (engine/worker.c) runs them.
*/
#ifndef RP_ACTORS_H
#define RP_ACTORS_H

#include <stddef.h>
#include "config.h"
#include "msg.h"

//  Do `job`. On success return 0 and set *result to JSON text (caller
//  frees). On failure return -1 with a reason a person can read in err.
typedef int (rp_job_handler_fn) (const rp_config_t *config, const rp_msg_t *job,
                                 char **result, char *err, size_t errlen);

//  The handler for a pool (job kind), or NULL when the kind is unknown.
rp_job_handler_fn *rp_actors_handler (const char *pool);

//  The pools this build can serve, comma-separated, for messages.
const char *rp_actors_pools (void);

#endif
