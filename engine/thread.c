/*  engine/thread.c: see thread.h. */
#include "engine/thread.h"

#include <openssl/crypto.h>

void
rp_thread_end (void)
{
    OPENSSL_thread_stop ();
}
