/*  engine/msg.h: the messages our actors exchange, and their msgpack codec.

    Written down in schemas/messages.md. On the wire a message is the frames
        [identity]  "RP1"  COMMAND  [BODY]
    where identity is added and removed by ROUTER sockets, "RP1" is the
    protocol tag, COMMAND one of the names below, and BODY a msgpack map with
    string keys (absent on HEARTBEAT and DISCONNECT). Unknown keys are
    ignored, so fields can be added without breaking older peers; a key of
    the wrong type, a bad tag or an unknown command makes the whole message
    malformed: it is dropped and logged, never asserted on, since it may come
    from another process.
*/
#ifndef RP_MSG_H
#define RP_MSG_H

#include <czmq.h>
#include <stdint.h>

#define RP_PROTOCOL "RP1"
#define RP_MSG_BODY_MAX (1024 * 1024)       //  bigger bodies are malformed

typedef enum {
    RP_MSG_READY = 1,       //  worker -> broker: I serve this pool, send me a job
    RP_MSG_JOB,             //  broker -> worker: do this job
    RP_MSG_DONE,            //  worker -> broker: job finished, here is its result
    RP_MSG_FAILED,          //  worker -> broker: job failed, here is why
    RP_MSG_HEARTBEAT,       //  both ways: I am alive (never means ready)
    RP_MSG_DISCONNECT,      //  broker -> worker: I do not know you, register again
    RP_MSG_SUBMIT,          //  client -> broker: queue this job
    RP_MSG_RESULT,          //  broker -> client: the job's one and only outcome
    RP_MSG_STATUS,          //  client -> broker: how are you? broker -> client:
                            //  {job_id (echoed), result: JSON of queues per pool}
} rp_command_t;

//  One message. Strings are owned by the message; NULL when absent.
typedef struct {
    rp_command_t command;
    char *job_id;           //  unique per job; every handler is idempotent on it
    char *kind;             //  job kind = pool name: resize, exif (actors/actors.c)
    char *pool;             //  READY: the pool the worker serves
    char *worker;           //  READY: worker's name for logs; RESULT: who did it
    char *src;              //  JOB/SUBMIT: the original's store address (its SHA-256)
    char *dest;             //  JOB/SUBMIT: from older peers only; ignored
    char *photo_id;         //  optional: the photo the job is for, for logs
    char *trace;            //  optional, SUBMIT/JOB: the X-Ray trace header (engine/trace.h)
    char *status;           //  RESULT: "done" or "failed"
    char *result;           //  DONE/RESULT: the handler's result as JSON text
    char *error;            //  FAILED/RESULT: a reason a person can read
    int64_t attempt;        //  JOB/DONE/FAILED/RESULT: 1 for the first try
    int64_t timeout_ms;     //  JOB: the broker's deadline for this attempt
    int64_t duration_ms;    //  DONE/FAILED/RESULT: time spent in the handler
    int64_t pid;            //  READY: the worker's process id
    int64_t retry;          //  FAILED/RESULT: 1 when the failure is passing (S3
                            //  away): the producer may try again later
} rp_msg_t;

//  Create an empty message of this command. Never NULL.
rp_msg_t *rp_msg_new (rp_command_t command);
void rp_msg_destroy (rp_msg_t **self_p);
//  Set a string field (copies value; NULL clears it). Field is &msg->name.
void rp_msg_set (char **field, const char *value);
//  Set a string field with printf formatting.
void rp_msg_setf (char **field, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
//  A deep copy. Caller owns it.
rp_msg_t *rp_msg_dup (const rp_msg_t *self);

//  The command's name ("JOB"), or "?" for an unknown value.
const char *rp_command_name (rp_command_t command);

//  Encode into a new zmsg of [tag, command, body]. Caller owns it.
zmsg_t *rp_msg_encode (const rp_msg_t *self);
//  Decode [tag, command, body] from `zmsg` (not consumed). NULL when
//  malformed, with the reason in err.
rp_msg_t *rp_msg_decode (zmsg_t *zmsg, char *err, size_t errlen);

//  Send on a socket; `identity` (borrowed, may be NULL) is prepended for
//  ROUTER sockets. 0 or -1 (e.g. EHOSTUNREACH: the peer is gone).
int rp_msg_send (const rp_msg_t *self, void *socket, zframe_t *identity);

#endif
