/*  tests/test_gateway_limits.c: the gateway's limits, throttles and what it
    reveals, through the real `rapidphoto serve` (and `gateway` with a
    `broker` of its own).

    Each test is one finding of the hardening issue: what a client (or a
    crowd of them, from other loopback addresses: 127.x.y.z are all this
    machine's) can make the server spend, forget or say, and the answer it
    gets instead: a 4xx or 429 that names the limit and its setting, a 503
    with Retry-After, or nothing at all. Event streams that wake only for
    their own user, and at most so many; a login throttle that cannot be
    made to forget and does not lock out everyone behind one address;
    password checks bounded; readiness and metrics answered from state kept
    fresh in the background, in milliseconds, naming no bucket or error;
    quotas on open uploads, multipart bytes and connections per address;
    a short signing secret refused; tokens that stop working when their
    user's password changes; headers and fields taken whole or refused,
    never cut or glued; log lines that outside text cannot forge; one
    metrics label for every unknown method.
*/
#include <criterion/criterion.h>
#include <czmq.h>
#include <curl/curl.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/clock.h"
#include "tests/support/server.h"
#include "tests/support/testdata.h"

//  ---------------------------------------------------------------------------
//  Helpers

//  A TCP connection to the server from a loopback address (NULL: 127.0.0.1).
static int
s_connect (rp_test_server_t *server, const char *source)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    cr_assert_geq (fd, 0);
    if (source) {
        struct sockaddr_in local = { .sin_family = AF_INET };
        inet_pton (AF_INET, source, &local.sin_addr);
        cr_assert_eq (bind (fd, (struct sockaddr *) &local, sizeof local), 0, "bind %s", source);
    }
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) server->port) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    cr_assert_eq (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    return fd;
}

//  Open an event stream on a raw connection: the fd, its answer's status
//  into *status, and the head of the answer into head (may be NULL).
static int
s_stream_open (rp_test_server_t *server, const char *token, int *status, char *head, size_t headlen)
{
    int fd = s_connect (server, NULL);
    char request [4096];
    int n = snprintf (request, sizeof request, "GET /api/v1/events HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer %s\r\n\r\n", token);
    cr_assert_eq (write (fd, request, (size_t) n), n);
    char buffer [2048] = "";
    struct timeval timeout = { .tv_sec = 10 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ssize_t got = read (fd, buffer, sizeof buffer - 1);
    cr_assert_gt (got, 0, "the event stream answered nothing");
    buffer [got] = 0;
    *status = (int) strtol (buffer + 9, NULL, 10);
    if (head)
        snprintf (head, headlen, "%s", buffer);
    return fd;
}

//  Log in as name with password, from a loopback source (NULL: 127.0.0.1),
//  with one more header (NULL: none); the status, the reply the caller's.
static long
s_login (rp_test_server_t *server, const char *name, const char *password, const char *source,
         const char *header, rp_test_reply_t *reply)
{
    char body [512], url [128];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", name, password);
    snprintf (url, sizeof url, "%s/api/v1/auth/login", server->base);
    const char *headers [] = { "Content-Type: application/json", header, NULL };
    return rp_test_http (&(rp_test_http_t) { .method = "POST", .url = url, .headers = headers, .body = body,
                                             .len = strlen (body), .source = source }, reply);
}

//  The problem's detail ("" when none), into detail.
static void
s_detail (const rp_test_reply_t *reply, char *detail, size_t size)
{
    json_t *problem = rp_test_reply_json (reply);
    const char *text = json_string_value (json_object_get (problem, "detail"));
    snprintf (detail, size, "%s", text ? text : "");
    json_decref (problem);
}

//  The value of a metric line "name value" in /metrics; -1 when absent.
static double
s_metric (rp_test_server_t *server, const char *name)
{
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "GET", "/metrics", NULL, NULL, NULL, 0, NULL, &reply), 200);
    char needle [256];
    snprintf (needle, sizeof needle, "\n%s ", name);
    const char *at = reply.body ? strstr (reply.body, needle) : NULL;
    double value = at ? strtod (at + strlen (needle), NULL) : -1;
    rp_test_reply_free (&reply);
    return value;
}

//  A raw upload of a small distinct JPEG; its status (the reply the caller's).
static long
s_upload (rp_test_server_t *server, const char *token, int variant, const char *const *more,
          rp_test_reply_t *reply)
{
    char path [600], name [32];
    snprintf (name, sizeof name, "up%d.jpg", variant);
    rp_test_server_photo (server, name, variant, path, sizeof path);
    size_t len = 0;
    char *bytes = rp_test_read_file (path, &len);
    const char *headers [8] = { "Content-Type: image/jpeg", "X-Filename: up.jpg" };
    int n = 2;
    for (int i = 0; more && more [i] && n < 7; i++)
        headers [n++] = more [i];
    headers [n] = NULL;
    long status = rp_test_request (server, "POST", "/api/v1/photos", token, headers, bytes, len, NULL, reply);
    free (bytes);
    return status;
}

