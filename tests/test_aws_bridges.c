/*  tests/test_aws_bridges.c: the engine in S3 mode, end to end (issue 6).

    Each test starts the AWS stand-ins (tools/aws/standins.mjs: s3rver with
    its object events announced on an SQS `ingest` queue as S3 announces
    them, local-aws-sqs with `ingest`, `ingest-dlq` and `events`) on free
    ports, and one or two real `rapidphoto serve` with storage.backend = s3
    pointed at them. The S3 and SQS side is driven and checked with Debian's
    aws CLI (/usr/bin/aws, botocore underneath: an independent client), as an
    operator would: photos uploaded through the API are listed and
    downloaded from the bucket byte-identical, derivatives included; files
    put into the bucket become photos through the S3 event and the SQS
    bridge, and their photo.complete events are received; a message that
    cannot be processed ends in the dead-letter queue; presigned uploads
    complete through the API or the S3 event and are verified; two engines
    share one queue with no photo made twice or missed; and an S3 outage in
    the middle of uploads loses no acknowledged photo.

    The tests need node with tools/aws/node_modules and Debian's awscli
    (tools/bootstrap.sh --test installs both). /usr/bin/aws is named
    explicitly: another `aws` (a pyenv shim, an AWS CLI v2 bundle) may come
    first on PATH.
*/
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <czmq.h>
#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "engine/thumbhash.h"
#include "engine/db/db.h"
#include "engine/trace.h"
#include "library/blobstore.h"
#include "library/library.h"
#include "tests/support/server.h"
#include "tests/support/standins.h"
#include "tests/support/testdata.h"
#include "tests/support/xray.h"

//  ---------------------------------------------------------------------------
//  The stand-ins and the aws CLI

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  SIGUSR1: S3 goes away (connections refused); SIGUSR2: it comes back.
static void
s_aws_s3_close (rp_test_aws_t *aws, int times)
{
    kill (aws->pid, SIGUSR1);
    cr_assert (rp_test_aws_log_wait (aws, "s3 closed", times, 10000), "S3 did not close (log: %s)", aws->log);
}

static void
s_aws_s3_open (rp_test_aws_t *aws, int times)
{
    kill (aws->pid, SIGUSR2);
    cr_assert (rp_test_aws_log_wait (aws, "s3 open again", times, 10000), "S3 did not open again (log: %s)", aws->log);
}

//  Whether an `aws s3 ls` listing has exactly this key.
static bool
s_listed (const char *listing, const char *key)
{
    char needle [512];
    snprintf (needle, sizeof needle, " %s\n", key);
    return strstr (listing, needle) != NULL;
}

static int
s_lines (const char *text)
{
    int lines = 0;
    for (const char *at = text; at && *at; at++)
        if (*at == '\n')
            lines++;
    return lines;
}

//  `aws s3 cp s3://photos/<key> <file>`, then the file's bytes (caller frees).
static char *
s_aws_download (const rp_test_aws_t *aws, const char *key, const char *file, size_t *len)
{
    int rc = rp_test_aws_cli (aws, aws->s3, NULL, "s3 cp --only-show-errors 's3://photos/%s' '%s'", key, file);
    cr_assert_eq (rc, 0, "aws s3 cp s3://photos/%s failed: %s", key, rp_test_aws_err (aws));
    return rp_test_read_file (file, len);
}

//  `aws sqs receive-message` on a queue: the messages' bodies, parsed (a
//  JSON array, caller decrefs; empty when there were none).
static json_t *
s_aws_receive (const rp_test_aws_t *aws, const char *queue, int wait_s, int visibility_s)
{
    char *out = NULL;
    int rc = rp_test_aws_cli (aws, aws->sqs, &out,
                        "sqs receive-message --queue-url '%s' --max-number-of-messages 10 "
                        "--wait-time-seconds %d --visibility-timeout %d --attribute-names All --output json",
                        queue, wait_s, visibility_s);
    cr_assert_eq (rc, 0, "aws sqs receive-message failed: %s", rp_test_aws_err (aws));
    json_t *bodies = json_array ();
    //  No messages: no output at all
    if (out && *out) {
        json_error_t jerr;
        json_t *answer = json_loads (out, 0, &jerr);
        cr_assert_not_null (answer, "aws sqs receive-message printed no JSON (%s): %s", jerr.text, out);
        size_t i;
        json_t *message;
        json_array_foreach (json_object_get (answer, "Messages"), i, message) {
            const char *text = json_string_value (json_object_get (message, "Body"));
            cr_assert_not_null (text);
            json_t *body = json_loads (text, 0, &jerr);
            cr_assert_not_null (body, "a message that is not JSON (%s): %s", jerr.text, text);
            json_array_append_new (bodies, body);
        }
        json_decref (answer);
    }
    free (out);
    return bodies;
}

//  Messages a queue holds, visible or not (`aws sqs get-queue-attributes`).
static int
s_aws_queue_depth (const rp_test_aws_t *aws, const char *queue)
{
    char *out = NULL;
    int rc = rp_test_aws_cli (aws, aws->sqs, &out,
                        "sqs get-queue-attributes --queue-url '%s' --attribute-names "
                        "ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible --output json", queue);
    cr_assert_eq (rc, 0, "aws sqs get-queue-attributes failed: %s", rp_test_aws_err (aws));
    json_error_t jerr;
    json_t *answer = json_loads (out, 0, &jerr);
    cr_assert_not_null (answer, "%s", out);
    json_t *attributes = json_object_get (answer, "Attributes");
    //  The stand-in counts hidden messages in both; AWS only in the second
    int depth = atoi (json_string_value (json_object_get (attributes, "ApproximateNumberOfMessages")) ?: "0")
              + atoi (json_string_value (json_object_get (attributes, "ApproximateNumberOfMessagesNotVisible")) ?: "0");
    json_decref (answer);
    free (out);
    return depth;
}

//  ---------------------------------------------------------------------------
//  The engine in S3 mode

//  Start serve in S3 mode on the stand-ins, with more settings (NULL-
//  terminated, may be NULL). visibility_s: how long a received ingest
//  message stays hidden (0: the engine's default). db_url: NULL for a
//  fresh database, or another engine's to share.
static void
s_engine_start_more (rp_test_server_t *server, const rp_test_aws_t *aws, const char *name, bool pg, int visibility_s,
                     const char *db_url, const char *const more [])
{
    char settings [16][256];
    int n = 0;
    snprintf (settings [n++], 256, "RAPIDPHOTO_STORAGE_BACKEND=s3");
    snprintf (settings [n++], 256, "RAPIDPHOTO_STORAGE_S3_BUCKET=photos");
    snprintf (settings [n++], 256, "RAPIDPHOTO_STORAGE_S3_PREFIX=");
    snprintf (settings [n++], 256, "RAPIDPHOTO_SQS_INGEST_QUEUE_URL=%s", aws->ingest);
    snprintf (settings [n++], 256, "RAPIDPHOTO_SQS_EVENTS_QUEUE_URL=%s", aws->events);
    snprintf (settings [n++], 256, "AWS_ENDPOINT_URL_S3=%s", aws->s3);
    snprintf (settings [n++], 256, "AWS_ENDPOINT_URL_SQS=%s", aws->sqs);
    snprintf (settings [n++], 256, "AWS_ACCESS_KEY_ID=S3RVER");
    snprintf (settings [n++], 256, "AWS_SECRET_ACCESS_KEY=S3RVER");
    snprintf (settings [n++], 256, "AWS_REGION=us-east-1");
    if (visibility_s > 0)
        snprintf (settings [n++], 256, "RAPIDPHOTO_SQS_VISIBILITY_S=%d", visibility_s);
    for (int i = 0; more && more [i] && n < 16; i++)
        snprintf (settings [n++], 256, "%s", more [i]);
    const char *env [20];
    for (int i = 0; i < n; i++)
        env [i] = settings [i];
    env [n] = NULL;
    rp_test_server_start (server, &(rp_test_server_opts_t) { .name = name, .pg = pg, .db_url = db_url,
                                                             .env = env });
}

static void
s_engine_start (rp_test_server_t *server, const rp_test_aws_t *aws, const char *name, bool pg, int visibility_s,
                const char *db_url)
{
    s_engine_start_more (server, aws, name, pg, visibility_s, db_url, NULL);
}

//  /readyz: its status, and its checks (caller decrefs) when checks_p.
static long
s_readyz (rp_test_server_t *server, json_t **checks_p)
{
    rp_test_reply_t reply;
    long status = rp_test_request (server, "GET", "/readyz", NULL, NULL, NULL, 0, NULL, &reply);
    if (checks_p) {
        json_t *json = rp_test_reply_json (&reply);
        *checks_p = json_incref (json_object_get (json, "checks"));
        json_decref (json);
    }
    rp_test_reply_free (&reply);
    return status;
}

//  Wait until /readyz answers `status`; false on timeout.
static bool
s_readyz_wait (rp_test_server_t *server, long status, int timeout_ms)
{
    for (int64_t end = s_now_ms () + timeout_ms; s_now_ms () < end; usleep (100 * 1000))
        if (s_readyz (server, NULL) == status)
            return true;
    return false;
}

static void
s_engine_ready (rp_test_server_t *server)
{
    if (s_readyz_wait (server, 200, 20000))
        return;
    json_t *checks = NULL;
    long status = s_readyz (server, &checks);
    cr_assert_fail ("the engine is not ready on the stand-ins: /readyz %ld %s (log: %s)", status,
                    checks ? json_dumps (checks, JSON_COMPACT) : "", server->log);
}

static void
s_sha256_hex (const void *data, size_t len, char hex [65])
{
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_Digest (data, len, digest, &digest_len, EVP_sha256 (), NULL);
    for (unsigned int i = 0; i < digest_len; i++)
        snprintf (hex + 2 * i, 3, "%02x", digest [i]);
}

static void
s_file_sha256 (const char *path, char hex [65])
{
    size_t len = 0;
    char *data = rp_test_read_file (path, &len);
    s_sha256_hex (data, len, hex);
    free (data);
}

//  Where the engine keeps a photo's bytes in the bucket (storage.s3_prefix
//  empty): suffix "" (original), ".thumbnail.webp" or ".preview.jpg".
static void
s_object_key (const char *sha, const char *suffix, char *key, size_t size)
{
    snprintf (key, size, "objects/%.2s/%.2s/%s%s", sha, sha + 2, sha, suffix);
}

