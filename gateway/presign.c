/*  gateway/presign.c: presigned uploads straight to S3.

    DESIGN
    POST /api/v1/uploads/presign {"filename","bytes","sha256"} makes a photo
    in status "uploading" (with an upload row, as tus does: the same expiry
    sweep fails it when its bytes never come) and answers a presigned PUT
    for the key "<prefix>uploads/<photo id>". The client sends the bytes to
    S3 itself; the engine never sees them on the way.
    The photo leaves "uploading" through rp_library_adopt_upload, reached
    either by the S3 event on the ingest queue (bridges/sqs_ingest.c) or by
    POST /api/v1/uploads/{id}/complete: the object's size and SHA-256 must
    be what presign declared (else the photo fails, saying which differs),
    then it is stored under its content address and queued. Both paths may
    come, in any order: the second finds the upload done and answers the
    same photo.
    A user who already has the declared bytes gets {"id","duplicate":true}
    and no URL: there is nothing to send.
    Bounds: the declared bytes are at most limits.max_upload_bytes (413,
    naming it), and the URL signs Content-Length with them, so S3 itself
    refuses a PUT of any other size; a presigned upload counts among the
    user's open uploads (uploads.max_open_per_user, 429; tus.c).
    Disk mode has no bucket to sign for: 409, naming the setting.
    The sweep (rp_presign_sweep, from the gateway's actor thread, every
    S_SWEEP_MS or half uploads.tus_expire_s when that is shorter) lists
    <prefix>uploads/ a page at a time and deletes each object whose upload
    is gone (expired and failed by the tus sweep, deleted with its photo)
    or done (taken in; adopting deletes it, unless that failed): a client
    that PUT its bytes and never completed leaves nothing in the bucket.
    An upload still in progress keeps its object. Engines sharing a bucket
    may all sweep: deleting is idempotent.
*/
#include "engine/clock.h"
#include "engine/log.h"
#include "library/filename.h"
#include "library/library.h"
#include "gateway/gateway_private.h"

#include <ctype.h>
#include <czmq.h>
#include <string.h>
#include <time.h>

#define S_PRESIGN_PUT_S 900             //  the URL's life
#define S_ROUTE "/api/v1/uploads/"
#define S_SWEEP_MS 60000
#define S_SWEEP_PAGE 1000               //  objects looked at per sweep (S3's page)

static int64_t s_next_sweep_ms = 0;
static char s_sweep_after [RP_S3_KEY_MAX + 1];     //  where the last page ended

