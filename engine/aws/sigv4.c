/*  engine/aws/sigv4.c: AWS Signature Version 4 (see sigv4.h).

    The algorithm, in the order AWS documents it:
      1. canonical request: method, canonical URI, canonical query string
         (names and values encoded, sorted), canonical headers (lower-case
         names, trimmed values, sorted, one "name:value\n" each), the signed
         header names joined by ';', the payload's SHA-256
      2. string to sign: "AWS4-HMAC-SHA256", the time, the scope
         (date/region/service/aws4_request), SHA-256 of (1)
      3. signing key: HMAC-SHA256 chain "AWS4"+secret -> date -> region ->
         service -> "aws4_request"; signature = HMAC(key, (2)) in hex
*/
#include "engine/aws/sigv4.h"
#include "engine/buf.h"
#include "engine/hex.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_ALGORITHM "AWS4-HMAC-SHA256"
#define S_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S_PARAMS_MAX 64
//  The longest text built here (a canonical request, a presigned URL):
//  S_PARAMS_MAX query parameters and headers, a path (an S3 key is at most
//  1 KiB, 3 KiB encoded, 9 KiB encoded twice), a session token
//  (RP_AWS_TOKEN_MAX, 4 KiB). Real requests stay under 16 KiB; anything
//  past 64 KiB is a mistake, refused rather than signed.
#define S_TEXT_MAX (64 * 1024)

//  Append len bytes of text URI-encoded (up to a NUL), as AWS encodes:
//  upper-case hex digits. A failure stays in buf (see buf.h).
static void
s_put_encoded (rp_buf_t *buf, const char *text, size_t len, bool keep_slash)
{
    static const char hex [] = "0123456789ABCDEF";
    const unsigned char *end = (const unsigned char *) text + strnlen (text, len);
    for (const unsigned char *c = (const unsigned char *) text; c < end; c++) {
        bool plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
                  || *c == '-' || *c == '_' || *c == '.' || *c == '~' || (keep_slash && *c == '/');
        if (plain)
            rp_buf_append (buf, c, 1);
        else {
            char escaped [3] = { '%', hex [*c >> 4], hex [*c & 15] };
            rp_buf_append (buf, escaped, 3);
        }
    }
}

//  ---------------------------------------------------------------------------
//  Hashes

void
rp_sigv4_sha256_hex (const void *data, size_t len, char hex [65])
{
    unsigned char digest [32];
    unsigned int digest_len = 0;
    EVP_Digest (data, len, digest, &digest_len, EVP_sha256 (), NULL);
    rp_hex_encode (digest, 32, hex);
}

static void
s_hmac (const void *key, size_t key_len, const char *data, unsigned char out [32])
{
    unsigned int out_len = 32;
    HMAC (EVP_sha256 (), key, (int) key_len, (const unsigned char *) data, strlen (data), out, &out_len);
}

int
rp_sigv4_uri_encode (const char *in, size_t len, bool keep_slash, char *out, size_t outlen)
{
    if (outlen == 0)
        return -1;
    rp_buf_t buf;
    rp_buf_init (&buf, outlen - 1);     //  what fits in out with its NUL
    s_put_encoded (&buf, in, len, keep_slash);
    int rc = -1;
    if (!rp_buf_error (&buf)) {
        memcpy (out, rp_buf_data (&buf), rp_buf_len (&buf) + 1);
        rc = (int) rp_buf_len (&buf);
    }
    rp_buf_free (&buf);
    return rc;
}

//  ---------------------------------------------------------------------------
//  The canonical request

typedef struct {
    char *name;                         //  encoded (query) or lower-case (headers)
    char *value;
} s_pair_t;

static int
s_pair_compare (const void *a, const void *b)
{
    const s_pair_t *x = (const s_pair_t *) a, *y = (const s_pair_t *) b;
    int rc = strcmp (x->name, y->name);
    return rc ? rc : strcmp (x->value, y->value);
}

static void
s_pairs_free (s_pair_t *pairs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free (pairs [i].name);
        free (pairs [i].value);
    }
}

