/*  tests/test_observability.c: what the operators' runbook reads, checked
    on a real `rapidphoto serve`.

    Logs: the runbook searches CloudWatch Logs Insights with
        filter @message like /ERROR|Exception|error/
        parse @message /duration=(?<duration>\d+)/ | filter duration > 1000
    A serve handles requests (logins, lists, 4xx), uploads whose photos are
    processed (resize and exif jobs, the pipeline's commits) and a few
    errors (a failing disk: 503s); then both patterns are applied, as
    POSIX regular expressions, to every line it wrote, in both log.format
    text and json (where @message is the whole line, as CloudWatch shows
    it, and the members are the fields Logs Insights discovers). Every
    request line and every job line must give a duration, every ERROR line
    must match the error pattern, and in JSON duration is a number equal
    to the one parsed from the message.

    Tracing: a serve with AWS_XRAY_DAEMON_ADDRESS on a UDP listener of the
    test's (the X-Ray daemon's side) answers requests with and without the
    ALB's X-Amzn-Trace-Id (Sampled=1, Sampled=0), a login, a 404, an upload
    whose photo is processed; every datagram is checked as the daemon would
    take it (the header line, one document, under 64 KiB) and every
    document as X-Ray would (ids, the trace id's form, times in order,
    every parent known, error on a 4xx), and the trace of each request is
    followed: its answer's header, its log lines, its segment and the
    subsegments under it (database; the photo's own trace with its resize
    and exif jobs). The complete documents are then sent to moto's X-Ray
    API with the aws CLI and read back (tests/observability/xray_moto.py).
*/
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <regex.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/db/db.h"
#include "engine/trace.h"
#include "tests/support/server.h"
#include "tests/support/testdata.h"
#include "tests/support/xray.h"

//  What one log line is, whichever the format
typedef struct {
    char level [8];
    char source [32];
    const char *message;            //  the text after the source (borrowed)
    json_t *object;                 //  the JSON line, or NULL for text
} s_line_t;

typedef struct {
    int lines, requests, jobs, commits, errors;
    int requests_matched, jobs_matched, commits_matched, errors_matched;
    int slow;                       //  lines the runbook's `duration > 1000` keeps
    int traced;                     //  request lines carrying trace=
} s_counts_t;

//  Split a line (text or JSON) into level, source and message; false when
//  it is neither
static bool
s_split (char *line, bool json, s_line_t *out)
{
    memset (out, 0, sizeof *out);
    if (json) {
        json_error_t error;
        out->object = json_loads (line, 0, &error);
        cr_assert_not_null (out->object, "a JSON log line does not parse (%s): %s", error.text, line);
        const char *level = json_string_value (json_object_get (out->object, "level"));
        const char *source = json_string_value (json_object_get (out->object, "source"));
        out->message = json_string_value (json_object_get (out->object, "message"));
        cr_assert (level && source && out->message
                   && json_is_string (json_object_get (out->object, "time")), "members missing: %s", line);
        snprintf (out->level, sizeof out->level, "%s", level);
        snprintf (out->source, sizeof out->source, "%s", source);
        return true;
    }
    //  2026-11-29T02:10:00.123Z INFO  source  text
    char stamp [40];
    int used = 0;
    if (sscanf (line, "%39s %7s %31s %n", stamp, out->level, out->source, &used) < 3 || used == 0)
        return false;
    out->message = line + used;
    return true;
}