//  POST a file as a raw body; its status. On 202, the photo's id and
//  sha256. The reply stays the caller's (to free).
static long
s_upload (rp_test_server_t *server, const char *token, const char *path, const char *filename,
          char id [RP_ID_MAX], char sha [65], rp_test_reply_t *reply)
{
    size_t len = 0;
    char *data = rp_test_read_file (path, &len);
    char name [300];
    snprintf (name, sizeof name, "X-Filename: %s", filename);
    const char *headers [] = { "Content-Type: image/jpeg", name, NULL };
    long status = rp_test_request (server, "POST", "/api/v1/photos", token, headers, data, len, NULL, reply);
    free (data);
    if (status == 202) {
        json_t *json = rp_test_reply_json (reply);
        json_t *photo = json_array_get (json_object_get (json, "photos"), 0);
        cr_assert_not_null (photo, "%s", reply->body);
        snprintf (id, RP_ID_MAX, "%s", json_string_value (json_object_get (photo, "id")));
        snprintf (sha, 65, "%s", json_string_value (json_object_get (photo, "sha256")));
        json_decref (json);
    }
    return status;
}

//  GET /photos/{id}/<what>: a 302 to a presigned GET (X-Amz-Signature in
//  its query), which answers the bytes: that answer (caller frees).
static rp_test_reply_t
s_download (rp_test_server_t *server, const char *token, const char *id, const char *what)
{
    char path [160];
    snprintf (path, sizeof path, "/api/v1/photos/%s/%s", id, what);
    rp_test_reply_t reply;
    long status = rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply);
    cr_assert_eq (status, 302, "GET %s answers %ld, not a redirect to S3: %s", path, status, reply.body);
    const char *location = rp_test_header_value (&reply, "Location");
    cr_assert_not_null (location, "GET %s: a 302 without Location", path);
    cr_assert (strstr (location, "X-Amz-Signature="), "GET %s: Location is not presigned: %s", path, location);
    char url [4096];
    snprintf (url, sizeof url, "%s", location);
    rp_test_reply_free (&reply);
    //  The presigned URL alone: no other credentials
    rp_test_reply_t bytes;
    status = rp_test_http (&(rp_test_http_t) { .url = url, .timeout_ms = 30000 }, &bytes);
    cr_assert_eq (bytes.result, CURLE_OK, "GET %s: %s", url, curl_easy_strerror (bytes.result));
    cr_assert_eq (status, 200, "the presigned GET for %s answers %ld: %s", path, status, bytes.body);
    return bytes;
}

static bool
s_same (const void *a, size_t a_len, const void *b, size_t b_len)
{
    return a_len == b_len && memcmp (a, b, a_len) == 0;
}

//  A photo (caller decrefs).
static json_t *
s_photo (rp_test_server_t *server, const char *token, const char *id)
{
    char path [128];
    snprintf (path, sizeof path, "/api/v1/photos/%s", id);
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200, "%s", reply.body);
    json_t *photo = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    return photo;
}

//  The user's photos, newest first (up to 500; caller decrefs the array).
static json_t *
s_photos (rp_test_server_t *server, const char *token, const char *status)
{
    char path [128];
    snprintf (path, sizeof path, "/api/v1/photos?limit=500%s%s", status ? "&status=" : "", status ? status : "");
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200, "%s", reply.body);
    json_t *json = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    json_t *items = json_incref (json_object_get (json, "items"));
    cr_assert (json_is_array (items));
    json_decref (json);
    return items;
}

//  Wait until the user has a photo named filename in a final status; the
//  photo (caller decrefs), or NULL on timeout.
static json_t *
s_wait_named (rp_test_server_t *server, const char *token, const char *filename, int timeout_ms)
{
    for (int64_t end = s_now_ms () + timeout_ms; s_now_ms () < end; usleep (200 * 1000)) {
        json_t *items = s_photos (server, token, NULL);
        size_t i;
        json_t *photo;
        json_array_foreach (items, i, photo) {
            const char *status = json_string_value (json_object_get (photo, "status"));
            if (streq (json_string_value (json_object_get (photo, "filename")) ?: "", filename)
            &&  status && (streq (status, "complete") || streq (status, "failed"))) {
                json_incref (photo);
                json_decref (items);
                return photo;
            }
        }
        json_decref (items);
    }
    return NULL;
}

//  ---------------------------------------------------------------------------

Test (aws_bridges, uploads_land_in_the_bucket_byte_identical, .timeout = 90)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-uploads", NULL);
    rp_test_server_t server;
    s_engine_start (&server, &aws, "aws-uploads", false, 0, NULL);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");

    enum { PHOTOS = 3 };
    char paths [PHOTOS][600], ids [PHOTOS][RP_ID_MAX], shas [PHOTOS][65];
    for (int i = 0; i < PHOTOS; i++) {
        char name [32];
        snprintf (name, sizeof name, "upload-%d.jpg", i);
        rp_test_server_photo (&server, name, 30 + i, paths [i], sizeof paths [i]);
        rp_test_reply_t reply;
        long status = s_upload (&server, token, paths [i], name, ids [i], shas [i], &reply);
        cr_assert_eq (status, 202, "upload %d: %ld %s (log: %s)", i, status, reply.body, server.log);
        rp_test_reply_free (&reply);
        char sha [65];
        s_file_sha256 (paths [i], sha);
        cr_assert_str_eq (shas [i], sha);
    }
    for (int i = 0; i < PHOTOS; i++) {
        char *final = rp_test_wait_final (&server, token, ids [i], 30000);
        cr_assert_str_eq (final, "complete", "photo %s is %s (log: %s)", ids [i], final, server.log);
        free (final);
    }
    //  The bucket holds each original and both derivatives, under the
    //  engine's keys, and nothing else
    char *listing = rp_test_aws_ls (&aws);
    for (int i = 0; i < PHOTOS; i++) {
        const char *suffixes [] = { "", ".thumbnail.webp", ".preview.jpg" };
        for (int s = 0; s < 3; s++) {
            char key [200];
            s_object_key (shas [i], suffixes [s], key, sizeof key);
            cr_assert (s_listed (listing, key), "aws s3 ls does not list %s:\n%s", key, listing);
        }
    }
    cr_expect_eq (s_lines (listing), 3 * PHOTOS, "only the photos' objects are in the bucket:\n%s", listing);
    free (listing);

    //  What the aws CLI downloads (all of it, one object after the other)
    //  is what was uploaded (originals), and what the API's presigned
    //  redirects give (all three)
    char downloads [320];
    snprintf (downloads, sizeof downloads, "%s/downloads", aws.dir);
    int rc = rp_test_aws_cli (&aws, aws.s3, NULL, "s3 cp --only-show-errors --recursive s3://photos/ '%s'", downloads);
    cr_assert_eq (rc, 0, "aws s3 cp --recursive failed: %s", rp_test_aws_err (&aws));
    for (int i = 0; i < PHOTOS; i++) {
        size_t sent_len = 0;
        char *sent = rp_test_read_file (paths [i], &sent_len);
        const char *what [] = { "original", "thumbnail", "preview" };
        const char *suffixes [] = { "", ".thumbnail.webp", ".preview.jpg" };
        for (int s = 0; s < 3; s++) {
            char key [200], file [600];
            s_object_key (shas [i], suffixes [s], key, sizeof key);
            snprintf (file, sizeof file, "%s/%s", downloads, key);
            size_t len = 0;
            char *stored = rp_test_read_file (file, &len);
            rp_test_reply_t served = s_download (&server, token, ids [i], what [s]);
            cr_expect (s_same (stored, len, served.body, served.len),
                       "photo %s: %s from the API (%zu bytes) differs from s3://photos/%s (%zu bytes)",
                       ids [i], what [s], served.len, key, len);
            if (s == 0)
                cr_expect (s_same (stored, len, sent, sent_len),
                           "photo %s: the original in the bucket (%zu bytes) is not what was uploaded (%zu bytes)",
                           ids [i], len, sent_len);
            else
            if (s == 1)
                cr_expect (len > 12 && memcmp (stored, "RIFF", 4) == 0 && memcmp (stored + 8, "WEBP", 4) == 0,
                           "the thumbnail is a WebP");
            else
                cr_expect (len > 2 && (unsigned char) stored [0] == 0xFF && (unsigned char) stored [1] == 0xD8,
                           "the preview is a JPEG");
            free (stored);
            rp_test_reply_free (&served);
        }
        free (sent);
    }
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

//  ---------------------------------------------------------------------------
//  Large uploads go to S3 while they arrive (library/s3_mirror.h, streams):
//  parts of 8 MiB under streams/<random>, then a copy to the address

#define S_STREAM_PART (8 << 20)

//  A photo of noise of at least 18 MiB (three parts' worth: two sent while
//  it arrives, the last at the end); its bytes (caller frees)
static char *
s_big_photo (rp_test_server_t *server, char *path, size_t size, size_t *len)
{
    snprintf (path, size, "%s/big.jpg", server->lib.dir);
    cr_assert_eq (rp_test_make_noise_jpeg (path, 2400, 2300), 0, "cannot make a large JPEG with libvips");
    char *data = rp_test_read_file (path, len);
    cr_assert_geq (*len, (size_t) (18 << 20), "the noise JPEG is only %zu bytes", *len);
    return data;
}

//  The slow client's progress: once 17 MiB are sent, it waits (its upload
//  held there) for the stand-in to have taken two parts
typedef struct {
    const rp_test_aws_t *aws;
    const char *needle;             //  the parts' log line; NULL: under streams/
    bool asked;
    bool parts_in_time;
} s_stream_watch_t;

static void
s_stream_progress (size_t bytes, void *arg)
{
    s_stream_watch_t *watch = (s_stream_watch_t *) arg;
    if (!watch->asked && bytes >= (size_t) (17 << 20)) {
        watch->asked = true;
        const char *needle = watch->needle ? watch->needle : "s3 UploadPart 200 /photos/streams/";
        watch->parts_in_time = rp_test_aws_log_wait (watch->aws, needle, 2, 20000);
    }
}

