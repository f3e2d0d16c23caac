/*  engine/aws/s3.c: an S3 client over libcurl (see s3.h).

    Every request goes through s_perform: the URL and the canonical path
    from the addressing style, the payload's SHA-256 (x-amz-content-sha256,
    which S3 requires and which curl's own SigV4 support does not set by
    itself), the SigV4 Authorization from aws/sigv4.c, and retries with
    exponential backoff and jitter on network errors, 5xx and throttling.
    Bodies stream from files and to files; only a multipart part (part_size)
    and S3's small XML answers are held in memory.
*/
#include "engine/aws/s3.h"
#include "engine/alloc.h"
#include "engine/aws/common.h"
#include "engine/buf.h"
#include "engine/hex.h"
#include "engine/log.h"
#include "engine/trace.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  S3's answers we keep (errors, CreateMultipartUpload, CompleteMultipartUpload)
//  are XML documents of a few hundred bytes; past 1 MiB the rest is dropped
//  (the status still tells the outcome)
#define S_XML_MAX (1 << 20)

struct _rp_s3_t {
    char *endpoint;                     //  "" for AWS
    char *scheme;                       //  "http" or "https"
    char *authority;                    //  host[:port] of the endpoint, or the bucket's AWS host
    char *region;
    char *bucket;
    char *access_key;
    char *secret_key;
    char *session_token;
    bool path_style;
    int64_t threshold;
    int64_t part_size;
    int attempts;
    long timeout_s;
    CURL *curl;
    uint64_t requests;
};

//  ---------------------------------------------------------------------------
//  Set-up

