/*  app/roles.h: start the actors of one engine process in order: the
    broker, the worker pools, and (when photos are to be processed from the
    library) the pipeline. Used by serve, pipeline, import and process: the one place
    that knows which layers make up an engine. */
#ifndef RP_ROLES_H
#define RP_ROLES_H

#include "engine/config.h"
#include "engine/runtime.h"

typedef struct {
    bool listen_tcp;            //  also bind broker.frontend / broker.backend
    bool pools;                 //  start resize and exif workers in-process
    bool pipeline;              //  start the pipeline actor (needs the database)
} rp_roles_opts_t;

//  Start what opts asks for into runtime. *pipeline (may be NULL) receives
//  a borrowed pointer to the pipeline actor, for WAKE. 0, or -1 with err.
int rp_roles_start (rp_runtime_t *runtime, const rp_config_t *config,
                    const rp_roles_opts_t *opts, zactor_t **pipeline,
                    char *err, size_t errlen);

//  With metrics.emf on, start the EMF actor (engine/emf.h) into runtime:
//  service names the role in its documents; broker (may be NULL) is the
//  frontend it asks for the pools' gauges. Nothing when metrics.emf is off.
//  0, or -1 with err.
int rp_roles_start_emf (rp_runtime_t *runtime, const rp_config_t *config, const char *service,
                        const char *broker, char *err, size_t errlen);

#endif
