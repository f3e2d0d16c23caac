/*  tests/fuzz/s3_event.c: S3 event notifications and their keys
    (engine/aws/s3_event.c).

    The input is an SQS message body as the ingest bridge receives it:
    rp_s3_events_parse reads it (jansson), and every ObjectCreated record's
    key is decoded. The same bytes are also decoded as a key by themselves.
    Checked: a body refused says why; the count returned is the events
    given; each event is an ObjectCreated one with a bucket and a key no
    longer than S3 allows; a decoded key holds no NUL and fits its buffer.

    Seeds: tests/fuzz/corpus/s3_event (S3's own notifications, test events,
    encoded keys); dictionary: tests/fuzz/s3_event.dict.
*/
#include "engine/aws/s3_event.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *body = (char *) malloc (size + 1);
    if (!body)
        return 0;
    memcpy (body, data, size);
    body [size] = 0;

    rp_s3_object_event_t *events = NULL;
    size_t count = 0;
    char err [256] = "";
    int rc = rp_s3_events_parse (body, &events, &count, err, sizeof err);
    RP_FUZZ_CHECK (rc >= 0 || err [0], "refused without a reason");
    RP_FUZZ_CHECK (rc < 0 ? count == 0 && !events : (size_t) rc == count, "returned %d for %zu events", rc, count);
    for (size_t i = 0; i < count; i++) {
        RP_FUZZ_CHECK (strncmp (events [i].event, "ObjectCreated:", 14) == 0, "event %s", events [i].event);
        RP_FUZZ_CHECK (events [i].bucket && events [i].key && events [i].etag, "event %zu lacks a part", i);
        RP_FUZZ_CHECK (strlen (events [i].key) <= 1024, "a key of %zu bytes", strlen (events [i].key));
    }
    rp_s3_events_free (&events, count);

    char key [64];
    if (rp_s3_key_decode (body, key, sizeof key) == 0)
        RP_FUZZ_CHECK (strlen (key) < sizeof key, "the decoded key overran");
    free (body);
    return 0;
}