rp_s3_t *
rp_s3_new (const rp_s3_config_t *config, char *err, size_t errlen)
{
    if (!config->bucket || !*config->bucket || strlen (config->bucket) > 63) {
        snprintf (err, errlen, "storage.s3_bucket must name a bucket (3 to 63 characters)");
        return NULL;
    }
    if (!config->region || !*config->region) {
        snprintf (err, errlen, "S3 needs a region: set AWS_REGION");
        return NULL;
    }
    if (!config->credentials.access_key || !*config->credentials.access_key
    ||  !config->credentials.secret_key || !*config->credentials.secret_key) {
        snprintf (err, errlen, "S3 needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
        return NULL;
    }
    rp_s3_t *self = (rp_s3_t *) rp_alloc (sizeof (rp_s3_t));
    const char *endpoint = config->endpoint ? config->endpoint : "";
    self->endpoint = rp_strdup (endpoint);
    self->region = rp_strdup (config->region);
    self->bucket = rp_strdup (config->bucket);
    self->access_key = rp_strdup (config->credentials.access_key);
    self->secret_key = rp_strdup (config->credentials.secret_key);
    self->session_token = rp_strdup (config->credentials.session_token);
    self->threshold = config->multipart_threshold > 0 ? config->multipart_threshold : 16LL << 20;
    self->part_size = config->part_size > 0 ? config->part_size : 8LL << 20;
    self->attempts = config->attempts > 0 ? config->attempts : 4;
    self->timeout_s = config->timeout_s > 0 ? config->timeout_s : 120;
    if (*endpoint) {
        //  scheme://authority[/...]: path-style against the endpoint
        char scheme [16], authority [256];
        if (rp_aws_split_url (endpoint, scheme, sizeof scheme, authority, sizeof authority)) {
            snprintf (err, errlen, "the S3 endpoint \"%s\" is not an http(s):// URL", endpoint);
            rp_s3_destroy (&self);
            return NULL;
        }
        self->scheme = rp_strdup (scheme);
        self->authority = rp_strdup (authority);
        self->path_style = true;
    }
    else {
        self->scheme = rp_strdup ("https");
        char host [256];
        snprintf (host, sizeof host, "%s.s3.%s.amazonaws.com", config->bucket, config->region);
        self->authority = rp_strdup (host);
    }
    self->curl = curl_easy_init ();
    if (!self->curl) {
        snprintf (err, errlen, "cannot start curl (out of memory)");
        rp_s3_destroy (&self);
        return NULL;
    }
    return self;
}

void
rp_s3_destroy (rp_s3_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rp_s3_t *self = *self_p;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    free (self->endpoint);
    free (self->scheme);
    free (self->authority);
    free (self->region);
    free (self->bucket);
    free (self->access_key);
    if (self->secret_key)
        memset (self->secret_key, 0, strlen (self->secret_key));
    free (self->secret_key);
    free (self->session_token);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  One request

typedef struct {
    const char *method;
    const char *key;                    //  NULL: the bucket
    const rp_aws_param_t *query;
    size_t query_count;
    //  Body: from memory, or from a file range
    const char *body;
    size_t body_len;
    FILE *in;
    int64_t in_offset;
    int64_t in_len;
    const char *in_sha;                 //  SHA-256 hex of the file range
    const char *content_type;
    //  Response body: into a file (2xx only), else kept (bounded)
    FILE *out;
    const char *range;                  //  "bytes=0-9" or NULL
    const char *copy_source;            //  CopyObject: "/<bucket>/<key>", encoded; or NULL
} s_request_t;

typedef struct {
    long status;
    rp_buf_t body;                      //  what a request without a file answers, at most S_XML_MAX
    char etag [RP_S3_ETAG_MAX];
    int64_t length;
    FILE *out;
    CURL *curl;
    bool write_failed;
} s_response_t;

static size_t
s_on_body (char *data, size_t size, size_t n, void *arg)
{
    s_response_t *resp = (s_response_t *) arg;
    size_t bytes = size * n;
    long status = 0;
    curl_easy_getinfo (resp->curl, CURLINFO_RESPONSE_CODE, &status);
    if (resp->out && status >= 200 && status < 300) {
        if (fwrite (data, 1, bytes, resp->out) != bytes) {
            resp->write_failed = true;
            return 0;
        }
        return bytes;
    }
    return rp_buf_collect_head (data, size, n, &resp->body);    //  past S_XML_MAX: dropped
}

static size_t
s_on_header (char *data, size_t size, size_t n, void *arg)
{
    s_response_t *resp = (s_response_t *) arg;
    size_t bytes = size * n;
    if (bytes > 5 && strncasecmp (data, "ETag:", 5) == 0) {
        const char *value = data + 5;
        while (*value == ' ' || *value == '"')
            value++;
        size_t len = strcspn (value, "\"\r\n");
        if (len >= RP_S3_ETAG_MAX)
            len = RP_S3_ETAG_MAX - 1;
        memcpy (resp->etag, value, len);
        resp->etag [len] = 0;
    }
    else
    if (bytes > 15 && strncasecmp (data, "Content-Length:", 15) == 0)
        resp->length = strtoll (data + 15, NULL, 10);
    return bytes;
}

typedef struct {
    FILE *in;
    int64_t left;
} s_reader_t;

static size_t
s_on_read (char *buffer, size_t size, size_t n, void *arg)
{
    s_reader_t *reader = (s_reader_t *) arg;
    size_t want = size * n;
    if ((int64_t) want > reader->left)
        want = (size_t) reader->left;
    size_t got = want ? fread (buffer, 1, want, reader->in) : 0;
    if (got < want && ferror (reader->in))
        return CURL_READFUNC_ABORT;
    reader->left -= (int64_t) got;
    return got;
}

//  The text of <tag> in xml (first one), unescaped for &quot;; "" when none.
static void
s_xml_value (const char *xml, const char *tag, char *out, size_t outlen)
{
    out [0] = 0;
    if (!xml)
        return;
    char open [64], close [64];
    snprintf (open, sizeof open, "<%s>", tag);
    snprintf (close, sizeof close, "</%s>", tag);
    const char *start = strstr (xml, open);
    if (!start)
        return;
    start += strlen (open);
    const char *end = strstr (start, close);
    if (!end)
        return;
    size_t o = 0;
    for (const char *c = start; c < end && o + 1 < outlen;) {
        if (strncmp (c, "&quot;", 6) == 0) {
            out [o++] = '"';
            c += 6;
        }
        else
        if (strncmp (c, "&amp;", 5) == 0) {
            out [o++] = '&';
            c += 5;
        }
        else
            out [o++] = *c++;
    }
    out [o] = 0;
}

static bool
s_retryable (CURLcode rc, long status)
{
    return rc != CURLE_OK || status >= 500 || status == 429;
}

//  Run a request once. 0 with resp filled (any HTTP status), or -1 with
//  err for a failure to talk to S3 at all.
static int
s_perform_once (rp_s3_t *self, const s_request_t *req, s_response_t *resp, char *err, size_t errlen)
{
    char path [4096];
    int at = 0;
    if (self->path_style)
        at = snprintf (path, sizeof path, "/%s", self->bucket);
    if (req->key) {
        path [at++] = '/';
        if (rp_sigv4_uri_encode (req->key, strlen (req->key), true, path + at, sizeof path - (size_t) at) < 0) {
            snprintf (err, errlen, "the S3 key is too long");
            return -1;
        }
    }
    else
    if (at == 0)
        snprintf (path, sizeof path, "/");
    char sha [65];
    if (req->in)
        snprintf (sha, sizeof sha, "%s", req->in_sha);
    else
        rp_sigv4_sha256_hex (req->body ? req->body : "", req->body_len, sha);

    rp_aws_param_t headers [5];
    size_t header_count = 0;
    headers [header_count++] = (rp_aws_param_t) { "x-amz-content-sha256", sha };
    if (req->content_type)
        headers [header_count++] = (rp_aws_param_t) { "content-type", req->content_type };
    if (req->range)
        headers [header_count++] = (rp_aws_param_t) { "range", req->range };
    if (req->copy_source)
        headers [header_count++] = (rp_aws_param_t) { "x-amz-copy-source", req->copy_source };
    rp_aws_credentials_t creds = { self->access_key, self->secret_key, self->session_token };
    rp_sigv4_request_t sign = {
        .method = req->method, .host = self->authority, .path = path, .query = req->query,
        .query_count = req->query_count, .headers = headers, .header_count = header_count,
        .payload_sha256 = sha, .region = self->region, .service = "s3", .when = time (NULL),
    };
    char authorization [RP_SIGV4_AUTH_MAX], amz_date [RP_SIGV4_DATE_MAX];
    if (rp_sigv4_authorization (&sign, &creds, authorization, amz_date, err, errlen))
        return -1;

    //  The URL, with the query encoded as it was signed
    size_t url_cap = strlen (self->scheme) + strlen (self->authority) + strlen (path) + 16;
    for (size_t i = 0; i < req->query_count; i++)
        url_cap += 3 * (strlen (req->query [i].name) + strlen (req->query [i].value ? req->query [i].value : "")) + 2;
    char *url = (char *) malloc (url_cap);
    if (!url) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    size_t len = (size_t) snprintf (url, url_cap, "%s://%s%s", self->scheme, self->authority, path);
    for (size_t i = 0; i < req->query_count; i++) {
        url [len++] = i ? '&' : '?';
        len += (size_t) rp_sigv4_uri_encode (req->query [i].name, strlen (req->query [i].name), false,
                                             url + len, url_cap - len);
        url [len++] = '=';
        const char *value = req->query [i].value ? req->query [i].value : "";
        len += (size_t) rp_sigv4_uri_encode (value, strlen (value), false, url + len, url_cap - len);
    }
    url [len] = 0;

    char h_auth [RP_SIGV4_AUTH_MAX + 32], h_date [64], h_sha [128], h_token [4096], h_type [300], h_range [128];
    char h_copy [3 * RP_S3_KEY_MAX + 128];
    struct curl_slist *list = curl_slist_append (NULL, "Expect:");
    snprintf (h_auth, sizeof h_auth, "Authorization: %s", authorization);
    snprintf (h_date, sizeof h_date, "x-amz-date: %s", amz_date);
    snprintf (h_sha, sizeof h_sha, "x-amz-content-sha256: %s", sha);
    list = curl_slist_append (list, h_auth);
    list = curl_slist_append (list, h_date);
    list = curl_slist_append (list, h_sha);
    if (self->session_token) {
        snprintf (h_token, sizeof h_token, "x-amz-security-token: %s", self->session_token);
        list = curl_slist_append (list, h_token);
    }
    if (req->content_type) {
        snprintf (h_type, sizeof h_type, "Content-Type: %s", req->content_type);
        list = curl_slist_append (list, h_type);
    }
    else
        list = curl_slist_append (list, "Content-Type:");
    if (req->range) {
        snprintf (h_range, sizeof h_range, "Range: %s", req->range);
        list = curl_slist_append (list, h_range);
    }
    if (req->copy_source) {
        snprintf (h_copy, sizeof h_copy, "x-amz-copy-source: %s", req->copy_source);
        list = curl_slist_append (list, h_copy);
    }

    CURL *curl = self->curl;
    curl_easy_reset (curl);
    resp->status = 0;
    rp_buf_reset (&resp->body);
    resp->etag [0] = 0;
    resp->length = 0;
    resp->out = req->out;
    resp->curl = curl;
    resp->write_failed = false;
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, self->timeout_s);
    if (rp_aws_ca_bundle ())
        curl_easy_setopt (curl, CURLOPT_CAINFO, rp_aws_ca_bundle ());
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, resp);
    s_reader_t reader = { req->in, req->in_len };
    if (strcmp (req->method, "HEAD") == 0)
        curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    else
    if (req->in) {
        fseeko (req->in, (off_t) req->in_offset, SEEK_SET);
        curl_easy_setopt (curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt (curl, CURLOPT_READFUNCTION, s_on_read);
        curl_easy_setopt (curl, CURLOPT_READDATA, &reader);
        curl_easy_setopt (curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) req->in_len);
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, req->method);
    }
    else
    if (req->body || strcmp (req->method, "POST") == 0 || strcmp (req->method, "PUT") == 0) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, req->method);
    }
    else
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, req->method);
    CURLcode rc = curl_easy_perform (curl);
    self->requests++;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all (list);
    free (url);
    if (resp->write_failed) {
        snprintf (err, errlen, "cannot write what S3 sent: %s", strerror (errno));
        return -1;
    }
    if (rc != CURLE_OK) {
        snprintf (err, errlen, "cannot reach S3 at %s: %s", self->authority, curl_easy_strerror (rc));
        return -1;
    }
    return 0;
}

