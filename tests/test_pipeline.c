/*  tests/test_pipeline.c: what the pipeline takes from workers is checked
    before it reaches a row.

    The real pipeline actor and broker (over inproc), a library in a fresh
    data folder (SQLite), and in place of the worker pools a scripted worker
    (two DEALERs on the broker's backend, resize and exif) that answers
    each JOB with what the test makes it say: what the real workers would
    say about the test's photo, or a forgery of one field. A forged result
    must never complete a photo: the attempt counts as lost, so the photo
    is queued again (and with one attempt allowed, failed, naming the check).
*/
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/broker.h"
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/msg.h"
#include "library/blobstore.h"
#include "library/library.h"
#include "library/pipeline.h"
#include "tests/support/testdata.h"

#define FRONTEND "inproc://test-pipeline-frontend"
#define BACKEND  "inproc://test-pipeline-backend"

static void
s_setup (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
}

TestSuite (pipeline, .init = s_setup);

//  Which field of which answer the scripted worker forges
typedef enum {
    S_HONEST,
    S_CONTENT_TYPE,         //  resize says text/html
    S_ZERO_WIDTH,
    S_PIXEL_BOMB,           //  100000 x 100000
    S_OTHER_SHA,            //  exif names other bytes
    S_BYTES_OFF,
    S_BAD_DATE,
    S_LONG_STRING,          //  an EXIF string over the bound
    S_DERIVATIVE_SIZE,      //  claims a byte count the stored file does not have
    S_DERIVATIVE_MISSING,   //  claims a derivative that was never stored
    S_DERIVATIVE_HUGE,      //  a thumbnail bigger than its box
    S_FORGERIES
} s_forgery_t;

static const char *s_checks [S_FORGERIES] = {
    NULL, "content_type", "width and height", "width and height", "sha256", "bytes",
    "taken_at", "exif.make", "derivative thumbnail", "derivative preview", "derivative thumbnail",
};

typedef struct {
    rp_config_t config;
    char *dir;
    rp_db_t *db;
    rp_blobstore_t *blobs;
    char user [RP_ID_MAX];
    zactor_t *broker;
    zactor_t *pipeline;
    zsock_t *resize;            //  the scripted worker's two sides
    zsock_t *exif;
    int64_t heartbeat_at;
} s_rig_t;

static void
s_rig_start (s_rig_t *rig, int max_attempts)
{
    memset (rig, 0, sizeof *rig);
    char err [512];
    cr_assert_eq (rp_config_load (&rig->config, NULL, err, sizeof err), 0, "%s", err);
    rig->dir = rp_test_tmpdir ("pipeline");
    snprintf (rig->config.data_dir, sizeof rig->config.data_dir, "%s", rig->dir);
    snprintf (rig->config.db_url, sizeof rig->config.db_url, "sqlite:%s/rapidphoto.db", rig->dir);
    rig->config.pipeline_max_attempts = max_attempts;
    rig->config.pipeline_retry_base_ms = 50;
    cr_assert_eq (rp_library_open_and_recover (&rig->config, err, sizeof err), 0, "%s", err);
    rig->db = rp_db_open (rig->config.db_url, err, sizeof err);
    cr_assert_not_null (rig->db, "%s", err);
    cr_assert_eq (rp_db_user_add (rig->db, "alice", "not-a-real-hash", rig->user, err, sizeof err), 0,
                  "%s", err);
    rig->blobs = rp_blobstore_open (&rig->config, err, sizeof err);
    cr_assert_not_null (rig->blobs, "%s", err);

    rp_broker_args_t args;
    rp_broker_args_from_config (&args, &rig->config);
    snprintf (args.frontends [0], RP_STR_MAX, "%s", FRONTEND);
    snprintf (args.backends [0], RP_STR_MAX, "%s", BACKEND);
    rig->broker = rp_broker_new (&args, err, sizeof err);
    cr_assert_not_null (rig->broker, "%s", err);
    rp_pipeline_args_t *pargs = calloc (1, sizeof (rp_pipeline_args_t));
    snprintf (pargs->frontend, sizeof pargs->frontend, "%s", FRONTEND);
    pargs->config = rig->config;
    rig->pipeline = rp_pipeline_new (pargs);
    free (pargs);
    cr_assert_not_null (rig->pipeline);

    const char *pools [2] = { "resize", "exif" };
    zsock_t **sides [2] = { &rig->resize, &rig->exif };
    for (int i = 0; i < 2; i++) {
        *sides [i] = zsock_new_dealer (BACKEND);
        rp_msg_t *ready = rp_msg_new (RP_MSG_READY);
        rp_msg_set (&ready->pool, pools [i]);
        rp_msg_setf (&ready->worker, "scripted-%s", pools [i]);
        rp_msg_send (ready, zsock_resolve (*sides [i]), NULL);
        rp_msg_destroy (&ready);
    }
}

