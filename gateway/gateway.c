/*  gateway/gateway.c: the HTTP gateway actor, and what it shares with the
    request threads.

    DESIGN
    Threads: the actor's own zactor thread only starts and stops the HTTP
    server and the readiness prober (readyz.c, an actor of its own), and
    every 250 ms ticks the event streams (events.c), the sweep of
    presigned uploads' objects (presign.c) and the resumable uploads'
    sweep (tus.c) on a database connection of its own. The streams are
    ticked sooner, 20 ms after a write this process committed (its own
    pipeline's, in `serve`), so a photo's complete is not held back by
    the poll.
    Requests run on libmicrohttpd's epoll thread pool
    (MHD_USE_EPOLL_INTERNAL_THREAD, RP_GW_THREADS threads), each connection
    pinned to one thread; what they do is in routes.c and the files it
    hands them to. Per-connection memory is bounded
    (MHD_OPTION_CONNECTION_MEMORY_LIMIT: headers beyond it get 431), as are
    connections (http.max_connections; per client address below) and idle
    time.
    Owns: rp_gw, the shared state (the configuration, the signing secret,
    the blob store handle: plain data, read-only once the server is up but
    for the web app's CSP, which static.c fills in under its lock; each
    upload's writer belongs to its request's thread), and per MHD
    thread, lazily, one database connection and one PUSH socket to the
    pipeline's wake endpoint (RP_PIPELINE_WAKE). Both are thread-local and
    closed by a pthread key destructor when MHD joins its threads at stop:
    no connection is ever shared between threads.
    Messages: takes $TERM and PORT on its pipe; sends "WAKE" frames to the
    pipeline (never blocking: a full or absent pipeline just ticks) after
    every committed upload. It never submits to the broker: the pipeline
    claims committed photos from the database, so an upload acknowledged
    here survives any crash after the 202.

    The other files of gateway/, found by what they answer:
      routes.c     which request goes where, request ids, the MHD callbacks
                   (one access-log line per request, freeing its state)
      response.c   JSON, text and problem+json answers
      login.c      POST /auth/login (throttled) and the Bearer check
      upload.c     POST /photos, streamed into blob writers
      tus.c        resumable uploads at /tus
      presign.c    presigned uploads straight to S3 at /uploads
      photos.c     the gallery: photos, tags, batches, downloads, /photos/check
      events.c     GET /events, live status (Server-Sent Events)
      readyz.c     the readiness prober, and GET /readyz from what it found
      metrics.c    GET /metrics, and the counters every request adds to
      static.c     the web app, compiled into the binary
      auth.c       tokens, the signing secret, the login throttle (no HTTP)
      address.c    who a client is: trusted proxies, X-Forwarded-For, the
                   key limits count under (no HTTP)
*/
#include "gateway/gateway.h"
#include "engine/alloc.h"
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/log.h"
#include "engine/runtime.h"
#include "engine/thread.h"
#include "library/pipeline.h"
#include "gateway/events.h"
#include "gateway/gateway_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#define S_TICK_MS 250                   //  the event streams' poll, and the sweeps'
#define S_NEWS_MS 20                    //  the soonest look after a commit of ours
#define RP_GW_THREADS 8
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
rp_gw_db_drop (void)
{
    s_thread_t *thread = s_thread ();
    rp_db_close (&thread->db);
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

bool
rp_gw_sweep_due (int64_t *next_ms, int64_t most_ms, bool now)
{
    int64_t clock = rp_clock_ms ();
    if (!now && clock < *next_ms)
        return false;
    //  Often enough that an upload is gone soon after it expires
    int64_t interval = rp_gw->config.uploads_tus_expire_s * 1000 / 2;
    *next_ms = clock + (interval < most_ms ? (interval < 500 ? 500 : interval) : most_ms);
    return true;
}

//  ---------------------------------------------------------------------------
//  Connections per client address (http.max_connections_per_address):
//  counted from the moment MHD accepts a connection to its close, by the
//  address's key (address.h: IPv6 by its /64). A connection that is one
//  too many is marked; its first request is answered 429, naming the
//  limit, and it is closed (routes.c). Trusted proxies are not counted:
//  every client behind them shares their addresses.

typedef struct {
    char key [RP_ADDRESS_KEY_MAX];      //  "" when not counted
    bool over;                          //  past the limit when it came
} s_conn_t;

static pthread_mutex_t s_conns_lock = PTHREAD_MUTEX_INITIALIZER;
static zhashx_t *s_conns = NULL;        //  address key -> open connections (as a pointer-sized int)

static void
s_connection_notify (void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    int64_t limit = rp_gw->config.http_max_connections_per_address;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        s_conn_t *conn = (s_conn_t *) rp_alloc (sizeof (s_conn_t));
        *socket_context = conn;
        const union MHD_ConnectionInfo *info = MHD_get_connection_info (c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        uint8_t peer [16];
        if (limit <= 0 || !info || !rp_address_from_sockaddr (info->client_addr, peer)
        ||  rp_proxies_has (&rp_gw->proxies, peer))
            return;
        rp_address_key (peer, conn->key);
        pthread_mutex_lock (&s_conns_lock);
        if (!s_conns)
            s_conns = zhashx_new ();
        intptr_t open = (intptr_t) zhashx_lookup (s_conns, conn->key) + 1;
        zhashx_update (s_conns, conn->key, (void *) open);
        pthread_mutex_unlock (&s_conns_lock);
        conn->over = open > limit;
    }
    else
    if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        s_conn_t *conn = (s_conn_t *) *socket_context;
        if (conn->key [0]) {
            pthread_mutex_lock (&s_conns_lock);
            intptr_t open = (intptr_t) zhashx_lookup (s_conns, conn->key) - 1;
            if (open > 0)
                zhashx_update (s_conns, conn->key, (void *) open);
            else
                zhashx_delete (s_conns, conn->key);
            pthread_mutex_unlock (&s_conns_lock);
        }
        free (conn);
        *socket_context = NULL;
    }
}

