/*  tests/support/server.h: a real `rapidphoto serve` for a test
    (tests/test_gateway.c, tests/test_tus.c, tests/test_aws_bridges.c), or
    one of the roles a deployment splits it into, `gateway` and `pipeline`
    (tests/test_ecs.c), and requests to it through the suites' HTTP client
    (tests/support/http.h).

    A server runs the binary on free ports; by default on a fresh data
    folder with SQLite in it (or a fresh PostgreSQL schema), with users
    alice and bob whose password is "correct horse battery":

        rp_test_server_t server;
        rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "gw-login" });
        char *token = rp_test_login (&server, "alice");
        rp_test_reply_t reply;
        rp_test_request (&server, "GET", "/api/v1/photos", token, NULL, NULL, 0, NULL, &reply);
*/
#ifndef RP_TEST_SERVER_H
#define RP_TEST_SERVER_H

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/support/http.h"
#include "tests/support/library.h"
#include "tests/support/pg.h"

#define RP_TEST_SERVER_ENV_MAX 24

//  How to start a server; zero for a default
typedef struct {
    const char *name;               //  names the data folder (/tmp/rp-test-<name>-*) and
                                    //  the schema (test_gw_<name>: then letters, digits, '_')
    bool pg;                        //  a fresh PostgreSQL schema (skips without
                                    //  RP_TEST_PG_URL), else SQLite in the data folder
    //  A second engine of one deployment: this existing database instead
    //  (with its users), and this existing data folder (with its JWT
    //  secret) or a fresh one (which makes its own secret unless the
    //  settings name one: log in on the engine you talk to)
    const char *db_url;
    const char *data_dir;
    //  More settings, "KEY=value", NULL-terminated, at most
    //  RP_TEST_SERVER_ENV_MAX: RAPIDPHOTO_* ones and others the engine
    //  reads, such as AWS_*. Copied.
    const char *const *env;
    //  The command: "serve" when NULL, or "gateway" or "pipeline" (which
    //  answers /healthz on its http.listen too)
    const char *command;
    //  Another `rapidphoto` than the build's (RP_BINARY): an older release
    //  on the same library (tests/rollback). Copied.
    const char *binary;
} rp_test_server_opts_t;

typedef struct {
    rp_test_library_t lib;          //  the data folder (lib.dir) and broker ports
    char binary [1024];             //  the rapidphoto it runs
    pid_t pid;                      //  serve, while it runs
    char command [16];              //  what runs: serve, gateway, pipeline
    int port;                       //  its HTTP port
    char base [64];                 //  http://127.0.0.1:<port>
    char db_url [2048];             //  its database
    char log [600];                 //  serve's output
    char env_listen [64];
    char env_limit [64];
    char env_db [2100];
    char env_more [RP_TEST_SERVER_ENV_MAX][512];
    //  Every setting serve is started with (the data folder, broker ports,
    //  listen address, upload limit, database, then opts.env),
    //  NULL-terminated: for other commands on the same library too
    char *env [RP_TEST_SERVER_ENV_MAX + 8];
} rp_test_server_t;

//  Start serve (or opts->command) as opts say; returns once /healthz answers.
void rp_test_server_start (rp_test_server_t *server, const rp_test_server_opts_t *opts);
//  Start (again: after a kill) the server's process; returns once /healthz answers.
void rp_test_server_launch (rp_test_server_t *server);
//  Wait (10 s at most) until something answers GET /healthz on the server's port.
void rp_test_server_answers (rp_test_server_t *server);
//  SIGTERM and expect a clean exit.
void rp_test_server_stop (rp_test_server_t *server);
//  Run `rapidphoto user add NAME` on the server's database; the exit status.
int rp_test_server_user_add (rp_test_server_t *server, const char *name);
//  A distinct small JPEG at <data dir>/<name>.
void rp_test_server_photo (rp_test_server_t *server, const char *name, int variant, char *path, size_t size);
//  Photo rows in the server's database, all statuses.
int64_t rp_test_photo_rows (rp_test_server_t *server);

//  One request to the server (rp_test_http on <base><path>). headers:
//  "Name: value", NULL-terminated, or NULL. form: a curl_mime for
//  multipart, or NULL. body: raw body or NULL.
long rp_test_request (rp_test_server_t *server, const char *method, const char *path, const char *token,
                      const char *const *headers, const void *body, size_t len, curl_mime *form,
                      rp_test_reply_t *reply);
long rp_test_json_request (rp_test_server_t *server, const char *method, const char *path,
                           const char *token, const char *json, rp_test_reply_t *reply);
//  Log in (password above); the token (caller frees).
char *rp_test_login (rp_test_server_t *server, const char *user);
//  Poll a photo until complete or failed; its final status ("timeout"), caller frees.
char *rp_test_wait_final (rp_test_server_t *server, const char *token, const char *id, int timeout_ms);

#endif
