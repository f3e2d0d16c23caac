/*  gateway/upload.c: POST /api/v1/photos.

    Bytes go straight from libmicrohttpd's buffers into blob writers (a
    temporary file, hashed on the way), never held whole in memory. Checks
    run as early as the information allows: the token and Content-Length
    (413) before any body byte is read, the type (415) as soon as a file's
    first RP_SNIFF_ACCEPT_BYTES bytes are in, the running count against the limits
    on every chunk: limits.max_upload_bytes per file and, for a multipart
    body, limits.max_request_bytes for all of it (the temporary bytes one
    request may write before it is refused), each 413 naming its setting.
    The fields are taken whole or refused, never cut or glued: tags
    (X-Tags or a `tags` part) up to S_TAGS_MAX bytes, more than any list
    of tags a photo may have, else 400 naming them; a `tags` or `batch_id`
    part sent twice is a 400 naming it. A raw body's X-Content-SHA256 is
    checked against the bytes (400 naming both); in S3 mode it lets a large
    upload stream straight to its address (blobstore.h, rp_blob_expect).
    A refused request leaves nothing behind: every writer is aborted. The
    202 is queued only after each file's bytes are durable and
    its row committed (rp_library_ingest, the one ingest path), then the
    pipeline is woken. Every file's type is checked before the first is
    committed, so a refused type stores nothing of the request; a refusal
    of the row (a batch id, tag or file name the library does not take)
    comes back as RP_REFUSED and is a 400 naming it, by its status code,
    never by the words of the message.
*/
#include "gateway/gateway_private.h"
#include <czmq.h>
#include "engine/alloc.h"
#include "engine/log.h"
#include "library/filename.h"
#include "library/library.h"
#include "library/sniff.h"

#include <ctype.h>
#include <string.h>

//  Tags, whole: 100 tags of 64 bytes and their commas fit
#define S_TAGS_MAX 8192

typedef struct {
    rp_blob_writer_t *writer;
    char filename [RP_GW_FILENAME_MAX + 1];
    bool checked;                       //  first bytes seen and they are an image
} s_part_t;

struct _rp_upload_t {
    struct MHD_PostProcessor *pp;       //  multipart; NULL for a raw body
    bool closing;                       //  the post processor is being destroyed
    s_part_t parts [RP_GW_FILES_MAX];
    int nparts;
    char batch_id [64];
    size_t batch_len;
    int batch_parts;                    //  batch_id parts seen (one at most)
    char tags [S_TAGS_MAX + 1];
    size_t tags_len;
    int tags_parts;                     //  tags parts seen (one at most)
    int64_t limit;                      //  the whole body's bound
    int64_t received;
    int64_t discarded;                  //  after an error
    char declared [65];                 //  raw body: X-Content-SHA256, lower case, or ""
    rp_gw_error_t error;                //  status 0 while all is well
};

//  After this much is thrown away behind an error, the connection is cut
#define S_DISCARD_MAX (4 * 1024 * 1024)

static void
s_abort_all (rp_upload_t *self)
{
    for (int i = 0; i < self->nparts; i++)
        rp_blob_abort (&self->parts [i].writer);
}

//  The first error wins; nothing of the upload is kept after it.
static void
s_fail (rp_upload_t *self, int status, const char *title, const char *detail)
{
    if (rp_gw_error_set (&self->error, status, title, detail))
        s_abort_all (self);
}

static s_part_t *
s_part_new (rp_upload_t *self, const char *filename)
{
    if (self->nparts == RP_GW_FILES_MAX) {
        s_fail (self, 413, "Payload too large", "at most 100 files in one upload");
        return NULL;
    }
    char err [256];
    rp_blob_writer_t *writer = rp_blob_begin (rp_gw->blobs, rp_gw->config.limits_max_upload_bytes,
                                              err, sizeof err);
    if (!writer) {
        rp_warn ("gateway", "cannot start a blob: %s", err);
        s_fail (self, 503, "Service unavailable", "storage is unavailable; try again shortly");
        return NULL;
    }
    s_part_t *part = &self->parts [self->nparts++];
    part->writer = writer;
    part->checked = false;
    rp_filename_clean (filename ? filename : "upload", filename ? strlen (filename) : 6,
                             part->filename, sizeof part->filename);
    return part;
}

//  Sniff a part once enough bytes are in (or at the end, when final).
static void
s_check_type (rp_upload_t *self, s_part_t *part, bool final)
{
    if (part->checked || !part->writer)
        return;
    size_t got = 0;
    const unsigned char *head = rp_blob_head (part->writer, &got);
    if (got < RP_SNIFF_ACCEPT_BYTES && !final)
        return;
    char why [200], detail [512];
    if (rp_sniff_check (head, got, why, sizeof why))
        part->checked = true;
    else {
        snprintf (detail, sizeof detail, "%s: %s", part->filename, why);
        s_fail (self, 415, "Unsupported media type", detail);
    }
}

