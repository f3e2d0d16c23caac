/*  tests/test_library.c: the durable library through the real binary.

    `rapidphoto user add`, `import` and `migrate` against a fresh data folder
    (SQLite + disk, the embedded defaults); then a look inside the database
    and the storage to see that what was acknowledged is there, and nothing
    else.
*/
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>

#include "library/blobstore.h"
#include "library/library.h"
#include "tests/support/library.h"
#include "tests/support/testdata.h"

//  n photos under <lib>/in, plus whatever extra files the test adds there
static void
s_photos (rp_test_library_t *lib, int n)
{
    char dir [512];
    snprintf (dir, sizeof dir, "%s/in", lib->dir);
    mkdir (dir, 0755);
    for (int i = 0; i < n; i++) {
        char path [600];
        snprintf (path, sizeof path, "%s/photo%02d.jpg", dir, i);
        cr_assert_eq (rp_test_make_jpeg (path, 900 + 7 * i, 600, i % 2 ? 6 : 1), 0);
    }
}

static int
s_import (rp_test_library_t *lib, const char *user, char **stdout_text, char **log_text)
{
    char out [600], err [600], in [600];
    snprintf (out, sizeof out, "%s/import.out", lib->dir);
    snprintf (err, sizeof err, "%s/import.log", lib->dir);
    snprintf (in, sizeof in, "%s/in", lib->dir);
    pid_t pid = rp_test_spawn ((char *[]) { "import", "--user", (char *) user, in, NULL },
                               lib->env, out, err);
    int status = rp_test_wait (pid, 120000);
    cr_assert_neq (status, -1, "import did not finish");
    char command [700];
    snprintf (command, sizeof command, "cat %s", out);
    rp_test_run (command, stdout_text);
    snprintf (command, sizeof command, "cat %s", err);
    rp_test_run (command, log_text);
    return status;
}

static int
s_count (const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr (p, needle)); p += strlen (needle))
        n++;
    return n;
}

Test (library, import_stores_processes_and_deduplicates, .timeout = 180)
{
    rp_test_library_t lib;
    rp_test_library_init (&lib, "library");
    cr_assert_eq (rp_test_user_add (&lib, "alice"), 0);
    s_photos (&lib, 6);
    //  A duplicate of photo 0 under another name, and a text file named .jpg
    char command [1200];
    snprintf (command, sizeof command, "cp %s/in/photo00.jpg %s/in/zz_copy.jpg && "
              "echo 'not a photo' > %s/in/notes.jpg", lib.dir, lib.dir, lib.dir);
    cr_assert_eq (rp_test_run (command, NULL), 0);

    char *out = NULL, *log = NULL;
    int status = s_import (&lib, "alice", &out, &log);
    cr_assert_eq (status, 1, "exit 1: one file was refused\n%s", log);
    cr_assert_eq (s_count (out, "\"status\":\"complete\""), 7, "6 new + the duplicate's photo:\n%s", out);
    cr_assert_eq (s_count (out, "\"duplicate\":true"), 1, "%s", out);
    cr_assert_eq (s_count (out, "\"status\":\"refused\""), 1, "%s", out);
    cr_assert (strstr (out, "not a supported image (JPEG, PNG, WebP, GIF, TIFF, HEIC, AVIF, DNG or camera RAW): it looks like text"),
               "%s", out);
    cr_assert (strstr (log, "8 files: 6 imported (6 complete, 0 failed), 1 duplicates, 1 refused"), "%s", log);

    //  Inside: six photos, complete, with their EXIF and size; bytes where
    //  the address says, derivatives beside them
    rp_db_t *db = rp_test_library_db (&lib);
    char user_id [RP_ID_MAX], err [256];
    cr_assert_eq (rp_db_user_find (db, "alice", user_id, NULL, 0, err, sizeof err), 0);
    json_t *page = NULL;
    cr_assert_eq (rp_db_photo_list (db, user_id, 100, NULL, NULL, NULL, &page, err, sizeof err), 0, "%s", err);
    json_t *items = json_object_get (page, "items");
    cr_assert_eq (json_array_size (items), 6);
    char objects [512];
    snprintf (objects, sizeof objects, "%s", lib.dir);
    char berr [256];
    rp_blobstore_t *blobs = rp_blobstore_open_disk (lib.dir, berr, sizeof berr);
    size_t i;
    json_t *photo;
    json_array_foreach (items, i, photo) {
        cr_assert_str_eq (json_string_value (json_object_get (photo, "status")), "complete");
        //  Half were tagged orientation 6: displayed on their side
        int64_t w = json_integer_value (json_object_get (photo, "width"));
        int64_t h = json_integer_value (json_object_get (photo, "height"));
        cr_assert_eq (w < h ? w : h, 600, "%lldx%lld", (long long) w, (long long) h);
        const char *sha = json_string_value (json_object_get (photo, "sha256"));
        char path [1024], derived [1100];
        cr_assert_eq (rp_blob_path (blobs, sha, path, sizeof path), 0);
        cr_assert_eq (access (path, R_OK), 0, "%s", path);
        snprintf (derived, sizeof derived, "%s.thumbnail.webp", path);
        cr_assert_eq (access (derived, R_OK), 0, "%s", derived);
        snprintf (derived, sizeof derived, "%s.preview.jpg", path);
        cr_assert_eq (access (derived, R_OK), 0, "%s", derived);
    }
    json_decref (page);
    cr_assert_eq (rp_test_library_tmp_files (&lib), 0, "no temporary files left");

    //  Deleting a photo removes its bytes (nothing else refers to them)
    json_t *one = NULL;
    cr_assert_eq (rp_db_photo_list (db, user_id, 1, NULL, NULL, NULL, &one, err, sizeof err), 0);
    json_t *first = json_array_get (json_object_get (one, "items"), 0);
    char sha [65];
    snprintf (sha, sizeof sha, "%s", json_string_value (json_object_get (first, "sha256")));
    char sha_unused [65];
    bool unreferenced = false;
    cr_assert_eq (rp_db_photo_delete (db, user_id, json_string_value (json_object_get (first, "id")),
                                      sha_unused, &unreferenced, err, sizeof err), 0);
    cr_assert (unreferenced);
    json_decref (one);
    rp_blobstore_close (&blobs);
    rp_db_close (&db);
    free (out);
    free (log);

    //  The tools around it: migrate says up to date; user list counts photos
    snprintf (command, sizeof command, "%s %s migrate", lib.env_dir, rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 0);
    cr_assert (strstr (out, "0 migrations applied"), "%s", out);
    free (out);
    snprintf (command, sizeof command, "%s %s user list", lib.env_dir, rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 0);
    cr_assert (strstr (out, "alice"), "%s", out);
    free (out);
}

