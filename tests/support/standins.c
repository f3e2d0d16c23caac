/*  tests/support/standins.c: see standins.h. */
#include "tests/support/standins.h"
#include "engine/aws/sqs.h"
#include "tests/support/http.h"
#include "tests/support/testdata.h"

#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t
rp_test_standin_start (const char *script, char *const args [], const char *probe, int *port,
                       const char *log)
{
    const char *source = getenv ("RP_SOURCE_DIR");
    cr_assert_not_null (source, "RP_SOURCE_DIR (set by ctest) names the source tree");
    char path [512], number [16];
    snprintf (path, sizeof path, "%s/tools/aws/%s", source, script);
    *port = rp_test_free_port ();
    snprintf (number, sizeof number, "%d", *port);
    //  The .mjs stand-ins run on Node, the .py ones (moto) on python3
    size_t len = strlen (script);
    char *interpreter = len > 3 && strcmp (script + len - 3, ".py") == 0 ? "python3" : "node";
    char *argv [32] = { interpreter, path, "--port", number };
    int argc = 4;
    for (int i = 0; args && args [i] && argc < 31; i++)
        argv [argc++] = args [i];
    argv [argc] = NULL;
    pid_t pid = fork ();
    cr_assert_geq (pid, 0);
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGTERM);     //  it goes when the test goes
        FILE *out = freopen (log, "w", stdout);
        out = freopen (log, "a", stderr);
        (void) out;
        execvp (interpreter, argv);
        _exit (127);
    }
    char url [600];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/%s", *port, probe ? probe : "");
    for (int i = 0; i < 150; i++) {
        if (rp_test_http_status (url) > 0)
            return pid;
        if (waitpid (pid, NULL, WNOHANG) == pid) {
            //  Gone already (a missing package, say): its first words say why
            char line [300] = "";
            FILE *file = fopen (log, "r");
            if (file && !fgets (line, sizeof line, file))
                line [0] = 0;
            if (file)
                fclose (file);
            cr_assert_fail ("%s exited before it answered (log: %s): %s", script, log, line);
        }
        usleep (100 * 1000);
    }
    cr_assert_fail ("%s did not start (log: %s)", script, log);
    return -1;
}

void
rp_test_standin_stop (pid_t pid)
{
    if (pid > 0) {
        kill (pid, SIGTERM);
        rp_test_wait (pid, 10000);
    }
}

bool
rp_test_aws_log_wait (const rp_test_aws_t *aws, const char *needle, int count, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (rp_test_count_in_file (aws->log, needle) >= count)
            return true;
        usleep (50 * 1000);
    }
    return false;
}

void
rp_test_aws_start (rp_test_aws_t *aws, const char *name, const char *prefixes)
{
    cr_assert_eq (access (RP_TEST_AWS_CLI, X_OK), 0,
                  "%s is missing: tools/bootstrap.sh --test installs Debian's awscli", RP_TEST_AWS_CLI);
    memset (aws, 0, sizeof *aws);
    char *dir = rp_test_tmpdir (name);
    cr_assert_not_null (dir);
    snprintf (aws->dir, sizeof aws->dir, "%s", dir);
    free (dir);
    char objects [320], sqs_port [16];
    snprintf (objects, sizeof objects, "%s/objects", aws->dir);
    snprintf (aws->log, sizeof aws->log, "%s/standins.log", aws->dir);
    int sqs = rp_test_free_port ();
    snprintf (sqs_port, sizeof sqs_port, "%d", sqs);
    char *args [8] = { "--sqs-port", sqs_port, "--dir", objects, NULL };
    if (prefixes) {
        args [4] = "--prefix";
        args [5] = (char *) prefixes;
        args [6] = NULL;
    }
    int s3 = 0;
    aws->pid = rp_test_standin_start ("standins.mjs", args, "photos", &s3, aws->log);
    //  "ready" once both serve and the s3:TestEvent is on the ingest queue
    cr_assert (rp_test_aws_log_wait (aws, "ready s3=", 1, 15000), "the stand-ins never said ready (log: %s)", aws->log);
    snprintf (aws->s3, sizeof aws->s3, "http://127.0.0.1:%d", s3);
    snprintf (aws->sqs, sizeof aws->sqs, "http://127.0.0.1:%d", sqs);
    snprintf (aws->ingest, sizeof aws->ingest, "%s/123456789012/ingest", aws->sqs);
    snprintf (aws->events, sizeof aws->events, "%s/123456789012/events", aws->sqs);
    snprintf (aws->dlq, sizeof aws->dlq, "%s/123456789012/ingest-dlq", aws->sqs);
}

