/*  gateway/gateway.c: the HTTP gateway actor.

    DESIGN
    Threads: the actor's own zactor thread only starts and stops the HTTP
    server; requests run on libmicrohttpd's epoll thread pool
    (MHD_USE_EPOLL_INTERNAL_THREAD, RP_GW_THREADS threads), each connection
    pinned to one thread. Per-connection memory is bounded
    (MHD_OPTION_CONNECTION_MEMORY_LIMIT: headers beyond it get 431), as are
    connections and idle time.
    Owns: the blob store handle (plain configuration, shared read-only;
    each upload's writer belongs to its request's thread), and per MHD
    thread, lazily, one database connection and one PUSH socket to the
    pipeline's wake endpoint (RP_PIPELINE_WAKE). Both are thread-local and
    closed by a pthread key destructor when MHD joins its threads at stop:
    no connection is ever shared between threads.
    Messages: takes $TERM and PORT on its pipe; sends "WAKE" frames to the
    pipeline (never blocking: a full or absent pipeline just ticks) after
    every committed upload. It never talks to the broker: the pipeline
    claims committed photos from the database, so an upload acknowledged
    here survives any crash after the 202.
    Requests: routing, auth, JSON bodies and operations endpoints live here;
    uploads in upload.c (streamed into blob writers as the body arrives),
    photos, tags, batches and downloads in photos.c. One access-log line per
    request comes from the completion callback, which also frees the
    request's state (aborting an unfinished upload's temporary file).
*/
#include "gateway/gateway.h"
#include "engine/alloc.h"
#include "engine/broker.h"
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/health.h"
#include "engine/log.h"
#include "library/pipeline.h"
#include "gateway/events.h"
#include "gateway/gateway_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RP_GW_THREADS 8
#define RP_GW_CONNECTIONS 2048
#define RP_GW_TIMEOUT_S 60
#define RP_GW_CONN_MEMORY (64 * 1024)

rp_gw_t *rp_gw = NULL;

//  ---------------------------------------------------------------------------
//  Per-thread resources

typedef struct {
    rp_db_t *db;
    zsock_t *wake;
} s_thread_t;

static pthread_key_t s_thread_key;
static pthread_once_t s_thread_once = PTHREAD_ONCE_INIT;

static void
s_thread_free (void *arg)
{
    s_thread_t *thread = (s_thread_t *) arg;
    rp_db_close (&thread->db);
    zsock_destroy (&thread->wake);
    free (thread);
}

static void
s_thread_key_make (void)
{
    pthread_key_create (&s_thread_key, s_thread_free);
}

static s_thread_t *
s_thread (void)
{
    pthread_once (&s_thread_once, s_thread_key_make);
    s_thread_t *thread = (s_thread_t *) pthread_getspecific (s_thread_key);
    if (!thread) {
        thread = (s_thread_t *) rp_alloc (sizeof (s_thread_t));
        pthread_setspecific (s_thread_key, thread);
    }
    return thread;
}

rp_db_t *
rp_gw_db (char *err, size_t errlen)
{
    s_thread_t *thread = s_thread ();
    if (!thread->db)
        thread->db = rp_db_open (rp_gw->config.db_url, err, errlen);
    return thread->db;
}

void
rp_gw_wake_pipeline (void)
{
    s_thread_t *thread = s_thread ();
    if (!thread->wake) {
        thread->wake = zsock_new (ZMQ_PUSH);
        if (!thread->wake)
            return;
        zsock_set_sndhwm (thread->wake, 16);
        zsock_set_sndtimeo (thread->wake, 0);
        zsock_connect (thread->wake, "%s", RP_PIPELINE_WAKE);
    }
    zstr_send (thread->wake, "WAKE");     //  full or absent: the tick will do
}

//  ---------------------------------------------------------------------------
//  Metrics: a small fixed table under one mutex

#define S_ROUTES_MAX 64
static const double s_buckets [] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define S_BUCKETS (sizeof s_buckets / sizeof s_buckets [0])

