/*  gateway/routes.c: which request goes where, and libmicrohttpd's two
    callbacks, from a request's first header to its completion.

    DESIGN
    Runs on the MHD thread that owns each connection; keeps no state of
    its own. Each request gets an rp_req_t (gateway_private.h) on its first
    call, with its id (the client's X-Request-Id when it is short and
    plain, else a new one) and its route label for logs and /metrics: a
    known method (any other is "other", so no client can make a label)
    and a fixed name. A connection past http.max_connections_per_address
    (gateway.c counts them) gets 429 on that first call, and is closed.
    Uploads (POST /photos, /tus) are authenticated on that first call,
    before any body byte is read, and stream their bodies to upload.c and
    tus.c. Other bodies are small JSON, held whole up to RP_GW_BODY_MAX
    (413 beyond; a connection that goes on sending past four times that is
    cut), and routed once the body is in: the operations endpoints, login
    and everything outside /api/v1/ (the web app) need no token, the rest
    of /api/v1/ does (a token whose user's password changed since is
    refused: login.c); /metrics wants metrics.token when one is set.
    While the process drains (engine/drain.h), a request that would start
    an upload (POST /photos, tus creation, presign) is answered 503 with
    Retry-After on its first call, before its body; every other request
    is served, and each one, but for event streams, is counted in flight
    from its first call to its completion, which the stop waits for.
    Each request is traced (engine/trace.h): the ALB's X-Amzn-Trace-Id, or
    a trace of our own, is answered in X-Amzn-Trace-Id, set on the thread
    for each call (so every log line of the request carries trace=, and
    the database's, S3's and SQS's subsegments hang under the request's
    segment) and, when sampled, its segment is sent on completion (an
    upload or event stream sends an in_progress one at its start too).
    The completion callback writes the request's one access-log line,
    counts it for /metrics (499 when no answer was queued: the client went
    away first), and frees its state: an unfinished POST /photos leaves
    nothing behind, a tus PATCH cut off keeps what arrived (tus.c).
*/
#include "gateway/gateway_private.h"
#include <czmq.h>
#include "engine/alloc.h"
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/drain.h"
#include "engine/log.h"
#include "engine/trace.h"
#include "gateway/events.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
s_is_upload (const char *method, const char *url)
{
    return streq (method, "POST") && streq (url, "/api/v1/photos");
}

//  /api/v1/tus and /api/v1/tus/{id}: resumable uploads (tus.c)
static bool
s_is_tus (const char *url)
{
    return strncmp (url, "/api/v1/tus", 11) == 0 && (url [11] == 0 || url [11] == '/');
}

//  A request that makes a new upload: POST /photos, tus creation (at the
//  collection), a presigned upload
static bool
s_is_new_upload (const char *method, const char *url)
{
    return streq (method, "POST")
        && (streq (url, "/api/v1/photos") || streq (url, "/api/v1/tus") || streq (url, "/api/v1/tus/")
            || streq (url, "/api/v1/uploads/presign"));
}

//  The method as a label: one of the methods the API knows, else "other",
//  so no client can make a label of its own
static const char *
s_method_label (const char *method)
{
    static const char *const known [] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" };
    for (size_t i = 0; i < sizeof known / sizeof known [0]; i++)
        if (streq (method, known [i]))
            return known [i];
    return "other";
}

static void
s_set_route (rp_req_t *req, const char *method, const char *url)
{
    const char *label = "other";
    if (streq (url, "/healthz") || streq (url, "/readyz") || streq (url, "/metrics"))
        label = url + 1;
    else
    if (streq (url, "/api/v1/auth/login"))
        label = "login";
    else
    if (streq (url, "/api/v1/photos"))
        label = streq (method, "POST") ? "upload" : "list";
    else
    if (streq (url, "/api/v1/photos/check"))
        label = "check";
    else
    if (strncmp (url, "/api/v1/photos/", 15) == 0) {
        const char *slash = strchr (url + 15, '/');
        label = !slash ? "photo"
              : strncmp (slash, "/tags", 5) == 0 ? "tags"
              : streq (slash, "/similar") ? "similar"
              : "download";
    }
    else
    if (strncmp (url, "/api/v1/uploads/", 16) == 0)
        label = strstr (url, "/complete") ? "upload_complete" : "presign";
    else
    if (strncmp (url, "/api/v1/batches/", 16) == 0)
        label = "batch";
    else
    if (streq (url, "/api/v1/events"))
        label = "events";
    else
    if (s_is_tus (url))
        label = "tus";
    snprintf (req->route, sizeof req->route, "%s %s", s_method_label (method), label);
}

//  metrics.token, when set, as the Bearer token (compared in constant time)
static bool
s_metrics_allowed (struct MHD_Connection *c)
{
    const char *token = rp_gw->config.metrics_token;
    if (!*token)
        return true;
    const char *header = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Authorization");
    if (!header || strncasecmp (header, "Bearer ", 7) != 0)
        return false;
    const char *given = header + 7;
    while (*given == ' ')
        given++;
    size_t len = strlen (token);
    return strlen (given) == len && CRYPTO_memcmp (given, token, len) == 0;
}