static void
s_run_queries (const char *log_path, bool json, s_counts_t *counts)
{
    regex_t error_query, duration_query;
    cr_assert_eq (regcomp (&error_query, "ERROR|Exception|error", REG_EXTENDED), 0);
    cr_assert_eq (regcomp (&duration_query, "duration=([0-9]+)", REG_EXTENDED), 0);
    FILE *file = fopen (log_path, "r");
    cr_assert_not_null (file, "%s", log_path);
    memset (counts, 0, sizeof *counts);
    char line [8192];
    while (fgets (line, sizeof line, file)) {
        line [strcspn (line, "\n")] = 0;
        s_line_t parsed;
        if (!s_split (line, json, &parsed))
            continue;
        counts->lines++;
        //  @message is the whole line, as CloudWatch stores it
        regmatch_t match [2];
        bool has_duration = regexec (&duration_query, line, 2, match, 0) == 0;
        long long duration = has_duration ? strtoll (line + match [1].rm_so, NULL, 10) : -1;
        if (has_duration && duration > 1000)
            counts->slow++;
        if (json && has_duration) {
            //  The field Logs Insights discovers is that same number
            json_t *field = json_object_get (parsed.object, "duration");
            cr_expect (json_is_integer (field) && json_integer_value (field) == duration,
                       "duration is not the number %lld: %s", duration, line);
        }
        bool is_request = streq (parsed.source, "gateway") && strncmp (parsed.message, "req=", 4) == 0
                       && strstr (parsed.message, " status=");
        bool is_job = (streq (parsed.source, "resize") || streq (parsed.source, "exif"))
                   && strncmp (parsed.message, "job=", 4) == 0;
        bool is_commit = streq (parsed.source, "pipeline") && strncmp (parsed.message, "photo=", 6) == 0
                      && strstr (parsed.message, " attempt=")
                      && (strstr (parsed.message, " complete") || strstr (parsed.message, " failed"));
        counts->requests += is_request;
        counts->requests_matched += is_request && has_duration;
        counts->jobs += is_job;
        counts->jobs_matched += is_job && has_duration;
        counts->commits += is_commit;
        counts->commits_matched += is_commit && has_duration;
        if (is_request && strstr (parsed.message, " trace=1-")) {
            counts->traced++;
            if (json)
                cr_expect (json_is_string (json_object_get (parsed.object, "trace")), "%s", line);
        }
        if (json && is_request) {
            cr_expect (json_is_string (json_object_get (parsed.object, "req")), "%s", line);
            cr_expect (json_is_integer (json_object_get (parsed.object, "status")), "%s", line);
        }
        if (json && is_job) {
            cr_expect (json_is_string (json_object_get (parsed.object, "job")), "%s", line);
            cr_expect (json_is_string (json_object_get (parsed.object, "photo")), "%s", line);
        }
        if (streq (parsed.level, "ERROR")) {
            counts->errors++;
            counts->errors_matched += regexec (&error_query, line, 0, NULL, 0) == 0;
        }
        json_decref (parsed.object);
    }
    fclose (file);
    regfree (&error_query);
    regfree (&duration_query);
}

//  Upload one photo (a raw body); its id into id, the status returned
static long
s_upload (rp_test_server_t *server, const char *token, int variant, char *id)
{
    char path [600], name [32];
    snprintf (name, sizeof name, "obs%d.jpg", variant);
    rp_test_server_photo (server, name, variant, path, sizeof path);
    size_t len = 0;
    char *bytes = rp_test_read_file (path, &len);
    const char *headers [] = { "Content-Type: image/jpeg", "X-Filename: obs.jpg", NULL };
    rp_test_reply_t reply;
    long status = rp_test_request (server, "POST", "/api/v1/photos", token, headers, bytes, len, NULL, &reply);
    free (bytes);
    *id = 0;
    if (status == 202) {
        json_t *answer = rp_test_reply_json (&reply);
        const char *given = json_string_value (json_object_get (answer, "id"));
        if (!given)
            given = json_string_value (json_object_get (json_array_get (json_object_get (answer, "photos"), 0), "id"));
        cr_assert_not_null (given, "%s", reply.body);
        snprintf (id, RP_ID_MAX, "%s", given);
        json_decref (answer);
    }
    rp_test_reply_free (&reply);
    return status;
}

