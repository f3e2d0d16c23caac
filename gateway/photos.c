/*  gateway/photos.c: the gallery: list, get, delete, tags, batches and
    downloads of a user's own photos, and POST /photos/check (which of
    these SHA-256s does the user have already). Every query names the user,
    so another user's photo is "not found" (404), never "forbidden". */
#include "gateway/gateway_private.h"
#include <czmq.h>
#include "engine/log.h"
#include "engine/phash.h"
#include "library/library.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool
s_valid_id (const char *id, size_t len)
{
    if (len == 0 || len >= RP_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char) id [i]) && id [i] != '-' && id [i] != '_')
            return false;
    return true;
}

void
rp_gw_photo_present (json_t *photo)
{
    const char *id = json_string_value (json_object_get (photo, "id"));
    json_object_del (photo, "attempts");
    if (!id)
        return;
    json_t *urls = json_object ();
    static const char *const kinds [] = { "original", "thumbnail", "preview" };
    for (int i = 0; i < 3; i++) {
        char url [128];
        snprintf (url, sizeof url, "/api/v1/photos/%s/%s", id, kinds [i]);
        json_object_set_new (urls, kinds [i], json_string (url));
    }
    json_object_set_new (photo, "urls", urls);
}

static void
s_present_all (json_t *list)
{
    size_t i;
    json_t *photo;
    json_array_foreach (list, i, photo)
        rp_gw_photo_present (photo);
}

static rp_db_t *
s_db (struct MHD_Connection *c, rp_req_t *req, enum MHD_Result *rc)
{
    char err [256];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db)
        *rc = rp_gw_db_problem (c, req, -1, err);
    return db;
}

//  ---------------------------------------------------------------------------
//  GET /photos

static enum MHD_Result
s_list (struct MHD_Connection *c, rp_req_t *req)
{
    const char *limit_text = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "limit");
    const char *cursor = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "cursor");
    const char *tag = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "tag");
    const char *status = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "status");
    long limit = 50;
    if (limit_text && *limit_text) {
        char *end = NULL;
        limit = strtol (limit_text, &end, 10);
        if (!end || *end || limit < 1 || limit > 500)
            return rp_gw_problem (c, req, 400, "Bad request", "limit is a number from 1 to 500");
    }
    enum MHD_Result result = MHD_NO;
    rp_db_t *db = s_db (c, req, &result);
    if (!db)
        return result;
    //  sort=created_at|taken_at and from/to: the timeline (db_timeline.c)
    rp_db_timeline_t query = {
        .limit = (int) limit, .cursor = cursor, .tag = tag, .status = status,
        .sort = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "sort"),
        .from = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "from"),
        .to = MHD_lookup_connection_value (c, MHD_GET_ARGUMENT_KIND, "to")
    };
    json_t *page = NULL;
    char err [256];
    int rc = rp_db_photo_timeline (db, req->user_id, &query, &page, err, sizeof err);
    if (rc)
        return rp_gw_db_problem (c, req, rc, err);
    s_present_all (json_object_get (page, "items"));
    return rp_gw_json (c, req, 200, page);
}

//  ---------------------------------------------------------------------------
//  Tags

static enum MHD_Result
s_tags_change (struct MHD_Connection *c, rp_req_t *req, const char *id, bool replace)
{
    json_t *body = rp_gw_body_json (req);
    json_t *list = json_object_get (body, "tags");
    if (!json_is_array (list) || json_array_size (list) > 100) {
        json_decref (body);
        return rp_gw_problem (c, req, 400, "Bad request", "send {\"tags\": [\"...\", ...]} (at most 100)");
    }
    const char *tags [100];
    size_t count = 0, i;
    json_t *item;
    json_array_foreach (list, i, item) {
        if (!json_is_string (item)) {
            json_decref (body);
            return rp_gw_problem (c, req, 400, "Bad request", "each tag is a string");
        }
        tags [count++] = json_string_value (item);
    }
    enum MHD_Result result = MHD_NO;
    rp_db_t *db = s_db (c, req, &result);
    if (!db) {
        json_decref (body);
        return result;
    }
    char err [256];
    int rc = replace ? rp_db_photo_tags_set (db, req->user_id, id, tags, count, err, sizeof err)
                     : rp_db_photo_tags_add (db, req->user_id, id, tags, count, err, sizeof err);
    json_decref (body);
    if (rc)
        return rp_gw_db_problem (c, req, rc, err);
    json_t *photo = NULL;
    rc = rp_db_photo_get (db, req->user_id, id, &photo, err, sizeof err);
    if (rc)
        return rp_gw_db_problem (c, req, rc, err);
    rp_gw_photo_present (photo);
    return rp_gw_json (c, req, 200, photo);
}