//  The first photo id of an upload's 202.
static void
s_first_id (const rp_test_reply_t *reply, char id [RP_ID_MAX])
{
    json_t *answer = rp_test_reply_json (reply);
    const char *text = json_string_value (json_object_get (json_array_get (json_object_get (answer, "photos"), 0), "id"));
    cr_assert_not_null (text, "%s", reply->body);
    snprintf (id, RP_ID_MAX, "%s", text);
    json_decref (answer);
}

//  ---------------------------------------------------------------------------
//  Event streams

Test (limits, idle_streams_wake_only_for_their_own_user, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-wake" });
    char *alice = rp_test_login (&server, "alice");
    char *bob = rp_test_login (&server, "bob");
    enum { STREAMS = 8 };
    int fds [STREAMS];
    for (int i = 0; i < STREAMS; i++) {
        int status = 0;
        fds [i] = s_stream_open (&server, bob, &status, NULL, 0);
        cr_assert_eq (status, 200);
    }
    //  Alice writes: her photo's events are none of bob's streams' business
    rp_test_reply_t reply;
    cr_assert_eq (s_upload (&server, alice, 1, NULL, &reply), 202, "%s", reply.body);
    char id [RP_ID_MAX];
    s_first_id (&reply, id);
    rp_test_reply_free (&reply);
    char *final = rp_test_wait_final (&server, alice, id, 60000);
    cr_assert_str_eq (final, "complete");
    free (final);
    usleep (500 * 1000);
    double before = s_metric (&server, "rapidphoto_event_stream_reads_total");
    cr_assert_geq (before, 0, "/metrics counts event stream reads");
    sleep (3);
    double after = s_metric (&server, "rapidphoto_event_stream_reads_total");
    cr_expect_leq (after - before, 2, "bob's %d idle streams read the database %.0f times in 3 s after alice wrote",
                   STREAMS, after - before);
    //  Bob's own news still reaches his streams at once
    cr_assert_eq (s_upload (&server, bob, 2, NULL, &reply), 202, "%s", reply.body);
    rp_test_reply_free (&reply);
    char seen [8192] = "";
    size_t used = 0;
    struct timeval timeout = { .tv_sec = 5 };
    setsockopt (fds [0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    for (int64_t end = rp_clock_ms () + 5000; rp_clock_ms () < end && !strstr (seen, "event: photo");) {
        ssize_t got = read (fds [0], seen + used, sizeof seen - used - 1);
        if (got <= 0)
            break;
        used += (size_t) got;
        seen [used] = 0;
    }
    cr_expect (strstr (seen, "event: photo"), "bob's stream got his own event: %s", seen);
    for (int i = 0; i < STREAMS; i++)
        close (fds [i]);
    free (alice);
    free (bob);
    rp_test_server_stop (&server);
}

Test (limits, streams_per_user_are_bounded, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-streams" });
    char *alice = rp_test_login (&server, "alice");
    char *bob = rp_test_login (&server, "bob");
    //  The default: 16 streams per user
    enum { PER_USER = 16 };
    int fds [PER_USER + 1];
    for (int i = 0; i < PER_USER; i++) {
        int status = 0;
        fds [i] = s_stream_open (&server, alice, &status, NULL, 0);
        cr_assert_eq (status, 200, "stream %d of %d", i + 1, PER_USER);
    }
    int status = 0;
    char head [2048];
    int over = s_stream_open (&server, alice, &status, head, sizeof head);
    cr_expect_eq (status, 429, "stream %d: %s", PER_USER + 1, head);
    cr_expect (strstr (head, "http.max_streams_per_user"), "the 429 names the limit: %s", head);
    cr_expect (strcasestr (head, "Retry-After:"), "%s", head);
    close (over);
    int other = s_stream_open (&server, bob, &status, NULL, 0);
    cr_expect_eq (status, 200, "another user's stream");
    close (other);
    //  A stream that ends makes room (found out when the next one is
    //  refused: Retry-After says when to come back)
    close (fds [0]);
    status = 0;
    for (int i = 0; i < 10 && status != 200; i++) {
        fds [0] = s_stream_open (&server, alice, &status, head, sizeof head);
        if (status != 200) {
            close (fds [0]);
            cr_expect (strcasestr (head, "Retry-After: 1"), "%s", head);
            sleep (1);
        }
    }
    cr_expect_eq (status, 200, "a stream once another has ended");
    for (int i = 0; i < PER_USER; i++)
        close (fds [i]);
    free (alice);
    free (bob);
    rp_test_server_stop (&server);
}

Test (limits, streams_in_all_are_bounded, .timeout = 120)
{
    rp_test_server_t server;
    const char *env [] = { "RAPIDPHOTO_HTTP_MAX_STREAMS=4", NULL };
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-allstreams", .env = env });
    char *alice = rp_test_login (&server, "alice");
    char *bob = rp_test_login (&server, "bob");
    int fds [4], status = 0;
    for (int i = 0; i < 4; i++) {
        fds [i] = s_stream_open (&server, i < 3 ? alice : bob, &status, NULL, 0);
        cr_assert_eq (status, 200);
    }
    char head [2048];
    int over = s_stream_open (&server, bob, &status, head, sizeof head);
    cr_expect_eq (status, 429, "%s", head);
    cr_expect (strstr (head, "http.max_streams") && !strstr (head, "http.max_streams_per_user"),
               "the 429 names the limit: %s", head);
    close (over);
    for (int i = 0; i < 4; i++)
        close (fds [i]);
    free (alice);
    free (bob);
    rp_test_server_stop (&server);
}

//  ---------------------------------------------------------------------------
//  The login throttle

//  FNV-1a, 32 bits: the hash the old throttle table placed its keys by
static uint32_t
s_fnv (const char *key)
{
    uint32_t h = 2166136261u;
    for (; *key; key++)
        h = (h ^ (unsigned char) *key) * 16777619u;
    return h;
}

Test (limits, the_throttle_cannot_be_made_to_forget, .timeout = 180)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-forget" });
    rp_test_reply_t reply;
    //  Someone guesses bob's password from four addresses until bob is locked
    for (int i = 0; i < 20; i++) {
        char source [32];
        snprintf (source, sizeof source, "127.0.0.%d", 2 + i / 5);
        long status = s_login (&server, "bob", "guess", source, NULL, &reply);
        cr_expect (status == 401 || status == 429, "guess %d: %ld", i, status);
        rp_test_reply_free (&reply);
    }
    cr_expect_eq (s_login (&server, "bob", "correct horse battery", "127.0.0.6", NULL, &reply), 429,
                  "bob is locked after 20 failures from 4 addresses");
    rp_test_reply_free (&reply);
    //  Then fails with names made to land where bob's entry is kept (in a
    //  table placed by a known hash), from other addresses
    uint32_t home = s_fnv ("user:bob") % 4096;
    int crafted = 0;
    for (int i = 0; crafted < 24 && i < 10000000; i++) {
        char name [32], key [48];
        snprintf (name, sizeof name, "n%d", i);
        snprintf (key, sizeof key, "user:%s", name);
        if (s_fnv (key) % 4096 != home)
            continue;
        char source [32];
        snprintf (source, sizeof source, "127.0.1.%d", 1 + crafted / 3);
        long status = s_login (&server, name, "x", source, NULL, &reply);
        cr_expect (status == 401 || status == 429, "crafted name %s: %ld", name, status);
        rp_test_reply_free (&reply);
        crafted++;
    }
    cr_assert_eq (crafted, 24);
    //  Bob is still locked, wherever the next guess comes from
    long status = s_login (&server, "bob", "correct horse battery", "127.0.0.7", NULL, &reply);
    cr_expect_eq (status, 429, "bob's failures were forgotten: %ld %s", status, reply.body);
    rp_test_reply_free (&reply);
    rp_test_server_stop (&server);
}

Test (limits, one_address_does_not_lock_out_its_other_users, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-nat" });
    rp_test_reply_t reply;
    //  Eight people behind one address each mistype once
    for (int i = 0; i < 8; i++) {
        char name [32];
        snprintf (name, sizeof name, "person%d", i);
        cr_expect_eq (s_login (&server, name, "typo", NULL, NULL, &reply), 401, "person %d", i);
        rp_test_reply_free (&reply);
    }
    //  Alice, behind the same address, gets in
    long status = s_login (&server, "alice", "correct horse battery", NULL, NULL, &reply);
    cr_expect_eq (status, 200, "alice is locked out by others' typos: %ld %s", status, reply.body);
    rp_test_reply_free (&reply);
    //  One user's guesses from that address are still throttled
    for (int i = 0; i < 5; i++) {
        cr_expect_eq (s_login (&server, "bob", "guess", NULL, NULL, &reply), 401);
        rp_test_reply_free (&reply);
    }
    cr_expect_eq (s_login (&server, "bob", "correct horse battery", NULL, NULL, &reply), 429);
    char detail [512];
    s_detail (&reply, detail, sizeof detail);
    cr_expect (strstr (detail, "auth.login_failures"), "the 429 names the limit: %s", detail);
    cr_expect (rp_test_has_header (&reply, "Retry-After:"));
    rp_test_reply_free (&reply);
    rp_test_server_stop (&server);
}

//  N logins at once for names that do not exist, each from an address of
//  its own; how many were checked (401) and turned away (503)
static void
s_login_burst (rp_test_server_t *server, int round, int *checked, int *refused)
{
    enum { N = 32 };
    CURLM *multi = curl_multi_init ();
    CURL *easy [N];
    rp_test_reply_t replies [N];
    char bodies [N][128], sources [N][32], url [128];
    snprintf (url, sizeof url, "%s/api/v1/auth/login", server->base);
    const char *headers [] = { "Content-Type: application/json", NULL };
    for (int i = 0; i < N; i++) {
        snprintf (bodies [i], sizeof bodies [i], "{\"username\":\"nobody%d-%d\",\"password\":\"x\"}", round, i);
        snprintf (sources [i], sizeof sources [i], "127.0.%d.%d", 2 + round, i + 1);
        easy [i] = rp_test_http_prepare (&(rp_test_http_t) { .method = "POST", .url = url, .headers = headers,
                                                            .body = bodies [i], .len = strlen (bodies [i]),
                                                            .source = sources [i], .timeout_ms = 60000 },
                                         &replies [i]);
        curl_multi_add_handle (multi, easy [i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform (multi, &running);
        if (running)
            curl_multi_poll (multi, NULL, 0, 50, NULL);
    }
    CURLMsg *done;
    int left;
    CURLcode results [N];
    for (int i = 0; i < N; i++)
        results [i] = CURLE_GOT_NOTHING;
    while ((done = curl_multi_info_read (multi, &left)))
        for (int i = 0; i < N; i++)
            if (done->msg == CURLMSG_DONE && done->easy_handle == easy [i])
                results [i] = done->data.result;
    for (int i = 0; i < N; i++) {
        curl_multi_remove_handle (multi, easy [i]);
        long status = rp_test_http_finish (easy [i], results [i], &replies [i]);
        if (status == 401)
            (*checked)++;
        else
        if (status == 503) {
            (*refused)++;
            char detail [512];
            s_detail (&replies [i], detail, sizeof detail);
            cr_expect (strstr (detail, "auth.password_checks"), "the 503 names the limit: %s", detail);
            cr_expect (rp_test_has_header (&replies [i], "Retry-After:"));
        }
        else
            cr_expect_fail ("login %d: %ld %s", i, status, replies [i].body ? replies [i].body : "");
        rp_test_reply_free (&replies [i]);
    }
    curl_multi_cleanup (multi);
}

Test (limits, password_checks_are_bounded, .timeout = 180)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-scrypt" });
    //  Bursts of logins (each check a 16 MiB scrypt) until one finds every
    //  check busy: it is turned away at once, not queued on an HTTP thread
    int checked = 0, refused = 0;
    for (int round = 0; round < 4 && refused == 0; round++) {
        s_login_burst (&server, round, &checked, &refused);
        cr_log_info ("round %d: %d checked, %d answered 503", round + 1, checked, refused);
    }
    cr_expect_gt (refused, 0, "no login was turned away while every password check was busy");
    cr_expect_gt (checked, 0);
    rp_test_server_stop (&server);
}

Test (limits, behind_a_trusted_proxy, .timeout = 120)
{
    rp_test_server_t server;
    const char *env [] = { "RAPIDPHOTO_HTTP_TRUSTED_PROXIES=127.0.0.1", NULL };
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-proxy", .env = env });
    rp_test_reply_t reply;
    //  The proxy (127.0.0.1) says who the client is: the right-most address
    //  it did not add itself
    for (int i = 0; i < 5; i++) {
        cr_expect_eq (s_login (&server, "bob", "guess", NULL, "X-Forwarded-For: 127.0.3.1", &reply), 401);
        rp_test_reply_free (&reply);
    }
    cr_expect_eq (s_login (&server, "bob", "correct horse battery", NULL, "X-Forwarded-For: 127.0.3.1", &reply), 429);
    rp_test_reply_free (&reply);
    //  A client that adds an address of its own choosing is still itself
    cr_expect_eq (s_login (&server, "bob", "correct horse battery", NULL,
                           "X-Forwarded-For: 127.0.3.9, 127.0.3.1", &reply), 429);
    rp_test_reply_free (&reply);
    //  Another client behind the same proxy is not locked out
    long status = s_login (&server, "bob", "correct horse battery", NULL, "X-Forwarded-For: 127.0.3.2", &reply);
    cr_expect_eq (status, 200, "%ld %s", status, reply.body);
    rp_test_reply_free (&reply);
    //  From an address that is no proxy, X-Forwarded-For means nothing
    for (int i = 0; i < 5; i++) {
        char header [64];
        snprintf (header, sizeof header, "X-Forwarded-For: 127.0.4.%d", i + 1);
        cr_expect_eq (s_login (&server, "alice", "guess", "127.0.0.2", header, &reply), 401);
        rp_test_reply_free (&reply);
    }
    cr_expect_eq (s_login (&server, "alice", "correct horse battery", "127.0.0.2", "X-Forwarded-For: 127.0.4.9",
                           &reply), 429);
    rp_test_reply_free (&reply);
    rp_test_server_stop (&server);
}

//  ---------------------------------------------------------------------------
//  Readiness and metrics

//  GET path; its status, and how long it took into *ms.
static long
s_timed (rp_test_server_t *server, const char *path, const char *token, int64_t *ms, json_t **json)
{
    rp_test_reply_t reply;
    int64_t started = rp_clock_ms ();
    long status = rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply);
    *ms = rp_clock_ms () - started;
    if (json)
        *json = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    return status;
}

Test (limits, readiness_and_metrics_answer_from_state, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-ready" });
    rp_test_server_stop (&server);
    //  The broker and the gateway as processes of their own
    char broker_log [600];
    snprintf (broker_log, sizeof broker_log, "%s/broker.log", server.lib.dir);
    pid_t broker = rp_test_spawn ((char *[]) { "broker", NULL }, server.env, NULL, broker_log);
    server.pid = rp_test_spawn ((char *[]) { "gateway", NULL }, server.env, NULL, server.log);
    rp_test_server_answers (&server);
    int64_t ms = 0;
    bool ready = false;
    for (int i = 0; i < 100 && !ready; i++, usleep (100 * 1000))
        ready = s_timed (&server, "/readyz", NULL, &ms, NULL) == 200;
    cr_assert (ready, "the gateway is ready with its broker (log: %s)", server.log);
    //  The broker stops answering (its port still takes connections)
    kill (broker, SIGSTOP);
    int64_t slowest_ready = 0, slowest_metrics = 0;
    long status = 200;
    json_t *answer = NULL;
    for (int64_t end = rp_clock_ms () + 8000; rp_clock_ms () < end && status != 503; usleep (100 * 1000)) {
        json_decref (answer);
        status = s_timed (&server, "/readyz", NULL, &ms, &answer);
        slowest_ready = ms > slowest_ready ? ms : slowest_ready;
        cr_expect_eq (s_timed (&server, "/metrics", NULL, &ms, NULL), 200);
        slowest_metrics = ms > slowest_metrics ? ms : slowest_metrics;
    }
    cr_expect_eq (status, 503, "/readyz says unavailable while the broker does not answer");
    json_t *checks = json_object_get (answer, "checks");
    cr_expect_str_eq (json_string_value (json_object_get (checks, "broker")) ?: "", "down");
    cr_expect_str_eq (json_string_value (json_object_get (checks, "database")) ?: "", "ok");
    //  By name only: no endpoint, address or error text
    const char *name;
    json_t *value;
    json_object_foreach (checks, name, value)
        cr_expect (streq (json_string_value (value) ?: "", "ok") || streq (json_string_value (value) ?: "", "down"),
                   "/readyz says %s: %s", name, json_string_value (value));
    json_decref (answer);
    for (int i = 0; i < 10; i++) {
        s_timed (&server, "/readyz", NULL, &ms, NULL);
        slowest_ready = ms > slowest_ready ? ms : slowest_ready;
        s_timed (&server, "/metrics", NULL, &ms, NULL);
        slowest_metrics = ms > slowest_metrics ? ms : slowest_metrics;
    }
    cr_log_info ("broker stopped: slowest /readyz %lld ms, slowest /metrics %lld ms",
                 (long long) slowest_ready, (long long) slowest_metrics);
    cr_expect_lt (slowest_ready, 100, "/readyz took %lld ms", (long long) slowest_ready);
    cr_expect_lt (slowest_metrics, 100, "/metrics took %lld ms", (long long) slowest_metrics);
    //  The details are in the log, once
    cr_expect_gt (rp_test_count_in_file (server.log, "broker"), 0);
    //  And back
    kill (broker, SIGCONT);
    ready = false;
    for (int i = 0; i < 100 && !ready; i++, usleep (100 * 1000))
        ready = s_timed (&server, "/readyz", NULL, &ms, NULL) == 200;
    cr_expect (ready, "ready again once the broker answers");
    kill (broker, SIGTERM);
    cr_expect_eq (rp_test_wait (broker, 30000), 0);
    rp_test_server_stop (&server);
}

Test (limits, metrics_behind_a_token, .timeout = 60)
{
    rp_test_server_t server;
    const char *env [] = { "RAPIDPHOTO_METRICS_TOKEN=scrape-me-0123456789abcdef0123456789", NULL };
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-mtoken", .env = env });
    rp_test_reply_t reply;
    cr_expect_eq (rp_test_request (&server, "GET", "/metrics", NULL, NULL, NULL, 0, NULL, &reply), 401);
    cr_expect (!reply.body || !strstr (reply.body, "rapidphoto_"), "%s", reply.body);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "GET", "/metrics", "wrong", NULL, NULL, 0, NULL, &reply), 401);
    rp_test_reply_free (&reply);
    char *alice = rp_test_login (&server, "alice");
    cr_expect_eq (rp_test_request (&server, "GET", "/metrics", alice, NULL, NULL, 0, NULL, &reply), 401,
                  "a user's token is not the metrics token");
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "GET", "/metrics", "scrape-me-0123456789abcdef0123456789", NULL, NULL,
                                   0, NULL, &reply), 200);
    cr_expect (strstr (reply.body, "rapidphoto_up 1"), "%s", reply.body);
    cr_expect (!strstr (reply.body, server.lib.dir), "no paths in /metrics");
    rp_test_reply_free (&reply);
    //  Readiness and liveness stay open (probes carry no token)
    cr_expect_eq (rp_test_request (&server, "GET", "/healthz", NULL, NULL, NULL, 0, NULL, &reply), 200);
    rp_test_reply_free (&reply);
    free (alice);
    rp_test_server_stop (&server);
}

