/*  gateway/gateway_private.h: what the gateway's files share. Not for use
    outside gateway/. Which file holds what: gateway.c's DESIGN comment. */
#ifndef RP_GATEWAY_PRIVATE_H
#define RP_GATEWAY_PRIVATE_H

#include <czmq.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/buf.h"
#include "engine/config.h"
#include "engine/db/db.h"
#include "engine/trace.h"
#include "library/blobstore.h"
#include "library/filename.h"
#include "gateway/address.h"
#include "gateway/auth.h"

#define RP_GW_BODY_MAX (64 * 1024)      //  JSON request bodies
#define RP_GW_FILES_MAX 100             //  files in one multipart upload
#define RP_GW_FILENAME_MAX RP_FILENAME_MAX

//  The gateway's shared, read-only state after start (one per process).
typedef struct {
    rp_config_t config;
    char secret [RP_SECRET_MAX];
    rp_proxies_t proxies;               //  http.trusted_proxies, parsed
    rp_blobstore_t *blobs;              //  shared read-only; writers are per request
    bool in_process_engine;
    int64_t started_ms;
    //  The web app's Content-Security-Policy in S3 mode, naming the bucket's
    //  origin; empty until static.c has worked it out (under its lock)
    char csp [512];
    bool csp_warned;                    //  said once that it could not yet
} rp_gw_t;

extern rp_gw_t *rp_gw;

typedef struct _rp_upload_t rp_upload_t;
typedef struct _rp_tus_req_t rp_tus_req_t;

//  One request, from its first header to its completion callback.
typedef struct {
    char id [40];                       //  request id (X-Request-Id or made)
    char route [48];                    //  route label, for metrics and logs
    char user_id [RP_ID_MAX];           //  once authenticated
    int64_t started_ms;
    int status;                         //  the answer's status, once queued
    int64_t bytes_in;                   //  body bytes received
    int64_t bytes_out;                  //  body bytes answered (known length)
    bool answered;                      //  a response was queued
    bool counted;                       //  in flight for a drain (engine/drain.h)
    bool acknowledged;                  //  the answer acknowledges an upload (AckLatency)
    //  A JSON body, at most RP_GW_BODY_MAX (over it: rp_buf_error EMSGSIZE)
    rp_buf_t body;
    //  Uploads
    rp_upload_t *upload;
    rp_tus_req_t *tus;                  //  resumable upload requests
    //  X-Ray (engine/trace.h): the ALB's trace or one of our own, and
    //  this request's segment
    rp_trace_t trace;
    char segment [RP_TRACE_SPAN_MAX];
    double started_s;                   //  epoch seconds, for the segment
    char method [8];                    //  for the segment: a known method or "other"
    char url [128];                     //  the path, cut to fit
} rp_req_t;

//  Per MHD thread (gateway.c)
//  This thread's own database connection, opened on first use and closed
//  when the thread ends. NULL (err) when the database is unreachable.
rp_db_t *rp_gw_db (char *err, size_t errlen);
//  Close this thread's connection (found broken): the next rp_gw_db opens
//  a new one.
void rp_gw_db_drop (void);
//  Tell the pipeline there is work (never blocks).
void rp_gw_wake_pipeline (void);
//  For the sweeps of expired uploads (tus.c, presign.c), from the actor's
//  thread: true when one is due (or now), and *next_ms set to the next,
//  half uploads.tus_expire_s on (at least 500 ms, at most most_ms).
bool rp_gw_sweep_due (int64_t *next_ms, int64_t most_ms, bool now);
//  Whether this connection came past http.max_connections_per_address
//  (*limit receives it): its requests are answered 429.
bool rp_gw_connection_over (struct MHD_Connection *c, int64_t *limit);

//  Routing (routes.c): libmicrohttpd's request handler and completion
//  callback, which the actor hands to MHD_start_daemon.
enum MHD_Result rp_gw_request_handler (void *cls, struct MHD_Connection *c, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **con_cls);
void rp_gw_request_completed (void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe);

