/*  tests/test_timeline.c: the timeline, GET /api/v1/photos?sort=taken_at
    with from/to and cursors, through the real `rapidphoto serve` on SQLite
    and on PostgreSQL (RP_TEST_PG_URL; skipped without).

    Photos are copies of one corpus camera photo (../shared/testdata, never
    copied into the project) whose EXIF date taken exiftool rewrites in the
    test's data folder: with an offset, without one, and none at all. The
    engine reads them back through its EXIF actor, and the list must order
    them by the date taken normalised to UTC (an offset-less one read as
    UTC), upload time when there is none; from/to bound that key
    (from <= key < to); a client paging while more photos arrive sees every
    photo it had not yet seen exactly once; bad parameters are a 400 naming
    the parameter.
*/
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/db/db.h"
#include "tests/support/server.h"
#include "tests/support/testdata.h"

#define S_SOURCE "camera/nikon_d3100_gps_small.jpg"
#define streq(a, b) (strcmp ((a), (b)) == 0)
#define S_MAX    32

typedef struct {
    const char *name;       //  the upload's file name, and the test's label
    const char *date;       //  exiftool's DateTimeOriginal, or NULL for none
    const char *offset;     //  OffsetTimeOriginal, or NULL
    char id [RP_ID_MAX];
} s_photo_t;

//  A copy of the corpus photo at <data dir>/<name> with its dates rewritten
static void
s_make (rp_test_server_t *server, const s_photo_t *photo, char *path, size_t size)
{
    char source [1024];
    cr_assert (rp_testdata_path (source, sizeof source, S_SOURCE));
    snprintf (path, size, "%s/%s", server->lib.dir, photo->name);
    char command [3000], tags [256];
    if (photo->date)
        snprintf (tags, sizeof tags, "-DateTimeOriginal='%s'%s%s%s", photo->date,
                  photo->offset ? " -OffsetTimeOriginal='" : "", photo->offset ? photo->offset : "",
                  photo->offset ? "'" : "");
    else
        snprintf (tags, sizeof tags, "-AllDates=");
    //  The name as Artist: two undated copies are still different bytes
    snprintf (command, sizeof command, "cp '%s' '%s' && chmod u+w '%s' && exiftool -q -overwrite_original "
              "-Artist='%s' %s '%s'", source, path, path, photo->name, tags, path);
    cr_assert_eq (rp_test_run (command, NULL), 0, "%s", command);
}

//  Upload the photos in one multipart request and wait until each is complete
static void
s_upload (rp_test_server_t *server, const char *token, s_photo_t *photos, int count)
{
    CURL *curl = curl_easy_init ();
    curl_mime *form = curl_mime_init (curl);
    for (int i = 0; i < count; i++) {
        char path [1100];
        s_make (server, &photos [i], path, sizeof path);
        curl_mimepart *part = curl_mime_addpart (form);
        curl_mime_name (part, "file");
        curl_mime_filedata (part, path);
    }
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "POST", "/api/v1/photos", token, NULL, NULL, 0, form, &reply), 202,
                  "%s", reply.body);
    curl_mime_free (form);
    curl_easy_cleanup (curl);
    json_t *answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    json_t *list = json_object_get (answer, "photos");
    cr_assert_eq ((int) json_array_size (list), count);
    for (int i = 0; i < count; i++) {
        const char *id = json_string_value (json_object_get (json_array_get (list, (size_t) i), "id"));
        cr_assert (id);
        snprintf (photos [i].id, RP_ID_MAX, "%s", id);
    }
    json_decref (answer);
    for (int i = 0; i < count; i++) {
        char *status = rp_test_wait_final (server, token, photos [i].id, 20000);
        cr_assert_str_eq (status, "complete", "%s: %s", photos [i].name, status);
        free (status);
    }
}

//  GET /api/v1/photos?<query>: the items' ids into ids, next_cursor into
//  cursor ("" when none); the number of items
static int
s_list (rp_test_server_t *server, const char *token, const char *query, char ids [][RP_ID_MAX],
        char *cursor, size_t cursor_size)
{
    char path [1024];
    snprintf (path, sizeof path, "/api/v1/photos?%s", query);
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200,
                  "%s: %s", path, reply.body);
    json_t *page = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    json_t *items = json_object_get (page, "items");
    cr_assert (json_is_array (items));
    int n = (int) json_array_size (items);
    cr_assert (n <= S_MAX);
    for (int i = 0; i < n; i++)
        snprintf (ids [i], RP_ID_MAX, "%s",
                  json_string_value (json_object_get (json_array_get (items, (size_t) i), "id")));
    const char *next = json_string_value (json_object_get (page, "next_cursor"));
    if (cursor)
        snprintf (cursor, cursor_size, "%s", next ? next : "");
    json_decref (page);
    return n;
}

