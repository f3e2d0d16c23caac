/*  engine/clock.h: the time, in the three ways the code needs it.

    Durations and deadlines inside one process use the monotonic clock
    (it never jumps when the system time is set). Times that other
    processes read (a tus upload's expiry, a lease, an id's timestamp, a
    log line) use the wall clock, in milliseconds since the epoch.
*/
#ifndef RP_CLOCK_H
#define RP_CLOCK_H

#include <stdint.h>

//  Milliseconds on a monotonic clock, for duration= fields and deadlines.
int64_t rp_clock_ms (void);

//  The same clock with a fraction of a millisecond (to the nanosecond it
//  reads): the stage timings of a small photo are a few ms each.
double rp_clock_ms_precise (void);

//  Wall-clock milliseconds since the epoch (UTC), for times shared with
//  other processes and stored.
int64_t rp_clock_wall_ms (void);

#endif
