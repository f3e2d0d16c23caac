/*  tests/test_ecs.c: the ECS deployment rehearsed on one machine.

    deploy/ecs splits the engine into two services: API tasks that run
    `rapidphoto gateway` behind the load balancer, and processing tasks
    that run `rapidphoto pipeline`, every one of them claiming queued
    photos from the shared PostgreSQL. Here two of each run on one
    PostgreSQL schema and the S3/SQS stand-ins (tools/aws/standins.mjs),
    each with its own data folder, started with the settings of their task
    definitions: every RAPIDPHOTO_* of deploy/ecs/task-definitions that
    holds no placeholder, as written; the placeholders' (bucket, queues)
    and the secrets' values from this machine (the database, a JWT secret
    both API engines share, CURVE keys from `rapidphoto keygen`); only the
    ports differ, since here the four tasks share one loopback.

    Photos arrive both ways: uploads through both API engines (one token,
    from a login on the first, for both) and files put under
    s3://photos/incoming/alice/. While photos are in flight one processing
    engine is SIGKILLed, as a task that dies mid-photo, and never comes
    back (it takes 3 s over each job, RP_FAULT_JOB_DELAY_MS, so that what
    it holds at the kill is surely still in flight). Its photos stay `processing` until the other engine's minute
    tick finds them older than rp_library_stale_ms (here, with the minute
    shortened to 5 s by RP_FAULT_MINUTE_MS, 2 x 5 s x 2 + 5 s = 25 s; with
    the production defaults 2 x 60 s x 3 + 60 s = 7 min) and
    queues them again; the S3 notifications it held come back after the
    queue's visibility timeout. Afterwards: every acknowledged upload and
    every put file is one photo, complete, none twice, none missing; the
    bucket holds each original with both derivatives; the events queue
    announced photo.complete for every photo (at least once: the count of
    distinct ids is what is checked, repeats are reported). On the way,
    what the task definitions promise: the API engines answer /readyz 200
    without a broker (broker.frontend empty), the processing engines answer
    only GET /healthz, an API engine trims its local S3 cache, and each
    survivor stops cleanly on SIGTERM within the task's stopTimeout.

    Needs RP_TEST_PG_URL (skipped without), node with tools/aws/node_modules
    and Debian's awscli (tools/bootstrap.sh --test).
*/
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <czmq.h>
#include <jansson.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/db/db.h"
#include "tests/support/server.h"
#include "tests/support/standins.h"
#include "tests/support/testdata.h"

#define S_SETTINGS_MAX 24
#define S_HTTP_PHOTOS 60            //  uploads, half through each API engine
#define S_S3_PHOTOS 20              //  files put under incoming/alice/

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A role's settings: "NAME=value" strings, NULL-terminated (for
//  rp_test_server_opts_t.env)
typedef struct {
    char text [S_SETTINGS_MAX][512];
    const char *env [S_SETTINGS_MAX + 1];
    int count;
} s_settings_t;

static void
s_set (s_settings_t *self, const char *name, const char *value)
{
    cr_assert_lt (self->count, S_SETTINGS_MAX, "more settings than the server helper takes");
    snprintf (self->text [self->count], sizeof self->text [0], "%s=%s", name, value);
    self->env [self->count] = self->text [self->count];
    self->env [++self->count] = NULL;
}

typedef struct {
    const rp_test_aws_t *aws;
    char jwt_secret [65];
    char curve_secret [41];         //  the brokers' key pair's secret half
    char curve_clients [41];        //  a client's public key, the one let in
} s_deployment_t;

