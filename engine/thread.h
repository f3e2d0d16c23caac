/*  engine/thread.h: what every actor's thread does last.

    czmq runs each actor on a thread of its own that nobody joins: the
    actor's function returns, the thread signals the caller waiting in
    zactor_destroy, and then ends. Libraries that keep per-thread state
    (OpenSSL: its error queue and random generators, made on a thread's
    first call to it) free it from a thread-exit hook, which can run after
    the process has already begun to exit: LeakSanitizer then reports that
    state as leaked, one run in a few. An actor calls rp_thread_end as the
    last thing it does, so what its thread kept is freed before the caller
    goes on.
*/
#ifndef RP_THREAD_H
#define RP_THREAD_H

//  Free the per-thread state of the libraries this thread used. The
//  thread may still call them afterwards (they start again); call it last.
void rp_thread_end (void);

#endif