static void
s_write (rp_upload_t *self, s_part_t *part, const char *data, size_t size)
{
    if (!size || self->error.status)
        return;
    char err [256];
    if (rp_blob_write (part->writer, data, size, err, sizeof err)) {
        if (rp_blob_size (part->writer) + (int64_t) size > rp_gw->config.limits_max_upload_bytes) {
            char detail [160];
            snprintf (detail, sizeof detail, "a file may be at most %lld bytes (limits.max_upload_bytes)",
                      (long long) rp_gw->config.limits_max_upload_bytes);
            s_fail (self, 413, "Payload too large", detail);
        }
        else {
            rp_warn ("gateway", "cannot write a blob: %s", err);
            s_fail (self, 503, "Service unavailable", "storage is unavailable; try again shortly");
        }
        return;
    }
    s_check_type (self, part, false);
}

//  A text field's next bytes (off: where they go in the field; 0 starts it)
static void
s_append_field (rp_upload_t *self, char *buf, size_t *len, size_t cap, int *parts, uint64_t off,
                const char *data, size_t size, const char *name)
{
    if (off == 0 && ++*parts > 1) {
        char detail [96];
        snprintf (detail, sizeof detail, "the %s field was sent more than once: send it once", name);
        s_fail (self, 400, "Bad request", detail);
        return;
    }
    if (*len + size >= cap) {
        char detail [96];
        snprintf (detail, sizeof detail, "the %s field is longer than %zu bytes", name, cap - 1);
        s_fail (self, 400, "Bad request", detail);
        return;
    }
    memcpy (buf + *len, data, size);
    *len += size;
    buf [*len] = 0;
}

static enum MHD_Result
s_iterate (void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
           const char *content_type, const char *transfer_encoding, const char *data,
           uint64_t off, size_t size)
{
    rp_upload_t *self = (rp_upload_t *) cls;
    if (self->closing || self->error.status || !key)
        return MHD_YES;
    if (streq (key, "file")) {
        s_part_t *part = self->nparts ? &self->parts [self->nparts - 1] : NULL;
        if (off == 0) {
            //  A new part, unless the last one has not had a byte yet
            if (part && part->writer && rp_blob_size (part->writer) == 0)
                rp_filename_clean (filename ? filename : "upload", filename ? strlen (filename) : 6,
                                         part->filename, sizeof part->filename);
            else
                part = s_part_new (self, filename);
        }
        if (part && part->writer)
            s_write (self, part, data, size);
    }
    else
    if (streq (key, "batch_id"))
        s_append_field (self, self->batch_id, &self->batch_len, sizeof self->batch_id, &self->batch_parts, off,
                        data, size, "batch_id");
    else
    if (streq (key, "tags"))
        s_append_field (self, self->tags, &self->tags_len, sizeof self->tags, &self->tags_parts, off, data, size,
                        "tags");
    return MHD_YES;
}

static bool
s_hex64 (const char *text)
{
    if (!text || strlen (text) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!isxdigit ((unsigned char) text [i]))
            return false;
    return true;
}

//  X-Content-SHA256 names bytes the user already has: answer without the body.
static enum MHD_Result
s_duplicate_answer (struct MHD_Connection *c, rp_req_t *req, const char *sha, bool *answered)
{
    *answered = false;
    char lower [65];
    for (int i = 0; i < 64; i++)
        lower [i] = (char) tolower ((unsigned char) sha [i]);
    lower [64] = 0;
    char err [256], id [RP_ID_MAX];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db || rp_db_photo_find_sha (db, req->user_id, lower, id, err, sizeof err))
        return MHD_YES;                 //  not known (or cannot tell): take the body
    json_t *photo = NULL;
    if (rp_db_photo_get (db, req->user_id, id, &photo, err, sizeof err))
        return MHD_YES;
    *answered = true;
    json_t *item = json_pack ("{s:s, s:O, s:O, s:s, s:b}", "id", id,
                              "filename", json_object_get (photo, "filename"),
                              "status", json_object_get (photo, "status"), "sha256", lower,
                              "duplicate", 1);
    json_t *answer = json_pack ("{s:O, s:[o]}", "batch_id", json_object_get (photo, "batch_id"),
                                "photos", item);
    json_decref (photo);
    req->acknowledged = true;
    return rp_gw_json (c, req, 202, answer);
}

