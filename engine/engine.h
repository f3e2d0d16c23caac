/*  engine/engine.h: start the actors of one engine process in order:
    the broker, the worker pools, and (when photos are to be processed from
    the library) the pipeline. Used by serve, import and process. */
#ifndef RP_ENGINE_H
#define RP_ENGINE_H

#include "config.h"
#include "runtime.h"

#define RP_INPROC_FRONTEND "inproc://rapidphoto-frontend"
#define RP_INPROC_BACKEND  "inproc://rapidphoto-backend"

typedef struct {
    bool listen_tcp;            //  also bind broker.frontend / broker.backend
    bool pools;                 //  start resize and exif workers in-process
    bool pipeline;              //  start the pipeline actor (needs the database)
} rp_engine_opts_t;

//  Start what opts asks for into runtime. *pipeline (may be NULL) receives
//  a borrowed pointer to the pipeline actor, for WAKE. 0, or -1 with err.
int rp_engine_start (rp_runtime_t *runtime, const rp_config_t *config,
                     const rp_engine_opts_t *opts, zactor_t **pipeline,
                     char *err, size_t errlen);

#endif