//  A request whose token did not pass: 401 or 503, as rp_gw_authenticate said
static enum MHD_Result
s_unauthenticated (struct MHD_Connection *c, rp_req_t *req, int status, const char *why)
{
    return status == 503 ? rp_gw_problem (c, req, 503, "Service unavailable", why)
                         : rp_gw_problem (c, req, 401, "Unauthorized", why);
}

static enum MHD_Result
s_dispatch (struct MHD_Connection *c, rp_req_t *req, const char *method, const char *url)
{
    bool get = streq (method, "GET") || streq (method, "HEAD");
    if (streq (url, "/healthz") && get)
        return rp_gw_json (c, req, 200, json_pack ("{s:s}", "status", "ok"));
    if (streq (url, "/readyz") && get)
        return rp_gw_readyz (c, req);
    if (streq (url, "/metrics") && get) {
        if (!s_metrics_allowed (c))
            return rp_gw_problem (c, req, 401, "Unauthorized",
                                  "GET /metrics needs Authorization: Bearer <metrics.token>");
        char *text = NULL;
        size_t len = 0;
        rp_gw_metrics_text (&text, &len);
        return rp_gw_text (c, req, 200, "text/plain; version=0.0.4", text, len, true);
    }
    if (strncmp (url, "/api/v1/", 8) != 0)
        return rp_static_route (c, req, method, url);       //  the web app (static.c)
    if (rp_buf_error (&req->body) == EMSGSIZE)
        return rp_gw_problem (c, req, 413, "Payload too large", "JSON bodies are limited to 64 KiB");
    if (streq (url, "/api/v1/auth/login")) {
        if (!streq (method, "POST"))
            return rp_gw_problem (c, req, 405, "Method not allowed", "use POST");
        return rp_gw_login (c, req);
    }
    char why [256];
    int status = req->user_id [0] ? 0 : rp_gw_authenticate (c, req, why, sizeof why);
    if (status)
        return s_unauthenticated (c, req, status, why);
    if (streq (url, "/api/v1/photos/check")) {
        if (!streq (method, "POST"))
            return rp_gw_problem (c, req, 405, "Method not allowed", "use POST");
        return rp_photos_check (c, req);
    }
    if (strncmp (url, "/api/v1/photos", 14) == 0 && (url [14] == 0 || url [14] == '/'))
        return rp_photos_route (c, req, method, url + 14);
    if (strncmp (url, "/api/v1/batches/", 16) == 0)
        return rp_batches_route (c, req, method, url + 16);
    if (streq (url, "/api/v1/events"))
        return rp_events_route (c, req, method);
    if (strncmp (url, "/api/v1/uploads/", 16) == 0)
        return rp_uploads_route (c, req, method, url + 16);
    return rp_gw_problem (c, req, 404, "Not found", "no such resource");
}

static void
s_request_id (struct MHD_Connection *c, rp_req_t *req)
{
    const char *given = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "X-Request-Id");
    size_t n = 0;
    if (given)
        for (; given [n] && n < sizeof req->id - 1; n++)
            if (!isalnum ((unsigned char) given [n]) && !strchr ("-_.:", given [n]))
                break;
    if (given && n > 0 && given [n] == 0)
        snprintf (req->id, sizeof req->id, "%s", given);
    else {
        char id [RP_ID_MAX];
        rp_db_new_id (id);
        snprintf (req->id, sizeof req->id, "%.16s", id);
    }
}

//  The request's segment document, as it stands (end 0: in progress)
static json_t *
s_segment (const rp_req_t *req, double end)
{
    json_t *document = rp_trace_segment (&req->trace, req->segment, NULL, req->started_s, end);
    json_t *http = json_pack ("{s:{s:s, s:s}}", "request", "method", req->method, "url", req->url);
    if (end > 0) {
        json_object_set_new (http, "response", json_pack ("{s:i, s:I}", "status", req->status,
                                                          "content_length", (json_int_t) req->bytes_out));
        rp_trace_set_status (document, req->status);
    }
    json_object_set_new (document, "http", http);
    json_object_set_new (document, "annotations", json_pack ("{s:s, s:s}", "request_id", req->id,
                                                             "route", req->route));
    return document;
}

//  The ALB's trace, or a new one; this request's segment id
static void
s_trace_begin (struct MHD_Connection *c, rp_req_t *req, const char *method, const char *url)
{
    const char *header = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "X-Amzn-Trace-Id");
    if (rp_trace_parse (header, &req->trace))
        rp_trace_start (&req->trace);
    rp_trace_new_span (req->segment);
    req->started_s = rp_trace_now ();
    snprintf (req->method, sizeof req->method, "%s", s_method_label (method));
    snprintf (req->url, sizeof req->url, "%s", url);
    rp_trace_enter (&req->trace, req->segment);
}