static void
s_rig_stop (s_rig_t *rig)
{
    zsock_destroy (&rig->resize);
    zsock_destroy (&rig->exif);
    zactor_destroy (&rig->pipeline);
    zactor_destroy (&rig->broker);
    rp_blobstore_close (&rig->blobs);
    rp_db_close (&rig->db);
    free (rig->dir);
}

typedef struct {
    char id [RP_ID_MAX];
    char sha256 [65];
    int64_t bytes;
    int width, height;
} s_photo_t;

//  A photo of width x 480 taken in, queued
static void
s_photo_ingest (s_rig_t *rig, int width, s_photo_t *photo)
{
    char path [600], err [512];
    snprintf (path, sizeof path, "%s/in-%d.jpg", rig->dir, width);
    cr_assert_eq (rp_test_make_jpeg (path, width, 480, 0), 0);
    rp_blob_writer_t *writer = rp_blob_begin_file (rig->blobs, path, 1 << 26, err, sizeof err);
    cr_assert_not_null (writer, "%s", err);
    rp_ingest_t ingest = { .user_id = rig->user, .filename = "in.jpg", .declared_bytes = -1 };
    rp_ingested_t out;
    cr_assert_eq (rp_library_ingest (rig->blobs, rig->db, &writer, &ingest, &out, err, sizeof err), 0,
                  "%s", err);
    snprintf (photo->id, sizeof photo->id, "%s", out.id);
    snprintf (photo->sha256, sizeof photo->sha256, "%s", out.sha256);
    photo->bytes = out.bytes;
    photo->width = width;
    photo->height = 480;
    zstr_send (rig->pipeline, "WAKE");
}

//  Store a derivative of bytes bytes beside the original, as a worker would
static void
s_write_derivative (s_rig_t *rig, const s_photo_t *photo, const char *suffix, int bytes)
{
    char path [1024];
    rp_blob_path (rig->blobs, photo->sha256, path, sizeof path);
    strncat (path, suffix, sizeof path - strlen (path) - 1);
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file, "%s", path);
    for (int i = 0; i < bytes; i++)
        fputc ('d', file);
    fclose (file);
}

//  The answer the real workers would give about photo, with one forgery
static char *
s_answer (s_rig_t *rig, const s_photo_t *photo, bool resize, s_forgery_t forgery)
{
    json_t *result;
    if (resize) {
        int thumb_w = 256, thumb_h = 256 * photo->height / photo->width;
        s_write_derivative (rig, photo, ".thumbnail.webp", 1000);
        if (forgery != S_DERIVATIVE_MISSING)
            s_write_derivative (rig, photo, ".preview.jpg", 2000);
        result = json_pack ("{s:s, s:i, s:i, s:{s:{s:s, s:i, s:i, s:i}, s:{s:s, s:i, s:i, s:i}}}",
            "content_type", forgery == S_CONTENT_TYPE ? "text/html" : "image/jpeg",
            "width", forgery == S_ZERO_WIDTH ? 0 : forgery == S_PIXEL_BOMB ? 100000 : photo->width,
            "height", forgery == S_PIXEL_BOMB ? 100000 : photo->height,
            "derivatives",
              "thumbnail", "format", "webp",
                "width", forgery == S_DERIVATIVE_HUGE ? 5000 : thumb_w, "height", thumb_h,
                "bytes", forgery == S_DERIVATIVE_SIZE ? 1001 : 1000,
              "preview", "format", "jpeg", "width", photo->width, "height", photo->height,
                "bytes", 2000);
    }
    else {
        char long_make [400];
        memset (long_make, 'M', sizeof long_make - 1);
        long_make [sizeof long_make - 1] = 0;
        result = json_pack ("{s:s, s:I, s:s, s:i, s:i, s:s?, s:{s:s, s:o, s:i}}",
            "sha256", forgery == S_OTHER_SHA ? "0000000000000000000000000000000000000000000000000000000000000000"
                                             : photo->sha256,
            "bytes", (json_int_t) (photo->bytes + (forgery == S_BYTES_OFF)),
            "content_type", "image/jpeg", "width", photo->width, "height", photo->height,
            "taken_at", forgery == S_BAD_DATE ? "yesterday, around noon" : "2019-07-01T12:00:00+02:00",
            "exif", "make", forgery == S_LONG_STRING ? long_make : "Test Camera",
                    "gps", json_null (), "orientation", 1);
    }
    char *text = json_dumps (result, JSON_COMPACT);
    json_decref (result);
    return text;
}