//  A failed answer as one readable line.
static void
s_describe (const rp_s3_t *self, const char *what, const char *key, const s_response_t *resp,
            char *err, size_t errlen)
{
    char code [64], message [256];
    s_xml_value (rp_buf_data (&resp->body), "Code", code, sizeof code);
    s_xml_value (rp_buf_data (&resp->body), "Message", message, sizeof message);
    snprintf (err, errlen, "S3 %s s3://%s/%s: %ld%s%s%s%s", what, self->bucket, key ? key : "", resp->status,
              *code ? " " : "", code, *message ? ": " : "", message);
}

//  Run a request with retries. 0 with a 2xx (or a 404 when not_found is
//  given: then *not_found is set), or -1 with err. Either way resp holds
//  the last answer: rp_buf_free (&resp->body) when done.
static int s_perform_attempts (rp_s3_t *self, const char *what, const s_request_t *req, s_response_t *resp,
                               bool *not_found, char *err, size_t errlen);

//  A request, its retries included, and its "S3" subsegment when traced
static int
s_perform (rp_s3_t *self, const char *what, const s_request_t *req, s_response_t *resp, bool *not_found,
           char *err, size_t errlen)
{
    if (!rp_trace_active ())
        return s_perform_attempts (self, what, req, resp, not_found, err, errlen);
    double start = rp_trace_now ();
    int rc = s_perform_attempts (self, what, req, resp, not_found, err, errlen);
    rp_trace_subsegment ("S3", "aws", what, start, rp_trace_now (), rc ? (resp->status ? (int) resp->status : -1) : 0,
                         json_pack ("{s:{s:s}}", "aws", "bucket_name", self->bucket));
    return rc;
}

