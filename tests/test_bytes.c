/*  tests/test_bytes.c: no acknowledged byte is lost (the hardening issue,
    item 2, and the findings around it).

    Content-addressed bytes are shared by every photo with the same
    SHA-256, so removing them is a race with whoever is taking the same
    bytes in. The main test runs that race 120 times on two real
    engines sharing one database and one data folder: user B has bytes X,
    then user A uploads X to one engine while B deletes their photo on the
    other. Fault hooks (engine/fault.h) hold each side between its two
    steps, so the losing interleaving comes every round instead of once in
    a thousand: A's ingest waits between its bytes stored and its row
    committed (RP_FAULT_HOLD_INGEST_MS), B's delete waits after its commit
    (RP_FAULT_HOLD_DELETE_MS), and the collector runs every 100 ms
    (RP_FAULT_MINUTE_MS) so it strikes inside A's window too. Afterwards
    every photo A was answered 202 for must download byte-identical, and
    its thumbnail and preview must exist once it is complete.

    Then the findings one by one: a resumable upload's completion that
    loses its lease to a HEAD never deletes the winner's rows; folders the
    store makes are made durable in their parent (the helper and the store
    with a failing folder sync); data.dir, the SQLite file and stored files
    are readable by the engine's user alone.
*/
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/db/db.h"
#include "engine/fs.h"
#include "library/blobstore.h"
#include "tests/support/server.h"
#include "tests/support/testdata.h"

//  ---------------------------------------------------------------------------
//  Helpers

//  Unique bytes of a real JPEG: a base photo with a comment segment naming
//  the lane and round, so every round's X is new to the store.
static char *
s_unique_jpeg (const char *base, size_t base_len, int lane, int round, size_t *len)
{
    char note [64];
    int n = snprintf (note, sizeof note, "rapidphoto test_bytes lane %d round %d", lane, round);
    size_t segment = 4 + (size_t) n;
    char *out = malloc (base_len + segment);
    memcpy (out, base, 2);                          //  SOI
    unsigned char head [4] = { 0xff, 0xfe, (unsigned char) ((n + 2) >> 8), (unsigned char) ((n + 2) & 0xff) };
    memcpy (out + 2, head, 4);
    memcpy (out + 6, note, (size_t) n);
    memcpy (out + 2 + segment, base + 2, base_len - 2);
    *len = base_len + segment;
    return out;
}

//  POST bytes as a raw body; the status, and on 202 the photo's id and sha256.
static long
s_upload (rp_test_server_t *server, const char *token, const char *data, size_t len, const char *name,
          char id [RP_ID_MAX], char sha [65], char *why, size_t whylen)
{
    char filename [128];
    snprintf (filename, sizeof filename, "X-Filename: %s", name);
    const char *headers [] = { "Content-Type: image/jpeg", filename, NULL };
    rp_test_reply_t reply;
    long status = rp_test_request (server, "POST", "/api/v1/photos", token, headers, data, len, NULL, &reply);
    id [0] = sha [0] = 0;
    if (status == 202) {
        json_t *json = rp_test_reply_json (&reply);
        json_t *photo = json_array_get (json_object_get (json, "photos"), 0);
        const char *photo_id = json_string_value (json_object_get (photo, "id"));
        const char *photo_sha = json_string_value (json_object_get (photo, "sha256"));
        snprintf (id, RP_ID_MAX, "%s", photo_id ? photo_id : "");
        snprintf (sha, 65, "%s", photo_sha ? photo_sha : "");
        json_decref (json);
    }
    snprintf (why, whylen, "%ld %.200s", status, reply.body ? reply.body : "");
    rp_test_reply_free (&reply);
    return status;
}

//  GET /api/v1/photos/<id>/<what>: the status; the body into *body (caller
//  frees) when body is not NULL.
static long
s_download (rp_test_server_t *server, const char *token, const char *id, const char *what,
            char **body, size_t *len)
{
    char path [160];
    snprintf (path, sizeof path, "/api/v1/photos/%s/%s", id, what);
    rp_test_reply_t reply;
    long status = rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply);
    if (body) {
        *body = reply.body;
        *len = reply.len;
        reply.body = NULL;
    }
    rp_test_reply_free (&reply);
    return status;
}

