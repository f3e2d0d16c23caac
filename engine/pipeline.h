/*  engine/pipeline.h: the actor that moves photos through their states.

    It claims queued photos from the database, sends each one's resize and
    EXIF jobs to the broker, and commits the outcome. Start one per engine
    process that should process photos (serve, import).
*/
#ifndef RP_PIPELINE_H
#define RP_PIPELINE_H

#include <czmq.h>
#include "config.h"

//  Where producers in this process (the HTTP gateway) PUSH "WAKE" after
//  committing photos; the pipeline binds a PULL here. Same as WAKE on the pipe.
#define RP_PIPELINE_WAKE "inproc://rapidphoto-pipeline-wake"

typedef struct {
    char frontend [RP_STR_MAX];     //  the broker's producer endpoint
    rp_config_t config;
    int start_failed;               //  set by the actor when it cannot start
} rp_pipeline_args_t;

//  zactor_new (rp_pipeline_actor, &args). Pipe commands: $TERM; WAKE (new
//  photos are queued: claim now, not at the next tick). Signals -1 when the
//  database cannot be opened (see rp_pipeline_new).
void rp_pipeline_actor (zsock_t *pipe, void *args);

//  Start the actor; NULL (reason logged) when it cannot open its database.
zactor_t *rp_pipeline_new (rp_pipeline_args_t *args);

#endif
