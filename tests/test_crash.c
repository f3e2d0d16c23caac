/*  tests/test_crash.c: SIGKILL at random moments loses nothing acknowledged.

    Rounds of `rapidphoto import` over the corpus's camera/ and orientation/
    photos, each killed with SIGKILL after a random delay (some while files
    are being written, some while they are processed). Every photo whose
    "stored photo=<id>" line was logged was acknowledged. Then `rapidphoto
    serve` starts, recovers, and finishes the work. In the end:
      - every acknowledged photo is complete, or failed with a reason;
      - no photo is there twice; no bytes without a photo; no temporary files;
      - every batch's counts equal a count of its rows.
*/
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>
#include <time.h>

#include "library/blobstore.h"
#include "tests/support/library.h"
#include "tests/support/testdata.h"

//  Add every "stored photo=<id>" of a log to ids.
static void
s_acknowledged (const char *log_path, zhashx_t *ids)
{
    FILE *file = fopen (log_path, "r");
    if (!file)
        return;
    char line [4096];
    while (fgets (line, sizeof line, file)) {
        char *at = strstr (line, "stored photo=");
        if (!at)
            continue;
        char id [RP_ID_MAX] = "";
        if (sscanf (at, "stored photo=%39[0-9a-f]", id) == 1)
            zhashx_update (ids, id, (void *) 1);
    }
    fclose (file);
}

static int
s_orphan_check (const char *sha256, int64_t age_s, void *arg)
{
    rp_db_t *db = (rp_db_t *) arg;
    int64_t references = -1;
    char err [256];
    cr_assert_eq (rp_db_sha_references (db, sha256, &references, err, sizeof err), 0, "%s", err);
    cr_expect_gt (references, 0, "bytes %s are stored but no photo refers to them", sha256);
    return 0;
}

