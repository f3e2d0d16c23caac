/*  engine/aws/sqs_private.h: how the SQS client reads answers, without
    the network. For the SQS fuzz target (tests/fuzz/sqs.c) and nothing
    else: everything else calls the actions in sqs.h, which read every
    answer through these.
*/
#ifndef RP_SQS_PRIVATE_H
#define RP_SQS_PRIVATE_H

#include <jansson.h>
#include "engine/aws/sqs.h"

//  A query protocol answer (XML, len bytes; non-empty) as the JSON
//  protocol's document (caller owns), or NULL with why it cannot be read.
json_t *rp_sqs_query_decode (const char *data, size_t len, char *why, size_t whylen);

//  ReceiveMessage's answer, in the JSON protocol's shape, as the messages
//  rp_sqs_receive gives (*messages: caller frees with rp_sqs_messages_free).
//  0, or -1 with err (naming queue_url) when memory runs out.
int rp_sqs_receive_read (json_t *answer, const char *queue_url, rp_sqs_message_t **messages,
                         size_t *count, char *err, size_t errlen);

#endif