static enum MHD_Result
s_presign (struct MHD_Connection *c, rp_req_t *req)
{
    json_t *body = rp_gw_body_json (req);
    const char *filename = json_string_value (json_object_get (body, "filename"));
    json_t *bytes_value = json_object_get (body, "bytes");
    const char *sha = json_string_value (json_object_get (body, "sha256"));
    char why [256] = "";
    if (!filename || !json_is_integer (bytes_value) || !sha)
        snprintf (why, sizeof why, "send {\"filename\": \"...\", \"bytes\": <size>, \"sha256\": \"<64 hex>\"}");
    int64_t bytes = json_integer_value (bytes_value);
    char lower [65] = "";
    if (!why [0] && strlen (sha) != 64)
        snprintf (why, sizeof why, "sha256 must be 64 hex characters");
    for (int k = 0; !why [0] && k < 64; k++) {
        if (!isxdigit ((unsigned char) sha [k]))
            snprintf (why, sizeof why, "sha256 must be 64 hex characters");
        lower [k] = (char) tolower ((unsigned char) sha [k]);
    }
    lower [64] = 0;
    if (!why [0] && bytes <= 0)
        snprintf (why, sizeof why, "bytes must be the file's size, at least 1");
    char name [RP_GW_FILENAME_MAX + 1] = "";
    if (!why [0])
        rp_filename_clean (filename, strlen (filename), name, sizeof name);
    json_decref (body);
    if (why [0])
        return rp_gw_problem (c, req, 400, "Bad request", why);
    if (bytes > rp_gw->config.limits_max_upload_bytes) {
        snprintf (why, sizeof why, "a file may be at most %lld bytes (limits.max_upload_bytes)",
                  (long long) rp_gw->config.limits_max_upload_bytes);
        return rp_gw_problem (c, req, 413, "Payload too large", why);
    }
    rp_s3_mirror_t *s3 = rp_blobstore_s3 (rp_gw->blobs);
    if (!s3)
        return rp_gw_problem (c, req, 409, "Conflict",
                              "presigned uploads need storage.backend = s3; upload to /api/v1/photos or /api/v1/tus");
    char err [512];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db)
        return rp_gw_db_problem (c, req, -1, err);
    char existing [RP_ID_MAX];
    int rc = rp_db_photo_find_sha (db, req->user_id, lower, existing, err, sizeof err);
    if (rc == 0)
        return rp_gw_json (c, req, 200, json_pack ("{s:s, s:b}", "id", existing, "duplicate", 1));
    if (rc != RP_NOT_FOUND)
        return rp_gw_db_problem (c, req, rc, err);
    bool answered = false;
    enum MHD_Result quota = rp_tus_quota (c, req, db, false, &answered);
    if (answered)
        return quota;

    char metadata [600];
    if (rp_library_presign_metadata (name [0] ? name : "upload", lower, metadata, sizeof metadata))
        return rp_gw_problem (c, req, 400, "Bad request", "the file name is too long");
    int64_t now = rp_clock_wall_ms ();
    rp_tus_new_t upload = { .length = bytes, .metadata = metadata, .now_ms = now,
                            .expires_ms = now + rp_gw->config.uploads_tus_expire_s * 1000 };
    rp_photo_new_t photo = { .user_id = req->user_id, .filename = name [0] ? name : "upload",
                             .bytes = bytes, .status = "uploading", .upload = &upload };
    char id [RP_ID_MAX], batch [RP_ID_MAX];
    bool duplicate = false;
    rc = rp_db_photo_create (db, &photo, id, batch, &duplicate, err, sizeof err);
    if (rc)
        return rp_gw_db_problem (c, req, rc, err);
    char relative [64], *url = NULL, key [RP_S3_KEY_MAX + 1];
    snprintf (relative, sizeof relative, "uploads/%s", id);
    if (rp_s3_mirror_key (s3, relative, key, err, sizeof err)
    ||  rp_s3_mirror_presign (s3, "PUT", relative, S_PRESIGN_PUT_S, bytes, &url, err, sizeof err)) {
        rp_warn ("gateway", "req=%s cannot presign an upload: %s", req->id, err);
        return rp_gw_problem (c, req, 503, "Service unavailable", "storage (S3) cannot sign uploads now");
    }
    time_t expires = time (NULL) + S_PRESIGN_PUT_S;
    char expires_at [32];
    strftime (expires_at, sizeof expires_at, "%Y-%m-%dT%H:%M:%SZ", gmtime (&expires));
    rp_info ("gateway", "req=%s upload=%s presigned: %s, %lld bytes", req->id, id, photo.filename,
             (long long) bytes);
    json_t *answer = json_pack ("{s:s, s:s, s:s, s:{}, s:s, s:s, s:s, s:s}",
                                "id", id, "url", url, "method", "PUT", "headers",
                                "expires_at", expires_at, "key", key, "batch_id", batch,
                                "status", "uploading");
    free (url);
    return rp_gw_json (c, req, 201, answer);
}

