/*  app/health_port.c: see health_port.h.

    DESIGN
    Thread: libmicrohttpd's one internal polling thread answers; the
    owner's thread only beats. Shared: the last beat and the photos in
    flight, two atomics; nothing else is written after start. Bounds: a
    few connections at a time, 5 s idle, no request body read (a health
    check sends none; one that does is answered all the same).
*/
#include "app/health_port.h"
#include "engine/alloc.h"
#include "engine/clock.h"

#include <czmq.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>

struct _rp_health_port_t {
    struct MHD_Daemon *daemon;      //  answers on its own thread
    char role [32];                 //  names the process in the answer
    int64_t stale_ms;               //  a beat older than this is unhealthy
    atomic_llong beat_ms;           //  rp_clock_ms of the last beat
    atomic_llong in_flight;         //  what the last beat said
};

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **state)
{
    rp_health_port_t *self = (rp_health_port_t *) cls;
    //  The first call of a request comes before its body: answer on the
    //  second, with any body dropped
    if (!*state) {
        *state = self;
        return MHD_YES;
    }
    *upload_data_size = 0;
    unsigned int status = MHD_HTTP_NOT_FOUND;
    json_t *answer = NULL;
    bool get = streq (method, "GET") || streq (method, "HEAD");
    if (get && streq (url, "/healthz")) {
        int64_t age = rp_clock_ms () - (int64_t) atomic_load (&self->beat_ms);
        bool alive = age <= self->stale_ms;
        status = alive ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        answer = json_pack ("{s:s, s:s, s:I, s:I}", "status", alive ? "ok" : "unavailable",
                            "role", self->role, "in_flight", (json_int_t) atomic_load (&self->in_flight),
                            "last_beat_ms_ago", (json_int_t) age);
        if (!alive)
            json_object_set_new (answer, "why", json_string ("the pipeline has not answered in time"));
    }
    else
        answer = json_pack ("{s:s}", "status", "not found: this process answers GET /healthz only");
    char *text = answer ? json_dumps (answer, JSON_COMPACT) : NULL;
    json_decref (answer);
    if (!text)
        return MHD_NO;
    struct MHD_Response *response = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free (text);
        return MHD_NO;
    }
    MHD_add_response_header (response, "Content-Type", "application/json");
    MHD_add_response_header (response, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

rp_health_port_t *
rp_health_port_new (const char *listen, const char *role, int64_t stale_ms, char *err, size_t errlen)
{
    char host [256];
    snprintf (host, sizeof host, "%s", listen);
    char *colon = strrchr (host, ':');
    if (!colon) {
        snprintf (err, errlen, "http.listen \"%s\" is not host:port", listen);
        return NULL;
    }
    *colon = 0;
    const char *port = colon + 1;
    bool any = !*host || streq (host, "*") || streq (host, "0.0.0.0");
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV | (any ? AI_PASSIVE : 0) }, *found = NULL;
    if (getaddrinfo (any ? NULL : host, port, &hints, &found) || !found) {
        snprintf (err, errlen, "http.listen \"%s\" is not an IPv4 host and port", listen);
        return NULL;
    }
    rp_health_port_t *self = (rp_health_port_t *) rp_alloc (sizeof (rp_health_port_t));
    snprintf (self->role, sizeof self->role, "%s", role);
    self->stale_ms = stale_ms;
    atomic_store (&self->beat_ms, (long long) rp_clock_ms ());
    self->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, s_answer, self,
                                     MHD_OPTION_SOCK_ADDR, found->ai_addr,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 16,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 5,
                                     MHD_OPTION_END);
    freeaddrinfo (found);
    if (!self->daemon) {
        snprintf (err, errlen, "cannot listen on %s for /healthz (in use, or not this host's)", listen);
        free (self);
        return NULL;
    }
    return self;
}

void
rp_health_port_destroy (rp_health_port_t **self_p)
{
    if (*self_p) {
        MHD_stop_daemon ((*self_p)->daemon);
        free (*self_p);
        *self_p = NULL;
    }
}

void
rp_health_port_beat (rp_health_port_t *self, int64_t in_flight)
{
    atomic_store (&self->in_flight, (long long) in_flight);
    atomic_store (&self->beat_ms, (long long) rp_clock_ms ());
}
