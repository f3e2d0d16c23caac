/*  tests/test_sigv4.c: AWS Signature Version 4 (engine/aws/sigv4.c).

    First against the examples AWS publishes for S3 (Amazon S3 API
    Reference, "Signature Calculations for the Authorization Header" and
    "Authenticating Requests: Using Query Parameters"): the example
    credentials, bucket examplebucket, 24 May 2013, whose signatures are
    printed in that documentation. Then against an independent signer,
    botocore (Debian's python3-botocore, installed by the bootstrap), on
    requests with awkward keys, queries, header values and session tokens,
    for S3 (path signed as sent) and SQS (path encoded twice).
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/aws/sigv4.h"
#include "tests/support/testdata.h"

static const rp_aws_credentials_t s_example = {
    .access_key = "AKIAIOSFODNN7EXAMPLE",
    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
#define S_MAY_24_2013 ((time_t) 1369353600)     //  2013-05-24T00:00:00Z

static const char *
s_signature (const char *authorization)
{
    const char *at = strstr (authorization, "Signature=");
    cr_assert_not_null (at, "%s", authorization);
    return at + 10;
}

Test (sigv4, s3_get_object_example)
{
    char sha [65];
    rp_sigv4_sha256_hex ("", 0, sha);
    rp_aws_param_t headers [] = { { "Range", "bytes=0-9" }, { "x-amz-content-sha256", sha } };
    rp_sigv4_request_t request = {
        .method = "GET", .host = "examplebucket.s3.amazonaws.com", .path = "/test.txt",
        .headers = headers, .header_count = 2, .payload_sha256 = sha, .region = "us-east-1",
        .service = "s3", .when = S_MAY_24_2013,
    };
    char auth [RP_SIGV4_AUTH_MAX], date [RP_SIGV4_DATE_MAX], err [256];
    cr_assert_eq (rp_sigv4_authorization (&request, &s_example, auth, date, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (date, "20130524T000000Z");
    cr_assert_str_eq (auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

Test (sigv4, s3_put_object_example)
{
    const char *body = "Welcome to Amazon S3.";
    char sha [65];
    rp_sigv4_sha256_hex (body, strlen (body), sha);
    cr_assert_str_eq (sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    rp_aws_param_t headers [] = { { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
                                  { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
                                  { "x-amz-content-sha256", sha } };
    char path [64];
    cr_assert_gt (rp_sigv4_uri_encode ("/test$file.text", 15, true, path, sizeof path), 0);
    cr_assert_str_eq (path, "/test%24file.text");
    rp_sigv4_request_t request = {
        .method = "PUT", .host = "examplebucket.s3.amazonaws.com", .path = path,
        .headers = headers, .header_count = 3, .payload_sha256 = sha, .region = "us-east-1",
        .service = "s3", .when = S_MAY_24_2013,
    };
    char auth [RP_SIGV4_AUTH_MAX], date [RP_SIGV4_DATE_MAX], err [256];
    cr_assert_eq (rp_sigv4_authorization (&request, &s_example, auth, date, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (s_signature (auth), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

Test (sigv4, s3_get_bucket_lifecycle_and_list_examples)
{
    char sha [65];
    rp_sigv4_sha256_hex ("", 0, sha);
    rp_aws_param_t headers [] = { { "x-amz-content-sha256", sha } };
    rp_aws_param_t lifecycle [] = { { "lifecycle", "" } };
    rp_sigv4_request_t request = {
        .method = "GET", .host = "examplebucket.s3.amazonaws.com", .path = "/",
        .query = lifecycle, .query_count = 1, .headers = headers, .header_count = 1,
        .payload_sha256 = sha, .region = "us-east-1", .service = "s3", .when = S_MAY_24_2013,
    };
    char auth [RP_SIGV4_AUTH_MAX], date [RP_SIGV4_DATE_MAX], err [256];
    cr_assert_eq (rp_sigv4_authorization (&request, &s_example, auth, date, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (s_signature (auth), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");

    //  Query parameters are sorted by name
    rp_aws_param_t list [] = { { "prefix", "J" }, { "max-keys", "2" } };
    request.query = list;
    request.query_count = 2;
    cr_assert_eq (rp_sigv4_authorization (&request, &s_example, auth, date, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (s_signature (auth), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

Test (sigv4, s3_presigned_get_example)
{
    rp_sigv4_request_t request = {
        .method = "GET", .host = "examplebucket.s3.amazonaws.com", .path = "/test.txt",
        .region = "us-east-1", .service = "s3", .when = S_MAY_24_2013,
    };
    char *url = NULL, err [256];
    cr_assert_eq (rp_sigv4_presign (&request, &s_example, "https", 86400, &url, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (url, "https://examplebucket.s3.amazonaws.com/test.txt"
                           "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                           "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                           "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                           "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    free (url);
}

Test (sigv4, refuses_what_it_cannot_sign)
{
    rp_sigv4_request_t request = { .method = "GET", .host = "h", .path = "/", .region = "", .service = "s3" };
    char auth [RP_SIGV4_AUTH_MAX], date [RP_SIGV4_DATE_MAX], err [256] = "";
    cr_assert_eq (rp_sigv4_authorization (&request, &s_example, auth, date, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "AWS_REGION"), "%s", err);
    request.region = "us-east-1";
    rp_aws_credentials_t none = { .access_key = "", .secret_key = "x" };
    cr_assert_eq (rp_sigv4_authorization (&request, &none, auth, date, err, sizeof err), -1);
    cr_assert_not_null (strstr (err, "AWS_ACCESS_KEY_ID"), "%s", err);
    char *url = NULL;
    cr_assert_eq (rp_sigv4_presign (&request, &s_example, "https", 0, &url, err, sizeof err), -1);
    cr_assert_eq (rp_sigv4_presign (&request, &s_example, "https", 604801, &url, err, sizeof err), -1);
    cr_assert_null (url);
    char small [4];
    cr_assert_eq (rp_sigv4_uri_encode ("a b c", 5, false, small, sizeof small), -1);
    char out [64];
    cr_assert_eq (rp_sigv4_uri_encode ("a b/é~", 7, false, out, sizeof out), 15);
    cr_assert_str_eq (out, "a%20b%2F%C3%A9~");
}

//  ---------------------------------------------------------------------------
//  Against botocore

//  A python3 that has botocore, or NULL.
static const char *
s_python (void)
{
    static const char *const candidates [] = { "/usr/bin/python3", "python3" };
    for (size_t i = 0; i < 2; i++) {
        char command [256];
        snprintf (command, sizeof command, "%s -c 'import botocore' 2>/dev/null", candidates [i]);
        if (rp_test_run (command, NULL) == 0)
            return candidates [i];
    }
    return NULL;
}

//  botocore's Authorization header (header mode) or URL (presign mode) for
//  the same request, by a script that reads its inputs from the environment.
static char *
s_botocore (const char *python, const char *mode, const char *method, const char *url,
            const char *headers_json, const char *service, const char *token, const char *payload)
{
    char script [] = "/tmp/rp-sigv4-botocore-XXXXXX";
    int fd = mkstemp (script);
    cr_assert_geq (fd, 0);
    const char *text =
        "import datetime, json, os, sys\n"
        "from unittest import mock\n"
        "from botocore.auth import SigV4Auth, S3SigV4Auth, SigV4QueryAuth, S3SigV4QueryAuth\n"
        "from botocore.awsrequest import AWSRequest\n"
        "from botocore.credentials import Credentials\n"
        "e = os.environ\n"
        "creds = Credentials('AKIDEXAMPLE', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', e.get('T') or None)\n"
        "s3 = e['SERVICE'] == 's3'\n"
        "body = e.get('BODY', '').encode()\n"
        "req = AWSRequest(method=e['METHOD'], url=e['URL'], data=body, headers=json.loads(e['HEADERS']))\n"
        "when = datetime.datetime(2026, 11, 29, 12, 34, 56)\n"
        "with mock.patch('botocore.auth.datetime') as dt:\n"
        "    dt.datetime.utcnow.return_value = when\n"
        "    dt.datetime.now.return_value = when.replace(tzinfo=datetime.timezone.utc)\n"
        "    if e['MODE'] == 'header':\n"
        "        (S3SigV4Auth if s3 else SigV4Auth)(creds, e['SERVICE'], 'eu-west-3').add_auth(req)\n"
        "        print(req.headers['Authorization'])\n"
        "    else:\n"
        "        (S3SigV4QueryAuth if s3 else SigV4QueryAuth)(creds, e['SERVICE'], 'eu-west-3', expires=900).add_auth(req)\n"
        "        print(req.url)\n";
    cr_assert_eq (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);
    char command [8192];
    snprintf (command, sizeof command,
              "MODE='%s' METHOD='%s' URL='%s' HEADERS='%s' SERVICE='%s' T='%s' BODY='%s' %s %s",
              mode, method, url, headers_json, service, token ? token : "", payload ? payload : "", python, script);
    char *out = NULL;
    int rc = rp_test_run (command, &out);
    unlink (script);
    cr_assert_eq (rc, 0, "botocore failed: %s", command);
    out [strcspn (out, "\n")] = 0;
    return out;
}

//  Two presigned URLs are the same: one path, the same parameters (in
//  botocore's order or ours)
static void
s_expect_same_url (const char *mine, const char *theirs)
{
    char *a = strdup (strchr (mine, '?') + 1), *b = strdup (strchr (theirs, '?') + 1);
    cr_assert_eq (strncmp (mine, theirs, (size_t) (strchr (mine, '?') - mine)), 0, "%s\n%s", mine, theirs);
    char *pa [16], *pb [16];
    int na = 0, nb = 0;
    for (char *s = strtok (a, "&"); s && na < 16; s = strtok (NULL, "&"))
        pa [na++] = s;
    for (char *s = strtok (b, "&"); s && nb < 16; s = strtok (NULL, "&"))
        pb [nb++] = s;
    cr_assert_eq (na, nb, "%s\n%s", mine, theirs);
    for (int x = 0; x < na; x++) {
        bool found = false;
        for (int y = 0; y < nb && !found; y++)
            found = strcmp (pa [x], pb [y]) == 0;
        cr_assert (found, "%s is not in botocore's URL %s", pa [x], theirs);
    }
    free (a);
    free (b);
}

typedef struct {
    const char *service;
    const char *method;
    const char *host;
    const char *raw_path;               //  before encoding
    rp_aws_param_t query [3];
    size_t query_count;
    const char *query_text;             //  as botocore gets it in the URL
    const char *token;
    const char *body;
} s_case_t;

static const s_case_t s_cases [] = {
    { "s3", "PUT", "127.0.0.1:4568", "/photos/incoming/alice/IMG 0001 (copy).jpg", { { NULL, NULL } }, 0, "", NULL, "bytes" },
    { "s3", "GET", "photos.s3.eu-west-3.amazonaws.com", "/ab/cd/été+photo~1.jpg",
      { { "partNumber", "2" }, { "uploadId", "a/b+c=" } }, 2, "partNumber=2&uploadId=a%2Fb%2Bc%3D", "FwoGZXIvYXdzEJr//token+/=", NULL },
    { "s3", "DELETE", "127.0.0.1:4568", "/photos/x", { { "versionId", "" } }, 1, "versionId=", NULL, NULL },
    { "sqs", "POST", "sqs.eu-west-3.amazonaws.com", "/123456789012/ingest queue", { { NULL, NULL } }, 0, "", "tok", "{\"MaxNumberOfMessages\": 10}" },
};

Test (sigv4, agrees_with_botocore, .timeout = 120)
{
    const char *python = s_python ();
    if (!python)
        cr_skip_test ("skipped: no python3 with botocore (tools/bootstrap.sh --test installs python3-botocore)");
    rp_aws_credentials_t creds = { .access_key = "AKIDEXAMPLE",
                                   .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
    const time_t when = 1795955696;             //  2026-11-29T12:34:56Z
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases [0]; i++) {
        const s_case_t *c = &s_cases [i];
        bool s3 = strcmp (c->service, "s3") == 0;
        creds.session_token = c->token;
        char path [512];
        cr_assert_gt (rp_sigv4_uri_encode (c->raw_path, strlen (c->raw_path), true, path, sizeof path), 0);
        char url [1024];
        snprintf (url, sizeof url, "http://%s%s%s%s", c->host, path, c->query_count ? "?" : "", c->query_text);
        char sha [65];
        rp_sigv4_sha256_hex (c->body ? c->body : "", c->body ? strlen (c->body) : 0, sha);

        //  Header mode: S3 signs x-amz-content-sha256 as botocore sends it
        rp_aws_param_t headers [] = { { "Content-Type", "  application/x-amz-json-1.0   with  spaces " },
                                      { "x-amz-content-sha256", sha } };
        rp_sigv4_request_t request = {
            .method = c->method, .host = c->host, .path = path, .query = c->query,
            .query_count = c->query_count, .headers = headers, .header_count = s3 ? 2 : 1,
            .payload_sha256 = sha, .region = "eu-west-3", .service = c->service, .double_encode = !s3,
            .when = when,
        };
        char auth [RP_SIGV4_AUTH_MAX], date [RP_SIGV4_DATE_MAX], err [256];
        cr_assert_eq (rp_sigv4_authorization (&request, &creds, auth, date, err, sizeof err), 0, "%s", err);
        char *theirs = s_botocore (python, "header", c->method, url,
                                   "{\"Content-Type\": \"  application/x-amz-json-1.0   with  spaces \"}",
                                   c->service, c->token, c->body);
        cr_assert_str_eq (auth, theirs, "case %zu (%s %s): ours and botocore's differ:\n%s\n%s", i, c->method, c->raw_path, auth, theirs);
        free (theirs);

        //  Presigned URL: host only, no body; S3 leaves the payload unsigned
        char empty [65];
        rp_sigv4_sha256_hex ("", 0, empty);
        rp_sigv4_request_t presign = {
            .method = c->method, .host = c->host, .path = path, .query = c->query,
            .query_count = c->query_count, .region = "eu-west-3", .service = c->service,
            .double_encode = !s3, .when = when,
            .payload_sha256 = s3 ? NULL : empty,
        };
        char *mine = NULL;
        cr_assert_eq (rp_sigv4_presign (&presign, &creds, "http", 900, &mine, err, sizeof err), 0, "%s", err);
        theirs = s_botocore (python, "presign", c->method, url, "{}", c->service, c->token, NULL);
        s_expect_same_url (mine, theirs);
        free (mine);
        free (theirs);
    }
}

//  A presigned PUT that binds its body's length: content-length signed
Test (sigv4, a_presigned_put_binds_its_length, .timeout = 60)
{
    const char *python = s_python ();
    if (!python)
        cr_skip_test ("skipped: no python3 with botocore (tools/bootstrap.sh --test installs python3-botocore)");
    rp_aws_credentials_t creds = { .access_key = "AKIDEXAMPLE",
                                   .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
    rp_aws_param_t headers [] = { { "Content-Length", "1234" } };
    rp_sigv4_request_t presign = {
        .method = "PUT", .host = "127.0.0.1:4568", .path = "/photos/uploads/abc", .headers = headers,
        .header_count = 1, .region = "eu-west-3", .service = "s3", .when = 1795955696,
    };
    char *mine = NULL, err [256];
    cr_assert_eq (rp_sigv4_presign (&presign, &creds, "http", 900, &mine, err, sizeof err), 0, "%s", err);
    cr_expect (strstr (mine, "X-Amz-SignedHeaders=content-length%3Bhost"), "%s", mine);
    char *theirs = s_botocore (python, "presign", "PUT", "http://127.0.0.1:4568/photos/uploads/abc",
                               "{\"Content-Length\": \"1234\"}", "s3", NULL, NULL);
    s_expect_same_url (mine, theirs);
    free (mine);
    free (theirs);
}