//  A header value trimmed, with inner runs of spaces folded into one.
static char *
s_trim (const char *value)
{
    char *out = (char *) malloc (strlen (value) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    bool space = false;
    for (const char *c = value; *c; c++) {
        if (*c == ' ' || *c == '\t') {
            space = o > 0;
            continue;
        }
        if (space)
            out [o++] = ' ';
        space = false;
        out [o++] = *c;
    }
    out [o] = 0;
    return out;
}

static char *
s_lower (const char *text)
{
    char *out = strdup (text);
    for (char *c = out; c && *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char) (*c - 'A' + 'a');
    return out;
}

//  text URI-encoded, for the caller to free; NULL past S_TEXT_MAX.
static char *
s_encoded (const char *text)
{
    rp_buf_t buf;
    rp_buf_init (&buf, S_TEXT_MAX);
    s_put_encoded (&buf, text, strlen (text), false);
    char *encoded = rp_buf_take (&buf);
    rp_buf_free (&buf);
    return encoded;
}

typedef struct {
    s_pair_t query [S_PARAMS_MAX];
    size_t query_count;
    s_pair_t headers [S_PARAMS_MAX];
    size_t header_count;
} s_canon_t;

static int
s_add_query (s_canon_t *canon, const char *name, const char *value)
{
    if (canon->query_count == S_PARAMS_MAX)
        return -1;
    s_pair_t *pair = &canon->query [canon->query_count++];
    pair->name = s_encoded (name);
    pair->value = s_encoded (value ? value : "");
    return pair->name && pair->value ? 0 : -1;
}

static int
s_add_header (s_canon_t *canon, const char *name, const char *value)
{
    if (canon->header_count == S_PARAMS_MAX)
        return -1;
    s_pair_t *pair = &canon->headers [canon->header_count++];
    pair->name = s_lower (name);
    pair->value = s_trim (value ? value : "");
    return pair->name && pair->value ? 0 : -1;
}

static void
s_signed_headers (const s_canon_t *canon, rp_buf_t *out)
{
    for (size_t i = 0; i < canon->header_count; i++) {
        if (i)
            rp_buf_append_str (out, ";");
        rp_buf_append_str (out, canon->headers [i].name);
    }
}

static void
s_query_string (const s_canon_t *canon, rp_buf_t *out)
{
    for (size_t i = 0; i < canon->query_count; i++)
        rp_buf_printf (out, "%s%s=%s", i ? "&" : "", canon->query [i].name, canon->query [i].value);
}

//  The signature over the canonical request of `canon` (sorted here).
static int
s_sign (const rp_sigv4_request_t *request, const rp_aws_credentials_t *creds, s_canon_t *canon,
        const char *amz_date, const char *payload, char signature [65])
{
    qsort (canon->query, canon->query_count, sizeof (s_pair_t), s_pair_compare);
    qsort (canon->headers, canon->header_count, sizeof (s_pair_t), s_pair_compare);
    rp_buf_t creq;
    rp_buf_init (&creq, S_TEXT_MAX);
    rp_buf_printf (&creq, "%s\n", request->method);
    const char *path = request->path && *request->path ? request->path : "/";
    if (request->double_encode)
        s_put_encoded (&creq, path, strlen (path), true);
    else
        rp_buf_append_str (&creq, path);
    rp_buf_append_str (&creq, "\n");
    s_query_string (canon, &creq);
    rp_buf_append_str (&creq, "\n");
    for (size_t i = 0; i < canon->header_count; i++)
        rp_buf_printf (&creq, "%s:%s\n", canon->headers [i].name, canon->headers [i].value);
    rp_buf_append_str (&creq, "\n");
    s_signed_headers (canon, &creq);
    rp_buf_printf (&creq, "\n%s", payload);
    if (rp_buf_error (&creq)) {
        rp_buf_free (&creq);
        return -1;
    }
    char creq_hash [65];
    rp_sigv4_sha256_hex (rp_buf_data (&creq), rp_buf_len (&creq), creq_hash);
    rp_buf_free (&creq);

    char date [9];
    memcpy (date, amz_date, 8);
    date [8] = 0;
    char to_sign [512];
    snprintf (to_sign, sizeof to_sign, S_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date,
              request->region, request->service, creq_hash);

    char secret [256];
    snprintf (secret, sizeof secret, "AWS4%s", creds->secret_key);
    unsigned char k_date [32], k_region [32], k_service [32], k_signing [32], sig [32];
    s_hmac (secret, strlen (secret), date, k_date);
    s_hmac (k_date, 32, request->region, k_region);
    s_hmac (k_region, 32, request->service, k_service);
    s_hmac (k_service, 32, "aws4_request", k_signing);
    s_hmac (k_signing, 32, to_sign, sig);
    rp_hex_encode (sig, 32, signature);
    OPENSSL_cleanse (secret, sizeof secret);
    OPENSSL_cleanse (k_signing, sizeof k_signing);
    return 0;
}

static int
s_check (const rp_sigv4_request_t *request, const rp_aws_credentials_t *creds, char *err, size_t errlen)
{
    const char *missing = !request->method ? "method" : !request->host ? "host"
                        : !request->region || !*request->region ? "region (AWS_REGION)"
                        : !request->service ? "service"
                        : !creds || !creds->access_key || !*creds->access_key ? "access key (AWS_ACCESS_KEY_ID)"
                        : !creds->secret_key || !*creds->secret_key ? "secret key (AWS_SECRET_ACCESS_KEY)" : NULL;
    if (missing) {
        snprintf (err, errlen, "cannot sign an AWS request without a %s", missing);
        return -1;
    }
    if (strlen (creds->secret_key) > 200 || strlen (request->region) > 64 || strlen (request->service) > 64) {
        snprintf (err, errlen, "AWS credentials or region are implausibly long");
        return -1;
    }
    if (request->query_count + 6 > S_PARAMS_MAX || request->header_count + 4 > S_PARAMS_MAX) {
        snprintf (err, errlen, "too many query parameters or headers to sign");
        return -1;
    }
    return 0;
}

static void
s_amz_date (time_t when, char out [RP_SIGV4_DATE_MAX])
{
    struct tm tm;
    gmtime_r (&when, &tm);
    strftime (out, RP_SIGV4_DATE_MAX, "%Y%m%dT%H%M%SZ", &tm);
}

int
rp_sigv4_authorization (const rp_sigv4_request_t *request, const rp_aws_credentials_t *creds,
                        char authorization [RP_SIGV4_AUTH_MAX], char amz_date [RP_SIGV4_DATE_MAX],
                        char *err, size_t errlen)
{
    if (s_check (request, creds, err, errlen))
        return -1;
    s_amz_date (request->when, amz_date);
    s_canon_t canon;
    memset (&canon, 0, sizeof canon);
    int rc = 0;
    for (size_t i = 0; i < request->query_count && !rc; i++)
        rc = s_add_query (&canon, request->query [i].name, request->query [i].value);
    bool have_date = false, have_host = false, have_token = false;
    for (size_t i = 0; i < request->header_count && !rc; i++) {
        have_host |= strcasecmp (request->headers [i].name, "host") == 0;
        have_date |= strcasecmp (request->headers [i].name, "x-amz-date") == 0;
        have_token |= strcasecmp (request->headers [i].name, "x-amz-security-token") == 0;
        rc = s_add_header (&canon, request->headers [i].name, request->headers [i].value);
    }
    if (!rc && !have_host)
        rc = s_add_header (&canon, "host", request->host);
    if (!rc && !have_date)
        rc = s_add_header (&canon, "x-amz-date", amz_date);
    if (!rc && !have_token && creds->session_token && *creds->session_token)
        rc = s_add_header (&canon, "x-amz-security-token", creds->session_token);
    char signature [65];
    const char *payload = request->payload_sha256 ? request->payload_sha256 : S_EMPTY_SHA256;
    if (!rc)
        rc = s_sign (request, creds, &canon, amz_date, payload, signature);
    if (!rc) {
        rp_buf_t signed_headers;
        rp_buf_init (&signed_headers, S_TEXT_MAX);
        s_signed_headers (&canon, &signed_headers);
        char date [9];
        memcpy (date, amz_date, 8);
        date [8] = 0;
        int n = snprintf (authorization, RP_SIGV4_AUTH_MAX,
                          S_ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                          creds->access_key, date, request->region, request->service,
                          rp_buf_data (&signed_headers), signature);
        if (rp_buf_error (&signed_headers) || n < 0 || n >= RP_SIGV4_AUTH_MAX)
            rc = -1;
        rp_buf_free (&signed_headers);
    }
    s_pairs_free (canon.query, canon.query_count);
    s_pairs_free (canon.headers, canon.header_count);
    if (rc)
        snprintf (err, errlen, "cannot sign the AWS request (out of memory, or too long)");
    return rc;
}

int
rp_sigv4_presign (const rp_sigv4_request_t *request, const rp_aws_credentials_t *creds,
                  const char *scheme, int expires_s, char **url, char *err, size_t errlen)
{
    *url = NULL;
    if (s_check (request, creds, err, errlen))
        return -1;
    if (expires_s < 1 || expires_s > 604800) {
        snprintf (err, errlen, "a presigned URL lives 1 s to 7 days, not %d s", expires_s);
        return -1;
    }
    char amz_date [RP_SIGV4_DATE_MAX], date [9], credential [512], expires [16];
    s_amz_date (request->when, amz_date);
    memcpy (date, amz_date, 8);
    date [8] = 0;
    snprintf (credential, sizeof credential, "%s/%s/%s/%s/aws4_request", creds->access_key, date,
              request->region, request->service);
    snprintf (expires, sizeof expires, "%d", expires_s);

    s_canon_t canon;
    memset (&canon, 0, sizeof canon);
    int rc = 0;
    bool have_host = false;
    for (size_t i = 0; i < request->header_count && !rc; i++) {
        have_host |= strcasecmp (request->headers [i].name, "host") == 0;
        rc = s_add_header (&canon, request->headers [i].name, request->headers [i].value);
    }
    if (!rc && !have_host)
        rc = s_add_header (&canon, "host", request->host);
    rp_buf_t signed_headers;
    rp_buf_init (&signed_headers, S_TEXT_MAX);
    qsort (canon.headers, canon.header_count, sizeof (s_pair_t), s_pair_compare);
    s_signed_headers (&canon, &signed_headers);
    for (size_t i = 0; i < request->query_count && !rc; i++)
        rc = s_add_query (&canon, request->query [i].name, request->query [i].value);
    if (!rc)
        rc = s_add_query (&canon, "X-Amz-Algorithm", S_ALGORITHM)
          || s_add_query (&canon, "X-Amz-Credential", credential)
          || s_add_query (&canon, "X-Amz-Date", amz_date)
          || s_add_query (&canon, "X-Amz-Expires", expires)
          || s_add_query (&canon, "X-Amz-SignedHeaders",
                          rp_buf_len (&signed_headers) ? rp_buf_data (&signed_headers) : "host");
    if (!rc && creds->session_token && *creds->session_token)
        rc = s_add_query (&canon, "X-Amz-Security-Token", creds->session_token);
    if (rp_buf_error (&signed_headers))
        rc = -1;
    rp_buf_free (&signed_headers);
    char signature [65];
    if (!rc)
        rc = s_sign (request, creds, &canon, amz_date,
                     request->payload_sha256 ? request->payload_sha256 : "UNSIGNED-PAYLOAD", signature);
    if (!rc) {
        rp_buf_t out;
        rp_buf_init (&out, S_TEXT_MAX);
        rp_buf_printf (&out, "%s://%s%s?", scheme ? scheme : "https", request->host,
                       request->path && *request->path ? request->path : "/");
        s_query_string (&canon, &out);
        rp_buf_printf (&out, "&X-Amz-Signature=%s", signature);
        *url = rp_buf_take (&out);
        rp_buf_free (&out);
        if (!*url)
            rc = -1;
    }
    s_pairs_free (canon.query, canon.query_count);
    s_pairs_free (canon.headers, canon.header_count);
    if (rc)
        snprintf (err, errlen, "cannot presign the AWS request (out of memory, or too long)");
    return rc;
}