Test (aws_bridges, large_uploads_stream_to_the_bucket_while_they_arrive, .timeout = 150)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-stream", NULL);
    rp_test_server_t server;
    const char *more [] = { "RAPIDPHOTO_LIMITS_MAX_UPLOAD_BYTES=41943040", NULL };
    s_engine_start_more (&server, &aws, "aws-stream", false, 0, NULL, more);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");
    char path [600];
    size_t len = 0;
    char *data = s_big_photo (&server, path, sizeof path, &len);
    char sha [65];
    s_sha256_hex (data, len, sha);

    //  Sent 1 MiB at a time; at 17 MiB the client holds on until S3 has
    //  two parts: they went while the upload was still arriving
    s_stream_watch_t watch = { .aws = &aws };
    const char *headers [] = { "Content-Type: image/jpeg", "X-Filename: big.jpg", NULL };
    char url [128];
    snprintf (url, sizeof url, "%s/api/v1/photos", server.base);
    rp_test_reply_t reply;
    long status = rp_test_http (&(rp_test_http_t) { .method = "POST", .url = url, .token = token,
                                                     .headers = headers, .body = data, .len = len,
                                                     .pace_bytes = 1 << 20, .pace_ms = 10,
                                                     .sent = s_stream_progress, .arg = &watch,
                                                     .timeout_ms = 90000 }, &reply);
    cr_assert_eq (status, 202, "the upload: %ld %s (log: %s)", status, reply.body, server.log);
    cr_assert (watch.parts_in_time, "S3 had not taken two parts of the upload before its last 1 MiB was sent "
               "(stand-ins' log: %s)", aws.log);
    json_t *json = rp_test_reply_json (&reply);
    json_t *photo = json_array_get (json_object_get (json, "photos"), 0);
    cr_assert_str_eq (json_string_value (json_object_get (photo, "sha256")), sha);
    char id [RP_ID_MAX];
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (photo, "id")));
    json_decref (json);
    rp_test_reply_free (&reply);
    //  By the 202: its last part, its completion and the copy to its address
    cr_assert_eq (rp_test_count_in_file (aws.log, "s3 UploadPart 200 /photos/streams/"),
                  (int) ((len + S_STREAM_PART - 1) / S_STREAM_PART), "a part per 8 MiB (log: %s)", aws.log);
    cr_assert_eq (rp_test_count_in_file (aws.log, "s3 CompleteMultipartUpload 200 /photos/streams/"), 1);
    char copied [200];
    snprintf (copied, sizeof copied, "s3 CopyObject 200 /photos/objects/%.2s/%.2s/%s", sha, sha + 2, sha);
    cr_assert_eq (rp_test_count_in_file (aws.log, copied), 1, "the copy to the address (log: %s)", aws.log);

    //  The original is at its address, byte for byte; streams/ is empty
    char key [200], file [700];
    s_object_key (sha, "", key, sizeof key);
    snprintf (file, sizeof file, "%s/original", aws.dir);
    size_t stored_len = 0;
    char *stored = s_aws_download (&aws, key, file, &stored_len);
    cr_assert (s_same (stored, stored_len, data, len), "s3://photos/%s (%zu bytes) is not what was uploaded "
               "(%zu bytes)", key, stored_len, len);
    free (stored);
    char *listing = rp_test_aws_ls (&aws);
    cr_assert_null (strstr (listing, "streams/"), "nothing is left under streams/:\n%s", listing);
    free (listing);
    //  And it is a photo like any other
    char *final = rp_test_wait_final (&server, token, id, 60000);
    cr_assert_str_eq (final, "complete", "photo %s is %s (log: %s)", id, final, server.log);
    free (final);
    free (data);
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

//  Declared up front (X-Content-SHA256), the address is known before the
//  first byte: the parts go straight there, nothing is copied; a body that
//  is not what it declared is a 400 and its stream is never completed
Test (aws_bridges, a_declared_sha256_streams_straight_to_the_address, .timeout = 150)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-stream-declared", NULL);
    rp_test_server_t server;
    const char *more [] = { "RAPIDPHOTO_LIMITS_MAX_UPLOAD_BYTES=41943040", NULL };
    s_engine_start_more (&server, &aws, "aws-stream-declared", false, 0, NULL, more);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");
    char path [600];
    size_t len = 0;
    char *data = s_big_photo (&server, path, sizeof path, &len);
    char sha [65], key [200], address [260];
    s_sha256_hex (data, len, sha);
    s_object_key (sha, "", key, sizeof key);
    snprintf (address, sizeof address, "s3 UploadPart 200 /photos/%s", key);
    char declared [128], url [128];
    snprintf (declared, sizeof declared, "X-Content-SHA256: %s", sha);
    snprintf (url, sizeof url, "%s/api/v1/photos", server.base);

    //  A lie first: another photo's digest on these bytes (the last one
    //  changed), held at 17 MiB until two parts are at the lied address
    char *other = malloc (len);
    memcpy (other, data, len);
    other [len - 3] ^= 0x55;
    char lie_sha [65], lie_key [200], lie_header [128];
    s_sha256_hex (other, len, lie_sha);
    s_object_key (lie_sha, "", lie_key, sizeof lie_key);
    snprintf (lie_header, sizeof lie_header, "X-Content-SHA256: %s", lie_sha);
    const char *lie_headers [] = { "Content-Type: image/jpeg", "X-Filename: lie.jpg", lie_header, NULL };
    rp_test_reply_t reply;
    long status = rp_test_http (&(rp_test_http_t) { .method = "POST", .url = url, .token = token,
                                                     .headers = lie_headers, .body = data, .len = len,
                                                     .timeout_ms = 90000 }, &reply);
    cr_assert_eq (status, 400, "a body that is not what it declared: %ld %s", status, reply.body);
    cr_expect (strstr (reply.body, "X-Content-SHA256"), "%s", reply.body);
    rp_test_reply_free (&reply);
    char aborted [260];
    snprintf (aborted, sizeof aborted, "s3 AbortMultipartUpload 204 /photos/%s", lie_key);
    cr_assert (rp_test_aws_log_wait (&aws, aborted, 1, 20000), "its stream to %s was aborted (log: %s)", lie_key,
               aws.log);
    cr_expect_eq (rp_test_count_in_file (aws.log, "s3 CompleteMultipartUpload"), 0);
    char *listing = rp_test_aws_ls (&aws);
    cr_expect_eq (s_lines (listing), 0, "nothing is in the bucket:\n%s", listing);
    free (listing);
    free (other);

    //  The truth: parts at the address while it arrives, completed there, no copy
    s_stream_watch_t watch = { .aws = &aws, .needle = address };
    const char *headers [] = { "Content-Type: image/jpeg", "X-Filename: big.jpg", declared, NULL };
    status = rp_test_http (&(rp_test_http_t) { .method = "POST", .url = url, .token = token,
                                                .headers = headers, .body = data, .len = len,
                                                .pace_bytes = 1 << 20, .pace_ms = 10,
                                                .sent = s_stream_progress, .arg = &watch,
                                                .timeout_ms = 90000 }, &reply);
    cr_assert_eq (status, 202, "the upload: %ld %s (log: %s)", status, reply.body, server.log);
    rp_test_reply_free (&reply);
    cr_assert (watch.parts_in_time, "S3 had not taken two parts at %s before the last 1 MiB was sent (log: %s)",
               key, aws.log);
    char completed [260];
    snprintf (completed, sizeof completed, "s3 CompleteMultipartUpload 200 /photos/%s", key);
    cr_assert_eq (rp_test_count_in_file (aws.log, completed), 1, "completed at the address (log: %s)", aws.log);
    cr_expect_eq (rp_test_count_in_file (aws.log, "s3 CopyObject"), 0, "nothing copied");
    cr_expect_eq (rp_test_count_in_file (aws.log, "/photos/streams/"), 0, "nothing under streams/");
    char file [700];
    snprintf (file, sizeof file, "%s/original", aws.dir);
    size_t stored_len = 0;
    char *stored = s_aws_download (&aws, key, file, &stored_len);
    cr_assert (s_same (stored, stored_len, data, len), "s3://photos/%s is not what was uploaded", key);
    free (stored);
    free (data);
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

