/*  engine/aws/sqs.h: an SQS client over libcurl, signed with SigV4, in
    either of SQS's protocols: JSON (AWS JSON 1.0, X-Amz-Target:
    AmazonSQS.<Action>, the default) or query (form-encoded Action=...
    requests, XML answers), chosen by the config's protocol.

    What the bridges need: long-poll receives (up to 20 s, up to 10
    messages, with the receive count), deletes, visibility extensions, and
    sends (one, or batches of up to 10). Requests go to the SQS endpoint
    (AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL when set, else the queue URL's
    own scheme and host): JSON requests to its "/" with the queue URL in the
    body, query requests to the queue URL's path.

    A client belongs to one thread. Errors name the action, the queue and
    SQS's own error code and message.
*/
#ifndef RP_SQS_H
#define RP_SQS_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/aws/sigv4.h"

typedef struct _rp_sqs_t rp_sqs_t;

typedef struct {
    const char *endpoint;           //  NULL or "": from each queue URL
    const char *region;
    rp_aws_credentials_t credentials;
    const char *protocol;           //  "json" (NULL or "": the same) or "query"
} rp_sqs_config_t;

typedef struct {
    char *id;                       //  MessageId
    char *receipt;                  //  ReceiptHandle: what delete and visibility take
    char *body;
    int receive_count;              //  ApproximateReceiveCount (1 the first time;
                                    //  never less: SQS's text, if not a count, reads as 1)
    char *trace_header;             //  the AWSTraceHeader system attribute (X-Ray), or NULL
} rp_sqs_message_t;

//  NULL with err when the region, the credentials or the protocol is not usable.
rp_sqs_t *rp_sqs_new (const rp_sqs_config_t *config, char *err, size_t errlen);
void rp_sqs_destroy (rp_sqs_t **self_p);

//  A request in flight (a long poll) is given up, failing with "cancelled",
//  as soon as fn (arg) returns true; asked about once a second or more.
//  For an actor that must stop without waiting out a 20 s poll.
typedef bool (rp_sqs_cancel_fn) (void *arg);
void rp_sqs_set_cancel (rp_sqs_t *self, rp_sqs_cancel_fn *fn, void *arg);

//  Long poll: up to max (1..10) messages, waiting up to wait_s (0..20),
//  hidden for visibility_s (0: the queue's default). *messages may be empty.
int rp_sqs_receive (rp_sqs_t *self, const char *queue_url, int max, int wait_s, int visibility_s,
                    rp_sqs_message_t **messages, size_t *count, char *err, size_t errlen);
void rp_sqs_messages_free (rp_sqs_message_t **messages, size_t count);

int rp_sqs_delete (rp_sqs_t *self, const char *queue_url, const char *receipt, char *err, size_t errlen);
//  Keep a message hidden for timeout_s more (0..43200) from now.
int rp_sqs_change_visibility (rp_sqs_t *self, const char *queue_url, const char *receipt, int timeout_s,
                              char *err, size_t errlen);

//  Send one message (message_id may be NULL).
int rp_sqs_send (rp_sqs_t *self, const char *queue_url, const char *body, char message_id [128],
                 char *err, size_t errlen);
//  Send up to 10 messages in one request; *failed counts those SQS refused
//  (the call itself fails only when the request does). trace_header: the
//  X-Ray trace each message carries (the AWSTraceHeader system
//  attribute, engine/trace.h), or NULL.
int rp_sqs_send_batch (rp_sqs_t *self, const char *queue_url, const char *const *bodies, size_t count,
                       const char *trace_header, size_t *failed, char *err, size_t errlen);

#endif