//  A serve in the given log.format handles requests, jobs and errors; then
//  the runbook's queries run over what it logged.
static void
s_serve_and_query (const char *name, const char *format)
{
    char setting [64];
    snprintf (setting, sizeof setting, "RAPIDPHOTO_LOG_FORMAT=%s", format);
    //  The 4th blob write of the process fails as a failing disk would
    const char *env [] = { setting, "RP_FAULT_DISK_WRITE=4", NULL };
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = name, .env = env });
    int requests = 1;               //  the start's /healthz
    char *token = rp_test_login (&server, "alice");
    requests++;
    rp_test_reply_t reply;
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos", token, NULL, NULL, 0, NULL, &reply), 200);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos", NULL, NULL, NULL, 0, NULL, &reply), 401);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/nothing", token, NULL, NULL, 0, NULL, &reply), 404);
    rp_test_reply_free (&reply);
    requests += 3;
    //  Uploads until the failing disk answers one with a 5xx
    char ids [8][RP_ID_MAX];
    int stored = 0, failed = 0;
    for (int i = 0; i < 8 && (failed == 0 || stored < 2); i++) {
        long status = s_upload (&server, token, 300 + i, ids [stored]);
        requests++;
        if (status == 202)
            stored++;
        else {
            cr_expect (status >= 500, "an upload is answered %ld", status);
            failed++;
        }
    }
    cr_assert_geq (stored, 2);
    cr_assert_geq (failed, 1, "the failing disk failed no upload");
    int done = 0;
    for (int i = 0; i < stored; i++) {
        char *final = rp_test_wait_final (&server, token, ids [i], 30000);
        requests++;             //  its last poll, at least
        done += streq (final, "complete") || streq (final, "failed");
        free (final);
    }
    cr_assert_eq (done, stored);
    free (token);
    rp_test_server_stop (&server);

    s_counts_t counts;
    s_run_queries (server.log, streq (format, "json"), &counts);
    cr_expect_geq (counts.requests, requests, "%d request lines for %d requests (%s)", counts.requests,
                   requests, server.log);
    cr_expect_eq (counts.requests_matched, counts.requests, "request lines without duration= (%s)", server.log);
    cr_expect_geq (counts.jobs, 2 * stored, "%d job lines for %d photos (%s)", counts.jobs, stored, server.log);
    cr_expect_eq (counts.jobs_matched, counts.jobs, "job lines without duration= (%s)", server.log);
    cr_expect_geq (counts.commits, stored, "%d commit lines (%s)", counts.commits, server.log);
    cr_expect_eq (counts.commits_matched, counts.commits, "commit lines without duration= (%s)", server.log);
    cr_expect_geq (counts.errors, failed, "the 5xx answers are not at level ERROR (%s)", server.log);
    cr_expect_eq (counts.errors_matched, counts.errors, "ERROR lines the error query misses (%s)", server.log);
}

Test (logs, text_lines_answer_the_runbooks_queries, .timeout = 120)
{
    s_serve_and_query ("obs-text", "text");
}

Test (logs, json_lines_answer_the_runbooks_queries, .timeout = 120)
{
    s_serve_and_query ("obs-json", "json");
}

//  ---------------------------------------------------------------------------
//  Tracing

//  The Root= of an X-Amzn-Trace-Id answer
static void
s_root (const rp_test_reply_t *reply, char root [RP_TRACE_ID_MAX])
{
    char value [RP_TRACE_HEADER_MAX] = "";
    cr_assert (rp_test_header_copy (reply, "X-Amzn-Trace-Id", value, sizeof value), "no X-Amzn-Trace-Id");
    cr_assert (strncmp (value, "Root=", 5) == 0, "%s", value);
    snprintf (root, RP_TRACE_ID_MAX, "%.35s", value + 5);
    cr_assert (rp_trace_id_valid (root), "%s", value);
}

