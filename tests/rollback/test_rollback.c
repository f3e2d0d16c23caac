/*  tests/rollback/test_rollback.c: a rollback works. The previous release
    runs on the database and data folder the newest binary migrated and
    wrote, and the newest runs again after the previous one wrote rows
    (README, "Deploy on AWS" → "Rollbacks"; schemas/README.md).

    Run by tests/rollback/rollback.sh, which finds the previous release,
    builds it (cached by commit) and names its binary in RP_BINARY_PREVIOUS;
    RP_BINARY is this build's. On SQLite and on a fresh PostgreSQL schema:
      1. the newest binary migrates the database (`rapidphoto migrate`),
         serves, and takes photo A (uploaded, complete, downloaded);
      2. the previous release serves the same database and folder: its log
         says the schema is newer than it knows (expand only); login,
         upload of photo B with its events arriving on a live event
         stream, the list holding A and B, both downloaded byte-identical,
         A's thumbnail too; a clean stop;
      3. the newest again: B (written by the previous release) listed and
         downloaded byte-identical, photo C uploaded with its events live.
    A migration that is not expand-only makes step 2 fail: the previous
    release refuses to start on the schema, naming the migration.
*/
#include "tests/support/server.h"
#include "tests/support/testdata.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

//  The previous release's binary, which rollback.sh built
static const char *
s_previous (void)
{
    const char *binary = getenv ("RP_BINARY_PREVIOUS");
    cr_assert (binary && *binary && access (binary, X_OK) == 0,
               "RP_BINARY_PREVIOUS names no binary (\"%s\"): run this suite through tests/rollback/rollback.sh "
               "(ctest -L rollback)", binary ? binary : "");
    return binary;
}

//  `binary migrate` on the library; its exit status (output in log)
static int
s_migrate (const char *binary, rp_test_library_t *lib, const char *db_url, const char *log)
{
    char env_db [2100];
    snprintf (env_db, sizeof env_db, "RAPIDPHOTO_DB_URL=%s", db_url);
    char *env [] = { lib->env_dir, env_db, NULL };
    pid_t pid = rp_test_spawn_binary (binary, (char *[]) { "migrate", NULL }, env, log, log);
    cr_assert_gt (pid, 0);
    return rp_test_wait (pid, 60000);
}

//  A live event stream, read on its own thread until it has said that
//  `photo_id` is complete (or for 60 s)
typedef struct {
    rp_test_server_t *server;
    const char *token;
    char photo_id [RP_ID_MAX];      //  set before it may finish
    atomic_bool connected;          //  the stream's first bytes arrived
    char *text;                     //  what it said
} s_stream_t;

static bool
s_stream_enough (const rp_test_reply_t *reply, void *arg)
{
    s_stream_t *stream = (s_stream_t *) arg;
    if (reply->body && strstr (reply->body, ": connected"))
        atomic_store (&stream->connected, true);
    if (!reply->body || !stream->photo_id [0])
        return false;
    char needle [96];
    snprintf (needle, sizeof needle, "{\"id\":\"%s\"", stream->photo_id);
    for (const char *p = reply->body; (p = strstr (p, needle)); p += strlen (needle)) {
        const char *end = strchr (p, '\n');
        const char *status = strstr (p, "\"status\":\"complete\"");
        if (status && (!end || status < end))
            return true;
    }
    return false;
}

static void *
s_stream_thread (void *arg)
{
    s_stream_t *stream = (s_stream_t *) arg;
    char url [128];
    snprintf (url, sizeof url, "%s/api/v1/events", stream->server->base);
    rp_test_reply_t reply;
    rp_test_http (&(rp_test_http_t) { .url = url, .token = stream->token, .timeout_ms = 60000,
                                      .enough = s_stream_enough, .arg = stream }, &reply);
    stream->text = rp_test_reply_take_body (&reply);
    return NULL;
}