static int
s_mode (const char *path)
{
    struct stat st;
    cr_assert_eq (stat (path, &st), 0, "%s: %s", path, strerror (errno));
    return (int) (st.st_mode & 07777);
}

//  ---------------------------------------------------------------------------
//  The race: A uploads X on one engine while B deletes their photo of X on
//  the other

#define S_LANES         4               //  races run side by side
#define S_ROUNDS        120             //  in all: the holds force the losing
                                        //  interleaving every round, so more
                                        //  rounds only repeat it
#define S_HOLD_INGEST   400             //  ms A's ingest waits with X stored, row not yet committed
#define S_DELETE_AFTER  150             //  ms after A's upload starts, B deletes
#define S_HOLD_DELETE   800             //  ms B's delete waits after its commit

typedef struct {
    rp_test_server_t *engine_a;         //  A uploads here (its ingests are held)
    rp_test_server_t *engine_b;         //  B uploads and deletes here (its deletes are held)
    const char *token_a, *token_b;
    const char *base;                   //  the base JPEG
    size_t base_len;
    int lane;
    int rounds;
    //  What happened
    char (*ids) [RP_ID_MAX];            //  A's acknowledged photos
    char **bytes;                       //  and what was sent for each
    size_t *lens;
    int acked;
    int refused;                        //  A's uploads not acknowledged (no 202)
    char trouble [512];                 //  B's side failing: the round cannot race
} s_lane_t;

typedef struct {
    s_lane_t *lane;
    const char *data;
    size_t len;
    char name [64];
    long status;
    char id [RP_ID_MAX];
    char sha [65];
    char why [300];
} s_upload_job_t;

static void *
s_upload_thread (void *arg)
{
    s_upload_job_t *job = (s_upload_job_t *) arg;
    job->status = s_upload (job->lane->engine_a, job->lane->token_a, job->data, job->len, job->name,
                            job->id, job->sha, job->why, sizeof job->why);
    return NULL;
}

static void *
s_lane_run (void *arg)
{
    s_lane_t *lane = (s_lane_t *) arg;
    for (int round = 0; round < lane->rounds && !lane->trouble [0]; round++) {
        size_t len = 0;
        char *data = s_unique_jpeg (lane->base, lane->base_len, lane->lane, round, &len);
        //  B has X
        char b_id [RP_ID_MAX], b_sha [65], why [300], name [64];
        snprintf (name, sizeof name, "b-%d-%d.jpg", lane->lane, round);
        long status = s_upload (lane->engine_b, lane->token_b, data, len, name, b_id, b_sha, why, sizeof why);
        if (status != 202) {
            snprintf (lane->trouble, sizeof lane->trouble, "lane %d round %d: B's upload answered %s",
                      lane->lane, round, why);
            free (data);
            break;
        }
        //  A uploads X; meanwhile B deletes theirs
        s_upload_job_t job = { .lane = lane, .data = data, .len = len };
        snprintf (job.name, sizeof job.name, "a-%d-%d.jpg", lane->lane, round);
        pthread_t thread;
        pthread_create (&thread, NULL, s_upload_thread, &job);
        usleep (S_DELETE_AFTER * 1000);
        char path [128];
        snprintf (path, sizeof path, "/api/v1/photos/%s", b_id);
        rp_test_reply_t reply;
        status = rp_test_request (lane->engine_b, "DELETE", path, lane->token_b, NULL, NULL, 0, NULL, &reply);
        rp_test_reply_free (&reply);
        pthread_join (thread, NULL);
        if (status != 204)
            snprintf (lane->trouble, sizeof lane->trouble, "lane %d round %d: B's delete answered %ld",
                      lane->lane, round, status);
        if (job.status == 202 && strcmp (job.sha, b_sha) == 0) {
            snprintf (lane->ids [lane->acked], RP_ID_MAX, "%s", job.id);
            lane->bytes [lane->acked] = data;
            lane->lens [lane->acked] = len;
            lane->acked++;
        }
        else {
            lane->refused++;
            free (data);
        }
    }
    return NULL;
}

//  Count lines of the engines' logs holding needle.
static int
s_logged (rp_test_server_t *a, rp_test_server_t *b, const char *needle)
{
    return rp_test_count_in_file (a->log, needle) + rp_test_count_in_file (b->log, needle);
}