enum MHD_Result
rp_upload_begin (struct MHD_Connection *c, rp_req_t *req)
{
    const rp_config_t *config = &rp_gw->config;
    const char *type = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Content-Type");
    const char *length = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Content-Length");
    bool multipart = type && strncasecmp (type, "multipart/form-data", 19) == 0;
    bool raw = type && strncasecmp (type, "image/", 6) == 0;
    //  A multipart body carries several files, each up to its limit, all
    //  of them up to the request's
    int64_t limit = raw ? config->limits_max_upload_bytes : config->limits_max_request_bytes;
    if (length) {
        char *end = NULL;
        errno = 0;
        long long declared = strtoll (length, &end, 10);
        if (errno || !end || *end || declared < 0)
            return rp_gw_problem (c, req, 400, "Bad request", "Content-Length is not a number");
        if (declared > limit) {
            char detail [200];
            snprintf (detail, sizeof detail, "the body is %lld bytes; at most %lld are accepted %s",
                      declared, (long long) limit, raw ? "in one file (limits.max_upload_bytes)"
                                                       : "in one multipart upload (limits.max_request_bytes)");
            return rp_gw_problem (c, req, 413, "Payload too large", detail);
        }
    }
    if (!multipart && !raw)
        return rp_gw_problem (c, req, 415, "Unsupported media type",
                              "send multipart/form-data with parts named file, or one image with an "
                              "image/* Content-Type and X-Filename");
    if (multipart && !strstr (type, "boundary="))
        return rp_gw_problem (c, req, 400, "Bad request", "the multipart Content-Type has no boundary");

    rp_upload_t *self = (rp_upload_t *) rp_alloc (sizeof (rp_upload_t));
    self->limit = limit;
    req->upload = self;
    if (multipart) {
        self->pp = MHD_create_post_processor (c, 64 * 1024, s_iterate, self);
        if (!self->pp)
            return rp_gw_problem (c, req, 400, "Bad request", "the multipart Content-Type is malformed");
        return MHD_YES;
    }
    const char *sha = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "X-Content-SHA256");
    if (sha) {
        if (!s_hex64 (sha))
            return rp_gw_problem (c, req, 400, "Bad request", "X-Content-SHA256 must be 64 hex characters");
        bool answered = false;
        enum MHD_Result rc = s_duplicate_answer (c, req, sha, &answered);
        if (answered)
            return rc;
    }
    const char *name = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "X-Filename");
    const char *batch = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "X-Batch-Id");
    const char *tags = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "X-Tags");
    if (batch)
        snprintf (self->batch_id, sizeof self->batch_id, "%s", batch);
    if (tags && strlen (tags) > S_TAGS_MAX) {
        char detail [96];
        snprintf (detail, sizeof detail, "X-Tags is longer than %d bytes", S_TAGS_MAX);
        return rp_gw_problem (c, req, 400, "Bad request", detail);
    }
    if (tags)
        snprintf (self->tags, sizeof self->tags, "%s", tags);
    if (!s_part_new (self, name))
        return rp_gw_problem (c, req, self->error.status, self->error.title, self->error.detail);
    if (sha) {
        for (int i = 0; i < 64; i++)
            self->declared [i] = (char) tolower ((unsigned char) sha [i]);
        self->declared [64] = 0;
        rp_blob_expect (self->parts [0].writer, self->declared);
    }
    return MHD_YES;
}