bool
rp_gw_connection_over (struct MHD_Connection *c, int64_t *limit)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const s_conn_t *conn = info ? (const s_conn_t *) info->socket_context : NULL;
    *limit = rp_gw->config.http_max_connections_per_address;
    return conn && conn->over;
}

//  ---------------------------------------------------------------------------
//  The actor

static void
s_mhd_log (void *cls, const char *fmt, va_list ap)
{
    char line [512];
    vsnprintf (line, sizeof line, fmt, ap);
    line [strcspn (line, "\n")] = 0;
    rp_debug ("gateway", "http: %s", line);
}

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

static void
s_gateway_run (zsock_t *pipe, void *arg)
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
    &&  rp_proxies_parse (gw->config.http_trusted_proxies, &gw->proxies, err, sizeof err) == 0
    &&  (gw->blobs = rp_blobstore_open (&gw->config, err, sizeof err))) {
        if (s_parse_listen (gw->config.http_listen, &addr))
            snprintf (err, sizeof err, "http.listen \"%s\" is not host:port (IPv4)", gw->config.http_listen);
        else {
            rp_gw = gw;
            daemon = MHD_start_daemon (
                MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME,
                0, NULL, NULL, rp_gw_request_handler, NULL,
                MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) RP_GW_THREADS,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned int) gw->config.http_max_connections,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) RP_GW_TIMEOUT_S,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) RP_GW_CONN_MEMORY,
                MHD_OPTION_NOTIFY_COMPLETED, rp_gw_request_completed, NULL,
                MHD_OPTION_NOTIFY_CONNECTION, s_connection_notify, NULL,
                MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
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
        args->start_failed = 1;         //  before the signal: the caller reads it after
        zsock_signal (pipe, 1);
        return;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? (int) info->port : 0;
    rp_info ("gateway", "listening on http://%s (port %d), %d threads", gw->config.http_listen,
             port, RP_GW_THREADS);
    //  Readiness and what /metrics shows of the dependencies, kept fresh
    //  off the request threads
    rp_gw_prober_args_t prober_args = { .config = gw->config, .blobs = gw->blobs,
                                        .in_process_engine = gw->in_process_engine };
    zactor_t *prober = zactor_new (rp_gw_prober_actor, &prober_args);
    //  This thread's own connection, for the event streams' ticker
    rp_db_t *tick_db = rp_db_open (gw->config.db_url, err, sizeof err);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, 0);
    //  The event streams are looked at every S_TICK_MS, and sooner (after
    //  S_NEWS_MS) when this process has committed a write since: in
    //  `serve` a photo's complete reaches its stream within S_NEWS_MS of
    //  the commit, not up to S_TICK_MS later. A gateway alone sees the
    //  pipeline's commits at the S_TICK_MS poll.
    int64_t seen_commits = rp_db_write_commits ();
    int64_t last_events = rp_clock_ms (), last_sweep = last_events;
    for (;;) {
        if (zpoller_wait (poller, S_NEWS_MS) == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM")) {
                zstr_free (&command);
                break;
            }
            if (streq (command, "PORT"))
                zstr_sendf (pipe, "%d", port);
            zstr_free (&command);
        }
        int64_t now = rp_clock_ms ();
        int64_t commits = rp_db_write_commits ();
        if (now - last_events >= S_TICK_MS
        || (commits != seen_commits && now - last_events >= S_NEWS_MS)) {
            seen_commits = commits;
            last_events = now;
            rp_events_tick (tick_db);
        }
        if (now - last_sweep >= S_TICK_MS) {
            last_sweep = now;
            rp_presign_sweep (tick_db, false);
            rp_tus_sweep (tick_db, false);
        }
    }
    zpoller_destroy (&poller);
    zactor_destroy (&prober);
    //  End the event streams, then stop: joining the pool threads closes
    //  their database connections with them
    rp_events_stop ();
    for (int i = 0; i < 100 && rp_events_streams (NULL) > 0; i++)
        zclock_sleep (50);
    MHD_stop_daemon (daemon);
    pthread_mutex_lock (&s_conns_lock);
    zhashx_destroy (&s_conns);
    pthread_mutex_unlock (&s_conns_lock);
    rp_db_close (&tick_db);
    rp_gw = NULL;
    rp_blobstore_close (&gw->blobs);
    free (gw);
}

//  The actor: its loop, then what its thread kept is freed (engine/thread.h)
void
rp_gateway_actor (zsock_t *pipe, void *arg)
{
    s_gateway_run (pipe, arg);
    rp_thread_end ();
}

zactor_t *
rp_gateway_new (rp_gateway_args_t *args)
{
    //  zactor_new drops the status the actor signals: a gateway that could
    //  not listen said so in start_failed (its thread has ended; a PORT
    //  sent to it would read the shim's last signal as an answer)
    args->start_failed = 0;
    zactor_t *actor = rp_actor_start_checked (rp_gateway_actor, args, &args->start_failed);
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
