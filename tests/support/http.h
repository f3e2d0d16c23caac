/*  tests/support/http.h: the one HTTP client of the test suites (libcurl).

    A request says its method, URL, headers and body (bytes, a file to
    upload, or a multipart form) and how long it may take; the reply holds
    the status, the response headers and the body, which is bounded: a body
    over the request's max_body ends the transfer, and the reply says so.

        rp_test_reply_t reply;
        long status = rp_test_http (&(rp_test_http_t) { .url = url }, &reply);
        ... reply.body, reply.len, rp_test_header_value (&reply, "ETag") ...
        rp_test_reply_free (&reply);
*/
#ifndef RP_TEST_HTTP_H
#define RP_TEST_HTTP_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct rp_test_reply_t rp_test_reply_t;

typedef struct {
    const char *method;             //  "GET" when NULL; HEAD asks for no body
    const char *url;                //  the whole URL
    const char *token;              //  sent as "Authorization: Bearer <token>", or NULL
    const char *const *headers;     //  "Name: value", NULL-terminated, or NULL
    const void *body;               //  the request's body (len bytes), or NULL
    size_t len;
    const char *upload;             //  a file whose bytes are the body, or NULL
    curl_mime *form;                //  a multipart body (caller frees), or NULL
    const char *source;             //  the local address to send from (a loopback one,
                                    //  127.x.y.z: a client at another address), or NULL
    long timeout_ms;                //  the whole request; 0 for 60 s
    size_t max_body;                //  the most body kept; 0 for 64 MiB
    //  Called after each piece of the body arrives: true hangs up (an
    //  event stream read until it has said enough). NULL reads to the end.
    bool (*enough) (const rp_test_reply_t *reply, void *arg);
    void *arg;
    //  A slow client: the body (body, len) goes pace_bytes at a time,
    //  pace_ms apart; sent (when set) is told how many bytes have gone
    //  after each piece, on the thread that runs the request
    size_t pace_bytes;
    long pace_ms;
    void (*sent) (size_t bytes, void *arg);
} rp_test_http_t;

struct rp_test_reply_t {
    long status;                    //  the HTTP status; 0 unless the transfer completed
    CURLcode result;                //  how the transfer ended (CURLE_OK, a timeout...)
    char *body;                     //  NUL-terminated, len bytes; NULL until a byte arrives
    size_t len;
    bool over;                      //  the body went over max_body and was cut
    char headers [8192];            //  the response's header lines, as sent
    size_t hlen;
    //  Owned while the request runs (rp_test_http_prepare .. _finish)
    rp_test_http_t request;
    struct curl_slist *list;
    FILE *file;
    size_t paced;                   //  body bytes sent so far (pace_bytes)
};

//  One request, performed; its status (reply->status). The reply is the
//  caller's to free with rp_test_reply_free, whatever the outcome.
long rp_test_http (const rp_test_http_t *request, rp_test_reply_t *reply);

//  The same in two halves, for requests run side by side on a curl_multi:
//  the handle, set up but not performed (the request's strings and form
//  must outlive it); then, once it has run, its status, with the handle
//  cleaned up.
CURL *rp_test_http_prepare (const rp_test_http_t *request, rp_test_reply_t *reply);
long rp_test_http_finish (CURL *curl, CURLcode result, rp_test_reply_t *reply);

//  GET url, the body dropped: its status, 0 when nothing answered (a probe
//  for a server that is starting).
long rp_test_http_status (const char *url);

void rp_test_reply_free (rp_test_reply_t *reply);
//  The body, the caller's now (NULL when none came); the rest of the reply freed.
char *rp_test_reply_take_body (rp_test_reply_t *reply);
//  The body as JSON (caller decrefs), or NULL.
json_t *rp_test_reply_json (const rp_test_reply_t *reply);
//  Whether the response headers contain needle (any case).
bool rp_test_has_header (const rp_test_reply_t *reply, const char *needle);
//  A response header's value (a static buffer: copy it before the next call), or NULL.
const char *rp_test_header_value (const rp_test_reply_t *reply, const char *name);
//  The same into value (any thread); false when the header is absent.
bool rp_test_header_copy (const rp_test_reply_t *reply, const char *name, char *value, size_t size);

#endif
