/*  engine/aws/lambda_runtime.h: a client of the Lambda Runtime API
    (version 2018-06-01), over libcurl: what a custom runtime speaks to
    the Lambda service inside its execution environment.

    The API is at http://$AWS_LAMBDA_RUNTIME_API (host:port, no TLS, no
    signing). A runtime asks for its next invocation (GET
    /runtime/invocation/next, which blocks until there is one: no
    timeout, the environment may be frozen in between), then answers it
    once: its response (POST .../invocation/<id>/response) or its error
    (POST .../invocation/<id>/error, with Lambda-Runtime-Function-Error-Type
    and a JSON body {"errorMessage","errorType","stackTrace":[]}). A
    runtime that cannot start says so once (POST /runtime/init/error, the
    same body) and exits. Lambda accepts answers with 202; a 500 from the
    API means the environment is broken and the runtime should exit
    (RP_UNAVAILABLE below).

    A client belongs to one thread (one curl handle, so the connection to
    the API is reused).
*/
#ifndef RP_LAMBDA_RUNTIME_H
#define RP_LAMBDA_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

#define RP_LAMBDA_EVENT_MAX (7 * 1024 * 1024)     //  Lambda's payload limit is 6 MB

typedef struct _rp_lambda_runtime_t rp_lambda_runtime_t;

//  One invocation, as /next gave it
typedef struct {
    char request_id [128];          //  Lambda-Runtime-Aws-Request-Id
    int64_t deadline_ms;            //  Lambda-Runtime-Deadline-Ms, epoch ms (0: not given)
    char trace [256];               //  Lambda-Runtime-Trace-Id (X-Ray header form), or ""
    char function_arn [256];        //  Lambda-Runtime-Invoked-Function-Arn, or ""
    char *event;                    //  the payload, NUL-terminated (malloc'ed)
    size_t event_len;
} rp_lambda_invocation_t;

//  A client of the API at api ("host:port", AWS_LAMBDA_RUNTIME_API). NULL
//  with err when api is not host:port.
rp_lambda_runtime_t *rp_lambda_runtime_new (const char *api, char *err, size_t errlen);
void rp_lambda_runtime_destroy (rp_lambda_runtime_t **self_p);

//  The wait for the next invocation is given up ("cancelled") as soon as
//  fn (arg) returns true; asked about once a second or more.
typedef bool (rp_lambda_cancel_fn) (void *arg);
void rp_lambda_runtime_set_cancel (rp_lambda_runtime_t *self, rp_lambda_cancel_fn *fn, void *arg);

//  Wait for the next invocation. 0 with *invocation filled (free it with
//  rp_lambda_invocation_clear); RP_UNAVAILABLE when the API answered 500
//  (exit); -1 with err otherwise (cancelled, unreachable, no request id, a
//  payload over RP_LAMBDA_EVENT_MAX).
int rp_lambda_next (rp_lambda_runtime_t *self, rp_lambda_invocation_t *invocation, char *err, size_t errlen);
void rp_lambda_invocation_clear (rp_lambda_invocation_t *invocation);

//  The invocation's response (a JSON document). 0; RP_UNAVAILABLE as above;
//  -1 with err (the API refused it: too large, an unknown request id).
int rp_lambda_respond (rp_lambda_runtime_t *self, const char *request_id, const char *body,
                       char *err, size_t errlen);
//  The invocation failed: error_type ("Runtime.InvalidEvent") and message.
int rp_lambda_fail (rp_lambda_runtime_t *self, const char *request_id, const char *error_type,
                    const char *message, char *err, size_t errlen);
//  The runtime cannot start: error_type ("Runtime.ConfigError") and message.
int rp_lambda_init_error (rp_lambda_runtime_t *self, const char *error_type, const char *message,
                          char *err, size_t errlen);

#endif