Test (tracing, requests_and_jobs_reach_the_daemon_and_x_ray, .timeout = 180)
{
    rp_test_xray_t xray;
    rp_test_xray_open (&xray);
    //  Every new trace sampled; the ALB's Sampled= is obeyed either way
    const char *env [] = { xray.setting, "RAPIDPHOTO_TRACING_SAMPLE_RATE=1", NULL };
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "obs-trace", .env = env });
    char *token = rp_test_login (&server, "alice");

    //  From the ALB, sampled: its trace goes on, under its Parent
    const char *alb_parent = "53995c3f42cd8ad8";
    char alb [RP_TRACE_ID_MAX], alb_header [160];
    snprintf (alb, sizeof alb, "1-%08x-0123456789abcdef%08x", (unsigned) time (NULL), (unsigned) getpid ());
    snprintf (alb_header, sizeof alb_header, "X-Amzn-Trace-Id: Root=%s;Parent=%s;Sampled=1", alb, alb_parent);
    const char *alb_headers [] = { alb_header, NULL };
    rp_test_reply_t reply;
    char root [RP_TRACE_ID_MAX];
    cr_assert_eq (rp_test_request (&server, "GET", "/api/v1/photos", token, alb_headers, NULL, 0, NULL, &reply), 200);
    s_root (&reply, root);
    cr_expect_str_eq (root, alb, "the ALB's trace is answered");
    rp_test_reply_free (&reply);

    //  From the ALB, not sampled: nothing is sent for it
    char unsampled [RP_TRACE_ID_MAX], unsampled_header [160];
    snprintf (unsampled, sizeof unsampled, "1-%08x-fedcba9876543210%08x", (unsigned) time (NULL), (unsigned) getpid ());
    snprintf (unsampled_header, sizeof unsampled_header, "X-Amzn-Trace-Id: Root=%s;Sampled=0", unsampled);
    const char *unsampled_headers [] = { unsampled_header, NULL };
    cr_assert_eq (rp_test_request (&server, "GET", "/api/v1/photos", token, unsampled_headers, NULL, 0, NULL, &reply), 200);
    s_root (&reply, root);
    cr_expect_str_eq (root, unsampled);
    rp_test_reply_free (&reply);

    //  No header: a trace of our own; a 404 is an error
    char missing [RP_TRACE_ID_MAX];
    cr_assert_eq (rp_test_request (&server, "GET", "/api/v1/nothing", token, NULL, NULL, 0, NULL, &reply), 404);
    s_root (&reply, missing);
    rp_test_reply_free (&reply);

    //  A login: its database work under its segment
    char login_body [128];
    snprintf (login_body, sizeof login_body, "{\"username\":\"alice\",\"password\":\"correct horse battery\"}");
    cr_assert_eq (rp_test_json_request (&server, "POST", "/api/v1/auth/login", NULL, login_body, &reply), 200);
    char login [RP_TRACE_ID_MAX];
    s_root (&reply, login);
    rp_test_reply_free (&reply);

    //  An upload, processed: the photo's trace with its jobs
    char photo [RP_ID_MAX];
    cr_assert_eq (s_upload (&server, token, 400, photo), 202);
    char *final = rp_test_wait_final (&server, token, photo, 30000);
    cr_assert_str_eq (final, "complete");
    free (final);
    free (token);
    rp_test_server_stop (&server);

    json_t *documents = rp_test_xray_collect (&xray, 1000);
    json_t *complete = json_object ();
    rp_test_xray_check (documents, alb_parent, complete);
    json_t *doc;
    //  The ALB's request: a segment of ours under its Parent, with http
    cr_expect_eq (rp_test_xray_find (complete, alb, "rapid-photo-serve", alb_parent, &doc), 1, "the ALB's request's segment");
    if (doc) {
        json_t *http = json_object_get (doc, "http");
        cr_expect_str_eq (json_string_value (json_object_get (json_object_get (http, "request"), "method")), "GET");
        cr_expect_str_eq (json_string_value (json_object_get (json_object_get (http, "request"), "url")), "/api/v1/photos");
        cr_expect_eq (json_integer_value (json_object_get (json_object_get (http, "response"), "status")), 200);
        const char *segment = json_string_value (json_object_get (doc, "id"));
        cr_expect_geq (rp_test_xray_find (complete, alb, "database", segment, NULL), 1, "the list's database subsegments");
    }
    cr_expect_eq (rp_test_xray_find (complete, unsampled, NULL, NULL, NULL), 0, "Sampled=0 was sent");
    cr_expect_eq (rp_test_xray_find (complete, missing, "rapid-photo-serve", NULL, &doc), 1);
    if (doc)
        cr_expect (json_is_true (json_object_get (doc, "error")) && !json_object_get (doc, "fault"),
                   "a 404 is an error, not a fault");
    cr_expect_eq (rp_test_xray_find (complete, login, "rapid-photo-serve", NULL, &doc), 1);
    if (doc)
        cr_expect_geq (rp_test_xray_find (complete, login, "database", json_string_value (json_object_get (doc, "id")), NULL), 1);
    //  The photo's trace: its segment (in progress first), resize and exif under it
    json_t *photo_segment = NULL;
    const char *id;
    json_object_foreach (complete, id, doc) {
        const char *annotated = json_string_value (json_object_get (json_object_get (doc, "annotations"), "photo"));
        if (annotated && streq (annotated, photo) && !json_object_get (doc, "type"))
            photo_segment = doc;
    }
    cr_assert_not_null (photo_segment, "no segment for the photo's processing");
    const char *photo_trace = json_string_value (json_object_get (photo_segment, "trace_id"));
    const char *photo_span = json_string_value (json_object_get (photo_segment, "id"));
    cr_expect_str_eq (json_string_value (json_object_get (json_object_get (photo_segment, "annotations"), "outcome")),
                      "complete");
    cr_expect_eq (rp_test_xray_find (complete, photo_trace, "resize", photo_span, NULL), 1, "the resize job's subsegment");
    cr_expect_eq (rp_test_xray_find (complete, photo_trace, "exif", photo_span, NULL), 1, "the exif job's subsegment");
    cr_expect_geq (rp_test_xray_find (complete, photo_trace, "database", photo_span, NULL), 1, "the commit's database work");
    int in_progress = 0;
    size_t i;
    json_array_foreach (documents, i, doc)
        in_progress += json_is_true (json_object_get (doc, "in_progress"))
                    && streq (json_string_value (json_object_get (doc, "id")), photo_span);
    cr_expect_eq (in_progress, 1, "the photo's segment was not sent in progress first");

    //  The log: each request's line and the jobs' carry their trace
    char needle [64];
    snprintf (needle, sizeof needle, "trace=%s", alb);
    cr_expect_geq (rp_test_count_in_file (server.log, needle), 1, "%s not in %s", needle, server.log);
    snprintf (needle, sizeof needle, "trace=%s", unsampled);
    cr_expect_geq (rp_test_count_in_file (server.log, needle), 1, "%s not in %s", needle, server.log);
    snprintf (needle, sizeof needle, "trace=%s", photo_trace);
    cr_expect_geq (rp_test_count_in_file (server.log, needle), 3, "the photo's jobs and commit: %s", server.log);

    //  X-Ray's API takes them (moto), and gives them back
    char path [700], command [2048];
    snprintf (path, sizeof path, "%s/xray-documents.jsonl", server.lib.dir);
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file);
    json_object_foreach (complete, id, doc) {
        char *text = json_dumps (doc, JSON_COMPACT | JSON_REAL_PRECISION (17));
        fprintf (file, "%s\n", text);
        free (text);
    }
    fclose (file);
    snprintf (command, sizeof command, "/usr/bin/python3 %s/tests/observability/xray_moto.py %s",
              getenv ("RP_SOURCE_DIR"), path);
    int status = system (command);
    cr_assert (WIFEXITED (status), "%s", command);
    if (WEXITSTATUS (status) == 77)
        //  Said, not warned: Criterion exits 1 on a warning
        cr_log_info ("skipped: moto_server is not installed, so X-Ray's API was not checked");
    else
        cr_expect_eq (WEXITSTATUS (status), 0, "%s", command);
    json_decref (complete);
    json_decref (documents);
}
