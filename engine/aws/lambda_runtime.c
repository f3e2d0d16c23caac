/*  engine/aws/lambda_runtime.c: the Lambda Runtime API, over libcurl.

    DESIGN
    One curl handle, reset for each request, so the connection to the API
    (a local endpoint Lambda serves in the execution environment) is kept
    between the long GET /next and the POST that answers it. /next has no
    overall timeout (the API documents none: the environment may be frozen
    for as long as no event comes), only a connect timeout; it is cut short
    by the cancel callback (SIGTERM) through libcurl's progress function.
    Answers are collected in bounded buffers (engine/buf.h): the payload up
    to RP_LAMBDA_EVENT_MAX, anything else up to 64 KiB. Headers are read
    case-insensitively (HTTP/1.1 allows either). Error bodies are built
    with jansson, so a message with quotes or control characters stays
    valid JSON; errorMessage is cut at 4 KiB (a log line, not a dump).
*/
#include "engine/aws/lambda_runtime.h"
#include "engine/alloc.h"
#include "engine/buf.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_ANSWER_MAX (64 * 1024)

struct _rp_lambda_runtime_t {
    char base [300];                    //  http://host:port/2018-06-01
    CURL *curl;
    rp_lambda_cancel_fn *cancel;        //  cuts /next short (NULL: never)
    void *cancel_arg;
};

rp_lambda_runtime_t *
rp_lambda_runtime_new (const char *api, char *err, size_t errlen)
{
    //  host:port: a name or address, a colon, a port; nothing else (no
    //  scheme, no path, no space)
    const char *colon = api ? strrchr (api, ':') : NULL;
    char *end = NULL;
    long port = colon ? strtol (colon + 1, &end, 10) : 0;
    if (!api || !*api || !colon || colon == api || !end || *end || port < 1 || port > 65535
    ||  strlen (api) > 255 || strpbrk (api, "/ \t?#@")) {
        snprintf (err, errlen, "AWS_LAMBDA_RUNTIME_API must be host:port (as Lambda sets it), not \"%.100s\"",
                  api ? api : "");
        return NULL;
    }
    rp_lambda_runtime_t *self = (rp_lambda_runtime_t *) rp_alloc (sizeof (rp_lambda_runtime_t));
    snprintf (self->base, sizeof self->base, "http://%s/2018-06-01", api);
    self->curl = curl_easy_init ();
    if (!self->curl) {
        snprintf (err, errlen, "cannot start curl (out of memory)");
        free (self);
        return NULL;
    }
    return self;
}

void
rp_lambda_runtime_destroy (rp_lambda_runtime_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rp_lambda_runtime_t *self = *self_p;
    curl_easy_cleanup (self->curl);
    free (self);
    *self_p = NULL;
}

void
rp_lambda_runtime_set_cancel (rp_lambda_runtime_t *self, rp_lambda_cancel_fn *fn, void *arg)
{
    self->cancel = fn;
    self->cancel_arg = arg;
}

static int
s_progress (void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    rp_lambda_runtime_t *self = (rp_lambda_runtime_t *) arg;
    return self->cancel && self->cancel (self->cancel_arg) ? 1 : 0;
}

