/*  gateway/readyz.c: GET /readyz, whether this gateway can take uploads
    now (GET /healthz, "the process answers", is one line in routes.c).

    DESIGN
    Runs on the MHD thread that answers; keeps no state. A process that is
    stopping (engine/drain.h) answers 503 {"status":"draining"} at once,
    without a check, so the load balancer takes it out. Else each check is
    made afresh, and the answer is 200 when all pass, else 503, with every
    check's outcome ("ok" or why not) under "checks":
      database  a ping on this thread's connection; a broken connection is
                dropped, so the next request opens a new one
      storage   a file written and removed under <data.dir>/objects/tmp
                (in S3 mode the cache), and in S3 mode first a request to
                the bucket
      broker    a TCP connect (at most 1 s) to broker.frontend, when it is
                on tcp://
      ingest_queue, events_queue
                the SQS bridges' last outcome (engine/health.h), when they
                run: a probe would hide a message
*/
#include "gateway/gateway_private.h"
#include <czmq.h>
#include "engine/drain.h"
#include "engine/health.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

enum MHD_Result
rp_gw_readyz (struct MHD_Connection *c, rp_req_t *req)
{
    if (rp_draining ())
        return rp_gw_json (c, req, 503, json_pack ("{s:s}", "status", "draining"));
    char err [256] = "";
    json_t *checks = json_object ();
    bool ready = true;
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (db && rp_db_ping (db, err, sizeof err) == 0)
        json_object_set_new (checks, "database", json_string ("ok"));
    else {
        //  A broken connection is dropped: the next request opens a new one
        if (db)
            rp_gw_db_drop ();
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