static void
s_race (const char *name, bool pg)
{
    char hold_ingest [64], hold_delete [64];
    snprintf (hold_ingest, sizeof hold_ingest, "RP_FAULT_HOLD_INGEST_MS=%d", S_HOLD_INGEST);
    snprintf (hold_delete, sizeof hold_delete, "RP_FAULT_HOLD_DELETE_MS=%d", S_HOLD_DELETE);
    //  B's engine holds its deletes; A's engine, on the same data folder and
    //  database, holds its ingests. Both collect every 100 ms.
    rp_test_server_t engine_b, engine_a;
    rp_test_server_start (&engine_b, &(rp_test_server_opts_t) {
        .name = name, .pg = pg,
        .env = (const char *const []) { hold_delete, "RP_FAULT_MINUTE_MS=100", NULL } });
    rp_test_server_start (&engine_a, &(rp_test_server_opts_t) {
        .name = name, .db_url = engine_b.db_url, .data_dir = engine_b.lib.dir,
        .env = (const char *const []) { hold_ingest, "RP_FAULT_MINUTE_MS=100", NULL } });
    char *token_a = rp_test_login (&engine_a, "alice");
    char *token_b = rp_test_login (&engine_b, "bob");

    char base_path [600];
    rp_test_server_photo (&engine_b, "base.jpg", 7, base_path, sizeof base_path);
    size_t base_len = 0;
    char *base = rp_test_read_file (base_path, &base_len);

    s_lane_t lanes [S_LANES];
    pthread_t threads [S_LANES];
    int64_t started = zclock_mono ();
    for (int i = 0; i < S_LANES; i++) {
        int rounds = S_ROUNDS / S_LANES;
        lanes [i] = (s_lane_t) {
            .engine_a = &engine_a, .engine_b = &engine_b, .token_a = token_a, .token_b = token_b,
            .base = base, .base_len = base_len, .lane = i, .rounds = rounds,
            .ids = calloc ((size_t) rounds, RP_ID_MAX), .bytes = calloc ((size_t) rounds, sizeof (char *)),
            .lens = calloc ((size_t) rounds, sizeof (size_t)),
        };
        pthread_create (&threads [i], NULL, s_lane_run, &lanes [i]);
    }
    int acked = 0, refused = 0, rounds = 0;
    for (int i = 0; i < S_LANES; i++) {
        pthread_join (threads [i], NULL);
        cr_assert_eq (lanes [i].trouble [0], 0, "%s (logs: %s, %s)", lanes [i].trouble, engine_a.log, engine_b.log);
        acked += lanes [i].acked;
        refused += lanes [i].refused;
        rounds += lanes [i].acked + lanes [i].refused;
    }
    int64_t raced = zclock_mono () - started;

    //  Every acknowledged photo: the original byte-identical, and once
    //  complete its thumbnail and preview
    int lost = 0, failed = 0, no_derivatives = 0;
    char first_lost [256] = "";
    for (int i = 0; i < S_LANES; i++)
        for (int k = 0; k < lanes [i].acked; k++) {
            const char *id = lanes [i].ids [k];
            char *final = rp_test_wait_final (&engine_a, token_a, id, 60000);
            char *body = NULL;
            size_t len = 0;
            long status = s_download (&engine_a, token_a, id, "original", &body, &len);
            bool same = status == 200 && len == lanes [i].lens [k] && memcmp (body, lanes [i].bytes [k], len) == 0;
            if (!same) {
                lost++;
                if (!first_lost [0])
                    snprintf (first_lost, sizeof first_lost, "photo %s (lane %d round %d): original answers %ld, "
                              "the photo is %s", id, i, k, status, final);
            }
            if (strcmp (final, "complete") != 0)
                failed++;
            else
            if (s_download (&engine_a, token_a, id, "thumbnail", NULL, NULL) != 200
            ||  s_download (&engine_a, token_a, id, "preview", NULL, NULL) != 200)
                no_derivatives++;
            free (body);
            free (final);
            free (lanes [i].bytes [k]);
        }
    int restored = s_logged (&engine_a, &engine_b, "put back");
    cr_log_info ("%s: %d rounds in %lld ms on %s; %d uploads acknowledged, %d not; %d acknowledged photos lost "
                 "their bytes, %d did not complete, %d complete without derivatives; bytes put back %d times",
                 name, rounds, (long long) raced, pg ? "PostgreSQL" : "SQLite", acked, refused, lost, failed,
                 no_derivatives, restored);
    cr_expect_eq (rounds, S_ROUNDS);
    cr_expect_eq (lost, 0, "%d of %d acknowledged photos lost their bytes; the first: %s (logs: %s, %s)", lost, acked,
                  first_lost, engine_a.log, engine_b.log);
    cr_expect_eq (failed, 0, "%d of %d acknowledged photos did not complete", failed, acked);
    cr_expect_eq (no_derivatives, 0, "%d complete photos lack a derivative", no_derivatives);
    cr_expect_eq (refused, 0, "every upload of A is acknowledged");
    for (int i = 0; i < S_LANES; i++) {
        free (lanes [i].ids);
        free (lanes [i].bytes);
        free (lanes [i].lens);
    }
    free (base);
    free (token_a);
    free (token_b);
    rp_test_server_stop (&engine_a);
    rp_test_server_stop (&engine_b);
}