//  Responses (response.c): each queues one response and records its status.
enum MHD_Result rp_gw_json (struct MHD_Connection *c, rp_req_t *req, int status, json_t *body);
//  text/len with its Content-Type; take: MHD frees text, else it is copied.
enum MHD_Result rp_gw_text (struct MHD_Connection *c, rp_req_t *req, int status, const char *type,
                            char *text, size_t len, bool take);
enum MHD_Result rp_gw_problem (struct MHD_Connection *c, rp_req_t *req, int status,
                               const char *title, const char *detail);
//  The same with one extra response header (Retry-After, Content-Range).
enum MHD_Result rp_gw_problem_h (struct MHD_Connection *c, rp_req_t *req, int status,
                                 const char *title, const char *detail,
                                 const char *header, const char *value);
//  The same with any number of headers: name, value, ... NULL.
enum MHD_Result rp_gw_problem_hv (struct MHD_Connection *c, rp_req_t *req, int status,
                                  const char *title, const char *detail, const char *const *headers);
enum MHD_Result rp_gw_queue (struct MHD_Connection *c, rp_req_t *req, int status,
                             struct MHD_Response *response);
//  The request's JSON body, parsed (caller owns); NULL when there is none
//  or it is not JSON.
json_t *rp_gw_body_json (const rp_req_t *req);
//  A database call's failure as the right problem, by its status: 404 for
//  RP_NOT_FOUND, 400 with err for RP_REFUSED, 503 otherwise.
enum MHD_Result rp_gw_db_problem (struct MHD_Connection *c, rp_req_t *req, int rc,
                                  const char *err);
//  An error found while a body streams in (upload.c, tus.c), answered as a
//  problem once the body is read. status is 0 while all is well.
typedef struct {
    int status;
    char title [48];
    char detail [512];                  //  room for a file name and why
} rp_gw_error_t;
//  Keep this error unless one is kept already (the first one wins). True
//  when this one was kept.
bool rp_gw_error_set (rp_gw_error_t *self, int status, const char *title, const char *detail);

//  Login and the Bearer check (login.c)
//  POST /api/v1/auth/login.
enum MHD_Result rp_gw_login (struct MHD_Connection *c, rp_req_t *req);
//  Check the request's Authorization: Bearer token (and that its user's
//  password has not changed since it was issued) and set req->user_id.
//  0; else the status to answer (401, or 503 when the database cannot
//  tell) with why, a reason the client may see.
int rp_gw_authenticate (struct MHD_Connection *c, rp_req_t *req, char *why, size_t whylen);
//  The client of a request: its address (behind a trusted proxy, the one
//  X-Forwarded-For names) and the key its limits count under.
void rp_gw_client (struct MHD_Connection *c, char key [RP_ADDRESS_KEY_MAX]);

//  Uploads (upload.c)
//  First call for POST /photos (headers only): checks that can answer
//  before the body; returns MHD_YES having queued a response, or having set
//  up req->upload to take the body.
enum MHD_Result rp_upload_begin (struct MHD_Connection *c, rp_req_t *req);
//  A chunk of the body.
enum MHD_Result rp_upload_data (struct MHD_Connection *c, rp_req_t *req, const char *data,
                                size_t size);
//  The body is in: commit and answer.
enum MHD_Result rp_upload_finish (struct MHD_Connection *c, rp_req_t *req);
//  Throw away what an unfinished upload wrote. Safe on NULL.
void rp_upload_destroy (rp_upload_t **self_p);

//  Resumable uploads, tus 1.0 (tus.c). `rest` is the path after
//  /api/v1/tus. Begin is the first call (headers; the user is already
//  authenticated, except for OPTIONS): it answers, or sets up req->tus.
enum MHD_Result rp_tus_begin (struct MHD_Connection *c, rp_req_t *req, const char *method,
                              const char *rest);
