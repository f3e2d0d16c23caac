/*  tests/test_s3.c: the S3 client (engine/aws/s3.c) against a real S3
    protocol server, s3rver (npm, started by tools/aws/s3rver.mjs).

    s3rver does not check SigV4 signatures (tests/test_sigv4.c checks ours
    against AWS's examples and botocore); what this suite proves is the
    protocol: single and multipart PUT, a multipart upload a part at a
    time, a copy inside the bucket, HEAD, GET with ranges, DELETE,
    awkward keys, presigned URLs a plain HTTP client can use, and errors
    that name their cause.
*/
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/aws/s3.h"
#include "tests/support/http.h"
#include "tests/support/standins.h"
#include "tests/support/testdata.h"

typedef struct {
    pid_t pid;
    int port;
    char endpoint [64];
    char dir [256];
} s_s3rver_t;

static void
s_start (s_s3rver_t *server)
{
    char *dir = rp_test_tmpdir ("s3rver");
    snprintf (server->dir, sizeof server->dir, "%s", dir);
    free (dir);
    char log [300];
    snprintf (log, sizeof log, "%s.log", server->dir);
    server->pid = rp_test_standin_start ("s3rver.mjs", (char *[]) { "--dir", server->dir, "--bucket", "photos", NULL },
                                         "photos", &server->port, log);
    snprintf (server->endpoint, sizeof server->endpoint, "http://127.0.0.1:%d", server->port);
}

static void
s_stop (s_s3rver_t *server)
{
    rp_test_standin_stop (server->pid);
}

static rp_s3_t *
s_client (const char *endpoint, const char *bucket, int64_t threshold)
{
    rp_s3_config_t config = {
        .endpoint = endpoint, .region = "us-east-1", .bucket = bucket,
        .credentials = { .access_key = "S3RVER", .secret_key = "S3RVER" },
        .multipart_threshold = threshold, .part_size = 5 << 20, .attempts = 2,
    };
    char err [256];
    rp_s3_t *s3 = rp_s3_new (&config, err, sizeof err);
    cr_assert_not_null (s3, "%s", err);
    return s3;
}

//  A file of `size` pseudo-random bytes at dir/name.
static char *
s_file (const char *dir, const char *name, size_t size, unsigned int seed)
{
    char *path = malloc (600);
    snprintf (path, 600, "%s/%s", dir, name);
    FILE *file = fopen (path, "wb");
    cr_assert_not_null (file);
    uint32_t x = seed * 2654435761u + 7;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        fputc ((int) (x & 0xFF), file);
    }
    fclose (file);
    return path;
}

static bool
s_same_files (const char *a, const char *b)
{
    char command [1400];
    snprintf (command, sizeof command, "cmp -s '%s' '%s'", a, b);
    return rp_test_run (command, NULL) == 0;
}