Test (aws_bridges, a_large_upload_cut_off_leaves_nothing_in_the_bucket, .timeout = 120)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-stream-cut", NULL);
    rp_test_server_t server;
    const char *more [] = { "RAPIDPHOTO_LIMITS_MAX_UPLOAD_BYTES=41943040", NULL };
    s_engine_start_more (&server, &aws, "aws-stream-cut", false, 0, NULL, more);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");
    char path [600];
    size_t len = 0;
    char *data = s_big_photo (&server, path, sizeof path, &len);

    //  17 MiB of it, then the client goes away
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) server.port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    cr_assert_eq (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    char head [1024];
    int head_len = snprintf (head, sizeof head, "POST /api/v1/photos HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Authorization: Bearer %s\r\nContent-Type: image/jpeg\r\n"
                             "X-Filename: cut.jpg\r\nContent-Length: %zu\r\n\r\n", token, len);
    cr_assert_eq (write (fd, head, (size_t) head_len), head_len);
    for (size_t sent = 0; sent < (size_t) (17 << 20);) {
        ssize_t n = write (fd, data + sent, (size_t) (17 << 20) - sent);
        cr_assert_gt (n, 0, "the gateway stopped reading: %s", strerror (errno));
        sent += (size_t) n;
    }
    cr_assert (rp_test_aws_log_wait (&aws, "s3 UploadPart 200 /photos/streams/", 2, 20000),
               "two parts reached S3 (log: %s)", aws.log);
    close (fd);
    //  The multipart upload is aborted: no object, no part kept
    cr_assert (rp_test_aws_log_wait (&aws, "s3 AbortMultipartUpload 204 /photos/streams/", 1, 20000),
               "the stream was aborted (stand-ins' log: %s; engine's: %s)", aws.log, server.log);
    cr_expect_eq (rp_test_count_in_file (aws.log, "s3 CompleteMultipartUpload"), 0);
    cr_expect_eq (rp_test_count_in_file (aws.log, "s3 CopyObject"), 0);
    char *listing = rp_test_aws_ls (&aws);
    cr_expect_eq (s_lines (listing), 0, "the bucket is empty:\n%s", listing);
    free (listing);
    cr_expect_eq (rp_test_photo_rows (&server), 0, "no photo of an upload that never ended");
    free (data);
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

//  ---------------------------------------------------------------------------

Test (aws_bridges, bulk_import_through_the_s3_event, .timeout = 90)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-import", NULL);
    rp_test_server_t server;
    s_engine_start (&server, &aws, "aws-import", false, 0, NULL);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");

    //  An operator puts a file into alice's import folder; the key has a
    //  space, which S3 announces as '+'
    char path [600], sha [65];
    rp_test_server_photo (&server, "import.jpg", 40, path, sizeof path);
    s_file_sha256 (path, sha);
    int rc = rp_test_aws_cli (&aws, aws.s3, NULL, "s3 cp --only-show-errors '%s' 's3://photos/incoming/alice/summer day.jpg'",
                        path);
    cr_assert_eq (rc, 0, "aws s3 cp failed: %s", rp_test_aws_err (&aws));

    json_t *photo = s_wait_named (&server, token, "summer day.jpg", 40000);
    cr_assert_not_null (photo, "no photo of alice named \"summer day.jpg\" after 40 s (log: %s)", server.log);
    cr_assert_str_eq (json_string_value (json_object_get (photo, "status")), "complete", "%s (log: %s)",
                      json_dumps (photo, JSON_COMPACT), server.log);
    cr_expect_str_eq (json_string_value (json_object_get (photo, "sha256")), sha);
    char id [RP_ID_MAX];
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (photo, "id")));
    json_decref (photo);
    size_t sent_len = 0;
    char *sent = rp_test_read_file (path, &sent_len);
    rp_test_reply_t served = s_download (&server, token, id, "original");
    cr_expect (s_same (sent, sent_len, served.body, served.len), "the imported photo's original is the file put");
    rp_test_reply_free (&served);
    free (sent);

    //  Its photo.complete event, received with the aws CLI
    char original [200], thumbnail [200], preview [200];
    s_object_key (sha, "", original, sizeof original);
    s_object_key (sha, ".thumbnail.webp", thumbnail, sizeof thumbnail);
    s_object_key (sha, ".preview.jpg", preview, sizeof preview);
    json_t *event = NULL;
    int received = 0;
    for (int64_t end = s_now_ms () + 30000; !event && s_now_ms () < end; ) {
        json_t *bodies = s_aws_receive (&aws, aws.events, 2, 300);
        size_t i;
        json_t *body;
        json_array_foreach (bodies, i, body) {
            received++;
            if (streq (json_string_value (json_object_get (body, "id")) ?: "", id) && !event)
                event = json_incref (body);
        }
        json_decref (bodies);
    }
    cr_assert_not_null (event, "no event names photo %s on the events queue (%d other messages; log: %s)", id,
                        received, server.log);
    char *text = json_dumps (event, JSON_COMPACT);
    cr_expect_str_eq (json_string_value (json_object_get (event, "type")) ?: "", "photo.complete", "%s", text);
    cr_expect_str_eq (json_string_value (json_object_get (event, "user")) ?: "", "alice", "%s", text);
    cr_expect_str_eq (json_string_value (json_object_get (event, "sha256")) ?: "", sha, "%s", text);
    cr_expect_str_eq (json_string_value (json_object_get (event, "original")) ?: "", original, "%s", text);
    json_t *derivatives = json_object_get (event, "derivatives");
    cr_expect_str_eq (json_string_value (json_object_get (derivatives, "thumbnail")) ?: "", thumbnail, "%s", text);
    cr_expect_str_eq (json_string_value (json_object_get (derivatives, "preview")) ?: "", preview, "%s", text);
    cr_expect (json_is_null (json_object_get (event, "error")), "%s", text);
    cr_expect_eq (json_integer_value (json_object_get (event, "bytes")), (json_int_t) sent_len, "%s", text);
    //  Its placeholder (issue 14): the base64 of a ThumbHash
    json_t *thumbhash = json_object_get (event, "thumbhash");
    cr_expect (json_is_string (thumbhash)
               && rp_thumbhash_valid (json_string_value (thumbhash), json_string_length (thumbhash)),
               "no placeholder: %s", text);
    free (text);
    json_decref (event);

    //  The ingest queue is left empty: the object's message and the
    //  s3:TestEvent were deleted once handled
    int depth = -1;
    for (int64_t end = s_now_ms () + 15000; s_now_ms () < end; usleep (500 * 1000))
        if ((depth = s_aws_queue_depth (&aws, aws.ingest)) == 0)
            break;
    cr_expect_eq (depth, 0, "the ingest queue still holds %d messages (log: %s)", depth, server.log);
    //  And one photo was made of it
    cr_expect_eq (rp_test_photo_rows (&server), 1);
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

//  ---------------------------------------------------------------------------

Test (aws_bridges, unprocessable_object_ends_in_the_dead_letter_queue, .timeout = 90)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-dlq", NULL);
    rp_test_server_t server;
    //  Received messages hidden 5 s (the shortest the engine takes): the
    //  three receives before redrive are quick
    s_engine_start (&server, &aws, "aws-dlq", false, 5, NULL);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");

    char lost [600], found [600];
    rp_test_server_photo (&server, "lost.jpg", 50, lost, sizeof lost);
    rp_test_server_photo (&server, "found.jpg", 51, found, sizeof found);
    int rc = rp_test_aws_cli (&aws, aws.s3, NULL, "s3 cp --only-show-errors '%s' 's3://photos/incoming/nosuchuser/lost.jpg'",
                        lost);
    cr_assert_eq (rc, 0, "aws s3 cp failed: %s", rp_test_aws_err (&aws));
    //  A good object at the same time is not held up by the bad one
    rc = rp_test_aws_cli (&aws, aws.s3, NULL, "s3 cp --only-show-errors '%s' 's3://photos/incoming/alice/found.jpg'", found);
    cr_assert_eq (rc, 0, "aws s3 cp failed: %s", rp_test_aws_err (&aws));

    json_t *dead = NULL;
    for (int64_t end = s_now_ms () + 50000; !dead && s_now_ms () < end; ) {
        json_t *bodies = s_aws_receive (&aws, aws.dlq, 5, 300);
        size_t i;
        json_t *body;
        json_array_foreach (bodies, i, body) {
            json_t *record = json_array_get (json_object_get (body, "Records"), 0);
            const char *key = json_string_value (json_object_get (json_object_get (json_object_get (record, "s3"),
                                                                                   "object"), "key"));
            cr_assert_not_null (key, "only the unprocessable object's message is dead: %s",
                                json_dumps (body, JSON_COMPACT));
            cr_assert_str_eq (key, "incoming/nosuchuser/lost.jpg");
            dead = json_incref (body);
        }
        json_decref (bodies);
    }
    cr_assert_not_null (dead, "the message for incoming/nosuchuser/lost.jpg never reached ingest-dlq (log: %s)",
                        server.log);
    json_decref (dead);

    json_t *photo = s_wait_named (&server, token, "found.jpg", 20000);
    cr_assert_not_null (photo, "found.jpg did not become alice's photo (log: %s)", server.log);
    cr_expect_str_eq (json_string_value (json_object_get (photo, "status")), "complete");
    json_decref (photo);
    //  Nobody got a photo of the object with no user
    cr_expect_eq (rp_test_photo_rows (&server), 1, "only found.jpg made a photo");
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

//  ---------------------------------------------------------------------------
//  Presigned uploads

//  POST /uploads/presign; on 201 the answer (caller decrefs).
static json_t *
s_presign (rp_test_server_t *server, const char *token, const char *filename, size_t bytes, const char *sha)
{
    char body [512];
    snprintf (body, sizeof body, "{\"filename\":\"%s\",\"bytes\":%zu,\"sha256\":\"%s\"}", filename, bytes, sha);
    rp_test_reply_t reply;
    long status = rp_test_json_request (server, "POST", "/api/v1/uploads/presign", token, body, &reply);
    cr_assert_eq (status, 201, "presign answers %ld: %s (log: %s)", status, reply.body, server->log);
    json_t *answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    cr_assert_not_null (answer);
    const char *id = json_string_value (json_object_get (answer, "id"));
    const char *url = json_string_value (json_object_get (answer, "url"));
    cr_assert (id && url, "%s", json_dumps (answer, JSON_COMPACT));
    cr_expect_str_eq (json_string_value (json_object_get (answer, "method")) ?: "", "PUT");
    cr_expect (json_is_object (json_object_get (answer, "headers")));
    cr_expect (json_is_string (json_object_get (answer, "expires_at")));
    char key [128];
    snprintf (key, sizeof key, "uploads/%s", id);
    cr_expect_str_eq (json_string_value (json_object_get (answer, "key")) ?: "", key);
    cr_expect (strstr (url, "X-Amz-Signature="), "a presigned URL: %s", url);
    //  Until the bytes arrive the photo is uploading
    json_t *photo = s_photo (server, token, id);
    cr_expect_str_eq (json_string_value (json_object_get (photo, "status")) ?: "", "uploading");
    json_decref (photo);
    return answer;
}

//  PUT a file to a presigned URL with the headers presign asked for; the status.
static long
s_presigned_put (const json_t *presigned, const char *path)
{
    enum { HEADERS = 16 };
    char lines [HEADERS][1024];
    const char *headers [HEADERS + 1];
    size_t n = 0;
    const char *name;
    json_t *value;
    json_object_foreach ((json_t *) json_object_get (presigned, "headers"), name, value) {
        cr_assert_lt (n, (size_t) HEADERS, "presign asked for more than %d headers", HEADERS);
        snprintf (lines [n], sizeof lines [n], "%s: %s", name, json_string_value (value) ?: "");
        headers [n] = lines [n];
        n++;
    }
    headers [n] = NULL;
    rp_test_reply_t answer;
    long status = rp_test_http (&(rp_test_http_t) { .method = "PUT",
                                                    .url = json_string_value (json_object_get (presigned, "url")),
                                                    .headers = headers, .upload = path, .timeout_ms = 30000 },
                                &answer);
    cr_assert_eq (answer.result, CURLE_OK, "presigned PUT: %s", curl_easy_strerror (answer.result));
    cr_expect_eq (status, 200, "the presigned PUT answers %ld: %s", status, answer.body);
    rp_test_reply_free (&answer);
    return status;
}

//  POST /uploads/{id}/complete; the status, the reply's body in *body (caller frees).
static long
s_complete (rp_test_server_t *server, const char *token, const char *id, char **body)
{
    char path [128];
    snprintf (path, sizeof path, "/api/v1/uploads/%s/complete", id);
    rp_test_reply_t reply;
    long status = rp_test_json_request (server, "POST", path, token, NULL, &reply);
    *body = reply.body ? strdup (reply.body) : strdup ("");
    rp_test_reply_free (&reply);
    return status;
}