static int
s_perform_attempts (rp_s3_t *self, const char *what, const s_request_t *req, s_response_t *resp,
                    bool *not_found, char *err, size_t errlen)
{
    if (not_found)
        *not_found = false;
    memset (resp, 0, sizeof *resp);
    rp_buf_init (&resp->body, S_XML_MAX);
    for (int attempt = 1;; attempt++) {
        char why [512] = "";
        int rc = s_perform_once (self, req, resp, why, sizeof why);
        if (rc == 0 && resp->status >= 200 && resp->status < 300)
            return 0;
        if (rc == 0 && resp->status == 404 && not_found) {
            *not_found = true;
            return 0;
        }
        bool again = (rc != 0 && strncmp (why, "cannot reach", 12) == 0) || (rc == 0 && s_retryable (CURLE_OK, resp->status));
        if (rc == 0)
            s_describe (self, what, req->key, resp, why, sizeof why);
        if (!again || attempt >= self->attempts) {
            snprintf (err, errlen, "%s%s", why, attempt > 1 ? " (after retries)" : "");
            return -1;
        }
        //  Backoff with jitter: 100 ms, 200 ms, 400 ms ... plus up to 100 %
        unsigned int noise = 0;
        if (getrandom (&noise, sizeof noise, 0) != sizeof noise)
            noise = (unsigned int) time (NULL);
        long base_ms = 100L << (attempt - 1);
        long sleep_ms = base_ms + (long) (noise % (unsigned int) base_ms);
        rp_warn ("s3", "%s; try %d of %d in %ld ms", why, attempt + 1, self->attempts, sleep_ms);
        if (req->out) {
            fflush (req->out);
            if (ftruncate (fileno (req->out), 0) == 0)
                rewind (req->out);
        }
        usleep ((useconds_t) sleep_ms * 1000);
    }
}

//  ---------------------------------------------------------------------------
//  Operations

