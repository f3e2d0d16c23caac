/*  tests/fuzz/sqs.c: SQS's query protocol answers (engine/aws/sqs.c).

    The input is an answer's body, as SQS (or a stand-in, or whatever
    answers at the endpoint) sends it: libxml2 reads it and the client
    turns it into the JSON protocol's document (rp_sqs_query_decode,
    engine/aws/sqs_private.h), then a ReceiveMessage answer into messages
    (rp_sqs_receive_read), as rp_sqs_receive does after its POST. Checked:
    an answer that cannot be read says why; a document is always an
    object; every message has an id, a receipt and a body, and a receive
    count of at least 1 (sqs.h: "1 the first time"; the ingest bridge
    computes its backoff from it).

    Seeds: tests/fuzz/corpus/sqs (answers of each action, errors, entities);
    dictionary: tests/fuzz/sqs.dict.
*/
#include "engine/aws/sqs_private.h"
#include "tests/fuzz/fuzz.h"

#include <libxml/parser.h>

//  libxml2 writes some errors (a bad encoding) to stderr whatever the
//  parse options say; here they would only slow the fuzzer down
static void
s_quiet (void *ctx, const char *msg, ...)
{
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    xmlInitParser ();                   //  as rp_sqs_new does for the query protocol
    xmlSetGenericErrorFunc (NULL, s_quiet);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;                       //  s_call never decodes an empty answer
    char why [256] = "";
    json_t *doc = rp_sqs_query_decode ((const char *) data, size, why, sizeof why);
    RP_FUZZ_CHECK (doc || why [0], "an unreadable answer without a reason");
    if (!doc)
        return 0;
    RP_FUZZ_CHECK (json_is_object (doc), "the document is not an object");
    rp_sqs_message_t *messages = NULL;
    size_t count = 0;
    char err [256] = "";
    int rc = rp_sqs_receive_read (doc, "http://127.0.0.1:9324/123456789012/work", &messages, &count,
                                  err, sizeof err);
    RP_FUZZ_CHECK (rc == 0 || err [0], "refused without a reason");
    for (size_t i = 0; i < count; i++) {
        RP_FUZZ_CHECK (messages [i].id && messages [i].receipt && messages [i].body, "message %zu lacks a part", i);
        RP_FUZZ_CHECK (messages [i].receive_count >= 1, "message %zu was received %d times", i,
                       messages [i].receive_count);
    }
    rp_sqs_messages_free (&messages, count);
    json_decref (doc);
    return 0;
}
