/*  engine/broker.h: the job broker, a zactor.

    Producers (clients) send SUBMIT to its frontend ROUTER; workers of each
    pool (one per job kind: resize, exif) say READY on its backend ROUTER
    and get JOBs. Each job's one outcome goes back to its producer as
    RESULT. See broker.c's DESIGN comment for the rules on heartbeats,
    deadlines and retries.
*/
#ifndef RP_BROKER_H
#define RP_BROKER_H

#include <czmq.h>
#include <jansson.h>
#include <stdbool.h>
#include "engine/config.h"

#define RP_BROKER_ENDPOINTS 4

//  Where an engine process's own producers and worker pools meet its broker
#define RP_INPROC_FRONTEND "inproc://rapidphoto-frontend"
#define RP_INPROC_BACKEND  "inproc://rapidphoto-backend"

//  Bounds on what peers can make the broker hold (a READY or SUBMIT past
//  them is refused): job kinds (pools), registered workers
#define RP_BROKER_POOLS_MAX 16
#define RP_BROKER_WORKERS_MAX 4096

typedef struct {
    char frontends [RP_BROKER_ENDPOINTS][RP_STR_MAX];   //  endpoints to bind; "" = unused
    char backends [RP_BROKER_ENDPOINTS][RP_STR_MAX];
    int64_t heartbeat_ms;
    int liveness;
    int64_t job_timeout_ms;
    int max_attempts;
    int64_t queue_max;          //  jobs waiting per kind
    int64_t queue_expiry_ms;    //  a kind without workers fails its jobs after this
    //  CURVE on every tcp/ipc endpoint when curve_secret_key is set (Z85;
    //  "" = none), letting in only the public keys in curve_clients
    char curve_secret_key [48];
    char curve_clients [RP_CURVE_CLIENTS_MAX];
    bool trust_network;         //  tcp beyond loopback without CURVE is allowed
    int start_failed;           //  set by the actor when it cannot bind
    char start_error [RP_STR_MAX];  //  and why
} rp_broker_args_t;

//  Fill args from a config (timings, bounds and keys; endpoints are left
//  empty).
void rp_broker_args_from_config (rp_broker_args_t *args, const rp_config_t *config);

//  The actor. args is copied before the actor signals, so it may live on
//  the caller's stack. When an endpoint cannot be bound it sets
//  args->start_failed and exits: start it with rp_broker_new, which checks.
void rp_broker_actor (zsock_t *pipe, void *args);

//  Start a broker actor. NULL with one line in err, naming the endpoint,
//  when it may not listen there (tcp beyond loopback without CURVE keys
//  and without trust_network) or cannot bind. The caller owns the actor
//  (zactor_destroy stops it).
zactor_t *rp_broker_new (rp_broker_args_t *args, char *err, size_t errlen);

//  Ask a broker at `endpoint` (its frontend: inproc:// in the same process,
//  tcp:// elsewhere, with config's CURVE client keys: may be NULL), as a
//  producer would, how its pools are doing. On success *status is (caller
//  owns)
//    {"pools":{"<kind>":{"queued","running","workers","idle","done","failed",
//                        "duration_ms_sum"}},"completed","retried"}
//  Returns -1 with err when the broker does not answer within timeout_ms.
int rp_broker_query_status (const char *endpoint, const rp_config_t *config, int timeout_ms,
                            json_t **status, char *err, size_t errlen);

//  Ask a running broker for its counters. Returns 0 and fills the numbers.
int rp_broker_stats (zactor_t *broker, int64_t *queued, int64_t *running,
                     int64_t *workers, int64_t *completed, int64_t *retried);

#endif