typedef struct {
    char route [48];
    int status;
    uint64_t count;
} s_counter_t;

static struct {
    pthread_mutex_t lock;
    s_counter_t counters [S_ROUTES_MAX];
    int ncounters;
    uint64_t buckets [S_BUCKETS];
    uint64_t observations;
    double duration_sum;
    uint64_t bytes_in;
    uint64_t uploads;
    double upload_seconds;          //  accepted uploads (202), first header to answer
    uint64_t upload_count;
} s_metrics = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void
s_metrics_record (const rp_req_t *req, int64_t duration_ms)
{
    pthread_mutex_lock (&s_metrics.lock);
    s_counter_t *counter = NULL;
    for (int i = 0; i < s_metrics.ncounters && !counter; i++)
        if (s_metrics.counters [i].status == req->status && streq (s_metrics.counters [i].route, req->route))
            counter = &s_metrics.counters [i];
    if (!counter && s_metrics.ncounters < S_ROUTES_MAX) {
        counter = &s_metrics.counters [s_metrics.ncounters++];
        snprintf (counter->route, sizeof counter->route, "%s", req->route);
        counter->status = req->status;
    }
    if (counter)
        counter->count++;
    double seconds = (double) duration_ms / 1000.0;
    for (size_t i = 0; i < S_BUCKETS; i++)
        if (seconds <= s_buckets [i])
            s_metrics.buckets [i]++;
    s_metrics.observations++;
    s_metrics.duration_sum += seconds;
    s_metrics.bytes_in += (uint64_t) req->bytes_in;
    if (req->status == 202 && streq (req->route, "POST upload")) {
        s_metrics.upload_seconds += seconds;
        s_metrics.upload_count++;
    }
    pthread_mutex_unlock (&s_metrics.lock);
}

//  Per-stage time: the upload (receive, SHA-256 on the way, fsync, the
//  row's commit: one span, the acknowledgement) and, when this process runs
//  the pipeline, its stages (see pipeline.h)
static void
s_metrics_stages (FILE *out, double upload_seconds, uint64_t upload_count)
{
    rp_stage_total_t stages [32];
    int n = rp_pipeline_stage_totals (stages, 32);
    fprintf (out, "# HELP rapidphoto_stage_seconds_total Time spent per stage (upload: receive, hash, "
                  "store and row until the 202; the others per photo completed in this process).\n"
                  "# TYPE rapidphoto_stage_seconds_total counter\n"
                  "rapidphoto_stage_seconds_total{stage=\"upload\"} %.6f\n", upload_seconds);
    for (int i = 0; i < n; i++)
        fprintf (out, "rapidphoto_stage_seconds_total{stage=\"%s\"} %.6f\n", stages [i].stage, stages [i].seconds);
    fprintf (out, "# HELP rapidphoto_stage_observations_total Uploads or photos counted in each stage's time.\n"
                  "# TYPE rapidphoto_stage_observations_total counter\n"
                  "rapidphoto_stage_observations_total{stage=\"upload\"} %llu\n",
             (unsigned long long) upload_count);
    for (int i = 0; i < n; i++)
        fprintf (out, "rapidphoto_stage_observations_total{stage=\"%s\"} %llu\n", stages [i].stage,
                 (unsigned long long) stages [i].count);
}

