/*  tests/support/server.h: a real `rapidphoto serve` for a test, and a small
    libcurl client to talk to it (tests/test_gateway.c, tests/test_tus.c).

    Each server runs the binary on free ports with a fresh data folder
    (SQLite, or a fresh PostgreSQL schema), with users alice and bob whose
    password is "correct horse battery".
*/
#ifndef RP_TEST_SERVER_H
#define RP_TEST_SERVER_H

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/support/library.h"

#define RP_TEST_SERVER_ENV_MAX 24

typedef struct {
    rp_test_library_t lib;
    pid_t pid;
    int port;
    char base [64];
    char env_listen [64];
    char env_limit [64];
    char env_extra [2][256];        //  more settings for serve (rp_test_server_start_with)
    char db_url [2048];             //  what the server uses
    char env_db [2100];
    char log [600];
    //  Any number of settings more (rp_test_server_start_env), "" after the last
    char env_more [RP_TEST_SERVER_ENV_MAX][512];
    //  What serve is started with: lib.env's settings, the extras, env_more
    char *env [RP_TEST_SERVER_ENV_MAX + 12];
} rp_test_server_t;

//  A fresh PostgreSQL schema for this test, as tests/test_db.c makes them;
//  skips the test when RP_TEST_PG_URL is unset.
void rp_test_pg_url (const char *name, char *url, size_t size);
//  Start serve on a fresh library (SQLite, or PostgreSQL when pg), with up
//  to two more settings ("RAPIDPHOTO_...=value", may be NULL).
void rp_test_server_start (rp_test_server_t *server, const char *name);
void rp_test_server_start_on (rp_test_server_t *server, const char *name, bool pg);
void rp_test_server_start_with (rp_test_server_t *server, const char *name, bool pg,
                                const char *extra1, const char *extra2);
//  The same with any number of settings (NULL-terminated "KEY=value" list, at
//  most RP_TEST_SERVER_ENV_MAX, may be NULL): RAPIDPHOTO_* ones and others the
//  engine reads, such as AWS_*. They are copied, and kept for
//  rp_test_server_launch and the rp_test_server_share* copies.
void rp_test_server_start_env (rp_test_server_t *server, const char *name, bool pg,
                               const char *const env []);
//  Start (again: after a kill) the server's process; returns once /healthz answers.
void rp_test_server_launch (rp_test_server_t *server);
//  A second engine on the first one's data folder and database, on ports of its own.
void rp_test_server_share (rp_test_server_t *server, const rp_test_server_t *first);
//  A second engine on the first one's database and settings, with a data
//  folder of its own (named after name), on ports of its own: two instances
//  of one deployment, each with its local cache, as with storage.backend =
//  s3. Each makes its own JWT secret in its folder unless the settings name
//  one, so log in on the engine you talk to.
void rp_test_server_share_db (rp_test_server_t *server, const rp_test_server_t *first, const char *name);
//  SIGTERM and expect a clean exit.
void rp_test_server_stop (rp_test_server_t *server);
int rp_test_server_user_add (rp_test_server_t *server, const char *name);
//  A distinct small JPEG at <data dir>/<name>.
void rp_test_server_photo (rp_test_server_t *server, const char *name, int variant, char *path, size_t size);
//  Photo rows in the server's database, all statuses.
int64_t rp_test_photo_rows (rp_test_server_t *server);

typedef struct {
    long status;
    char *body;
    size_t len;
    char headers [8192];
    size_t hlen;
} rp_test_reply_t;

void rp_test_reply_free (rp_test_reply_t *reply);
json_t *rp_test_reply_json (const rp_test_reply_t *reply);
bool rp_test_has_header (const rp_test_reply_t *reply, const char *needle);
//  A response header's value (a static buffer: copy it before the next call), or NULL.
const char *rp_test_header_value (const rp_test_reply_t *reply, const char *name);
//  One request. headers: NULL-terminated "Name: value" list or NULL. form:
//  a curl_mime for multipart, or NULL. body: raw body or NULL.
CURL *rp_test_easy (rp_test_server_t *server, const char *method, const char *path, const char *token,
                    const char *const *headers, const void *body, size_t len, curl_mime *form,
                    rp_test_reply_t *reply, struct curl_slist **list_p);
long rp_test_request (rp_test_server_t *server, const char *method, const char *path, const char *token,
                      const char *const *headers, const void *body, size_t len, curl_mime *form,
                      rp_test_reply_t *reply);
long rp_test_json_request (rp_test_server_t *server, const char *method, const char *path,
                           const char *token, const char *json, rp_test_reply_t *reply);
//  Log in (password above); the token (caller frees).
char *rp_test_login (rp_test_server_t *server, const char *user);
char *rp_test_read_file (const char *path, size_t *len);
//  Poll a photo until complete or failed; its final status ("timeout"), caller frees.
char *rp_test_wait_final (rp_test_server_t *server, const char *token, const char *id, int timeout_ms);

#endif
