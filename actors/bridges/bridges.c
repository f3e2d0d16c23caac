/*  actors/bridges/bridges.c: what the SQS bridges share, and starting
    them. See bridges.h. */
#include "actors/bridges/bridges.h"
#include "engine/alloc.h"
#include "engine/aws/common.h"
#include "engine/health.h"
#include "engine/log.h"

#include <stdlib.h>
#include <string.h>

int
rp_bridge_sqs_client (rp_aws_provider_t *provider, const rp_config_t *config,
                      rp_sqs_t **client_p, rp_aws_keys_t *keys, char *err, size_t errlen)
{
    rp_aws_keys_t now;
    if (rp_aws_credentials_get (provider, &now, err, errlen))
        return -1;
    if (*client_p && strcmp (now.access_key, keys->access_key) == 0
    &&  strcmp (now.secret_key, keys->secret_key) == 0
    &&  strcmp (now.session_token, keys->session_token) == 0)
        return 0;
    rp_sqs_destroy (client_p);
    *keys = now;
    rp_sqs_config_t sqs = {
        .endpoint = rp_aws_endpoint ("SQS"), .region = rp_aws_region (),
        .credentials = { keys->access_key, keys->secret_key,
                         *keys->session_token ? keys->session_token : NULL },
        .protocol = config->sqs_protocol,
    };
    *client_p = rp_sqs_new (&sqs, err, errlen);
    return *client_p ? 0 : -1;
}

void
rp_bridge_outcome (const char *actor, const char *queue, int *failures, int rc, const char *err)
{
    char what [64];                 //  "ingest_queue" -> "the ingest queue"
    snprintf (what, sizeof what, "the %s", queue);
    for (char *c = what; *c; c++)
        if (*c == '_')
            *c = ' ';
    if (rc == 0) {
        if (*failures)
            rp_info (actor, "%s answers again", what);
        *failures = 0;
        rp_health_set (queue, true, NULL);
        return;
    }
    (*failures)++;
    char why [700];
    snprintf (why, sizeof why, "%s cannot be reached: %s", what, err);
    rp_health_set (queue, false, why);
    if (*failures == 1 || *failures % 10 == 0)
        rp_warn (actor, "%s (%d in a row)", why, *failures);
}

int64_t
rp_bridge_backoff_ms (int failures, int64_t cap_ms)
{
    if (failures <= 0)
        return 0;
    int64_t wait = 500LL << (failures - 1 < 10 ? failures - 1 : 10);
    if (wait > cap_ms)
        wait = cap_ms;
    return wait + (int64_t) (random () % (wait / 2 + 1));
}

int
rp_bridges_start (rp_runtime_t *runtime, const rp_config_t *config, char *err, size_t errlen)
{
    if (strcmp (config->storage_backend, "s3") != 0) {
        if (*config->sqs_ingest_queue_url || *config->sqs_events_queue_url)
            rp_warn ("bridges", "the SQS queues are only used with storage.backend = s3: not started");
        return 0;
    }
    struct { const char *name, *url; zactor_fn *fn; } bridges [] = {
        { "sqs-ingest", config->sqs_ingest_queue_url, rp_sqs_ingest_actor },
        { "sqs-events", config->sqs_events_queue_url, rp_sqs_events_actor },
    };
    for (size_t i = 0; i < sizeof bridges / sizeof bridges [0]; i++) {
        if (!*bridges [i].url)
            continue;
        rp_bridge_args_t *args = (rp_bridge_args_t *) rp_alloc (sizeof (rp_bridge_args_t));
        args->config = *config;
        zactor_t *actor = rp_actor_start_checked (bridges [i].fn, args, &args->start_failed);
        free (args);                //  the actor copied what it needs before signalling
        if (!actor) {
            snprintf (err, errlen, "the %s bridge cannot start (see the log line above)", bridges [i].name);
            return -1;
        }
        rp_runtime_adopt (runtime, bridges [i].name, &actor);
        rp_info ("bridges", "%s started on %s", bridges [i].name, bridges [i].url);
    }
    return 0;
}
