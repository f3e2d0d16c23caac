/*  engine/trace.h: AWS X-Ray tracing, over the X-Ray daemon's UDP protocol.

    A trace id is 1-<8 hex epoch seconds>-<24 hex random>; a segment or
    subsegment id 16 hex. A request takes the ALB's X-Amzn-Trace-Id
    (Root=...;Parent=...;Sampled=0|1) or starts a trace of its own, sampled
    at tracing.sample_rate (always when the header says Sampled=1, never
    when it says Sampled=0). The trace id is on every log line a thread
    writes while it works for that request or job (rp_trace_enter), and
    goes on with the work: in broker jobs (rp_msg_t's trace, schemas/
    messages.md) and SQS messages (the AWSTraceHeader system attribute).

    When AWS_XRAY_DAEMON_ADDRESS is set (host:port, or "tcp:h:p udp:h:p":
    the udp one is used) sampled segments are sent to the daemon, one UDP
    datagram each: the header line {"format":"json","version":1}, then the
    document, under the daemon's 64 KiB limit. Unset, ids still flow and
    log lines still carry them; nothing is sent. Sending never blocks and
    never fails the work: a datagram the socket refuses is dropped.
*/
#ifndef RP_TRACE_H
#define RP_TRACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define RP_TRACE_ID_MAX 36          //  "1-" 8 hex "-" 24 hex, and the NUL
#define RP_TRACE_SPAN_MAX 17        //  16 hex and the NUL
#define RP_TRACE_HEADER_MAX 96      //  Root=...;Parent=...;Sampled=1
#define RP_TRACE_DOC_MAX (64 * 1024 - 64)     //  a document, with the header line, in one datagram

//  A trace as it travels: its id, the segment that called us, sampled
typedef struct {
    char id [RP_TRACE_ID_MAX];      //  "" when there is none
    char parent [RP_TRACE_SPAN_MAX];    //  the caller's segment id, or ""
    bool sampled;
} rp_trace_t;

//  Once at start, before any thread traces: the process's role (its
//  segments are named rapid-photo-<role>), the sample rate, and the
//  daemon from AWS_XRAY_DAEMON_ADDRESS. 0, or -1 with err when that
//  address is not host:port.
int rp_trace_init (const char *role, double sample_rate, char *err, size_t errlen);
//  True when segments are sent (a daemon address is set)
bool rp_trace_sending (void);
//  Stop sending (closes the socket); safe when never started.
void rp_trace_shutdown (void);

//  Read an X-Amzn-Trace-Id value (or AWSTraceHeader). 0, or -1 when it
//  names no valid Root (then *trace is untouched). A header without
//  Sampled= is sampled at the rate.
int rp_trace_parse (const char *header, rp_trace_t *trace);
//  A new trace, sampled at the rate.
void rp_trace_start (rp_trace_t *trace);
//  The header for the next hop: Root=<id>;Parent=<segment>;Sampled=0|1
void rp_trace_header (const rp_trace_t *trace, const char *segment, char out [RP_TRACE_HEADER_MAX]);
//  True when text is a trace id of the form above
bool rp_trace_id_valid (const char *text);
//  A new segment id (16 hex)
void rp_trace_new_span (char out [RP_TRACE_SPAN_MAX]);
//  Now, in epoch seconds (what X-Ray's times are)
double rp_trace_now (void);

//  This thread works for trace, under segment (its id): its log lines
//  carry trace=, and rp_trace_subsegment hangs under that segment, until
//  rp_trace_leave. trace NULL or without id: the same as leave.
void rp_trace_enter (const rp_trace_t *trace, const char *segment);
void rp_trace_leave (void);
//  The thread's trace and segment, when it has one (else false)
bool rp_trace_current (rp_trace_t *trace, char segment [RP_TRACE_SPAN_MAX]);

//  A segment document for trace: id, trace_id, name (NULL: rapid-photo-
//  <role>), start_time, and end_time when end > 0 (else in_progress).
//  parent_id is the trace's parent when it has one. Caller owns it.
json_t *rp_trace_segment (const rp_trace_t *trace, const char *id, const char *name, double start, double end);
//  Set error (4xx), throttle (429) and fault (5xx) on a document
void rp_trace_set_status (json_t *document, int status);
//  Send a document when the trace is sampled and a daemon set; takes it.
void rp_trace_send (const rp_trace_t *trace, json_t **document_p);

//  A subsegment of the thread's current segment, sent at once (when it is
//  sampled): name ("database", "S3", "SQS", "resize"...), namespace
//  ("aws", "remote" or NULL), operation (aws.operation, or NULL), and a
//  status as rp_trace_set_status takes (0: fine; -1: an error with no
//  status, flagged as a fault). Nothing when the thread has no trace.
//  more: other members (an "sql" or "http" object), taken; or NULL.
void rp_trace_subsegment (const char *name, const char *namespace, const char *operation, double start,
                          double end, int status, json_t *more);
//  True when this thread's subsegments would be sent (a sampled trace, a
//  daemon): callers time their work only then.
bool rp_trace_active (void);

#endif