//  The ids of the list, joined with spaces, for one readable comparison
static void
s_join (char ids [][RP_ID_MAX], int n, char *out, size_t size)
{
    size_t o = 0;
    out [0] = 0;
    for (int i = 0; i < n && o < size; i++)
        o += (size_t) snprintf (out + o, size - o, "%s%s", i ? " " : "", ids [i]);
}

static void
s_expect_order (rp_test_server_t *server, const char *token, const char *query, s_photo_t *const *expected,
                int count)
{
    char ids [S_MAX][RP_ID_MAX], want [S_MAX][RP_ID_MAX], got_text [2048], want_text [2048];
    int n = s_list (server, token, query, ids, NULL, 0);
    for (int i = 0; i < count; i++)
        snprintf (want [i], RP_ID_MAX, "%s", expected [i]->id);
    s_join (ids, n, got_text, sizeof got_text);
    s_join (want, count, want_text, sizeof want_text);
    cr_expect_str_eq (got_text, want_text, "%s", query);
}

//  A bad parameter: 400, and the reason names it
static void
s_expect_refused (rp_test_server_t *server, const char *token, const char *query, const char *names)
{
    char path [1024];
    snprintf (path, sizeof path, "/api/v1/photos?%s", query);
    rp_test_reply_t reply;
    cr_expect_eq (rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 400,
                  "%s: %s", query, reply.body);
    cr_expect (reply.body && strstr (reply.body, names), "%s: %s does not name %s", query, reply.body, names);
    rp_test_reply_free (&reply);
}

