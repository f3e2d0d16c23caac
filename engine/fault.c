/*  engine/fault.c: see fault.h. */
#include "engine/fault.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
rp_fault_value (const char *name)
{
    char var [96];
    snprintf (var, sizeof var, "RP_FAULT_%s", name);
    const char *text = getenv (var);
    if (!text || !*text)
        return 0;
    char *end = NULL;
    long long v = strtoll (text, &end, 10);
    return end && *end == 0 && v > 0 ? (int64_t) v : 0;
}

static pthread_mutex_t s_once_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_once_fired [8][64];

int
rp_fault_once (const char *name)
{
    if (rp_fault_value (name) == 0)
        return 0;
    int fire = 1;
    pthread_mutex_lock (&s_once_lock);
    for (int i = 0; i < 8; i++) {
        if (strcmp (s_once_fired [i], name) == 0) {
            fire = 0;
            break;
        }
        if (!s_once_fired [i][0]) {
            snprintf (s_once_fired [i], sizeof s_once_fired [i], "%s", name);
            break;
        }
    }
    pthread_mutex_unlock (&s_once_lock);
    return fire;
}

void
rp_fault_hold (const char *name)
{
    int64_t ms = rp_fault_value (name);
    struct timespec wait = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
    while (ms > 0 && nanosleep (&wait, &wait) != 0)
        ;
}