//  The settings of deploy/ecs/task-definitions/<role>.json, made real on
//  this machine (see the top of this file). Ports and folders are the
//  server helper's.
static void
s_role_settings (const s_deployment_t *deployment, const char *role, s_settings_t *out)
{
    memset (out, 0, sizeof *out);
    const char *source = getenv ("RP_SOURCE_DIR");
    cr_assert_not_null (source, "RP_SOURCE_DIR (set by ctest) names the source tree");
    char path [512];
    snprintf (path, sizeof path, "%s/deploy/ecs/task-definitions/%s.json", source, role);
    json_error_t jerr;
    json_t *task = json_load_file (path, 0, &jerr);
    cr_assert_not_null (task, "%s: %s", path, jerr.text);
    json_t *container = json_array_get (json_object_get (task, "containerDefinitions"), 0);
    const rp_test_aws_t *aws = deployment->aws;
    size_t i;
    json_t *entry;
    json_array_foreach (json_object_get (container, "environment"), i, entry) {
        const char *name = json_string_value (json_object_get (entry, "name"));
        const char *value = json_string_value (json_object_get (entry, "value"));
        cr_assert (name && value, "%s: an environment entry without name or value", path);
        //  Where the data folder is and what listens where: the helper's
        //  (and the X-Ray daemon, a sidecar the rehearsal does not run)
        if (streq (name, "RAPIDPHOTO_DATA_DIR") || streq (name, "RAPIDPHOTO_HTTP_LISTEN")
        ||  streq (name, "AWS_XRAY_DAEMON_ADDRESS")
        ||  (streq (role, "pipeline") && strncmp (name, "RAPIDPHOTO_BROKER_", 18) == 0
             && (strstr (name, "FRONTEND") || strstr (name, "BACKEND"))))
            continue;
        if (streq (name, "RAPIDPHOTO_STORAGE_S3_BUCKET"))
            value = "photos";
        else
        if (streq (name, "RAPIDPHOTO_SQS_INGEST_QUEUE_URL"))
            value = aws->ingest;
        else
        if (streq (name, "RAPIDPHOTO_SQS_EVENTS_QUEUE_URL"))
            value = aws->events;
        else
        if (streq (name, "AWS_REGION"))
            value = "us-east-1";
        cr_assert_null (strstr (value, "${"), "%s: %s=%s has a placeholder the rehearsal does not fill",
                        path, name, value);
        s_set (out, name, value);
    }
    json_array_foreach (json_object_get (container, "secrets"), i, entry) {
        const char *name = json_string_value (json_object_get (entry, "name"));
        if (streq (name, "RAPIDPHOTO_DB_URL"))
            continue;               //  the helper's: the shared schema
        if (streq (name, "RAPIDPHOTO_AUTH_JWT_SECRET"))
            s_set (out, name, deployment->jwt_secret);
        else
        if (streq (name, "RAPIDPHOTO_BROKER_CURVE_SECRET_KEY"))
            s_set (out, name, deployment->curve_secret);
        else
        if (streq (name, "RAPIDPHOTO_BROKER_CURVE_CLIENTS"))
            s_set (out, name, deployment->curve_clients);
        else
            cr_assert_fail ("%s: the rehearsal has no value for the secret %s", path, name);
    }
    json_decref (task);
    //  The task role's credentials and the AWS endpoints: the stand-ins'
    s_set (out, "AWS_ENDPOINT_URL_S3", aws->s3);
    s_set (out, "AWS_ENDPOINT_URL_SQS", aws->sqs);
    s_set (out, "AWS_ACCESS_KEY_ID", "S3RVER");
    s_set (out, "AWS_SECRET_ACCESS_KEY", "S3RVER");
}

//  One line "<key> = <value>" of `rapidphoto keygen`'s output, into value.
static void
s_keygen_line (const char *output, const char *key, char value [41])
{
    char needle [64];
    snprintf (needle, sizeof needle, "\n%s = ", key);
    const char *at = strstr (output, needle);
    cr_assert_not_null (at, "rapidphoto keygen printed no %s:\n%s", key, output);
    snprintf (value, 41, "%.40s", at + strlen (needle));
}

static char *
s_keygen (void)
{
    char command [600];
    snprintf (command, sizeof command, "%s keygen", rp_test_binary ());
    char *output = NULL;
    cr_assert_eq (rp_test_run (command, &output), 0, "rapidphoto keygen failed");
    return output;
}

//  GET /healthz of a processing engine: its status, and in_flight.
static long
s_pipeline_health (rp_test_server_t *engine, int64_t *in_flight)
{
    rp_test_reply_t reply;
    long status = rp_test_request (engine, "GET", "/healthz", NULL, NULL, NULL, 0, NULL, &reply);
    json_t *json = rp_test_reply_json (&reply);
    if (in_flight)
        *in_flight = json_integer_value (json_object_get (json, "in_flight"));
    if (status == 200)
        cr_assert_str_eq (json_string_value (json_object_get (json, "role")) ?: "", "pipeline");
    json_decref (json);
    rp_test_reply_free (&reply);
    return status;
}

//  Photos per status in the shared database (caller decrefs).
static json_t *
s_counts (const char *db_url)
{
    char err [256];
    rp_db_t *db = rp_db_open (db_url, err, sizeof err);
    cr_assert_not_null (db, "%s", err);
    json_t *counts = NULL;
    cr_assert_eq (rp_db_status_counts (db, &counts, err, sizeof err), 0, "%s", err);
    rp_db_close (&db);
    return counts;
}