void
rp_gw_metrics_text (char **text, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&buf, &size);
    pthread_mutex_lock (&s_metrics.lock);
    fprintf (out, "# HELP rapidphoto_http_requests_total HTTP requests by route and status.\n"
                  "# TYPE rapidphoto_http_requests_total counter\n");
    for (int i = 0; i < s_metrics.ncounters; i++)
        fprintf (out, "rapidphoto_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                 s_metrics.counters [i].route, s_metrics.counters [i].status,
                 (unsigned long long) s_metrics.counters [i].count);
    fprintf (out, "# HELP rapidphoto_http_request_duration_seconds Time from first header to last byte queued.\n"
                  "# TYPE rapidphoto_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < S_BUCKETS; i++)
        fprintf (out, "rapidphoto_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                 s_buckets [i], (unsigned long long) s_metrics.buckets [i]);
    fprintf (out, "rapidphoto_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                  "rapidphoto_http_request_duration_seconds_sum %.6f\n"
                  "rapidphoto_http_request_duration_seconds_count %llu\n",
             (unsigned long long) s_metrics.observations, s_metrics.duration_sum,
             (unsigned long long) s_metrics.observations);
    fprintf (out, "# HELP rapidphoto_http_received_bytes_total Request body bytes received.\n"
                  "# TYPE rapidphoto_http_received_bytes_total counter\n"
                  "rapidphoto_http_received_bytes_total %llu\n",
             (unsigned long long) s_metrics.bytes_in);
    double upload_seconds = s_metrics.upload_seconds;
    uint64_t upload_count = s_metrics.upload_count;
    pthread_mutex_unlock (&s_metrics.lock);
    s_metrics_stages (out, upload_seconds, upload_count);
    char err [256];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    json_t *counts = NULL;
    if (db && rp_db_status_counts (db, &counts, err, sizeof err) == 0) {
        fprintf (out, "# HELP rapidphoto_photos Photos by status, all users.\n"
                      "# TYPE rapidphoto_photos gauge\n");
        const char *status;
        json_t *value;
        json_object_foreach (counts, status, value)
            fprintf (out, "rapidphoto_photos{status=\"%s\"} %lld\n", status,
                     (long long) json_integer_value (value));
        json_decref (counts);
    }
    //  Queues and workers per pool, from the broker itself
    json_t *broker = NULL;
    const char *endpoint = rp_gw->in_process_engine ? RP_INPROC_FRONTEND : rp_gw->config.broker_frontend;
    if (rp_broker_query_status (endpoint, 500, &broker, err, sizeof err) == 0) {
        static const struct { const char *key, *name, *type, *help; } series [] = {
            { "queued", "rapidphoto_jobs_queued", "gauge", "Jobs waiting for a worker, by pool." },
            { "running", "rapidphoto_jobs_in_flight", "gauge", "Jobs running on a worker, by pool." },
            { "workers", "rapidphoto_workers", "gauge", "Workers registered with the broker, by pool." },
            { "done", "rapidphoto_jobs_done_total", "counter", "Jobs finished, by pool." },
            { "failed", "rapidphoto_jobs_failed_total", "counter", "Jobs failed or lost, by pool." },
            { "duration_ms_sum", "rapidphoto_stage_duration_seconds_sum", "counter",
              "Time workers spent on jobs, by pool (stage); divide by jobs done + failed." },
        };
        json_t *pools = json_object_get (broker, "pools");
        for (size_t k = 0; k < sizeof series / sizeof series [0]; k++) {
            fprintf (out, "# HELP %s %s\n# TYPE %s %s\n", series [k].name, series [k].help,
                     series [k].name, series [k].type);
            const char *pool;
            json_t *entry;
            json_object_foreach (pools, pool, entry) {
                json_int_t value = json_integer_value (json_object_get (entry, series [k].key));
                if (streq (series [k].key, "duration_ms_sum"))
                    fprintf (out, "%s{pool=\"%s\"} %.3f\n", series [k].name, pool, (double) value / 1000.0);
                else
                    fprintf (out, "%s{pool=\"%s\"} %lld\n", series [k].name, pool, (long long) value);
            }
        }
        json_decref (broker);
    }
    fprintf (out, "# HELP rapidphoto_event_streams Open live status streams.\n"
                  "# TYPE rapidphoto_event_streams gauge\nrapidphoto_event_streams %d\n", rp_events_streams ());
    fprintf (out, "# HELP rapidphoto_up 1 while the gateway serves.\n# TYPE rapidphoto_up gauge\n"
                  "rapidphoto_up 1\n");
    fclose (out);
    *text = buf;
    *len = size;
}

//  ---------------------------------------------------------------------------
//  Responses

enum MHD_Result
rp_gw_queue (struct MHD_Connection *c, rp_req_t *req, int status, struct MHD_Response *response)
{
    MHD_add_response_header (response, "X-Request-Id", req->id);
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    req->status = status;
    req->answered = true;
    enum MHD_Result rc = MHD_queue_response (c, (unsigned int) status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_text (struct MHD_Connection *c, rp_req_t *req, int status, const char *type, char *text,
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
    return s_text (c, req, status, "application/json", text, strlen (text), true);
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

enum MHD_Result
rp_gw_db_problem (struct MHD_Connection *c, rp_req_t *req, int rc, const char *err, bool bad_input)
{
    if (rc == RP_DB_NOT_FOUND)
        return rp_gw_problem (c, req, 404, "Not found", "no such photo or batch for this user");
    if (bad_input)
        return rp_gw_problem (c, req, 400, "Bad request", err);
    rp_warn ("gateway", "req=%s database: %s", req->id, err);
    return rp_gw_problem (c, req, 503, "Service unavailable",
                          "the photo library is unavailable; try again shortly");
}

//  ---------------------------------------------------------------------------
//  Auth

static bool
s_authenticate (struct MHD_Connection *c, rp_req_t *req, char *why, size_t whylen)
{
    const char *header = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Authorization");
    if (!header || strncasecmp (header, "Bearer ", 7) != 0) {
        snprintf (why, whylen, "an Authorization: Bearer <token> header is required (POST /api/v1/auth/login)");
        return false;
    }
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    return rp_auth_token_verify (rp_gw->secret, token, req->user_id, why, whylen) == 0;
}

static void
s_client_address (struct MHD_Connection *c, char *out, size_t outlen)
{
    snprintf (out, outlen, "unknown");
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop (AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, out, (socklen_t) outlen);
    else
    if (sa->sa_family == AF_INET6)
        inet_ntop (AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, out, (socklen_t) outlen);
}

static char s_dummy_hash [RP_PASSWORD_HASH_MAX];
static pthread_once_t s_dummy_once = PTHREAD_ONCE_INIT;

static void
s_dummy_make (void)
{
    rp_password_hash ("no such user: timing decoy", s_dummy_hash, sizeof s_dummy_hash);
}

static enum MHD_Result
s_login (struct MHD_Connection *c, rp_req_t *req)
{
    json_error_t jerr;
    json_t *body = req->body ? json_loadb (req->body, req->body_len, 0, &jerr) : NULL;
    const char *name = json_string_value (json_object_get (body, "username"));
    const char *password = json_string_value (json_object_get (body, "password"));
    if (!name || !password || !*name || strlen (name) > 64 || strlen (password) > 1024) {
        json_decref (body);
        return rp_gw_problem (c, req, 400, "Bad request",
                              "send {\"username\": \"...\", \"password\": \"...\"} as JSON");
    }
    //  Copies: the body goes before the last use of the name
    char user_name [65], secret [1025];
    snprintf (user_name, sizeof user_name, "%s", name);
    snprintf (secret, sizeof secret, "%s", password);
    name = user_name;
    password = secret;
    json_decref (body);
    char address [64], user_key [128], address_key [96];
    s_client_address (c, address, sizeof address);
    snprintf (user_key, sizeof user_key, "user:%s", name);
    snprintf (address_key, sizeof address_key, "addr:%s", address);
    int wait_user = rp_auth_throttled (user_key), wait_addr = rp_auth_throttled (address_key);
    int wait = wait_user > wait_addr ? wait_user : wait_addr;
    if (wait > 0) {
        char detail [160], retry [16];
        snprintf (detail, sizeof detail, "too many failed logins; try again in %d seconds", wait);
        snprintf (retry, sizeof retry, "%d", wait);
        return rp_gw_problem_h (c, req, 429, "Too many requests", detail, "Retry-After", retry);
    }
    char err [256];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db)
        return rp_gw_db_problem (c, req, -1, err, false);
    char id [RP_ID_MAX] = "", hash [RP_PASSWORD_HASH_MAX] = "";
    int rc = rp_db_user_find (db, name, id, hash, sizeof hash, err, sizeof err);
    if (rc == -1)
        return rp_gw_db_problem (c, req, -1, err, false);
    //  An unknown name costs the same scrypt as a known one: no user enumeration by timing
    pthread_once (&s_dummy_once, s_dummy_make);
    bool ok = rp_password_verify (password, rc == 0 ? hash : s_dummy_hash) && rc == 0;
    explicit_bzero (secret, sizeof secret);
    if (!ok) {
        rp_auth_failed (user_key);
        rp_auth_failed (address_key);
        rp_info ("gateway", "req=%s failed login for user %.64s from %s", req->id, name, address);
        return rp_gw_problem (c, req, 401, "Unauthorized", "wrong user name or password");
    }
    rp_auth_succeeded (user_key);
    snprintf (req->user_id, sizeof req->user_id, "%s", id);
    int64_t expires_at = 0;
    char *token = rp_auth_token_issue (rp_gw->secret, id, rp_gw->config.auth_token_ttl, &expires_at);
    if (!token)
        return rp_gw_problem (c, req, 500, "Internal error", "cannot make a token");
    char when [32];
    time_t t = (time_t) expires_at;
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *answer = json_pack ("{s:s, s:s, s:s}", "token", token, "expires_at", when, "user_id", id);
    free (token);
    return rp_gw_json (c, req, 200, answer);
}

//  ---------------------------------------------------------------------------
//  POST /photos/check

static enum MHD_Result
s_check (struct MHD_Connection *c, rp_req_t *req)
{
    json_error_t jerr;
    json_t *body = req->body ? json_loadb (req->body, req->body_len, 0, &jerr) : NULL;
    json_t *list = json_object_get (body, "sha256");
    if (!json_is_array (list) || json_array_size (list) > 1000) {
        json_decref (body);
        return rp_gw_problem (c, req, 400, "Bad request",
                              "send {\"sha256\": [\"<64 hex>\", ...]} (at most 1000)");
    }
    char err [256];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db) {
        json_decref (body);
        return rp_gw_db_problem (c, req, -1, err, false);
    }
    json_t *existing = json_object ();
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        const char *sha = json_string_value (item);
        char id [RP_ID_MAX];
        if (!sha || strlen (sha) != 64) {
            json_decref (body);
            json_decref (existing);
            return rp_gw_problem (c, req, 400, "Bad request", "each sha256 is 64 hex characters");
        }
        char lower [65];
        for (int k = 0; k < 64; k++)
            lower [k] = (char) tolower ((unsigned char) sha [k]);
        lower [64] = 0;
        int rc = rp_db_photo_find_sha (db, req->user_id, lower, id, err, sizeof err);
        if (rc == 0)
            json_object_set_new (existing, lower, json_string (id));
        else
        if (rc != RP_DB_NOT_FOUND) {
            json_decref (body);
            json_decref (existing);
            return rp_gw_db_problem (c, req, rc, err, strstr (err, "sha256") != NULL);
        }
    }
    json_decref (body);
    return rp_gw_json (c, req, 200, json_pack ("{s:o}", "existing", existing));
}

//  ---------------------------------------------------------------------------
//  Operations

static bool
s_storage_writable (char *why, size_t whylen)
{
    char path [RP_STR_MAX + 64];
    snprintf (path, sizeof path, "%s/objects/tmp/.ready.%lu", rp_gw->config.data_dir,
              (unsigned long) pthread_self ());
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        snprintf (why, whylen, "storage is not writable: %s", strerror (errno));
        return false;
    }
    bool ok = write (fd, "ok", 2) == 2;
    close (fd);
    unlink (path);
    if (!ok)
        snprintf (why, whylen, "storage is not writable: %s", strerror (errno));
    return ok;
}