//  SHA-256 hex of len bytes of a file from offset.
static int
s_file_sha (FILE *file, int64_t offset, int64_t len, char hex [65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    if (!ctx || EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) != 1)
        return -1;
    char buffer [65536];
    fseeko (file, (off_t) offset, SEEK_SET);
    while (len > 0) {
        size_t n = fread (buffer, 1, len < (int64_t) sizeof buffer ? (size_t) len : sizeof buffer, file);
        if (n == 0)
            break;
        EVP_DigestUpdate (ctx, buffer, n);
        len -= (int64_t) n;
    }
    unsigned char digest [32];
    unsigned int digest_len = 0;
    EVP_DigestFinal_ex (ctx, digest, &digest_len);
    EVP_MD_CTX_free (ctx);
    if (len > 0)
        return -1;
    rp_hex_encode (digest, sizeof digest, hex);
    return 0;
}

//  A multipart upload under way: its key and id, and the completion
//  document growing a part at a time
struct _rp_s3_multipart_t {
    char key [RP_S3_KEY_MAX + 1];
    char upload_id [1024];
    int parts;                          //  parts uploaded
    rp_buf_t xml;                       //  "<CompleteMultipartUpload><Part>..." so far
};

//  At most 10,000 parts (S3's bound), each in under 64 bytes of markup
//  and its ETag
#define S_PARTS_MAX 10000

//  A request whose answer is an XML document with the new object's ETag
//  (CompleteMultipartUpload, CopyObject): S3 may answer those 200 with an
//  <Error> in the body, which is a failure too
static int
s_perform_etag (rp_s3_t *self, const char *what, const s_request_t *req, char etag [RP_S3_ETAG_MAX],
                char *err, size_t errlen)
{
    etag [0] = 0;
    s_response_t resp;
    int rc = s_perform (self, what, req, &resp, NULL, err, errlen);
    if (rc == 0 && strstr (rp_buf_data (&resp.body), "<Error>")) {
        s_describe (self, what, req->key, &resp, err, errlen);
        rc = -1;
    }
    if (rc == 0) {
        char value [RP_S3_ETAG_MAX + 8];
        s_xml_value (rp_buf_data (&resp.body), "ETag", value, sizeof value);
        const char *v = value;
        while (*v == '"')
            v++;
        snprintf (etag, RP_S3_ETAG_MAX, "%.*s", (int) strcspn (v, "\""), v);
    }
    rp_buf_free (&resp.body);
    return rc;
}

rp_s3_multipart_t *
rp_s3_multipart_begin (rp_s3_t *self, const char *key, const char *content_type, char *err, size_t errlen)
{
    if (strlen (key) > RP_S3_KEY_MAX) {
        snprintf (err, errlen, "the S3 key %.40s... is longer than S3 takes", key);
        return NULL;
    }
    s_response_t resp;
    rp_aws_param_t start [] = { { "uploads", "" } };
    s_request_t create = { .method = "POST", .key = key, .query = start, .query_count = 1,
                           .content_type = content_type };
    if (s_perform (self, "CreateMultipartUpload", &create, &resp, NULL, err, errlen)) {
        rp_buf_free (&resp.body);
        return NULL;
    }
    rp_s3_multipart_t *mp = (rp_s3_multipart_t *) rp_alloc (sizeof (rp_s3_multipart_t));
    s_xml_value (rp_buf_data (&resp.body), "UploadId", mp->upload_id, sizeof mp->upload_id);
    rp_buf_free (&resp.body);
    if (!*mp->upload_id) {
        snprintf (err, errlen, "S3 CreateMultipartUpload s3://%s/%s: no UploadId in the answer", self->bucket, key);
        free (mp);
        return NULL;
    }
    snprintf (mp->key, sizeof mp->key, "%s", key);
    rp_buf_init (&mp->xml, 128 + (size_t) S_PARTS_MAX * (64 + RP_S3_ETAG_MAX));
    rp_buf_append_str (&mp->xml, "<CompleteMultipartUpload>");
    return mp;
}