Test (aws_bridges, presigned_uploads_completed_by_the_client, .timeout = 90)
{
    //  S3 announces only incoming/ here: the complete call is the only way
    //  a presigned upload gets done, so each answer below is deterministic
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-presign", "incoming/");
    rp_test_server_t server;
    s_engine_start (&server, &aws, "aws-presign", false, 0, NULL);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");

    //  good is PUT as declared; other is PUT where phantom's checksum was
    //  declared (alice has neither other nor phantom: no duplicate); third
    //  is PUT with its checksum but one byte less than declared
    char good [600], other [600], phantom [600], third [600], sha [65], phantom_sha [65], third_sha [65];
    rp_test_server_photo (&server, "good.jpg", 60, good, sizeof good);
    rp_test_server_photo (&server, "other.jpg", 61, other, sizeof other);
    rp_test_server_photo (&server, "phantom.jpg", 62, phantom, sizeof phantom);
    rp_test_server_photo (&server, "third.jpg", 63, third, sizeof third);
    s_file_sha256 (good, sha);
    s_file_sha256 (phantom, phantom_sha);
    s_file_sha256 (third, third_sha);
    size_t good_len = 0, other_len = 0, third_len = 0;
    char *good_bytes = rp_test_read_file (good, &good_len);
    free (rp_test_read_file (other, &other_len));
    free (rp_test_read_file (third, &third_len));

    //  presign -> complete too early (409) -> PUT -> complete (202) -> complete photo
    json_t *presigned = s_presign (&server, token, "presigned.jpg", good_len, sha);
    char id [RP_ID_MAX];
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (presigned, "id")));
    char *body = NULL;
    long status = s_complete (&server, token, id, &body);
    cr_expect_eq (status, 409, "complete before the object is in the bucket: %ld %s", status, body);
    free (body);
    s_presigned_put (presigned, good);
    status = s_complete (&server, token, id, &body);
    cr_assert_eq (status, 202, "complete: %ld %s (log: %s)", status, body, server.log);
    json_error_t jerr;
    json_t *answer = json_loads (body, 0, &jerr);
    cr_expect_str_eq (json_string_value (json_object_get (answer, "id")) ?: "", id, "%s", body);
    cr_expect_str_eq (json_string_value (json_object_get (answer, "status")) ?: "", "queued",
                      "complete's 202 shows the photo as it queued it, not as the pipeline has it since: %s", body);
    json_decref (answer);
    free (body);
    json_decref (presigned);
    char *final = rp_test_wait_final (&server, token, id, 30000);
    cr_assert_str_eq (final, "complete", "the presigned upload %s is %s (log: %s)", id, final, server.log);
    free (final);
    rp_test_reply_t served = s_download (&server, token, id, "original");
    cr_expect (s_same (good_bytes, good_len, served.body, served.len), "the original is the bytes PUT");
    rp_test_reply_free (&served);
    served = s_download (&server, token, id, "thumbnail");
    cr_expect (served.len > 12 && memcmp (served.body + 8, "WEBP", 4) == 0, "a thumbnail was made");
    rp_test_reply_free (&served);
    char key [200];
    s_object_key (sha, "", key, sizeof key);
    char file [400];
    snprintf (file, sizeof file, "%s/presigned-original", aws.dir);
    size_t len = 0;
    char *stored = s_aws_download (&aws, key, file, &len);
    cr_expect (s_same (good_bytes, good_len, stored, len), "s3://photos/%s is the bytes PUT", key);
    free (stored);

    //  A declared SHA-256 the bytes do not have: 422, and the photo failed
    //  saying why
    presigned = s_presign (&server, token, "mislabelled.jpg", other_len, phantom_sha);
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (presigned, "id")));
    s_presigned_put (presigned, other);
    status = s_complete (&server, token, id, &body);
    cr_expect_eq (status, 422, "complete with another SHA-256 than declared: %ld %s", status, body);
    free (body);
    json_decref (presigned);
    final = rp_test_wait_final (&server, token, id, 15000);
    cr_expect_str_eq (final, "failed");
    free (final);
    json_t *photo = s_photo (&server, token, id);
    const char *error = json_string_value (json_object_get (photo, "error"));
    cr_expect (error && (strcasestr (error, "sha-256") || strcasestr (error, "sha256")),
               "the reason names the checksum mismatch: %s", error ?: "(none)");
    json_decref (photo);

    //  A declared size the object does not have: the same
    presigned = s_presign (&server, token, "short.jpg", third_len + 1, third_sha);
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (presigned, "id")));
    s_presigned_put (presigned, third);
    status = s_complete (&server, token, id, &body);
    cr_expect_eq (status, 422, "complete with another size than declared: %ld %s", status, body);
    free (body);
    json_decref (presigned);
    final = rp_test_wait_final (&server, token, id, 15000);
    cr_expect_str_eq (final, "failed");
    free (final);
    photo = s_photo (&server, token, id);
    error = json_string_value (json_object_get (photo, "error"));
    cr_expect (error && (strcasestr (error, "size") || strcasestr (error, "bytes")),
               "the reason names the size mismatch: %s", error ?: "(none)");
    json_decref (photo);

    free (good_bytes);
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

Test (aws_bridges, presigned_upload_completed_by_the_s3_event, .timeout = 90)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-presign-event", NULL);
    rp_test_server_t server;
    s_engine_start (&server, &aws, "aws-presign-event", false, 0, NULL);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");

    char path [600], sha [65];
    rp_test_server_photo (&server, "event.jpg", 70, path, sizeof path);
    s_file_sha256 (path, sha);
    size_t sent_len = 0;
    char *sent = rp_test_read_file (path, &sent_len);
    json_t *presigned = s_presign (&server, token, "by-event.jpg", sent_len, sha);
    char id [RP_ID_MAX];
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (presigned, "id")));
    s_presigned_put (presigned, path);
    json_decref (presigned);
    //  No complete call: the S3 event on the ingest queue is enough
    char *final = rp_test_wait_final (&server, token, id, 30000);
    cr_assert_str_eq (final, "complete", "the presigned upload %s is %s without a complete call (log: %s)", id,
                      final, server.log);
    free (final);
    json_t *photo = s_photo (&server, token, id);
    cr_expect_str_eq (json_string_value (json_object_get (photo, "filename")) ?: "", "by-event.jpg");
    cr_expect_str_eq (json_string_value (json_object_get (photo, "sha256")) ?: "", sha);
    json_decref (photo);
    rp_test_reply_t served = s_download (&server, token, id, "original");
    cr_expect (s_same (sent, sent_len, served.body, served.len), "the original is the bytes PUT");
    rp_test_reply_free (&served);
    free (sent);
    cr_expect_eq (rp_test_photo_rows (&server), 1, "one photo of one presigned upload");
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

//  ---------------------------------------------------------------------------

//  Which of the logs mention a photo id (by file content); -1 for none.
static int
s_processed_by (const char *const logs [], int count, const char *id)
{
    for (int i = 0; i < count; i++)
        if (rp_test_count_in_file (logs [i], id) > 0)
            return i;
    return -1;
}

Test (aws_bridges, two_engines_share_one_ingest_queue, .timeout = 150)
{
    bool pg = rp_test_pg_enabled ();
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-two", NULL);
    rp_test_server_t first, second;
    //  One database (PostgreSQL in CI, else a SQLite file both open), one
    //  bucket and queue; each engine with its own data folder
    s_engine_start (&first, &aws, pg ? "aws_two" : "aws-two", pg, 0, NULL);
    s_engine_start (&second, &aws, "aws-two-second", pg, 0, first.db_url);
    s_engine_ready (&first);
    s_engine_ready (&second);
    cr_log_info ("two engines on %s: %s and %s", pg ? "PostgreSQL" : "SQLite", first.log, second.log);

    enum { PHOTOS = 200 };
    char folder [320];
    snprintf (folder, sizeof folder, "%s/bulk", aws.dir);
    cr_assert_eq (mkdir (folder, 0755), 0);
    zhash_t *names = zhash_new ();
    for (int i = 0; i < PHOTOS; i++) {
        char name [32], path [400];
        snprintf (name, sizeof name, "bulk-%03d.jpg", i);
        snprintf (path, sizeof path, "%s/%s", folder, name);
        //  Each its own size: 200 distinct files
        cr_assert_eq (rp_test_make_jpeg (path, 160 + i % 40, 120 + i / 40, 0), 0);
        zhash_insert (names, name, "");
    }
    int64_t started = s_now_ms ();
    int rc = rp_test_aws_cli (&aws, aws.s3, NULL, "s3 cp --only-show-errors --recursive '%s' s3://photos/incoming/alice/",
                        folder);
    cr_assert_eq (rc, 0, "aws s3 cp --recursive failed: %s", rp_test_aws_err (&aws));
    cr_log_info ("%d photos put into s3://photos/incoming/alice/ in %.1f s", PHOTOS,
                 (double) (s_now_ms () - started) / 1000);

    //  Exactly 200 photos of alice, all complete
    char *token = rp_test_login (&first, "alice");
    size_t complete = 0;
    for (int64_t end = s_now_ms () + 90000; s_now_ms () < end; usleep (500 * 1000)) {
        json_t *items = s_photos (&first, token, "complete");
        complete = json_array_size (items);
        json_decref (items);
        if (complete >= PHOTOS)
            break;
    }
    cr_log_info ("%zu photos complete %.1f s after the put began", complete, (double) (s_now_ms () - started) / 1000);
    json_t *items = s_photos (&first, token, NULL);
    cr_assert_eq (json_array_size (items), PHOTOS, "alice has %zu photos, not %d (%zu complete; logs: %s %s)",
                  json_array_size (items), PHOTOS, complete, first.log, second.log);
    zhash_t *shas = zhash_new (), *seen_names = zhash_new (), *ids = zhash_new ();
    const char *logs [] = { first.log, second.log };
    int by [2] = { 0, 0 }, unknown = 0;
    size_t i;
    json_t *photo;
    json_array_foreach (items, i, photo) {
        const char *id = json_string_value (json_object_get (photo, "id"));
        const char *name = json_string_value (json_object_get (photo, "filename"));
        const char *sha = json_string_value (json_object_get (photo, "sha256"));
        cr_assert (id && name && sha);
        cr_expect_str_eq (json_string_value (json_object_get (photo, "status")), "complete", "%s: %s", name,
                          json_string_value (json_object_get (photo, "error")) ?: "");
        cr_expect_eq (zhash_insert (shas, sha, ""), 0, "two photos have sha256 %s", sha);
        cr_expect_eq (zhash_insert (seen_names, name, ""), 0, "two photos are named %s", name);
        cr_expect_not_null (zhash_lookup (names, name), "a photo named %s was never put", name);
        zhash_insert (ids, id, "");
        int engine = s_processed_by (logs, 2, id);
        if (engine < 0)
            unknown++;
        else
            by [engine]++;
    }
    cr_expect_eq (zhash_size (shas), PHOTOS);
    cr_expect_eq (zhash_size (seen_names), PHOTOS);
    cr_expect_eq (rp_test_photo_rows (&first), PHOTOS, "no other photo rows (none failed, none made twice)");
    cr_log_info ("photos by engine (their ids in its log): first %d, second %d, neither log %d", by [0], by [1],
                 unknown);

    //  The events queue: one photo.complete for each, none for anything else
    rp_test_events_t events;
    rp_test_aws_events (&aws, ids, 30000, &events);
    cr_log_info ("events queue: %d messages, %zu distinct photo.complete ids", events.messages,
                 zhash_size (events.announced));
    cr_expect_eq (zhash_size (events.announced), PHOTOS, "photo.complete for %zu of %d photos",
                  zhash_size (events.announced), PHOTOS);
    cr_expect_eq (events.repeats, 0, "%d photos were announced more than once", events.repeats);
    cr_expect_eq (events.others, 0, "%d events name no photo of this test or are not photo.complete", events.others);

    zhash_destroy (&events.announced);
    zhash_destroy (&ids);
    zhash_destroy (&seen_names);
    zhash_destroy (&shas);
    zhash_destroy (&names);
    json_decref (items);
    free (token);
    //  Both stop at once, as an ECS service scaled in
    kill (second.pid, SIGTERM);
    rp_test_server_stop (&first);
    int status = rp_test_wait (second.pid, 30000);
    cr_expect_eq (status, 0, "serve exits cleanly on SIGTERM (log: %s)", second.log);
    rp_test_aws_stop (&aws);
}

