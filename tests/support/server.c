/*  tests/support/server.c: see server.h. */
#include "tests/support/server.h"
#include "tests/support/testdata.h"

#include <czmq.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
rp_test_server_user_add (rp_test_server_t *server, const char *name)
{
    char command [4096];
    snprintf (command, sizeof command,
              "echo 'correct horse battery' | %s RAPIDPHOTO_DB_URL='%s' %s user add %s --password-stdin >/dev/null",
              server->lib.env_dir, server->db_url, rp_test_binary (), name);
    return rp_test_run (command, NULL);
}

void
rp_test_server_start (rp_test_server_t *server, const rp_test_server_opts_t *opts)
{
    memset (server, 0, sizeof *server);
    cr_assert_not_null (opts->name);
    const char *binary = opts->binary ? opts->binary : rp_test_binary ();
    cr_assert_lt (strlen (binary), sizeof server->binary, "binary path too long: %s", binary);
    snprintf (server->binary, sizeof server->binary, "%s", binary);
    //  The data folder: a fresh one, or the one named
    bool fresh = !opts->data_dir;
    if (fresh)
        rp_test_library_init (&server->lib, opts->name);
    else
        rp_test_library_on (&server->lib, opts->data_dir);
    //  The database: the one named, a fresh schema, or SQLite in the folder
    if (opts->db_url)
        snprintf (server->db_url, sizeof server->db_url, "%s", opts->db_url);
    else
    if (opts->pg) {
        char schema [256];
        snprintf (schema, sizeof schema, "gw_%s", opts->name);
        rp_test_pg_schema (schema, server->db_url, sizeof server->db_url);
    }
    else
        snprintf (server->db_url, sizeof server->db_url, "%s", server->lib.url);
    if (!opts->db_url && fresh) {
        cr_assert_eq (rp_test_server_user_add (server, "alice"), 0);
        cr_assert_eq (rp_test_server_user_add (server, "bob"), 0);
    }
    snprintf (server->command, sizeof server->command, "%s", opts->command ? opts->command : "serve");
    server->port = rp_test_free_port ();
    snprintf (server->base, sizeof server->base, "http://127.0.0.1:%d", server->port);
    if (fresh)
        snprintf (server->log, sizeof server->log, "%s/%s.log", server->lib.dir, server->command);
    else
        snprintf (server->log, sizeof server->log, "%s/%s-%d.log", server->lib.dir, server->command, server->port);

    //  Every setting, into env
    snprintf (server->env_listen, sizeof server->env_listen, "RAPIDPHOTO_HTTP_LISTEN=127.0.0.1:%d", server->port);
    //  Small enough that the size tests are quick; big enough for any test photo
    snprintf (server->env_limit, sizeof server->env_limit, "RAPIDPHOTO_LIMITS_MAX_UPLOAD_BYTES=%d", 8 << 20);
    snprintf (server->env_db, sizeof server->env_db, "RAPIDPHOTO_DB_URL=%s", server->db_url);
    size_t n = 0;
    for (size_t i = 0; i < 3; i++)
        server->env [n++] = server->lib.env [i];        //  data folder, broker ports
    server->env [n++] = server->env_listen;
    server->env [n++] = server->env_limit;
    server->env [n++] = server->env_db;
    for (size_t i = 0; opts->env && opts->env [i]; i++) {
        cr_assert_lt (i, (size_t) RP_TEST_SERVER_ENV_MAX, "more than %d settings for serve",
                      RP_TEST_SERVER_ENV_MAX);
        cr_assert_lt (strlen (opts->env [i]), sizeof server->env_more [i], "setting too long: %s", opts->env [i]);
        snprintf (server->env_more [i], sizeof server->env_more [i], "%s", opts->env [i]);
        server->env [n++] = server->env_more [i];
    }
    server->env [n] = NULL;
    rp_test_server_launch (server);
}

void
rp_test_server_launch (rp_test_server_t *server)
{
    server->pid = rp_test_spawn_binary (server->binary, (char *[]) { server->command, NULL }, server->env, NULL,
                                        server->log);
    cr_assert_gt (server->pid, 0);
    rp_test_server_answers (server);
}

void
rp_test_server_answers (rp_test_server_t *server)
{
    char url [128];
    snprintf (url, sizeof url, "%s/healthz", server->base);
    for (int i = 0; i < 200 && rp_test_http_status (url) == 0; i++)
        usleep (50 * 1000);
}

void
rp_test_server_stop (rp_test_server_t *server)
{
    kill (server->pid, SIGTERM);
    int status = rp_test_wait (server->pid, 30000);
    cr_expect_eq (status, 0, "%s exits cleanly on SIGTERM, not with status %d (log: %s)", server->command, status,
                  server->log);
}

long
rp_test_request (rp_test_server_t *server, const char *method, const char *path, const char *token,
                 const char *const *headers, const void *body, size_t len, curl_mime *form,
                 rp_test_reply_t *reply)
{
    char url [1024];
    snprintf (url, sizeof url, "%s%s", server->base, path);
    return rp_test_http (&(rp_test_http_t) { .method = method, .url = url, .token = token, .headers = headers,
                                             .body = body, .len = len, .form = form }, reply);
}

long
rp_test_json_request (rp_test_server_t *server, const char *method, const char *path, const char *token,
                      const char *json, rp_test_reply_t *reply)
{
    const char *headers [] = { "Content-Type: application/json", NULL };
    return rp_test_request (server, method, path, token, headers, json, json ? strlen (json) : 0, NULL, reply);
}

char *
rp_test_login (rp_test_server_t *server, const char *user)
{
    char body [256];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"correct horse battery\"}", user);
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_json_request (server, "POST", "/api/v1/auth/login", NULL, body, &reply), 200,
                  "%s", reply.body);
    json_t *json = rp_test_reply_json (&reply);
    char *token = strdup (json_string_value (json_object_get (json, "token")));
    cr_assert (json_is_string (json_object_get (json, "expires_at")));
    json_decref (json);
    rp_test_reply_free (&reply);
    return token;
}

//  A distinct JPEG at <dir>/<name>
void
rp_test_server_photo (rp_test_server_t *server, const char *name, int variant, char *path, size_t size)
{
    snprintf (path, size, "%s/%s", server->lib.dir, name);
    cr_assert_eq (rp_test_make_jpeg (path, 320 + variant, 240 + variant % 7, 1), 0);
}

int64_t
rp_test_photo_rows (rp_test_server_t *server)
{
    char err [256];
    rp_db_t *db = rp_db_open (server->db_url, err, sizeof err);
    cr_assert_not_null (db, "%s", err);
    json_t *counts = NULL;
    cr_assert_eq (rp_db_status_counts (db, &counts, err, sizeof err), 0, "%s", err);
    int64_t total = 0;
    const char *key;
    json_t *value;
    json_object_foreach (counts, key, value)
        total += json_integer_value (value);
    json_decref (counts);
    rp_db_close (&db);
    return total;
}

//  Poll a photo until it is complete or failed; its final status.
char *
rp_test_wait_final (rp_test_server_t *server, const char *token, const char *id, int timeout_ms)
{
    char path [128];
    snprintf (path, sizeof path, "/api/v1/photos/%s", id);
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        rp_test_reply_t reply;
        rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply);
        json_t *json = rp_test_reply_json (&reply);
        const char *status = json_string_value (json_object_get (json, "status"));
        char *result = status && (streq (status, "complete") || streq (status, "failed")) ? strdup (status) : NULL;
        json_decref (json);
        rp_test_reply_free (&reply);
        if (result)
            return result;
        usleep (100 * 1000);
    }
    return strdup ("timeout");
}
