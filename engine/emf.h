/*  engine/emf.h: the actor that writes CloudWatch Embedded Metric Format
    documents on stdout, once per metrics.emf_interval_s (metrics.emf = on).

    On ECS the awslogs driver ships stdout to CloudWatch Logs, which turns
    the documents into metrics in metrics.emf_namespace: no agent, no
    PutMetricData call. What is in them: engine/metrics.h.
*/
#ifndef RP_EMF_H
#define RP_EMF_H

#include <czmq.h>
#include "engine/config.h"

typedef struct {
    rp_config_t config;
    char service [32];                  //  the role: serve, gateway, pipeline
    char broker [RP_STR_MAX];           //  the broker's frontend to ask STATUS, "" for none
    bool database;                      //  count the queued photos (its own connection)
} rp_emf_args_t;

//  zactor_new (rp_emf_actor, &args): the args are copied before it
//  signals. Pipe commands: $TERM (the interval so far is written first, so
//  a stop loses nothing counted); FLUSH (write now; answers "OK").
void rp_emf_actor (zsock_t *pipe, void *args);

#endif
