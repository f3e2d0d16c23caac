/*  gateway/events.c: GET /api/v1/events, live photo status as Server-Sent
    Events.

    Events are rows of the events table (schema V2), written by engine/db in
    the same transaction as each photo state change, so a stream is exactly
    the committed history: `id:` is the row id, and a client that comes back
    with Last-Event-ID (or ?last_event_id=) gets everything after it. A new
    client without one starts at the newest event.

    No MHD thread ever waits for events. The response is a content-reader
    callback: it hands out what is buffered, else reads the next events from
    the database (this thread's own connection), else suspends its
    connection (MHD_suspend_connection) and returns 0. The gateway actor's
    thread calls rp_events_tick every 250 ms, and within 20 ms of a write
    transaction this process committed (gateway.c): while streams are open, one
    query for the users who have events newer than the tick has seen (by
    the events' primary key, a few ids back so a transaction that took its
    id early and committed late is not missed), and it resumes only the
    suspended streams of those users that are behind their newest event,
    or that owe a heartbeat (a comment line every 15 s, so proxies keep the
    stream open). Another user's writes wake no stream: an idle stream
    reads the database only for its own news. Idle streams cost a struct
    each, never a thread.
    At most http.max_streams streams are open (below the connection limit,
    so other requests always find room) and http.max_streams_per_user per
    user; past either a new stream is answered 429, naming the setting.

    When the process drains (engine/drain.h) the ticker resumes every
    stream, and each ends after what it was handing out with a retry hint
    (`retry:` 1 to 3 s, spread so clients do not all come back at once):
    the client reconnects, through the load balancer to another server,
    with its Last-Event-ID, and misses nothing.
*/
#include "engine/alloc.h"
#include "engine/clock.h"
#include "engine/drain.h"
#include "engine/log.h"
#include "gateway/events.h"
#include "gateway/gateway_private.h"

#include <czmq.h>
#include <pthread.h>
#include <string.h>

#define S_HEARTBEAT_MS 15000
#define S_BATCH 100
#define S_LAG 64                        //  event ids looked back at each tick
#define S_USERS_MAX 1000                //  users with news per tick; more: every stream looks
#define S_PRUNE_TICKS 40                //  forget users without streams this often

typedef struct _s_stream_t {
    struct MHD_Connection *conn;    //  valid while the stream is registered
    char user_id [RP_ID_MAX];
    int64_t last_id;                //  the last event id sent
    bool suspended;                 //  waiting for the ticker (guarded by s_lock)
    bool probe;                     //  owes a heartbeat now: is its client still there? (s_lock)
    int64_t last_write_ms;
    char *pending;                  //  formatted text not yet handed to MHD
    size_t pending_len;
    size_t pending_off;
    bool hinted;                    //  draining: the retry hint was handed out
    struct _s_stream_t *next;
} s_stream_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_stream_t *s_streams = NULL;
static int s_nstreams = 0;
static bool s_stopping = false;
static uint64_t s_reads = 0;        //  event reads from the database (metrics)
//  The ticker's own (its thread only): the newest event id it has seen,
//  and each user's newest event id, for users with streams
static int64_t s_seen = -1;
static json_t *s_newest = NULL;
static int s_ticks = 0;

static void
s_pending_set (s_stream_t *stream, char *text, size_t len)
{
    free (stream->pending);
    stream->pending = text;
    stream->pending_len = len;
    stream->pending_off = 0;
}

static ssize_t
s_hand_out (s_stream_t *stream, char *buf, size_t max)
{
    size_t left = stream->pending_len - stream->pending_off;
    size_t n = left < max ? left : max;
    memcpy (buf, stream->pending + stream->pending_off, n);
    stream->pending_off += n;
    if (stream->pending_off == stream->pending_len)
        s_pending_set (stream, NULL, 0);
    stream->last_write_ms = rp_clock_ms ();
    return (ssize_t) n;
}