void
rp_test_aws_stop (rp_test_aws_t *aws)
{
    rp_test_standin_stop (aws->pid);
    aws->pid = 0;
}

int
rp_test_aws_cli (const rp_test_aws_t *aws, const char *endpoint, char **out, const char *format, ...)
{
    char args [4096];
    va_list ap;
    va_start (ap, format);
    int n = vsnprintf (args, sizeof args, format, ap);
    va_end (ap);
    cr_assert (n > 0 && (size_t) n < sizeof args, "aws CLI arguments too long");
    char command [6000];
    snprintf (command, sizeof command,
              "env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_S3 "
              "-u AWS_ENDPOINT_URL_SQS -u AWS_CA_BUNDLE AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER "
              "AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null "
              "AWS_SHARED_CREDENTIALS_FILE=/dev/null %s --endpoint-url %s %s 2>%s/aws.err",
              RP_TEST_AWS_CLI, endpoint, args, aws->dir);
    return rp_test_run (command, out);
}

char *
rp_test_aws_err (const rp_test_aws_t *aws)
{
    char path [320];
    snprintf (path, sizeof path, "%s/aws.err", aws->dir);
    size_t len = 0;
    return rp_test_read_file (path, &len);
}

char *
rp_test_aws_ls (const rp_test_aws_t *aws)
{
    char *listing = NULL;
    int rc = rp_test_aws_cli (aws, aws->s3, &listing, "s3 ls --recursive s3://photos/");
    //  An empty bucket lists nothing and exits 1
    if (rc != 0 && listing && !*listing)
        return listing;
    cr_assert_eq (rc, 0, "aws s3 ls failed: %s", rp_test_aws_err (aws));
    return listing;
}

void
rp_test_aws_events (const rp_test_aws_t *aws, zhash_t *ids, int timeout_ms, rp_test_events_t *events)
{
    memset (events, 0, sizeof *events);
    events->announced = zhash_new ();
    char err [512];
    rp_sqs_config_t config = { .endpoint = aws->sqs, .region = "us-east-1", .credentials = { "S3RVER", "S3RVER", NULL } };
    rp_sqs_t *client = rp_sqs_new (&config, err, sizeof err);
    cr_assert_not_null (client, "%s", err);
    int64_t quiet_since = zclock_mono ();
    for (int64_t end = zclock_mono () + timeout_ms; zclock_mono () < end; ) {
        rp_sqs_message_t *batch = NULL;
        size_t count = 0;
        cr_assert_eq (rp_sqs_receive (client, aws->events, 10, 1, 300, &batch, &count, err, sizeof err), 0, "%s", err);
        for (size_t m = 0; m < count; m++) {
            events->messages++;
            json_error_t jerr;
            json_t *body = json_loads (batch [m].body, 0, &jerr);
            cr_assert_not_null (body, "an event that is not JSON (%s): %s", jerr.text, batch [m].body);
            const char *type = json_string_value (json_object_get (body, "type")) ?: "";
            const char *id = json_string_value (json_object_get (body, "id")) ?: "";
            if (strcmp (type, "photo.complete") != 0 || !zhash_lookup (ids, id))
                events->others++;
            else
            if (zhash_insert (events->announced, id, "") != 0)
                events->repeats++;
            json_decref (body);
        }
        rp_sqs_messages_free (&batch, count);
        if (count)
            quiet_since = zclock_mono ();
        //  All announced, and a second with nothing more
        if (zhash_size (events->announced) >= zhash_size (ids) && zclock_mono () - quiet_since > 1000)
            break;
    }
    rp_sqs_destroy (&client);
}
