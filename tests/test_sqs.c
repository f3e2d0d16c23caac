/*  tests/test_sqs.c: the SQS client (engine/aws/sqs.c, JSON protocol)
    against a real SQS protocol server, local-aws-sqs (npm, started by
    tools/aws/sqs.mjs): sends and batches, long polls, receive counts,
    visibility extension, deletes, the redrive policy's dead-letter queue,
    and errors that name their cause.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/sqs.h"
#include "support/standins.h"
#include "support/testdata.h"

typedef struct {
    pid_t pid;
    int port;
    char work [300];
    char failing [300];
    char dlq [300];
    rp_sqs_t *sqs;
} s_fixture_t;

static void
s_start (s_fixture_t *fx)
{
    char *dir = rp_test_tmpdir ("sqs");
    char log [300];
    snprintf (log, sizeof log, "%s/sqs.log", dir);
    free (dir);
    //  failing's messages go to failing-dlq after 2 receives
    fx->pid = rp_test_standin_start ("sqs.mjs", (char *[]) { "--queue", "work", "--queue", "failing",
                                                             "--dlq", "failing-dlq:failing:2", NULL },
                                     "", &fx->port, log);
    snprintf (fx->work, sizeof fx->work, "http://127.0.0.1:%d/123456789012/work", fx->port);
    snprintf (fx->failing, sizeof fx->failing, "http://127.0.0.1:%d/123456789012/failing", fx->port);
    snprintf (fx->dlq, sizeof fx->dlq, "http://127.0.0.1:%d/123456789012/failing-dlq", fx->port);
    rp_sqs_config_t config = { .region = "us-east-1", .credentials = { "AKIDEXAMPLE", "secret", NULL } };
    char err [256];
    fx->sqs = rp_sqs_new (&config, err, sizeof err);
    cr_assert_not_null (fx->sqs, "%s", err);
}

static void
s_stop (s_fixture_t *fx)
{
    rp_sqs_destroy (&fx->sqs);
    rp_test_standin_stop (fx->pid);
}

Test (sqs, send_receive_delete_and_batches, .timeout = 60)
{
    s_fixture_t fx;
    s_start (&fx);
    char err [512], id [128];
    const char *body = "{\"Records\":[{\"s3\":{\"object\":{\"key\":\"incoming/alice/IMG+1.jpg\"}}}]}";
    cr_assert_eq (rp_sqs_send (fx.sqs, fx.work, body, id, err, sizeof err), 0, "%s", err);
    cr_assert (*id);
    rp_sqs_message_t *messages = NULL;
    size_t count = 0;
    cr_assert_eq (rp_sqs_receive (fx.sqs, fx.work, 10, 1, 30, &messages, &count, err, sizeof err), 0, "%s", err);
    cr_assert_eq (count, 1);
    cr_assert_str_eq (messages [0].body, body);
    cr_assert_str_eq (messages [0].id, id);
    cr_assert_eq (messages [0].receive_count, 1);
    cr_assert_eq (rp_sqs_delete (fx.sqs, fx.work, messages [0].receipt, err, sizeof err), 0, "%s", err);
    rp_sqs_messages_free (&messages, count);

    //  A batch of ten, received in long polls, deleted
    const char *bodies [10];
    char texts [10][32];
    for (int i = 0; i < 10; i++) {
        snprintf (texts [i], sizeof texts [i], "photo.complete %d", i);
        bodies [i] = texts [i];
    }
    size_t failed = 99;
    cr_assert_eq (rp_sqs_send_batch (fx.sqs, fx.work, bodies, 10, &failed, err, sizeof err), 0, "%s", err);
    cr_assert_eq (failed, 0);
    int seen = 0;
    for (int round = 0; round < 10 && seen < 10; round++) {
        cr_assert_eq (rp_sqs_receive (fx.sqs, fx.work, 10, 1, 30, &messages, &count, err, sizeof err), 0, "%s", err);
        for (size_t i = 0; i < count; i++) {
            cr_assert (strncmp (messages [i].body, "photo.complete ", 15) == 0, "%s", messages [i].body);
            cr_assert_eq (rp_sqs_delete (fx.sqs, fx.work, messages [i].receipt, err, sizeof err), 0, "%s", err);
            seen++;
        }
        rp_sqs_messages_free (&messages, count);
    }
    cr_assert_eq (seen, 10);
    cr_assert_eq (rp_sqs_receive (fx.sqs, fx.work, 10, 1, 30, &messages, &count, err, sizeof err), 0, "%s", err);
    cr_assert_eq (count, 0, "deleted messages do not come back");
    cr_assert_eq (rp_sqs_send_batch (fx.sqs, fx.work, bodies, 0, &failed, err, sizeof err), -1);
    s_stop (&fx);
}

Test (sqs, visibility_receive_counts_and_the_dead_letter_queue, .timeout = 60)
{
    s_fixture_t fx;
    s_start (&fx);
    char err [512];
    cr_assert_eq (rp_sqs_send (fx.sqs, fx.work, "slow work", NULL, err, sizeof err), 0, "%s", err);
    rp_sqs_message_t *messages = NULL;
    size_t count = 0;
    //  Received, hidden for 1 s, extended to 4 s: not back after 2 s
    cr_assert_eq (rp_sqs_receive (fx.sqs, fx.work, 1, 1, 1, &messages, &count, err, sizeof err), 0, "%s", err);
    cr_assert_eq (count, 1);
    cr_assert_eq (rp_sqs_change_visibility (fx.sqs, fx.work, messages [0].receipt, 4, err, sizeof err), 0, "%s", err);
    rp_sqs_messages_free (&messages, count);
    sleep (2);
    cr_assert_eq (rp_sqs_receive (fx.sqs, fx.work, 1, 0, 1, &messages, &count, err, sizeof err), 0, "%s", err);
    cr_assert_eq (count, 0, "an extended message stays hidden");
    //  Back after the extension, received again
    sleep (3);
    cr_assert_eq (rp_sqs_receive (fx.sqs, fx.work, 1, 0, 1, &messages, &count, err, sizeof err), 0, "%s", err);
    cr_assert_eq (count, 1, "back once the extended visibility ran out");
    cr_assert_geq (messages [0].receive_count, 2);
    cr_assert_eq (rp_sqs_delete (fx.sqs, fx.work, messages [0].receipt, err, sizeof err), 0, "%s", err);
    rp_sqs_messages_free (&messages, count);

    //  A message never deleted: past maxReceiveCount (2) the queue's redrive
    //  policy moves it to the dead-letter queue
    cr_assert_eq (rp_sqs_send (fx.sqs, fx.failing, "keeps failing", NULL, err, sizeof err), 0, "%s", err);
    count = 0;
    for (int i = 0; i < 10 && count == 0; i++) {
        rp_sqs_message_t *again = NULL;
        size_t n = 0;
        cr_assert_eq (rp_sqs_receive (fx.sqs, fx.failing, 1, 0, 1, &again, &n, err, sizeof err), 0, "%s", err);
        rp_sqs_messages_free (&again, n);
        usleep (1200 * 1000);
        cr_assert_eq (rp_sqs_receive (fx.sqs, fx.dlq, 1, 0, 30, &messages, &count, err, sizeof err), 0, "%s", err);
    }
    cr_assert_eq (count, 1, "the message that kept failing is in the dead-letter queue");
    cr_assert_str_eq (messages [0].body, "keeps failing");
    rp_sqs_messages_free (&messages, count);
    s_stop (&fx);
}

Test (sqs, errors_name_their_cause, .timeout = 60)
{
    s_fixture_t fx;
    s_start (&fx);
    char err [512] = "", missing [300];
    snprintf (missing, sizeof missing, "http://127.0.0.1:%d/123456789012/no-such-queue", fx.port);
    cr_assert_eq (rp_sqs_send (fx.sqs, missing, "x", NULL, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "SendMessage"), "%s", err);
    cr_assert_not_null (strstr (err, "no-such-queue"), "%s", err);
    cr_assert (strstr (err, "NonExistentQueue") || strstr (err, "QueueDoesNotExist"), "%s", err);
    rp_sqs_message_t *messages = NULL;
    size_t count = 0;
    cr_assert_eq (rp_sqs_receive (fx.sqs, fx.work, 11, 1, 30, &messages, &count, err, sizeof err), -1);
    cr_assert_eq (rp_sqs_receive (fx.sqs, fx.work, 1, 21, 30, &messages, &count, err, sizeof err), -1);
    cr_assert_eq (rp_sqs_receive (fx.sqs, "ftp://x/y", 1, 1, 30, &messages, &count, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "ftp://x/y"), "%s", err);
    s_stop (&fx);
    //  Nobody listening
    rp_sqs_config_t config = { .region = "us-east-1", .credentials = { "AKIDEXAMPLE", "secret", NULL } };
    rp_sqs_t *sqs = rp_sqs_new (&config, err, sizeof err);
    cr_assert_eq (rp_sqs_send (sqs, fx.work, "x", NULL, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "cannot reach SQS at 127.0.0.1"), "%s", err);
    rp_sqs_destroy (&sqs);
}
