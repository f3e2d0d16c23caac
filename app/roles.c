/*  app/roles.c: see roles.h. */
#include "app/roles.h"
#include "engine/alloc.h"
#include "engine/broker.h"
#include "engine/log.h"
#include "library/pipeline.h"
#include "actors/actors.h"

int
rp_roles_start (rp_runtime_t *runtime, const rp_config_t *config, const rp_roles_opts_t *opts,
                 zactor_t **pipeline, char *err, size_t errlen)
{
    rp_broker_args_t args;
    rp_broker_args_from_config (&args, config);
    snprintf (args.frontends [0], RP_STR_MAX, "%s", RP_INPROC_FRONTEND);
    snprintf (args.backends [0], RP_STR_MAX, "%s", RP_INPROC_BACKEND);
    if (opts->listen_tcp) {
        snprintf (args.frontends [1], RP_STR_MAX, "%s", config->broker_frontend);
        snprintf (args.backends [1], RP_STR_MAX, "%s", config->broker_backend);
    }
    zactor_t *broker = rp_broker_new (&args);
    if (!broker) {
        snprintf (err, errlen, "cannot start the broker (see the log line above)");
        return -1;
    }
    rp_runtime_adopt (runtime, "broker", &broker);
    if (opts->pools
    &&  (rp_actors_start_pool (runtime, "resize", config->pools_resize, RP_INPROC_BACKEND, config, err, errlen)
    ||   rp_actors_start_pool (runtime, "exif", config->pools_exif, RP_INPROC_BACKEND, config, err, errlen)))
        return -1;
    if (opts->pipeline) {
        rp_pipeline_args_t *pargs = (rp_pipeline_args_t *) rp_alloc (sizeof (rp_pipeline_args_t));
        snprintf (pargs->frontend, sizeof pargs->frontend, "%s", RP_INPROC_FRONTEND);
        pargs->config = *config;
        zactor_t *actor = rp_pipeline_new (pargs);
        free (pargs);
        if (!actor) {
            snprintf (err, errlen, "cannot start the pipeline (see the log line above)");
            return -1;
        }
        if (pipeline)
            *pipeline = actor;
        rp_runtime_adopt (runtime, "pipeline", &actor);
    }
    return 0;
}