Test (library, users_are_checked_and_named_in_errors, .timeout = 60)
{
    rp_test_library_t lib;
    rp_test_library_init (&lib, "users");
    cr_assert_eq (rp_test_user_add (&lib, "bob"), 0);
    cr_assert_eq (rp_test_user_add (&lib, "bob"), 1, "the name is taken");
    char command [1024], *out = NULL;
    snprintf (command, sizeof command, "%s %s import --user carol /tmp 2>&1", lib.env_dir, rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 1);
    cr_assert (strstr (out, "no user carol"), "%s", out);
    free (out);
    snprintf (command, sizeof command, "echo short | %s %s user add dave --password-stdin 2>&1",
              lib.env_dir, rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 1);
    cr_assert (strstr (out, "at least 8 characters"), "%s", out);
    free (out);
    snprintf (command, sizeof command, "%s %s user add 'bad name' --password-stdin </dev/null 2>&1",
              lib.env_dir, rp_test_binary ());
    cr_assert_eq (rp_test_run (command, &out), 2);
    free (out);
    //  The stored password is a slow hash, and it verifies
    rp_db_t *db = rp_test_library_db (&lib);
    char id [RP_ID_MAX], hash [512], err [256];
    cr_assert_eq (rp_db_user_find (db, "bob", id, hash, sizeof hash, err, sizeof err), 0);
    cr_assert (strncmp (hash, "scrypt$", 7) == 0, "%s", hash);
    cr_assert (rp_password_verify ("correct horse battery", hash));
    cr_assert_not (rp_password_verify ("correct horse batterY", hash));
    rp_db_close (&db);
}