//  ---------------------------------------------------------------------------
//  Downloads

//  A safe Content-Disposition: an ASCII fallback and RFC 5987/6266 filename*.
static void
s_disposition (const char *filename, char *out, size_t outlen)
{
    char ascii [RP_GW_FILENAME_MAX + 1];
    size_t a = 0;
    for (const unsigned char *p = (const unsigned char *) filename; *p && a < sizeof ascii - 1; p++)
        ascii [a++] = (*p >= 0x20 && *p < 0x7F && *p != '"' && *p != '\\' && *p != ';' && *p != '%')
                    ? (char) *p : '_';
    ascii [a] = 0;
    size_t o = (size_t) snprintf (out, outlen, "attachment; filename=\"%s\"; filename*=UTF-8''", ascii);
    for (const unsigned char *p = (const unsigned char *) filename; *p && o + 4 < outlen; p++) {
        if (isalnum (*p) || strchr ("!#$&+-.^_`|~", *p))
            out [o++] = (char) *p;
        else
            o += (size_t) snprintf (out + o, outlen - o, "%%%02X", *p);
    }
    out [o < outlen ? o : outlen - 1] = 0;
}

//  Parse a single "bytes=" range against size. 1: a range in *start..*end;
//  0: none (or one to ignore); -1: unsatisfiable.
static int
s_range (const char *header, int64_t size, int64_t *start, int64_t *end)
{
    if (!header || strncmp (header, "bytes=", 6) != 0 || strchr (header, ','))
        return 0;
    const char *spec = header + 6;
    char *stop = NULL;
    if (*spec == '-') {
        errno = 0;
        long long suffix = strtoll (spec + 1, &stop, 10);
        if (errno || !stop || *stop || stop == spec + 1 || suffix < 0)
            return 0;
        if (suffix == 0 || size == 0)
            return -1;
        *start = suffix >= size ? 0 : size - suffix;
        *end = size - 1;
        return 1;
    }
    errno = 0;
    long long first = strtoll (spec, &stop, 10);
    if (errno || !stop || stop == spec || *stop != '-' || first < 0)
        return 0;
    const char *second = stop + 1;
    long long last = size - 1;
    if (*second) {
        last = strtoll (second, &stop, 10);
        if (errno || !stop || *stop || last < first)
            return 0;
    }
    if (first >= size)
        return -1;
    *start = first;
    *end = last >= size ? size - 1 : last;
    return 1;
}

//  S3: the bytes come from S3 itself, through a short-lived presigned GET
#define S_PRESIGN_GET_S 300

static enum MHD_Result
s_redirect_to_s3 (struct MHD_Connection *c, rp_req_t *req, const char *sha, const char *suffix,
                  bool not_made_yet)
{
    if (not_made_yet)
        return rp_gw_problem (c, req, 404, "Not found",
                              "this derivative is not made yet: the photo is still being processed, or failed");
    char relative [160], err [256] = "not a content address";
    char *url = NULL;
    if (rp_blob_relative (sha, suffix, relative, sizeof relative)
    ||  rp_s3_mirror_presign (rp_blobstore_s3 (rp_gw->blobs), "GET", relative, S_PRESIGN_GET_S, -1,
                              &url, err, sizeof err)) {
        rp_warn ("gateway", "req=%s cannot presign a download: %s", req->id, err);
        return rp_gw_problem (c, req, 503, "Service unavailable", "storage (S3) cannot be reached");
    }
    struct MHD_Response *response = MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header (response, "Location", url);
    //  The URL expires: never cache the redirect longer than it lives
    MHD_add_response_header (response, "Cache-Control", "private, max-age=60");
    free (url);
    return rp_gw_queue (c, req, 302, response);
}

