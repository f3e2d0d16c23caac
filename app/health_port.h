/*  app/health_port.h: GET /healthz for a role that serves no HTTP API
    (`rapidphoto pipeline`), so that `rapidphoto health` and a container
    health check can ask it the same way they ask a gateway.

    The answer is about the process's own loop, not its peers: the command
    that owns the port beats it each time its pipeline actor answered a
    question on its pipe, and /healthz answers 200 while the last beat is
    younger than the port's stale_ms, 503 after. A pipeline thread stuck
    (a call that never returns) therefore turns the task unhealthy, and a
    database or S3 outage, which the pipeline waits out in its loop, does
    not: replacing the task would not bring them back.
*/
#ifndef RP_HEALTH_PORT_H
#define RP_HEALTH_PORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct _rp_health_port_t rp_health_port_t;

//  Listen on listen ("HOST:PORT", IPv4; a host of "", "*" or "0.0.0.0" is
//  every address) and answer GET /healthz; anything else is 404. role
//  names the process in the answer. Born healthy: the first beat is now.
//  NULL, with err, when it cannot listen.
rp_health_port_t *rp_health_port_new (const char *listen, const char *role, int64_t stale_ms,
                                      char *err, size_t errlen);

//  Stop answering and free the port; safe on NULL, clears *self_p.
void rp_health_port_destroy (rp_health_port_t **self_p);

//  The loop is alive: it holds in_flight photos. Thread-safe.
void rp_health_port_beat (rp_health_port_t *self, int64_t in_flight);

#endif