Test (bytes_pg, a_delete_racing_an_upload_of_the_same_bytes_loses_nothing, .timeout = 900)
{
    s_race ("bytes_race_pg", true);
}

Test (bytes, a_delete_racing_an_upload_of_the_same_bytes_loses_nothing, .timeout = 900)
{
    s_race ("bytes_race", false);
}

//  ---------------------------------------------------------------------------
//  tus: a completion that lost its lease never deletes the winner's rows

typedef struct {
    rp_test_server_t *server;
    const char *token;
    const char *method;
    const char *path;
    const char *const *headers;
    const void *body;
    size_t len;
    rp_test_reply_t reply;
} s_request_t;

static void *
s_request_thread (void *arg)
{
    s_request_t *request = (s_request_t *) arg;
    rp_test_request (request->server, request->method, request->path, request->token, request->headers,
                     request->body, request->len, NULL, &request->reply);
    return NULL;
}

Test (bytes, a_tus_completion_that_lost_its_lease_deletes_nothing, .timeout = 120)
{
    //  A lease of 1 s, and every ingest held 2.5 s between its bytes stored
    //  and its row: the completing PATCH outlives its lease, and a HEAD that
    //  comes meanwhile finds every byte in and completes the upload too
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) {
        .name = "bytes_tus",
        .env = (const char *const []) { "RAPIDPHOTO_UPLOADS_TUS_LOCK_S=1", "RP_FAULT_HOLD_INGEST_MS=2500", NULL } });
    char *token = rp_test_login (&server, "alice");
    char base_path [600];
    rp_test_server_photo (&server, "tus.jpg", 3, base_path, sizeof base_path);
    size_t len = 0;
    char *data = rp_test_read_file (base_path, &len);

    char length [64];
    snprintf (length, sizeof length, "Upload-Length: %zu", len);
    const char *create [] = { "Tus-Resumable: 1.0.0", length, "Upload-Metadata: filename dHVzLmpwZw==", NULL };
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (&server, "POST", "/api/v1/tus", token, create, NULL, 0, NULL, &reply), 201,
                  "%s", reply.body);
    char path [128];
    snprintf (path, sizeof path, "%s", rp_test_header_value (&reply, "Location"));
    rp_test_reply_free (&reply);

    //  The PATCH with every byte: its completion is held
    const char *patch_headers [] = { "Tus-Resumable: 1.0.0", "Upload-Offset: 0",
                                     "Content-Type: application/offset+octet-stream", NULL };
    s_request_t patch = { &server, token, "PATCH", path, patch_headers, data, len, { 0 } };
    pthread_t patch_thread, head_thread;
    pthread_create (&patch_thread, NULL, s_request_thread, &patch);
    //  Past the PATCH's lease, a HEAD
    usleep (1500 * 1000);
    const char *head_headers [] = { "Tus-Resumable: 1.0.0", NULL };
    s_request_t head = { &server, token, "HEAD", path, head_headers, NULL, 0, { 0 } };
    pthread_create (&head_thread, NULL, s_request_thread, &head);
    pthread_join (patch_thread, NULL);
    pthread_join (head_thread, NULL);

    //  One of them took the photo in; the other never answers that the
    //  photo was deleted, and never removed the winner's rows
    cr_log_info ("the PATCH answered %ld (Photo-Id %s), the HEAD %ld", patch.reply.status,
                 rp_test_header_value (&patch.reply, "Photo-Id") ?: "none", head.reply.status);
    cr_expect_neq (patch.reply.status, 410, "the PATCH was told the photo was deleted: %s", patch.reply.body);
    cr_expect (patch.reply.status == 204 || patch.reply.status == 409, "the PATCH answered %ld: %s",
               patch.reply.status, patch.reply.body);
    cr_expect_eq (head.reply.status, 200);
    rp_test_reply_free (&patch.reply);
    rp_test_reply_free (&head.reply);
    cr_assert_eq (rp_test_request (&server, "HEAD", path, token, head_headers, NULL, 0, NULL, &reply), 200,
                  "the finished upload is still there to ask (log: %s)", server.log);
    const char *photo = rp_test_header_value (&reply, "Photo-Id");
    cr_assert_not_null (photo, "a HEAD after both names the photo (log: %s)", server.log);
    char photo_id [RP_ID_MAX];
    snprintf (photo_id, sizeof photo_id, "%s", photo);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_photo_rows (&server), 1, "one photo");
    char *final = rp_test_wait_final (&server, token, photo_id, 30000);
    cr_expect_str_eq (final, "complete");
    free (final);
    char *body = NULL;
    size_t got = 0;
    cr_expect_eq (s_download (&server, token, photo_id, "original", &body, &got), 200);
    cr_expect (got == len && memcmp (body, data, len) == 0, "the original is the bytes sent");
    free (body);
    free (data);
    free (token);
    rp_test_server_stop (&server);
}

