/*  tests/support/http.c: see http.h. */
#include "tests/support/http.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define S_MAX_BODY ((size_t) 64 << 20)

//  The body collector: appends what arrived, bounded by max_body; 0 hangs
//  up (over the bound, or the caller has read enough)
static size_t
s_collect (char *data, size_t size, size_t n, void *arg)
{
    rp_test_reply_t *reply = (rp_test_reply_t *) arg;
    size_t bytes = size * n;
    size_t max = reply->request.max_body ? reply->request.max_body : S_MAX_BODY;
    if (bytes > max - reply->len) {
        reply->over = true;
        return 0;
    }
    char *body = realloc (reply->body, reply->len + bytes + 1);
    if (!body)
        return 0;
    reply->body = body;
    memcpy (reply->body + reply->len, data, bytes);
    reply->len += bytes;
    reply->body [reply->len] = 0;
    if (reply->request.enough && reply->request.enough (reply, reply->request.arg))
        return 0;
    return bytes;
}

static size_t
s_header (char *data, size_t size, size_t n, void *arg)
{
    rp_test_reply_t *reply = (rp_test_reply_t *) arg;
    size_t bytes = size * n;
    if (reply->hlen + bytes < sizeof reply->headers) {
        memcpy (reply->headers + reply->hlen, data, bytes);
        reply->hlen += bytes;
        reply->headers [reply->hlen] = 0;
    }
    return bytes;
}

//  A slow client's body: pace_bytes at a time, pace_ms apart
static size_t
s_paced (char *buffer, size_t size, size_t n, void *arg)
{
    rp_test_reply_t *reply = (rp_test_reply_t *) arg;
    const rp_test_http_t *request = &reply->request;
    size_t left = request->len - reply->paced;
    if (left == 0)
        return 0;
    if (reply->paced > 0) {
        struct timespec pause = { request->pace_ms / 1000, (request->pace_ms % 1000) * 1000000L };
        nanosleep (&pause, NULL);
    }
    size_t piece = left < request->pace_bytes ? left : request->pace_bytes;
    if (piece > size * n)
        piece = size * n;
    memcpy (buffer, (const char *) request->body + reply->paced, piece);
    reply->paced += piece;
    if (request->sent)
        request->sent (reply->paced, request->arg);
    return piece;
}

CURL *
rp_test_http_prepare (const rp_test_http_t *request, rp_test_reply_t *reply)
{
    memset (reply, 0, sizeof *reply);
    reply->request = *request;
    const char *method = request->method ? request->method : "GET";
    CURL *curl = curl_easy_init ();
    cr_assert_not_null (curl);
    curl_easy_setopt (curl, CURLOPT_URL, request->url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, request->timeout_ms ? request->timeout_ms : 60000L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, reply);
    if (request->source) {
        char source [64];
        snprintf (source, sizeof source, "host!%s", request->source);
        curl_easy_setopt (curl, CURLOPT_INTERFACE, source);
    }
    //  No "Expect: 100-continue" pause before a body, unless the request
    //  asks for one: then its body waits for the server's go-ahead (or
    //  its early answer) as long as the request may take
    bool expect = false;
    for (int i = 0; request->headers && request->headers [i]; i++)
        expect |= strncasecmp (request->headers [i], "Expect:", 7) == 0;
    struct curl_slist *list = expect ? NULL : curl_slist_append (NULL, "Expect:");
    if (expect)
        curl_easy_setopt (curl, CURLOPT_EXPECT_100_TIMEOUT_MS, request->timeout_ms ? request->timeout_ms : 60000L);
    if (request->token) {
        char auth [2048];
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", request->token);
        list = curl_slist_append (list, auth);
    }
    for (int i = 0; request->headers && request->headers [i]; i++)
        list = curl_slist_append (list, request->headers [i]);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
    reply->list = list;
    if (request->upload) {
        reply->file = fopen (request->upload, "rb");
        cr_assert_not_null (reply->file, "cannot open %s", request->upload);
        struct stat st;
        cr_assert_eq (fstat (fileno (reply->file), &st), 0);
        curl_easy_setopt (curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt (curl, CURLOPT_READDATA, reply->file);
        curl_easy_setopt (curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) st.st_size);
    }
    else
    if (request->body && request->pace_bytes) {
        curl_easy_setopt (curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt (curl, CURLOPT_READFUNCTION, s_paced);
        curl_easy_setopt (curl, CURLOPT_READDATA, reply);
        curl_easy_setopt (curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) request->len);
    }
    else
    if (request->form)
        curl_easy_setopt (curl, CURLOPT_MIMEPOST, request->form);
    else
    if (request->body) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, request->body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) request->len);
    }
    //  The method last: CURLOPT_UPLOAD would make it a PUT
    if (strcmp (method, "HEAD") == 0)
        curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    else
    if (!request->upload || strcmp (method, "PUT") != 0)
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    return curl;
}

long
rp_test_http_finish (CURL *curl, CURLcode result, rp_test_reply_t *reply)
{
    reply->result = result;
    //  A status only for a whole answer: 0 after a timeout, a hang-up
    //  (enough, over max_body) or a refused connection
    if (result == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &reply->status);
    curl_easy_cleanup (curl);
    curl_slist_free_all (reply->list);
    reply->list = NULL;
    if (reply->file)
        fclose (reply->file);
    reply->file = NULL;
    return reply->status;
}

long
rp_test_http (const rp_test_http_t *request, rp_test_reply_t *reply)
{
    CURL *curl = rp_test_http_prepare (request, reply);
    return rp_test_http_finish (curl, curl_easy_perform (curl), reply);
}

long
rp_test_http_status (const char *url)
{
    rp_test_reply_t reply;
    long status = rp_test_http (&(rp_test_http_t) { .url = url, .timeout_ms = 5000 }, &reply);
    rp_test_reply_free (&reply);
    return status;
}

void
rp_test_reply_free (rp_test_reply_t *reply)
{
    free (reply->body);
    memset (reply, 0, sizeof *reply);
}

char *
rp_test_reply_take_body (rp_test_reply_t *reply)
{
    char *body = reply->body;
    reply->body = NULL;
    rp_test_reply_free (reply);
    return body;
}

json_t *
rp_test_reply_json (const rp_test_reply_t *reply)
{
    json_error_t jerr;
    return reply->body ? json_loads (reply->body, 0, &jerr) : NULL;
}

bool
rp_test_has_header (const rp_test_reply_t *reply, const char *needle)
{
    return strcasestr (reply->headers, needle) != NULL;
}

const char *
rp_test_header_value (const rp_test_reply_t *reply, const char *name)
{
    static char value [4096];
    return rp_test_header_copy (reply, name, value, sizeof value) ? value : NULL;
}

bool
rp_test_header_copy (const rp_test_reply_t *reply, const char *name, char *value, size_t size)
{
    char needle [128];
    snprintf (needle, sizeof needle, "\n%s:", name);
    const char *at = strcasestr (reply->headers, needle);
    if (!at)
        return false;
    at += strlen (needle);
    while (*at == ' ')
        at++;
    snprintf (value, size, "%.*s", (int) strcspn (at, "\r\n"), at);
    return true;
}