//  The invocation headers of /next's answer, as curl hands them over
static size_t
s_header (char *line, size_t size, size_t count, void *arg)
{
    rp_lambda_invocation_t *invocation = (rp_lambda_invocation_t *) arg;
    size_t len = size * count;
    static const struct { const char *name; size_t offset, size; } wanted [] = {
        { "Lambda-Runtime-Aws-Request-Id", offsetof (rp_lambda_invocation_t, request_id), 128 },
        { "Lambda-Runtime-Trace-Id", offsetof (rp_lambda_invocation_t, trace), 256 },
        { "Lambda-Runtime-Invoked-Function-Arn", offsetof (rp_lambda_invocation_t, function_arn), 256 },
        { "Lambda-Runtime-Deadline-Ms", 0, 0 },
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted [0]; i++) {
        size_t name_len = strlen (wanted [i].name);
        if (len <= name_len || line [name_len] != ':' || strncasecmp (line, wanted [i].name, name_len) != 0)
            continue;
        const char *value = line + name_len + 1;
        size_t value_len = len - name_len - 1;
        while (value_len && (*value == ' ' || *value == '\t')) {
            value++;
            value_len--;
        }
        while (value_len && (value [value_len - 1] == '\r' || value [value_len - 1] == '\n'
                         ||  value [value_len - 1] == ' '))
            value_len--;
        if (wanted [i].size) {
            char *to = (char *) invocation + wanted [i].offset;
            snprintf (to, wanted [i].size, "%.*s", (int) value_len, value);
        }
        else {
            char digits [32];
            snprintf (digits, sizeof digits, "%.*s", (int) (value_len < 31 ? value_len : 31), value);
            char *end = NULL;
            long long ms = strtoll (digits, &end, 10);
            invocation->deadline_ms = end && end != digits && !*end && ms > 0 ? (int64_t) ms : 0;
        }
    }
    return len;
}

//  One request: GET when body is NULL, else POST of body (JSON), with the
//  error type header when given. The answer's status; -1 with err when
//  there was none.
static long
s_request (rp_lambda_runtime_t *self, const char *path, const char *body, const char *error_type,
           rp_buf_t *answer, rp_lambda_invocation_t *invocation, char *err, size_t errlen)
{
    char url [1400];
    snprintf (url, sizeof url, "%s%s", self->base, path);
    CURL *curl = self->curl;
    curl_easy_reset (curl);
    struct curl_slist *list = curl_slist_append (NULL, "Expect:");
    char h_type [200];
    if (body) {
        list = curl_slist_append (list, "Content-Type: application/json");
        if (error_type) {
            snprintf (h_type, sizeof h_type, "Lambda-Runtime-Function-Error-Type: %s", error_type);
            list = curl_slist_append (list, h_type);
        }
    }
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 10L);
    //  /next: no timeout (DESIGN); an answer is taken within a minute
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, body ? 60L : 0L);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
    if (body) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen (body));
    }
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, rp_buf_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, answer);
    if (invocation) {
        curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_header);
        curl_easy_setopt (curl, CURLOPT_HEADERDATA, invocation);
    }
    //  Only the wait for /next is cut short to stop: an answer (or an
    //  error) already under way is delivered, or the batch comes back
    curl_easy_setopt (curl, CURLOPT_NOPROGRESS, self->cancel && !body ? 0L : 1L);
    curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, s_progress);
    curl_easy_setopt (curl, CURLOPT_XFERINFODATA, self);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (list);
    if (rc != CURLE_OK) {
        snprintf (err, errlen, "the Lambda Runtime API (%s%s): %s", self->base, path,
                  rc == CURLE_ABORTED_BY_CALLBACK ? "cancelled (stopping)"
                  : rc == CURLE_WRITE_ERROR && rp_buf_error (answer) ? "the answer is over its limit"
                  : curl_easy_strerror (rc));
        return -1;
    }
    return status;
}

int
rp_lambda_next (rp_lambda_runtime_t *self, rp_lambda_invocation_t *invocation, char *err, size_t errlen)
{
    memset (invocation, 0, sizeof *invocation);
    rp_buf_t answer;
    rp_buf_init (&answer, RP_LAMBDA_EVENT_MAX);
    long status = s_request (self, "/runtime/invocation/next", NULL, NULL, &answer, invocation, err, errlen);
    int rc = 0;
    if (status < 0)
        rc = -1;
    else
    if (status != 200) {
        snprintf (err, errlen, "the Lambda Runtime API answered /next with HTTP %ld: %.300s", status,
                  rp_buf_data (&answer));
        rc = status == 500 ? RP_UNAVAILABLE : -1;
    }
    else
    if (!*invocation->request_id) {
        snprintf (err, errlen, "the Lambda Runtime API gave an invocation without Lambda-Runtime-Aws-Request-Id");
        rc = -1;
    }
    if (rc == 0) {
        invocation->event_len = rp_buf_len (&answer);
        invocation->event = rp_buf_take (&answer);
        if (!invocation->event) {
            snprintf (err, errlen, "out of memory for the invocation's payload");
            rc = -1;
        }
    }
    rp_buf_free (&answer);
    return rc;
}

