/*  engine/drain.h: the process is stopping. One flag every part reads,
    and the work in flight the stop waits for.

    ECS stops a task with SIGTERM, waits its stopTimeout (30 s by default),
    then sends SIGKILL. The command that serves (app/cmd_engine.c, whose
    DESIGN comment gives the whole sequence) turns the signal into
    rp_drain_begin, and each part checks rp_draining in one place:
      gateway/readyz.c    /readyz answers 503 at once ("draining")
      gateway/routes.c    a new upload (POST /photos, tus creation, presign)
                          is answered 503 with Retry-After; requests under
                          way go on, and are counted here
      gateway/response.c  answers carry Connection: close
      gateway/events.c    event streams end with a retry hint
      library/pipeline.c  claims no photo; the photos it holds are counted
                          here until committed, or put back to queued at
                          its stop
      actors/bridges/sqs_ingest.c  receives no message
    Then the command waits (rp_drain_wait) until nothing is in flight or
    its deadline passes, and stops the actors. Thread-safe; lock-free.
*/
#ifndef RP_DRAIN_H
#define RP_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

//  What the stop waits for, counted by the part that owns it
typedef enum {
    RP_DRAIN_REQUESTS,              //  HTTP requests under way (not event streams)
    RP_DRAIN_PHOTOS,                //  photos a pipeline holds (claimed, not committed)
    RP_DRAIN_KINDS
} rp_drain_kind_t;

//  The process starts to drain (from now on rp_draining is true). Only the
//  first call counts; later ones change nothing.
void rp_drain_begin (void);

//  True once rp_drain_begin was called.
bool rp_draining (void);

//  Work of a kind starts (delta > 0) or ends (delta < 0).
void rp_drain_count (rp_drain_kind_t kind, int delta);

//  Work of a kind in flight now.
int64_t rp_drain_in_flight (rp_drain_kind_t kind);

//  Wait until nothing is in flight, or until deadline_ms (rp_clock_ms). 0
//  when all of it finished; -1 at the deadline, having logged what was
//  still in flight.
int rp_drain_wait (int64_t deadline_ms);

#endif