//  ---------------------------------------------------------------------------
//  Folders the store makes are durable in their parent

Test (bytes, each_folder_made_is_synced_into_its_parent)
{
    char *dir = rp_test_tmpdir ("bytes_fs");
    char path [512], level [512], err [512] = "";
    snprintf (path, sizeof path, "%s/a/b/c", dir);
    //  a is made and synced into dir; b is made, and syncing it into a is
    //  the second sync, which fails: the call fails naming b, b is removed
    //  again (a later call must make it durable, not find it there), and c
    //  is never made
    setenv ("RP_FAULT_DIR_SYNC", "2", 1);
    cr_assert_eq (rp_fs_mkdirs (path, 0700, err, sizeof err), -1);
    unsetenv ("RP_FAULT_DIR_SYNC");
    snprintf (level, sizeof level, "%s/a/b durable", dir);
    cr_assert (strstr (err, level), "%s", err);
    snprintf (level, sizeof level, "%s/a", dir);
    cr_assert_eq (access (level, F_OK), 0, "a was made durable and stays");
    snprintf (level, sizeof level, "%s/a/b", dir);
    cr_assert_neq (access (level, F_OK), 0, "b, not durable, is removed again");
    //  Again: what is there stays as it is, the rest is made, 0700
    cr_assert_eq (rp_fs_mkdirs (path, 0700, err, sizeof err), 0, "%s", err);
    cr_assert_eq (s_mode (path), 0700);
    cr_assert_eq (rp_fs_mkdirs (path, 0700, err, sizeof err), 0, "all there: %s", err);
    //  A file in the way is an error naming it
    snprintf (level, sizeof level, "%s/file", dir);
    FILE *file = fopen (level, "w");
    cr_assert_not_null (file);
    fclose (file);
    snprintf (path, sizeof path, "%s/file/d", dir);
    cr_assert_eq (rp_fs_mkdirs (path, 0700, err, sizeof err), -1);
    cr_assert (strstr (err, path), "%s", err);
    free (dir);
}