void
rp_lambda_invocation_clear (rp_lambda_invocation_t *invocation)
{
    free (invocation->event);
    memset (invocation, 0, sizeof *invocation);
}

//  POST body to path; 202 is the only acceptance
static int
s_post (rp_lambda_runtime_t *self, const char *path, const char *body, const char *error_type,
        char *err, size_t errlen)
{
    rp_buf_t answer;
    rp_buf_init (&answer, S_ANSWER_MAX);
    long status = s_request (self, path, body, error_type, &answer, NULL, err, errlen);
    int rc = 0;
    if (status < 0)
        rc = -1;
    else
    if (status != 202) {
        snprintf (err, errlen, "the Lambda Runtime API answered %s with HTTP %ld: %.300s", path, status,
                  rp_buf_data (&answer));
        rc = status == 500 ? RP_UNAVAILABLE : -1;
    }
    rp_buf_free (&answer);
    return rc;
}

//  A request id goes into a path: only what Lambda's ids are made of
static bool
s_id_valid (const char *id)
{
    if (!id || !*id || strlen (id) > 120)
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
           || *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

int
rp_lambda_respond (rp_lambda_runtime_t *self, const char *request_id, const char *body,
                   char *err, size_t errlen)
{
    if (!s_id_valid (request_id)) {
        snprintf (err, errlen, "the request id \"%.60s\" cannot go into a URL", request_id ? request_id : "");
        return -1;
    }
    char path [200];
    snprintf (path, sizeof path, "/runtime/invocation/%s/response", request_id);
    return s_post (self, path, body, NULL, err, errlen);
}

//  {"errorMessage","errorType","stackTrace":[]}, or NULL
static char *
s_error_body (const char *error_type, const char *message)
{
    char cut [4096];
    snprintf (cut, sizeof cut, "%s", message ? message : "");
    //  A message that is not UTF-8 (a key's bytes) is replaced, not dropped
    json_t *text_of = json_string (cut);
    if (!text_of)
        text_of = json_string ("(the message is not UTF-8)");
    json_t *document = json_pack ("{s:o, s:s, s:[]}", "errorMessage", text_of, "errorType", error_type,
                                  "stackTrace");
    char *text = document ? json_dumps (document, JSON_COMPACT) : NULL;
    json_decref (document);
    return text;
}

int
rp_lambda_fail (rp_lambda_runtime_t *self, const char *request_id, const char *error_type,
                const char *message, char *err, size_t errlen)
{
    if (!s_id_valid (request_id)) {
        snprintf (err, errlen, "the request id \"%.60s\" cannot go into a URL", request_id ? request_id : "");
        return -1;
    }
    char *body = s_error_body (error_type, message);
    if (!body) {
        snprintf (err, errlen, "out of memory for an error's body");
        return -1;
    }
    char path [200];
    snprintf (path, sizeof path, "/runtime/invocation/%s/error", request_id);
    int rc = s_post (self, path, body, error_type, err, errlen);
    free (body);
    return rc;
}

int
rp_lambda_init_error (rp_lambda_runtime_t *self, const char *error_type, const char *message,
                      char *err, size_t errlen)
{
    char *body = s_error_body (error_type, message);
    if (!body) {
        snprintf (err, errlen, "out of memory for an error's body");
        return -1;
    }
    int rc = s_post (self, "/runtime/init/error", body, error_type, err, errlen);
    free (body);
    return rc;
}