enum MHD_Result rp_tus_data (struct MHD_Connection *c, rp_req_t *req, const char *data, size_t size);
enum MHD_Result rp_tus_finish (struct MHD_Connection *c, rp_req_t *req);
//  The request ended (completed: answered in full). A PATCH cut off keeps
//  the bytes that arrived. Safe on NULL.
void rp_tus_end (rp_tus_req_t **self_p, bool completed);
//  uploads.max_open_per_user: when the user has that many unfinished
//  uploads (resumable or presigned), answers 429 naming it (or 503 when the
//  database cannot tell; with tus' headers when tus) and sets *answered.
enum MHD_Result rp_tus_quota (struct MHD_Connection *c, rp_req_t *req, rp_db_t *db, bool tus, bool *answered);
//  Expired uploads fail, finished ones are forgotten, orphan parts go.
//  Runs at most every 30 s unless now. From the gateway's actor thread.
void rp_tus_sweep (rp_db_t *db, bool now);

//  Photos, tags, batches, downloads (photos.c). `rest` is the path after
//  /api/v1/photos or /api/v1/batches.
enum MHD_Result rp_photos_route (struct MHD_Connection *c, rp_req_t *req, const char *method,
                                 const char *rest);
enum MHD_Result rp_batches_route (struct MHD_Connection *c, rp_req_t *req, const char *method,
                                  const char *rest);
//  POST /api/v1/photos/check: which of the given SHA-256s the user has.
enum MHD_Result rp_photos_check (struct MHD_Connection *c, rp_req_t *req);
//  Presigned uploads (presign.c): `rest` is the path after /api/v1/uploads/.
enum MHD_Result rp_uploads_route (struct MHD_Connection *c, rp_req_t *req, const char *method,
                                  const char *rest);
//  In S3 mode, remove uploads/<id> objects whose upload is gone (expired,
//  failed, deleted) or done. Runs at most every so often unless now. From
//  the gateway's actor thread.
void rp_presign_sweep (rp_db_t *db, bool now);
//  Add "urls" to a photo and drop internal fields.
void rp_gw_photo_present (json_t *photo);

//  Readiness (readyz.c): the prober actor, which keeps the state fresh
//  (zactor_new (rp_gw_prober_actor, &args); $TERM ends it), GET /readyz
//  from that state, and what /metrics takes of it.
typedef struct {
    rp_config_t config;
    rp_blobstore_t *blobs;              //  the gateway's; outlives the prober
    bool in_process_engine;
} rp_gw_prober_args_t;
void rp_gw_prober_actor (zsock_t *pipe, void *args);
enum MHD_Result rp_gw_readyz (struct MHD_Connection *c, rp_req_t *req);
//  The last photo counts by status and broker STATUS (each NULL when not
//  known; caller decrefs), and whether database, storage and broker are ok.
void rp_gw_probe_state (json_t **counts, json_t **broker, bool ready [3]);

//  Metrics (metrics.c)
//  Count one finished request (its route, status and bytes in req).
void rp_gw_metrics_record (const rp_req_t *req, int64_t duration_ms);
//  The /metrics page into *text (caller frees), *len its length.
void rp_gw_metrics_text (char **text, size_t *len);

//  The web app (static.c): every path outside /api/v1/ and the operations
//  endpoints. Files come from the binary (cmake/embed_web.cmake), never from
//  the disk, so no URL can name anything else.
typedef struct {
    const char *path;                   //  URL path, e.g. /index.html
    const unsigned char *data;
    size_t size;
    const char *etag;                   //  quoted digest of the bytes
    bool immutable;                     //  fingerprinted: cache for a year
} rp_web_file_t;
extern const rp_web_file_t rp_web_files [];     //  ends with a NULL path
extern const size_t rp_web_files_count;
enum MHD_Result rp_static_route (struct MHD_Connection *c, rp_req_t *req, const char *method,
                                 const char *url);

#endif
