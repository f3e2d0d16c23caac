/*  tests/support/server.c: see server.h. */
#include "tests/support/server.h"
#include "tests/support/testdata.h"

#include <czmq.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


//  A fresh PostgreSQL schema for this test, as tests/test_db.c makes them;
//  skips the test when RP_TEST_PG_URL is unset.
void
rp_test_pg_url (const char *name, char *url, size_t size)
{
    const char *base = getenv ("RP_TEST_PG_URL");
    if (!base || !*base)
        cr_skip_test ("skipped: RP_TEST_PG_URL is unset (tools/test.sh starts PostgreSQL with "
                      "tools/pg.sh and sets it)");
    char command [4096];
    snprintf (command, sizeof command, "psql -q '%s' -c 'SET client_min_messages = warning; "
              "DROP SCHEMA IF EXISTS test_gw_%s CASCADE; CREATE SCHEMA test_gw_%s' >/dev/null",
              base, name, name);
    cr_assert_eq (rp_test_run (command, NULL), 0, "cannot make a schema with psql");
    snprintf (url, size, "%s%soptions=-csearch_path%%3Dtest_gw_%s", base, strchr (base, '?') ? "&" : "?", name);
}

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
rp_test_server_start_on (rp_test_server_t *server, const char *name, bool pg)
{
    rp_test_server_start_with (server, name, pg, NULL, NULL);
}

void
rp_test_server_start_with (rp_test_server_t *server, const char *name, bool pg,
                           const char *extra1, const char *extra2)
{
    const char *env [3] = { extra1, extra1 ? extra2 : NULL, NULL };
    if (!extra1 && extra2)
        env [0] = extra2;
    rp_test_server_start_env (server, name, pg, env);
}

void
rp_test_server_start_env (rp_test_server_t *server, const char *name, bool pg, const char *const env [])
{
    memset (server, 0, sizeof *server);
    //  The first two go where rp_test_server_start_with always put them
    //  (the first also into lib.env); the rest into env_more
    size_t more = 0;
    for (size_t i = 0; env && env [i]; i++) {
        if (i < 2) {
            cr_assert_lt (strlen (env [i]), sizeof server->env_extra [i], "setting too long: %s", env [i]);
            snprintf (server->env_extra [i], sizeof server->env_extra [i], "%s", env [i]);
        }
        else {
            cr_assert_lt (more, (size_t) RP_TEST_SERVER_ENV_MAX, "more than %d settings for serve",
                          RP_TEST_SERVER_ENV_MAX + 2);
            cr_assert_lt (strlen (env [i]), sizeof server->env_more [more], "setting too long: %s", env [i]);
            snprintf (server->env_more [more], sizeof server->env_more [more], "%s", env [i]);
            more++;
        }
    }
    rp_test_library_init (&server->lib, name);
    if (pg)
        rp_test_pg_url (name, server->db_url, sizeof server->db_url);
    else
        snprintf (server->db_url, sizeof server->db_url, "%s", server->lib.url);
    snprintf (server->env_db, sizeof server->env_db, "RAPIDPHOTO_DB_URL=%s", server->db_url);
    server->lib.env [5] = server->env_db;
    server->lib.env [6] = NULL;
    cr_assert_eq (rp_test_server_user_add (server, "alice"), 0);
    cr_assert_eq (rp_test_server_user_add (server, "bob"), 0);
    server->port = rp_test_free_port ();
    snprintf (server->base, sizeof server->base, "http://127.0.0.1:%d", server->port);
    snprintf (server->env_listen, sizeof server->env_listen, "RAPIDPHOTO_HTTP_LISTEN=127.0.0.1:%d", server->port);
    //  Small enough that the size tests are quick; big enough for any test photo
    snprintf (server->env_limit, sizeof server->env_limit, "RAPIDPHOTO_LIMITS_MAX_UPLOAD_BYTES=%d", 8 << 20);
    server->lib.env [3] = server->env_listen;
    server->lib.env [4] = server->env_limit;
    snprintf (server->log, sizeof server->log, "%s/serve.log", server->lib.dir);
    rp_test_server_launch (server);
}