//  ---------------------------------------------------------------------------
//  Quotas

Test (limits, open_uploads_per_user, .timeout = 180)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-open" });
    char *alice = rp_test_login (&server, "alice");
    char *bob = rp_test_login (&server, "bob");
    const char *headers [] = { "Tus-Resumable: 1.0.0", "Upload-Length: 1000", NULL };
    rp_test_reply_t reply;
    char first [256] = "";
    //  The default: 100 unfinished uploads per user
    for (int i = 0; i < 100; i++) {
        long status = rp_test_request (&server, "POST", "/api/v1/tus", alice, headers, NULL, 0, NULL, &reply);
        cr_assert_eq (status, 201, "upload %d: %ld %s", i + 1, status, reply.body);
        if (i == 0)
            snprintf (first, sizeof first, "%s", rp_test_header_value (&reply, "Location"));
        rp_test_reply_free (&reply);
    }
    long status = rp_test_request (&server, "POST", "/api/v1/tus", alice, headers, NULL, 0, NULL, &reply);
    cr_expect_eq (status, 429, "upload 101: %ld %s", status, reply.body);
    char detail [512];
    s_detail (&reply, detail, sizeof detail);
    cr_expect (strstr (detail, "uploads.max_open_per_user"), "the 429 names the limit: %s", detail);
    cr_expect (rp_test_has_header (&reply, "Tus-Resumable:"));
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "POST", "/api/v1/tus", bob, headers, NULL, 0, NULL, &reply), 201,
                  "another user's upload");
    rp_test_reply_free (&reply);
    //  Ending one makes room
    const char *version [] = { "Tus-Resumable: 1.0.0", NULL };
    cr_expect_eq (rp_test_request (&server, "DELETE", first, alice, version, NULL, 0, NULL, &reply), 204, "%s", first);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "POST", "/api/v1/tus", alice, headers, NULL, 0, NULL, &reply), 201);
    rp_test_reply_free (&reply);
    free (alice);
    free (bob);
    rp_test_server_stop (&server);
}