//  A TCP connect to the broker's frontend, when it is on tcp.
static bool
s_broker_reachable (char *why, size_t whylen)
{
    const char *endpoint = rp_gw->config.broker_frontend;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return true;
    char host [256];
    snprintf (host, sizeof host, "%s", endpoint + 6);
    char *colon = strrchr (host, ':');
    if (!colon) {
        snprintf (why, whylen, "broker endpoint has no port");
        return false;
    }
    *colon = 0;
    const char *port = colon + 1;
    if (streq (host, "*") || streq (host, "0.0.0.0"))
        snprintf (host, sizeof host, "127.0.0.1");
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    if (getaddrinfo (host, port, &hints, &ai) || !ai) {
        snprintf (why, whylen, "broker host does not resolve");
        return false;
    }
    int fd = socket (ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    bool ok = false;
    if (fd >= 0) {
        int rc = connect (fd, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0)
            ok = true;
        else
        if (errno == EINPROGRESS) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            int soerr = 0;
            socklen_t len = sizeof soerr;
            ok = poll (&pfd, 1, 1000) == 1
              && getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0;
        }
        close (fd);
    }
    freeaddrinfo (ai);
    if (!ok)
        snprintf (why, whylen, "broker is not reachable");
    return ok;
}

typedef struct {
    json_t *checks;
    bool ready;
} s_health_t;