static enum MHD_Result
s_download (struct MHD_Connection *c, rp_req_t *req, const char *id, const char *which)
{
    const rp_derivative_t *derivative = NULL;
    if (!streq (which, "original")) {
        for (int i = 0; i < rp_gw->config.derivative_count; i++)
            if (streq (rp_gw->config.derivatives [i].name, which))
                derivative = &rp_gw->config.derivatives [i];
        if (!derivative)
            return rp_gw_problem (c, req, 404, "Not found", "no such resource");
    }
    enum MHD_Result result = MHD_NO;
    rp_db_t *db = s_db (c, req, &result);
    if (!db)
        return result;
    json_t *photo = NULL;
    char err [256];
    int rc = rp_db_photo_get (db, req->user_id, id, &photo, err, sizeof err);
    if (rc)
        return rp_gw_db_problem (c, req, rc, err);
    const char *sha = json_string_value (json_object_get (photo, "sha256"));
    const char *status = json_string_value (json_object_get (photo, "status"));
    char path [PATH_MAX], etag [96], type [64], suffix [64] = "";
    if (!sha) {
        json_decref (photo);
        return rp_gw_problem (c, req, 404, "Not found", "the photo's bytes have not arrived yet");
    }
    char sha256 [65];               //  outlives the photo's JSON
    snprintf (sha256, sizeof sha256, "%s", sha);
    if (rp_blob_path (rp_gw->blobs, sha, path, sizeof path)) {
        json_decref (photo);
        return rp_gw_problem (c, req, 500, "Internal error", "the photo's bytes cannot be located");
    }
    if (derivative) {
        const char *ext;
        const char *mime = "application/octet-stream";
        ext = rp_derivative_ext (derivative->format, &mime);
        snprintf (type, sizeof type, "%s", mime);
        snprintf (suffix, sizeof suffix, ".%s.%s", derivative->name, ext);
        size_t n = strlen (path);
        snprintf (path + n, sizeof path - n, "%s", suffix);
        snprintf (etag, sizeof etag, "\"%s.%s\"", sha, derivative->name);
    }
    else {
        const char *ct = json_string_value (json_object_get (photo, "content_type"));
        snprintf (type, sizeof type, "%s", ct ? ct : "application/octet-stream");
        snprintf (etag, sizeof etag, "\"%s\"", sha);
    }
    char disposition [1200] = "";
    if (!derivative)
        s_disposition (json_string_value (json_object_get (photo, "filename")) ?: "photo",
                       disposition, sizeof disposition);
    bool complete = status && streq (status, "complete");
    json_decref (photo);
    const char *cache = derivative ? "private, max-age=31536000, immutable" : "private, no-cache";
    if (rp_blobstore_s3 (rp_gw->blobs))
        return s_redirect_to_s3 (c, req, sha256, suffix, derivative && !complete);

    const char *match = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "If-None-Match");
    if (match && (strstr (match, etag) || streq (match, "*"))) {
        struct MHD_Response *response = MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header (response, "ETag", etag);
        MHD_add_response_header (response, "Cache-Control", cache);
        return rp_gw_queue (c, req, 304, response);
    }
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (derivative && !complete)
            return rp_gw_problem (c, req, 404, "Not found",
                                  "this derivative is not made yet: the photo is still being processed, or failed");
        return rp_gw_problem (c, req, 404, "Not found", "the photo's bytes are gone");
    }
    struct stat st;
    if (fstat (fd, &st)) {
        close (fd);
        return rp_gw_problem (c, req, 500, "Internal error", "the photo's bytes cannot be read");
    }
    int64_t size = (int64_t) st.st_size, start = 0, end = size - 1;
    int ranged = s_range (MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Range"), size, &start, &end);
    if (ranged < 0) {
        close (fd);
        char content_range [64];
        snprintf (content_range, sizeof content_range, "bytes */%lld", (long long) size);
        return rp_gw_problem_h (c, req, 416, "Range not satisfiable",
                                "the range lies outside the file", "Content-Range", content_range);
    }
    int64_t length = ranged ? end - start + 1 : size;
    struct MHD_Response *response = MHD_create_response_from_fd_at_offset64 ((uint64_t) length, fd,
                                                                             (uint64_t) start);
    if (!response) {
        close (fd);
        return MHD_NO;
    }
    MHD_add_response_header (response, "Content-Type", type);
    MHD_add_response_header (response, "ETag", etag);
    MHD_add_response_header (response, "Cache-Control", cache);
    MHD_add_response_header (response, "Accept-Ranges", "bytes");
    if (disposition [0])
        MHD_add_response_header (response, "Content-Disposition", disposition);
    if (ranged) {
        char content_range [96];
        snprintf (content_range, sizeof content_range, "bytes %lld-%lld/%lld", (long long) start,
                  (long long) end, (long long) size);
        MHD_add_response_header (response, "Content-Range", content_range);
    }
    req->bytes_out = length;
    return rp_gw_queue (c, req, ranged ? 206 : 200, response);
}

