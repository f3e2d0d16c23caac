/*  tests/support/hostile.h: a peer that breaks every rule of the worker
    protocol (schemas/messages.md), for tests that a broker survives it:
    tests/test_broker.c (the actor) and tests/test_security.c (`serve`). */
#ifndef RP_TEST_HOSTILE_H
#define RP_TEST_HOSTILE_H

#include <czmq.h>

//  A raw DEALER, without keys, on a broker's backend that says in turn:
//  READY (pool resize), DONE for a job it was never given, FAILED and a
//  forged DONE for victim_job (another worker's job; NULL: none), READY
//  again, garbage of every kind (no tag, a bad body, a command for the
//  other direction, a bad pool name, 200 frames), and a frame 2 MiB over
//  the size limit; then it falls silent. Returns the socket, open and
//  silent; the caller destroys it.
zsock_t *rp_test_hostile_peer (const char *backend, const char *victim_job);

//  The same, each step spaced by pause_ms, for a broker that must see them
//  one at a time (its loop runs between them).
zsock_t *rp_test_hostile_peer_paced (const char *backend, const char *victim_job, int pause_ms);

#endif
