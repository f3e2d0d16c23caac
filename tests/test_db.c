/*  tests/test_db.c: the metadata store's contract (engine/db/db.h), one
    suite run against both backends.

    Every contract test below is a function of a database url, registered
    twice by CONTRACT(): once as sqlite/<name> on a fresh file in a temporary
    folder, once as postgresql/<name> on a fresh schema of the server named
    by RP_TEST_PG_URL (tools/test.sh starts one with tools/pg.sh and sets
    it). Without RP_TEST_PG_URL the PostgreSQL half says it was skipped.

    To run the PostgreSQL half by hand:
        export RP_TEST_PG_URL=$(tools/pg.sh start)
        build/test_db
*/
#include <criterion/criterion.h>
#include <czmq.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/db/migrations.h"
#include "tests/support/library.h"
#include "tests/support/pg.h"
#include "tests/support/testdata.h"

//  ---------------------------------------------------------------------------
//  Harness: one test body, two backends

static char *
s_sqlite_url (const char *name)
{
    char *dir = rp_test_tmpdir ("db");
    cr_assert_not_null (dir);
    char url [1024];
    snprintf (url, sizeof url, "sqlite:%s/%s.db", dir, name);
    free (dir);
    return strdup (url);
}

//  A url whose search_path is a fresh schema "test_db_<name>"
static char *
s_pg_url (const char *name)
{
    char schema [256], url [2048];
    snprintf (schema, sizeof schema, "db_%s", name);
    rp_test_pg_schema (schema, url, sizeof url);
    return strdup (url);
}