Test (limits, multipart_bytes_per_request, .timeout = 120)
{
    rp_test_server_t server;
    const char *env [] = { "RAPIDPHOTO_LIMITS_MAX_REQUEST_BYTES=1M", NULL };
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-multi", .env = env });
    char *alice = rp_test_login (&server, "alice");
    //  Three files of 600 KB: each within limits.max_upload_bytes, together over
    char paths [3][600];
    for (int i = 0; i < 3; i++) {
        char name [32], photo [600];
        snprintf (name, sizeof name, "m%d.jpg", i);
        rp_test_server_photo (&server, name, 20 + i, photo, sizeof photo);
        size_t len = 0;
        char *bytes = rp_test_read_file (photo, &len);
        snprintf (paths [i], sizeof paths [i], "%s/big%d.jpg", server.lib.dir, i);
        FILE *file = fopen (paths [i], "wb");
        fwrite (bytes, 1, len, file);
        char *pad = calloc (1, 600000);
        fwrite (pad, 1, 600000, file);
        free (pad);
        fclose (file);
        free (bytes);
    }
    for (int chunked = 0; chunked < 2; chunked++) {
        curl_mime *form = curl_mime_init (NULL);
        for (int i = 0; i < 3; i++) {
            curl_mimepart *part = curl_mime_addpart (form);
            curl_mime_name (part, "file");
            curl_mime_filedata (part, paths [i]);
        }
        //  Declared (413 before the body), or streamed without a length.
        //  The declared one waits for the go-ahead, as curl does for a
        //  body over 1 MiB: answered before the body, a client that sends
        //  it anyway may meet the closed connection's reset before it
        //  reads the 413 (seen under load), which is TCP, not the limit
        const char *headers [] = { chunked ? "Transfer-Encoding: chunked" : "Expect: 100-continue", NULL };
        rp_test_reply_t reply;
        long status = rp_test_request (&server, "POST", "/api/v1/photos", alice, headers, NULL, 0, form, &reply);
        curl_mime_free (form);
        cr_expect_eq (status, 413, "%s: %ld %s", chunked ? "chunked" : "declared", status, reply.body);
        char detail [512];
        s_detail (&reply, detail, sizeof detail);
        cr_expect (strstr (detail, "limits.max_request_bytes"), "the 413 names the limit: %s", detail);
        rp_test_reply_free (&reply);
    }
    cr_expect_eq (rp_test_photo_rows (&server), 0);
    cr_expect_eq (rp_test_library_tmp_files (&server.lib), 0);
    free (alice);
    rp_test_server_stop (&server);
}

