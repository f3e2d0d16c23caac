/*  tests/support/xray.h: the X-Ray daemon's side of a test
    (tests/test_observability.c, tests/test_aws_bridges.c).

    A UDP socket on 127.0.0.1 that a `rapidphoto` sends its segments to
    (AWS_XRAY_DAEMON_ADDRESS), and what the daemon and X-Ray would check:

        rp_test_xray_t xray;
        rp_test_xray_open (&xray);      //  then xray.setting in the engine's environment
        ... the engine works, and stops ...
        json_t *documents = rp_test_xray_collect (&xray, 1000);
        json_t *complete = json_object ();
        rp_test_xray_check (documents, "53995c3f42cd8ad8", complete);
        rp_test_xray_find (complete, trace_id, "database", segment_id, NULL);
*/
#ifndef RP_TEST_XRAY_H
#define RP_TEST_XRAY_H

#include <jansson.h>

typedef struct {
    int fd;
    int port;                       //  on 127.0.0.1
    char setting [64];              //  AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:<port>
} rp_test_xray_t;

//  Bind the listener (a receive buffer big enough for a run's datagrams).
void rp_test_xray_open (rp_test_xray_t *xray);
//  Every datagram until none came for quiet_ms, each checked as the daemon
//  reads it (the header line, then one JSON document, at most 64 KiB); the
//  documents (caller decrefs). Closes the listener.
json_t *rp_test_xray_collect (rp_test_xray_t *xray, int quiet_ms);
//  What X-Ray asks of each document (ids, the trace id's form and time,
//  times in order or in_progress, subsegments typed, every parent_id a
//  document's or outside_parent); the complete ones, by id, into complete.
void rp_test_xray_check (json_t *documents, const char *outside_parent, json_t *complete);
//  The complete documents of trace_id (NULL: any) named name (NULL: any)
//  under parent (NULL: any): how many, the first into *found (borrowed).
int rp_test_xray_find (json_t *complete, const char *trace_id, const char *name, const char *parent,
                       json_t **found);

#endif