static int64_t
s_count (json_t *counts, const char *status)
{
    return json_integer_value (json_object_get (counts, status));
}

//  POST a file through an API engine; its id into id. The status.
static long
s_upload (rp_test_server_t *api, const char *token, const char *path, const char *name, char id [RP_ID_MAX])
{
    size_t len = 0;
    char *data = rp_test_read_file (path, &len);
    char filename [300];
    snprintf (filename, sizeof filename, "X-Filename: %s", name);
    const char *headers [] = { "Content-Type: image/jpeg", filename, NULL };
    rp_test_reply_t reply;
    long status = rp_test_request (api, "POST", "/api/v1/photos", token, headers, data, len, NULL, &reply);
    free (data);
    if (status == 202) {
        json_t *json = rp_test_reply_json (&reply);
        json_t *photo = json_array_get (json_object_get (json, "photos"), 0);
        snprintf (id, RP_ID_MAX, "%s", json_string_value (json_object_get (photo, "id")) ?: "");
        json_decref (json);
    }
    else
        cr_log_error ("upload of %s through %s: %ld %s", name, api->base, status, reply.body ?: "");
    rp_test_reply_free (&reply);
    return status;
}

//  alice's photos (up to 500), newest first (caller decrefs).
static json_t *
s_photos (rp_test_server_t *api, const char *token)
{
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (api, "GET", "/api/v1/photos?limit=500", token, NULL, NULL, 0, NULL, &reply),
                  200, "%s", reply.body);
    json_t *json = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    json_t *items = json_incref (json_object_get (json, "items"));
    json_decref (json);
    return items;
}

//  Stop an engine with SIGTERM; how long it took (ms). Expects a clean exit.
static int64_t
s_stop (rp_test_server_t *engine)
{
    int64_t started = s_now_ms ();
    rp_test_server_stop (engine);
    return s_now_ms () - started;
}

//  Files named like a stored blob (64 hex digits, maybe a derivative
//  suffix) under <dir>/objects/ab/cd/.
static int
s_cached_files (const char *dir)
{
    char command [600];
    snprintf (command, sizeof command,
              "find '%s/objects' -mindepth 3 -maxdepth 3 -type f -regex '.*/[0-9a-f]\\{64\\}[^/]*' | wc -l", dir);
    char *out = NULL;
    cr_assert_eq (rp_test_run (command, &out), 0);
    int count = atoi (out ? out : "0");
    free (out);
    return count;
}

//  The sum of N in the log's "N photos were stuck processing" lines.
static int
s_requeued_in_log (const char *log)
{
    size_t len = 0;
    char *text = rp_test_read_file (log, &len);
    int total = 0;
    for (char *at = text; at && (at = strstr (at, " photos were stuck processing")); at++) {
        char *start = at;
        while (start > text && start [-1] >= '0' && start [-1] <= '9')
            start--;
        total += atoi (start);
    }
    free (text);
    return total;
}