Test (limits, connections_per_address, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-conns" });
    char *alice = rp_test_login (&server, "alice");
    //  The default: 256 connections per client address; these say nothing
    enum { LIMIT = 256 };
    int fds [LIMIT];
    for (int i = 0; i < LIMIT; i++)
        fds [i] = s_connect (&server, "127.0.5.1");
    usleep (300 * 1000);
    char url [128];
    snprintf (url, sizeof url, "%s/api/v1/photos", server.base);
    rp_test_reply_t reply;
    long status = rp_test_http (&(rp_test_http_t) { .url = url, .token = alice, .source = "127.0.5.1",
                                                    .timeout_ms = 10000 }, &reply);
    cr_expect_eq (status, 429, "connection %d from one address: %ld %s", LIMIT + 1, status, reply.body);
    char detail [512];
    s_detail (&reply, detail, sizeof detail);
    cr_expect (strstr (detail, "http.max_connections_per_address"), "the 429 names the limit: %s", detail);
    rp_test_reply_free (&reply);
    //  Other addresses are served meanwhile
    cr_expect_eq (rp_test_http (&(rp_test_http_t) { .url = url, .token = alice, .source = "127.0.5.2" }, &reply), 200);
    rp_test_reply_free (&reply);
    for (int i = 0; i < LIMIT; i++)
        close (fds [i]);
    usleep (500 * 1000);
    cr_expect_eq (rp_test_http (&(rp_test_http_t) { .url = url, .token = alice, .source = "127.0.5.1" }, &reply), 200,
                  "once its connections are closed");
    rp_test_reply_free (&reply);
    free (alice);
    rp_test_server_stop (&server);
}

