/*  tests/support/standins.h: the local AWS stand-ins (the scripts in tools/aws: .mjs on
    Node, .py on python3) started for a test, stopped when the test process ends. */
#ifndef RP_TEST_STANDINS_H
#define RP_TEST_STANDINS_H

#include <sys/types.h>

//  Start `node <source>/tools/aws/<script> --port <port> ARGS...` (args
//  NULL-terminated; python3 for a .py script) on a free port, its output into <log>; returns once
//  http://127.0.0.1:<port>/<probe> answers. *port receives the port.
pid_t rp_test_standin_start (const char *script, char *const args [], const char *probe, int *port,
                             const char *log);
//  SIGTERM it and wait.
void rp_test_standin_stop (pid_t pid);

#endif