Test (ecs, two_apis_two_pipelines_one_killed_mid_run, .timeout = 420)
{
    if (!rp_test_pg_enabled ())
        cr_skip_test ("skipped: the rehearsal runs on PostgreSQL (RP_TEST_PG_URL unset)");
    int64_t t0 = s_now_ms ();
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "ecs-rehearsal", NULL);
    s_deployment_t deployment = { .aws = &aws };
    //  Secrets as the parameter store would hand them out
    char *broker_pair = s_keygen (), *client_pair = s_keygen ();
    s_keygen_line (broker_pair, "curve_secret_key", deployment.curve_secret);
    s_keygen_line (client_pair, "curve_clients", deployment.curve_clients);
    free (broker_pair);
    free (client_pair);
    snprintf (deployment.jwt_secret, sizeof deployment.jwt_secret, "ecs-rehearsal-%08x%08x%08x",
              (unsigned) randof (0x7fffffff), (unsigned) randof (0x7fffffff), (unsigned) getpid ());

    //  The processing service: the task definition's settings, and a short
    //  stale threshold so that the killed engine's photos come back soon
    s_settings_t pipeline_env, api_env;
    s_role_settings (&deployment, "pipeline", &pipeline_env);
    s_set (&pipeline_env, "RAPIDPHOTO_BROKER_JOB_TIMEOUT_MS", "5000");
    s_set (&pipeline_env, "RAPIDPHOTO_BROKER_MAX_ATTEMPTS", "2");
    s_set (&pipeline_env, "RP_FAULT_MINUTE_MS", "5000");
    s_role_settings (&deployment, "api", &api_env);
    //  Every cached file is old enough to go at the API engines' minute
    s_set (&api_env, "RAPIDPHOTO_STORAGE_ORPHAN_GRACE_S", "0");

    //  The first processing engine makes the schema and the users
    rp_test_server_t pipelines [2], apis [2];
    rp_test_server_start (&pipelines [0], &(rp_test_server_opts_t) {
        .name = "ecs_rehearsal", .pg = true, .command = "pipeline", .env = pipeline_env.env });
    const char *db_url = pipelines [0].db_url;
    //  The one to be killed takes 3 s over each job (RP_FAULT_JOB_DELAY_MS,
    //  engine/fault.h), so that what it holds when it is killed is still
    //  in flight, whatever the machine's speed
    s_set (&pipeline_env, "RP_FAULT_JOB_DELAY_MS", "3000");
    rp_test_server_start (&pipelines [1], &(rp_test_server_opts_t) {
        .name = "ecs-rehearsal-pipeline-2", .db_url = db_url, .command = "pipeline", .env = pipeline_env.env });
    for (int i = 0; i < 2; i++) {
        char name [64];
        snprintf (name, sizeof name, "ecs-rehearsal-api-%d", i + 1);
        rp_test_server_start (&apis [i], &(rp_test_server_opts_t) {
            .name = name, .db_url = db_url, .command = "gateway", .env = api_env.env });
    }
    cr_log_info ("rehearsal: pipelines %s %s, APIs %s %s", pipelines [0].log, pipelines [1].log,
                 apis [0].log, apis [1].log);
    //  What each role answers
    for (int i = 0; i < 2; i++) {
        cr_assert_eq (s_pipeline_health (&pipelines [i], NULL), 200, "pipeline %d: /healthz (log: %s)", i + 1,
                      pipelines [i].log);
        rp_test_reply_t reply;
        cr_expect_eq (rp_test_request (&pipelines [i], "GET", "/api/v1/photos", NULL, NULL, NULL, 0, NULL, &reply),
                      404, "a processing engine serves no API");
        rp_test_reply_free (&reply);
        long status = 0;
        for (int64_t end = s_now_ms () + 20000; s_now_ms () < end && status != 200; usleep (100 * 1000)) {
            status = rp_test_request (&apis [i], "GET", "/readyz", NULL, NULL, NULL, 0, NULL, &reply);
            if (status != 200)
                rp_test_reply_free (&reply);
        }
        cr_assert_eq (status, 200, "API %d is not ready without a broker: %s (log: %s)", i + 1, reply.body,
                      apis [i].log);
        rp_test_reply_free (&reply);
    }
    //  One login, good on both API engines: they share the JWT secret
    char *token = rp_test_login (&apis [0], "alice");
    int64_t t_ready = s_now_ms ();

    //  The photos: distinct JPEGs, big enough that each takes a moment
    char folder [320], incoming [340];
    snprintf (folder, sizeof folder, "%s/photos", aws.dir);
    snprintf (incoming, sizeof incoming, "%s/incoming", aws.dir);
    cr_assert_eq (mkdir (folder, 0755), 0);
    cr_assert_eq (mkdir (incoming, 0755), 0);
    zhash_t *expected = zhash_new ();       //  filename -> "" for every photo that must exist
    for (int i = 0; i < S_HTTP_PHOTOS + S_S3_PHOTOS; i++) {
        char name [64], path [420];
        bool http = i < S_HTTP_PHOTOS;
        snprintf (name, sizeof name, http ? "upload-%03d.jpg" : "put-%03d.jpg", i);
        snprintf (path, sizeof path, "%s/%s", http ? folder : incoming, name);
        cr_assert_eq (rp_test_make_jpeg (path, 1800 + i, 1200 + i % 13, 0), 0);
        zhash_insert (expected, name, "");
    }
    //  The files into the bucket, then the uploads, alternating between the
    //  API engines; the second processing engine is SIGKILLed as soon as it
    //  says it holds photos (its last beat, at most a second old), from the
    //  tenth upload on
    int rc = rp_test_aws_cli (&aws, aws.s3, NULL, "s3 cp --only-show-errors --recursive '%s' s3://photos/incoming/alice/",
                              incoming);
    cr_assert_eq (rc, 0, "aws s3 cp --recursive failed: %s", rp_test_aws_err (&aws));
    zhash_t *acknowledged = zhash_new ();   //  id -> "" for every 202
    int64_t in_flight = 0, t_kill = 0;
    for (int uploaded = 0; uploaded < S_HTTP_PHOTOS || !t_kill; uploaded++) {
        if (uploaded < S_HTTP_PHOTOS) {
            char name [64], path [420], id [RP_ID_MAX];
            snprintf (name, sizeof name, "upload-%03d.jpg", uploaded);
            snprintf (path, sizeof path, "%s/%s", folder, name);
            cr_assert_eq (s_upload (&apis [uploaded % 2], token, path, name, id), 202);
            zhash_insert (acknowledged, id, "");
        }
        else {
            cr_assert_lt (s_now_ms () - t_ready, 60000, "the second processing engine never held a photo (log: %s)",
                          pipelines [1].log);
            usleep (50 * 1000);
        }
        if (t_kill || uploaded < 10)
            continue;
        s_pipeline_health (&pipelines [1], &in_flight);
        if (in_flight > 0) {
            cr_assert_eq (kill (pipelines [1].pid, SIGKILL), 0);
            cr_assert_eq (rp_test_wait (pipelines [1].pid, 10000), 128 + SIGKILL);
            t_kill = s_now_ms ();
            cr_log_info ("rehearsal: processing engine 2 killed holding %lld photos after %d uploads, %.1f s "
                         "after both services were up", (long long) in_flight, uploaded + 1,
                         (double) (t_kill - t_ready) / 1000);
        }
    }
    cr_assert_eq (zhash_size (acknowledged), S_HTTP_PHOTOS);

    //  Once the survivor has nothing queued and nothing in flight (for 2 s:
    //  its beat may be a second old), what is still processing is the
    //  killed engine's: stuck until the stale sweep
    int64_t stuck = -1, survivor_in_flight = 1, idle_since = 0, last = -1;
    for (int64_t end = s_now_ms () + 120000; s_now_ms () < end && stuck < 0; usleep (250 * 1000)) {
        json_t *counts = s_counts (db_url);
        s_pipeline_health (&pipelines [0], &survivor_in_flight);
        int64_t queued = s_count (counts, "queued") + s_count (counts, "uploading");
        int64_t processing = s_count (counts, "processing");
        json_decref (counts);
        if (queued || survivor_in_flight || processing != last)
            idle_since = 0;
        else
        if (!idle_since)
            idle_since = s_now_ms ();
        else
        if (s_now_ms () - idle_since >= 2000)
            stuck = processing;
        last = processing;
    }
    int64_t t_idle = s_now_ms ();
    cr_assert_geq (stuck, 0, "the surviving engine never went idle (log: %s)", pipelines [0].log);
    cr_log_info ("rehearsal: survivor idle %.1f s after the kill, %lld photos stuck processing",
                 (double) (t_idle - t_kill) / 1000, (long long) stuck);
    cr_expect_gt (stuck, 0, "the killed engine left no photo processing: the kill caught none mid-photo");

    //  Every photo complete: the stuck ones after the stale sweep
    size_t total = S_HTTP_PHOTOS + S_S3_PHOTOS, complete = 0;
    int64_t t_complete = 0;
    for (int64_t end = s_now_ms () + 240000; s_now_ms () < end; usleep (500 * 1000)) {
        json_t *counts = s_counts (db_url);
        complete = (size_t) s_count (counts, "complete");
        json_decref (counts);
        if (complete >= total) {
            t_complete = s_now_ms ();
            break;
        }
    }
    cr_log_info ("rehearsal: %zu of %zu complete %.1f s after the kill (%.1f s after the survivor went idle)",
                 complete, total, (double) ((t_complete ? t_complete : s_now_ms ()) - t_kill) / 1000,
                 (double) ((t_complete ? t_complete : s_now_ms ()) - t_idle) / 1000);
    cr_assert_eq (complete, total, "%zu of %zu photos complete (survivor's log: %s)", complete, total,
                  pipelines [0].log);
    int requeued = s_requeued_in_log (pipelines [0].log);
    cr_log_info ("rehearsal: the survivor queued %d stuck photos again", requeued);
    cr_expect_eq (requeued, stuck, "the survivor's stale sweep queued again what the killed engine held");

    //  One photo per upload and per file: none twice, none missing
    cr_expect_eq (rp_test_photo_rows (&apis [0]), (int64_t) total, "photo rows: one per upload and file");
    json_t *items = s_photos (&apis [1], token);
    cr_assert_eq (json_array_size (items), total, "alice has %zu photos, not %zu", json_array_size (items), total);
    zhash_t *names = zhash_new (), *shas = zhash_new (), *ids = zhash_new ();
    size_t i;
    json_t *photo;
    json_array_foreach (items, i, photo) {
        const char *id = json_string_value (json_object_get (photo, "id")) ?: "";
        const char *name = json_string_value (json_object_get (photo, "filename")) ?: "";
        const char *sha = json_string_value (json_object_get (photo, "sha256")) ?: "";
        cr_expect_str_eq (json_string_value (json_object_get (photo, "status")) ?: "", "complete", "%s", name);
        cr_expect_not_null (zhash_lookup (expected, name), "a photo named %s was never sent", name);
        cr_expect_eq (zhash_insert (names, name, ""), 0, "two photos are named %s", name);
        cr_expect_eq (zhash_insert (shas, sha, ""), 0, "two photos have sha256 %s", sha);
        zhash_insert (ids, id, "");
    }
    for (void *item = zhash_first (acknowledged); item; item = zhash_next (acknowledged))
        cr_expect_not_null (zhash_lookup (ids, zhash_cursor (acknowledged)), "acknowledged photo %s is missing",
                            (const char *) zhash_cursor (acknowledged));
    cr_expect_eq (zhash_size (names), total);

    //  The bucket: each original with both derivatives
    char *listing = rp_test_aws_ls (&aws);
    int missing = 0;
    for (void *item = zhash_first (shas); item; item = zhash_next (shas)) {
        const char *key = zhash_cursor (shas);
        const char *suffixes [] = { "", ".thumbnail.webp", ".preview.jpg" };
        for (int s = 0; s < 3; s++) {
            char needle [256];
            snprintf (needle, sizeof needle, " objects/%.2s/%.2s/%s%s\n", key, key + 2, key, suffixes [s]);
            if (!strstr (listing, needle)) {
                missing++;
                cr_log_error ("the bucket lacks%s", needle);
            }
        }
    }
    cr_expect_eq (missing, 0, "%d objects missing from the bucket", missing);
    free (listing);

    //  The events: photo.complete for every photo, at least once
    rp_test_events_t events;
    rp_test_aws_events (&aws, ids, 60000, &events);
    cr_log_info ("rehearsal: events queue: %d messages, %zu distinct photo.complete ids (%d repeats)",
                 events.messages, zhash_size (events.announced), events.repeats);
    cr_expect_eq (zhash_size (events.announced), total, "photo.complete for %zu of %zu photos",
                  zhash_size (events.announced), total);
    cr_expect_eq (events.others, 0, "%d events are not photo.complete for a photo of this test", events.others);

    //  The API engines trimmed their S3 cache (at their first minute)
    for (int a = 0; a < 2; a++) {
        for (int64_t end = t_ready + 75000; s_now_ms () < end; usleep (250 * 1000))
            if (rp_test_count_in_file (apis [a].log, "local cache: ") > 0)
                break;
        cr_expect_gt (rp_test_count_in_file (apis [a].log, "local cache: "), 0,
                      "API %d never trimmed its cache (log: %s)", a + 1, apis [a].log);
        cr_expect_eq (s_cached_files (apis [a].lib.dir), 0, "API %d keeps photos in its cache", a + 1);
    }

    //  Stopping as ECS does (SIGTERM, then SIGKILL after stopTimeout, 30 s)
    int64_t stop_pipeline = s_stop (&pipelines [0]);
    int64_t stop_api [2] = { s_stop (&apis [0]), s_stop (&apis [1]) };
    cr_log_info ("rehearsal: SIGTERM to exit: pipeline %.1f s, APIs %.1f s and %.1f s; whole run %.1f s",
                 (double) stop_pipeline / 1000, (double) stop_api [0] / 1000, (double) stop_api [1] / 1000,
                 (double) (s_now_ms () - t0) / 1000);
    cr_expect_lt (stop_pipeline, 30000, "the processing engine outlived its stopTimeout");
    cr_expect_lt (stop_api [0] > stop_api [1] ? stop_api [0] : stop_api [1], 30000, "an API engine outlived its stopTimeout");

    zhash_destroy (&events.announced);
    zhash_destroy (&ids);
    zhash_destroy (&shas);
    zhash_destroy (&names);
    zhash_destroy (&acknowledged);
    zhash_destroy (&expected);
    json_decref (items);
    free (token);
    rp_test_aws_stop (&aws);
}