enum MHD_Result
rp_upload_data (struct MHD_Connection *c, rp_req_t *req, const char *data, size_t size)
{
    rp_upload_t *self = req->upload;
    if (self->error.status) {
        //  Read and drop the rest (bounded by the body's limit, which the
        //  Content-Length check already holds) so the client gets the
        //  answer, not a reset; past the limit, cut the connection
        self->discarded += (int64_t) size;
        return self->received + self->discarded > self->limit + S_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    self->received += (int64_t) size;
    if (self->received > self->limit) {
        char detail [200];
        snprintf (detail, sizeof detail, "the body is larger than %lld bytes, the most %s",
                  (long long) self->limit, self->pp ? "one multipart upload may be (limits.max_request_bytes)"
                                                    : "a file may be (limits.max_upload_bytes)");
        s_fail (self, 413, "Payload too large", detail);
        return MHD_YES;
    }
    if (self->pp) {
        if (MHD_post_process (self->pp, data, size) != MHD_YES)
            s_fail (self, 400, "Bad request", "the multipart body is malformed");
    }
    else
        s_write (self, &self->parts [0], data, size);
    return MHD_YES;
}

//  A file that could not be taken in, by the status rp_library_ingest gave.
static enum MHD_Result
s_ingest_problem (struct MHD_Connection *c, rp_req_t *req, int rc, const char *err, bool some_stored)
{
    const char *before = some_stored ? " (the files before this one were stored)" : "";
    char detail [640];
    if (rc == RP_REFUSED || rc == RP_NOT_FOUND) {
        //  What the client sent: the reason names it (a batch id, a tag)
        snprintf (detail, sizeof detail, "%s%s", err, before);
        return rp_gw_problem (c, req, rc == RP_REFUSED ? 400 : 404,
                              rc == RP_REFUSED ? "Bad request" : "Not found", detail);
    }
    rp_warn ("gateway", "req=%s upload: %s", req->id, err);
    snprintf (detail, sizeof detail, "%s%s", rc == RP_UNAVAILABLE
              ? "storage (S3) cannot be reached; nothing was stored: try again shortly"
              : "the photo library is unavailable; try again shortly", before);
    return rp_gw_problem (c, req, 503, "Service unavailable", detail);
}

enum MHD_Result
rp_upload_finish (struct MHD_Connection *c, rp_req_t *req)
{
    rp_upload_t *self = req->upload;
    if (self->pp) {
        self->closing = false;
        enum MHD_Result clean = MHD_destroy_post_processor (self->pp);
        self->pp = NULL;
        if (clean != MHD_YES)
            s_fail (self, 400, "Bad request", "the multipart body is malformed or incomplete");
    }
    for (int i = 0; i < self->nparts && !self->error.status; i++)
        s_check_type (self, &self->parts [i], true);
    //  A raw body whose SHA-256 was declared must be those bytes: a
    //  stream to S3 went straight to that address, and is never completed
    //  there for other bytes (the writer's abort gives it up)
    char sent [65];
    if (!self->error.status && *self->declared && self->nparts == 1 && self->parts [0].writer
    &&  rp_blob_digest (self->parts [0].writer, sent) == 0 && strcmp (sent, self->declared)) {
        char detail [240];
        snprintf (detail, sizeof detail, "the body's SHA-256 is %s, not X-Content-SHA256's %s", sent,
                  self->declared);
        s_fail (self, 400, "Bad request", detail);
    }
    if (!self->error.status && self->nparts == 0)
        s_fail (self, 400, "Bad request", "no file in the upload: send parts named file");
    //  The batch id as sent, trimmed (the library refuses a malformed one)
    char batch [sizeof self->batch_id] = "";
    char *b = self->batch_id;
    while (*b == ' ')
        b++;
    snprintf (batch, sizeof batch, "%.*s", (int) strcspn (b, " \r\n"), b);
    if (self->error.status)
        return rp_gw_problem (c, req, self->error.status, self->error.title, self->error.detail);

    char err [512];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db) {
        s_abort_all (self);
        return rp_gw_db_problem (c, req, -1, err);
    }
    json_t *photos = json_array ();
    int stored = 0, created = 0;
    for (int i = 0; i < self->nparts; i++) {
        s_part_t *part = &self->parts [i];
        rp_ingest_t ingest = { .declared_bytes = -1, .user_id = req->user_id,
                               .batch_id = batch [0] ? batch : NULL, .filename = part->filename,
                               .tags = self->tags [0] ? self->tags : NULL };
        rp_ingested_t out;
        int rc = rp_library_ingest (rp_gw->blobs, db, &part->writer, &ingest, &out, err, sizeof err);
        if (rc) {
            s_abort_all (self);
            json_decref (photos);
            if (created)
                rp_gw_wake_pipeline ();
            return s_ingest_problem (c, req, rc, err, stored > 0);
        }
        stored++;
        if (!out.duplicate)
            created++;
        if (!batch [0])
            snprintf (batch, sizeof batch, "%s", out.batch_id);
        const char *status = "queued";
        json_t *existing = NULL;
        char ignore [128];
        if (out.duplicate && rp_db_photo_get (db, req->user_id, out.id, &existing, ignore, sizeof ignore) == 0)
            status = json_string_value (json_object_get (existing, "status"));
        json_array_append_new (photos, json_pack ("{s:s, s:s, s:s, s:s, s:b}", "id", out.id,
                                                  "filename", part->filename, "status", status ? status : "queued",
                                                  "sha256", out.sha256, "duplicate", out.duplicate));
        json_decref (existing);
    }
    if (created)
        rp_gw_wake_pipeline ();
    req->acknowledged = true;
    return rp_gw_json (c, req, 202, json_pack ("{s:s, s:o}", "batch_id", batch, "photos", photos));
}

void
rp_upload_destroy (rp_upload_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rp_upload_t *self = *self_p;
    if (self->pp) {
        self->closing = true;
        MHD_destroy_post_processor (self->pp);
    }
    s_abort_all (self);
    free (self);
    *self_p = NULL;
}