static void
s_health_check (const char *name, bool ok, const char *why, void *arg)
{
    s_health_t *health = (s_health_t *) arg;
    json_object_set_new (health->checks, name, json_string (ok ? "ok" : why));
    health->ready &= ok;
}

static enum MHD_Result
s_readyz (struct MHD_Connection *c, rp_req_t *req)
{
    char err [256] = "";
    json_t *checks = json_object ();
    bool ready = true;
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (db && rp_db_ping (db, err, sizeof err) == 0)
        json_object_set_new (checks, "database", json_string ("ok"));
    else {
        //  A broken connection is dropped: the next request opens a new one
        if (db) {
            s_thread_t *thread = s_thread ();
            rp_db_close (&thread->db);
        }
        json_object_set_new (checks, "database", json_string ("unavailable"));
        ready = false;
    }
    char why [512];
    rp_s3_mirror_t *s3 = rp_blobstore_s3 (rp_gw->blobs);
    if (s3 && rp_s3_mirror_ping (s3, err, sizeof err)) {
        snprintf (why, sizeof why, "S3 bucket %s cannot be reached: %s", rp_s3_mirror_bucket (s3), err);
        json_object_set_new (checks, "storage", json_string (why));
        ready = false;
    }
    else
    if (s_storage_writable (why, sizeof why))
        json_object_set_new (checks, "storage", json_string ("ok"));
    else {
        json_object_set_new (checks, "storage", json_string (why));
        ready = false;
    }
    if (s_broker_reachable (why, sizeof why))
        json_object_set_new (checks, "broker", json_string ("ok"));
    else {
        json_object_set_new (checks, "broker", json_string (why));
        ready = false;
    }
    //  The SQS bridges' last word (engine/health.h)
    s_health_t health = { checks, true };
    rp_health_each (s_health_check, &health);
    ready &= health.ready;
    return rp_gw_json (c, req, ready ? 200 : 503,
                       json_pack ("{s:s, s:o}", "status", ready ? "ready" : "unavailable", "checks", checks));
}

