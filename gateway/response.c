/*  gateway/response.c: how the gateway answers: JSON, text, and errors as
    problem+json (RFC 9457), each queued with the headers every answer
    carries (X-Request-Id, X-Amzn-Trace-Id: the request's trace,
    X-Content-Type-Options: nosniff).

    DESIGN
    Plain functions, called on the MHD thread that owns the request; they
    keep no state. Each queues exactly one response and records its status
    (and body length, when known) in the request for the access log and
    /metrics. A problem's "type" is derived from its status; a 401 says how
    to authenticate (WWW-Authenticate), and every 503 says when to come
    back (Retry-After: 2, unless the caller gave its own).
    An error found while a body streams in (upload.c, tus.c) is kept in an
    rp_gw_error_t, the first one winning, and answered once the body is
    read.
*/
#include "engine/drain.h"
#include "engine/log.h"
#include "gateway/gateway_private.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum MHD_Result
rp_gw_queue (struct MHD_Connection *c, rp_req_t *req, int status, struct MHD_Response *response)
{
    MHD_add_response_header (response, "X-Request-Id", req->id);
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    if (*req->trace.id) {
        char header [RP_TRACE_HEADER_MAX];
        snprintf (header, sizeof header, "Root=%s;Sampled=%d", req->trace.id, req->trace.sampled);
        MHD_add_response_header (response, "X-Amzn-Trace-Id", header);
    }
    //  Stopping (engine/drain.h): the client's next request opens a new
    //  connection, which the load balancer sends to another server
    if (rp_draining ())
        MHD_add_response_header (response, "Connection", "close");
    req->status = status;
    req->answered = true;
    enum MHD_Result rc = MHD_queue_response (c, (unsigned int) status, response);
    MHD_destroy_response (response);
    return rc;
}

enum MHD_Result
rp_gw_text (struct MHD_Connection *c, rp_req_t *req, int status, const char *type, char *text,
            size_t len, bool take)
{
    struct MHD_Response *response = take
        ? MHD_create_response_from_buffer (len, text, MHD_RESPMEM_MUST_FREE)
        : MHD_create_response_from_buffer (len, text, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Content-Type", type);
    MHD_add_response_header (response, "Cache-Control", "no-store");
    req->bytes_out = (int64_t) len;
    return rp_gw_queue (c, req, status, response);
}

enum MHD_Result
rp_gw_json (struct MHD_Connection *c, rp_req_t *req, int status, json_t *body)
{
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    if (!text)
        return MHD_NO;
    return rp_gw_text (c, req, status, "application/json", text, strlen (text), true);
}

static const char *
s_problem_type (int status)
{
    switch (status) {
        case 400: return "bad-request";
        case 401: return "unauthorized";
        case 404: return "not-found";
        case 405: return "method-not-allowed";
        case 409: return "conflict";
        case 411: return "length-required";
        case 413: return "payload-too-large";
        case 415: return "unsupported-media-type";
        case 410: return "gone";
        case 412: return "precondition-failed";
        case 416: return "range-not-satisfiable";
        case 423: return "locked";
        case 460: return "checksum-mismatch";
        case 429: return "too-many-requests";
        case 503: return "unavailable";
        default:  return status >= 500 ? "server-error" : "client-error";
    }
}

enum MHD_Result
rp_gw_problem (struct MHD_Connection *c, rp_req_t *req, int status, const char *title,
               const char *detail)
{
    return rp_gw_problem_h (c, req, status, title, detail, NULL, NULL);
}

enum MHD_Result
rp_gw_problem_h (struct MHD_Connection *c, rp_req_t *req, int status, const char *title,
                 const char *detail, const char *header, const char *value)
{
    const char *headers [] = { header, value, NULL };
    return rp_gw_problem_hv (c, req, status, title, detail, header ? headers : NULL);
}

enum MHD_Result
rp_gw_problem_hv (struct MHD_Connection *c, rp_req_t *req, int status, const char *title,
                  const char *detail, const char *const *headers)
{
    char type [96];
    snprintf (type, sizeof type, "https://rapidphoto.dev/problems/%s", s_problem_type (status));
    json_t *body = json_pack ("{s:s, s:s, s:i, s:s}", "type", type, "title", title,
                              "status", status, "detail", detail ? detail : title);
    char *text = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    if (!text)
        return MHD_NO;
    struct MHD_Response *response = MHD_create_response_from_buffer (strlen (text), text,
                                                                     MHD_RESPMEM_MUST_FREE);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Content-Type", "application/problem+json");
    MHD_add_response_header (response, "Cache-Control", "no-store");
    if (status == 401)
        MHD_add_response_header (response, "WWW-Authenticate", "Bearer realm=\"rapidphoto\"");
    bool retry_after = false;
    for (int i = 0; headers && headers [i] && headers [i + 1]; i += 2) {
        MHD_add_response_header (response, headers [i], headers [i + 1]);
        retry_after |= strcasecmp (headers [i], "Retry-After") == 0;
    }
    //  Every 503 says when to come back: nothing was acknowledged
    if (status == 503 && !retry_after)
        MHD_add_response_header (response, "Retry-After", "2");
    req->bytes_out = (int64_t) strlen (text);
    return rp_gw_queue (c, req, status, response);
}

json_t *
rp_gw_body_json (const rp_req_t *req)
{
    json_error_t jerr;
    size_t len = rp_buf_len (&req->body);
    return len ? json_loadb (rp_buf_data (&req->body), len, 0, &jerr) : NULL;
}

enum MHD_Result
rp_gw_db_problem (struct MHD_Connection *c, rp_req_t *req, int rc, const char *err)
{
    if (rc == RP_NOT_FOUND)
        return rp_gw_problem (c, req, 404, "Not found", "no such photo or batch for this user");
    if (rc == RP_REFUSED)
        return rp_gw_problem (c, req, 400, "Bad request", err);
    rp_warn ("gateway", "req=%s database: %s", req->id, err);
    return rp_gw_problem (c, req, 503, "Service unavailable",
                          "the photo library is unavailable; try again shortly");
}

bool
rp_gw_error_set (rp_gw_error_t *self, int status, const char *title, const char *detail)
{
    if (self->status)
        return false;
    self->status = status;
    snprintf (self->title, sizeof self->title, "%s", title);
    snprintf (self->detail, sizeof self->detail, "%s", detail);
    return true;
}