static void
s_timeline (bool pg)
{
    RP_REQUIRE_TESTDATA ();
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = pg ? "timeline_pg" : "timeline", .pg = pg });
    char *token = rp_test_login (&server, "alice");

    //  Keys (UTC): a4 2021-12-31T23:30Z, a2 2019-05-01T11:00Z (no offset:
    //  as is), a1 2019-05-01T10:00Z (12:00 local at +02:00: later local
    //  time than a2, earlier instant), a3 2015-01-01T05:00Z; n1, n2: their
    //  upload time (now), so first
    s_photo_t a [6] = {
        { .name = "a1.jpg", .date = "2019:05:01 12:00:00", .offset = "+02:00" },
        { .name = "a2.jpg", .date = "2019:05:01 11:00:00" },
        { .name = "a3.jpg", .date = "2015:01:01 00:00:00", .offset = "-05:00" },
        { .name = "a4.jpg", .date = "2021:12:31 23:30:00", .offset = "+00:00" },
        { .name = "n1.jpg" },
        { .name = "n2.jpg" },
    };
    s_upload (&server, token, a, 6);
    s_photo_t *a1 = &a [0], *a2 = &a [1], *a3 = &a [2], *a4 = &a [3], *n1 = &a [4], *n2 = &a [5];

    //  taken_at is shown as the camera gave it
    rp_test_reply_t reply;
    char path [256];
    snprintf (path, sizeof path, "/api/v1/photos/%s", a1->id);
    cr_assert_eq (rp_test_request (&server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200);
    json_t *photo = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    cr_expect_str_eq (json_string_value (json_object_get (photo, "taken_at")), "2019-05-01T12:00:00+02:00");
    json_decref (photo);

    //  The undated two by upload time (one multipart: the same millisecond
    //  is possible, then by id), both newest first in either sort
    char ids [S_MAX][RP_ID_MAX];
    int n = s_list (&server, token, "limit=2", ids, NULL, 0);
    cr_assert_eq (n, 2);
    s_photo_t *first = streq (ids [0], n1->id) ? n1 : n2, *second = first == n1 ? n2 : n1;
    cr_expect (streq (ids [0], first->id) && streq (ids [1], second->id));

    s_expect_order (&server, token, "sort=taken_at",
                    (s_photo_t *[]) { first, second, a4, a2, a1, a3 }, 6);
    //  from/to bound the upload time in the default sort (all uploaded now)
    s_expect_order (&server, token, "sort=created_at&from=2019-01-01&to=2019-12-31", NULL, 0);

    //  from <= key < to, on the normalised key
    s_expect_order (&server, token, "sort=taken_at&from=2019-05-01&to=2019-05-02",
                    (s_photo_t *[]) { a2, a1 }, 2);
    s_expect_order (&server, token, "sort=taken_at&from=2019-05-01T10:30:00Z&to=2022-01-01",
                    (s_photo_t *[]) { a4, a2 }, 2);
    //  An offset in the bound (+ escaped), and `to` is exclusive: a1's key is 10:00Z
    s_expect_order (&server, token, "sort=taken_at&to=2019-05-01T12:00:00%2B02:00",
                    (s_photo_t *[]) { a3 }, 1);
    s_expect_order (&server, token, "sort=taken_at&from=2019-05-01T12:00:00%2B02:00&to=2019-05-01T11:00:00.001Z",
                    (s_photo_t *[]) { a2, a1 }, 2);
    //  An unescaped '+' arrives as a space: read as '+'
    s_expect_order (&server, token, "sort=taken_at&from=2019-05-01T06:00:00-05:00&to=2021-12-31T23:30:00+00:00",
                    (s_photo_t *[]) { a2 }, 1);
    s_expect_order (&server, token, "sort=taken_at&from=2022-01-01&to=2025-01-01", NULL, 0);
    //  With a status filter (its own index) and a tag filter
    s_expect_order (&server, token, "sort=taken_at&status=complete&to=2020-01-01",
                    (s_photo_t *[]) { a2, a1, a3 }, 3);
    s_expect_order (&server, token, "sort=taken_at&status=queued", NULL, 0);
    s_expect_order (&server, token, "sort=taken_at&tag=none", NULL, 0);

    //  Paging two at a time while more photos arrive: b1 falls below the
    //  cursor (shown later), b2 (2030) and b3 (undated: now) above it
    char cursor [256], query [512];
    n = s_list (&server, token, "sort=taken_at&limit=2", ids, cursor, sizeof cursor);
    cr_assert_eq (n, 2);
    cr_assert (*cursor);
    s_photo_t b [3] = {
        { .name = "b1.jpg", .date = "2020:06:01 00:00:00", .offset = "+00:00" },
        { .name = "b2.jpg", .date = "2030:01:01 00:00:00" },
        { .name = "b3.jpg" },
    };
    //  ... and a created_at client that started before them
    char created_cursor [256], created_ids [S_MAX][RP_ID_MAX];
    int created_n = s_list (&server, token, "limit=3", created_ids, created_cursor, sizeof created_cursor);
    cr_assert_eq (created_n, 3);
    s_upload (&server, token, b, 3);
    int total = n;
    while (*cursor && total < S_MAX - 2) {
        snprintf (query, sizeof query, "sort=taken_at&limit=2&cursor=%s", cursor);
        n = s_list (&server, token, query, ids + total, cursor, sizeof cursor);
        cr_assert (n > 0 || !*cursor);
        total += n;
    }
    s_expect_order (&server, token, "sort=taken_at&from=2015-01-01&to=2025-01-01",
                    (s_photo_t *[]) { a4, &b [0], a2, a1, a3 }, 5);
    char got [2048], want [2048];
    s_join (ids, total, got, sizeof got);
    char expected [7][RP_ID_MAX];
    s_photo_t *order [] = { first, second, a4, &b [0], a2, a1, a3 };
    for (int i = 0; i < 7; i++)
        snprintf (expected [i], RP_ID_MAX, "%s", order [i]->id);
    s_join (expected, 7, want, sizeof want);
    cr_expect_str_eq (got, want, "pages while photos arrived");
    //  The created_at client goes on where it was: the rest, none twice
    while (*created_cursor && created_n < S_MAX - 2) {
        snprintf (query, sizeof query, "limit=2&cursor=%s", created_cursor);
        n = s_list (&server, token, query, created_ids + created_n, created_cursor, sizeof created_cursor);
        created_n += n;
    }
    cr_expect_eq (created_n, 6, "the six photos there before, each once");
    for (int i = 0; i < created_n; i++) {
        int seen = 0;
        for (int k = 0; k < 6; k++)
            seen += streq (created_ids [i], a [k].id);
        cr_expect_eq (seen, 1, "%s", created_ids [i]);
        for (int k = 0; k < i; k++)
            cr_expect (!streq (created_ids [i], created_ids [k]), "%s twice", created_ids [i]);
    }

    //  Bad parameters: 400, naming which
    s_expect_refused (&server, token, "sort=size", "sort");
    s_expect_refused (&server, token, "sort=taken_at&from=yesterday", "from");
    s_expect_refused (&server, token, "from=2024-13-01", "from");
    s_expect_refused (&server, token, "to=2023-02-29", "to:");
    s_expect_refused (&server, token, "to=2024-06-01T24:00:00Z", "to:");
    s_expect_refused (&server, token, "to=2024-06-01T10:00:00%2B2", "to:");
    s_expect_refused (&server, token, "sort=taken_at&from=2024-06-02&to=2024-06-01", "from must be before to");
    s_expect_refused (&server, token, "sort=taken_at&cursor=!!", "cursor");
    snprintf (query, sizeof query, "sort=created_at&cursor=%s", "t.AAAA");
    s_expect_refused (&server, token, query, "cursor");
    n = s_list (&server, token, "sort=taken_at&limit=1", ids, cursor, sizeof cursor);
    snprintf (query, sizeof query, "cursor=%s", cursor);
    s_expect_refused (&server, token, query, "cursor: it belongs to sort=taken_at");
    s_expect_refused (&server, token, "sort=taken_at&limit=0", "limit");
    s_expect_refused (&server, token, "sort=taken_at&status=done", "status");

    free (token);
    rp_test_server_stop (&server);
}