//  Answer the JOBs that come, forging on the photo's attempts up to
//  forge_until, until the photo is final (or timeout_ms). Its status.
static char *
s_work_until_final (s_rig_t *rig, const s_photo_t *photo, s_forgery_t forgery, int forge_until,
                    int timeout_ms)
{
    zpoller_t *poller = zpoller_new (rig->resize, rig->exif, NULL);
    int64_t deadline = rp_clock_ms () + timeout_ms;
    char status [16] = "";
    char err [256];
    while (rp_clock_ms () < deadline) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, 100);
        if (rp_clock_ms () >= rig->heartbeat_at) {
            zstr_sendx (rig->resize, "RP1", "HEARTBEAT", NULL);
            zstr_sendx (rig->exif, "RP1", "HEARTBEAT", NULL);
            rig->heartbeat_at = rp_clock_ms () + 300;
        }
        if (which) {
            zmsg_t *zmsg = zmsg_recv (which);
            rp_msg_t *job = rp_msg_decode (zmsg, err, sizeof err);
            zmsg_destroy (&zmsg);
            cr_assert_not_null (job, "%s", err);
            if (job->command == RP_MSG_JOB) {
                //  Jobs name the original by address, never by path
                cr_assert_str_eq (job->src, photo->sha256);
                cr_assert_null (job->dest);
                int attempt = (int) strtol (strchr (job->job_id, '.') + 1, NULL, 10);
                bool resize = which == rig->resize;
                rp_msg_t *done = rp_msg_new (RP_MSG_DONE);
                rp_msg_set (&done->job_id, job->job_id);
                rp_msg_set (&done->worker, resize ? "scripted-resize" : "scripted-exif");
                done->result = s_answer (rig, photo, resize, attempt <= forge_until ? forgery : S_HONEST);
                rp_msg_send (done, zsock_resolve (which), NULL);
                rp_msg_destroy (&done);
            }
            rp_msg_destroy (&job);
        }
        if (rp_db_photo_status (rig->db, photo->id, status, err, sizeof err) == 0
        &&  (streq (status, "complete") || streq (status, "failed")))
            break;
    }
    zpoller_destroy (&poller);
    return strdup (*status ? status : "none");
}

static json_t *
s_row (s_rig_t *rig, const s_photo_t *photo)
{
    json_t *row = NULL;
    char err [256];
    cr_assert_eq (rp_db_photo_get (rig->db, rig->user, photo->id, &row, err, sizeof err), 0, "%s", err);
    return row;
}

Test (pipeline, honest_results_complete_and_forged_ones_never_do, .timeout = 240)
{
    s_rig_t rig;
    s_rig_start (&rig, 1);
    for (int forgery = S_HONEST; forgery < S_FORGERIES; forgery++) {
        s_photo_t photo;
        s_photo_ingest (&rig, 640 + 16 * forgery, &photo);
        char *status = s_work_until_final (&rig, &photo, (s_forgery_t) forgery, 1, 30000);
        json_t *row = s_row (&rig, &photo);
        const char *error = json_string_value (json_object_get (row, "error"));
        if (forgery == S_HONEST) {
            cr_assert_str_eq (status, "complete", "the honest answer: %s", error ? error : "");
            cr_assert_eq (json_integer_value (json_object_get (row, "width")), photo.width);
            cr_assert_str_eq (json_string_value (json_object_get (row, "taken_at")),
                              "2019-07-01T12:00:00+02:00");
        }
        else {
            cr_assert_str_eq (status, "failed", "forgery %d (%s) made the photo %s", forgery,
                              s_checks [forgery], status);
            cr_assert (error && strstr (error, "failed a check") && strstr (error, s_checks [forgery]),
                       "forgery %d: %s", forgery, error ? error : "(no error)");
            //  Nothing the forger said reached the row
            cr_assert (json_is_null (json_object_get (row, "width")), "forgery %d", forgery);
            cr_assert (json_is_null (json_object_get (row, "taken_at")), "forgery %d", forgery);
            cr_assert_str_eq (json_string_value (json_object_get (row, "content_type")), "image/jpeg");
        }
        json_decref (row);
        free (status);
    }
    s_rig_stop (&rig);
}

Test (pipeline, a_forged_attempt_is_retried_and_the_honest_one_completes, .timeout = 120)
{
    s_rig_t rig;
    s_rig_start (&rig, 2);
    s_photo_t photo;
    s_photo_ingest (&rig, 700, &photo);
    //  The first attempt's answers lie about the type; the second's do not
    char *status = s_work_until_final (&rig, &photo, S_CONTENT_TYPE, 1, 30000);
    json_t *row = s_row (&rig, &photo);
    cr_assert_str_eq (status, "complete", "%s", json_string_value (json_object_get (row, "error")));
    cr_assert_eq (json_integer_value (json_object_get (row, "attempts")), 2);
    cr_assert_str_eq (json_string_value (json_object_get (row, "content_type")), "image/jpeg");
    cr_assert_eq (json_integer_value (json_object_get (row, "width")), 700);
    json_decref (row);
    free (status);
    s_rig_stop (&rig);
}