Test (crash, sigkill_at_random_moments_loses_nothing_acknowledged, .timeout = 600)
{
    RP_REQUIRE_TESTDATA ();
    rp_test_library_t lib;
    rp_test_library_init (&lib, "crash");
    //  Sweep young leftovers too: nothing else writes to this folder
    char grace [] = "RAPIDPHOTO_STORAGE_ORPHAN_GRACE_S=0";
    lib.env [3] = grace;
    lib.env [4] = NULL;
    putenv (grace);
    cr_assert_eq (rp_test_user_add (&lib, "frank"), 0);
    char camera [512], orientation [512];
    rp_testdata_path (camera, sizeof camera, "camera");
    rp_testdata_path (orientation, sizeof orientation, "orientation");

    zhashx_t *acknowledged = zhashx_new ();
    srandom ((unsigned) time (NULL));
    enum { ROUNDS = 6 };
    for (int round = 0; round < ROUNDS; round++) {
        char log [512];
        snprintf (log, sizeof log, "%s/import-%d.log", lib.dir, round);
        pid_t pid = rp_test_spawn ((char *[]) { "import", "--user", "frank", camera, orientation, NULL },
                                   lib.env, "/dev/null", log);
        //  Early rounds die while files are written; later ones mid-processing
        int delay = round < 3 ? 150 + (int) (random () % 900) : 500 + (int) (random () % 3000);
        zclock_sleep (delay);
        kill (pid, SIGKILL);
        int status = rp_test_wait (pid, 30000);
        cr_assert (status == 128 + SIGKILL || status == 0 || status == 1, "round %d: status %d", round, status);
        s_acknowledged (log, acknowledged);
        cr_log_info ("round %d: killed after %d ms; %zu photos acknowledged so far",
                     round, delay, zhashx_size (acknowledged));
    }
    cr_assert_gt (zhashx_size (acknowledged), 0, "some photos were acknowledged before the kills");

    //  Restart: serve recovers and finishes the work
    char log [512];
    snprintf (log, sizeof log, "%s/serve.log", lib.dir);
    pid_t serve = rp_test_spawn ((char *[]) { "serve", NULL }, lib.env, "/dev/null", log);
    rp_db_t *db = rp_test_library_db (&lib);
    char err [256];
    int64_t pending = -1;
    for (int waited = 0; waited < 180000 && pending != 0; waited += 250) {
        zclock_sleep (250);
        json_t *counts = NULL;
        if (rp_db_status_counts (db, &counts, err, sizeof err) == 0) {
            pending = json_integer_value (json_object_get (counts, "queued"))
                    + json_integer_value (json_object_get (counts, "processing"));
            json_decref (counts);
        }
    }
    cr_assert_eq (pending, 0, "serve did not finish the recovered work (see %s)", log);
    kill (serve, SIGTERM);
    cr_assert_eq (rp_test_wait (serve, 20000), 0, "serve stops cleanly on SIGTERM");

    //  Every acknowledged photo is complete or failed with a reason
    char user_id [RP_ID_MAX];
    cr_assert_eq (rp_db_user_find (db, "frank", user_id, NULL, 0, err, sizeof err), 0);
    for (void *it = zhashx_first (acknowledged); it; it = zhashx_next (acknowledged)) {
        const char *id = (const char *) zhashx_cursor (acknowledged);
        json_t *photo = NULL;
        cr_assert_eq (rp_db_photo_get (db, user_id, id, &photo, err, sizeof err), 0,
                      "acknowledged photo %s is missing", id);
        const char *status = json_string_value (json_object_get (photo, "status"));
        if (strcmp (status, "failed") == 0)
            cr_assert (json_is_string (json_object_get (photo, "error")), "%s failed without a reason", id);
        else
            cr_assert_str_eq (status, "complete", "photo %s", id);
        json_decref (photo);
    }
    //  No photo twice: one row per distinct input file at most
    json_t *page = NULL;
    cr_assert_eq (rp_db_photo_list (db, user_id, 1000, NULL, NULL, NULL, &page, err, sizeof err), 0);
    json_t *items = json_object_get (page, "items");
    zhashx_t *shas = zhashx_new ();
    zhashx_t *batches = zhashx_new ();
    size_t i;
    json_t *photo;
    json_array_foreach (items, i, photo) {
        const char *sha = json_string_value (json_object_get (photo, "sha256"));
        cr_assert_null (zhashx_lookup (shas, sha), "the same bytes are two photos");
        zhashx_insert (shas, sha, (void *) 1);
        const char *batch = json_string_value (json_object_get (photo, "batch_id"));
        zhashx_update (batches, batch, (void *) ((intptr_t) zhashx_lookup (batches, batch) + 1));
    }
    cr_assert_leq (json_array_size (items), 17 + 9);
    //  Batch counts equal a count of the rows
    for (void *n = zhashx_first (batches); n; n = zhashx_next (batches)) {
        const char *batch = (const char *) zhashx_cursor (batches);
        json_t *state = NULL;
        cr_assert_eq (rp_db_batch_get (db, user_id, batch, &state, err, sizeof err), 0);
        json_t *counts = json_object_get (state, "counts");
        int64_t sum = 0;
        const char *key;
        json_t *value;
        json_object_foreach (counts, key, value)
            sum += json_integer_value (value);
        cr_assert_eq (sum, (intptr_t) n, "batch %s counts %lld, rows %ld", batch, (long long) sum, (long) (intptr_t) n);
        cr_assert_eq (json_integer_value (json_object_get (state, "total")), (intptr_t) n);
        json_decref (state);
    }
    //  No orphan bytes, no temporary files
    char berr [256];
    rp_blobstore_t *blobs = rp_blobstore_open_disk (lib.dir, berr, sizeof berr);
    rp_blobstore_each (blobs, s_orphan_check, db);
    rp_blobstore_close (&blobs);
    cr_assert_eq (rp_test_library_tmp_files (&lib), 0);

    json_decref (page);
    zhashx_destroy (&shas);
    zhashx_destroy (&batches);
    zhashx_destroy (&acknowledged);
    rp_db_close (&db);
}
