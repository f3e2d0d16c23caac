/*  engine/fault.h: fault hooks, so tests can make things fail on purpose
    (in the spirit of SQLite's fault simulation). A hook is an environment
    variable RP_FAULT_<NAME> read once per process; unset means off, and a
    production run never sets them.

    Hooks in use:
      RP_FAULT_JOB_DELAY_MS    every job handler sleeps this long first, so a
                               test can kill a worker while a job is in flight
      RP_FAULT_STALL_ONCE_MS   the first job of the process sleeps this long
                               while the worker keeps heartbeating: a stall
                               that only the broker's job deadline can catch
*/
#ifndef RP_FAULT_H
#define RP_FAULT_H

#include <stdint.h>

//  The hook's value as a number (0 when unset or not a number).
int64_t rp_fault_value (const char *name);

//  True once, for the first caller in the process, when the hook is set.
int rp_fault_once (const char *name);

#endif
