/*  tests/test_standins.c: the local AWS stand-ins wired as AWS wires them
    (tools/aws/standins.mjs): objects put into the bucket with our S3
    client are announced on the ingest queue as S3 event notifications,
    which our SQS client receives and engine/aws/s3_event.c reads back to
    the same bucket, key, size and ETag. This is the path the SQS ingest
    bridge (issue 6) will take.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/aws/s3.h"
#include "engine/aws/s3_event.h"
#include "engine/aws/sqs.h"
#include "tests/support/http.h"
#include "tests/support/standins.h"
#include "tests/support/testdata.h"

//  A file of `size` bytes at path.
static void
s_file (const char *path, size_t size)
{
    FILE *file = fopen (path, "wb");
    cr_assert_not_null (file);
    for (size_t i = 0; i < size; i++)
        fputc ((int) ((i * 7919) & 0xFF), file);
    fclose (file);
}

Test (standins, objects_created_are_announced_on_the_ingest_queue, .timeout = 120)
{
    char *dir = rp_test_tmpdir ("standins");
    char objects [300], log [300], sqs_port [16];
    snprintf (objects, sizeof objects, "%s/objects", dir);
    snprintf (log, sizeof log, "%s/standins.log", dir);
    int sqs = rp_test_free_port ();
    snprintf (sqs_port, sizeof sqs_port, "%d", sqs);
    int s3_port = 0;
    pid_t pid = rp_test_standin_start ("standins.mjs", (char *[]) { "--sqs-port", sqs_port, "--dir", objects, NULL },
                                       "photos", &s3_port, log);
    //  The SQS side may come up a moment after S3
    char probe [128];
    snprintf (probe, sizeof probe, "http://127.0.0.1:%d/", sqs);
    for (int i = 0; i < 50 && rp_test_http_status (probe) == 0; i++)
        usleep (100 * 1000);

    char endpoint [64], ingest [128], err [512], etag [RP_S3_ETAG_MAX], big_etag [RP_S3_ETAG_MAX];
    snprintf (endpoint, sizeof endpoint, "http://127.0.0.1:%d", s3_port);
    snprintf (ingest, sizeof ingest, "http://127.0.0.1:%d/123456789012/ingest", sqs);
    rp_s3_config_t s3_config = { .endpoint = endpoint, .region = "us-east-1", .bucket = "photos",
                                 .credentials = { "S3RVER", "S3RVER", NULL }, .multipart_threshold = 6 << 20,
                                 .part_size = 5 << 20 };
    rp_s3_t *s3 = rp_s3_new (&s3_config, err, sizeof err);
    cr_assert_not_null (s3, "%s", err);
    rp_sqs_config_t sqs_config = { .region = "us-east-1", .credentials = { "S3RVER", "S3RVER", NULL } };
    rp_sqs_t *client = rp_sqs_new (&sqs_config, err, sizeof err);
    cr_assert_not_null (client, "%s", err);

    char small [400], big [400];
    snprintf (small, sizeof small, "%s/small.jpg", dir);
    snprintf (big, sizeof big, "%s/big.jpg", dir);
    s_file (small, 12345);
    s_file (big, 11 << 20);
    const char *key = "incoming/alice/IMG 0001 (1) été+x.jpg";
    cr_assert_eq (rp_s3_put_file (s3, key, small, "image/jpeg", etag, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_s3_put_file (s3, "elsewhere/not-announced.jpg", small, NULL, etag, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_s3_put_file (s3, "incoming/bob/big.jpg", big, NULL, big_etag, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_s3_put_file (s3, key, small, "image/jpeg", etag, err, sizeof err), 0, "%s", err);

    //  Receive until both objects were announced: the test event announces nothing
    bool saw_small = false, saw_big = false;
    int tests = 0, others = 0;
    for (int round = 0; round < 20 && !(saw_small && saw_big); round++) {
        rp_sqs_message_t *messages = NULL;
        size_t count = 0;
        cr_assert_eq (rp_sqs_receive (client, ingest, 10, 1, 30, &messages, &count, err, sizeof err), 0, "%s", err);
        for (size_t m = 0; m < count; m++) {
            rp_s3_object_event_t *events = NULL;
            size_t n = 0;
            int rc = rp_s3_events_parse (messages [m].body, &events, &n, err, sizeof err);
            cr_assert_geq (rc, 0, "%s: %s", err, messages [m].body);
            if (rc == 0)
                tests++;
            for (size_t e = 0; e < n; e++) {
                cr_assert_str_eq (events [e].bucket, "photos");
                if (strcmp (events [e].key, key) == 0) {
                    saw_small = true;
                    cr_assert_eq (events [e].size, 12345);
                    cr_assert_str_eq (events [e].etag, etag);
                }
                else
                if (strcmp (events [e].key, "incoming/bob/big.jpg") == 0) {
                    saw_big = true;
                    cr_assert_eq (events [e].size, 11 << 20);
                }
                else
                    others++;
            }
            rp_s3_events_free (&events, n);
            cr_assert_eq (rp_sqs_delete (client, ingest, messages [m].receipt, err, sizeof err), 0, "%s", err);
        }
        rp_sqs_messages_free (&messages, count);
    }
    cr_assert (saw_small, "the object put under incoming/ was not announced (its key decoded back)");
    cr_assert (saw_big, "the multipart object under incoming/ was not announced");
    cr_assert_eq (tests, 1, "one s3:TestEvent, read as announcing nothing");
    cr_assert_eq (others, 0, "only objects under the prefix are announced");
    rp_sqs_destroy (&client);
    rp_s3_destroy (&s3);
    rp_test_standin_stop (pid);
    free (dir);
}