static enum MHD_Result
s_handle (struct MHD_Connection *c, const char *url, const char *method,
          const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    rp_req_t *req = (rp_req_t *) *con_cls;
    if (req)
        rp_trace_enter (&req->trace, req->segment);
    if (!req) {
        //  First call: headers only
        req = (rp_req_t *) rp_alloc (sizeof (rp_req_t));
        req->started_ms = rp_clock_ms ();
        rp_buf_init (&req->body, RP_GW_BODY_MAX);
        *con_cls = req;
        s_request_id (c, req);
        s_set_route (req, method, url);
        s_trace_begin (c, req, method, url);
        if (req->trace.sampled && rp_trace_sending ()
        &&  (s_is_upload (method, url) || s_is_tus (url) || streq (url, "/api/v1/events"))) {
            //  Long: the daemon hears of it now, and again when it ends
            json_t *document = s_segment (req, 0);
            rp_trace_send (&req->trace, &document);
        }
        //  A connection past its address's limit gets this answer and no more
        int64_t limit = 0;
        if (rp_gw_connection_over (c, &limit)) {
            char detail [160];
            snprintf (detail, sizeof detail, "too many connections from your address "
                      "(http.max_connections_per_address = %lld); close some and try again", (long long) limit);
            const char *headers [] = { "Retry-After", "1", "Connection", "close", NULL };
            return rp_gw_problem_hv (c, req, 429, "Too many requests", detail, headers);
        }
        if (rp_draining () && s_is_new_upload (method, url))
            return rp_gw_problem (c, req, 503, "Service unavailable",
                                  "this server is stopping: send the upload again (to another server)");
        //  In flight until its completion, which a drain waits for; an
        //  event stream ends by itself when the drain begins
        if (!streq (url, "/api/v1/events")) {
            req->counted = true;
            rp_drain_count (RP_DRAIN_REQUESTS, 1);
        }
        if (s_is_upload (method, url)) {
            char why [256];
            int status = rp_gw_authenticate (c, req, why, sizeof why);
            if (status)
                return s_unauthenticated (c, req, status, why);
            return rp_upload_begin (c, req);
        }
        if (s_is_tus (url)) {
            char why [256];
            int status = streq (method, "OPTIONS") ? 0 : rp_gw_authenticate (c, req, why, sizeof why);
            if (status)
                return s_unauthenticated (c, req, status, why);
            return rp_tus_begin (c, req, method, url + 11);
        }
        //  Other bodies are small JSON: refuse a declared big one at once
        const char *length = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Content-Length");
        if (length && strtoll (length, NULL, 10) > RP_GW_BODY_MAX)
            return rp_gw_problem (c, req, 413, "Payload too large", "JSON bodies are limited to 64 KiB");
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        req->bytes_in += (int64_t) size;
        if (req->answered)
            return MHD_YES;         //  an early answer is queued; the rest is dropped
        if (req->upload)
            return rp_upload_data (c, req, upload_data, size);
        if (req->tus)
            return rp_tus_data (c, req, upload_data, size);
        if (rp_buf_append (&req->body, upload_data, size) == 0)
            return MHD_YES;
        //  Over the maximum: answered 413 once the body is read, unless
        //  the client goes on sending far past it
        if (rp_buf_error (&req->body) == EMSGSIZE && req->bytes_in <= 4 * RP_GW_BODY_MAX)
            return MHD_YES;
        return MHD_NO;
    }
    if (req->answered)
        return MHD_YES;
    if (req->upload)
        return rp_upload_finish (c, req);
    if (req->tus)
        return rp_tus_finish (c, req);
    return s_dispatch (c, req, method, url);
}

enum MHD_Result
rp_gw_request_handler (void *cls, struct MHD_Connection *c, const char *url, const char *method,
                       const char *version, const char *upload_data, size_t *upload_data_size,
                       void **con_cls)
{
    enum MHD_Result rc = s_handle (c, url, method, upload_data, upload_data_size, con_cls);
    rp_trace_leave ();          //  the thread serves other connections next
    return rc;
}

void
rp_gw_request_completed (void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    rp_req_t *req = (rp_req_t *) *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    int64_t duration = rp_clock_ms () - req->started_ms;
    if (!req->answered)
        req->status = 499;          //  the client went away (or the server gave up) first
    rp_gw_metrics_record (req, duration);
    rp_trace_enter (&req->trace, req->segment);
    //  A 5xx is the server's failure: at level ERROR, which the runbook's
    //  error query finds; any other answer is at INFO
    rp_log (req->status >= 500 ? RP_LOG_ERROR : RP_LOG_INFO, "gateway",
            "req=%s user=%s %s status=%d bytes_in=%lld bytes_out=%lld duration=%lld%s",
            req->id, req->user_id [0] ? req->user_id : "-", req->route, req->status,
            (long long) req->bytes_in, (long long) req->bytes_out, (long long) duration,
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
    rp_upload_destroy (&req->upload);
    rp_tus_end (&req->tus, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (req->trace.sampled && rp_trace_sending ()) {
        json_t *document = s_segment (req, rp_trace_now ());
        rp_trace_send (&req->trace, &document);
    }
    rp_trace_leave ();
    rp_buf_free (&req->body);
    if (req->counted)
        rp_drain_count (RP_DRAIN_REQUESTS, -1);
    free (req);
}
