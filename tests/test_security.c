/*  tests/test_security.c: the broker's ports, as the real binary opens them.

    `broker` and `serve` refuse to listen with tcp beyond loopback without
    CURVE keys, unless the network is declared trusted (then they say so,
    loudly, at every start). And on `serve`'s own backend as it runs by
    default (loopback, no keys), a peer that breaks every rule of the
    worker protocol changes nothing: the uploads that follow complete, and
    the process lives on (the suites also run in an ASan build).
*/
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>

#include "tests/support/hostile.h"
#include "tests/support/library.h"
#include "tests/support/server.h"
#include "tests/support/testdata.h"

static char *
s_read_log (const char *path)
{
    char command [700], *text = NULL;
    snprintf (command, sizeof command, "cat %s", path);
    rp_test_run (command, &text);
    return text;
}

//  Run a command of the binary with lib's environment and more settings,
//  its log to dir/name.log; wait at most timeout_ms. Exit status, or -1
//  when it is still running (then *pid is it).
static int
s_run (rp_test_library_t *lib, const char *command, char *const more [], const char *name,
       int timeout_ms, pid_t *pid, char *log, size_t logsize)
{
    char *env [16];
    int n = 0;
    for (int i = 0; lib->env [i] && n < 8; i++)
        env [n++] = lib->env [i];
    for (int i = 0; more [i] && n < 15; i++)
        env [n++] = more [i];
    env [n] = NULL;
    snprintf (log, logsize, "%s/%s.log", lib->dir, name);
    *pid = rp_test_spawn ((char *[]) { (char *) command, NULL }, env, NULL, log);
    cr_assert_gt (*pid, 0);
    return rp_test_wait (*pid, timeout_ms);
}

//  Wait until the log holds needle; false after timeout_ms
static bool
s_log_says (const char *log, const char *needle, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (rp_test_count_in_file (log, needle) > 0)
            return true;
        zclock_sleep (50);
    }
    return false;
}

Test (security, an_open_port_needs_keys_or_a_declared_trusted_network, .timeout = 120)
{
    rp_test_library_t lib;
    rp_test_library_init (&lib, "open-port");
    char open_backend [96], endpoint [64], listen [64];
    snprintf (endpoint, sizeof endpoint, "tcp://0.0.0.0:%d", rp_test_free_port ());
    snprintf (open_backend, sizeof open_backend, "RAPIDPHOTO_BROKER_BACKEND=%s", endpoint);
    snprintf (listen, sizeof listen, "RAPIDPHOTO_HTTP_LISTEN=127.0.0.1:%d", rp_test_free_port ());
    char log [600];
    pid_t pid;

    //  No keys, no trust: both refuse, exit 1, one line naming the port and
    //  the settings
    static const char *commands [] = { "broker", "serve" };
    for (int i = 0; i < 2; i++) {
        int status = s_run (&lib, commands [i], (char *[]) { open_backend, listen, NULL }, commands [i],
                            30000, &pid, log, sizeof log);
        char *text = s_read_log (log);
        cr_assert_eq (status, 1, "%s exited %d:\n%s", commands [i], status, text);
        cr_assert_eq (rp_test_count_in_file (log, "refusing to listen"), 1, "%s", text);
        cr_assert_eq (rp_test_count_in_file (log, endpoint), 1, "the line names %s:\n%s", endpoint, text);
        cr_assert_eq (rp_test_count_in_file (log, "broker.curve_secret_key"), 1, "%s", text);
        cr_assert_eq (rp_test_count_in_file (log, "listening on"), 0, "nothing was bound:\n%s", text);
        if (streq (commands [i], "broker"))         //  every line holds ""
            cr_assert_eq (rp_test_count_in_file (log, ""), 1, "one line:\n%s", text);
        free (text);
    }

    //  Declared trusted: it starts, with a WARN line at start
    char *trusted [] = { open_backend, listen, "RAPIDPHOTO_BROKER_TRUST_NETWORK=yes", NULL };
    for (int i = 0; i < 2; i++) {
        char name [32];
        snprintf (name, sizeof name, "%s-trusted", commands [i]);
        cr_assert_eq (s_run (&lib, commands [i], trusted, name, 0, &pid, log, sizeof log), -1);
        cr_assert (s_log_says (log, "WITHOUT CURVE (broker.trust_network = yes)", 20000),
                   "no warning in %s", log);
        cr_assert_eq (rp_test_count_in_file (log, "WARN"), 1, "see %s", log);
        cr_assert (s_log_says (log, endpoint, 100));
        kill (pid, SIGTERM);
        cr_assert_eq (rp_test_wait (pid, 15000), 0, "see %s", log);
    }

    //  With keys it listens anywhere: CURVE
    char key_env [2][128], secret [41], public_key [41];
    cr_assert_eq (zmq_curve_keypair (public_key, secret), 0);
    snprintf (key_env [0], sizeof key_env [0], "RAPIDPHOTO_BROKER_CURVE_SECRET_KEY=%s", secret);
    snprintf (key_env [1], sizeof key_env [1], "RAPIDPHOTO_BROKER_CURVE_CLIENTS=%s", public_key);
    cr_assert_eq (s_run (&lib, "broker", (char *[]) { open_backend, key_env [0], key_env [1], NULL },
                         "broker-keys", 0, &pid, log, sizeof log), -1);
    cr_assert (s_log_says (log, "CURVE required on", 10000), "see %s", log);
    cr_assert_eq (rp_test_count_in_file (log, "WARN"), 0, "see %s", log);
    kill (pid, SIGTERM);
    cr_assert_eq (rp_test_wait (pid, 10000), 0);

    //  Loopback without keys, the default: said once, at INFO
    cr_assert_eq (s_run (&lib, "broker", (char *[]) { NULL }, "broker-loopback", 0, &pid, log, sizeof log), -1);
    cr_assert (s_log_says (log, "take peers without keys: loopback only", 10000), "see %s", log);
    cr_assert_eq (rp_test_count_in_file (log, "loopback only"), 1);
    kill (pid, SIGTERM);
    cr_assert_eq (rp_test_wait (pid, 10000), 0);
}