Test (library, a_failing_disk_write_acknowledges_nothing, .timeout = 120)
{
    rp_test_library_t lib;
    rp_test_library_init (&lib, "diskfault");
    cr_assert_eq (rp_test_user_add (&lib, "erin"), 0);
    s_photos (&lib, 3);
    //  The first write of the import's storage fails as a broken disk would
    char fault [] = "RP_FAULT_DISK_WRITE=1";
    lib.env [3] = fault;
    lib.env [4] = NULL;
    char *out = NULL, *log = NULL;
    cr_assert_eq (s_import (&lib, "erin", &out, &log), 1);
    cr_assert_eq (s_count (out, "\"status\":\"refused\""), 1, "%s", out);
    cr_assert (strstr (out, "cannot write to storage"), "%s", out);
    cr_assert_eq (s_count (out, "\"status\":\"complete\""), 2, "%s", out);
    //  Exactly two photos exist, no temporary file is left, and the refused
    //  file's bytes are nowhere
    rp_db_t *db = rp_test_library_db (&lib);
    json_t *counts = NULL;
    char err [256];
    cr_assert_eq (rp_db_status_counts (db, &counts, err, sizeof err), 0);
    cr_assert_eq (json_integer_value (json_object_get (counts, "complete")), 2);
    json_decref (counts);
    cr_assert_eq (rp_test_library_tmp_files (&lib), 0);
    char command [700], *listing = NULL;
    snprintf (command, sizeof command, "find %s/objects -type f -regex '.*/[0-9a-f]*' | wc -l", lib.dir);
    rp_test_run (command, &listing);
    cr_assert_eq (strtol (listing, NULL, 10), 2, "two originals stored, got %s", listing);
    free (listing);
    rp_db_close (&db);
    free (out);
    free (log);
}

Test (library, a_refused_database_commit_acknowledges_nothing_and_keeps_no_bytes, .timeout = 60)
{
    //  The library API as import and uploads use it, in this process, so the
    //  fault hook counts only the commit under test
    rp_test_library_t lib;
    rp_test_library_init (&lib, "dbfault");
    rp_config_t config;
    char err [512];
    cr_assert_eq (rp_config_load (&config, NULL, err, sizeof err), 0);
    snprintf (config.data_dir, sizeof config.data_dir, "%s", lib.dir);
    rp_blobstore_t *blobs = rp_blobstore_open_disk (lib.dir, err, sizeof err);
    cr_assert_not_null (blobs, "%s", err);
    rp_db_t *db = rp_test_library_db (&lib);
    int applied = 0;
    cr_assert_eq (rp_db_migrate (db, &applied, err, sizeof err), 0, "%s", err);
    char user_id [RP_ID_MAX];
    cr_assert_eq (rp_db_user_add (db, "gina", "scrypt$x", user_id, err, sizeof err), 0, "%s", err);
    s_photos (&lib, 1);
    char path [600];
    snprintf (path, sizeof path, "%s/in/photo00.jpg", lib.dir);

    setenv ("RP_FAULT_DB_COMMIT", "1", 1);
    rp_ingest_t ingest = { .declared_bytes = -1, .user_id = user_id, .filename = "photo00.jpg" };
    rp_ingested_t out;
    rp_blob_writer_t *writer = rp_blob_begin_file (blobs, path, config.limits_max_upload_bytes, err, sizeof err);
    cr_assert_not_null (writer, "%s", err);
    int rc = rp_library_ingest (blobs, db, &writer, &ingest, &out, err, sizeof err);
    unsetenv ("RP_FAULT_DB_COMMIT");
    cr_assert_null (writer, "the writer is consumed");
    cr_assert_eq (rc, -1, "a refused commit must not be acknowledged");
    cr_assert (strstr (err, "refused the commit"), "%s", err);
    json_t *counts = NULL;
    cr_assert_eq (rp_db_status_counts (db, &counts, err, sizeof err), 0);
    cr_assert_eq (json_integer_value (json_object_get (counts, "queued")), 0, "no row");
    json_decref (counts);
    cr_assert_not (rp_blob_exists (blobs, out.sha256), "the bytes it stored are gone again");
    cr_assert_eq (rp_test_library_tmp_files (&lib), 0);

    //  With the database healthy again the same file goes in
    writer = rp_blob_begin_file (blobs, path, config.limits_max_upload_bytes, err, sizeof err);
    cr_assert_eq (rp_library_ingest (blobs, db, &writer, &ingest, &out, err, sizeof err), 0, "%s", err);
    cr_assert (rp_blob_exists (blobs, out.sha256));
    cr_assert_not (out.duplicate);
    rp_db_close (&db);
    rp_blobstore_close (&blobs);
}