//  Upload one new JPEG (multipart); its id into id, its file into path
static void
s_upload (rp_test_server_t *server, const char *token, const char *name, int variant, char id [RP_ID_MAX],
          char *path, size_t pathlen)
{
    rp_test_server_photo (server, name, variant, path, pathlen);
    curl_mime *form = curl_mime_init (NULL);
    curl_mimepart *part = curl_mime_addpart (form);
    curl_mime_name (part, "file");
    curl_mime_filedata (part, path);
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "POST", "/api/v1/photos", token, NULL, NULL, 0, form, &reply), 202,
                  "upload of %s: %s (log: %s)", name, reply.body, server->log);
    curl_mime_free (form);
    json_t *answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    const char *given = json_string_value (json_object_get (json_array_get (json_object_get (answer, "photos"), 0),
                                                            "id"));
    cr_assert_not_null (given);
    snprintf (id, RP_ID_MAX, "%s", given);
    json_decref (answer);
}

//  Upload a photo with a live stream open: its events arrive, it completes
static void
s_upload_live (rp_test_server_t *server, const char *token, const char *name, int variant, char id [RP_ID_MAX],
               char *path, size_t pathlen)
{
    s_stream_t stream = { .server = server, .token = token };
    pthread_t thread;
    cr_assert_eq (pthread_create (&thread, NULL, s_stream_thread, &stream), 0);
    for (int i = 0; i < 100 && !atomic_load (&stream.connected); i++)
        usleep (50 * 1000);
    cr_assert (atomic_load (&stream.connected), "the event stream did not open (log: %s)", server->log);
    s_upload (server, token, name, variant, id, path, pathlen);
    snprintf (stream.photo_id, sizeof stream.photo_id, "%s", id);
    pthread_join (thread, NULL);
    cr_assert (stream.text && strstr (stream.text, id), "no event for photo %s on the stream:\n%s (log: %s)", id,
               stream.text ? stream.text : "", server->log);
    char *status = rp_test_wait_final (server, token, id, 60000);
    cr_assert_str_eq (status, "complete", "photo %s (log: %s)", id, server->log);
    cr_expect (strstr (stream.text, "\"status\":\"complete\""), "%s", stream.text);
    free (status);
    free (stream.text);
}

//  The photo's original is the file's bytes; its thumbnail is there
static void
s_downloads (rp_test_server_t *server, const char *token, const char *id, const char *path)
{
    size_t len = 0;
    char *bytes = rp_test_read_file (path, &len);
    cr_assert_not_null (bytes);
    char url [160];
    snprintf (url, sizeof url, "/api/v1/photos/%s/original", id);
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "GET", url, token, NULL, NULL, 0, NULL, &reply), 200,
                  "GET %s (log: %s)", url, server->log);
    cr_expect (reply.len == len && memcmp (reply.body, bytes, len) == 0,
               "photo %s downloads as %zu bytes, not the %zu uploaded", id, reply.len, len);
    rp_test_reply_free (&reply);
    free (bytes);
    snprintf (url, sizeof url, "/api/v1/photos/%s/thumbnail", id);
    cr_expect_eq (rp_test_request (server, "GET", url, token, NULL, NULL, 0, NULL, &reply), 200,
                  "GET %s (log: %s)", url, server->log);
    cr_expect_gt (reply.len, 0);
    rp_test_reply_free (&reply);
}

//  The list holds each of ids, complete
static void
s_listed (rp_test_server_t *server, const char *token, char ids [][RP_ID_MAX], int count)
{
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "GET", "/api/v1/photos?limit=100", token, NULL, NULL, 0, NULL, &reply), 200,
                  "%s", reply.body);
    json_t *page = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    json_t *items = json_object_get (page, "items");
    cr_expect_eq (json_array_size (items), (size_t) count);
    for (int i = 0; i < count; i++) {
        bool found = false;
        size_t k;
        json_t *item;
        json_array_foreach (items, k, item)
            if (streq (json_string_value (json_object_get (item, "id")), ids [i])) {
                found = true;
                cr_expect_str_eq (json_string_value (json_object_get (item, "status")), "complete");
            }
        cr_expect (found, "photo %s is not listed", ids [i]);
    }
    json_decref (page);
}