//  Read the next events into pending; -1 when the database failed.
static int
s_fetch (s_stream_t *stream)
{
    char err [256];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    json_t *events = NULL;
    pthread_mutex_lock (&s_lock);
    s_reads++;
    pthread_mutex_unlock (&s_lock);
    if (!db || rp_db_events_after (db, stream->user_id, stream->last_id, S_BATCH, &events, err, sizeof err)) {
        rp_warn ("gateway", "events stream for user=%s: %s", stream->user_id, err);
        return -1;
    }
    if (json_array_size (events) == 0) {
        json_decref (events);
        return 0;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream (&text, &len);
    size_t i;
    json_t *event;
    json_array_foreach (events, i, event) {
        json_int_t id = json_integer_value (json_object_get (event, "event_id"));
        json_object_del (event, "event_id");
        char *data = json_dumps (event, JSON_COMPACT);
        fprintf (out, "id: %lld\nevent: photo\ndata: %s\n\n", (long long) id, data ? data : "{}");
        free (data);
        stream->last_id = id;
    }
    fclose (out);
    json_decref (events);
    s_pending_set (stream, text, len);
    return 0;
}

static ssize_t
s_reader (void *cls, uint64_t pos, char *buf, size_t max)
{
    s_stream_t *stream = (s_stream_t *) cls;
    if (stream->pending)
        return s_hand_out (stream, buf, max);
    if (s_stopping || stream->hinted)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (rp_draining ()) {
        char hint [64];
        snprintf (hint, sizeof hint, "retry: %d\n: this server is stopping\n\n",
                  1000 + (int) (rp_clock_ms () % 2000));
        stream->hinted = true;
        s_pending_set (stream, rp_strdup (hint), strlen (hint));
        return s_hand_out (stream, buf, max);
    }
    if (s_fetch (stream))
        return MHD_CONTENT_READER_END_OF_STREAM;        //  the client resumes from its last id
    if (stream->pending)
        return s_hand_out (stream, buf, max);
    //  Suspend only if the gateway is not stopping, decided under the lock
    //  rp_events_stop takes: else a stream could suspend itself just after
    //  the stop resumed the others, and stopping the daemon with a
    //  suspended connection aborts the process
    pthread_mutex_lock (&s_lock);
    bool beat = stream->probe || rp_clock_ms () - stream->last_write_ms >= S_HEARTBEAT_MS;
    stream->probe = false;
    bool stopping = s_stopping;
    if (!stopping && !beat) {
        stream->suspended = true;
        MHD_suspend_connection (stream->conn);
    }
    pthread_mutex_unlock (&s_lock);
    if (beat && !stopping) {
        //  A comment line: proxies keep the stream open, and a client that
        //  went away is found out (MHD sees nothing of a suspended one)
        char *text = rp_strdup (": heartbeat\n\n");
        s_pending_set (stream, text, strlen (text));
        return s_hand_out (stream, buf, max);
    }
    return stopping ? MHD_CONTENT_READER_END_OF_STREAM : 0;
}

static void
s_stream_free (void *cls)
{
    s_stream_t *stream = (s_stream_t *) cls;
    pthread_mutex_lock (&s_lock);
    for (s_stream_t **p = &s_streams; *p; p = &(*p)->next)
        if (*p == stream) {
            *p = stream->next;
            s_nstreams--;
            break;
        }
    pthread_mutex_unlock (&s_lock);
    free (stream->pending);
    free (stream);
}

enum MHD_Result
rp_events_route (struct MHD_Connection *c, rp_req_t *req, const char *method)
{
    if (!streq (method, "GET"))
        return rp_gw_problem (c, req, 405, "Method not allowed", "use GET");
    const char *resume = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Last-Event-ID");
    if (!resume)
        resume = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "last_event_id");
    int64_t after = 0;
    if (resume && *resume) {
        char *end = NULL;
        long long value = strtoll (resume, &end, 10);
        if (!end || *end || value < 0)
            return rp_gw_problem (c, req, 400, "Bad request", "Last-Event-ID is an event id (a number)");
        after = value;
    }
    else {
        char err [256];
        rp_db_t *db = rp_gw_db (err, sizeof err);
        if (!db || rp_db_events_last (db, req->user_id, &after, err, sizeof err))
            return rp_gw_db_problem (c, req, -1, err);
    }
    s_stream_t *stream = (s_stream_t *) rp_alloc (sizeof (s_stream_t));
    stream->conn = c;
    snprintf (stream->user_id, sizeof stream->user_id, "%s", req->user_id);
    stream->last_id = after;
    stream->last_write_ms = rp_clock_ms ();
    char *hello = rp_strdup ("retry: 2000\n: connected\n\n");
    s_pending_set (stream, hello, strlen (hello));
    const rp_config_t *config = &rp_gw->config;
    pthread_mutex_lock (&s_lock);
    int64_t mine = 0;
    for (s_stream_t *other = s_streams; other; other = other->next)
        mine += streq (other->user_id, stream->user_id);
    bool stopping = s_stopping;
    bool full = s_nstreams >= config->http_max_streams;
    bool too_many = mine >= config->http_max_streams_per_user;
    //  Refused: the user's own streams send a heartbeat at the next tick,
    //  so those whose clients went away are found out and closed, and the
    //  retry finds room (a suspended connection's close goes unseen)
    for (s_stream_t *other = s_streams; too_many && other; other = other->next)
        if (streq (other->user_id, stream->user_id))
            other->probe = true;
    if (!stopping && !full && !too_many) {
        stream->next = s_streams;
        s_streams = stream;
        s_nstreams++;
    }
    pthread_mutex_unlock (&s_lock);
    if (stopping || full || too_many) {
        free (stream->pending);
        free (stream);
        if (stopping)
            return rp_gw_problem (c, req, 503, "Service unavailable", "the server is stopping; try again shortly");
        char detail [200];
        if (too_many)
            snprintf (detail, sizeof detail, "you have %lld event streams open (http.max_streams_per_user = %lld); "
                      "close one first", (long long) mine, (long long) config->http_max_streams_per_user);
        else
            snprintf (detail, sizeof detail, "too many event streams are open (http.max_streams = %lld); "
                      "try again later", (long long) config->http_max_streams);
        return rp_gw_problem_h (c, req, 429, "Too many requests", detail, "Retry-After", too_many ? "1" : "5");
    }
    struct MHD_Response *response = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 16 * 1024,
                                                                       s_reader, stream, s_stream_free);
    if (!response) {
        s_stream_free (stream);
        return MHD_NO;
    }
    MHD_add_response_header (response, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header (response, "Cache-Control", "no-store");
    MHD_add_response_header (response, "X-Accel-Buffering", "no");
    return rp_gw_queue (c, req, 200, response);
}

