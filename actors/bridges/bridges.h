/*  actors/bridges/bridges.h: the actors that make an engine a citizen of
    AWS: the SQS ingest consumer (S3 event notifications in, photos out)
    and the SQS events producer (photo.complete / photo.failed out).

    Both run in `serve` when storage.backend = s3 and their queue URL is
    set (sqs.ingest_queue_url, sqs.events_queue_url). Each owns its
    database connection, its SQS client and (ingest) its blob store: they
    share nothing with the other actors but the database. Their last word
    on their queue goes to engine/health.h for /readyz.
*/
#ifndef RP_BRIDGES_H
#define RP_BRIDGES_H

#include <czmq.h>
#include "engine/config.h"

typedef struct {
    rp_config_t config;
    int start_failed;               //  set by the actor when it cannot start
} rp_bridge_args_t;

//  zactor_new (rp_sqs_ingest_actor, &args): consume sqs.ingest_queue_url.
void rp_sqs_ingest_actor (zsock_t *pipe, void *args);
//  zactor_new (rp_sqs_events_actor, &args): publish to sqs.events_queue_url.
//  Pipe commands besides $TERM: PAUSE (its lease given up, nothing
//  published until RESUME; replies with a signal once done) and RESUME.
void rp_sqs_events_actor (zsock_t *pipe, void *args);
//  The outbox row the events actor keeps its cursor and lease in
//  (engine/db/db.h: rp_db_outbox_pending tells whether a photo's outcome
//  is out).
#define RP_SQS_EVENTS_OUTBOX "sqs-events"

//  Start the bridges the configuration asks for into runtime. 0, or -1
//  with err (a bridge that cannot start: no credentials, no database).
#include "engine/runtime.h"
int rp_bridges_start (rp_runtime_t *runtime, const rp_config_t *config, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Shared by the two actors (bridges.c)

#include "engine/aws/credentials.h"
#include "engine/aws/sqs.h"

//  An SQS client signing with the provider's current credentials, made
//  again when they were refreshed. *client_p and *keys are the actor's.
//  0, or -1 with err.
int rp_bridge_sqs_client (rp_aws_provider_t *provider, const rp_config_t *config,
                          rp_sqs_t **client_p, rp_aws_keys_t *keys, char *err, size_t errlen);

//  Note an SQS call's outcome: *failures (errors in a row) is counted or
//  cleared, /readyz's entry `queue` ("ingest_queue") says ok or why not,
//  and the log says so once on a change (and every tenth failure after).
//  actor names the log's source ("sqs-ingest").
void rp_bridge_outcome (const char *actor, const char *queue, int *failures, int rc, const char *err);

//  Backoff for a peer that failed `failures` times in a row: 0.5 s
//  doubling to cap_ms, plus up to 50 % jitter.
int64_t rp_bridge_backoff_ms (int failures, int64_t cap_ms);

#endif