static enum MHD_Result
s_complete (struct MHD_Connection *c, rp_req_t *req, const char *id)
{
    if (!rp_blobstore_s3 (rp_gw->blobs))
        return rp_gw_problem (c, req, 409, "Conflict", "presigned uploads need storage.backend = s3");
    char err [512];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db)
        return rp_gw_db_problem (c, req, -1, err);
    rp_ingested_t out;
    int rc = rp_library_adopt_upload (rp_gw->blobs, db, &rp_gw->config, req->user_id, id, &out,
                                      err, sizeof err);
    if (rc == RP_NOT_FOUND)
        return rp_gw_problem (c, req, 404, "Not found", "no such presigned upload");
    if (rc == RP_NOT_YET)
        return rp_gw_problem (c, req, 409, "Conflict", err);
    if (rc == RP_REFUSED)
        return rp_gw_problem (c, req, 422, "Unprocessable content", err);
    if (rc == RP_UNAVAILABLE) {
        rp_warn ("gateway", "req=%s upload=%s cannot be taken in: %s", req->id, id, err);
        return rp_gw_problem (c, req, 503, "Service unavailable", "storage (S3) cannot be reached; try again shortly");
    }
    if (rc)
        return rp_gw_db_problem (c, req, rc, err);
    json_t *photo = NULL;
    rc = rp_db_photo_get (db, req->user_id, out.id, &photo, err, sizeof err);
    rp_gw_wake_pipeline ();
    if (rc)
        return rp_gw_db_problem (c, req, rc, err);
    rp_gw_photo_present (photo);
    //  What this call did, as an upload's 202 says it: the pipeline may
    //  have claimed the photo since (its tick does not wait for a wake-up)
    if (out.queued)
        json_object_set_new (photo, "status", json_string ("queued"));
    json_object_set_new (photo, "duplicate", json_boolean (out.duplicate));
    return rp_gw_json (c, req, 202, photo);
}

enum MHD_Result
rp_uploads_route (struct MHD_Connection *c, rp_req_t *req, const char *method, const char *rest)
{
    if (!streq (method, "POST"))
        return rp_gw_problem (c, req, 405, "Method not allowed", "use POST");
    if (streq (rest, "presign"))
        return s_presign (c, req);
    //  {id}/complete
    const char *slash = strchr (rest, '/');
    if (slash && streq (slash, "/complete") && slash - rest < RP_ID_MAX) {
        char id [RP_ID_MAX];
        snprintf (id, sizeof id, "%.*s", (int) (slash - rest), rest);
        return s_complete (c, req, id);
    }
    return rp_gw_problem (c, req, 404, "Not found", "no such resource");
}

void
rp_presign_sweep (rp_db_t *db, bool now)
{
    rp_s3_mirror_t *s3 = rp_gw ? rp_blobstore_s3 (rp_gw->blobs) : NULL;
    if (!db || !s3)
        return;
    if (!rp_gw_sweep_due (&s_next_sweep_ms, S_SWEEP_MS, now))
        return;
    char err [512];
    json_t *names = NULL;
    bool truncated = false;
    if (rp_s3_mirror_list (s3, "uploads/", s_sweep_after, S_SWEEP_PAGE, &names, &truncated, err, sizeof err)) {
        rp_debug ("gateway", "presigned uploads' sweep: %s", err);
        return;
    }
    int removed = 0;
    size_t i;
    json_t *name;
    json_array_foreach (names, i, name) {
        const char *relative = json_string_value (name);
        const char *id = relative + 8;
        if (!rp_db_valid_id (id))
            continue;                   //  not ours to judge
        rp_tus_t upload;
        int rc = rp_db_tus_get (db, NULL, id, &upload, err, sizeof err);
        bool live = rc == 0 && !upload.done;
        if (rc == 0)
            rp_db_tus_clear (&upload);
        if (rc != 0 && rc != RP_NOT_FOUND)
            break;                      //  the database cannot tell: next time
        if (live)
            continue;
        if (rp_s3_mirror_delete (s3, relative, err, sizeof err) == 0) {
            removed++;
            rp_info ("gateway", "upload=%s: its object %s removed (the upload is %s)", id, relative,
                     rc == 0 ? "done" : "gone");
        }
        else
            rp_warn ("gateway", "upload=%s: cannot remove %s: %s", id, relative, err);
    }
    //  The next page, or from the start again
    const char *last = json_string_value (json_array_get (names, json_array_size (names) - 1));
    snprintf (s_sweep_after, sizeof s_sweep_after, "%s", truncated && last ? last : "");
    json_decref (names);
    if (removed)
        rp_info ("gateway", "presigned uploads' sweep: %d objects removed", removed);
}
