/*  engine/runtime.c: see runtime.h. */
#include "engine/runtime.h"
#include "engine/alloc.h"
#include "engine/clock.h"
#include "engine/log.h"
#include "engine/worker.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

typedef struct {
    char name [64];
    zactor_t *actor;
} s_entry_t;

struct _rp_runtime_t {
    zlist_t *actors;            //  s_entry_t*, oldest first
};

rp_runtime_t *
rp_runtime_new (void)
{
    rp_runtime_t *self = (rp_runtime_t *) rp_alloc (sizeof (rp_runtime_t));
    self->actors = zlist_new ();
    return self;
}

void
rp_runtime_destroy (rp_runtime_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rp_runtime_t *self = *self_p;
    //  Newest first: producers, then workers (which drain), then the broker
    while (zlist_size (self->actors)) {
        s_entry_t *entry = (s_entry_t *) zlist_tail (self->actors);
        zlist_remove (self->actors, entry);
        int64_t started = rp_clock_ms ();
        zactor_destroy (&entry->actor);
        rp_debug ("runtime", "%s stopped duration=%lld", entry->name,
                  (long long) (rp_clock_ms () - started));
        free (entry);
    }
    zlist_destroy (&self->actors);
    free (self);
    *self_p = NULL;
}

void
rp_runtime_adopt (rp_runtime_t *self, const char *name, zactor_t **actor_p)
{
    s_entry_t *entry = (s_entry_t *) rp_alloc (sizeof (s_entry_t));
    snprintf (entry->name, sizeof entry->name, "%s", name);
    entry->actor = *actor_p;
    *actor_p = NULL;
    zlist_append (self->actors, entry);
}

void
rp_runtime_start_pool (rp_runtime_t *self, const rp_job_kind_t *kind, int threads,
                       const char *endpoint, const rp_config_t *config)
{
    const char *pool = kind->pool;
    char host [64] = "";
    gethostname (host, sizeof host - 1);
    //  The args struct is large (it holds the config); keep it off the stack
    rp_worker_args_t *args = (rp_worker_args_t *) rp_alloc (sizeof (rp_worker_args_t));
    snprintf (args->pool, sizeof args->pool, "%s", pool);
    args->handler = kind->handler;
    args->thread_exit = kind->thread_exit;
    snprintf (args->endpoint, sizeof args->endpoint, "%s", endpoint);
    args->config = *config;
    for (int i = 1; i <= threads; i++) {
        snprintf (args->name, sizeof args->name, "%s-%d@%.24s:%d", pool, i, host, (int) getpid ());
        zactor_t *actor = zactor_new (rp_worker_actor, args);
        rp_runtime_adopt (self, args->name, &actor);
    }
    free (args);
}

zactor_t *
rp_actor_start_checked (zactor_fn *fn, void *args, const int *start_failed)
{
    zactor_t *actor = zactor_new (fn, args);
    if (actor && *start_failed)
        //  The thread is on its way out; destroy collects its last signal
        zactor_destroy (&actor);
    return actor;
}

size_t
rp_runtime_size (rp_runtime_t *self)
{
    return zlist_size (self->actors);
}

void
rp_runtime_wait_for_signal (void)
{
    //  A drain starts from here: /readyz must turn within ~100 ms
    while (!rp_interrupted ())
        zclock_sleep (20);
}

//  ---------------------------------------------------------------------------
//  Signals

static sigset_t s_signals;

//  The handler, on the signal thread only: czmq's flag, or at the second
//  signal an immediate exit (async-signal-safe: write and _exit)
static void
s_on_signal (int signal_number)
{
    if (rp_interrupted ()) {
        static const char text [] = "rapidphoto: second signal, stopping at once\n";
        if (write (STDERR_FILENO, text, sizeof text - 1) < 0) { /* nothing to do */ }
        _exit (128 + signal_number);
    }
    __atomic_store_n (&zsys_interrupted, 1, __ATOMIC_RELEASE);
}

bool
rp_interrupted (void)
{
    //  Atomic: the handler runs on the signal thread, the readers anywhere
    return __atomic_load_n (&zsys_interrupted, __ATOMIC_ACQUIRE) != 0;
}

//  The one thread that takes the signals: all it does is wait for them
static void *
s_signal_thread (void *arg)
{
    (void) arg;
    pthread_sigmask (SIG_UNBLOCK, &s_signals, NULL);
    while (true)
        pause ();
    return NULL;
}

void
rp_runtime_take_signals (void)
{
    sigemptyset (&s_signals);
    sigaddset (&s_signals, SIGINT);
    sigaddset (&s_signals, SIGTERM);
    //  Ours, before zsys_init, which then leaves it in place
    zsys_handler_set (s_on_signal);
    pthread_sigmask (SIG_BLOCK, &s_signals, NULL);
    pthread_t thread;
    if (pthread_create (&thread, NULL, s_signal_thread, NULL) == 0)
        pthread_detach (thread);
    else
        //  No thread for them: taken by whichever thread the kernel picks,
        //  as before (the handshake race comes back, nothing else)
        pthread_sigmask (SIG_UNBLOCK, &s_signals, NULL);
}