int
rp_s3_multipart_part (rp_s3_t *self, rp_s3_multipart_t *mp, FILE *file, int64_t offset, int64_t len,
                      char *err, size_t errlen)
{
    int part = mp->parts + 1;
    if (part > S_PARTS_MAX) {
        snprintf (err, errlen, "s3://%s/%s: more than %d parts", self->bucket, mp->key, S_PARTS_MAX);
        return -1;
    }
    char sha [65], number [16];
    if (s_file_sha (file, offset, len, sha)) {
        snprintf (err, errlen, "cannot read part %d of the file for s3://%s/%s", part, self->bucket, mp->key);
        return -1;
    }
    snprintf (number, sizeof number, "%d", part);
    rp_aws_param_t query [] = { { "partNumber", number }, { "uploadId", mp->upload_id } };
    s_request_t put = { .method = "PUT", .key = mp->key, .query = query, .query_count = 2,
                        .in = file, .in_offset = offset, .in_len = len, .in_sha = sha };
    s_response_t resp;
    int rc = s_perform (self, "UploadPart", &put, &resp, NULL, err, errlen);
    rp_buf_free (&resp.body);
    if (rc)
        return -1;
    if (rp_buf_printf (&mp->xml, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>", part, resp.etag)) {
        snprintf (err, errlen, "cannot list the parts of s3://%s/%s: %s", self->bucket, mp->key,
                  strerror (rp_buf_error (&mp->xml)));
        return -1;
    }
    mp->parts = part;
    return 0;
}

int
rp_s3_multipart_complete (rp_s3_t *self, rp_s3_multipart_t **mp_p, char etag [RP_S3_ETAG_MAX],
                          char *err, size_t errlen)
{
    rp_s3_multipart_t *mp = *mp_p;
    etag [0] = 0;
    int rc = 0;
    if (rp_buf_append_str (&mp->xml, "</CompleteMultipartUpload>")) {
        snprintf (err, errlen, "cannot list the parts of s3://%s/%s: %s", self->bucket, mp->key,
                  strerror (rp_buf_error (&mp->xml)));
        rc = -1;
    }
    if (rc == 0) {
        rp_aws_param_t query [] = { { "uploadId", mp->upload_id } };
        s_request_t complete = { .method = "POST", .key = mp->key, .query = query, .query_count = 1,
                                 .body = rp_buf_data (&mp->xml), .body_len = rp_buf_len (&mp->xml),
                                 .content_type = "application/xml" };
        rc = s_perform_etag (self, "CompleteMultipartUpload", &complete, etag, err, errlen);
    }
    if (rc)
        rp_s3_multipart_abort (self, mp_p);
    else {
        rp_buf_free (&mp->xml);
        free (mp);
        *mp_p = NULL;
    }
    return rc;
}

void
rp_s3_multipart_abort (rp_s3_t *self, rp_s3_multipart_t **mp_p)
{
    rp_s3_multipart_t *mp = *mp_p;
    if (!mp)
        return;
    //  Leave nothing half made (its own failure is only logged)
    rp_aws_param_t query [] = { { "uploadId", mp->upload_id } };
    s_request_t abort_req = { .method = "DELETE", .key = mp->key, .query = query, .query_count = 1 };
    s_response_t resp;
    char why [512];
    if (s_perform (self, "AbortMultipartUpload", &abort_req, &resp, NULL, why, sizeof why))
        rp_warn ("s3", "%s (a lifecycle rule for incomplete uploads will reap it)", why);
    rp_buf_free (&resp.body);
    rp_buf_free (&mp->xml);
    free (mp);
    *mp_p = NULL;
}

static int
s_put_multipart (rp_s3_t *self, const char *key, FILE *file, int64_t size, const char *content_type,
                 char etag [RP_S3_ETAG_MAX], char *err, size_t errlen)
{
    rp_s3_multipart_t *mp = rp_s3_multipart_begin (self, key, content_type, err, errlen);
    if (!mp)
        return -1;
    for (int64_t offset = 0; offset < size; offset += self->part_size) {
        int64_t len = size - offset < self->part_size ? size - offset : self->part_size;
        if (rp_s3_multipart_part (self, mp, file, offset, len, err, errlen)) {
            rp_s3_multipart_abort (self, &mp);
            return -1;
        }
    }
    return rp_s3_multipart_complete (self, &mp, etag, err, errlen);
}

int
rp_s3_copy (rp_s3_t *self, const char *from_key, const char *to_key, char etag [RP_S3_ETAG_MAX],
            char *err, size_t errlen)
{
    etag [0] = 0;
    //  x-amz-copy-source: /<bucket>/<key>, the key URL-encoded (its slashes kept)
    char source [3 * RP_S3_KEY_MAX + 80];
    int at = snprintf (source, sizeof source, "/%s/", self->bucket);
    if (rp_sigv4_uri_encode (from_key, strlen (from_key), true, source + at, sizeof source - (size_t) at) < 0) {
        snprintf (err, errlen, "the S3 key %.40s... is too long to copy from", from_key);
        return -1;
    }
    s_request_t copy = { .method = "PUT", .key = to_key, .copy_source = source };
    return s_perform_etag (self, "CopyObject", &copy, etag, err, errlen);
}

int
rp_s3_put_file (rp_s3_t *self, const char *key, const char *path, const char *content_type,
                char etag [RP_S3_ETAG_MAX], char *err, size_t errlen)
{
    etag [0] = 0;
    FILE *file = fopen (path, "rb");
    struct stat st;
    if (!file || fstat (fileno (file), &st)) {
        snprintf (err, errlen, "cannot read %s: %s", path, strerror (errno));
        if (file)
            fclose (file);
        return -1;
    }
    int64_t size = (int64_t) st.st_size;
    int rc;
    if (size > self->threshold)
        rc = s_put_multipart (self, key, file, size, content_type, etag, err, errlen);
    else {
        char sha [65];
        rc = s_file_sha (file, 0, size, sha);
        if (rc)
            snprintf (err, errlen, "cannot read %s", path);
        else {
            s_request_t put = { .method = "PUT", .key = key, .in = file, .in_len = size, .in_sha = sha,
                                .content_type = content_type };
            s_response_t resp;
            rc = s_perform (self, "PUT", &put, &resp, NULL, err, errlen);
            if (rc == 0)
                snprintf (etag, RP_S3_ETAG_MAX, "%s", resp.etag);
            rp_buf_free (&resp.body);
        }
    }
    fclose (file);
    return rc;
}

int
rp_s3_head (rp_s3_t *self, const char *key, int64_t *size, char etag [RP_S3_ETAG_MAX],
            char *err, size_t errlen)
{
    s_request_t head = { .method = "HEAD", .key = key };
    s_response_t resp;
    bool missing = false;
    int rc = s_perform (self, "HEAD", &head, &resp, &missing, err, errlen);
    rp_buf_free (&resp.body);
    if (rc)
        return -1;
    if (missing) {
        snprintf (err, errlen, "s3://%s/%s does not exist", self->bucket, key);
        return RP_NOT_FOUND;
    }
    if (size)
        *size = resp.length;
    if (etag)
        snprintf (etag, RP_S3_ETAG_MAX, "%s", resp.etag);
    return 0;
}

int
rp_s3_get_file (rp_s3_t *self, const char *key, int64_t first, int64_t last, const char *path,
                char *err, size_t errlen)
{
    FILE *out = fopen (path, "wb");
    if (!out) {
        snprintf (err, errlen, "cannot write %s: %s", path, strerror (errno));
        return -1;
    }
    char range [64] = "";
    if (first > 0 || last >= 0) {
        if (last >= 0)
            snprintf (range, sizeof range, "bytes=%lld-%lld", (long long) first, (long long) last);
        else
            snprintf (range, sizeof range, "bytes=%lld-", (long long) first);
    }
    s_request_t get = { .method = "GET", .key = key, .out = out, .range = *range ? range : NULL };
    s_response_t resp;
    bool missing = false;
    int rc = s_perform (self, "GET", &get, &resp, &missing, err, errlen);
    rp_buf_free (&resp.body);
    if (fclose (out) && rc == 0) {
        snprintf (err, errlen, "cannot write %s: %s", path, strerror (errno));
        rc = -1;
    }
    if (rc == 0 && missing) {
        snprintf (err, errlen, "s3://%s/%s does not exist", self->bucket, key);
        rc = RP_NOT_FOUND;
    }
    if (rc)
        unlink (path);
    return rc;
}

int
rp_s3_delete (rp_s3_t *self, const char *key, char *err, size_t errlen)
{
    s_request_t del = { .method = "DELETE", .key = key };
    s_response_t resp;
    bool missing = false;
    int rc = s_perform (self, "DELETE", &del, &resp, &missing, err, errlen);
    rp_buf_free (&resp.body);
    return rc;
}

uint64_t
rp_s3_requests (rp_s3_t *self)
{
    return self->requests;
}

//  XML text between start and end, unescaped (the five named entities and
//  character references, &#39; &#x27;), as a malloc'ed string. NULL when
//  a reference is none of those, or names NUL or no character.
static char *
s_xml_text (const char *start, const char *end)
{
    static const struct { const char *entity; char ch; } entities [] = {
        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
    };
    char *out = (char *) malloc ((size_t) (end - start) + 1);     //  never longer than the text
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *c = start; c < end;) {
        if (*c != '&') {
            out [o++] = *c++;
            continue;
        }
        const char *semi = memchr (c, ';', (size_t) (end - c));
        if (semi && c [1] == '#') {
            bool hex = c [2] == 'x' || c [2] == 'X';
            char *stop = NULL;
            unsigned long code = strtoul (c + (hex ? 3 : 2), &stop, hex ? 16 : 10);
            if (stop != semi || code == 0 || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
                free (out);
                return NULL;
            }
            //  As UTF-8 (at most 4 bytes; the reference was at least 4)
            if (code < 0x80)
                out [o++] = (char) code;
            else
            if (code < 0x800) {
                out [o++] = (char) (0xC0 | code >> 6);
                out [o++] = (char) (0x80 | (code & 0x3F));
            }
            else
            if (code < 0x10000) {
                out [o++] = (char) (0xE0 | code >> 12);
                out [o++] = (char) (0x80 | ((code >> 6) & 0x3F));
                out [o++] = (char) (0x80 | (code & 0x3F));
            }
            else {
                out [o++] = (char) (0xF0 | code >> 18);
                out [o++] = (char) (0x80 | ((code >> 12) & 0x3F));
                out [o++] = (char) (0x80 | ((code >> 6) & 0x3F));
                out [o++] = (char) (0x80 | (code & 0x3F));
            }
            c = semi + 1;
            continue;
        }
        size_t i = 0;
        while (i < 5 && strncmp (c, entities [i].entity, strlen (entities [i].entity)) != 0)
            i++;
        if (i == 5) {
            free (out);
            return NULL;
        }
        out [o++] = entities [i].ch;
        c += strlen (entities [i].entity);
    }
    out [o] = 0;
    return out;
}

