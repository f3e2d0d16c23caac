/*  app/roles.c: see roles.h. */
#include "app/roles.h"
#include "engine/alloc.h"
#include "engine/broker.h"
#include "engine/emf.h"
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
    zactor_t *broker = rp_broker_new (&args, err, errlen);
    if (!broker)
        return -1;
    rp_runtime_adopt (runtime, "broker", &broker);
    if (opts->pools) {
        //  In-process workers share the pipeline's folder (in S3 mode its
        //  cache): the pipeline fetches originals and stores derivatives
        //  in S3 itself, with its backoff, so they only use the folder
        rp_config_t *local = (rp_config_t *) rp_alloc (sizeof (rp_config_t));
        *local = *config;
        snprintf (local->storage_backend, sizeof local->storage_backend, "disk");
        int rc = rp_actors_start_pool (runtime, "resize", config->pools_resize, RP_INPROC_BACKEND,
                                       local, err, errlen)
              || rp_actors_start_pool (runtime, "exif", config->pools_exif, RP_INPROC_BACKEND,
                                       local, err, errlen);
        free (local);
        if (rc)
            return -1;
    }
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

int
rp_roles_start_emf (rp_runtime_t *runtime, const rp_config_t *config, const char *service,
                    const char *broker, char *err, size_t errlen)
{
    if (!config->metrics_emf)
        return 0;
    rp_emf_args_t *args = (rp_emf_args_t *) rp_alloc (sizeof (rp_emf_args_t));
    args->config = *config;
    snprintf (args->service, sizeof args->service, "%s", service);
    snprintf (args->broker, sizeof args->broker, "%s", broker ? broker : "");
    args->database = true;
    zactor_t *actor = zactor_new (rp_emf_actor, args);
    free (args);
    if (!actor) {
        snprintf (err, errlen, "cannot start the EMF metrics actor");
        return -1;
    }
    rp_runtime_adopt (runtime, "emf", &actor);
    rp_info ("main", "metrics: CloudWatch EMF on stdout every %lld s, namespace %s, Service=%s",
             (long long) config->metrics_emf_interval_s, config->metrics_emf_namespace, service);
    return 0;
}