//  ---------------------------------------------------------------------------
//  Dispatch

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
    snprintf (req->route, sizeof req->route, "%s %s", method, label);
}

static enum MHD_Result
s_dispatch (struct MHD_Connection *c, rp_req_t *req, const char *method, const char *url)
{
    bool get = streq (method, "GET") || streq (method, "HEAD");
    if (streq (url, "/healthz") && get)
        return rp_gw_json (c, req, 200, json_pack ("{s:s}", "status", "ok"));
    if (streq (url, "/readyz") && get)
        return s_readyz (c, req);
    if (streq (url, "/metrics") && get) {
        char *text = NULL;
        size_t len = 0;
        rp_gw_metrics_text (&text, &len);
        return s_text (c, req, 200, "text/plain; version=0.0.4", text, len, true);
    }
    if (strncmp (url, "/api/v1/", 8) != 0)
        return rp_static_route (c, req, method, url);       //  the web app (static.c)
    if (req->body_too_big)
        return rp_gw_problem (c, req, 413, "Payload too large", "JSON bodies are limited to 64 KiB");
    if (streq (url, "/api/v1/auth/login")) {
        if (!streq (method, "POST"))
            return rp_gw_problem (c, req, 405, "Method not allowed", "use POST");
        return s_login (c, req);
    }
    char why [256];
    if (!req->user_id [0] && !s_authenticate (c, req, why, sizeof why))
        return rp_gw_problem (c, req, 401, "Unauthorized", why);
    if (streq (url, "/api/v1/photos/check")) {
        if (!streq (method, "POST"))
            return rp_gw_problem (c, req, 405, "Method not allowed", "use POST");
        return s_check (c, req);
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

static enum MHD_Result
s_handler (void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    rp_req_t *req = (rp_req_t *) *con_cls;
    if (!req) {
        //  First call: headers only
        req = (rp_req_t *) rp_alloc (sizeof (rp_req_t));
        req->started_ms = rp_clock_ms ();
        *con_cls = req;
        s_request_id (c, req);
        s_set_route (req, method, url);
        if (s_is_upload (method, url)) {
            char why [256];
            if (!s_authenticate (c, req, why, sizeof why))
                return rp_gw_problem (c, req, 401, "Unauthorized", why);
            return rp_upload_begin (c, req);
        }
        if (s_is_tus (url)) {
            char why [256];
            if (!streq (method, "OPTIONS") && !s_authenticate (c, req, why, sizeof why))
                return rp_gw_problem (c, req, 401, "Unauthorized", why);
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
        if (req->body_len + size > RP_GW_BODY_MAX) {
            req->body_too_big = true;
            return req->bytes_in > 4 * RP_GW_BODY_MAX ? MHD_NO : MHD_YES;
        }
        char *grown = (char *) realloc (req->body, req->body_len + size + 1);
        if (!grown)
            return MHD_NO;
        req->body = grown;
        memcpy (req->body + req->body_len, upload_data, size);
        req->body_len += size;
        req->body [req->body_len] = 0;
        return MHD_YES;
    }
    if (req->answered)
        return MHD_YES;
    if (req->upload)
        return rp_upload_finish (c, req);
    if (req->tus)
        return rp_tus_finish (c, req);
    return s_dispatch (c, req, method, url);
}

static void
s_completed (void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    rp_req_t *req = (rp_req_t *) *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    int64_t duration = rp_clock_ms () - req->started_ms;
    if (!req->answered)
        req->status = 499;          //  the client went away (or the server gave up) first
    s_metrics_record (req, duration);
    rp_info ("gateway", "req=%s user=%s %s status=%d bytes_in=%lld bytes_out=%lld duration=%lldms%s",
             req->id, req->user_id [0] ? req->user_id : "-", req->route, req->status,
             (long long) req->bytes_in, (long long) req->bytes_out, (long long) duration,
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
    rp_upload_destroy (&req->upload);
    rp_tus_end (&req->tus, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    free (req->body);
    free (req);
}

static void
s_mhd_log (void *cls, const char *fmt, va_list ap)
{
    char line [512];
    vsnprintf (line, sizeof line, fmt, ap);
    line [strcspn (line, "\n")] = 0;
    rp_debug ("gateway", "http: %s", line);
}

//  ---------------------------------------------------------------------------
//  The actor

static int
s_parse_listen (const char *listen, struct sockaddr_in *addr)
{
    char host [256];
    snprintf (host, sizeof host, "%s", listen);
    char *colon = strrchr (host, ':');
    if (!colon)
        return -1;
    *colon = 0;
    char *end = NULL;
    long port = strtol (colon + 1, &end, 10);
    if (!end || *end || port < 0 || port > 65535)
        return -1;
    memset (addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons ((uint16_t) port);
    if (!*host || streq (host, "*") || streq (host, "0.0.0.0"))
        addr->sin_addr.s_addr = htonl (INADDR_ANY);
    else
    if (streq (host, "localhost"))
        addr->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    else
    if (inet_pton (AF_INET, host, &addr->sin_addr) != 1)
        return -1;
    return 0;
}

void
rp_gateway_actor (zsock_t *pipe, void *arg)
{
    rp_gateway_args_t *args = (rp_gateway_args_t *) arg;
    rp_gw_t *gw = (rp_gw_t *) rp_alloc (sizeof (rp_gw_t));
    gw->config = args->config;
    gw->in_process_engine = args->in_process_engine;
    gw->started_ms = rp_clock_ms ();
    char err [512];
    struct sockaddr_in addr;
    struct MHD_Daemon *daemon = NULL;
    if (rp_auth_secret (&gw->config, gw->secret, err, sizeof err) == 0
    &&  (gw->blobs = rp_blobstore_open (&gw->config, err, sizeof err))) {
        if (s_parse_listen (gw->config.http_listen, &addr))
            snprintf (err, sizeof err, "http.listen \"%s\" is not host:port (IPv4)", gw->config.http_listen);
        else {
            rp_gw = gw;
            daemon = MHD_start_daemon (
                MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME,
                0, NULL, NULL, s_handler, NULL,
                MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) RP_GW_THREADS,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned int) RP_GW_CONNECTIONS,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) RP_GW_TIMEOUT_S,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) RP_GW_CONN_MEMORY,
                MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL,
                MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
                MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int) 1,
                MHD_OPTION_END);
            if (!daemon)
                snprintf (err, sizeof err, "cannot listen on %s: %s", gw->config.http_listen,
                          strerror (errno));
        }
    }
    if (!daemon) {
        rp_error ("gateway", "cannot start: %s", err);
        rp_gw = NULL;
        rp_blobstore_close (&gw->blobs);
        free (gw);
        zsock_signal (pipe, 1);
        return;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? (int) info->port : 0;
    rp_info ("gateway", "listening on http://%s (port %d), %d threads", gw->config.http_listen,
             port, RP_GW_THREADS);
    //  This thread's own connection, for the event streams' ticker
    rp_db_t *tick_db = rp_db_open (gw->config.db_url, err, sizeof err);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, 0);
    for (;;) {
        if (zpoller_wait (poller, 250) == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM")) {
                zstr_free (&command);
                break;
            }
            if (streq (command, "PORT"))
                zstr_sendf (pipe, "%d", port);
            zstr_free (&command);
        }
        rp_events_tick (tick_db);
        rp_tus_sweep (tick_db, false);
    }
    zpoller_destroy (&poller);
    //  End the event streams, then stop: joining the pool threads closes
    //  their database connections with them
    rp_events_stop ();
    for (int i = 0; i < 100 && rp_events_streams () > 0; i++)
        zclock_sleep (50);
    MHD_stop_daemon (daemon);
    rp_db_close (&tick_db);
    rp_gw = NULL;
    rp_blobstore_close (&gw->blobs);
    free (gw);
}

zactor_t *
rp_gateway_new (const rp_gateway_args_t *args)
{
    zactor_t *actor = zactor_new (rp_gateway_actor, (void *) args);
    if (actor && zstr_send (actor, "PORT") == 0) {
        zsock_set_rcvtimeo (actor, 5000);
        char *answer = zstr_recv (actor);
        zsock_set_rcvtimeo (actor, -1);
        if (answer) {
            zstr_free (&answer);
            return actor;
        }
    }
    zactor_destroy (&actor);
    return NULL;
}
