/*  tests/test_s3_event.c: reading S3 event notifications (engine/aws/s3_event.c)
    as S3 delivers them to SQS: AWS's documented record layout, URL-encoded
    keys, the test event, multi-record messages, and hostile bodies.
*/
#include <criterion/criterion.h>
#include <string.h>

#include "engine/aws/s3_event.h"

//  The shape AWS documents ("Event message structure"), trimmed of fields we ignore
static const char *s_put =
    "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":\"eu-west-3\","
    "\"eventTime\":\"2026-11-29T12:00:00.000Z\",\"eventName\":\"ObjectCreated:Put\","
    "\"s3\":{\"s3SchemaVersion\":\"1.0\",\"configurationId\":\"ingest\","
    "\"bucket\":{\"name\":\"photos\",\"arn\":\"arn:aws:s3:::photos\"},"
    "\"object\":{\"key\":\"incoming/alice/IMG+0001+%28copy%29+%C3%A9t%C3%A9.jpg\",\"size\":2718281,"
    "\"eTag\":\"0123456789abcdef0123456789abcdef\",\"sequencer\":\"0A1B2C3D4E5F678901\"}}}]}";

Test (s3_event, object_created_with_an_encoded_key)
{
    rp_s3_object_event_t *events = NULL;
    size_t count = 0;
    char err [256];
    cr_assert_eq (rp_s3_events_parse (s_put, &events, &count, err, sizeof err), 1, "%s", err);
    cr_assert_eq (count, 1);
    cr_assert_str_eq (events [0].event, "ObjectCreated:Put");
    cr_assert_str_eq (events [0].bucket, "photos");
    cr_assert_str_eq (events [0].key, "incoming/alice/IMG 0001 (copy) été.jpg");
    cr_assert_str_eq (events [0].etag, "0123456789abcdef0123456789abcdef");
    cr_assert_eq (events [0].size, 2718281);
    rp_s3_events_free (&events, count);
    cr_assert_null (events);
}

Test (s3_event, test_events_and_removals_announce_nothing)
{
    rp_s3_object_event_t *events = NULL;
    size_t count = 9;
    char err [256];
    const char *test = "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Time\":\"2026-11-29T12:00:00.000Z\","
                       "\"Bucket\":\"photos\",\"RequestId\":\"5582815E1AEA5ADF\",\"HostId\":\"8cLeGAmw\"}";
    cr_assert_eq (rp_s3_events_parse (test, &events, &count, err, sizeof err), 0, "%s", err);
    cr_assert_eq (count, 0);
    cr_assert_null (events);
    const char *removed = "{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectRemoved:Delete\","
                          "\"s3\":{\"bucket\":{\"name\":\"photos\"},\"object\":{\"key\":\"a.jpg\"}}}]}";
    cr_assert_eq (rp_s3_events_parse (removed, &events, &count, err, sizeof err), 0, "%s", err);
    //  Several records: the created ones, in order
    const char *mixed = "{\"Records\":["
        "{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:CompleteMultipartUpload\","
        "\"s3\":{\"bucket\":{\"name\":\"photos\"},\"object\":{\"key\":\"big.jpg\",\"size\":41943040}}},"
        "{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectRemoved:Delete\","
        "\"s3\":{\"bucket\":{\"name\":\"photos\"},\"object\":{\"key\":\"gone.jpg\"}}},"
        "{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Copy\","
        "\"s3\":{\"bucket\":{\"name\":\"photos\"},\"object\":{\"key\":\"copy.jpg\"}}}]}";
    cr_assert_eq (rp_s3_events_parse (mixed, &events, &count, err, sizeof err), 2, "%s", err);
    cr_assert_str_eq (events [0].key, "big.jpg");
    cr_assert_eq (events [0].size, 41943040);
    cr_assert_str_eq (events [1].key, "copy.jpg");
    cr_assert_eq (events [1].size, -1);
    cr_assert_str_eq (events [1].etag, "");
    rp_s3_events_free (&events, count);
}

Test (s3_event, what_is_not_a_notification_is_refused_with_a_reason)
{
    const char *bodies [] = {
        NULL, "", "not json", "[]", "{}", "{\"Records\":{}}",
        "{\"Records\":[{\"eventName\":\"ObjectCreated:Put\"}]}",
        "{\"Records\":[{\"eventSource\":\"aws:sqs\",\"eventName\":\"ObjectCreated:Put\","
        "\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"k\"}}}]}",
        "{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\","
        "\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"bad%zzescape\"}}}]}",
        "{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\","
        "\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"nul%00byte\"}}}]}",
        "{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\","
        "\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"trailing%4\"}}}]}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies [0]; i++) {
        rp_s3_object_event_t *events = NULL;
        size_t count = 0;
        char err [256] = "";
        cr_assert_eq (rp_s3_events_parse (bodies [i], &events, &count, err, sizeof err), -1, "body %zu", i);
        cr_assert_null (events);
        cr_assert (strlen (err) > 10, "body %zu: the reason is empty", i);
    }
    //  A key longer than S3 allows
    char key [4000];
    memset (key, 'a', sizeof key - 1);
    key [sizeof key - 1] = 0;
    char out [8];
    cr_assert_eq (rp_s3_key_decode (key, out, sizeof out), -1);
}
