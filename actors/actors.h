/*  actors/actors.h: the job kinds this build serves, and their pools.

    A kind is a pool name and a handler (engine/worker.h's rp_job_kind_t):
    resize (actors/resize, libvips) and exif (actors/exif, libexif). Every
    handler is a plain function: no state between calls, safe on many
    threads, idempotent on the job id (a job may run twice: outputs are
    written under a temporary name and renamed). The worker actor
    (engine/worker.c) runs them; it is handed the kind by
    rp_actors_start_pool and knows nothing else of it.

    Adding a kind: a handler in actors/<kind>/, a row in actors.c's
    s_kinds, a pool size in the config (pools.<kind>), and its pool in
    app/roles.c (the in-process pools) and app/cmd_engine.c (`rapidphoto
    worker`'s default thread count).
*/
#ifndef RP_ACTORS_H
#define RP_ACTORS_H

#include <stddef.h>
#include "engine/config.h"
#include "engine/runtime.h"
#include "engine/worker.h"

//  The kind serving `pool`, or NULL when this build has none.
const rp_job_kind_t *rp_actors_kind (const char *pool);

//  The pools this build can serve, comma-separated, for messages.
const char *rp_actors_pools (void);

//  Start `threads` workers of `pool` joined to the broker at `endpoint`.
//  -1 with err naming the pools this build serves when it has no such kind.
int rp_actors_start_pool (rp_runtime_t *runtime, const char *pool, int threads,
                          const char *endpoint, const rp_config_t *config,
                          char *err, size_t errlen);

#endif