Test (security, a_hostile_peer_on_serves_backend_leaves_uploads_working, .timeout = 240)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) {
        .name = "hostile", .env = (const char *const []) { "RAPIDPHOTO_BROKER_HEARTBEAT_MS=100", NULL } });
    const char *backend = strchr (server.lib.env_backend, '=') + 1;
    char *token = rp_test_login (&server, "alice");

    zsock_t *peer = rp_test_hostile_peer_paced (backend, NULL, 100);
    zclock_sleep (1000);                //  silent since: dropped after 300 ms

    //  More photos than the engine has resize workers, so that every idle
    //  entry of the pool is taken
    enum { N = 6 };
    CURL *curl = curl_easy_init ();
    curl_mime *form = curl_mime_init (curl);
    for (int i = 0; i < N; i++) {
        char name [32], path [600];
        snprintf (name, sizeof name, "after%d.jpg", i);
        rp_test_server_photo (&server, name, 60 + i, path, sizeof path);
        curl_mimepart *part = curl_mime_addpart (form);
        curl_mime_name (part, "file");
        curl_mime_filedata (part, path);
    }
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, NULL, NULL, 0, form, &reply),
                  202, "%s", reply.body);
    curl_mime_free (form);
    curl_easy_cleanup (curl);
    json_t *answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    json_t *photos = json_object_get (answer, "photos");
    cr_assert_eq (json_array_size (photos), N);
    for (int i = 0; i < N; i++) {
        const char *id = json_string_value (json_object_get (json_array_get (photos, (size_t) i), "id"));
        char *status = rp_test_wait_final (&server, token, id, 60000);
        cr_assert_str_eq (status, "complete", "photo %d after the hostile peer: %s (see %s)", i, status,
                          server.log);
        free (status);
    }
    json_decref (answer);
    cr_assert_eq (kill (server.pid, 0), 0, "serve died (see %s)", server.log);

    //  What the broker made of it, in its log: each rule broken was seen
    //  and dropped; the oversized frame never reached the decoder
    cr_assert_eq (rp_test_count_in_file (server.log, "AddressSanitizer"), 0, "see %s", server.log);
    cr_assert_geq (rp_test_count_in_file (server.log, "from worker=hostile, which holds no job"), 2);
    cr_assert_geq (rp_test_count_in_file (server.log, "dropped READY from worker=hostile"), 1);
    cr_assert_eq (rp_test_count_in_file (server.log, "byte limit"), 0, "the big frame was buffered");
    zsock_destroy (&peer);
    free (token);
    rp_test_server_stop (&server);
}
