/*  engine/health.c: see health.h. A fixed table under one mutex. */
#include "engine/health.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char name [32];
    bool ok;
    char why [256];
} s_entry_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_entry_t s_entries [RP_HEALTH_MAX];
static int s_count;

void
rp_health_set (const char *name, bool ok, const char *why)
{
    pthread_mutex_lock (&s_lock);
    s_entry_t *entry = NULL;
    for (int i = 0; i < s_count && !entry; i++)
        if (strcmp (s_entries [i].name, name) == 0)
            entry = &s_entries [i];
    if (!entry && s_count < RP_HEALTH_MAX) {
        entry = &s_entries [s_count++];
        snprintf (entry->name, sizeof entry->name, "%s", name);
    }
    if (entry) {
        entry->ok = ok;
        snprintf (entry->why, sizeof entry->why, "%s", ok || !why ? "" : why);
    }
    pthread_mutex_unlock (&s_lock);
}

void
rp_health_each (rp_health_fn *fn, void *arg)
{
    s_entry_t copy [RP_HEALTH_MAX];
    pthread_mutex_lock (&s_lock);
    int count = s_count;
    memcpy (copy, s_entries, sizeof copy);
    pthread_mutex_unlock (&s_lock);
    for (int i = 0; i < count; i++)
        fn (copy [i].name, copy [i].ok, copy [i].why, arg);
}

void
rp_health_reset (void)
{
    pthread_mutex_lock (&s_lock);
    s_count = 0;
    pthread_mutex_unlock (&s_lock);
}
