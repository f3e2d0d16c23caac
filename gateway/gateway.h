/*  gateway/gateway.h: the HTTP gateway and REST API, as an actor.

    Serves the contract's /api/v1 (schemas/openapi.yaml) and /healthz,
    /readyz, /metrics on http.listen. Started last by `rapidphoto serve`
    (after the pipeline, which it wakes when uploads commit) and alone by
    `rapidphoto gateway` (photos are then processed by whichever engine
    runs a pipeline against the same database).
*/
#ifndef RP_GATEWAY_H
#define RP_GATEWAY_H

#include <czmq.h>
#include "engine/config.h"

typedef struct {
    rp_config_t config;
    bool in_process_engine;         //  broker and pipeline run in this process
    int start_failed;               //  set by the actor when it cannot start
} rp_gateway_args_t;

//  zactor_new (rp_gateway_actor, &args). Pipe commands: $TERM; PORT (answers
//  the listening port). When it cannot listen or open its stores it sets
//  args->start_failed, signals and ends (rp_actor_start_checked).
void rp_gateway_actor (zsock_t *pipe, void *args);

//  Start the actor; NULL (reason logged) when it cannot start. args is
//  written to (start_failed) until it returns.
zactor_t *rp_gateway_new (rp_gateway_args_t *args);

#endif
