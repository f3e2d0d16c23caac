/*  engine/aws/sigv4.h: AWS Signature Version 4, for the S3 and SQS clients.

    Two forms: an Authorization header for a request the engine sends, and
    a presigned URL (query-string authentication) a client uses on its own.
    Both build the same canonical request (method, URI, sorted query,
    sorted lower-case headers, signed header list, payload hash), the
    string to sign and the HMAC-SHA256 chain of the signing key, on
    OpenSSL. Checked against AWS's published S3 examples and, in the tests,
    against botocore.

    Paths are given as the client will send them: already URI-encoded
    (rp_sigv4_uri_encode with keep_slash). S3 signs that path as it is;
    other services encode it once more (`double_encode`). Query parameters
    are given raw and encoded here. Header values are trimmed and inner runs
    of spaces folded, as the algorithm asks.
*/
#ifndef RP_SIGV4_H
#define RP_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct {
    const char *access_key;
    const char *secret_key;
    const char *session_token;      //  NULL unless temporary credentials
} rp_aws_credentials_t;

typedef struct {
    const char *name;
    const char *value;
} rp_aws_param_t;                   //  a header, or a query parameter

typedef struct {
    const char *method;             //  "GET", "PUT", ...
    const char *host;               //  the Host header's value ("bucket.s3.amazonaws.com", "127.0.0.1:4568")
    const char *path;               //  URI-encoded, starting with '/'
    const rp_aws_param_t *query;    //  raw names and values; NULL when none
    size_t query_count;
    const rp_aws_param_t *headers;  //  to sign besides host (and x-amz-*: added below); may be NULL
    size_t header_count;
    const char *payload_sha256;     //  hex; "UNSIGNED-PAYLOAD" allowed; NULL = hash of empty
    const char *region;             //  "us-east-1"
    const char *service;            //  "s3", "sqs"
    bool double_encode;             //  false for S3, true for other services
    time_t when;                    //  the request's time (UTC)
} rp_sigv4_request_t;

#define RP_SIGV4_DATE_MAX 17        //  "20130524T000000Z" + NUL
#define RP_SIGV4_AUTH_MAX 1024

//  Sign for an Authorization header. The request must also carry
//  x-amz-date: amz_date (returned) and, when credentials have a session
//  token, x-amz-security-token; S3 wants x-amz-content-sha256 as well
//  (pass it among headers to sign it). 0, or -1 with err.
int rp_sigv4_authorization (const rp_sigv4_request_t *request, const rp_aws_credentials_t *creds,
                            char authorization [RP_SIGV4_AUTH_MAX], char amz_date [RP_SIGV4_DATE_MAX],
                            char *err, size_t errlen);

//  A presigned URL: "<scheme>://<host><path>?<query with X-Amz-*>". The
//  payload is UNSIGNED-PAYLOAD unless request->payload_sha256 says
//  otherwise; expires_s is 1..604800. *url is malloc'ed. 0, or -1 with err.
int rp_sigv4_presign (const rp_sigv4_request_t *request, const rp_aws_credentials_t *creds,
                      const char *scheme, int expires_s, char **url, char *err, size_t errlen);

//  URI-encode per SigV4: unreserved characters (A-Z a-z 0-9 - _ . ~) as
//  they are, every other byte as %XX (upper-case hex); '/' kept when
//  keep_slash. Returns the length written (out always NUL-terminated), or
//  -1 when out is too small.
int rp_sigv4_uri_encode (const char *in, size_t len, bool keep_slash, char *out, size_t outlen);

//  Lower-case hex SHA-256 of data.
void rp_sigv4_sha256_hex (const void *data, size_t len, char hex [65]);

#endif
