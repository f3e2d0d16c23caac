/*  library/pipeline.h: the actor that moves photos through their states.

    It claims queued photos from the database, sends each one's resize and
    EXIF jobs to the broker, and commits the outcome. Start one per engine
    process that should process photos (serve, import).
*/
#ifndef RP_PIPELINE_H
#define RP_PIPELINE_H

#include <czmq.h>
#include "engine/config.h"

//  Where producers in this process (the HTTP gateway, the SQS ingest bridge)
//  PUSH "WAKE" after committing photos; the pipeline binds a PULL here.
//  Same as WAKE on the pipe.
#define RP_PIPELINE_WAKE "inproc://rapidphoto-pipeline-wake"

typedef struct {
    char frontend [RP_STR_MAX];     //  the broker's producer endpoint
    rp_config_t config;
    int start_failed;               //  set by the actor when it cannot start
} rp_pipeline_args_t;

//  zactor_new (rp_pipeline_actor, &args). Pipe commands: $TERM; WAKE (new
//  photos are queued: claim now, not at the next tick); PAUSE (give back
//  every unfinished claim and claim nothing more; answers with a signal,
//  0 when nothing is left processing here); RESUME. Signals -1 when the
//  database cannot be opened (see rp_pipeline_new).
void rp_pipeline_actor (zsock_t *pipe, void *args);

//  Start the actor; NULL (reason logged) when it cannot open its database.
zactor_t *rp_pipeline_new (rp_pipeline_args_t *args);

//  Where the time goes, summed over every photo the pipelines of this
//  process committed as complete: each worker-reported stage ("<stage>_ms"
//  in a result's "timings": read, hash, exif, decode, one per derivative),
//  "jobs" (from submitting the jobs to the last answer: queueing included)
//  and "database" (the commit). For /metrics and bench/.
typedef struct {
    char stage [32];
    double seconds;                 //  summed
    uint64_t count;                 //  photos that reported the stage
} rp_stage_total_t;

//  Copy up to max totals into totals; returns how many. Thread-safe.
int rp_pipeline_stage_totals (rp_stage_total_t *totals, int max);

#endif