//  Forget the newest ids of users who have no stream any more. Lock held.
static void
s_prune (void)
{
    const char *user;
    json_t *value, *copy = json_object ();
    json_object_foreach (s_newest, user, value)
        for (s_stream_t *stream = s_streams; stream; stream = stream->next)
            if (streq (stream->user_id, user)) {
                json_object_set (copy, user, value);
                break;
            }
    json_decref (s_newest);
    s_newest = copy;
}

void
rp_events_tick (rp_db_t *db)
{
    pthread_mutex_lock (&s_lock);
    bool any = s_nstreams > 0;
    pthread_mutex_unlock (&s_lock);
    if (!any)
        return;
    if (!s_newest)
        s_newest = json_object ();
    char err [256];
    //  Who has news: users with events newer than those seen (a few back)
    bool everyone = !db;
    if (db && s_seen < 0 && rp_db_events_last (db, NULL, &s_seen, err, sizeof err))
        everyone = true;
    json_t *users = NULL;
    if (!everyone && rp_db_events_users (db, s_seen > S_LAG ? s_seen - S_LAG : 0, S_USERS_MAX, &users,
                                         err, sizeof err))
        everyone = true;               //  cannot tell: let every stream look
    if (users && json_object_size (users) >= S_USERS_MAX)
        everyone = true;
    const char *user;
    json_t *value;
    json_object_foreach (users, user, value) {
        int64_t id = (int64_t) json_integer_value (value);
        if (id > (int64_t) json_integer_value (json_object_get (s_newest, user)))
            json_object_set_new (s_newest, user, json_integer (id));
        if (id > s_seen)
            s_seen = id;
    }
    json_decref (users);
    int64_t now = rp_clock_ms ();
    bool draining = rp_draining ();
    pthread_mutex_lock (&s_lock);
    for (s_stream_t *stream = s_streams; stream; stream = stream->next) {
        int64_t newest = (int64_t) json_integer_value (json_object_get (s_newest, stream->user_id));
        if (stream->suspended
        &&  (s_stopping || draining || everyone || stream->probe || stream->last_id < newest
             || now - stream->last_write_ms >= S_HEARTBEAT_MS)) {
            stream->suspended = false;
            MHD_resume_connection (stream->conn);
        }
    }
    if (++s_ticks % S_PRUNE_TICKS == 0)
        s_prune ();
    pthread_mutex_unlock (&s_lock);
}

void
rp_events_stop (void)
{
    pthread_mutex_lock (&s_lock);
    s_stopping = true;
    json_decref (s_newest);
    s_newest = NULL;
    for (s_stream_t *stream = s_streams; stream; stream = stream->next)
        if (stream->suspended) {
            stream->suspended = false;
            MHD_resume_connection (stream->conn);
        }
    pthread_mutex_unlock (&s_lock);
}

int
rp_events_streams (uint64_t *reads)
{
    pthread_mutex_lock (&s_lock);
    int n = s_nstreams;
    if (reads)
        *reads = s_reads;
    pthread_mutex_unlock (&s_lock);
    return n;
}
