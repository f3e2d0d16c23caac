/*  engine/health.h: how this process's links to its dependencies are
    doing, as the actors that use them last saw it, for /readyz.

    The SQS bridges poll and send all the time, so their last outcome is
    a truer answer than a probe would be (a probe receive would also hide
    a message and count towards its redrive). Names are short labels
    ("ingest_queue", "events_queue"); at most RP_HEALTH_MAX of them.
    Thread-safe.
*/
#ifndef RP_HEALTH_H
#define RP_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#define RP_HEALTH_MAX 8

//  Record the last outcome: ok, or down with a reason naming the peer.
void rp_health_set (const char *name, bool ok, const char *why);
//  Call fn for every recorded dependency, in the order first recorded.
typedef void (rp_health_fn) (const char *name, bool ok, const char *why, void *arg);
void rp_health_each (rp_health_fn *fn, void *arg);
//  Forget everything (tests, and a process that starts its actors again).
void rp_health_reset (void);

#endif
