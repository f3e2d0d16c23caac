/*  engine/drain.c: see drain.h. A flag and one counter per kind, atomic. */
#include "engine/drain.h"
#include "engine/clock.h"
#include "engine/log.h"

#include <stdatomic.h>
#include <time.h>

static atomic_bool s_draining;
static atomic_llong s_in_flight [RP_DRAIN_KINDS];

void
rp_drain_begin (void)
{
    atomic_store (&s_draining, true);
}

bool
rp_draining (void)
{
    return atomic_load (&s_draining);
}

void
rp_drain_count (rp_drain_kind_t kind, int delta)
{
    atomic_fetch_add (&s_in_flight [kind], delta);
}

int64_t
rp_drain_in_flight (rp_drain_kind_t kind)
{
    return atomic_load (&s_in_flight [kind]);
}

int
rp_drain_wait (int64_t deadline_ms)
{
    for (;;) {
        int64_t requests = rp_drain_in_flight (RP_DRAIN_REQUESTS);
        int64_t photos = rp_drain_in_flight (RP_DRAIN_PHOTOS);
        if (requests <= 0 && photos <= 0)
            return 0;
        if (rp_clock_ms () >= deadline_ms) {
            rp_warn ("main", "drain: out of time with %lld HTTP requests and %lld photos still in "
                     "flight: requests are cut (a tus upload keeps the bytes that arrived), photos "
                     "go back to queued", (long long) requests, (long long) photos);
            return -1;
        }
        struct timespec pause = { 0, 10 * 1000000 };
        nanosleep (&pause, NULL);
    }
}