//  ---------------------------------------------------------------------------
//  POST /photos/check

enum MHD_Result
rp_photos_check (struct MHD_Connection *c, rp_req_t *req)
{
    json_t *body = rp_gw_body_json (req);
    json_t *list = json_object_get (body, "sha256");
    if (!json_is_array (list) || json_array_size (list) > 1000) {
        json_decref (body);
        return rp_gw_problem (c, req, 400, "Bad request",
                              "send {\"sha256\": [\"<64 hex>\", ...]} (at most 1000)");
    }
    char err [256];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db) {
        json_decref (body);
        return rp_gw_db_problem (c, req, -1, err);
    }
    json_t *existing = json_object ();
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        const char *sha = json_string_value (item);
        char id [RP_ID_MAX];
        if (!sha || strlen (sha) != 64) {
            json_decref (body);
            json_decref (existing);
            return rp_gw_problem (c, req, 400, "Bad request", "each sha256 is 64 hex characters");
        }
        char lower [65];
        for (int k = 0; k < 64; k++)
            lower [k] = (char) tolower ((unsigned char) sha [k]);
        lower [64] = 0;
        int rc = rp_db_photo_find_sha (db, req->user_id, lower, id, err, sizeof err);
        if (rc == 0)
            json_object_set_new (existing, lower, json_string (id));
        else
        if (rc != RP_NOT_FOUND) {
            json_decref (body);
            json_decref (existing);
            return rp_gw_db_problem (c, req, rc, err);
        }
    }
    json_decref (body);
    return rp_gw_json (c, req, 200, json_pack ("{s:o}", "existing", existing));
}

//  ---------------------------------------------------------------------------
//  Routing

//  ---------------------------------------------------------------------------
//  GET /photos/{id}/similar: near-duplicates (engine/phash.h), nearest first

static enum MHD_Result
s_similar (struct MHD_Connection *c, rp_req_t *req, const char *id)
{
    enum MHD_Result result = MHD_NO;
    rp_db_t *db = s_db (c, req, &result);
    if (!db)
        return result;
    char err [256];
    json_t *items = NULL;
    int rc = rp_db_photo_similar (db, req->user_id, id, RP_PHASH_THRESHOLD, 100, &items, NULL,
                                  err, sizeof err);
    if (rc)
        return rp_gw_db_problem (c, req, rc, err);
    s_present_all (items);
    return rp_gw_json (c, req, 200, json_pack ("{s:o}", "items", items));
}