//  ---------------------------------------------------------------------------
//  Tokens

Test (limits, a_short_signing_secret_is_refused, .timeout = 60)
{
    rp_test_library_t lib;
    rp_test_library_init (&lib, "lim-secret");
    char listen [64], log [400];
    snprintf (listen, sizeof listen, "RAPIDPHOTO_HTTP_LISTEN=127.0.0.1:%d", rp_test_free_port ());
    snprintf (log, sizeof log, "%s/serve.log", lib.dir);
    char *env [] = { lib.env [0], lib.env [1], lib.env [2], listen,
                     "RAPIDPHOTO_AUTH_JWT_SECRET=only-31-bytes-long-0123456789ab", NULL };
    pid_t pid = rp_test_spawn ((char *[]) { "serve", NULL }, env, NULL, log);
    int status = rp_test_wait (pid, 15000);
    if (status == -1) {
        kill (pid, SIGKILL);
        rp_test_wait (pid, 5000);
    }
    cr_expect_eq (status, 1, "serve with a 31-byte auth.jwt_secret exits 1 (log: %s)", log);
    cr_expect_gt (rp_test_count_in_file (log, "auth.jwt_secret"), 0, "the refusal names the setting");
    //  `rapidphoto token` refuses it too
    char command [1024];
    snprintf (command, sizeof command, "%s RAPIDPHOTO_AUTH_JWT_SECRET=short %s token alice 2>/dev/null",
              lib.env_dir, rp_test_binary ());
    cr_expect_neq (rp_test_run (command, NULL), 0);
}