void
rp_test_server_launch (rp_test_server_t *server)
{
    //  lib.env keeps the base settings and the first extra (tests spawn
    //  other commands with it); serve gets every setting
    int slot = 6;
    for (int i = 0; i < 2; i++)
        if (server->env_extra [i][0] && slot < 7)
            server->lib.env [slot++] = server->env_extra [i];
    server->lib.env [slot] = NULL;
    size_t n = 0;
    for (int i = 0; i < 6 && server->lib.env [i]; i++)
        server->env [n++] = server->lib.env [i];
    for (int i = 0; i < 2; i++)
        if (server->env_extra [i][0])
            server->env [n++] = server->env_extra [i];
    for (int i = 0; i < RP_TEST_SERVER_ENV_MAX && server->env_more [i][0]; i++)
        server->env [n++] = server->env_more [i];
    server->env [n] = NULL;
    server->pid = rp_test_spawn ((char *[]) { "serve", NULL }, server->env, NULL, server->log);
    cr_assert_gt (server->pid, 0);
    //  Ready when /healthz answers
    CURL *curl = curl_easy_init ();
    char url [128];
    snprintf (url, sizeof url, "%s/healthz", server->base);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    for (int i = 0; i < 200; i++) {
        if (curl_easy_perform (curl) == CURLE_OK)
            break;
        usleep (50 * 1000);
    }
    curl_easy_cleanup (curl);
}

//  New broker and HTTP ports for a copy of a server, and its pointers
//  pointed into the copy; then start it
static void
s_share_launch (rp_test_server_t *server)
{
    snprintf (server->lib.env_frontend, sizeof server->lib.env_frontend,
              "RAPIDPHOTO_BROKER_FRONTEND=tcp://127.0.0.1:%d", rp_test_free_port ());
    snprintf (server->lib.env_backend, sizeof server->lib.env_backend,
              "RAPIDPHOTO_BROKER_BACKEND=tcp://127.0.0.1:%d", rp_test_free_port ());
    server->port = rp_test_free_port ();
    snprintf (server->base, sizeof server->base, "http://127.0.0.1:%d", server->port);
    snprintf (server->env_listen, sizeof server->env_listen, "RAPIDPHOTO_HTTP_LISTEN=127.0.0.1:%d", server->port);
    snprintf (server->log, sizeof server->log, "%s/serve-%d.log", server->lib.dir, server->port);
    //  The copy's pointers must point into the copy
    server->lib.env [0] = server->lib.env_dir;
    server->lib.env [1] = server->lib.env_frontend;
    server->lib.env [2] = server->lib.env_backend;
    server->lib.env [3] = server->env_listen;
    server->lib.env [4] = server->env_limit;
    server->lib.env [5] = server->env_db;
    rp_test_server_launch (server);
}

void
rp_test_server_share (rp_test_server_t *server, const rp_test_server_t *first)
{
    *server = *first;
    s_share_launch (server);
}

void
rp_test_server_share_db (rp_test_server_t *server, const rp_test_server_t *first, const char *name)
{
    *server = *first;
    rp_test_library_t own;
    rp_test_library_init (&own, name);
    //  Its own folder; the database stays the first one's (lib.url, db_url, env_db)
    snprintf (server->lib.dir, sizeof server->lib.dir, "%s", own.dir);
    snprintf (server->lib.env_dir, sizeof server->lib.env_dir, "%s", own.env_dir);
    s_share_launch (server);
}

void
rp_test_server_start (rp_test_server_t *server, const char *name)
{
    rp_test_server_start_on (server, name, false);
}

void
rp_test_server_stop (rp_test_server_t *server)
{
    kill (server->pid, SIGTERM);
    int status = rp_test_wait (server->pid, 30000);
    cr_expect_eq (status, 0, "serve exits cleanly on SIGTERM (log: %s)", server->log);
}