#define CONTRACT(name) \
    static void name (const char *url); \
    Test (sqlite, name, .timeout = 120) { char *u = s_sqlite_url (#name); name (u); free (u); } \
    Test (postgresql, name, .timeout = 120) { char *u = s_pg_url (#name); name (u); free (u); } \
    static void name (const char *url)

static bool
s_is_pg (const char *url)
{
    return strncmp (url, "postgres", 8) == 0;
}

//  How many migrations this binary carries for url's backend.
static int
s_scripts (const char *url)
{
    int n = 0;
    for (size_t i = 0; i < rp_migrations_count; i++)
        if (strcmp (rp_migrations [i].backend, s_is_pg (url) ? "postgresql" : "sqlite") == 0)
            n++;
    return n;
}

//  Run SQL behind the store's back (to look, or to arrange what the API
//  cannot, like equal timestamps); the first cell of the first row, or "".
//  The two texts are the same question in each dialect.
static char *
s_raw (const char *url, const char *sqlite_sql, const char *pg_sql)
{
    static char cell [1024];
    cell [0] = 0;
    if (s_is_pg (url)) {
        PGconn *conn = PQconnectdb (url);
        cr_assert_eq (PQstatus (conn), CONNECTION_OK, "%s", PQerrorMessage (conn));
        PGresult *res = PQexec (conn, pg_sql);
        ExecStatusType status = PQresultStatus (res);
        cr_assert (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK, "%s: %s", pg_sql,
                   PQerrorMessage (conn));
        if (status == PGRES_TUPLES_OK && PQntuples (res) > 0)
            snprintf (cell, sizeof cell, "%s", PQgetvalue (res, 0, 0));
        PQclear (res);
        PQfinish (conn);
    }
    else {
        sqlite3 *db = NULL;
        cr_assert_eq (sqlite3_open (url + 7, &db), SQLITE_OK);
        sqlite3_busy_timeout (db, 10000);
        sqlite3_stmt *stmt = NULL;
        const char *rest = sqlite_sql;
        while (rest && *rest) {
            cr_assert_eq (sqlite3_prepare_v2 (db, rest, -1, &stmt, &rest), SQLITE_OK, "%s: %s",
                          sqlite_sql, sqlite3_errmsg (db));
            if (!stmt)
                break;
            int rc;
            while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
                if (!cell [0] && sqlite3_column_text (stmt, 0))
                    snprintf (cell, sizeof cell, "%s", sqlite3_column_text (stmt, 0));
            cr_assert_eq (rc, SQLITE_DONE, "%s: %s", sqlite_sql, sqlite3_errmsg (db));
            sqlite3_finalize (stmt);
        }
        sqlite3_close (db);
    }
    return cell;
}

//  The same SQL on both backends
static char *
s_raw1 (const char *url, const char *sql)
{
    return s_raw (url, sql, sql);
}

static rp_db_t *
s_open (const char *url)
{
    char err [512] = "";
    rp_db_t *db = rp_db_open (url, err, sizeof err);
    cr_assert_not_null (db, "open: %s", err);
    int applied = -1;
    cr_assert_eq (rp_db_migrate (db, &applied, err, sizeof err), 0, "migrate: %s", err);
    return db;
}

static void
s_user (rp_db_t *db, const char *name, char id [RP_ID_MAX])
{
    char err [512] = "", hash [RP_PASSWORD_HASH_MAX];
    cr_assert_eq (rp_password_hash ("correct horse", hash, sizeof hash), 0);
    cr_assert_eq (rp_db_user_add (db, name, hash, id, err, sizeof err), 0, "%s", err);
}

//  A valid sha256 made from a number
static const char *
s_sha (int n)
{
    static char sha [8][65];
    static int next = 0;
    char *out = sha [next++ % 8];
    snprintf (out, 65, "%064d", n);
    return out;
}

//  Create a queued photo; returns its duplicate flag.
static bool
s_photo (rp_db_t *db, const char *user, int sha, const char *batch, const char *tags,
         char id [RP_ID_MAX], char batch_out [RP_ID_MAX])
{
    char err [512] = "", unused [RP_ID_MAX];
    rp_photo_new_t photo = {
        .user_id = user, .batch_id = batch, .filename = "IMG_0001.JPG", .sha256 = s_sha (sha),
        .bytes = 1234, .content_type = "image/jpeg", .status = "queued", .tags = tags,
    };
    bool duplicate = true;
    cr_assert_eq (rp_db_photo_create (db, &photo, id, batch_out ? batch_out : unused, &duplicate,
                                      err, sizeof err), 0, "%s", err);
    return duplicate;
}

static json_t *
s_get (rp_db_t *db, const char *user, const char *id)
{
    char err [512] = "";
    json_t *photo = NULL;
    cr_assert_eq (rp_db_photo_get (db, user, id, &photo, err, sizeof err), 0, "%s", err);
    return photo;
}

static const char *
s_str (json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

static json_int_t
s_int (json_t *object, const char *key)
{
    return json_integer_value (json_object_get (object, key));
}

static json_t *
s_claim (rp_db_t *db, int max)
{
    char err [512] = "";
    json_t *claimed = NULL;
    cr_assert_eq (rp_db_photo_claim (db, max, &claimed, err, sizeof err), 0, "%s", err);
    cr_assert (json_is_array (claimed));
    return claimed;
}

//  Flyway's checksum, computed here independently (bit by bit): CRC32 over
//  the file's lines without their line ends.
static long long
s_flyway_checksum (const char *path)
{
    FILE *file = fopen (path, "rb");
    cr_assert_not_null (file, "%s", path);
    uint32_t crc = 0xFFFFFFFFu;
    int c;
    while ((c = fgetc (file)) != EOF) {
        if (c == '\n' || c == '\r')
            continue;
        crc ^= (uint32_t) c;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    fclose (file);
    crc ^= 0xFFFFFFFFu;
    return (long long) (int32_t) crc;
}

//  ---------------------------------------------------------------------------
//  Passwords (no database)

Test (passwords, hashes_verify_and_are_not_the_password)
{
    char hash [RP_PASSWORD_HASH_MAX], again [RP_PASSWORD_HASH_MAX];
    cr_assert_eq (rp_password_hash ("s3cret pass", hash, sizeof hash), 0);
    cr_assert_eq (rp_password_hash ("s3cret pass", again, sizeof again), 0);
    cr_assert_eq (strncmp (hash, "scrypt$", 7), 0, "%s", hash);
    cr_assert_null (strstr (hash, "s3cret"));
    cr_assert_str_neq (hash, again, "each hash has its own salt");
    cr_assert (rp_password_verify ("s3cret pass", hash));
    cr_assert (rp_password_verify ("s3cret pass", again));
    cr_assert_not (rp_password_verify ("s3cret pasS", hash));
    cr_assert_not (rp_password_verify ("", hash));
    //  Malformed or greedy stored values are "no match", never a crash
    const char *bad [] = { "", "scrypt$", "scrypt$16384$8$1$zz$00", "plain",
                           "scrypt$16384$8$1$00112233445566778899aabbccddeeff$",
                           "scrypt$1073741824$8$1$00112233445566778899aabbccddeeff$00112233445566778899aabbccddeeff",
                           "scrypt$16385$8$1$00112233445566778899aabbccddeeff$00112233445566778899aabbccddeeff" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        cr_assert_not (rp_password_verify ("s3cret pass", bad [i]), "%s", bad [i]);
    char tiny [16];
    cr_assert_eq (rp_password_hash ("x", tiny, sizeof tiny), -1, "a short buffer is an error");
}

Test (db, urls_of_unknown_kinds_are_refused_with_a_reason)
{
    char err [512] = "";
    cr_assert_null (rp_db_open ("mysql://u:secret@h/db", err, sizeof err));
    cr_assert (strstr (err, "sqlite:") && !strstr (err, "secret"), "%s", err);
    cr_assert_null (rp_db_open ("sqlite:/nonexistent-dir/x/y.db", err, sizeof err));
    cr_assert (strstr (err, "/nonexistent-dir/x/y.db"), "%s", err);
}

//  ---------------------------------------------------------------------------
//  Schema and migrations

CONTRACT (migrate_records_flyway_history)
{
    char err [512] = "";
    rp_db_t *db = rp_db_open (url, err, sizeof err);
    cr_assert_not_null (db, "%s", err);
    cr_assert_str_eq (rp_db_backend (db), s_is_pg (url) ? "postgresql" : "sqlite");
    cr_assert_eq (rp_db_ping (db, err, sizeof err), 0, "%s", err);
    int applied = -1;
    cr_assert_eq (rp_db_migrate (db, &applied, err, sizeof err), 0, "%s", err);
    cr_assert_geq (applied, 1);

    //  Recorded as Flyway records it
    cr_assert_str_eq (s_raw1 (url, "SELECT description FROM flyway_schema_history WHERE version = '1'"), "init");
    cr_assert_str_eq (s_raw1 (url, "SELECT type FROM flyway_schema_history WHERE version = '1'"), "SQL");
    cr_assert_str_eq (s_raw1 (url, "SELECT script FROM flyway_schema_history WHERE version = '1'"), "V1__init.sql");
    cr_assert_str_eq (s_raw1 (url, "SELECT installed_rank FROM flyway_schema_history WHERE version = '1'"), "1");
    cr_assert_str_eq (s_raw (url, "SELECT success FROM flyway_schema_history WHERE version = '1'",
                             "SELECT success::text FROM flyway_schema_history WHERE version = '1'"),
                      s_is_pg (url) ? "true" : "1");
    if (s_is_pg (url))
        cr_assert_str_eq (s_raw1 (url, "SELECT installed_by FROM flyway_schema_history WHERE version = '1'"),
                          "rapidphoto");
    const char *source = getenv ("RP_SOURCE_DIR");
    if (source) {
        char path [1024], want [32];
        snprintf (path, sizeof path, "%s/schemas/%s/V1__init.sql", source, rp_db_backend (db));
        snprintf (want, sizeof want, "%lld", s_flyway_checksum (path));
        cr_assert_str_eq (s_raw1 (url, "SELECT checksum FROM flyway_schema_history WHERE version = '1'"),
                          want, "Flyway's CRC32 of the script's lines");
    }
    //  The runbook's query, exactly
    const char *runbook = "SELECT version, description, installed_on FROM flyway_schema_history "
                          "ORDER BY installed_rank DESC";
    cr_assert_neq (*s_raw1 (url, runbook), 0);

    //  Up to date: nothing more, from this connection or another
    cr_assert_eq (rp_db_migrate (db, &applied, err, sizeof err), 0, "%s", err);
    cr_assert_eq (applied, 0);
    rp_db_t *other = rp_db_open (url, err, sizeof err);
    cr_assert_eq (rp_db_migrate (other, &applied, err, sizeof err), 0, "%s", err);
    cr_assert_eq (applied, 0);
    rp_db_close (&other);
    cr_assert_null (other);

    //  A database a newer release migrated with expand migrations only
    //  (they add): this release runs on it (a rollback), and changes nothing
    s_raw (url,
           "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
           "checksum, installed_by, execution_time, success) "
           "VALUES (99, '999', 'future', 'SQL', 'V999__future.sql', 0, 'test', 0, 1)",
           "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
           "checksum, installed_by, execution_time, success) "
           "VALUES (99, '999', 'future', 'SQL', 'V999__future.sql', 0, 'test', 0, true)");
    cr_assert_eq (rp_db_migrate (db, &applied, err, sizeof err), 0, "%s", err);
    cr_assert_eq (applied, 0);
    char expected [16];
    snprintf (expected, sizeof expected, "%d", s_scripts (url) + 1);    //  ours and the future one
    cr_assert_str_eq (s_raw1 (url, "SELECT count(*) FROM flyway_schema_history"), expected);
    //  Once a newer release contracts (removes or changes what this one
    //  uses), this release refuses, naming the migration, and is left alone
    s_raw (url,
           "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
           "checksum, installed_by, execution_time, success) "
           "VALUES (100, '1000', 'contract drop', 'SQL', 'V1000__contract_drop.sql', 0, 'test', 0, 1)",
           "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
           "checksum, installed_by, execution_time, success) "
           "VALUES (100, '1000', 'contract drop', 'SQL', 'V1000__contract_drop.sql', 0, 'test', 0, true)");
    cr_assert_eq (rp_db_migrate (db, &applied, err, sizeof err), -1);
    cr_assert (strstr (err, "newer") && strstr (err, "V1000__contract_drop.sql"), "%s", err);
    snprintf (expected, sizeof expected, "%d", s_scripts (url) + 2);
    cr_assert_str_eq (s_raw1 (url, "SELECT count(*) FROM flyway_schema_history"), expected);
    rp_db_close (&db);
    rp_db_close (&db);      //  safe on NULL
}

typedef struct {
    const char *url;
    int applied;
    int rc;
    char err [512];
} s_migrator_t;

static void *
s_migrate_thread (void *arg)
{
    s_migrator_t *m = (s_migrator_t *) arg;
    rp_db_t *db = rp_db_open (m->url, m->err, sizeof m->err);
    m->rc = db ? rp_db_migrate (db, &m->applied, m->err, sizeof m->err) : -1;
    rp_db_close (&db);
    return NULL;
}

CONTRACT (concurrent_migrators_apply_each_script_once)
{
    s_migrator_t m [4];
    pthread_t threads [4];
    for (int i = 0; i < 4; i++) {
        memset (&m [i], 0, sizeof m [i]);
        m [i].url = url;
        pthread_create (&threads [i], NULL, s_migrate_thread, &m [i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join (threads [i], NULL);
        cr_assert_eq (m [i].rc, 0, "%s", m [i].err);
        total += m [i].applied;
    }
    char expected [16];
    snprintf (expected, sizeof expected, "%d", s_scripts (url));
    cr_assert_eq (total, s_scripts (url), "each script applied once (%d applied)", total);
    cr_assert_str_eq (s_raw1 (url, "SELECT count(*) FROM flyway_schema_history"), expected);
}

//  ---------------------------------------------------------------------------
//  Users

CONTRACT (users_add_find_list_and_change_passwords)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", hash [RP_PASSWORD_HASH_MAX], found [RP_ID_MAX], stored [512];
    char bob [RP_ID_MAX], alice [RP_ID_MAX];
    cr_assert_eq (rp_password_hash ("bob's password", hash, sizeof hash), 0);
    cr_assert_eq (rp_db_user_add (db, "bob", hash, bob, err, sizeof err), 0, "%s", err);
    cr_assert_eq (strlen (bob), 32);
    cr_assert_eq (rp_db_user_add (db, "bob", hash, found, err, sizeof err), RP_CONFLICT);
    cr_assert_str_eq (err, "user bob exists");
    s_user (db, "alice", alice);
    cr_assert_str_neq (alice, bob);

    cr_assert_eq (rp_db_user_find (db, "bob", found, stored, sizeof stored, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (found, bob);
    cr_assert_str_eq (stored, hash);
    cr_assert (rp_password_verify ("bob's password", stored));
    cr_assert_null (strstr (s_raw1 (url, "SELECT password_hash FROM users WHERE name = 'bob'"), "password"),
                    "the stored hash is not the password");
    cr_assert_eq (rp_db_user_find (db, "carol", found, NULL, 0, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_user_find (db, "bob", found, NULL, 0, err, sizeof err), 0, "no hash wanted");

    char photo [RP_ID_MAX];
    s_photo (db, bob, 1, NULL, NULL, photo, NULL);
    json_t *users = NULL;
    cr_assert_eq (rp_db_user_list (db, &users, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (users), 2);
    json_t *first = json_array_get (users, 0), *second = json_array_get (users, 1);
    cr_assert_str_eq (s_str (first, "name"), "alice", "ordered by name");
    cr_assert_str_eq (s_str (first, "id"), alice);
    cr_assert_eq (s_int (first, "photos"), 0);
    cr_assert_str_eq (s_str (second, "name"), "bob");
    cr_assert_eq (s_int (second, "photos"), 1);
    cr_assert_eq (strlen (s_str (second, "created_at")), 24, "%s", s_str (second, "created_at"));
    json_decref (users);

    char newer [RP_PASSWORD_HASH_MAX];
    cr_assert_eq (rp_password_hash ("another one", newer, sizeof newer), 0);
    cr_assert_eq (rp_db_user_set_password (db, "bob", newer, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_user_find (db, "bob", found, stored, sizeof stored, err, sizeof err), 0);
    cr_assert (rp_password_verify ("another one", stored));
    cr_assert_not (rp_password_verify ("bob's password", stored));
    cr_assert_eq (rp_db_user_set_password (db, "carol", newer, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_user_add (db, "", hash, found, err, sizeof err), RP_REFUSED);
    rp_db_close (&db);
}

//  ---------------------------------------------------------------------------
//  Photos: creation, duplicates, batches

CONTRACT (photo_create_and_duplicates_per_user)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], bob [RP_ID_MAX];
    s_user (db, "alice", alice);
    s_user (db, "bob", bob);
    char first [RP_ID_MAX], again [RP_ID_MAX], theirs [RP_ID_MAX], batch [RP_ID_MAX], batch2 [RP_ID_MAX];
    cr_assert_not (s_photo (db, alice, 7, NULL, "holiday, beach", first, batch));
    cr_assert_eq (strlen (first), 32);
    cr_assert_eq (strlen (batch), 32);
    cr_assert (s_photo (db, alice, 7, NULL, NULL, again, batch2), "same bytes, same user");
    cr_assert_str_eq (again, first);
    cr_assert_not (s_photo (db, bob, 7, NULL, NULL, theirs, NULL), "another user's bytes are theirs");
    cr_assert_str_neq (theirs, first);

    json_t *photo = s_get (db, alice, first);
    cr_assert_str_eq (s_str (photo, "id"), first);
    cr_assert_str_eq (s_str (photo, "filename"), "IMG_0001.JPG");
    cr_assert_str_eq (s_str (photo, "status"), "queued");
    cr_assert (json_is_null (json_object_get (photo, "error")));
    cr_assert_str_eq (s_str (photo, "sha256"), s_sha (7));
    cr_assert_eq (s_int (photo, "bytes"), 1234);
    cr_assert_str_eq (s_str (photo, "content_type"), "image/jpeg");
    cr_assert (json_is_null (json_object_get (photo, "width")));
    cr_assert (json_is_null (json_object_get (photo, "taken_at")));
    cr_assert (json_is_null (json_object_get (photo, "exif")));
    cr_assert_str_eq (s_str (photo, "batch_id"), batch);
    cr_assert_eq (s_int (photo, "attempts"), 0);
    const char *created = s_str (photo, "created_at");
    cr_assert (created && strlen (created) == 24 && created [10] == 'T' && created [23] == 'Z', "%s", created);
    json_t *tags = json_object_get (photo, "tags");
    cr_assert_eq (json_array_size (tags), 2);
    cr_assert_str_eq (json_string_value (json_array_get (tags, 0)), "beach");
    cr_assert_str_eq (json_string_value (json_array_get (tags, 1)), "holiday");
    json_decref (photo);

    //  Refused input changes nothing
    bool dup;
    char id [RP_ID_MAX];
    rp_photo_new_t bad = { .user_id = alice, .filename = "x.jpg", .sha256 = "ABC", .status = "queued" };
    cr_assert_eq (rp_db_photo_create (db, &bad, id, batch2, &dup, err, sizeof err), RP_REFUSED);
    bad.sha256 = s_sha (8);
    bad.status = "complete";
    cr_assert_eq (rp_db_photo_create (db, &bad, id, batch2, &dup, err, sizeof err), RP_REFUSED);
    bad.status = "uploading";
    bad.filename = "";
    cr_assert_eq (rp_db_photo_create (db, &bad, id, batch2, &dup, err, sizeof err), RP_REFUSED);
    //  Text as PostgreSQL takes it, on both backends: no UTF-16 surrogate,
    //  no overlong form, nothing past U+10FFFF
    static const char *const not_text [] = { "a\xed\xa0\x80.jpg", "\xc0\xaf.jpg", "\xe0\x80\xaf.jpg",
                                             "\xf4\x90\x80\x80.jpg", "\xff.jpg" };
    for (size_t i = 0; i < sizeof not_text / sizeof not_text [0]; i++) {
        bad.filename = not_text [i];
        cr_assert_eq (rp_db_photo_create (db, &bad, id, batch2, &dup, err, sizeof err), RP_REFUSED, "%zu", i);
        cr_assert (strstr (err, "file name"), "%s", err);
    }
    bad.filename = "x.jpg";
    char long_tag [100];
    memset (long_tag, 'x', 65);
    long_tag [65] = 0;
    bad.tags = long_tag;
    cr_assert_eq (rp_db_photo_create (db, &bad, id, batch2, &dup, err, sizeof err), RP_REFUSED);
    cr_assert_str_eq (s_raw1 (url, "SELECT count(*) FROM photos"), "2");
    rp_db_close (&db);
}

CONTRACT (batches_count_from_the_rows)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], bob [RP_ID_MAX];
    s_user (db, "alice", alice);
    s_user (db, "bob", bob);
    char batch [RP_ID_MAX], used [RP_ID_MAX], ids [3][RP_ID_MAX];
    s_photo (db, alice, 1, NULL, NULL, ids [0], batch);
    s_photo (db, alice, 2, batch, NULL, ids [1], used);
    cr_assert_str_eq (used, batch);
    s_photo (db, alice, 3, batch, NULL, ids [2], used);
    //  A batch id the caller chose is made when absent
    char mine [RP_ID_MAX], other [RP_ID_MAX];
    s_photo (db, alice, 4, "client-batch-1", NULL, mine, used);
    cr_assert_str_eq (used, "client-batch-1");
    //  ...but another user's batch is not found
    rp_photo_new_t photo = { .user_id = bob, .batch_id = batch, .filename = "b.jpg",
                             .sha256 = s_sha (5), .status = "queued" };
    bool dup;
    cr_assert_eq (rp_db_photo_create (db, &photo, other, used, &dup, err, sizeof err), RP_NOT_FOUND);

    json_t *claimed = s_claim (db, 1);
    cr_assert_eq (json_array_size (claimed), 1);
    const char *claimed_id = s_str (json_array_get (claimed, 0), "id");
    cr_assert_eq (rp_db_photo_complete (db, claimed_id, NULL, err, sizeof err), 0, "%s", err);
    json_decref (claimed);

    json_t *state = NULL;
    cr_assert_eq (rp_db_batch_get (db, alice, batch, &state, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (s_str (state, "id"), batch);
    json_t *counts = json_object_get (state, "counts");
    int64_t complete = s_int (counts, "complete");
    cr_assert_eq (s_int (state, "total"), 3);
    cr_assert_eq (s_int (counts, "queued") + complete, 3);
    cr_assert_eq (s_int (counts, "uploading") + s_int (counts, "processing") + s_int (counts, "failed"), 0);
    json_t *photos = json_object_get (state, "photos");
    cr_assert_eq (json_array_size (photos), 3);
    cr_assert_str_eq (s_str (json_array_get (photos, 0), "id"), ids [0], "in upload order");
    json_decref (state);

    cr_assert_eq (rp_db_batch_get (db, bob, batch, &state, err, sizeof err), RP_NOT_FOUND);
    cr_assert_null (state);
    cr_assert_eq (rp_db_batch_get (db, alice, "no-such-batch", &state, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_batch_get (db, alice, "'; --", &state, err, sizeof err), RP_NOT_FOUND);
    rp_db_close (&db);
}

//  ---------------------------------------------------------------------------
//  The state machine

CONTRACT (state_machine_claim_complete_retry_fail)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], a [RP_ID_MAX], b [RP_ID_MAX];
    s_user (db, "alice", alice);
    s_photo (db, alice, 1, NULL, NULL, a, NULL);

    //  queued -> processing, attempts + 1
    json_t *claimed = s_claim (db, 10);
    cr_assert_eq (json_array_size (claimed), 1);
    json_t *item = json_array_get (claimed, 0);
    cr_assert_str_eq (s_str (item, "id"), a);
    cr_assert_str_eq (s_str (item, "user_id"), alice);
    cr_assert_str_eq (s_str (item, "sha256"), s_sha (1));
    cr_assert_str_eq (s_str (item, "filename"), "IMG_0001.JPG");
    cr_assert_eq (s_int (item, "attempts"), 1);
    cr_assert_eq (strlen (s_str (item, "batch_id")), 32);
    json_decref (claimed);
    json_t *photo = s_get (db, alice, a);
    cr_assert_str_eq (s_str (photo, "status"), "processing");
    cr_assert_eq (s_int (photo, "attempts"), 1);
    json_decref (photo);
    claimed = s_claim (db, 10);
    cr_assert_eq (json_array_size (claimed), 0, "processing is not claimed again");
    json_decref (claimed);

    //  processing -> complete, with what the actors found
    json_t *result = json_pack ("{s:s, s:i, s:i, s:s, s:{s:s, s:s, s:i, s:n}}",
                                "content_type", "image/jpeg", "width", 3000, "height", 4000,
                                "taken_at", "2019-07-01T12:00:00+02:00",
                                "exif", "make", "Canon", "model", "EOS 5D", "iso", 200, "gps");
    cr_assert_eq (rp_db_photo_complete (db, a, result, err, sizeof err), 0, "%s", err);
    photo = s_get (db, alice, a);
    cr_assert_str_eq (s_str (photo, "status"), "complete");
    cr_assert_eq (s_int (photo, "width"), 3000);
    cr_assert_eq (s_int (photo, "height"), 4000);
    cr_assert_str_eq (s_str (photo, "taken_at"), "2019-07-01T12:00:00+02:00");
    json_t *exif = json_object_get (photo, "exif");
    cr_assert_str_eq (s_str (exif, "make"), "Canon");
    cr_assert_eq (s_int (exif, "iso"), 200);
    cr_assert (json_is_null (json_object_get (exif, "gps")));
    json_decref (photo);
    //  Finished: a late complete or fail is "not found" (not processing)
    cr_assert_eq (rp_db_photo_complete (db, a, result, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_photo_fail (db, a, "late", 0, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_photo_fail (db, "0123456789abcdef0123456789abcdef", "gone", 0, err, sizeof err),
                  RP_NOT_FOUND);
    json_decref (result);

    //  processing -> queued (retry after a backoff): not claimable until due
    s_photo (db, alice, 2, NULL, NULL, b, NULL);
    json_decref (s_claim (db, 10));
    cr_assert_eq (rp_db_photo_fail (db, b, "worker lost", 1500, err, sizeof err), 0, "%s", err);
    photo = s_get (db, alice, b);
    cr_assert_str_eq (s_str (photo, "status"), "queued");
    cr_assert_str_eq (s_str (photo, "error"), "worker lost", "the last reason is kept");
    json_decref (photo);
    cr_assert_str_eq (s_raw (url,
        "SELECT next_attempt_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM photos WHERE status = 'queued'",
        "SELECT (next_attempt_at > now())::text FROM photos WHERE status = 'queued'"),
        s_is_pg (url) ? "true" : "1", "next_attempt_at is in the future");
    claimed = s_claim (db, 10);
    cr_assert_eq (json_array_size (claimed), 0, "not due yet");
    json_decref (claimed);
    usleep (1700 * 1000);
    claimed = s_claim (db, 10);
    cr_assert_eq (json_array_size (claimed), 1, "due now");
    cr_assert_eq (s_int (json_array_get (claimed, 0), "attempts"), 2);
    json_decref (claimed);

    //  processing -> failed, for good
    cr_assert_eq (rp_db_photo_fail (db, b, "not an image: \xff\xfe bytes", 0, err, sizeof err), 0, "%s", err);
    photo = s_get (db, alice, b);
    cr_assert_str_eq (s_str (photo, "status"), "failed");
    cr_assert_str_eq (s_str (photo, "error"), "not an image: ?? bytes", "a reason is kept as readable text");
    json_decref (photo);
    cr_assert_eq (rp_db_photo_fail (db, b, "again", 0, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_photo_complete (db, b, NULL, err, sizeof err), RP_NOT_FOUND);

    //  uploading -> queued when the bytes arrive
    rp_photo_new_t up = { .user_id = alice, .filename = "late.jpg", .sha256 = s_sha (3), .bytes = 10,
                          .status = "uploading" };
    char c [RP_ID_MAX], batch [RP_ID_MAX];
    bool dup;
    cr_assert_eq (rp_db_photo_create (db, &up, c, batch, &dup, err, sizeof err), 0, "%s", err);
    claimed = s_claim (db, 10);
    cr_assert_eq (json_array_size (claimed), 0, "uploading is not claimed");
    json_decref (claimed);
    cr_assert_eq (rp_db_photo_uploaded (db, c, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_photo_uploaded (db, c, err, sizeof err), RP_NOT_FOUND);
    claimed = s_claim (db, 10);
    cr_assert_eq (json_array_size (claimed), 1);
    json_decref (claimed);

    json_t *counts = NULL;
    cr_assert_eq (rp_db_status_counts (db, &counts, err, sizeof err), 0, "%s", err);
    cr_assert_eq (s_int (counts, "complete"), 1);
    cr_assert_eq (s_int (counts, "failed"), 1);
    cr_assert_eq (s_int (counts, "processing"), 1);
    cr_assert_eq (s_int (counts, "queued") + s_int (counts, "uploading"), 0);
    json_decref (counts);
    rp_db_close (&db);
}

typedef struct {
    const char *url;
    json_t *ids;            //  every id this claimer got
    int rc;
    char err [512];
} s_claimer_t;

static void *
s_claim_thread (void *arg)
{
    s_claimer_t *c = (s_claimer_t *) arg;
    c->ids = json_array ();
    rp_db_t *db = rp_db_open (c->url, c->err, sizeof c->err);
    if (!db) {
        c->rc = -1;
        return NULL;
    }
    for (int idle = 0; idle < 3 && c->rc == 0;) {
        json_t *claimed = NULL;
        c->rc = rp_db_photo_claim (db, 3, &claimed, c->err, sizeof c->err);
        if (c->rc)
            break;
        idle = json_array_size (claimed) ? 0 : idle + 1;
        size_t i;
        json_t *item;
        json_array_foreach (claimed, i, item)
            json_array_append (c->ids, json_object_get (item, "id"));
        json_decref (claimed);
    }
    rp_db_close (&db);
    return NULL;
}

CONTRACT (claim_never_hands_out_a_photo_twice)
{
    rp_db_t *db = s_open (url);
    char alice [RP_ID_MAX], id [RP_ID_MAX];
    s_user (db, "alice", alice);
    for (int i = 0; i < 60; i++)
        s_photo (db, alice, 100 + i, NULL, NULL, id, NULL);

    //  Two connections, one after the other
    char err [512] = "";
    rp_db_t *other = rp_db_open (url, err, sizeof err);
    cr_assert_not_null (other, "%s", err);
    json_t *mine = s_claim (db, 5), *theirs = s_claim (other, 5);
    cr_assert_eq (json_array_size (mine), 5);
    cr_assert_eq (json_array_size (theirs), 5);
    json_t *seen = json_object ();
    json_t *lists [] = { mine, theirs };
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *item;
        json_array_foreach (lists [l], i, item) {
            cr_assert_null (json_object_get (seen, s_str (item, "id")), "claimed twice");
            json_object_set_new (seen, s_str (item, "id"), json_true ());
        }
    }
    json_decref (mine);
    json_decref (theirs);
    rp_db_close (&other);

    //  Four connections at once, racing for the other 50
    s_claimer_t claimers [4];
    pthread_t threads [4];
    for (int i = 0; i < 4; i++) {
        memset (&claimers [i], 0, sizeof claimers [i]);
        claimers [i].url = url;
        pthread_create (&threads [i], NULL, s_claim_thread, &claimers [i]);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join (threads [t], NULL);
        cr_assert_eq (claimers [t].rc, 0, "%s", claimers [t].err);
        size_t i;
        json_t *value;
        json_array_foreach (claimers [t].ids, i, value) {
            cr_assert_null (json_object_get (seen, json_string_value (value)), "claimed twice");
            json_object_set_new (seen, json_string_value (value), json_true ());
        }
        json_decref (claimers [t].ids);
    }
    cr_assert_eq (json_object_size (seen), 60, "every photo claimed exactly once");
    json_decref (seen);
    rp_db_close (&db);
}

CONTRACT (requeue_processing_after_a_crash)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], id [RP_ID_MAX];
    s_user (db, "alice", alice);
    for (int i = 0; i < 3; i++)
        s_photo (db, alice, i + 1, NULL, NULL, id, NULL);
    json_decref (s_claim (db, 2));
    rp_db_close (&db);

    //  "Restart": a new connection finds two photos left processing; with
    //  other engines about, only those stuck for long are theirs to take
    db = s_open (url);
    int requeued = -1;
    cr_assert_eq (rp_db_photo_requeue_processing (db, 3600 * 1000, &requeued, err, sizeof err), 0, "%s", err);
    cr_assert_eq (requeued, 0, "photos claimed just now are some engine's work in flight");
    usleep (300 * 1000);
    cr_assert_eq (rp_db_photo_requeue_processing (db, 200, &requeued, err, sizeof err), 0, "%s", err);
    cr_assert_eq (requeued, 2, "stuck for longer than 200 ms");
    json_decref (s_claim (db, 2));
    cr_assert_eq (rp_db_photo_requeue_processing (db, 0, &requeued, err, sizeof err), 0, "%s", err);
    cr_assert_eq (requeued, 2);
    json_t *counts = NULL;
    cr_assert_eq (rp_db_status_counts (db, &counts, err, sizeof err), 0, "%s", err);
    cr_assert_eq (s_int (counts, "queued"), 3);
    cr_assert_eq (s_int (counts, "processing"), 0);
    json_decref (counts);
    json_t *claimed = s_claim (db, 10);
    cr_assert_eq (json_array_size (claimed), 3, "due at once");
    size_t i;
    json_t *item;
    int64_t attempts = 0;
    json_array_foreach (claimed, i, item)
        attempts += s_int (item, "attempts");
    cr_assert_eq (attempts, 3 + 3 + 1, "attempts are kept across the requeue");
    json_decref (claimed);
    cr_assert_eq (rp_db_photo_requeue_processing (db, 0, &requeued, err, sizeof err), 0, "%s", err);
    cr_assert_eq (requeued, 3);
    rp_db_close (&db);
}

//  A stopping engine gives back what it claimed (library/pipeline.c, at
//  the end of a drain): queued again, due now, as if never claimed
CONTRACT (release_gives_a_claim_back)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], id [RP_ID_MAX];
    s_user (db, "alice", alice);
    s_photo (db, alice, 1, NULL, NULL, id, NULL);
    json_t *claimed = s_claim (db, 1);
    cr_assert_eq (s_int (json_array_get (claimed, 0), "attempts"), 1);
    json_decref (claimed);
    //  Only the claim it holds: another attempt is not its claim
    cr_assert_eq (rp_db_photo_release (db, id, 2, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_photo_release (db, id, 1, err, sizeof err), 0, "%s", err);
    json_t *photo = s_get (db, alice, id);
    cr_assert_str_eq (s_str (photo, "status"), "queued");
    json_decref (photo);
    cr_assert_eq (rp_db_photo_release (db, id, 1, err, sizeof err), RP_NOT_FOUND, "no longer processing");
    claimed = s_claim (db, 1);
    cr_assert_eq (json_array_size (claimed), 1, "due at once");
    cr_assert_eq (s_int (json_array_get (claimed, 0), "attempts"), 1, "the claim given back does not count");
    json_decref (claimed);
    //  On the event stream: queued again between the two claims
    if (s_is_pg (url))
        usleep (300 * 1000);            //  PostgreSQL shows events 200 ms after their commit
    json_t *events = NULL;
    cr_assert_eq (rp_db_events_after (db, alice, 0, 100, &events, err, sizeof err), 0, "%s", err);
    char sequence [128] = "";
    size_t i;
    json_t *event;
    json_array_foreach (events, i, event) {
        size_t used = strlen (sequence);
        snprintf (sequence + used, sizeof sequence - used, "%s%s", used ? "," : "", s_str (event, "status"));
    }
    cr_assert_str_eq (sequence, "queued,processing,queued,processing");
    json_decref (events);
    rp_db_close (&db);
}

//  ---------------------------------------------------------------------------
//  Listing

CONTRACT (list_pages_newest_first_stable_under_equal_times)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], id [RP_ID_MAX];
    s_user (db, "alice", alice);
    for (int i = 0; i < 25; i++)
        s_photo (db, alice, i + 1, NULL, i % 2 ? "odd" : NULL, id, NULL);
    //  All at the same millisecond: only the id tells them apart
    s_raw (url, "UPDATE photos SET created_at = '2026-11-29T02:10:00.123Z'",
           "UPDATE photos SET created_at = '2026-11-29T02:10:00.123Z'");

    json_t *seen = json_object ();
    char cursor [256] = "", previous [RP_ID_MAX] = "";
    int pages = 0;
    do {
        json_t *page = NULL;
        cr_assert_eq (rp_db_photo_list (db, alice, 10, *cursor ? cursor : NULL, NULL, NULL, &page,
                                        err, sizeof err), 0, "%s", err);
        json_t *items = json_object_get (page, "items");
        cr_assert_eq (json_array_size (items), pages < 2 ? 10 : 5);
        size_t i;
        json_t *photo;
        json_array_foreach (items, i, photo) {
            const char *photo_id = s_str (photo, "id");
            cr_assert_null (json_object_get (seen, photo_id), "%s listed twice", photo_id);
            json_object_set_new (seen, photo_id, json_true ());
            cr_assert_str_eq (s_str (photo, "created_at"), "2026-11-29T02:10:00.123Z");
            if (*previous)
                cr_assert_lt (strcmp (photo_id, previous), 0, "newest first, then by id");
            snprintf (previous, sizeof previous, "%s", photo_id);
        }
        const char *next = s_str (page, "next_cursor");
        if (pages < 2)
            cr_assert_not_null (next);
        else
            cr_assert (json_is_null (json_object_get (page, "next_cursor")), "the last page says so");
        snprintf (cursor, sizeof cursor, "%s", next ? next : "");
        json_decref (page);
        pages++;
    } while (*cursor && pages < 10);
    cr_assert_eq (pages, 3);
    cr_assert_eq (json_object_size (seen), 25);
    json_decref (seen);

    //  Distinct times: newest first
    s_raw (url, "UPDATE photos SET created_at = '2027-01-01T00:00:00.000Z' WHERE sha256 = '"
                "0000000000000000000000000000000000000000000000000000000000000007'",
                "UPDATE photos SET created_at = '2027-01-01T00:00:00.000Z' WHERE sha256 = '"
                "0000000000000000000000000000000000000000000000000000000000000007'");
    json_t *page = NULL;
    cr_assert_eq (rp_db_photo_list (db, alice, 1, NULL, NULL, NULL, &page, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (s_str (json_array_get (json_object_get (page, "items"), 0), "sha256"), s_sha (7));
    json_decref (page);

    //  A default limit, and a bound on a greedy one
    cr_assert_eq (rp_db_photo_list (db, alice, 0, NULL, NULL, NULL, &page, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 25);
    json_decref (page);
    cr_assert_eq (rp_db_photo_list (db, alice, 1000000, NULL, NULL, NULL, &page, err, sizeof err), 0);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 25);
    json_decref (page);
    rp_db_close (&db);
}

CONTRACT (list_filters_by_tag_and_status)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], id [RP_ID_MAX];
    s_user (db, "alice", alice);
    for (int i = 0; i < 6; i++)
        s_photo (db, alice, i + 1, NULL, i < 2 ? "été, plage" : "ville", id, NULL);
    json_decref (s_claim (db, 1));
    json_t *page = NULL;
    cr_assert_eq (rp_db_photo_list (db, alice, 50, NULL, "été", NULL, &page, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 2);
    json_decref (page);
    cr_assert_eq (rp_db_photo_list (db, alice, 50, NULL, "  ville ", NULL, &page, err, sizeof err), 0);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 4, "the tag is trimmed as stored");
    json_decref (page);
    cr_assert_eq (rp_db_photo_list (db, alice, 50, NULL, "Ville", NULL, &page, err, sizeof err), 0);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 0, "case is kept");
    json_decref (page);
    cr_assert_eq (rp_db_photo_list (db, alice, 50, NULL, NULL, "processing", &page, err, sizeof err), 0);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 1);
    json_decref (page);
    cr_assert_eq (rp_db_photo_list (db, alice, 50, NULL, NULL, "queued", &page, err, sizeof err), 0);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 5);
    json_decref (page);
    cr_assert_eq (rp_db_photo_list (db, alice, 50, NULL, "ville", "complete", &page, err, sizeof err), 0);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 0);
    json_decref (page);
    cr_assert_eq (rp_db_photo_list (db, alice, 50, "", "", "", &page, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 6, "empty filters are no filters");
    json_decref (page);
    cr_assert_eq (rp_db_photo_list (db, alice, 50, NULL, NULL, "done", &page, err, sizeof err), RP_REFUSED);
    cr_assert (strstr (err, "status"), "%s", err);
    cr_assert_null (page);
    rp_db_close (&db);
}

CONTRACT (a_malformed_cursor_is_an_error_with_a_reason)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], id [RP_ID_MAX];
    s_user (db, "alice", alice);
    for (int i = 0; i < 3; i++)
        s_photo (db, alice, i + 1, NULL, NULL, id, NULL);
    const char *bad [] = { "!!!", "%27%3B--", "' OR 1=1 --", "AAAA",
                           "MjAyNi0xMS0yOVQwMjoxMDowMC4xMjNa",              //  a time, no id
                           "bm90IGEgdGltZSBhdCBhbGwgMDEyMzQ1Njc4OWFiY2RlZg" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        json_t *page = NULL;
        err [0] = 0;
        cr_assert_eq (rp_db_photo_list (db, alice, 2, bad [i], NULL, NULL, &page, err, sizeof err), RP_REFUSED,
                      "cursor \"%s\" accepted", bad [i]);
        cr_assert (strstr (err, "cursor"), "%s", err);
        cr_assert_null (page);
    }
    char longer [4096];
    memset (longer, 'A', sizeof longer - 1);
    longer [sizeof longer - 1] = 0;
    json_t *page = NULL;
    cr_assert_eq (rp_db_photo_list (db, alice, 2, longer, NULL, NULL, &page, err, sizeof err), RP_REFUSED);
    //  A real one still works
    cr_assert_eq (rp_db_photo_list (db, alice, 2, NULL, NULL, NULL, &page, err, sizeof err), 0);
    char cursor [256];
    snprintf (cursor, sizeof cursor, "%s", s_str (page, "next_cursor"));
    json_decref (page);
    cr_assert_eq (rp_db_photo_list (db, alice, 2, cursor, NULL, NULL, &page, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 1);
    json_decref (page);
    rp_db_close (&db);
}

//  ---------------------------------------------------------------------------
//  Isolation, tags, deletion

CONTRACT (another_users_photo_is_not_found)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], bob [RP_ID_MAX], id [RP_ID_MAX], sha [65];
    s_user (db, "alice", alice);
    s_user (db, "bob", bob);
    s_photo (db, alice, 1, NULL, "private", id, NULL);
    json_t *photo = NULL;
    cr_assert_eq (rp_db_photo_get (db, bob, id, &photo, err, sizeof err), RP_NOT_FOUND);
    cr_assert_null (photo);
    bool unreferenced;
    cr_assert_eq (rp_db_photo_delete (db, bob, id, sha, &unreferenced, err, sizeof err), RP_NOT_FOUND);
    const char *tags [] = { "mine now" };
    cr_assert_eq (rp_db_photo_tags_set (db, bob, id, tags, 1, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_photo_tags_add (db, bob, id, tags, 1, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_photo_tag_remove (db, bob, id, "private", err, sizeof err), RP_NOT_FOUND);
    json_t *page = NULL;
    cr_assert_eq (rp_db_photo_list (db, bob, 50, NULL, NULL, NULL, &page, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 0);
    json_decref (page);
    cr_assert_eq (rp_db_photo_list (db, bob, 50, NULL, "private", NULL, &page, err, sizeof err), 0);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 0);
    json_decref (page);
    //  Alice's photo is untouched
    photo = s_get (db, alice, id);
    cr_assert_eq (json_array_size (json_object_get (photo, "tags")), 1);
    json_decref (photo);
    cr_assert_eq (rp_db_photo_get (db, alice, "not-an-id-at-all", &photo, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_photo_get (db, alice, "' OR '1'='1", &photo, err, sizeof err), RP_NOT_FOUND);
    rp_db_close (&db);
}

CONTRACT (tags_are_stored_literally)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], id [RP_ID_MAX];
    s_user (db, "alice", alice);
    s_photo (db, alice, 1, NULL, NULL, id, NULL);
    const char *evil = "'; DROP TABLE photos; --";
    const char *set [] = { evil, "été", "  spaced out  ", "Robert\"); DELETE FROM tags;--", "été" };
    cr_assert_eq (rp_db_photo_tags_set (db, alice, id, set, 5, err, sizeof err), 0, "%s", err);
    json_t *photo = s_get (db, alice, id);
    json_t *tags = json_object_get (photo, "tags");
    cr_assert_eq (json_array_size (tags), 4, "duplicates are kept once");
    const char *want [] = { "'; DROP TABLE photos; --", "Robert\"); DELETE FROM tags;--", "spaced out", "été" };
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq (json_string_value (json_array_get (tags, i)), want [i]);
    json_decref (photo);

    const char *add [] = { "été", "Été", "new" };
    cr_assert_eq (rp_db_photo_tags_add (db, alice, id, add, 3, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_photo_tag_remove (db, alice, id, evil, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_photo_tag_remove (db, alice, id, "never there", err, sizeof err), 0);
    photo = s_get (db, alice, id);
    tags = json_object_get (photo, "tags");
    const char *now [] = { "Robert\"); DELETE FROM tags;--", "new", "spaced out", "Été", "été" };
    cr_assert_eq (json_array_size (tags), 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq (json_string_value (json_array_get (tags, i)), now [i]);
    json_decref (photo);
    cr_assert_str_eq (s_raw1 (url, "SELECT count(*) FROM photos"), "1", "the photos table is still there");

    json_t *page = NULL;
    cr_assert_eq (rp_db_photo_list (db, alice, 10, NULL, "Robert\"); DELETE FROM tags;--", NULL, &page,
                                    err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 1);
    json_decref (page);

    //  Refused tags change nothing
    char long_tag [80];
    memset (long_tag, 'y', 65);
    long_tag [65] = 0;
    const char *bad [][2] = { { "fine", long_tag }, { "fine", "   " }, { "fine", "bad\xff" },
                              { "fine", "tab\there" } };
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq (rp_db_photo_tags_set (db, alice, id, bad [i], 2, err, sizeof err), RP_REFUSED, "%zu", i);
        cr_assert_eq (rp_db_photo_tags_add (db, alice, id, bad [i], 2, err, sizeof err), RP_REFUSED);
    }
    photo = s_get (db, alice, id);
    cr_assert_eq (json_array_size (json_object_get (photo, "tags")), 5);
    json_decref (photo);
    cr_assert_eq (rp_db_photo_tags_set (db, alice, id, NULL, 0, err, sizeof err), 0, "%s", err);
    photo = s_get (db, alice, id);
    cr_assert_eq (json_array_size (json_object_get (photo, "tags")), 0, "set to none clears");
    json_decref (photo);

    //  At most 100 per photo
    char many [101][8];
    const char *list [101];
    for (int i = 0; i < 101; i++) {
        snprintf (many [i], sizeof many [i], "t%d", i);
        list [i] = many [i];
    }
    cr_assert_eq (rp_db_photo_tags_set (db, alice, id, list, 100, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_photo_tags_add (db, alice, id, list + 100, 1, err, sizeof err), RP_REFUSED);
    cr_assert (strstr (err, "100"), "%s", err);
    rp_db_close (&db);
}

CONTRACT (delete_says_when_the_bytes_are_unreferenced)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], bob [RP_ID_MAX], a [RP_ID_MAX], b [RP_ID_MAX], sha [65];
    s_user (db, "alice", alice);
    s_user (db, "bob", bob);
    s_photo (db, alice, 42, NULL, "tagged", a, NULL);
    s_photo (db, bob, 42, NULL, NULL, b, NULL);
    int64_t refs = -1;
    cr_assert_eq (rp_db_sha_references (db, s_sha (42), &refs, err, sizeof err), 0, "%s", err);
    cr_assert_eq (refs, 2);

    bool unreferenced = true;
    cr_assert_eq (rp_db_photo_delete (db, alice, a, sha, &unreferenced, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (sha, s_sha (42));
    cr_assert_not (unreferenced, "bob's photo still needs the bytes");
    cr_assert_eq (rp_db_sha_references (db, s_sha (42), &refs, err, sizeof err), 0);
    cr_assert_eq (refs, 1);
    cr_assert_str_eq (s_raw1 (url, "SELECT count(*) FROM tags"), "0", "its tags went with it");
    cr_assert_eq (rp_db_photo_delete (db, alice, a, sha, &unreferenced, err, sizeof err), RP_NOT_FOUND);

    cr_assert_eq (rp_db_photo_delete (db, bob, b, sha, &unreferenced, err, sizeof err), 0, "%s", err);
    cr_assert (unreferenced, "nobody refers to the bytes now");
    cr_assert_eq (rp_db_sha_references (db, s_sha (42), &refs, err, sizeof err), 0);
    cr_assert_eq (refs, 0);
    cr_assert_eq (rp_db_sha_references (db, "nope", &refs, err, sizeof err), RP_REFUSED);

    //  Deleted: the same bytes upload again as a new photo
    char again [RP_ID_MAX];
    cr_assert_not (s_photo (db, alice, 42, NULL, NULL, again, NULL));
    cr_assert_str_neq (again, a);
    rp_db_close (&db);
}

//  ---------------------------------------------------------------------------
//  Durability: nothing acknowledged that was not committed

CONTRACT (a_refused_commit_leaves_no_row)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], id [RP_ID_MAX] = "", batch [RP_ID_MAX] = "";
    s_user (db, "alice", alice);
    setenv ("RP_FAULT_DB_COMMIT", "1", 1);
    rp_photo_new_t photo = { .user_id = alice, .filename = "a.jpg", .sha256 = s_sha (1), .bytes = 5,
                             .status = "queued", .tags = "one,two" };
    bool duplicate = true;
    int rc = rp_db_photo_create (db, &photo, id, batch, &duplicate, err, sizeof err);
    unsetenv ("RP_FAULT_DB_COMMIT");
    cr_assert_eq (rc, -1);
    cr_assert (strstr (err, "commit"), "%s", err);
    cr_assert_eq (id [0], 0, "no id is handed out");
    cr_assert_str_eq (s_raw1 (url, "SELECT count(*) FROM photos"), "0");
    cr_assert_str_eq (s_raw1 (url, "SELECT count(*) FROM batches"), "0");
    cr_assert_str_eq (s_raw1 (url, "SELECT count(*) FROM tags"), "0");
    json_t *page = NULL;
    cr_assert_eq (rp_db_photo_list (db, alice, 10, NULL, NULL, NULL, &page, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (json_object_get (page, "items")), 0);
    json_decref (page);
    //  The connection is fine afterwards
    cr_assert_not (s_photo (db, alice, 1, NULL, NULL, id, batch));
    cr_assert_str_eq (s_raw1 (url, "SELECT count(*) FROM photos"), "1");
    rp_db_close (&db);
}

//  ---------------------------------------------------------------------------
//  Resumable uploads (schema V3)

//  Create an upload (and its uploading photo) of `length` bytes (-1: deferred).
static void
s_upload (rp_db_t *db, const char *user, int64_t length, int64_t expires_ms, char id [RP_ID_MAX])
{
    char err [512] = "", batch [RP_ID_MAX];
    rp_tus_new_t upload = { .length = length, .metadata = "filename YS5qcGc=", .now_ms = 1000,
                            .expires_ms = expires_ms };
    rp_photo_new_t photo = { .user_id = user, .filename = "a.jpg", .bytes = length > 0 ? length : 0,
                             .status = "uploading", .tags = "trip", .upload = &upload };
    bool duplicate = true;
    cr_assert_eq (rp_db_photo_create (db, &photo, id, batch, &duplicate, err, sizeof err), 0, "%s", err);
    cr_assert_not (duplicate);
}

CONTRACT (resumable_upload_parts_lease_and_finish)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], bob [RP_ID_MAX], id [RP_ID_MAX];
    s_user (db, "alice", alice);
    s_user (db, "bob", bob);
    s_upload (db, alice, 300, 10000, id);

    //  The photo is uploading, without a sha256 yet, and only alice sees the upload
    json_t *photo = s_get (db, alice, id);
    cr_assert_str_eq (s_str (photo, "status"), "uploading");
    cr_assert (json_is_null (json_object_get (photo, "sha256")));
    json_decref (photo);
    rp_tus_t upload;
    cr_assert_eq (rp_db_tus_get (db, bob, id, &upload, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_tus_get (db, alice, id, &upload, err, sizeof err), 0, "%s", err);
    cr_assert_eq (upload.length, 300);
    cr_assert_eq (upload.received, 0);
    cr_assert_eq (upload.expires_ms, 10000);
    cr_assert_str_eq (upload.metadata, "filename YS5qcGc=");
    cr_assert_not (upload.done);
    rp_db_tus_clear (&upload);

    //  The lease: one holder at a time, taken over when it ran out or its
    //  holder is named dead
    cr_assert_eq (rp_db_tus_lock (db, id, "A", NULL, 2000, 5000, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_tus_lock (db, id, "B", NULL, 3000, 6000, err, sizeof err), RP_BUSY);
    cr_assert_eq (rp_db_tus_lock (db, id, "A", NULL, 3000, 7000, err, sizeof err), 0, "renewal");
    cr_assert_eq (rp_db_tus_lock (db, "nosuchupload", "A", NULL, 3000, 7000, err, sizeof err), RP_NOT_FOUND);

    //  Parts: appended at the durable offset by the holder only
    cr_assert_eq (rp_db_tus_append (db, id, "A", 0, 0, 100, "0-a.part", -1, 8000, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_tus_append (db, id, "B", 100, 100, 50, "100-b.part", -1, 8000, err, sizeof err),
                  RP_CONFLICT, "not the holder");
    cr_assert_eq (rp_db_tus_append (db, id, "A", 0, 0, 100, "0-c.part", -1, 8000, err, sizeof err),
                  RP_CONFLICT, "the offset moved on");
    //  A part grows in place (a long PATCH committing as it goes)
    cr_assert_eq (rp_db_tus_append (db, id, "A", 100, 100, 50, "100-a.part", -1, 8000, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_tus_append (db, id, "A", 150, 100, 150, "100-a.part", -1, 8000, err, sizeof err), 0, "%s", err);
    //  B takes over once A's lease ran out (now 9000 > 8000)
    cr_assert_eq (rp_db_tus_lock (db, id, "B", NULL, 9000, 12000, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_tus_append (db, id, "A", 250, 250, 10, "250-a.part", -1, 8000, err, sizeof err),
                  RP_CONFLICT, "A lost its lease");
    cr_assert_eq (rp_db_tus_append (db, id, "B", 250, 250, 50, "250-b.part", -1, 12000, err, sizeof err), 0, "%s", err);
    //  C takes over from B, named dead by the caller, before B's lease ends
    cr_assert_eq (rp_db_tus_lock (db, id, "C", "B", 9500, 13000, err, sizeof err), 0, "%s", err);

    json_t *parts = NULL;
    cr_assert_eq (rp_db_tus_parts (db, id, &parts, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (parts), 3);
    cr_assert_eq (s_int (json_array_get (parts, 1), "start"), 100);
    cr_assert_eq (s_int (json_array_get (parts, 1), "length"), 150);
    cr_assert_str_eq (s_str (json_array_get (parts, 2), "name"), "250-b.part");
    json_decref (parts);
    cr_assert_eq (rp_db_tus_get (db, NULL, id, &upload, err, sizeof err), 0, "%s", err);
    cr_assert_eq (upload.received, 300);
    cr_assert_str_eq (upload.lock_owner, "C");
    rp_db_tus_clear (&upload);

    //  Progress is on the event stream
    json_t *events = NULL;
    if (s_is_pg (url))
        usleep (300 * 1000);            //  PostgreSQL shows events 200 ms after their commit
    cr_assert_eq (rp_db_events_after (db, alice, 0, 100, &events, err, sizeof err), 0, "%s", err);
    json_t *last = json_array_get (events, json_array_size (events) - 1);
    cr_assert_str_eq (s_str (last, "status"), "uploading");
    cr_assert_eq (s_int (last, "received"), 300);
    cr_assert_eq (s_int (last, "length"), 300);
    json_decref (events);

    //  Only the lease's holder finishes: B, whose lease C took over, changes nothing
    char photo_id [RP_ID_MAX];
    bool duplicate = true;
    cr_assert_eq (rp_db_tus_finish (db, id, "B", s_sha (7), 300, "image/jpeg", NULL, photo_id, &duplicate, err, sizeof err),
                  RP_CONFLICT, "B lost its lease");
    photo = s_get (db, alice, id);
    cr_assert_str_eq (s_str (photo, "status"), "uploading");
    json_decref (photo);
    //  Finish: the photo is queued with its real sha256
    cr_assert_eq (rp_db_tus_finish (db, id, "C", s_sha (7), 300, "image/jpeg", NULL, photo_id, &duplicate, err, sizeof err), 0, "%s", err);
    cr_assert_not (duplicate);
    cr_assert_str_eq (photo_id, id);
    photo = s_get (db, alice, id);
    cr_assert_str_eq (s_str (photo, "status"), "queued");
    cr_assert_str_eq (s_str (photo, "sha256"), s_sha (7));
    cr_assert_eq (s_int (photo, "bytes"), 300);
    json_decref (photo);
    cr_assert_eq (rp_db_tus_get (db, alice, id, &upload, err, sizeof err), 0, "%s", err);
    cr_assert (upload.done);
    cr_assert_str_eq (upload.photo_id, id);
    cr_assert_str_eq (upload.lock_owner, "", "finishing frees the lease");
    rp_db_tus_clear (&upload);
    cr_assert_eq (rp_db_tus_append (db, id, "C", 300, 300, 1, "300-c.part", -1, 13000, err, sizeof err),
                  RP_CONFLICT, "a finished upload takes no more");
    //  Finishing twice: another call finished it (a conflict, never "not
    //  found", which would have the caller take the upload for deleted)
    cr_assert_eq (rp_db_tus_finish (db, id, NULL, s_sha (7), 300, "image/jpeg", NULL, photo_id, &duplicate, err, sizeof err),
                  RP_CONFLICT);
    rp_db_close (&db);
}

CONTRACT (resumable_upload_duplicate_fail_terminate_expire)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], first [RP_ID_MAX], dup [RP_ID_MAX], bad [RP_ID_MAX],
         gone [RP_ID_MAX], deferred [RP_ID_MAX], existing [RP_ID_MAX];
    s_user (db, "alice", alice);
    s_photo (db, alice, 42, NULL, NULL, existing, NULL);
    s_upload (db, alice, 10, 5000, first);
    s_upload (db, alice, 10, 5000, dup);
    s_upload (db, alice, 10, 5000, bad);
    s_upload (db, alice, 10, 900, gone);
    s_upload (db, alice, -1, 5000, deferred);

    //  Deferred length: set by the first part that knows it
    rp_tus_t upload;
    cr_assert_eq (rp_db_tus_get (db, alice, deferred, &upload, err, sizeof err), 0, "%s", err);
    cr_assert_eq (upload.length, -1);
    rp_db_tus_clear (&upload);
    cr_assert_eq (rp_db_tus_lock (db, deferred, "A", NULL, 1000, 2000, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_tus_append (db, deferred, "A", 0, 0, 5, "0.part", 20, 2000, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_tus_get (db, alice, deferred, &upload, err, sizeof err), 0, "%s", err);
    cr_assert_eq (upload.length, 20);
    cr_assert_eq (upload.received, 5);
    rp_db_tus_clear (&upload);

    //  Bytes the user already has: the uploading photo goes, the event says whose
    char photo_id [RP_ID_MAX];
    bool duplicate = false;
    cr_assert_eq (rp_db_tus_finish (db, dup, NULL, s_sha (42), 10, "image/jpeg", NULL, photo_id, &duplicate, err, sizeof err), 0, "%s", err);
    cr_assert (duplicate);
    cr_assert_str_eq (photo_id, existing);
    json_t *photo = NULL;
    cr_assert_eq (rp_db_photo_get (db, alice, dup, &photo, err, sizeof err), RP_NOT_FOUND);
    json_t *events = NULL;
    if (s_is_pg (url))
        usleep (300 * 1000);            //  PostgreSQL shows events 200 ms after their commit
    cr_assert_eq (rp_db_events_after (db, alice, 0, 100, &events, err, sizeof err), 0, "%s", err);
    json_t *last = json_array_get (events, json_array_size (events) - 1);
    cr_assert_str_eq (s_str (last, "id"), dup);
    cr_assert_str_eq (s_str (last, "status"), "duplicate");
    cr_assert_str_eq (s_str (last, "duplicate_of"), existing);
    json_decref (events);
    cr_assert_eq (rp_db_tus_get (db, alice, dup, &upload, err, sizeof err), 0, "%s", err);
    cr_assert (upload.done && upload.duplicate);
    cr_assert_str_eq (upload.photo_id, existing);
    rp_db_tus_clear (&upload);

    //  Refused: the photo fails with the reason, the upload goes
    cr_assert_eq (rp_db_tus_fail (db, bad, "not an image: it looks like text", err, sizeof err), 0, "%s", err);
    photo = s_get (db, alice, bad);
    cr_assert_str_eq (s_str (photo, "status"), "failed");
    cr_assert_str_eq (s_str (photo, "error"), "not an image: it looks like text");
    json_decref (photo);
    cr_assert_eq (rp_db_tus_get (db, alice, bad, &upload, err, sizeof err), RP_NOT_FOUND);

    //  Termination: only the owner; the photo goes while still uploading
    char bob [RP_ID_MAX];
    s_user (db, "bob", bob);
    cr_assert_eq (rp_db_tus_delete (db, bob, first, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_tus_delete (db, alice, first, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_photo_get (db, alice, first, &photo, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_tus_delete (db, alice, first, err, sizeof err), RP_NOT_FOUND);

    //  Expiry: what passed its time, oldest first
    json_t *expired = NULL;
    cr_assert_eq (rp_db_tus_expired (db, 1000, 100, &expired, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (expired), 1);
    cr_assert_str_eq (s_str (json_array_get (expired, 0), "id"), gone);
    json_decref (expired);
    cr_assert_eq (rp_db_tus_expired (db, 6000, 100, &expired, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (expired), 3, "gone, the duplicate's record, the deferred one");
    json_decref (expired);

    //  Hostile ids are simply not found
    cr_assert_eq (rp_db_tus_get (db, NULL, "'; DROP TABLE tus_uploads; --", &upload, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_tus_lock (db, "../../x", "A", NULL, 1, 2, err, sizeof err), RP_NOT_FOUND);
    rp_db_close (&db);
}

//  ---------------------------------------------------------------------------
//  The AWS bridges' rows (schema V4)

CONTRACT (s3_objects_remember_the_photo_each_object_became)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], a [RP_ID_MAX], found [RP_ID_MAX], status [16];
    s_user (db, "alice", alice);
    s_photo (db, alice, 1, NULL, NULL, a, NULL);
    const char *key = "incoming/alice/IMG 0001.jpg";
    cr_assert_eq (rp_db_s3_object_find (db, "photos", key, "etag1", found, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_s3_object_record (db, "photos", key, "etag1", a, err, sizeof err), 0, "%s", err);
    //  Recorded twice (two engines): the first stays
    cr_assert_eq (rp_db_s3_object_record (db, "photos", key, "etag1", "another", err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_s3_object_find (db, "photos", key, "etag1", found, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (found, a);
    //  The same key with other bytes (another ETag) or in another bucket is another object
    cr_assert_eq (rp_db_s3_object_find (db, "photos", key, "etag2", found, err, sizeof err), RP_NOT_FOUND);
    cr_assert_eq (rp_db_s3_object_find (db, "other", key, "etag1", found, err, sizeof err), RP_NOT_FOUND);

    cr_assert_eq (rp_db_photo_status (db, a, status, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (status, "queued");
    cr_assert_eq (rp_db_photo_status (db, "0123456789abcdef0123456789abcdef", status, err, sizeof err),
                  RP_NOT_FOUND);
    cr_assert_eq (rp_db_photo_status (db, "'; DROP TABLE photos; --", status, err, sizeof err), RP_NOT_FOUND);
    rp_db_close (&db);
}

//  Complete or fail a claimed photo
static void
s_finish (rp_db_t *db, const char *id, bool complete)
{
    char err [512] = "";
    json_t *claimed = s_claim (db, 1);
    cr_assert_eq (json_array_size (claimed), 1);
    cr_assert_str_eq (s_str (json_array_get (claimed, 0), "id"), id);
    json_decref (claimed);
    if (complete) {
        json_t *result = json_pack ("{s:s, s:i, s:i}", "content_type", "image/jpeg", "width", 4, "height", 3);
        cr_assert_eq (rp_db_photo_complete (db, id, result, err, sizeof err), 0, "%s", err);
        json_decref (result);
    }
    else
        cr_assert_eq (rp_db_photo_fail (db, id, "not a photo", 0, err, sizeof err), 0, "%s", err);
}

CONTRACT (outbox_publishes_every_outcome_once_under_one_lease)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], old [RP_ID_MAX], a [RP_ID_MAX], b [RP_ID_MAX];
    s_user (db, "alice", alice);
    //  History before the first publisher is not replayed
    s_photo (db, alice, 1, NULL, NULL, old, NULL);
    s_finish (db, old, true);
    int64_t cursor = -1;
    json_t *events = NULL;
    cr_assert_eq (rp_db_outbox_claim (db, "sqs-events", "engine-1", 1000, 16000, 10, &cursor, &events,
                                      err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (events), 0);
    json_decref (events);

    s_photo (db, alice, 2, NULL, NULL, a, NULL);
    s_photo (db, alice, 3, NULL, NULL, b, NULL);
    s_finish (db, a, true);
    s_finish (db, b, false);
    //  (An event whose transaction commits late is never passed over:
    //  outbox_never_passes_an_event_whose_transaction_commits_late.)
    //  Another engine may not publish while the lease holds
    cr_assert_eq (rp_db_outbox_claim (db, "sqs-events", "engine-2", 2000, 17000, 10, &cursor, &events,
                                      err, sizeof err), RP_BUSY);
    cr_assert_eq (rp_test_outbox_claim_at_least (db, "sqs-events", "engine-1", 2000, 17000, 10, 2, &cursor,
                                                 &events, err, sizeof err), 0, "%s", err);
    //  Only outcomes: queued and processing events are not published
    cr_assert_eq (json_array_size (events), 2, "%s", json_dumps (events, 0));
    json_t *first = json_array_get (events, 0), *second = json_array_get (events, 1);
    cr_assert_str_eq (s_str (first, "id"), a);
    cr_assert_str_eq (s_str (first, "status"), "complete");
    cr_assert_str_eq (s_str (first, "user"), "alice");
    cr_assert_str_eq (s_str (first, "user_id"), alice);
    cr_assert_str_eq (s_str (first, "sha256"), s_sha (2));
    cr_assert_eq (s_int (first, "bytes"), 1234);
    cr_assert (json_is_null (json_object_get (first, "error")));
    cr_assert_str_eq (s_str (second, "id"), b);
    cr_assert_str_eq (s_str (second, "status"), "failed");
    cr_assert_str_eq (s_str (second, "error"), "not a photo");
    int64_t last = s_int (second, "event_id");
    cr_assert_gt (last, s_int (first, "event_id"));
    json_decref (events);

    //  The lease ran out: engine-2 takes over, and engine-1 can no longer move the cursor
    cr_assert_eq (rp_db_outbox_claim (db, "sqs-events", "engine-2", 20000, 35000, 10, &cursor, &events,
                                      err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (events), 2, "nothing was recorded as published: sent again");
    json_decref (events);
    cr_assert_eq (rp_db_outbox_advance (db, "sqs-events", "engine-1", last, err, sizeof err), RP_CONFLICT);
    cr_assert_eq (rp_db_outbox_advance (db, "sqs-events", "engine-2", last, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_outbox_claim (db, "sqs-events", "engine-2", 21000, 36000, 10, &cursor, &events,
                                      err, sizeof err), 0, "%s", err);
    cr_assert_eq (cursor, last);
    cr_assert_eq (json_array_size (events), 0, "published events are not sent again");
    json_decref (events);
    rp_db_close (&db);
}

//  PostgreSQL hands out event ids at insert, not at commit: a transaction
//  that took its id first can commit after a later one was published. The
//  outbox must wait for it (schema V6: transaction order), never move past
//  it. (SQLite has one writer at a time: ids are in commit order.)
Test (postgresql, outbox_never_passes_an_event_whose_transaction_commits_late, .timeout = 120)
{
    char *url = s_pg_url ("outbox_late");
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], late [RP_ID_MAX], early [RP_ID_MAX];
    s_user (db, "alice", alice);
    s_photo (db, alice, 1, NULL, NULL, early, NULL);        //  claimed first
    s_photo (db, alice, 2, NULL, NULL, late, NULL);
    int64_t cursor = -1;
    json_t *events = NULL;
    cr_assert_eq (rp_db_outbox_claim (db, "sqs-events", "engine-1", 1000, 60000, 10, &cursor, &events,
                                      err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (events), 0);
    json_decref (events);

    //  One transaction writes its outcome first and stays open (a stall
    //  between its last statement and its commit)...
    PGconn *slow = PQconnectdb (url);
    cr_assert_eq (PQstatus (slow), CONNECTION_OK, "%s", PQerrorMessage (slow));
    char sql [512];
    snprintf (sql, sizeof sql, "BEGIN; INSERT INTO events (user_id, photo_id, status) "
                               "VALUES ('%s', '%s', 'complete')", alice, late);
    PGresult *res = PQexec (slow, sql);
    cr_assert_eq (PQresultStatus (res), PGRES_COMMAND_OK, "%s", PQerrorMessage (slow));
    PQclear (res);
    //  ...while another commits an outcome with a higher id
    s_finish (db, early, true);
    //  Longer than any settling time a reader might wait (V4 waited 5 s)
    usleep (5500 * 1000);
    cr_assert_eq (rp_db_outbox_claim (db, "sqs-events", "engine-1", 2000, 60000, 10, &cursor, &events,
                                      err, sizeof err), 0, "%s", err);
    size_t published = json_array_size (events);
    if (published) {
        //  Whatever it read, it records as published, as the bridge does
        int64_t last = s_int (json_array_get (events, published - 1), "event_id");
        cr_assert_eq (rp_db_outbox_advance (db, "sqs-events", "engine-1", last, err, sizeof err), 0, "%s", err);
    }
    json_decref (events);

    //  The slow one commits: both outcomes are published, the late one
    //  first (its transaction is the older), each once
    res = PQexec (slow, "COMMIT");
    cr_assert_eq (PQresultStatus (res), PGRES_COMMAND_OK, "%s", PQerrorMessage (slow));
    PQclear (res);
    PQfinish (slow);
    zhash_t *seen = zhash_new ();
    for (int round = 0; round < 3; round++) {
        //  (the first round waits for both: other suites' transactions, older than the
        //  slow one's commit, may still be open)
        cr_assert_eq (rp_test_outbox_claim_at_least (db, "sqs-events", "engine-1", 3000, 60000, 10,
                                                     round == 0 ? 2 : 0, &cursor, &events, err, sizeof err),
                      0, "%s", err);
        size_t n = json_array_size (events);
        for (size_t i = 0; i < n; i++) {
            const char *id = s_str (json_array_get (events, i), "id");
            cr_assert_eq (zhash_insert (seen, id, "x"), 0, "photo %s published twice", id);
        }
        if (n) {
            int64_t last = s_int (json_array_get (events, n - 1), "event_id");
            cr_assert_eq (rp_db_outbox_advance (db, "sqs-events", "engine-1", last, err, sizeof err), 0,
                          "%s", err);
        }
        json_decref (events);
    }
    cr_assert_not_null (zhash_lookup (seen, late), "the outcome whose transaction committed late was "
                        "passed over");
    cr_assert_eq (published, 0, "nothing is published while an older transaction is open");
    cr_assert_not_null (zhash_lookup (seen, early));
    cr_assert_eq (zhash_size (seen), 2);
    zhash_destroy (&seen);
    rp_db_close (&db);
    free (url);
}

//  ---------------------------------------------------------------------------
//  Stored bytes (schema V5): tombstones, the collection, the lock on an address

//  A bytes hook that counts its calls and answers `answer`
typedef struct {
    int calls;
    int answer;
} s_hook_t;

static int
s_hook (void *arg, const char *sha256, char *err, size_t errlen)
{
    s_hook_t *hook = (s_hook_t *) arg;
    hook->calls++;
    if (hook->answer)
        snprintf (err, errlen, "the hook says no for %.12s", sha256);
    return hook->answer;
}

static int
s_tombstones (rp_db_t *db)
{
    char err [512] = "";
    json_t *list = NULL;
    cr_assert_eq (rp_db_bytes_tombstones (db, 100, &list, err, sizeof err), 0, "%s", err);
    int n = (int) json_array_size (list);
    json_decref (list);
    return n;
}

CONTRACT (tombstones_are_hints_the_collection_counts_under_the_lock)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], bob [RP_ID_MAX], a [RP_ID_MAX], b [RP_ID_MAX], sha [65];
    s_user (db, "alice", alice);
    s_user (db, "bob", bob);
    s_photo (db, alice, 42, NULL, NULL, a, NULL);
    s_photo (db, bob, 42, NULL, NULL, b, NULL);
    //  A delete records a tombstone only when it leaves the address unreferenced
    bool unreferenced = true;
    cr_assert_eq (rp_db_photo_delete (db, alice, a, sha, &unreferenced, err, sizeof err), 0, "%s", err);
    cr_assert_eq (s_tombstones (db), 0);
    cr_assert_eq (rp_db_photo_delete (db, bob, b, sha, &unreferenced, err, sizeof err), 0, "%s", err);
    cr_assert (unreferenced);
    json_t *list = NULL;
    cr_assert_eq (rp_db_bytes_tombstones (db, 10, &list, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (list), 1);
    cr_assert_str_eq (json_string_value (json_array_get (list, 0)), s_sha (42));
    json_decref (list);

    //  The same bytes taken in again: the row's commit drops the tombstone,
    //  under the lock, after the caller's hook made sure of the bytes
    s_hook_t present = { 0, 0 };
    rp_db_bytes_hook_t present_hook = { s_hook, &present };
    rp_photo_new_t photo = { .user_id = alice, .filename = "again.jpg", .sha256 = s_sha (42), .bytes = 1,
                             .status = "queued", .hook = &present_hook };
    char batch [RP_ID_MAX];
    bool duplicate = true;
    cr_assert_eq (rp_db_photo_create (db, &photo, a, batch, &duplicate, err, sizeof err), 0, "%s", err);
    cr_assert_eq (present.calls, 1);
    cr_assert_eq (s_tombstones (db), 0);
    //  A hook that fails fails the create: no row
    s_hook_t refuse = { 0, RP_UNAVAILABLE };
    rp_db_bytes_hook_t refuse_hook = { s_hook, &refuse };
    photo.user_id = bob;
    photo.hook = &refuse_hook;
    cr_assert_eq (rp_db_photo_create (db, &photo, b, batch, &duplicate, err, sizeof err), RP_UNAVAILABLE);
    cr_assert (strstr (err, "the hook says no"), "%s", err);
    cr_assert_eq (rp_db_photo_find_sha (db, bob, s_sha (42), b, err, sizeof err), RP_NOT_FOUND);

    //  A tombstone is a hint: referred to again, nothing is removed and it goes
    cr_assert_eq (rp_db_bytes_tombstone (db, s_sha (42), err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_bytes_tombstone (db, s_sha (42), err, sizeof err), 0, "twice is once: %s", err);
    cr_assert_eq (s_tombstones (db), 1);
    s_hook_t remove = { 0, 0 };
    rp_db_bytes_hook_t remove_hook = { s_hook, &remove };
    bool removed = true;
    cr_assert_eq (rp_db_bytes_collect (db, s_sha (42), &remove_hook, &removed, err, sizeof err), 0, "%s", err);
    cr_assert_not (removed);
    cr_assert_eq (remove.calls, 0, "alice's photo needs the bytes");
    cr_assert_eq (s_tombstones (db), 0);

    //  Unreferenced: a removal that fails keeps the tombstone for another try
    cr_assert_eq (rp_db_photo_delete (db, alice, a, sha, &unreferenced, err, sizeof err), 0, "%s", err);
    cr_assert_eq (s_tombstones (db), 1);
    cr_assert_eq (rp_db_bytes_collect (db, s_sha (42), &refuse_hook, &removed, err, sizeof err), RP_UNAVAILABLE);
    cr_assert_not (removed);
    cr_assert_eq (s_tombstones (db), 1);
    cr_assert_eq (rp_db_bytes_collect (db, s_sha (42), &remove_hook, &removed, err, sizeof err), 0, "%s", err);
    cr_assert (removed);
    cr_assert_eq (remove.calls, 1);
    cr_assert_eq (s_tombstones (db), 0);
    //  Any address may be collected (the start-up sweep): no tombstone needed
    cr_assert_eq (rp_db_bytes_collect (db, s_sha (43), &remove_hook, &removed, err, sizeof err), 0, "%s", err);
    cr_assert (removed);
    cr_assert_eq (rp_db_bytes_collect (db, "nope", &remove_hook, &removed, err, sizeof err), RP_REFUSED);
    cr_assert_eq (rp_db_bytes_tombstone (db, "nope", err, sizeof err), RP_REFUSED);

    //  An upload's placeholder has no bytes: deleting it leaves no tombstone
    char upload [RP_ID_MAX];
    s_upload (db, alice, 10, 5000, upload);
    cr_assert_eq (rp_db_photo_delete (db, alice, upload, sha, &unreferenced, err, sizeof err), 0, "%s", err);
    cr_assert_not (unreferenced);
    cr_assert_eq (s_tombstones (db), 0);
    rp_db_close (&db);
}

//  One side of a race on an address, on its own connection: a collection
//  or a photo's create whose hook waits hold_ms inside the transaction.
typedef struct {
    const char *url;
    int sha;
    bool collect;
    int hold_ms;
    int64_t entered_ms;             //  when the hook began (0: not yet)
    int64_t left_ms;                //  when it returned
    int rc;
    bool removed;
    char err [512];
} s_racer_t;

static int
s_racer_hook (void *arg, const char *sha256, char *err, size_t errlen)
{
    s_racer_t *racer = (s_racer_t *) arg;
    __atomic_store_n (&racer->entered_ms, rp_clock_ms (), __ATOMIC_SEQ_CST);
    usleep ((useconds_t) racer->hold_ms * 1000);
    racer->left_ms = rp_clock_ms ();
    return 0;
}

static void *
s_racer (void *arg)
{
    s_racer_t *racer = (s_racer_t *) arg;
    char err [512];
    rp_db_t *db = rp_db_open (racer->url, err, sizeof err);
    if (!db) {
        racer->rc = -1;
        snprintf (racer->err, sizeof racer->err, "%s", err);
        return NULL;
    }
    rp_db_bytes_hook_t hook = { s_racer_hook, racer };
    if (racer->collect)
        racer->rc = rp_db_bytes_collect (db, s_sha (racer->sha), &hook, &racer->removed, racer->err,
                                         sizeof racer->err);
    else {
        char user [RP_ID_MAX], id [RP_ID_MAX], batch [RP_ID_MAX];
        bool duplicate = false;
        racer->rc = rp_db_user_find (db, "alice", user, NULL, 0, racer->err, sizeof racer->err);
        rp_photo_new_t photo = { .user_id = user, .filename = "race.jpg", .sha256 = s_sha (racer->sha),
                                 .bytes = 1, .status = "queued", .hook = &hook };
        if (racer->rc == 0)
            racer->rc = rp_db_photo_create (db, &photo, id, batch, &duplicate, racer->err, sizeof racer->err);
    }
    rp_db_close (&db);
    return NULL;
}

//  Start `first`, wait until its hook holds the lock, then run `second`
//  to the end while first still holds it
static void
s_race_pair (s_racer_t *first, s_racer_t *second)
{
    pthread_t thread;
    pthread_create (&thread, NULL, s_racer, first);
    for (int waited = 0; !__atomic_load_n (&first->entered_ms, __ATOMIC_SEQ_CST) && waited < 10000; waited += 5)
        usleep (5000);
    cr_assert_gt (first->entered_ms, 0, "the first side reached its hook: %s", first->err);
    s_racer (second);
    pthread_join (thread, NULL);
    cr_assert_eq (first->rc, 0, "%s", first->err);
    cr_assert_eq (second->rc, 0, "%s", second->err);
}

CONTRACT (a_collection_and_a_row_for_the_same_address_never_interleave)
{
    rp_db_t *db = s_open (url);
    char alice [RP_ID_MAX];
    s_user (db, "alice", alice);
    rp_db_close (&db);
    //  A collection holds the address: a row for it waits, and its hook
    //  (the ingest putting the bytes back) runs once the removal is over
    s_racer_t collect = { .url = url, .sha = 51, .collect = true, .hold_ms = 500 };
    s_racer_t create = { .url = url, .sha = 51, .collect = false, .hold_ms = 0 };
    s_race_pair (&collect, &create);
    cr_assert (collect.removed, "nothing referred to the address when the collection took it");
    cr_assert_geq (create.entered_ms, collect.left_ms, "the row's hook ran %lld ms before the removal ended",
                   (long long) (collect.left_ms - create.entered_ms));
    //  A row being committed holds the address: the collection waits for
    //  it, then counts it and removes nothing
    s_racer_t create2 = { .url = url, .sha = 52, .collect = false, .hold_ms = 500 };
    s_racer_t collect2 = { .url = url, .sha = 52, .collect = true, .hold_ms = 0 };
    s_race_pair (&create2, &collect2);
    cr_assert_not (collect2.removed, "the collection counted the row committed while it waited");
    cr_assert_eq (collect2.entered_ms, 0, "its removal never ran");
    rp_db_close (&db);
}

//  ---------------------------------------------------------------------------
//  What the gateway's limits ask of the store

CONTRACT (gateway_limits_read_whose_news_stamps_and_open_uploads)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], bob [RP_ID_MAX], a [RP_ID_MAX], b [RP_ID_MAX];
    s_user (db, "alice", alice);
    s_user (db, "bob", bob);
    //  Whose events are newer than an id, with each one's newest
    int64_t start = 0;
    cr_assert_eq (rp_db_events_last (db, NULL, &start, err, sizeof err), 0, "%s", err);
    //  ... looked for sooner when this process's write count moves: every
    //  photo created moves it, reading does not
    int64_t writes = rp_db_write_commits ();
    s_photo (db, alice, 1, NULL, NULL, a, NULL);
    cr_assert_gt (rp_db_write_commits (), writes, "a photo's creation is a write commit");
    s_photo (db, alice, 2, NULL, NULL, b, NULL);
    writes = rp_db_write_commits ();
    int64_t alice_last = 0;
    cr_assert_eq (rp_db_events_last (db, alice, &alice_last, err, sizeof err), 0, "%s", err);
    json_decref (s_get (db, alice, a));
    cr_assert_eq (rp_db_write_commits (), writes, "reads are not counted");
    json_t *users = NULL;
    cr_assert_eq (rp_db_events_users (db, start, 100, &users, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_object_size (users), 1, "only alice has news: %s", json_dumps (users, 0));
    cr_assert_eq (json_integer_value (json_object_get (users, alice)), alice_last);
    json_decref (users);
    cr_assert_eq (rp_db_events_users (db, alice_last, 100, &users, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_object_size (users), 0, "nothing after the newest");
    json_decref (users);
    //  A user's password hash by id, as the tokens' stamp wants it
    char hash [RP_PASSWORD_HASH_MAX], found [RP_ID_MAX], by_name [RP_PASSWORD_HASH_MAX];
    cr_assert_eq (rp_db_user_hash (db, alice, hash, sizeof hash, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_db_user_find (db, "alice", found, by_name, sizeof by_name, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (hash, by_name);
    cr_assert_eq (rp_db_user_hash (db, "00000000000000000000000000000000", hash, sizeof hash, err, sizeof err),
                  RP_NOT_FOUND);
    //  Unfinished uploads of a user that have not expired
    for (int i = 0; i < 3; i++) {
        char id [RP_ID_MAX];
        s_upload (db, bob, 100, i == 2 ? 5000 : 90000, id);
    }
    int64_t open = -1;
    cr_assert_eq (rp_db_tus_open (db, bob, 10000, &open, err, sizeof err), 0, "%s", err);
    cr_assert_eq (open, 2, "the expired one does not count");
    cr_assert_eq (rp_db_tus_open (db, alice, 10000, &open, err, sizeof err), 0, "%s", err);
    cr_assert_eq (open, 0);
    rp_db_close (&db);
}

//  ---------------------------------------------------------------------------
//  Bit-rot checks (schema V10): which addresses are due, what a check found

CONTRACT (scrub_marks_an_address_walks_by_last_check)
{
    rp_db_t *db = s_open (url);
    char err [512] = "", alice [RP_ID_MAX], bob [RP_ID_MAX];
    s_user (db, "alice", alice);
    s_user (db, "bob", bob);
    //  alice: bytes 1 and 2; bob: bytes 1 too (shared); alice: bytes 3, left queued
    char a1 [RP_ID_MAX], a2 [RP_ID_MAX], b1 [RP_ID_MAX], a3 [RP_ID_MAX];
    s_photo (db, alice, 1, NULL, NULL, a1, NULL);
    s_photo (db, alice, 2, NULL, NULL, a2, NULL);
    s_photo (db, bob, 1, NULL, NULL, b1, NULL);
    json_t *claimed = s_claim (db, 3);
    cr_assert_eq (json_array_size (claimed), 3);
    size_t i;
    json_t *item;
    json_array_foreach (claimed, i, item)
        cr_assert_eq (rp_db_photo_complete (db, s_str (item, "id"), NULL, err, sizeof err), 0, "%s", err);
    json_decref (claimed);
    s_photo (db, alice, 3, NULL, NULL, a3, NULL);

    //  Never checked: null in the photo JSON
    json_t *photo = s_get (db, alice, a1);
    cr_assert (json_is_null (json_object_get (photo, "integrity")));
    cr_assert (json_is_null (json_object_get (photo, "checked_at")));
    json_decref (photo);

    //  A whole pass: complete photos only, one row per address, by sha256
    json_t *due = NULL;
    cr_assert_eq (rp_db_scrub_due (db, "", 0, 100, &due, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (due), 2, "addresses 1 and 2, not the queued 3");
    cr_assert_str_eq (s_str (json_array_get (due, 0), "sha256"), s_sha (1));
    cr_assert_str_eq (s_str (json_array_get (due, 1), "sha256"), s_sha (2));
    cr_assert_eq (s_int (json_array_get (due, 0), "bytes"), 1234);
    const char *stands = s_str (json_array_get (due, 0), "id");
    cr_assert (strcmp (stands, a1) == 0 || strcmp (stands, b1) == 0);
    json_decref (due);
    cr_assert_eq (rp_db_scrub_due (db, s_sha (1), 0, 100, &due, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (due), 1, "after address 1");
    cr_assert_str_eq (s_str (json_array_get (due, 0), "sha256"), s_sha (2));
    json_decref (due);
    cr_assert_eq (rp_db_scrub_due (db, "'; DROP TABLE photos; --", 0, 100, &due, err, sizeof err), RP_REFUSED);
    cr_assert_null (due);

    //  A damaged address: every photo with it says so, of any user
    int64_t marked = 0;
    cr_assert_eq (rp_db_scrub_mark (db, s_sha (1), "damaged", &marked, err, sizeof err), 0, "%s", err);
    cr_assert_eq (marked, 2);
    photo = s_get (db, bob, b1);
    cr_assert_str_eq (s_str (photo, "integrity"), "damaged");
    const char *checked = s_str (photo, "checked_at");
    cr_assert (checked && strlen (checked) == 24 && checked [10] == 'T' && checked [23] == 'Z', "%s", checked);
    json_decref (photo);
    photo = s_get (db, alice, a2);
    cr_assert (json_is_null (json_object_get (photo, "integrity")));
    json_decref (photo);
    json_t *page = NULL;
    cr_assert_eq (rp_db_photo_list (db, alice, 50, NULL, NULL, NULL, &page, err, sizeof err), 0, "%s", err);
    json_array_foreach (json_object_get (page, "items"), i, item)
        if (strcmp (s_str (item, "id"), a1) == 0)
            cr_assert_str_eq (s_str (item, "integrity"), "damaged", "the list shows it too");
    json_decref (page);

    //  The background walk: what was never checked, then the oldest check
    cr_assert_eq (rp_db_scrub_due (db, NULL, 3600000, 100, &due, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (due), 1, "address 1 was just checked");
    cr_assert_str_eq (s_str (json_array_get (due, 0), "sha256"), s_sha (2));
    json_decref (due);
    cr_assert_eq (rp_db_scrub_mark (db, s_sha (2), "ok", &marked, err, sizeof err), 0, "%s", err);
    cr_assert_eq (marked, 1);
    cr_assert_eq (rp_db_scrub_due (db, NULL, 3600000, 100, &due, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (due), 0, "nothing due within the hour");
    json_decref (due);
    //  Address 2 checked long ago, address 1 less long ago: 2 comes first
    s_raw (url, "UPDATE photos SET checked_at = '2020-01-01T00:00:00.000Z' WHERE sha256 LIKE '%2'",
           "UPDATE photos SET checked_at = '2020-01-01 00:00:00+00' WHERE sha256 LIKE '%2'");
    s_raw (url, "UPDATE photos SET checked_at = '2021-01-01T00:00:00.000Z' WHERE sha256 LIKE '%1'",
           "UPDATE photos SET checked_at = '2021-01-01 00:00:00+00' WHERE sha256 LIKE '%1'");
    cr_assert_eq (rp_db_scrub_due (db, NULL, 3600000, 100, &due, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (due), 2);
    cr_assert_str_eq (s_str (json_array_get (due, 0), "sha256"), s_sha (2), "the oldest check first");
    cr_assert_str_eq (s_str (json_array_get (due, 1), "sha256"), s_sha (1));
    json_decref (due);
    //  Two engines' scrubs: one takes address 2, the other then cannot
    bool taken = false;
    cr_assert_eq (rp_db_scrub_claim (db, s_sha (2), 3600000, &taken, err, sizeof err), 0, "%s", err);
    cr_assert (taken);
    cr_assert_eq (rp_db_scrub_claim (db, s_sha (2), 3600000, &taken, err, sizeof err), 0, "%s", err);
    cr_assert_not (taken, "taken already");
    cr_assert_eq (rp_db_scrub_due (db, NULL, 3600000, 100, &due, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_array_size (due), 1);
    cr_assert_str_eq (s_str (json_array_get (due, 0), "sha256"), s_sha (1));
    json_decref (due);
    cr_assert_eq (rp_db_scrub_claim (db, "x", 0, &taken, err, sizeof err), RP_REFUSED);

    json_t *counts = NULL;
    cr_assert_eq (rp_db_scrub_counts (db, &counts, err, sizeof err), 0, "%s", err);
    cr_assert_eq (s_int (counts, "damaged"), 2);
    cr_assert_eq (s_int (counts, "ok"), 1);
    cr_assert_eq (s_int (counts, "unchecked"), 0);
    json_decref (counts);

    //  Refused input
    cr_assert_eq (rp_db_scrub_mark (db, s_sha (2), "fine", &marked, err, sizeof err), RP_REFUSED);
    cr_assert_eq (rp_db_scrub_mark (db, "nope", "ok", &marked, err, sizeof err), RP_REFUSED);
    //  An address no photo has: nothing marked
    cr_assert_eq (rp_db_scrub_mark (db, s_sha (9), "ok", &marked, err, sizeof err), 0, "%s", err);
    cr_assert_eq (marked, 0);
    rp_db_close (&db);
}