Test (timeline, sqlite, .timeout = 120)
{
    s_timeline (false);
}

Test (timeline, postgresql, .timeout = 120)
{
    s_timeline (true);
}

//  The normalisation of from/to, in the engine itself
Test (timeline, instants)
{
    static const struct {
        const char *text, *want;
    } cases [] = {
        { "2024-06-01",                      "2024-06-01T00:00:00.000Z" },
        { "2024-06-01T18:30",                "2024-06-01T18:30:00.000Z" },
        { "2024-06-01T18:30:05Z",            "2024-06-01T18:30:05.000Z" },
        { "2024-06-01T18:30:05.1234567Z",    "2024-06-01T18:30:05.123Z" },
        { "2024-06-01T01:30:00+02:00",       "2024-05-31T23:30:00.000Z" },
        { "2024-12-31T23:30:00-01:00",       "2025-01-01T00:30:00.000Z" },
        { "2024-03-01T00:00:00+0100",        "2024-02-29T23:00:00.000Z" },
        { "2024-06-01T01:30:00 02:00",       "2024-05-31T23:30:00.000Z" },
        { "0001-01-01T00:00:00Z",            "0001-01-01T00:00:00.000Z" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char out [32], err [256];
        cr_expect_eq (rp_db_instant_parse (cases [i].text, out, err, sizeof err), 0, "%s: %s", cases [i].text, err);
        cr_expect_str_eq (out, cases [i].want, "%s", cases [i].text);
    }
    static const char *const bad [] = {
        "", "2024", "2024-6-1", "2024-06-01T", "2024-06-01T18", "2024-02-30", "2023-02-29",
        "2024-06-01T18:60", "2024-06-01T18:30:00.", "2024-06-01T18:30:00+2", "2024-06-01T18:30:00+24:00",
        "2024-06-01T18:30:00Zjunk", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+00:01", "9999-12-31T23:30:00-01:00",
        "2024-06-01 18:30:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char out [32], err [256];
        cr_expect_eq (rp_db_instant_parse (bad [i], out, err, sizeof err), RP_REFUSED, "%s", bad [i]);
    }
}

//  ---------------------------------------------------------------------------
//  V8 on a library that was there before it: the migration's own script
//  fills taken_sort for the rows already there, and its triggers keep it in
//  step when a release (this one or the one before) writes taken_at.

//  The script schemas/<backend>/<file> (caller frees)
static char *
s_script (const char *backend, const char *file)
{
    const char *source = getenv ("RP_SOURCE_DIR");
    cr_assert (source, "RP_SOURCE_DIR is unset (ctest sets it)");
    char path [1024];
    snprintf (path, sizeof path, "%s/schemas/%s/%s", source, backend, file);
    size_t len;
    char *text = rp_test_read_file (path, &len);
    cr_assert (text, "%s", path);
    return text;
}

static const char *const s_before_v8 [] = {
    "V1__init.sql", "V2__events.sql", "V3__tus.sql", "V4__aws.sql", "V5__bytes.sql", "V6__outbox_order.sql"
};

//  taken_at as a release before V8 wrote it -> taken_sort after V8
static const struct {
    const char *id, *taken_at, *sort;
} s_rows [] = {
    { "p1", "2019-05-01T12:00:00+02:00", "2019-05-01T10:00:00.000Z" },
    { "p2", "2019-05-01T11:00:00",       "2019-05-01T11:00:00.000Z" },
    { "p3", "2014-12-31T23:30:00-05:00", "2015-01-01T04:30:00.000Z" },
    { "p4", NULL,                        NULL },
    { "p5", "not a date",                NULL },
};

#include <sqlite3.h>

static char *
s_sqlite_one (sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    cr_assert_eq (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), SQLITE_OK, "%s", sqlite3_errmsg (db));
    char *value = NULL;
    if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_text (stmt, 0))
        value = strdup ((const char *) sqlite3_column_text (stmt, 0));
    sqlite3_finalize (stmt);
    return value;
}