enum MHD_Result
rp_photos_route (struct MHD_Connection *c, rp_req_t *req, const char *method, const char *rest)
{
    bool get = streq (method, "GET") || streq (method, "HEAD");
    if (!*rest || streq (rest, "/")) {
        if (get)
            return s_list (c, req);
        return rp_gw_problem (c, req, 405, "Method not allowed", "use GET to list, POST to upload");
    }
    //  /{id}[/{what}[/{tag}]]
    const char *id = rest + 1;
    size_t id_len = strcspn (id, "/");
    if (!s_valid_id (id, id_len))
        return rp_gw_problem (c, req, 404, "Not found", "no such photo");
    char photo_id [RP_ID_MAX];
    snprintf (photo_id, sizeof photo_id, "%.*s", (int) id_len, id);
    const char *what = id [id_len] ? id + id_len + 1 : NULL;
    char err [256];
    enum MHD_Result result = MHD_NO;
    if (!what) {
        rp_db_t *db = s_db (c, req, &result);
        if (!db)
            return result;
        if (get) {
            json_t *photo = NULL;
            int rc = rp_db_photo_get (db, req->user_id, photo_id, &photo, err, sizeof err);
            if (rc)
                return rp_gw_db_problem (c, req, rc, err);
            rp_gw_photo_present (photo);
            return rp_gw_json (c, req, 200, photo);
        }
        if (streq (method, "DELETE")) {
            int rc = rp_library_delete (rp_gw->blobs, db, req->user_id, photo_id, err, sizeof err);
            if (rc)
                return rp_gw_db_problem (c, req, rc, err);
            struct MHD_Response *response = MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
            return rp_gw_queue (c, req, 204, response);
        }
        return rp_gw_problem (c, req, 405, "Method not allowed", "use GET or DELETE");
    }
    if (streq (what, "tags")) {
        if (streq (method, "PUT"))
            return s_tags_change (c, req, photo_id, true);
        if (streq (method, "POST"))
            return s_tags_change (c, req, photo_id, false);
        return rp_gw_problem (c, req, 405, "Method not allowed", "PUT replaces tags, POST adds");
    }
    if (strncmp (what, "tags/", 5) == 0 && what [5]) {
        if (!streq (method, "DELETE"))
            return rp_gw_problem (c, req, 405, "Method not allowed", "use DELETE to remove a tag");
        rp_db_t *db = s_db (c, req, &result);
        if (!db)
            return result;
        int rc = rp_db_photo_tag_remove (db, req->user_id, photo_id, what + 5, err, sizeof err);
        if (rc)
            return rp_gw_db_problem (c, req, rc, err);
        struct MHD_Response *response = MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
        return rp_gw_queue (c, req, 204, response);
    }
    if (streq (what, "similar")) {
        if (!get)
            return rp_gw_problem (c, req, 405, "Method not allowed", "use GET");
        return s_similar (c, req, photo_id);
    }
    //  original, or any configured derivative (thumbnail, preview, ...)
    if (*what && !strchr (what, '/') && strlen (what) < sizeof (((rp_derivative_t *) 0)->name)) {
        if (!get)
            return rp_gw_problem (c, req, 405, "Method not allowed", "use GET");
        return s_download (c, req, photo_id, what);
    }
    return rp_gw_problem (c, req, 404, "Not found", "no such resource");
}

enum MHD_Result
rp_batches_route (struct MHD_Connection *c, rp_req_t *req, const char *method, const char *rest)
{
    size_t len = strlen (rest);
    if (!s_valid_id (rest, len))
        return rp_gw_problem (c, req, 404, "Not found", "no such batch");
    if (!streq (method, "GET") && !streq (method, "HEAD"))
        return rp_gw_problem (c, req, 405, "Method not allowed", "use GET");
    enum MHD_Result result = MHD_NO;
    rp_db_t *db = s_db (c, req, &result);
    if (!db)
        return result;
    json_t *batch = NULL;
    char err [256];
    int rc = rp_db_batch_get (db, req->user_id, rest, &batch, err, sizeof err);
    if (rc)
        return rp_gw_db_problem (c, req, rc, err);
    s_present_all (json_object_get (batch, "photos"));
    return rp_gw_json (c, req, 200, batch);
}
