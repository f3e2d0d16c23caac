/*  engine/fault.h: fault hooks, so tests can make things fail on purpose
    (in the spirit of SQLite's fault simulation). A hook is an environment
    variable RP_FAULT_<NAME>, read again at every use, so a test may set it
    just before the step it means to break and unset it after, or start a
    child process with it. Unset, or not a positive whole number, means
    off; a production run never sets them. Counts (the Nth ...) are per
    process and never reset.

    Hooks in use:
      RP_FAULT_JOB_DELAY_MS    every job handler sleeps this long first, so a
                               test can kill a worker while a job is in flight
                               (engine/worker.c)
      RP_FAULT_STALL_ONCE_MS   the first job of the process sleeps this long
                               while the worker keeps heartbeating: a stall
                               that only the broker's job deadline can catch
                               (engine/worker.c)
      RP_FAULT_DB_COMMIT=N     the Nth write commit, counting only commits
                               made while the hook is set, is refused and
                               rolled back as if the database had failed it
                               (engine/db/db.c)
      RP_FAULT_DISK_WRITE=N    the Nth blob write of the process (every
                               write counts, set or not) fails with EIO, as
                               a failing disk would (library/blobstore.c)
      RP_FAULT_HOLD_INGEST_MS  every ingest waits this long between its
                               bytes stored and its row committed: the
                               window a concurrent delete or collection
                               races with (library/library.c)
      RP_FAULT_HOLD_DELETE_MS  every delete of a photo waits this long
                               after its row's commit, before its bytes are
                               dealt with (library/library.c)
      RP_FAULT_MINUTE_MS       the pipeline's minute tick (stuck photos,
                               the local cache, the collection of bytes)
                               comes every this many milliseconds instead
                               (library/pipeline.c)
*/
#ifndef RP_FAULT_H
#define RP_FAULT_H

#include <stdint.h>

//  The hook's value as a number (0 when unset, not a number, or not positive).
int64_t rp_fault_value (const char *name);

//  True once, for the first caller in the process, when the hook is set
//  (at most 8 names are remembered; a ninth would fire every time).
int rp_fault_once (const char *name);

//  Sleep the hook's value in milliseconds (nothing when it is off): a hold
//  between two steps, so a test can run another request in between.
void rp_fault_hold (const char *name);

#endif