Test (limits, tokens_end_with_a_password_change, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-passwd" });
    char *alice = rp_test_login (&server, "alice");
    char *bob = rp_test_login (&server, "bob");
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (&server, "GET", "/api/v1/photos", alice, NULL, NULL, 0, NULL, &reply), 200);
    rp_test_reply_free (&reply);
    char command [4096];
    snprintf (command, sizeof command,
              "echo 'a new password entirely' | %s RAPIDPHOTO_DB_URL='%s' %s user passwd alice --password-stdin",
              server.lib.env_dir, server.db_url, rp_test_binary ());
    cr_assert_eq (rp_test_run (command, NULL), 0);
    long status = 200;
    int64_t changed = rp_clock_ms ();
    while (status == 200 && rp_clock_ms () - changed < 15000) {
        status = rp_test_request (&server, "GET", "/api/v1/photos", alice, NULL, NULL, 0, NULL, &reply);
        if (status == 401) {
            char detail [512];
            s_detail (&reply, detail, sizeof detail);
            cr_expect (strstr (detail, "log in again"), "%s", detail);
        }
        rp_test_reply_free (&reply);
        if (status == 200)
            usleep (200 * 1000);
    }
    cr_expect_eq (status, 401, "alice's old token still works 15 s after `user passwd`");
    cr_log_info ("the old token stopped working %lld ms after the change", (long long) (rp_clock_ms () - changed));
    //  Uploads check it too, before any byte
    cr_expect_eq (s_upload (&server, alice, 3, NULL, &reply), 401);
    rp_test_reply_free (&reply);
    //  Bob's token is untouched; alice's new password gives a working token
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos", bob, NULL, NULL, 0, NULL, &reply), 200);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_login (&server, "alice", "a new password entirely", NULL, NULL, &reply), 200, "%s", reply.body);
    json_t *json = rp_test_reply_json (&reply);
    char *fresh = strdup (json_string_value (json_object_get (json, "token")));
    json_decref (json);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos", fresh, NULL, NULL, 0, NULL, &reply), 200);
    rp_test_reply_free (&reply);
    free (fresh);
    free (alice);
    free (bob);
    rp_test_server_stop (&server);
}

//  ---------------------------------------------------------------------------
//  What clients send: whole or refused

Test (limits, tags_are_taken_whole_or_refused, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-tags" });
    char *alice = rp_test_login (&server, "alice");
    //  80 tags of 60 bytes: about 4.9 KB, every one of them valid
    enum { TAGS = 80 };
    char *header = malloc (16 + TAGS * 61);
    size_t at = (size_t) snprintf (header, 16, "X-Tags: ");
    for (int i = 0; i < TAGS; i++)
        at += (size_t) snprintf (header + at, 64, "%s%02d%058d", i ? "," : "", i, 0);
    const char *more [] = { header, NULL };
    rp_test_reply_t reply;
    cr_assert_eq (s_upload (&server, alice, 30, more, &reply), 202, "%s", reply.body);
    char id [RP_ID_MAX], path [128];
    s_first_id (&reply, id);
    rp_test_reply_free (&reply);
    snprintf (path, sizeof path, "/api/v1/photos/%s", id);
    cr_assert_eq (rp_test_request (&server, "GET", path, alice, NULL, NULL, 0, NULL, &reply), 200);
    json_t *photo = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    json_t *tags = json_object_get (photo, "tags");
    cr_expect_eq (json_array_size (tags), TAGS, "X-Tags of %zu bytes kept %zu tags", at, json_array_size (tags));
    size_t i;
    json_t *tag;
    json_array_foreach (tags, i, tag)
        cr_expect_eq (strlen (json_string_value (tag)), 60, "a tag was cut: %s", json_string_value (tag));
    json_decref (photo);
    free (header);
    //  Past any list of tags a photo may have: 400, naming the header
    char *huge = malloc (12000);
    memcpy (huge, "X-Tags: ", 8);
    memset (huge + 8, 'a', 10000);
    for (int k = 0; k < 10000; k += 50)
        huge [8 + k] = ',';
    huge [10008] = 0;
    const char *big [] = { huge, NULL };
    cr_expect_eq (s_upload (&server, alice, 31, big, &reply), 400, "%s", reply.body);
    char detail [512];
    s_detail (&reply, detail, sizeof detail);
    cr_expect (strstr (detail, "X-Tags"), "the 400 names X-Tags: %s", detail);
    rp_test_reply_free (&reply);
    free (huge);
    cr_expect_eq (rp_test_photo_rows (&server), 1);
    free (alice);
    rp_test_server_stop (&server);
}