//  ---------------------------------------------------------------------------
//  A small HTTP client


static size_t
s_collect (char *data, size_t size, size_t n, void *arg)
{
    rp_test_reply_t *reply = (rp_test_reply_t *) arg;
    size_t bytes = size * n;
    reply->body = realloc (reply->body, reply->len + bytes + 1);
    memcpy (reply->body + reply->len, data, bytes);
    reply->len += bytes;
    reply->body [reply->len] = 0;
    return bytes;
}

static size_t
s_header (char *data, size_t size, size_t n, void *arg)
{
    rp_test_reply_t *reply = (rp_test_reply_t *) arg;
    size_t bytes = size * n;
    if (reply->hlen + bytes < sizeof reply->headers) {
        memcpy (reply->headers + reply->hlen, data, bytes);
        reply->hlen += bytes;
        reply->headers [reply->hlen] = 0;
    }
    return bytes;
}

void
rp_test_reply_free (rp_test_reply_t *reply)
{
    free (reply->body);
    memset (reply, 0, sizeof *reply);
}

json_t *
rp_test_reply_json (const rp_test_reply_t *reply)
{
    json_error_t jerr;
    return reply->body ? json_loads (reply->body, 0, &jerr) : NULL;
}

//  One request. headers: NULL-terminated "Name: value" list or NULL.
//  form: a curl_mime for multipart, or NULL. body: raw body or NULL.
CURL *
rp_test_easy (rp_test_server_t *server, const char *method, const char *path, const char *token,
        const char *const *headers, const void *body, size_t len, curl_mime *form,
        rp_test_reply_t *reply, struct curl_slist **list_p)
{
    CURL *curl = curl_easy_init ();
    char url [1024];
    snprintf (url, sizeof url, "%s%s", server->base, path);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, reply);
    struct curl_slist *list = curl_slist_append (NULL, "Expect:");
    if (token) {
        char auth [2048];
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", token);
        list = curl_slist_append (list, auth);
    }
    for (int i = 0; headers && headers [i]; i++)
        list = curl_slist_append (list, headers [i]);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
    if (form)
        curl_easy_setopt (curl, CURLOPT_MIMEPOST, form);
    else
    if (body) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
    }
    if (streq (method, "HEAD"))
        curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    *list_p = list;
    return curl;
}

long
rp_test_request (rp_test_server_t *server, const char *method, const char *path, const char *token,
           const char *const *headers, const void *body, size_t len, curl_mime *form,
           rp_test_reply_t *reply)
{
    memset (reply, 0, sizeof *reply);
    struct curl_slist *list = NULL;
    CURL *curl = rp_test_easy (server, method, path, token, headers, body, len, form, reply, &list);
    CURLcode rc = curl_easy_perform (curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &reply->status);
    curl_easy_cleanup (curl);
    curl_slist_free_all (list);
    return reply->status;
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

char *
rp_test_read_file (const char *path, size_t *len)
{
    FILE *file = fopen (path, "rb");
    cr_assert_not_null (file, "%s", path);
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    fseek (file, 0, SEEK_SET);
    char *data = malloc ((size_t) size + 1);
    cr_assert_eq (fread (data, 1, (size_t) size, file), (size_t) size);
    fclose (file);
    *len = (size_t) size;
    return data;
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

bool
rp_test_has_header (const rp_test_reply_t *reply, const char *needle)
{
    return strcasestr (reply->headers, needle) != NULL;
}


const char *
rp_test_header_value (const rp_test_reply_t *reply, const char *name)
{
    static char value [4096];
    char needle [128];
    snprintf (needle, sizeof needle, "\n%s:", name);
    const char *at = strcasestr (reply->headers, needle);
    if (!at)
        return NULL;
    at += strlen (needle);
    while (*at == ' ')
        at++;
    snprintf (value, sizeof value, "%.*s", (int) strcspn (at, "\r\n"), at);
    return value;
}