//  ---------------------------------------------------------------------------

//  An upload retried until S3 takes it, as a client would, waiting what
//  Retry-After says (at most 2 s a time); its last status.
static long
s_upload_retried (rp_test_server_t *server, const char *token, const char *path, const char *name,
                  char id [RP_ID_MAX], char sha [65], int timeout_ms)
{
    long status = 0;
    for (int64_t end = s_now_ms () + timeout_ms; s_now_ms () < end; ) {
        rp_test_reply_t reply;
        status = s_upload (server, token, path, name, id, sha, &reply);
        const char *after = rp_test_header_value (&reply, "Retry-After");
        int wait_s = after ? atoi (after) : 1;
        cr_assert (status == 202 || status == 503, "upload of %s answers %ld: %s", name, status, reply.body);
        rp_test_reply_free (&reply);
        if (status == 202)
            break;
        usleep ((useconds_t) (wait_s < 1 ? 1 : wait_s > 2 ? 2 : wait_s) * 1000 * 1000);
    }
    return status;
}

Test (aws_bridges, s3_outage_loses_no_acknowledged_photo, .timeout = 150)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-fault", NULL);
    rp_test_server_t server;
    s_engine_start (&server, &aws, "aws-fault", false, 0, NULL);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");

    enum { MAX = 48 };
    char acked [MAX][RP_ID_MAX], acked_sha [MAX][65], refused [MAX][600];
    int n_acked = 0, n_refused = 0, variant = 0;

    //  Uploads go on; S3 goes away while the first ones are being processed
    for (int i = 0; i < 6; i++, variant++) {
        char name [32], path [600];
        snprintf (name, sizeof name, "fault-%02d.jpg", variant);
        rp_test_server_photo (&server, name, 100 + variant, path, sizeof path);
        rp_test_reply_t reply;
        long status = s_upload (&server, token, path, name, acked [n_acked], acked_sha [n_acked], &reply);
        cr_assert_eq (status, 202, "upload while S3 is up: %ld %s", status, reply.body);
        rp_test_reply_free (&reply);
        n_acked++;
    }
    s_aws_s3_close (&aws, 1);
    int64_t closed_at = s_now_ms ();
    bool readyz_said = false;
    while ((s_now_ms () - closed_at < 4000 || n_refused < 2) && n_refused < 12) {
        char name [32], path [600], id [RP_ID_MAX], sha [65];
        snprintf (name, sizeof name, "fault-%02d.jpg", variant);
        rp_test_server_photo (&server, name, 100 + variant, path, sizeof path);
        variant++;
        rp_test_reply_t reply;
        long status = s_upload (&server, token, path, name, id, sha, &reply);
        //  Never acknowledged while the bytes cannot be made durable
        cr_assert_eq (status, 503, "upload while S3 is down answers %ld, not 503: %s (log: %s)", status, reply.body,
                      server.log);
        cr_expect (rp_test_has_header (&reply, "Retry-After:"), "a 503 with Retry-After");
        cr_expect (rp_test_has_header (&reply, "application/problem+json"), "a problem+json");
        cr_expect (reply.body && strstr (reply.body, "S3"), "the problem names S3: %s", reply.body);
        rp_test_reply_free (&reply);
        snprintf (refused [n_refused++], 600, "%s", path);
        if (!readyz_said) {
            //  /readyz says storage is down, and that it is S3
            json_t *checks = NULL;
            for (int64_t end = s_now_ms () + 3000; s_now_ms () < end; usleep (100 * 1000)) {
                json_decref (checks);
                checks = NULL;
                if (s_readyz (&server, &checks) == 503)
                    break;
            }
            //  By name only; what failed and why is in the log, naming S3
            const char *storage = json_string_value (json_object_get (checks, "storage"));
            cr_expect (storage && streq (storage, "down"), "/readyz while S3 is down: %s",
                       json_dumps (checks, JSON_COMPACT));
            char *said = json_dumps (checks, JSON_COMPACT);
            cr_expect (said && !strstr (said, "photos"), "/readyz names no bucket: %s", said);
            free (said);
            json_decref (checks);
            cr_expect_gt (rp_test_count_in_file (server.log, "readiness: storage is down: S3 bucket photos"), 0,
                          "the log says why (log: %s)", server.log);
            readyz_said = true;
        }
    }
    cr_log_info ("S3 closed %.1f s: %d uploads answered 503", (double) (s_now_ms () - closed_at) / 1000, n_refused);
    s_aws_s3_open (&aws, 1);

    //  The refused uploads, sent again, are taken; and new ones too
    for (int r = 0; r < n_refused; r++) {
        char name [32];
        snprintf (name, sizeof name, "%s", strrchr (refused [r], '/') + 1);
        long status = s_upload_retried (&server, token, refused [r], name, acked [n_acked], acked_sha [n_acked],
                                        30000);
        cr_assert_eq (status, 202, "%s, retried after S3 came back, answers %ld (log: %s)", name, status, server.log);
        n_acked++;
    }
    for (int i = 0; i < 3; i++, variant++) {
        char name [32], path [600];
        snprintf (name, sizeof name, "fault-%02d.jpg", variant);
        rp_test_server_photo (&server, name, 100 + variant, path, sizeof path);
        long status = s_upload_retried (&server, token, path, name, acked [n_acked], acked_sha [n_acked], 30000);
        cr_assert_eq (status, 202, "an upload after S3 came back answers %ld (log: %s)", status, server.log);
        n_acked++;
    }
    //  Every acknowledged photo completes, its original in the bucket
    for (int i = 0; i < n_acked; i++) {
        char *final = rp_test_wait_final (&server, token, acked [i], 40000);
        cr_expect_str_eq (final, "complete", "acknowledged photo %s is %s (log: %s)", acked [i], final, server.log);
        free (final);
    }
    char *listing = rp_test_aws_ls (&aws);
    for (int i = 0; i < n_acked; i++) {
        char key [200];
        s_object_key (acked_sha [i], "", key, sizeof key);
        cr_expect (s_listed (listing, key), "the original of acknowledged photo %s (%s) is not in the bucket",
                   acked [i], key);
    }
    free (listing);
    cr_expect (s_readyz_wait (&server, 200, 15000), "/readyz is ready again once S3 is back");
    //  The refused uploads left nothing behind: one row per acknowledged photo
    cr_expect_eq (rp_test_photo_rows (&server), n_acked);
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

//  ---------------------------------------------------------------------------
//  The blob store in S3 mode, in-process: the local cache is only a cache