Test (limits, repeated_multipart_fields_are_refused, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-fields" });
    char *alice = rp_test_login (&server, "alice");
    char photo [600];
    rp_test_server_photo (&server, "f.jpg", 40, photo, sizeof photo);
    static const char *const fields [] = { "tags", "batch_id" };
    static const char *const values [2][2] = { { "cats", "dogs" }, { "batch-a", "batch-b" } };
    for (int f = 0; f < 2; f++) {
        curl_mime *form = curl_mime_init (NULL);
        curl_mimepart *part = curl_mime_addpart (form);
        curl_mime_name (part, "file");
        curl_mime_filedata (part, photo);
        for (int k = 0; k < 2; k++) {
            part = curl_mime_addpart (form);
            curl_mime_name (part, fields [f]);
            curl_mime_data (part, values [f][k], CURL_ZERO_TERMINATED);
        }
        rp_test_reply_t reply;
        long status = rp_test_request (&server, "POST", "/api/v1/photos", alice, NULL, NULL, 0, form, &reply);
        curl_mime_free (form);
        cr_expect_eq (status, 400, "two %s fields: %ld %s", fields [f], status, reply.body);
        char detail [512];
        s_detail (&reply, detail, sizeof detail);
        cr_expect (strstr (detail, fields [f]), "the 400 names the field: %s", detail);
        rp_test_reply_free (&reply);
    }
    cr_expect_eq (rp_test_photo_rows (&server), 0);
    cr_expect_eq (rp_test_library_tmp_files (&server.lib), 0);
    free (alice);
    rp_test_server_stop (&server);
}

Test (limits, log_lines_cannot_be_forged, .timeout = 60)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-log" });
    rp_test_reply_t reply;
    //  A user name with a terminal escape, a new line and a forged line after it
    cr_expect_eq (s_login (&server, "mallory\\u001b[2J\\nFORGED INFO  gateway admin logged in", "x", NULL, NULL,
                           &reply), 401);
    rp_test_reply_free (&reply);
    rp_test_server_stop (&server);
    size_t len = 0;
    char *log = rp_test_read_file (server.log, &len);
    cr_assert_not_null (log);
    cr_expect (!memchr (log, 0x1b, len), "the log holds a raw escape character");
    const char *line = strstr (log, "mallory");
    cr_assert_not_null (line, "the failed login is logged");
    cr_expect (strstr (line, "mallory\\x1b[2J\\nFORGED"), "control characters are escaped where they were: %.200s",
               line);
    for (const char *at = log; (at = strstr (at, "FORGED")); at++)
        cr_expect (at > log && at [-1] != '\n', "a line of the log starts with the forged text");
    free (log);
}

Test (limits, unknown_methods_share_one_label, .timeout = 60)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "lim-methods" });
    char *alice = rp_test_login (&server, "alice");
    //  Seventy made-up methods, each once
    for (int i = 0; i < 70; i++) {
        int fd = s_connect (&server, NULL);
        char request [128];
        int n = snprintf (request, sizeof request, "BREW%02d /api/v1/photos HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n", i);
        cr_assert_eq (write (fd, request, (size_t) n), n);
        char answer [512];
        struct timeval timeout = { .tv_sec = 5 };
        setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        cr_expect_gt (read (fd, answer, sizeof answer), 0);
        close (fd);
    }
    rp_test_reply_t reply;
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos", alice, NULL, NULL, 0, NULL, &reply), 200);
    rp_test_reply_free (&reply);
    //  (a request is counted once it is complete, which may be just after its answer)
    for (int i = 0; i < 20; i++) {
        cr_assert_eq (rp_test_request (&server, "GET", "/metrics", NULL, NULL, NULL, 0, NULL, &reply), 200);
        if (strstr (reply.body, "route=\"GET list\",status=\"200\""))
            break;
        rp_test_reply_free (&reply);
        usleep (100 * 1000);
    }
    cr_expect (!strstr (reply.body, "BREW"), "a method the server does not know became a label");
    cr_expect (strstr (reply.body, "rapidphoto_http_requests_total{route=\"GET list\",status=\"200\"}"),
               "requests after the made-up ones are still counted by route: %s", reply.body);
    rp_test_reply_free (&reply);
    free (alice);
    rp_test_server_stop (&server);
}
