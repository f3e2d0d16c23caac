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

//  ---------------------------------------------------------------------------
//  tools/aws/standins.mjs, the S3 and SQS stand-ins wired as AWS wires them
//  (its header says how), for a test, and Debian's aws CLI to drive and
//  check them as an operator would. /usr/bin/aws is named explicitly:
//  another `aws` (a pyenv shim, an AWS CLI v2 bundle) may come first on PATH.
#include <stdbool.h>

#define RP_TEST_AWS_CLI "/usr/bin/aws"

typedef struct {
    pid_t pid;
    char dir [256];                 //  the test's folder: objects, logs, files
    char log [320];                 //  the stand-ins' output
    char s3 [64];                   //  S3 endpoint, http://127.0.0.1:PORT
    char sqs [64];                  //  SQS endpoint
    char ingest [128];              //  queue URLs
    char events [128];
    char dlq [128];
} rp_test_aws_t;

//  Start the stand-ins in a fresh folder named after name; prefixes: what
//  S3 announces (NULL: their default, incoming/ and uploads/). Returns once
//  they said ready; the bucket is "photos", the queues ingest, ingest-dlq
//  and events.
void rp_test_aws_start (rp_test_aws_t *aws, const char *name, const char *prefixes);
void rp_test_aws_stop (rp_test_aws_t *aws);
//  Wait until the stand-ins' log has count lines containing needle.
bool rp_test_aws_log_wait (const rp_test_aws_t *aws, const char *needle, int count, int timeout_ms);
//  Run `aws --endpoint-url <endpoint> ARGS` (args a printf format, already
//  shell-quoted) with the stand-ins' credentials and nothing of the
//  caller's AWS settings. Its stdout into *out (caller frees) when out is
//  not NULL; its stderr into <dir>/aws.err. The exit status.
int rp_test_aws_cli (const rp_test_aws_t *aws, const char *endpoint, char **out, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));
//  What the last aws CLI call said on stderr (caller frees).
char *rp_test_aws_err (const rp_test_aws_t *aws);
//  `aws s3 ls --recursive s3://photos/`: one line per object (caller frees).
char *rp_test_aws_ls (const rp_test_aws_t *aws);

//  What the events queue said about a set of photos (rp_test_aws_events).
#include <czmq.h>
typedef struct {
    zhash_t *announced;             //  ids with a photo.complete (caller destroys)
    int messages;                   //  every message received
    int repeats;                    //  photo.complete for an id already announced
    int others;                     //  anything else: another type, an unknown id
} rp_test_events_t;

//  Receive from the events queue (with our SQS client) until every id of
//  ids (a set) is announced by a photo.complete and a second has passed
//  with nothing more, or timeout_ms. A message that is not JSON fails the
//  test.
void rp_test_aws_events (const rp_test_aws_t *aws, zhash_t *ids, int timeout_ms, rp_test_events_t *events);

#endif