Test (bytes, a_blob_in_a_new_folder_is_not_committed_when_the_folder_cannot_be_made_durable)
{
    char *dir = rp_test_tmpdir ("bytes_sync");
    char err [512] = "";
    rp_blobstore_t *blobs = rp_blobstore_open_disk (dir, err, sizeof err);
    cr_assert_not_null (blobs, "%s", err);
    rp_blob_writer_t *writer = rp_blob_begin (blobs, 1 << 20, err, sizeof err);
    cr_assert_not_null (writer, "%s", err);
    cr_assert_eq (rp_blob_write (writer, "some bytes", 10, err, sizeof err), 0, "%s", err);
    //  objects/ab/ and objects/ab/cd/ are new: making the first durable in
    //  objects/ is the first folder sync from here on, and it fails
    setenv ("RP_FAULT_DIR_SYNC", "1", 1);
    char sha [65];
    bool existed = false;
    int rc = rp_blob_commit (&writer, sha, &existed, err, sizeof err);
    unsetenv ("RP_FAULT_DIR_SYNC");
    cr_assert_neq (rc, 0, "the commit fails when a folder it made cannot be made durable");
    cr_expect (strstr (err, "durable"), "%s", err);
    //  And nothing is stored: the same bytes commit cleanly afterwards, new
    writer = rp_blob_begin (blobs, 1 << 20, err, sizeof err);
    cr_assert_eq (rp_blob_write (writer, "some bytes", 10, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_blob_commit (&writer, sha, &existed, err, sizeof err), 0, "%s", err);
    cr_expect_not (existed, "the failed commit left nothing behind");
    rp_blobstore_close (&blobs);
    free (dir);
}

//  ---------------------------------------------------------------------------
//  Only the engine's user reads the library

Test (bytes, data_dir_the_database_and_stored_files_are_the_engine_users_alone, .timeout = 120)
{
    //  The usual umask: what the engine makes is as private as it chooses
    umask (022);
    rp_test_server_t server;
    char data_dir [300], setting [340];
    char *probe = rp_test_tmpdir ("bytes_modes_parent");
    snprintf (data_dir, sizeof data_dir, "%s/data", probe);
    snprintf (setting, sizeof setting, "RAPIDPHOTO_DATA_DIR=%s", data_dir);
    rp_test_server_start (&server, &(rp_test_server_opts_t) {
        .name = "bytes_modes", .env = (const char *const []) { setting, NULL } });
    char db_path [400];
    snprintf (db_path, sizeof db_path, "%s/rapidphoto.db", server.lib.dir);
    cr_expect_eq (s_mode (data_dir), 0700, "data.dir is %o", s_mode (data_dir));
    cr_expect_eq (s_mode (db_path) & 077, 0, "the SQLite file is %o", s_mode (db_path));
    char wal [420];
    snprintf (wal, sizeof wal, "%s-wal", db_path);
    if (access (wal, F_OK) == 0)
        cr_expect_eq (s_mode (wal) & 077, 0, "the SQLite WAL is %o", s_mode (wal));

    //  An upload, processed: the original, its derivatives and their folders
    char *token = rp_test_login (&server, "alice");
    char path [600];
    rp_test_server_photo (&server, "private.jpg", 1, path, sizeof path);
    size_t len = 0;
    char *data = rp_test_read_file (path, &len);
    char id [RP_ID_MAX], sha [65], why [300];
    cr_assert_eq (s_upload (&server, token, data, len, "private.jpg", id, sha, why, sizeof why), 202, "%s", why);
    char *final = rp_test_wait_final (&server, token, id, 30000);
    cr_assert_str_eq (final, "complete");
    free (final);
    char stored [700], level [700];
    snprintf (stored, sizeof stored, "%s/objects/%.2s/%.2s/%s", data_dir, sha, sha + 2, sha);
    cr_expect_eq (s_mode (stored) & 077, 0, "the original is %o", s_mode (stored));
    const char *suffixes [] = { ".thumbnail.webp", ".preview.jpg" };
    for (int i = 0; i < 2; i++) {
        char derived [720];
        snprintf (derived, sizeof derived, "%s%s", stored, suffixes [i]);
        cr_expect_eq (s_mode (derived) & 077, 0, "%s is %o", suffixes [i], s_mode (derived));
    }
    snprintf (level, sizeof level, "%s/objects/%.2s", data_dir, sha);
    cr_expect_eq (s_mode (level) & 077, 0, "objects/%.2s is %o", sha, s_mode (level));
    snprintf (level, sizeof level, "%s/objects/%.2s/%.2s", data_dir, sha, sha + 2);
    cr_expect_eq (s_mode (level) & 077, 0, "objects/%.2s/%.2s is %o", sha, sha + 2, s_mode (level));
    free (data);
    free (token);
    free (probe);
    rp_test_server_stop (&server);
}