int
rp_s3_list (rp_s3_t *self, const char *prefix, const char *start_after, int max_keys, json_t **keys,
            bool *truncated, char *err, size_t errlen)
{
    *keys = NULL;
    *truncated = false;
    char max [16];
    snprintf (max, sizeof max, "%d", max_keys < 1 ? 1 : max_keys > 1000 ? 1000 : max_keys);
    //  Sorted by name, as SigV4 wants the query
    rp_aws_param_t query [4];
    size_t count = 0;
    query [count++] = (rp_aws_param_t) { "list-type", "2" };
    query [count++] = (rp_aws_param_t) { "max-keys", max };
    query [count++] = (rp_aws_param_t) { "prefix", prefix };
    if (start_after && *start_after)
        query [count++] = (rp_aws_param_t) { "start-after", start_after };
    s_request_t list = { .method = "GET", .query = query, .query_count = count };
    s_response_t resp;
    int rc = s_perform (self, "LIST", &list, &resp, NULL, err, errlen);
    const char *xml = rp_buf_data (&resp.body);
    if (rc == 0 && (rp_buf_error (&resp.body) || !xml || !strstr (xml, "</ListBucketResult>"))) {
        snprintf (err, errlen, "S3 LIST s3://%s/%s: the answer is not a whole listing", self->bucket, prefix);
        rc = -1;
    }
    json_t *names = rc == 0 ? json_array () : NULL;
    for (const char *at = xml; rc == 0 && (at = strstr (at, "<Key>"));) {
        at += 5;
        const char *end = strstr (at, "</Key>");
        char *key = end ? s_xml_text (at, end) : NULL;
        if (!key) {
            snprintf (err, errlen, "S3 LIST s3://%s/%s: a key that cannot be read", self->bucket, prefix);
            rc = -1;
            break;
        }
        json_array_append_new (names, json_string (key));
        free (key);
        at = end;
    }
    if (rc == 0) {
        *truncated = strstr (xml, "<IsTruncated>true</IsTruncated>") != NULL;
        *keys = names;
    }
    else
        json_decref (names);
    rp_buf_free (&resp.body);
    return rc;
}

int
rp_s3_presign (rp_s3_t *self, const char *method, const char *key, int expires_s, int64_t content_length,
               char **url, char *err, size_t errlen)
{
    char path [4096];
    int at = self->path_style ? snprintf (path, sizeof path, "/%s/", self->bucket)
                              : snprintf (path, sizeof path, "/");
    if (rp_sigv4_uri_encode (key, strlen (key), true, path + at, sizeof path - (size_t) at) < 0) {
        snprintf (err, errlen, "the S3 key is too long");
        return -1;
    }
    rp_aws_credentials_t creds = { self->access_key, self->secret_key, self->session_token };
    //  A length signed is a length S3 holds the request to
    char length [24];
    snprintf (length, sizeof length, "%lld", (long long) content_length);
    rp_aws_param_t headers [] = { { "content-length", length } };
    rp_sigv4_request_t request = {
        .method = method, .host = self->authority, .path = path, .region = self->region,
        .service = "s3", .when = time (NULL), .headers = content_length >= 0 ? headers : NULL,
        .header_count = content_length >= 0 ? 1 : 0,
    };
    return rp_sigv4_presign (&request, &creds, self->scheme, expires_s, url, err, errlen);
}