Test (timeline, v8_fills_existing_rows_sqlite)
{
    char *dir = rp_test_tmpdir ("timeline-v8");
    char path [1024];
    snprintf (path, sizeof path, "%s/before.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq (sqlite3_open (path, &db), SQLITE_OK);
    for (size_t i = 0; i < sizeof s_before_v8 / sizeof s_before_v8 [0]; i++) {
        char *script = s_script ("sqlite", s_before_v8 [i]);
        cr_assert_eq (sqlite3_exec (db, script, NULL, NULL, NULL), SQLITE_OK, "%s: %s", s_before_v8 [i],
                      sqlite3_errmsg (db));
        free (script);
    }
    cr_assert_eq (sqlite3_exec (db, "INSERT INTO users VALUES ('u', 'u', 'x', '2026-01-01T00:00:00.000Z');"
                                    "INSERT INTO batches VALUES ('b', 'u', '2026-01-01T00:00:00.000Z');",
                                NULL, NULL, NULL), SQLITE_OK);
    for (size_t i = 0; i < sizeof s_rows / sizeof s_rows [0]; i++) {
        char sql [1024];
        snprintf (sql, sizeof sql, "INSERT INTO photos (id, user_id, batch_id, filename, status, sha256, taken_at, "
                  "next_attempt_at, created_at, updated_at) VALUES ('%s', 'u', 'b', 'f', 'complete', '%s', %s%s%s, "
                  "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
                  s_rows [i].id, s_rows [i].id, s_rows [i].taken_at ? "'" : "",
                  s_rows [i].taken_at ? s_rows [i].taken_at : "NULL", s_rows [i].taken_at ? "'" : "");
        cr_assert_eq (sqlite3_exec (db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg (db));
    }
    char *v8 = s_script ("sqlite", "V8__timeline.sql");
    cr_assert_eq (sqlite3_exec (db, v8, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg (db));
    free (v8);
    for (size_t i = 0; i < sizeof s_rows / sizeof s_rows [0]; i++) {
        char sql [256];
        snprintf (sql, sizeof sql, "SELECT taken_sort FROM photos WHERE id = '%s'", s_rows [i].id);
        char *sort = s_sqlite_one (db, sql);
        if (s_rows [i].sort)
            cr_expect (sort && streq (sort, s_rows [i].sort), "%s: %s", s_rows [i].id, sort ? sort : "NULL");
        else
            cr_expect_null (sort, "%s: %s", s_rows [i].id, sort);
        free (sort);
    }
    //  A release before V8 writes taken_at (as its EXIF commit does): in step
    cr_assert_eq (sqlite3_exec (db, "UPDATE photos SET taken_at = '2020-02-29T23:00:00-01:00' WHERE id = 'p4'",
                                NULL, NULL, NULL), SQLITE_OK);
    char *sort = s_sqlite_one (db, "SELECT taken_sort FROM photos WHERE id = 'p4'");
    cr_expect (sort && streq (sort, "2020-03-01T00:00:00.000Z"), "%s", sort ? sort : "NULL");
    free (sort);
    cr_assert_eq (sqlite3_exec (db, "UPDATE photos SET taken_at = NULL WHERE id = 'p1'", NULL, NULL, NULL), SQLITE_OK);
    sort = s_sqlite_one (db, "SELECT taken_sort FROM photos WHERE id = 'p1'");
    cr_expect_null (sort);
    free (sort);
    sqlite3_close (db);
    free (dir);
}

#include <libpq-fe.h>

static char *
s_pg_one (PGconn *conn, const char *sql)
{
    PGresult *res = PQexec (conn, sql);
    cr_assert (PQresultStatus (res) == PGRES_TUPLES_OK || PQresultStatus (res) == PGRES_COMMAND_OK,
               "%s: %s", sql, PQerrorMessage (conn));
    char *value = PQntuples (res) > 0 && !PQgetisnull (res, 0, 0) ? strdup (PQgetvalue (res, 0, 0)) : NULL;
    PQclear (res);
    return value;
}

#define S_PG_SORT "SELECT to_char (taken_sort AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') " \
                  "FROM photos WHERE id = '%s'"

Test (timeline, v8_fills_existing_rows_postgresql)
{
    char url [2048];
    rp_test_pg_schema ("timeline_v8", url, sizeof url);
    PGconn *conn = PQconnectdb (url);
    cr_assert_eq (PQstatus (conn), CONNECTION_OK, "%s", PQerrorMessage (conn));
    //  The session's time zone must not matter to the offset-less one
    free (s_pg_one (conn, "SET TimeZone = 'America/New_York'"));
    for (size_t i = 0; i < sizeof s_before_v8 / sizeof s_before_v8 [0]; i++) {
        char *script = s_script ("postgresql", s_before_v8 [i]);
        free (s_pg_one (conn, script));
        free (script);
    }
    free (s_pg_one (conn, "INSERT INTO users (id, name, password_hash) VALUES ('u', 'u', 'x')"));
    free (s_pg_one (conn, "INSERT INTO batches (id, user_id) VALUES ('b', 'u')"));
    for (size_t i = 0; i < sizeof s_rows / sizeof s_rows [0]; i++) {
        char sql [1024];
        snprintf (sql, sizeof sql, "INSERT INTO photos (id, user_id, batch_id, filename, status, sha256, taken_at) "
                  "VALUES ('%s', 'u', 'b', 'f', 'complete', '%s', %s%s%s)",
                  s_rows [i].id, s_rows [i].id, s_rows [i].taken_at ? "'" : "",
                  s_rows [i].taken_at ? s_rows [i].taken_at : "NULL", s_rows [i].taken_at ? "'" : "");
        free (s_pg_one (conn, sql));
    }
    char *v8 = s_script ("postgresql", "V8__timeline.sql");
    free (s_pg_one (conn, v8));
    free (v8);
    for (size_t i = 0; i < sizeof s_rows / sizeof s_rows [0]; i++) {
        char sql [512];
        snprintf (sql, sizeof sql, S_PG_SORT, s_rows [i].id);
        char *sort = s_pg_one (conn, sql);
        if (s_rows [i].sort)
            cr_expect (sort && streq (sort, s_rows [i].sort), "%s: %s", s_rows [i].id, sort ? sort : "NULL");
        else
            cr_expect_null (sort, "%s: %s", s_rows [i].id, sort);
        free (sort);
    }
    free (s_pg_one (conn, "UPDATE photos SET taken_at = '2020-02-29T23:00:00-01:00' WHERE id = 'p4'"));
    char sql [512];
    snprintf (sql, sizeof sql, S_PG_SORT, "p4");
    char *sort = s_pg_one (conn, sql);
    cr_expect (sort && streq (sort, "2020-03-01T00:00:00.000Z"), "%s", sort ? sort : "NULL");
    free (sort);
    //  A date PostgreSQL cannot hold (year 0) is NULL, never a failed write
    free (s_pg_one (conn, "UPDATE photos SET taken_at = '0000-01-01T00:00:00' WHERE id = 'p1'"));
    snprintf (sql, sizeof sql, S_PG_SORT, "p1");
    sort = s_pg_one (conn, sql);
    cr_expect_null (sort, "%s", sort);
    free (sort);
    PQfinish (conn);
}