//  The server's process is still running; else fail with its log
static void
s_running (rp_test_server_t *server, const char *what)
{
    int status = rp_test_wait (server->pid, 0);
    if (status != -1) {
        size_t len = 0;
        char *log = rp_test_read_file (server->log, &len);
        cr_assert_fail ("%s did not start on this database (exit status %d); its log (%s):\n%s", what, status,
                        server->log, log);
    }
}

static void
s_rollback (bool pg)
{
    const char *previous = s_previous ();
    const char *name = pg ? "rollback_pg" : "rollback-sqlite";
    rp_test_library_t lib;
    rp_test_library_init (&lib, name);
    char db_url [2048];
    if (pg)
        rp_test_pg_schema ("rollback", db_url, sizeof db_url);
    else
        snprintf (db_url, sizeof db_url, "%s", lib.url);
    char log [700], command [4096];
    snprintf (log, sizeof log, "%s/migrate.log", lib.dir);

    //  1. The newest release migrates and serves: photo A
    cr_assert_eq (s_migrate (rp_test_binary (), &lib, db_url, log), 0, "the newest migrate (log: %s)", log);
    snprintf (command, sizeof command,
              "echo 'correct horse battery' | %s RAPIDPHOTO_DB_URL='%s' %s user add alice --password-stdin >/dev/null",
              lib.env_dir, db_url, rp_test_binary ());
    cr_assert_eq (rp_test_run (command, NULL), 0);
    rp_test_server_opts_t opts = { .name = name, .db_url = db_url, .data_dir = lib.dir };
    rp_test_server_t newest;
    rp_test_server_start (&newest, &opts);
    char *token = rp_test_login (&newest, "alice");
    char ids [3][RP_ID_MAX], paths [3][700];
    s_upload (&newest, token, "a.jpg", 1, ids [0], paths [0], sizeof paths [0]);
    char *status = rp_test_wait_final (&newest, token, ids [0], 60000);
    cr_assert_str_eq (status, "complete", "(log: %s)", newest.log);
    free (status);
    s_downloads (&newest, token, ids [0], paths [0]);
    free (token);
    rp_test_server_stop (&newest);

    //  2. Rolled back: the previous release on the same database and folder
    opts.binary = previous;
    rp_test_server_t older;
    rp_test_server_start (&older, &opts);
    s_running (&older, "the previous release");
    cr_assert_eq (rp_test_count_in_file (older.log, "newer than this rapidphoto knows"), 1,
                  "the previous release says once that the schema is newer (log: %s)", older.log);
    token = rp_test_login (&older, "alice");
    s_upload_live (&older, token, "b.jpg", 2, ids [1], paths [1], sizeof paths [1]);
    s_listed (&older, token, ids, 2);
    s_downloads (&older, token, ids [0], paths [0]);
    s_downloads (&older, token, ids [1], paths [1]);
    free (token);
    rp_test_server_stop (&older);

    //  3. Forward again: the newest on what the previous release wrote
    opts.binary = NULL;
    rp_test_server_start (&newest, &opts);
    cr_expect_eq (rp_test_count_in_file (newest.log, "newer than this rapidphoto knows"), 0, "(log: %s)", newest.log);
    token = rp_test_login (&newest, "alice");
    s_listed (&newest, token, ids, 2);
    s_downloads (&newest, token, ids [1], paths [1]);
    s_upload_live (&newest, token, "c.jpg", 3, ids [2], paths [2], sizeof paths [2]);
    s_listed (&newest, token, ids, 3);
    free (token);
    rp_test_server_stop (&newest);
}

Test (rollback, sqlite, .timeout = 240) { s_rollback (false); }
Test (rollback, postgresql, .timeout = 240) { s_rollback (true); }