//  A blob store in S3 mode on the stand-ins, in this process, its cache in
//  <the test's folder>/<folder>: as another engine's would be.
static rp_blobstore_t *
s_blobstore (const rp_test_aws_t *aws, const char *folder)
{
    setenv ("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv ("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    setenv ("AWS_REGION", "us-east-1", 1);
    setenv ("AWS_ENDPOINT_URL_S3", aws->s3, 1);
    unsetenv ("AWS_SESSION_TOKEN");
    rp_config_t config;
    rp_config_defaults (&config);
    snprintf (config.data_dir, sizeof config.data_dir, "%s/%s", aws->dir, folder);
    snprintf (config.storage_backend, sizeof config.storage_backend, "s3");
    snprintf (config.storage_s3_bucket, sizeof config.storage_s3_bucket, "photos");
    char err [512] = "";
    rp_blobstore_t *blobs = rp_blobstore_open (&config, err, sizeof err);
    cr_assert_not_null (blobs, "%s", err);
    return blobs;
}

Test (aws_bridges, the_local_cache_is_trimmed_and_refilled_from_s3, .timeout = 60)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-cache", NULL);
    char err [512] = "";
    rp_blobstore_t *blobs = s_blobstore (&aws, "cache");

    //  Two blobs stored (each durable in S3 once committed)
    char sha [2][65], path [2][PATH_MAX];
    for (int i = 0; i < 2; i++) {
        rp_blob_writer_t *writer = rp_blob_begin (blobs, 1 << 20, err, sizeof err);
        cr_assert_not_null (writer, "%s", err);
        char bytes [64];
        snprintf (bytes, sizeof bytes, "blob number %d, any bytes will do", i);
        cr_assert_eq (rp_blob_write (writer, bytes, strlen (bytes), err, sizeof err), 0, "%s", err);
        bool existed = true;
        cr_assert_eq (rp_blob_commit (&writer, sha [i], &existed, err, sizeof err), 0, "%s", err);
        cr_assert_not (existed);
        rp_blob_path (blobs, sha [i], path [i], sizeof path [i]);
        cr_assert_eq (access (path [i], F_OK), 0);
    }
    //  The first was written two hours ago; the trim keeps only the last hour
    struct timespec old [2] = { { time (NULL) - 7200, 0 }, { time (NULL) - 7200, 0 } };
    cr_assert_eq (utimensat (AT_FDCWD, path [0], old, 0), 0);
    int removed = -1;
    cr_assert_eq (rp_blobstore_trim_cache (blobs, 3600, NULL, NULL, &removed), 0);
    cr_assert_eq (removed, 1);
    cr_assert_neq (access (path [0], F_OK), 0, "the old file left the cache");
    cr_assert_eq (access (path [1], F_OK), 0, "the fresh one stayed");
    //  Needed again: fetched from S3, checked against its name
    cr_assert_eq (rp_blob_fetch (blobs, sha [0], err, sizeof err), 0, "%s", err);
    cr_assert_eq (access (path [0], F_OK), 0);
    char again [65];
    s_file_sha256 (path [0], again);
    cr_assert_str_eq (again, sha [0]);
    //  A file fetched (used) is fresh again for the trim
    cr_assert_eq (utimensat (AT_FDCWD, path [1], old, 0), 0);
    cr_assert_eq (rp_blob_fetch (blobs, sha [1], err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_blobstore_trim_cache (blobs, 3600, NULL, NULL, &removed), 0);
    cr_assert_eq (removed, 0, "a file in use is kept");

    //  S3 away: an original not in the cache is unavailable, not failed
    cr_assert_eq (unlink (path [0]), 0);
    s_aws_s3_close (&aws, 1);
    int rc = rp_blob_fetch (blobs, sha [0], err, sizeof err);
    cr_assert_eq (rc, RP_UNAVAILABLE, "%d: %s", rc, err);
    s_aws_s3_open (&aws, 1);
    cr_assert_eq (rp_blob_fetch (blobs, sha [0], err, sizeof err), 0, "%s", err);
    rp_blobstore_close (&blobs);
    rp_test_aws_stop (&aws);
}

//  ---------------------------------------------------------------------------
//  Bytes an acknowledged photo needs, and bytes nobody needs (issue 13)

//  Poll a photo until it is processing; false on timeout.
static bool
s_wait_processing (rp_test_server_t *server, const char *token, const char *id, int timeout_ms)
{
    char path [128];
    snprintf (path, sizeof path, "/api/v1/photos/%s", id);
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        rp_test_reply_t reply;
        rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply);
        json_t *json = rp_test_reply_json (&reply);
        bool processing = streq (json_string_value (json_object_get (json, "status")) ?: "", "processing");
        json_decref (json);
        rp_test_reply_free (&reply);
        if (processing)
            return true;
        usleep (50 * 1000);
    }
    return false;
}

//  Files in a data folder's objects/ab/cd/ named after sha (the original,
//  its derivatives, their temporaries).
static int
s_cached_files (const char *data_dir, const char *sha)
{
    char dir [600];
    snprintf (dir, sizeof dir, "%s/objects/%.2s/%.2s", data_dir, sha, sha + 2);
    DIR *listing = opendir (dir);
    int count = 0;
    struct dirent *entry;
    while (listing && (entry = readdir (listing)))
        if (strncmp (entry->d_name, sha, 64) == 0)
            count++;
    if (listing)
        closedir (listing);
    return count;
}

Test (aws_bridges, derivatives_made_after_their_photo_was_deleted_do_not_stay, .timeout = 120)
{
    //  Jobs wait 3 s first: the photo is deleted while it is processing
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-late", NULL);
    rp_test_server_t server;
    const char *more [] = { "RP_FAULT_JOB_DELAY_MS=3000", NULL };
    s_engine_start_more (&server, &aws, "aws-late", false, 0, NULL, more);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");
    char path [600], id [RP_ID_MAX], sha [65];
    rp_test_server_photo (&server, "late.jpg", 41, path, sizeof path);
    rp_test_reply_t reply;
    cr_assert_eq (s_upload (&server, token, path, "late.jpg", id, sha, &reply), 202, "%s", reply.body);
    rp_test_reply_free (&reply);
    cr_assert (s_wait_processing (&server, token, id, 10000), "the photo is processing (log: %s)", server.log);

    //  Another engine (this process: its own cache, the same bucket and
    //  database) deletes the photo while its jobs wait
    rp_blobstore_t *blobs = s_blobstore (&aws, "other-engine");
    char err [512] = "";
    rp_db_t *db = rp_db_open (server.db_url, err, sizeof err);
    cr_assert_not_null (db, "%s", err);
    char alice [RP_ID_MAX];
    cr_assert_eq (rp_db_user_find (db, "alice", alice, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_library_delete (blobs, db, alice, id, err, sizeof err), 0, "%s", err);

    //  The engine's jobs finish after the delete and its pipeline drops
    //  the outcome; nothing of the photo stays, in the bucket or the cache
    bool dropped = false;
    for (int waited = 0; !dropped && waited < 15000; waited += 100) {
        dropped = rp_test_count_in_file (server.log, "no longer processing here") > 0;
        usleep (100 * 1000);
    }
    cr_assert (dropped, "the pipeline dropped the deleted photo's outcome (log: %s)", server.log);
    char *listing = NULL;
    for (int waited = 0; waited < 10000; waited += 200) {
        free (listing);
        listing = rp_test_aws_ls (&aws);
        if (!strstr (listing, sha) && s_cached_files (server.lib.dir, sha) == 0)
            break;
        usleep (200 * 1000);
    }
    cr_expect_null (strstr (listing, sha), "objects of the deleted photo stay in the bucket:\n%s", listing);
    cr_expect_eq (s_cached_files (server.lib.dir, sha), 0, "files of the deleted photo stay in the engine's cache");
    free (listing);
    rp_db_close (&db);
    rp_blobstore_close (&blobs);
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

Test (aws_bridges, the_cache_trim_keeps_what_a_job_is_using, .timeout = 120)
{
    //  Every file in the cache is past the grace at once, the trim comes
    //  every 200 ms, and jobs wait 1.5 s before they read the original
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-trim", NULL);
    rp_test_server_t server;
    const char *more [] = { "RAPIDPHOTO_STORAGE_ORPHAN_GRACE_S=0", "RP_FAULT_MINUTE_MS=200",
                            "RP_FAULT_JOB_DELAY_MS=1500", NULL };
    s_engine_start_more (&server, &aws, "aws-trim", false, 0, NULL, more);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");
    char path [600], id [RP_ID_MAX], sha [65];
    rp_test_server_photo (&server, "trim.jpg", 43, path, sizeof path);
    rp_test_reply_t reply;
    cr_assert_eq (s_upload (&server, token, path, "trim.jpg", id, sha, &reply), 202, "%s", reply.body);
    rp_test_reply_free (&reply);
    char *final = rp_test_wait_final (&server, token, id, 30000);
    cr_expect_str_eq (final, "complete", "the photo is %s (log: %s)", final, server.log);
    free (final);
    char *listing = rp_test_aws_ls (&aws);
    char key [200];
    s_object_key (sha, ".thumbnail.webp", key, sizeof key);
    cr_expect (s_listed (listing, key), "the thumbnail is in the bucket:\n%s", listing);
    free (listing);
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

//  ---------------------------------------------------------------------------
//  Hardening: presigned uploads bound and swept, keys whole and checked

//  Whether the bucket holds key (`aws s3api head-object`).
static bool
s_object_exists (const rp_test_aws_t *aws, const char *key)
{
    return rp_test_aws_cli (aws, aws->s3, NULL, "s3api head-object --bucket photos --key '%s'", key) == 0;
}

Test (aws_bridges, presigned_uploads_are_bounded_and_swept, .timeout = 120)
{
    //  S3 announces only incoming/: an object PUT under uploads/ is taken
    //  in only by a complete call, so one that never gets it stays behind
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-sweep", "incoming/");
    rp_test_server_t server;
    s_engine_start_more (&server, &aws, "aws-sweep", false, 0, NULL,
                         (const char *[]) { "RAPIDPHOTO_UPLOADS_TUS_EXPIRE_S=3", NULL });
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");
    char path [600], sha [65];
    rp_test_server_photo (&server, "swept.jpg", 80, path, sizeof path);
    s_file_sha256 (path, sha);
    size_t len = 0;
    free (rp_test_read_file (path, &len));

    //  Over limits.max_upload_bytes (8 MiB here): 413, naming it
    char body [512];
    snprintf (body, sizeof body, "{\"filename\":\"huge.jpg\",\"bytes\":%d,\"sha256\":\"%s\"}", (8 << 20) + 1, sha);
    rp_test_reply_t reply;
    cr_expect_eq (rp_test_json_request (&server, "POST", "/api/v1/uploads/presign", token, body, &reply), 413);
    cr_expect (reply.body && strstr (reply.body, "limits.max_upload_bytes"), "%s", reply.body);
    rp_test_reply_free (&reply);

    //  The URL binds the declared length: S3 takes a PUT of that many bytes only
    json_t *presigned = s_presign (&server, token, "swept.jpg", len, sha);
    const char *url = json_string_value (json_object_get (presigned, "url"));
    cr_expect (strstr (url, "X-Amz-SignedHeaders=content-length%3Bhost"), "the length is not signed: %s", url);
    char id [RP_ID_MAX], key [128];
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (presigned, "id")));
    snprintf (key, sizeof key, "uploads/%s", id);
    //  The client PUTs its bytes and never says it is done
    s_presigned_put (presigned, path);
    json_decref (presigned);
    cr_assert (s_object_exists (&aws, key), "the PUT object is in the bucket");
    char *final = rp_test_wait_final (&server, token, id, 20000);
    cr_expect_str_eq (final, "failed", "the upload expired");
    free (final);
    //  The expiry sweep removes what it left in the bucket
    bool gone = false;
    for (int64_t end = s_now_ms () + 20000; !gone && s_now_ms () < end; usleep (500 * 1000))
        gone = !s_object_exists (&aws, key);
    cr_expect (gone, "%s is still in the bucket 20 s after its upload expired (log: %s)", key, server.log);

    //  A live upload's object is left alone: PUT, then completed
    rp_test_server_photo (&server, "kept.jpg", 81, path, sizeof path);
    s_file_sha256 (path, sha);
    free (rp_test_read_file (path, &len));
    presigned = s_presign (&server, token, "kept.jpg", len, sha);
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (presigned, "id")));
    s_presigned_put (presigned, path);
    json_decref (presigned);
    char *answer = NULL;
    long status = s_complete (&server, token, id, &answer);
    cr_expect_eq (status, 202, "complete: %ld %s", status, answer);
    free (answer);
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