Test (s3, put_head_get_delete, .timeout = 120)
{
    s_s3rver_t server;
    s_start (&server);
    char *work = rp_test_tmpdir ("s3-client");
    rp_s3_t *s3 = s_client (server.endpoint, "photos", 8 << 20);
    char err [512], etag [RP_S3_ETAG_MAX], back [600];

    //  A small object, one PUT; a key with spaces, UTF-8, + and parentheses
    char *small = s_file (work, "small.bin", 1000, 1);
    const char *key = "incoming/alice/IMG 0001 (été)+1.jpg";
    cr_assert_eq (rp_s3_put_file (s3, key, small, "image/jpeg", etag, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_s3_requests (s3), 1, "one PUT below the threshold");
    cr_assert_eq (strlen (etag), 32, "a single PUT's ETag is the MD5: %s", etag);
    int64_t size = 0;
    char head_etag [RP_S3_ETAG_MAX];
    cr_assert_eq (rp_s3_head (s3, key, &size, head_etag, err, sizeof err), 0, "%s", err);
    cr_assert_eq (size, 1000);
    cr_assert_str_eq (head_etag, etag);
    snprintf (back, sizeof back, "%s/back.bin", work);
    cr_assert_eq (rp_s3_get_file (s3, key, 0, -1, back, err, sizeof err), 0, "%s", err);
    cr_assert (s_same_files (small, back), "the object came back different");
    //  A range
    cr_assert_eq (rp_s3_get_file (s3, key, 10, 19, back, err, sizeof err), 0, "%s", err);
    struct stat st;
    cr_assert_eq (stat (back, &st), 0);
    cr_assert_eq (st.st_size, 10);

    //  A big object, multipart: 4 parts of at most 5 MiB
    char *big = s_file (work, "big.bin", 18 << 20, 2);
    uint64_t before = rp_s3_requests (s3);
    cr_assert_eq (rp_s3_put_file (s3, "ab/cd/big", big, "image/jpeg", etag, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_s3_requests (s3) - before, 6, "create, 4 parts, complete");
    cr_assert (*etag, "the completed upload has an ETag");
    cr_assert_eq (rp_s3_head (s3, "ab/cd/big", &size, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq (size, 18 << 20);
    cr_assert_eq (rp_s3_get_file (s3, "ab/cd/big", 0, -1, back, err, sizeof err), 0, "%s", err);
    cr_assert (s_same_files (big, back), "the multipart object came back different");

    //  A presigned GET works for any HTTP client
    char *url = NULL;
    cr_assert_eq (rp_s3_presign (s3, "GET", key, 300, -1, &url, err, sizeof err), 0, "%s", err);
    cr_assert_not_null (strstr (url, "X-Amz-Signature="));
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_http (&(rp_test_http_t) { .url = url }, &reply), 200, "GET %s", url);
    size_t small_len = 0;
    char *small_bytes = rp_test_read_file (small, &small_len);
    cr_assert (reply.len == small_len && memcmp (reply.body, small_bytes, small_len) == 0);
    free (small_bytes);
    rp_test_reply_free (&reply);
    free (url);

    //  Delete: gone, and deleting again is no error
    cr_assert_eq (rp_s3_delete (s3, key, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_s3_head (s3, key, &size, NULL, err, sizeof err), RP_NOT_FOUND);
    snprintf (back, sizeof back, "%s/missing.bin", work);
    cr_assert_eq (rp_s3_get_file (s3, key, 0, -1, back, err, sizeof err), RP_NOT_FOUND);
    cr_assert_neq (access (back, F_OK), 0, "a failed GET leaves no file");
    cr_assert_eq (rp_s3_delete (s3, key, err, sizeof err), 0, "%s", err);

    rp_s3_destroy (&s3);
    free (small);
    free (big);
    free (work);
    s_stop (&server);
}

//  A multipart upload driven a part at a time (as an upload streamed while
//  it arrives), completed, then copied inside the bucket; keys with
//  spaces, UTF-8 and parentheses on both sides of the copy (not '+':
//  s3rver decodes x-amz-copy-source with decodeURI, which leaves %2B as
//  it is, where S3 decodes it; the engine copies only hex names)
Test (s3, parts_one_at_a_time_then_a_copy, .timeout = 120)
{
    s_s3rver_t server;
    s_start (&server);
    char *work = rp_test_tmpdir ("s3-parts");
    rp_s3_t *s3 = s_client (server.endpoint, "photos", 8 << 20);
    char err [512], etag [RP_S3_ETAG_MAX], copy_etag [RP_S3_ETAG_MAX], back [600];
    const size_t part = 5 << 20, size = 2 * part + 12345;
    char *file_path = s_file (work, "parts.bin", size, 3);
    FILE *file = fopen (file_path, "rb");
    cr_assert_not_null (file);

    const char *from = "streams/IMG 0002 (été)", *to = "objects/aa/bb/copy (été)";
    rp_s3_multipart_t *mp = rp_s3_multipart_begin (s3, from, "image/jpeg", err, sizeof err);
    cr_assert_not_null (mp, "%s", err);
    for (size_t offset = 0; offset < size; offset += part) {
        int64_t len = (int64_t) (size - offset < part ? size - offset : part);
        cr_assert_eq (rp_s3_multipart_part (s3, mp, file, (int64_t) offset, len, err, sizeof err), 0, "%s", err);
    }
    cr_assert_eq (rp_s3_multipart_complete (s3, &mp, etag, err, sizeof err), 0, "%s", err);
    cr_assert_null (mp, "complete frees the upload");
    cr_assert (*etag, "the completed upload has an ETag");
    fclose (file);

    uint64_t before = rp_s3_requests (s3);
    cr_assert_eq (rp_s3_copy (s3, from, to, copy_etag, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_s3_requests (s3) - before, 1, "a copy is one request, no bytes through us");
    cr_assert (*copy_etag, "the copy's answer has its ETag");
    int64_t got = 0;
    cr_assert_eq (rp_s3_head (s3, to, &got, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq (got, (int64_t) size);
    snprintf (back, sizeof back, "%s/back.bin", work);
    cr_assert_eq (rp_s3_get_file (s3, to, 0, -1, back, err, sizeof err), 0, "%s", err);
    cr_assert (s_same_files (file_path, back), "the copy came back different");
    //  The source stays until deleted
    cr_assert_eq (rp_s3_head (s3, from, &got, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_s3_delete (s3, from, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_s3_head (s3, from, &got, NULL, err, sizeof err), RP_NOT_FOUND);
    //  A copy of nothing names the cause
    cr_assert_neq (rp_s3_copy (s3, from, "objects/aa/bb/none", copy_etag, err, sizeof err), 0);
    cr_assert (strstr (err, "CopyObject") && strstr (err, "NoSuchKey"), "%s", err);

    rp_s3_destroy (&s3);
    free (file_path);
    free (work);
    s_stop (&server);
}

//  LIST a prefix, from the start and after a key; keys with characters XML escapes
Test (s3, list_a_prefix, .timeout = 120)
{
    s_s3rver_t server;
    s_start (&server);
    char *work = rp_test_tmpdir ("s3-list");
    rp_s3_t *s3 = s_client (server.endpoint, "photos", 8 << 20);
    char err [512], etag [RP_S3_ETAG_MAX];
    char *file = s_file (work, "one.bin", 100, 3);
    static const char *const keys [] = { "uploads/a", "uploads/b&c<d>", "uploads/e 'f'", "incoming/x" };
    for (size_t i = 0; i < sizeof keys / sizeof keys [0]; i++)
        cr_assert_eq (rp_s3_put_file (s3, keys [i], file, NULL, etag, err, sizeof err), 0, "%s", err);
    //  (s3rver fails a listing it would have to cut: the pages here are whole)
    json_t *page = NULL;
    bool truncated = true;
    cr_assert_eq (rp_s3_list (s3, "uploads/", NULL, 1000, &page, &truncated, err, sizeof err), 0, "%s", err);
    cr_expect_eq (json_array_size (page), 3, "the prefix's keys, no other");
    cr_expect_not (truncated);
    cr_expect_str_eq (json_string_value (json_array_get (page, 0)), "uploads/a");
    cr_expect_str_eq (json_string_value (json_array_get (page, 1)), "uploads/b&c<d>");
    json_t *rest = NULL;
    truncated = true;
    cr_assert_eq (rp_s3_list (s3, "uploads/", json_string_value (json_array_get (page, 1)), 1000, &rest, &truncated,
                              err, sizeof err), 0, "%s", err);
    cr_expect_eq (json_array_size (rest), 1);
    cr_expect_not (truncated);
    cr_expect_str_eq (json_string_value (json_array_get (rest, 0)), "uploads/e 'f'");
    json_decref (page);
    json_decref (rest);
    rp_s3_destroy (&s3);
    free (file);
    free (work);
    s_stop (&server);
}

Test (s3, errors_name_their_cause, .timeout = 120)
{
    s_s3rver_t server;
    s_start (&server);
    char *work = rp_test_tmpdir ("s3-errors");
    char err [512] = "", etag [RP_S3_ETAG_MAX];
    char *file = s_file (work, "f.bin", 100, 3);

    //  A bucket that does not exist: S3's own code in the message
    rp_s3_t *s3 = s_client (server.endpoint, "no-such-bucket", 8 << 20);
    cr_assert_eq (rp_s3_put_file (s3, "k", file, NULL, etag, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "NoSuchBucket"), "%s", err);
    cr_assert_not_null (strstr (err, "s3://no-such-bucket/k"), "%s", err);
    rp_s3_destroy (&s3);
    //  A multipart upload into it fails at the start and leaves nothing
    char *big = s_file (work, "big.bin", 12 << 20, 4);
    s3 = s_client (server.endpoint, "no-such-bucket", 8 << 20);
    cr_assert_eq (rp_s3_put_file (s3, "k", big, NULL, etag, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "CreateMultipartUpload"), "%s", err);
    rp_s3_destroy (&s3);
    //  A file that is not there
    s3 = s_client (server.endpoint, "photos", 8 << 20);
    cr_assert_eq (rp_s3_put_file (s3, "k", "/nonexistent/file", NULL, etag, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "/nonexistent/file"), "%s", err);
    rp_s3_destroy (&s3);
    s_stop (&server);

    //  Nobody listening: retried, then the reason
    s3 = s_client (server.endpoint, "photos", 8 << 20);
    cr_assert_eq (rp_s3_put_file (s3, "k", file, NULL, etag, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "cannot reach S3 at 127.0.0.1"), "%s", err);
    cr_assert_not_null (strstr (err, "after retries"), "%s", err);
    rp_s3_destroy (&s3);

    //  Configuration that cannot work is refused up front
    rp_s3_config_t bad = { .endpoint = "ftp://x", .region = "r", .bucket = "b",
                           .credentials = { "a", "s", NULL } };
    cr_assert_null (rp_s3_new (&bad, err, sizeof err));
    cr_assert_not_null (strstr (err, "ftp://x"), "%s", err);
    bad.endpoint = NULL;
    bad.region = "";
    cr_assert_null (rp_s3_new (&bad, err, sizeof err));
    cr_assert_not_null (strstr (err, "AWS_REGION"), "%s", err);
    free (file);
    free (big);
    free (work);
}

//  S3 over TLS, the certificate checked against AWS_CA_BUNDLE (the AWS
//  SDKs' variable; the Lambda package's bootstrap sets it on Amazon Linux,
//  whose CA bundle is not where Debian's libcurl looks): s3rver on HTTPS
//  with a certificate made here, which no system bundle trusts.
Test (s3, tls_with_aws_ca_bundle, .timeout = 120)
{
    char *dir = rp_test_tmpdir ("s3tls");
    char command [2000];
    snprintf (command, sizeof command,
              "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
              " -addext subjectAltName=IP:127.0.0.1 -keyout '%s/key.pem' -out '%s/cert.pem' 2>&1",
              dir, dir);
    char *out = NULL;
    cr_assert_eq (rp_test_run (command, &out), 0, "openssl req: %s", out ? out : "");
    free (out);
    const char *source = getenv ("RP_SOURCE_DIR");
    cr_assert_not_null (source, "RP_SOURCE_DIR (set by ctest) names the source tree");
    char script [600], objects [600], log [600], port [16], ca [600];
    snprintf (script, sizeof script, "%s/tools/aws/s3rver.mjs", source);
    snprintf (objects, sizeof objects, "%s/objects", dir);
    snprintf (log, sizeof log, "%s/s3rver.log", dir);
    snprintf (ca, sizeof ca, "%s/cert.pem", dir);
    snprintf (port, sizeof port, "%d", rp_test_free_port ());
    pid_t pid = fork ();
    cr_assert_geq (pid, 0);
    if (pid == 0) {
        FILE *redirect = freopen (log, "w", stdout);
        redirect = freopen (log, "a", stderr);
        (void) redirect;
        execlp ("node", "node", script, "--port", port, "--dir", objects, "--bucket", "photos",
                "--tls", dir, (char *) NULL);
        _exit (127);
    }
    //  s3rver says "ready https://..." once it listens
    bool ready = false;
    for (int i = 0; i < 150 && !ready; i++) {
        char *text = NULL;
        snprintf (command, sizeof command, "cat '%s'", log);
        rp_test_run (command, &text);
        ready = text && strstr (text, "ready https://127.0.0.1:");
        free (text);
        if (!ready)
            usleep (100 * 1000);
    }
    cr_assert (ready, "s3rver on HTTPS did not start (log: %s)", log);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "https://127.0.0.1:%s", port);
    char *file = s_file (dir, "small", 1000, 3);
    char etag [RP_S3_ETAG_MAX], err [512];
    int64_t size = 0;

    //  Without AWS_CA_BUNDLE: libcurl's default bundle, which does not
    //  know this certificate
    unsetenv ("AWS_CA_BUNDLE");
    rp_s3_t *s3 = s_client (endpoint, "photos", 8 << 20);
    cr_assert_eq (rp_s3_put_file (s3, "tls/k", file, "image/jpeg", etag, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "SSL"), "the refusal names TLS: %s", err);
    rp_s3_destroy (&s3);

    //  With it: trusted, the object goes and comes back
    setenv ("AWS_CA_BUNDLE", ca, 1);
    s3 = s_client (endpoint, "photos", 8 << 20);
    cr_assert_eq (rp_s3_put_file (s3, "tls/k", file, "image/jpeg", etag, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_s3_head (s3, "tls/k", &size, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq (size, 1000);
    rp_s3_destroy (&s3);

    //  A bundle that is not there: refused, not trusted by default
    setenv ("AWS_CA_BUNDLE", "/nonexistent/ca-bundle.crt", 1);
    s3 = s_client (endpoint, "photos", 8 << 20);
    cr_assert_eq (rp_s3_head (s3, "tls/k", &size, NULL, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "SSL CA cert"), "the refusal names the CA file: %s", err);
    rp_s3_destroy (&s3);
    unsetenv ("AWS_CA_BUNDLE");

    kill (pid, SIGTERM);
    rp_test_wait (pid, 10000);
    free (file);
    free (dir);
}