Test (aws_bridges, a_key_of_1024_bytes_is_whole, .timeout = 90)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-longkey", NULL);
    rp_test_server_t server;
    s_engine_start (&server, &aws, "aws-longkey", false, 0, NULL);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");
    //  incoming/alice/ + four folders of 200 bytes + a name: 1024 bytes, S3's most
    char key [1100], name [256];
    size_t at = (size_t) snprintf (key, sizeof key, "incoming/alice/");
    for (int i = 0; i < 4; i++) {
        memset (key + at, 'a' + i, 200);
        at += 200;
        key [at++] = '/';
    }
    size_t name_len = 1024 - at;
    memset (name, 'e', name_len - 4);
    memcpy (name + name_len - 4, ".jpg", 5);
    snprintf (key + at, sizeof key - at, "%s", name);
    cr_assert_eq (strlen (key), 1024);
    char path [600];
    rp_test_server_photo (&server, "long.jpg", 90, path, sizeof path);
    int rc = rp_test_aws_cli (&aws, aws.s3, NULL, "s3api put-object --bucket photos --key '%s' --body '%s'", key, path);
    cr_assert_eq (rc, 0, "aws s3api put-object failed: %s", rp_test_aws_err (&aws));
    json_t *photo = s_wait_named (&server, token, name, 40000);
    cr_assert_not_null (photo, "the object with a 1024-byte key became no photo (log: %s)", server.log);
    cr_expect_str_eq (json_string_value (json_object_get (photo, "status")) ?: "", "complete");
    json_decref (photo);
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

Test (aws_bridges, import_keys_name_their_user_and_nothing_else, .timeout = 150)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-segments", NULL);
    rp_test_server_t server;
    s_engine_start (&server, &aws, "aws-segments", false, 5, NULL);
    s_engine_ready (&server);
    char *alice = rp_test_login (&server, "alice");
    char *bob = rp_test_login (&server, "bob");
    //  Bob's own import
    char secret [600], fine [600];
    rp_test_server_photo (&server, "secret.jpg", 91, secret, sizeof secret);
    rp_test_server_photo (&server, "fine.jpg", 93, fine, sizeof fine);
    int rc = rp_test_aws_cli (&aws, aws.s3, NULL, "s3 cp --only-show-errors '%s' 's3://photos/incoming/bob/secret.jpg'",
                        secret);
    cr_assert_eq (rc, 0, "%s", rp_test_aws_err (&aws));
    json_t *photo = s_wait_named (&server, bob, "secret.jpg", 40000);
    cr_assert_not_null (photo, "bob's import (log: %s)", server.log);
    json_decref (photo);
    //  Events for keys in alice's folder with a "..", a "." and an empty
    //  segment (S3 keys are names, not paths: such a key names an object
    //  of its own, never bob's or alice's other ones)
    size_t secret_len = 0;
    free (rp_test_read_file (secret, &secret_len));
    static const char *const keys [] = { "incoming/alice/../bob/secret.jpg", "incoming/alice/./fine.jpg",
                                         "incoming/alice//fine.jpg" };
    enum { REFUSED = sizeof keys / sizeof keys [0] };
    for (size_t i = 0; i < REFUSED; i++) {
        rc = rp_test_aws_cli (&aws, aws.sqs, NULL, "sqs send-message --queue-url '%s' --message-body "
                        "'{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"eventName\":"
                        "\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"photos\"},\"object\":{\"key\":"
                        "\"%s\",\"size\":%zu,\"eTag\":\"0\"}}}]}'", aws.ingest, keys [i], secret_len);
        cr_assert_eq (rc, 0, "%s", rp_test_aws_err (&aws));
    }
    //  And a good key beside them
    rc = rp_test_aws_cli (&aws, aws.s3, NULL, "s3 cp --only-show-errors '%s' 's3://photos/incoming/alice/fine.jpg'", fine);
    cr_assert_eq (rc, 0, "%s", rp_test_aws_err (&aws));
    photo = s_wait_named (&server, alice, "fine.jpg", 40000);
    cr_assert_not_null (photo, "alice's good import (log: %s)", server.log);
    json_decref (photo);
    //  The others end in the dead-letter queue, for an operator
    int dead = 0;
    for (int64_t end = s_now_ms () + 60000; dead < REFUSED && s_now_ms () < end; ) {
        json_t *bodies = s_aws_receive (&aws, aws.dlq, 5, 300);
        dead += (int) json_array_size (bodies);
        json_decref (bodies);
    }
    cr_expect_eq (dead, REFUSED, "the refused keys' messages in ingest-dlq (log: %s)", server.log);
    json_t *items = s_photos (&server, alice, NULL);
    char *text = json_dumps (items, JSON_COMPACT);
    cr_expect_eq (json_array_size (items), 1, "alice has only fine.jpg: %s", text);
    free (text);
    json_decref (items);
    cr_expect_gt (rp_test_count_in_file (server.log, "\"..\""), 0, "the log says why (log: %s)", server.log);
    free (alice);
    free (bob);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);
}

//  ---------------------------------------------------------------------------
//  X-Ray: what the engine calls S3 and SQS for is in the trace

Test (aws_bridges, x_ray_sees_s3_and_sqs_and_the_events_carry_their_trace, .timeout = 120)
{
    rp_test_aws_t aws;
    rp_test_aws_start (&aws, "aws-xray", NULL);
    rp_test_xray_t xray;
    rp_test_xray_open (&xray);
    const char *more [] = { xray.setting, "RAPIDPHOTO_TRACING_SAMPLE_RATE=1", NULL };
    rp_test_server_t server;
    s_engine_start_more (&server, &aws, "aws-xray", false, 0, NULL, more);
    s_engine_ready (&server);
    char *token = rp_test_login (&server, "alice");
    char path [600], id [RP_ID_MAX], sha [65];
    rp_test_server_photo (&server, "xray.jpg", 77, path, sizeof path);
    rp_test_reply_t reply;
    cr_assert_eq (s_upload (&server, token, path, "xray.jpg", id, sha, &reply), 202, "%s", reply.body);
    char upload_trace [RP_TRACE_HEADER_MAX] = "";
    cr_assert (rp_test_header_copy (&reply, "X-Amzn-Trace-Id", upload_trace, sizeof upload_trace));
    rp_test_reply_free (&reply);
    char *final = rp_test_wait_final (&server, token, id, 30000);
    cr_assert_str_eq (final, "complete", "log: %s", server.log);
    free (final);

    //  The photo.complete event on the events queue carries the trace of
    //  its publication (AWSTraceHeader), as the aws CLI reads it
    char *out = NULL;
    char event_trace [RP_TRACE_ID_MAX] = "";
    for (int round = 0; round < 20 && !*event_trace; round++) {
        cr_assert_eq (rp_test_aws_cli (&aws, aws.sqs, &out, "sqs receive-message --queue-url '%s' "
                                       "--max-number-of-messages 10 --wait-time-seconds 1 --attribute-names All "
                                       "--output json", aws.events), 0, "%s", rp_test_aws_err (&aws));
        json_t *answer = out && *out ? json_loads (out, 0, NULL) : NULL;
        size_t i;
        json_t *message;
        json_array_foreach (json_object_get (answer, "Messages"), i, message) {
            const char *header = json_string_value (json_object_get (json_object_get (message, "Attributes"),
                                                                     "AWSTraceHeader"));
            rp_trace_t trace;
            cr_assert (header && rp_trace_parse (header, &trace) == 0, "an event without its trace: %s", out);
            cr_expect (trace.sampled && *trace.parent, "%s", header);
            snprintf (event_trace, sizeof event_trace, "%s", trace.id);
        }
        json_decref (answer);
        free (out);
        out = NULL;
    }
    cr_assert (*event_trace, "no event came");
    free (token);
    rp_test_server_stop (&server);
    rp_test_aws_stop (&aws);

    json_t *documents = rp_test_xray_collect (&xray, 1000);
    json_t *complete = json_object ();
    rp_test_xray_check (documents, "-", complete);
    //  The upload's request: S3 under its segment (the original's PUT)
    char upload [RP_TRACE_ID_MAX];
    snprintf (upload, sizeof upload, "%.35s", upload_trace + 5);
    json_t *segment = NULL;
    cr_assert_eq (rp_test_xray_find (complete, upload, "rapid-photo-serve", NULL, &segment), 1);
    const char *upload_segment = json_string_value (json_object_get (segment, "id"));
    json_t *s3 = NULL;
    cr_expect_geq (rp_test_xray_find (complete, upload, "S3", upload_segment, &s3), 1, "the upload's S3 calls");
    if (s3) {
        cr_expect_str_eq (json_string_value (json_object_get (s3, "namespace")), "aws");
        cr_expect (json_is_string (json_object_get (json_object_get (s3, "aws"), "operation")));
    }
    //  The publication: its segment, the SendMessageBatch under it
    cr_assert_eq (rp_test_xray_find (complete, event_trace, "rapid-photo-serve", NULL, &segment), 1,
                  "the events' publication has no segment");
    json_t *sqs = NULL;
    cr_expect_eq (rp_test_xray_find (complete, event_trace, "SQS", json_string_value (json_object_get (segment, "id")),
                                     &sqs), 1, "the publication's SQS call");
    if (sqs)
        cr_expect_str_eq (json_string_value (json_object_get (json_object_get (sqs, "aws"), "operation")),
                          "SendMessageBatch");
    //  The photo's processing: its S3 work (the derivatives' PUTs) under its segment
    const char *key;
    json_t *doc, *photo = NULL;
    json_object_foreach (complete, key, doc) {
        const char *annotated = json_string_value (json_object_get (json_object_get (doc, "annotations"), "photo"));
        if (annotated && streq (annotated, id) && !json_object_get (doc, "type"))
            photo = doc;
    }
    cr_assert_not_null (photo);
    const char *photo_trace = json_string_value (json_object_get (photo, "trace_id"));
    cr_expect_geq (rp_test_xray_find (complete, photo_trace, "S3", json_string_value (json_object_get (photo, "id")),
                                      NULL), 1, "the photo's S3 calls");
    json_decref (complete);
    json_decref (documents);
}
