/*  gateway/tus.c: resumable uploads, the tus 1.0.0 protocol, at /api/v1/tus.

    DESIGN
    Core (OPTIONS, HEAD, PATCH) and the extensions creation,
    creation-with-upload, creation-defer-length, expiration, checksum
    (sha1, sha256) and termination. An upload is a photo in status
    "uploading" from its creation on; the upload's id is the photo's id, so
    a client follows it on the event stream like any other photo.

    Bytes arrive as parts. Each PATCH writes a file of its own under
    <data.dir>/tus/<id>/ (never one file shared by two requests), and
    commits (start, length) of its part with the new offset in one
    transaction. The offset only moves if it is still the one the request
    started from and the request still holds the upload's lease, so a late
    or stale request can never corrupt an upload: its part is discarded.
    Without a checksum, a long PATCH also commits as it goes (every
    S_CHECKPOINT bytes, fsync first), and a PATCH cut off keeps what arrived.
    With Upload-Checksum, the part is all or nothing: a mismatch is 460, the
    part is thrown away and the offset does not move.

    The lease (lock_owner, lock_until_ms in the row, so it works across
    engines sharing PostgreSQL and storage, without sticky sessions) is
    held by the request appending and renewed as bytes arrive. Another
    request gets 423 while it is held; it is taken over when it ran out
    (uploads.tus_lock_s without a byte), when its owner is a process on
    this host that no longer exists (an engine killed mid-PATCH), or when
    its owner is a request of this process that has ended.

    When the last byte is committed the parts are read in order into a
    blob writer, and that is handed to rp_library_ingest, the one ingest
    path every upload takes (library.h): the type by magic bytes, the bytes
    durable under their content address, and the photo queued, or found to
    be a duplicate of a photo the user has (the uploading row goes and the
    final answer names the existing photo); a refusal fails the photo with
    the reason. What stays here is the upload's own: assembling its parts,
    its lease, and removing its folder once the outcome is committed. A
    crash between the last commit and that step is finished by the next
    HEAD or by the sweep.
    The completion holds the lease throughout: it renews it before the
    parts are assembled and again before the ingest, and the upload is
    finished only by the lease's holder (rp_db_tus_finish checks in its
    transaction). A completion that stalls past its lease loses it to a
    HEAD that completes the upload in its place; the stalled one then
    changes nothing, answers with the other's photo or 409, and never
    takes the upload for deleted (only the holder removes the rows, when
    the photo is really gone). Folders (tus/, tus/<id>/) are 0700, each
    made durable in its parent, and a part's file name is made durable
    before any of its bytes is committed.

    The sweep (every S_SWEEP_MS, or half uploads.tus_expire_s when that is
    shorter, from the gateway's actor thread) fails
    expired uploads (the photo ends failed, "expired"), forgets finished
    ones past their expiry, and removes part folders nothing refers to.
*/
#include "gateway/gateway_private.h"
#include "gateway/tus_parse.h"
#include <czmq.h>
#include "engine/alloc.h"
#include "engine/clock.h"
#include "engine/fs.h"
#include "engine/log.h"
#include "library/filename.h"
#include "library/library.h"
#include "library/sniff.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_VERSION       "1.0.0"
#define S_EXTENSIONS    "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination"
#define S_CHECKPOINT    (8LL << 20)     //  commit a long PATCH every this many bytes
#define S_SWEEP_MS      30000
#define S_DIR_GRACE_S   3600            //  a part folder no row refers to goes after this
#define S_OWNER_MAX     128
#define S_DISCARD_MAX   (16LL << 20)    //  bytes read and dropped behind an error before cutting

typedef enum { S_CREATE, S_PATCH } s_kind_t;

struct _rp_tus_req_t {
    s_kind_t kind;
    char id [RP_ID_MAX];
    char owner [S_OWNER_MAX];           //  this request's lease name
    bool locked;
    int64_t length;                     //  the upload's length, -1 while deferred
    int64_t new_length;                 //  set by this request (deferred), else -1
    int64_t start;                      //  where this request's part begins
    int64_t written;                    //  bytes in the part file
    int64_t committed;                  //  of which committed
    int64_t renewed_ms;                 //  when the lease was last renewed
    int64_t discarded;                  //  bytes dropped behind an error
    int fd;
    char part_name [96];
    char part_path [RP_STR_MAX + 160];
    //  Upload-Checksum
    EVP_MD_CTX *md;
    unsigned char expected [EVP_MAX_MD_SIZE];
    size_t expected_len;
    //  The first bytes of the upload, to refuse a non-image early
    unsigned char head [RP_SNIFF_ACCEPT_BYTES];
    size_t head_len;
    bool sniffed;
    bool not_image;
    char not_image_why [300];           //  why, answered once the checksum (if any) has passed
    //  An error found while the body streams in: answered at the end
    rp_gw_error_t error;
    //  Creation: the answer's Location
    char location [128];
    int64_t expires_ms;
};

//  Requests of this process that hold a lease, so a lease named after one
//  that has ended is known to be stale.
static pthread_mutex_t s_live_lock = PTHREAD_MUTEX_INITIALIZER;
static zhashx_t *s_live = NULL;
static int64_t s_next_sweep_ms = 0;

static void
s_live_set (const char *owner, bool live)
{
    pthread_mutex_lock (&s_live_lock);
    if (!s_live)
        s_live = zhashx_new ();
    if (live)
        zhashx_insert (s_live, owner, (void *) 1);
    else
        zhashx_delete (s_live, owner);
    pthread_mutex_unlock (&s_live_lock);
}

//  An owner is "<host>:<pid>:<request>". Dead when it is this host's and
//  its process is gone, or this process's and the request has ended.
static bool
s_owner_dead (const char *owner)
{
    char host [256] = "";
    gethostname (host, sizeof host - 1);
    size_t host_len = strlen (host);
    if (strncmp (owner, host, host_len) != 0 || owner [host_len] != ':')
        return false;                   //  another host's: only its lease time tells
    long pid = strtol (owner + host_len + 1, NULL, 10);
    if (pid <= 0)
        return false;
    if (pid != (long) getpid ())
        return kill ((pid_t) pid, 0) == -1 && errno == ESRCH;
    pthread_mutex_lock (&s_live_lock);
    bool live = s_live && zhashx_lookup (s_live, owner);
    pthread_mutex_unlock (&s_live_lock);
    return !live;
}

//  ---------------------------------------------------------------------------
//  Answers: every one carries Tus-Resumable

static struct MHD_Response *
s_empty (void)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT);
    if (response) {
        MHD_add_response_header (response, "Tus-Resumable", S_VERSION);
        MHD_add_response_header (response, "Cache-Control", "no-store");
    }
    return response;
}

static void
s_header_int (struct MHD_Response *response, const char *name, int64_t value)
{
    char text [24];
    snprintf (text, sizeof text, "%lld", (long long) value);
    MHD_add_response_header (response, name, text);
}

static void
s_header_expires (struct MHD_Response *response, int64_t expires_ms)
{
    time_t when = (time_t) (expires_ms / 1000);
    struct tm tm;
    gmtime_r (&when, &tm);
    static const char *const days [] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months [] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                           "Sep", "Oct", "Nov", "Dec" };
    char text [40];
    snprintf (text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", days [tm.tm_wday], tm.tm_mday,
              months [tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    MHD_add_response_header (response, "Upload-Expires", text);
}

static enum MHD_Result
s_problem (struct MHD_Connection *c, rp_req_t *req, int status, const char *title, const char *detail,
           const char *header, const char *value)
{
    //  A problem like any other, with the protocol's headers on top
    const char *headers [8] = { "Tus-Resumable", S_VERSION };
    int n = 2;
    if (status == 412) {
        headers [n++] = "Tus-Version";
        headers [n++] = S_VERSION;
    }
    if (header && *header) {
        headers [n++] = header;
        headers [n++] = value;
    }
    headers [n] = NULL;
    return rp_gw_problem_hv (c, req, status, title, detail, headers);
}

//  409: the client's offset is not the upload's.
static enum MHD_Result
s_offset_conflict (struct MHD_Connection *c, rp_req_t *req, int64_t offset, int64_t received)
{
    char now [24], why [128];
    snprintf (now, sizeof now, "%lld", (long long) received);
    snprintf (why, sizeof why, "Upload-Offset is %lld but the upload has %lld bytes", (long long) offset,
              (long long) received);
    return s_problem (c, req, 409, "Conflict", why, "Upload-Offset", now);
}

//  423: another request holds the upload's lease.
static enum MHD_Result
s_locked (struct MHD_Connection *c, rp_req_t *req)
{
    char retry [16];
    snprintf (retry, sizeof retry, "%lld", (long long) rp_gw->config.uploads_tus_lock_s);
    return s_problem (c, req, 423, "Locked", "another request is writing this upload; try again shortly",
                      "Retry-After", retry);
}

//  Remember an error while the body streams in; the first one wins.
static void
s_fail (rp_tus_req_t *self, int status, const char *title, const char *detail)
{
    rp_gw_error_set (&self->error, status, title, detail);
}

//  ---------------------------------------------------------------------------
//  Paths

static void
s_upload_dir (const char *id, char *out, size_t outlen)
{
    snprintf (out, outlen, "%s/tus/%s", rp_gw->config.data_dir, id);
}

//  Remove an upload's folder and its part files.
static void
s_remove_dir (const char *id)
{
    char dir [RP_STR_MAX + 64];
    s_upload_dir (id, dir, sizeof dir);
    DIR *listing = opendir (dir);
    if (listing) {
        struct dirent *entry;
        while ((entry = readdir (listing))) {
            if (entry->d_name [0] == '.')
                continue;
            char path [RP_STR_MAX + 400];
            snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
            unlink (path);
        }
        closedir (listing);
    }
    rmdir (dir);
}

//  The upload's folder, durable in its parent (its parts are counted on
//  once committed)
static int
s_make_dir (const char *id, char *err, size_t errlen)
{
    char dir [RP_STR_MAX + 64];
    s_upload_dir (id, dir, sizeof dir);
    return rp_fs_mkdirs (dir, 0700, err, errlen);
}

//  ---------------------------------------------------------------------------
//  Headers

bool
rp_tus_parse_size (const char *text, int64_t *value)
{
    if (!text || !*text || strlen (text) > 19)
        return false;
    for (const char *c = text; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    *value = (int64_t) strtoll (text, NULL, 10);
    return true;
}

//  Strict base64 (padding required, as tus asks). Returns the decoded size
//  or -1; out holds at least 3 * len / 4 + 1 bytes.
static int
s_base64 (const char *in, size_t len, unsigned char *out)
{
    if (len % 4)
        return -1;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in [i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
               || c == '+' || c == '/';
        if (c == '=' && i >= len - 2) {
            pad++;
            continue;
        }
        if (!ok || pad)
            return -1;
    }
    if (len == 0)
        return 0;
    int n = EVP_DecodeBlock (out, (const unsigned char *) in, (int) len);
    return n < 0 ? -1 : n - (int) pad;
}

//  Upload-Metadata: "key base64,key base64,key". 0, or -1 with a reason.
int
rp_tus_parse_metadata (const char *text, rp_tus_metadata_t *meta, char *why, size_t whylen)
{
    memset (meta, 0, sizeof *meta);
    if (!text)
        return 0;
    if (strlen (text) > 8192) {
        snprintf (why, whylen, "Upload-Metadata is over 8192 bytes");
        return -1;
    }
    const char *pair = text;
    while (*pair) {
        while (*pair == ' ')
            pair++;
        size_t pair_len = strcspn (pair, ",");
        size_t key_len = strcspn (pair, " ,");
        if (key_len == 0) {
            snprintf (why, whylen, "Upload-Metadata has an empty key");
            return -1;
        }
        const char *value = pair + key_len;
        while (value < pair + pair_len && *value == ' ')
            value++;
        size_t value_len = (size_t) (pair + pair_len - value);
        while (value_len && value [value_len - 1] == ' ')
            value_len--;
        unsigned char decoded [6200];
        int n = value_len ? s_base64 (value, value_len, decoded) : 0;
        if (n < 0) {
            snprintf (why, whylen, "Upload-Metadata: the value of %.*s is not base64", (int) (key_len > 40 ? 40 : key_len), pair);
            return -1;
        }
        decoded [n] = 0;
        if ((key_len == 8 && strncmp (pair, "filename", 8) == 0)
        ||  (key_len == 4 && strncmp (pair, "name", 4) == 0 && !meta->filename [0]))
            rp_filename_clean ((const char *) decoded, (size_t) n, meta->filename, sizeof meta->filename);
        else
        if (key_len == 8 && strncmp (pair, "batch_id", 8) == 0) {
            if ((size_t) n >= sizeof meta->batch_id || strlen ((char *) decoded) != (size_t) n) {
                snprintf (why, whylen, "batch_id must be 1..39 letters, digits, - or _");
                return -1;
            }
            memcpy (meta->batch_id, decoded, (size_t) n + 1);
        }
        else
        if (key_len == 4 && strncmp (pair, "tags", 4) == 0) {
            if ((size_t) n >= sizeof meta->tags || strlen ((char *) decoded) != (size_t) n) {
                snprintf (why, whylen, "the tags are too long");
                return -1;
            }
            memcpy (meta->tags, decoded, (size_t) n + 1);
        }
        pair += pair_len;
        if (*pair == ',')
            pair++;
    }
    return 0;
}

//  Upload-Checksum: "<algorithm> <base64 digest>". 0, 1 (absent) or -1.
int
rp_tus_parse_checksum (const char *text, const EVP_MD **md_p, unsigned char expected [EVP_MAX_MD_SIZE],
                       size_t *expected_len, char *why, size_t whylen)
{
    if (!text)
        return 1;
    const char *space = strchr (text, ' ');
    const EVP_MD *md = NULL;
    if (space && space - text == 4 && strncasecmp (text, "sha1", 4) == 0)
        md = EVP_sha1 ();
    else
    if (space && space - text == 6 && strncasecmp (text, "sha256", 6) == 0)
        md = EVP_sha256 ();
    if (!md) {
        snprintf (why, whylen, "Upload-Checksum: the algorithm must be sha1 or sha256");
        return -1;
    }
    const char *digest = space + 1;
    size_t len = strlen (digest);
    unsigned char decoded [128];
    int n = len < 120 ? s_base64 (digest, len, decoded) : -1;
    if (n != EVP_MD_get_size (md)) {
        snprintf (why, whylen, "Upload-Checksum: the digest is not base64 of a %s", EVP_MD_get0_name (md));
        return -1;
    }
    memcpy (expected, decoded, (size_t) n);
    *expected_len = (size_t) n;
    *md_p = md;
    return 0;
}

//  Upload-Checksum, and the digest of the part begun. 0, 1 (absent) or -1.
static int
s_parse_checksum (rp_tus_req_t *self, const char *text, char *why, size_t whylen)
{
    const EVP_MD *md = NULL;
    int rc = rp_tus_parse_checksum (text, &md, self->expected, &self->expected_len, why, whylen);
    if (rc)
        return rc;
    self->md = EVP_MD_CTX_new ();
    if (!self->md || EVP_DigestInit_ex (self->md, md, NULL) != 1) {
        snprintf (why, whylen, "cannot compute checksums now");
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  The lease

//  Take the upload's lease for this request. 0, RP_BUSY, RP_NOT_FOUND or -1.
static int
s_lock (rp_db_t *db, rp_tus_req_t *self, char *err, size_t errlen)
{
    int64_t now = rp_clock_wall_ms ();
    int64_t until = now + rp_gw->config.uploads_tus_lock_s * 1000;
    s_live_set (self->owner, true);
    int rc = rp_db_tus_lock (db, self->id, self->owner, NULL, now, until, err, errlen);
    if (rc == RP_BUSY) {
        //  Held: take it over when its holder is known to be dead
        rp_tus_t upload;
        char ignore [128];
        if (rp_db_tus_get (db, NULL, self->id, &upload, ignore, sizeof ignore) == 0) {
            if (upload.lock_owner [0] && s_owner_dead (upload.lock_owner)) {
                rc = rp_db_tus_lock (db, self->id, self->owner, upload.lock_owner, now, until, err, errlen);
                if (rc == 0)
                    rp_info ("gateway", "upload=%s lease of %s (gone) taken over", self->id, upload.lock_owner);
            }
            rp_db_tus_clear (&upload);
        }
    }
    if (rc == 0) {
        self->locked = true;
        self->renewed_ms = now;
    }
    else
        s_live_set (self->owner, false);
    return rc;
}

static void
s_unlock (rp_db_t *db, rp_tus_req_t *self)
{
    if (!self->locked)
        return;
    char err [256];
    if (db && rp_db_tus_unlock (db, self->id, self->owner, err, sizeof err))
        rp_warn ("gateway", "upload=%s cannot release its lease (it lapses): %s", self->id, err);
    self->locked = false;
    s_live_set (self->owner, false);
}

//  ---------------------------------------------------------------------------
//  Parts

static void
s_part_discard (rp_tus_req_t *self)
{
    if (self->fd >= 0) {
        close (self->fd);
        self->fd = -1;
    }
    if (self->part_path [0] && self->committed == 0)
        unlink (self->part_path);
    self->part_path [0] = 0;
}

static int
s_part_open (rp_tus_req_t *self, rp_req_t *req, char *err, size_t errlen)
{
    if (s_make_dir (self->id, err, errlen))
        return -1;
    char random [RP_ID_MAX];
    rp_db_new_id (random);
    snprintf (self->part_name, sizeof self->part_name, "%lld-%.16s.part", (long long) self->start, random + 16);
    char dir [RP_STR_MAX + 64];
    s_upload_dir (self->id, dir, sizeof dir);
    snprintf (self->part_path, sizeof self->part_path, "%s/%s", dir, self->part_name);
    self->fd = open (self->part_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (self->fd < 0) {
        snprintf (err, errlen, "cannot create %s: %s", self->part_path, strerror (errno));
        self->part_path [0] = 0;
        return -1;
    }
    //  The part's name, durable before any of its bytes is committed
    if (rp_fs_sync_dir (dir)) {
        snprintf (err, errlen, "cannot make %s durable: %s", dir, strerror (errno));
        s_part_discard (self);
        return -1;
    }
    return 0;
}

//  Make what was written durable and commit it. 0, RP_CONFLICT or -1.
static int
s_part_commit (rp_db_t *db, rp_tus_req_t *self, char *err, size_t errlen)
{
    if (self->written == self->committed && self->new_length < 0)
        return 0;
    if (self->fd >= 0 && fdatasync (self->fd)) {
        snprintf (err, errlen, "cannot sync %s: %s", self->part_path, strerror (errno));
        return -1;
    }
    int64_t until = rp_clock_wall_ms () + rp_gw->config.uploads_tus_lock_s * 1000;
    int rc = rp_db_tus_append (db, self->id, self->owner, self->start + self->committed, self->start,
                               self->written, self->part_name, self->new_length, until, err, errlen);
    if (rc == 0) {
        self->committed = self->written;
        if (self->new_length >= 0) {
            self->length = self->new_length;
            self->new_length = -1;
        }
        self->renewed_ms = rp_clock_wall_ms ();
    }
    return rc;
}

//  ---------------------------------------------------------------------------
//  The end of an upload: parts -> blob -> photo queued (or duplicate)

typedef struct {
    int status;                         //  0 done; else the answer's status
    char detail [320];
    char photo_id [RP_ID_MAX];
    bool duplicate;
} s_outcome_t;

//  Renew the lease the completion holds; false (out says why) when it is
//  no longer ours: another request took the upload over
static bool
s_renew (rp_db_t *db, const char *id, const char *owner, s_outcome_t *out)
{
    char err [512];
    int64_t now = rp_clock_wall_ms ();
    int rc = rp_db_tus_lock (db, id, owner, NULL, now, now + rp_gw->config.uploads_tus_lock_s * 1000,
                             err, sizeof err);
    if (rc == 0)
        return true;
    out->status = rc == RP_BUSY ? 409 : rc == RP_NOT_FOUND ? 404 : 503;
    snprintf (out->detail, sizeof out->detail, "%s", rc == RP_BUSY
              ? "another request took this upload over; ask it where it is (HEAD)"
              : rc == RP_NOT_FOUND ? "no such upload" : "the photo library is unavailable; try again shortly");
    if (rc != RP_BUSY && rc != RP_NOT_FOUND)
        rp_warn ("gateway", "upload=%s cannot renew its lease: %s", id, err);
    return false;
}

//  The end of an upload, by the request holding its lease (owner), which
//  it renews as it goes; only while it still holds it is the photo taken
//  in (rp_db_tus_finish checks), so a request that stalled past its lease
//  and lost it to another never finishes the upload a second time, nor
//  takes the photo for deleted.
static void
s_complete (rp_db_t *db, const char *id, const char *owner, int64_t length, s_outcome_t *out)
{
    memset (out, 0, sizeof *out);
    char err [512];
    if (!s_renew (db, id, owner, out))
        return;
    json_t *parts = NULL;
    if (rp_db_tus_parts (db, id, &parts, err, sizeof err)) {
        out->status = 503;
        snprintf (out->detail, sizeof out->detail, "the photo library is unavailable; try again shortly");
        rp_warn ("gateway", "upload=%s cannot list its parts: %s", id, err);
        return;
    }
    rp_blob_writer_t *writer = rp_blob_begin (rp_gw->blobs, rp_gw->config.limits_max_upload_bytes,
                                              err, sizeof err);
    char dir [RP_STR_MAX + 64];
    s_upload_dir (id, dir, sizeof dir);
    int64_t at = 0;
    size_t index;
    json_t *part;
    char *buffer = writer ? (char *) malloc (1 << 20) : NULL;
    json_array_foreach (parts, index, part) {
        if (!writer || !buffer)
            break;
        int64_t start = json_integer_value (json_object_get (part, "start"));
        int64_t size = json_integer_value (json_object_get (part, "length"));
        const char *name = json_string_value (json_object_get (part, "name"));
        if (start != at || size < 0 || !name) {
            snprintf (err, sizeof err, "part %zu starts at %lld, not %lld", index, (long long) start, (long long) at);
            rp_blob_abort (&writer);
            break;
        }
        char path [RP_STR_MAX + 400];
        snprintf (path, sizeof path, "%s/%s", dir, name);
        int fd = open (path, O_RDONLY | O_CLOEXEC);
        int64_t left = size;
        while (fd >= 0 && left > 0) {
            ssize_t n = read (fd, buffer, left < (1 << 20) ? (size_t) left : (size_t) (1 << 20));
            if (n <= 0 || rp_blob_write (writer, buffer, (size_t) n, err, sizeof err))
                break;
            left -= n;
        }
        if (fd >= 0)
            close (fd);
        if (left > 0) {
            snprintf (err, sizeof err, "part %s is missing %lld bytes", name, (long long) left);
            rp_blob_abort (&writer);
            break;
        }
        at += size;
    }
    free (buffer);
    json_decref (parts);
    if (writer && at != length) {
        snprintf (err, sizeof err, "the parts hold %lld bytes of %lld", (long long) at, (long long) length);
        rp_blob_abort (&writer);
    }
    if (!writer) {
        out->status = 503;
        snprintf (out->detail, sizeof out->detail, "storage is unavailable; try again shortly");
        rp_warn ("gateway", "upload=%s cannot be assembled: %s", id, err);
        return;
    }
    //  The one ingest path: the type, the bytes stored, the photo queued
    if (!s_renew (db, id, owner, out)) {
        rp_blob_abort (&writer);
        return;
    }
    rp_ingest_t ingest = { .declared_bytes = -1, .upload_id = id, .upload_owner = owner };
    rp_ingested_t ingested;
    int rc = rp_library_ingest (rp_gw->blobs, db, &writer, &ingest, &ingested, err, sizeof err);
    if (rc == 0) {
        snprintf (out->photo_id, sizeof out->photo_id, "%s", ingested.id);
        out->duplicate = ingested.duplicate;
        s_remove_dir (id);
        if (!out->duplicate)
            rp_gw_wake_pipeline ();
        return;
    }
    if (rc == RP_REFUSED) {
        //  Not an image: the photo is failed with the reason, nothing kept
        out->status = 415;
        snprintf (out->detail, sizeof out->detail, "%s", err);
        s_remove_dir (id);
    }
    else
    if (rc == RP_CONFLICT) {
        //  Another request finished it, or holds it now: theirs to answer
        //  for; a finished one is this request's answer too
        rp_tus_t upload;
        if (rp_db_tus_get (db, NULL, id, &upload, err, sizeof err) == 0 && upload.done) {
            snprintf (out->photo_id, sizeof out->photo_id, "%s", upload.photo_id);
            out->duplicate = upload.duplicate;
        }
        else {
            out->status = 409;
            snprintf (out->detail, sizeof out->detail,
                      "another request took this upload over; ask it where it is (HEAD)");
        }
        rp_db_tus_clear (&upload);
    }
    else
    if (rc == RP_NOT_FOUND) {
        //  With the lease held: the photo was deleted, and the upload's
        //  rows are this request's to remove
        out->status = 410;
        snprintf (out->detail, sizeof out->detail, "the photo was deleted while it was uploading");
        rp_db_tus_delete (db, NULL, id, err, sizeof err);
        s_remove_dir (id);
    }
    else {
        out->status = 503;
        snprintf (out->detail, sizeof out->detail, "%s", rc == RP_UNAVAILABLE
                  ? "storage is unavailable; try again shortly"
                  : "the photo library is unavailable; try again shortly");
        rp_warn ("gateway", "upload=%s cannot be taken in: %s", id, err);
    }
}

//  ---------------------------------------------------------------------------
//  Requests without a body to keep: OPTIONS, HEAD, DELETE

static enum MHD_Result
s_options (struct MHD_Connection *c, rp_req_t *req)
{
    struct MHD_Response *response = s_empty ();
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Tus-Version", S_VERSION);
    MHD_add_response_header (response, "Tus-Extension", S_EXTENSIONS);
    MHD_add_response_header (response, "Tus-Checksum-Algorithm", "sha1,sha256");
    s_header_int (response, "Tus-Max-Size", rp_gw->config.limits_max_upload_bytes);
    return rp_gw_queue (c, req, 204, response);
}

static enum MHD_Result
s_db_unavailable (struct MHD_Connection *c, rp_req_t *req, const char *err)
{
    rp_warn ("gateway", "req=%s tus: %s", req->id, err);
    return s_problem (c, req, 503, "Service unavailable", "the photo library is unavailable; try again shortly",
                      "Retry-After", "2");
}

//  Look the upload up; answers 404/410/503 itself (returns false then).
static bool
s_find (struct MHD_Connection *c, rp_req_t *req, rp_db_t *db, const char *id, rp_tus_t *upload,
        enum MHD_Result *answer)
{
    char err [512];
    int rc = rp_db_tus_get (db, req->user_id, id, upload, err, sizeof err);
    if (rc == RP_NOT_FOUND)
        *answer = s_problem (c, req, 404, "Not found", "no such upload", NULL, NULL);
    else
    if (rc)
        *answer = s_db_unavailable (c, req, err);
    else
    if (upload->expires_ms < rp_clock_wall_ms () && !upload->done) {
        rp_db_tus_clear (upload);
        *answer = s_problem (c, req, 410, "Gone", "the upload expired before all its bytes arrived", NULL, NULL);
        rc = -1;
    }
    return rc == 0;
}

static enum MHD_Result
s_head (struct MHD_Connection *c, rp_req_t *req, const char *id)
{
    char err [512];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db)
        return s_db_unavailable (c, req, err);
    rp_tus_t upload;
    enum MHD_Result answer = MHD_NO;
    if (!s_find (c, req, db, id, &upload, &answer))
        return answer;
    //  All bytes in but not finished (a crash in between): finish now
    if (!upload.done && upload.length >= 0 && upload.received == upload.length) {
        rp_tus_req_t self = { .fd = -1 };
        snprintf (self.id, sizeof self.id, "%s", id);
        char host [200] = "";
        gethostname (host, sizeof host - 1);
        snprintf (self.owner, sizeof self.owner, "%s:%ld:%s", host, (long) getpid (), req->id);
        if (s_lock (db, &self, err, sizeof err) == 0) {
            s_outcome_t outcome;
            s_complete (db, id, self.owner, upload.length, &outcome);
            s_unlock (db, &self);
            if (outcome.status == 0) {
                upload.done = true;
                snprintf (upload.photo_id, sizeof upload.photo_id, "%s", outcome.photo_id);
                upload.duplicate = outcome.duplicate;
            }
        }
    }
    struct MHD_Response *response = s_empty ();
    if (!response) {
        rp_db_tus_clear (&upload);
        return MHD_NO;
    }
    s_header_int (response, "Upload-Offset", upload.received);
    if (upload.length >= 0)
        s_header_int (response, "Upload-Length", upload.length);
    else
        MHD_add_response_header (response, "Upload-Defer-Length", "1");
    if (upload.metadata && *upload.metadata)
        MHD_add_response_header (response, "Upload-Metadata", upload.metadata);
    s_header_expires (response, upload.expires_ms);
    if (upload.done) {
        MHD_add_response_header (response, "Photo-Id", upload.photo_id);
        MHD_add_response_header (response, "Photo-Duplicate", upload.duplicate ? "true" : "false");
    }
    rp_db_tus_clear (&upload);
    return rp_gw_queue (c, req, 200, response);
}

static enum MHD_Result
s_delete (struct MHD_Connection *c, rp_req_t *req, rp_tus_req_t *self)
{
    char err [512];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db)
        return s_db_unavailable (c, req, err);
    rp_tus_t upload;
    enum MHD_Result answer = MHD_NO;
    if (rp_db_tus_get (db, req->user_id, self->id, &upload, err, sizeof err) == RP_NOT_FOUND)
        return s_problem (c, req, 404, "Not found", "no such upload", NULL, NULL);
    rp_db_tus_clear (&upload);
    int rc = s_lock (db, self, err, sizeof err);
    if (rc == RP_BUSY)
        return s_locked (c, req);
    if (rc == RP_NOT_FOUND)
        return s_problem (c, req, 404, "Not found", "no such upload", NULL, NULL);
    if (rc)
        return s_db_unavailable (c, req, err);
    rc = rp_db_tus_delete (db, req->user_id, self->id, err, sizeof err);
    if (rc == RP_NOT_FOUND)
        answer = s_problem (c, req, 404, "Not found", "no such upload", NULL, NULL);
    else
    if (rc)
        answer = s_db_unavailable (c, req, err);
    else {
        self->locked = false;           //  the row and its lease are gone
        s_live_set (self->owner, false);
        s_remove_dir (self->id);
        rp_info ("gateway", "upload=%s terminated", self->id);
        struct MHD_Response *response = s_empty ();
        answer = response ? rp_gw_queue (c, req, 204, response) : MHD_NO;
    }
    return answer;
}

//  ---------------------------------------------------------------------------
//  Requests with bytes: POST (creation, with upload) and PATCH

//  Set up to take this request's bytes at `offset` of the upload.
//  Answers (and returns true) when it cannot.
static bool
s_prepare_append (struct MHD_Connection *c, rp_req_t *req, rp_tus_req_t *self, rp_db_t *db,
                  int64_t offset, enum MHD_Result *answer)
{
    char err [512], why [256];
    const char *checksum = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Upload-Checksum");
    if (s_parse_checksum (self, checksum, why, sizeof why) < 0) {
        *answer = s_problem (c, req, 400, "Bad request", why, NULL, NULL);
        return true;
    }
    const char *content_length = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Content-Length");
    int64_t declared = -1;
    if (content_length && !rp_tus_parse_size (content_length, &declared)) {
        *answer = s_problem (c, req, 400, "Bad request", "Content-Length is not a number", NULL, NULL);
        return true;
    }
    int64_t length = self->new_length >= 0 ? self->new_length : self->length;
    int64_t room = (length >= 0 ? length : rp_gw->config.limits_max_upload_bytes) - offset;
    if (declared > room) {
        snprintf (why, sizeof why, "%lld bytes at offset %lld would pass the upload's %s of %lld bytes",
                  (long long) declared, (long long) offset, length >= 0 ? "Upload-Length" : "size limit",
                  (long long) (length >= 0 ? length : rp_gw->config.limits_max_upload_bytes));
        *answer = s_problem (c, req, 413, "Payload too large", why, NULL, NULL);
        return true;
    }
    int rc = s_lock (db, self, err, sizeof err);
    if (rc == RP_BUSY) {
        *answer = s_locked (c, req);
        return true;
    }
    if (rc == RP_NOT_FOUND) {
        *answer = s_problem (c, req, 404, "Not found", "no such upload", NULL, NULL);
        return true;
    }
    if (rc) {
        *answer = s_db_unavailable (c, req, err);
        return true;
    }
    //  The offset may have moved between the look-up and the lease
    rp_tus_t upload;
    if (rp_db_tus_get (db, NULL, self->id, &upload, err, sizeof err)) {
        *answer = s_db_unavailable (c, req, err);
        return true;
    }
    int64_t received = upload.received;
    rp_db_tus_clear (&upload);
    if (received != offset) {
        *answer = s_offset_conflict (c, req, offset, received);
        return true;
    }
    self->start = offset;
    if (s_part_open (self, req, err, sizeof err)) {
        rp_warn ("gateway", "req=%s upload=%s: %s", req->id, self->id, err);
        *answer = s_problem (c, req, 503, "Service unavailable", "storage is unavailable; try again shortly",
                             "Retry-After", "2");
        return true;
    }
    return false;
}

static enum MHD_Result
s_begin_patch (struct MHD_Connection *c, rp_req_t *req, rp_tus_req_t *self)
{
    char err [512], why [256];
    const char *type = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Content-Type");
    if (!type || strncasecmp (type, "application/offset+octet-stream", 31) != 0)
        return s_problem (c, req, 415, "Unsupported media type",
                          "a PATCH carries Content-Type: application/offset+octet-stream", NULL, NULL);
    int64_t offset = -1;
    if (!rp_tus_parse_size (MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Upload-Offset"), &offset))
        return s_problem (c, req, 400, "Bad request", "Upload-Offset must be a whole number of bytes", NULL, NULL);
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db)
        return s_db_unavailable (c, req, err);
    rp_tus_t upload;
    enum MHD_Result answer = MHD_NO;
    if (!s_find (c, req, db, self->id, &upload, &answer))
        return answer;
    self->length = upload.length;
    self->expires_ms = upload.expires_ms;
    int64_t received = upload.received;
    bool done = upload.done;
    rp_db_tus_clear (&upload);
    //  Upload-Length may come now when it was deferred, and only then
    const char *length_header = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Upload-Length");
    if (length_header) {
        int64_t length = -1;
        if (!rp_tus_parse_size (length_header, &length))
            return s_problem (c, req, 400, "Bad request", "Upload-Length must be a whole number of bytes", NULL, NULL);
        if (self->length >= 0 && length != self->length)
            return s_problem (c, req, 400, "Bad request", "Upload-Length cannot change once set", NULL, NULL);
        if (self->length < 0) {
            if (length < received)
                return s_problem (c, req, 400, "Bad request", "Upload-Length is less than what was received", NULL, NULL);
            if (length > rp_gw->config.limits_max_upload_bytes) {
                snprintf (why, sizeof why, "a photo may be at most %lld bytes",
                          (long long) rp_gw->config.limits_max_upload_bytes);
                return s_problem (c, req, 413, "Payload too large", why, NULL, NULL);
            }
            self->new_length = length;
        }
    }
    if (offset != received)
        return s_offset_conflict (c, req, offset, received);
    if (done)
        return s_problem (c, req, 409, "Conflict", "the upload is complete", NULL, NULL);
    if (s_prepare_append (c, req, self, db, offset, &answer))
        return answer;
    return MHD_YES;
}

enum MHD_Result
rp_tus_quota (struct MHD_Connection *c, rp_req_t *req, rp_db_t *db, bool tus, bool *answered)
{
    char err [512];
    int64_t open = 0;
    *answered = true;
    if (rp_db_tus_open (db, req->user_id, rp_clock_wall_ms (), &open, err, sizeof err))
        return tus ? s_db_unavailable (c, req, err) : rp_gw_db_problem (c, req, -1, err);
    int64_t limit = rp_gw->config.uploads_max_open_per_user;
    if (open >= limit) {
        char detail [200];
        snprintf (detail, sizeof detail, "you have %lld unfinished uploads (uploads.max_open_per_user = %lld); "
                  "finish or terminate some first", (long long) open, (long long) limit);
        return tus ? s_problem (c, req, 429, "Too many requests", detail, "Retry-After", "60")
                   : rp_gw_problem_h (c, req, 429, "Too many requests", detail, "Retry-After", "60");
    }
    *answered = false;
    return MHD_NO;
}

static enum MHD_Result
s_begin_create (struct MHD_Connection *c, rp_req_t *req, rp_tus_req_t *self)
{
    char err [512], why [256];
    const char *length_header = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Upload-Length");
    const char *defer = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Upload-Defer-Length");
    int64_t length = -1;
    if (length_header) {
        if (!rp_tus_parse_size (length_header, &length))
            return s_problem (c, req, 400, "Bad request", "Upload-Length must be a whole number of bytes", NULL, NULL);
    }
    else
    if (!defer || strcmp (defer, "1"))
        return s_problem (c, req, 400, "Bad request", "send Upload-Length, or Upload-Defer-Length: 1", NULL, NULL);
    if (length > rp_gw->config.limits_max_upload_bytes) {
        snprintf (why, sizeof why, "Upload-Length is %lld; a photo may be at most %lld bytes", (long long) length,
                  (long long) rp_gw->config.limits_max_upload_bytes);
        return s_problem (c, req, 413, "Payload too large", why, NULL, NULL);
    }
    const char *metadata = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Upload-Metadata");
    rp_tus_metadata_t meta;
    if (rp_tus_parse_metadata (metadata, &meta, why, sizeof why))
        return s_problem (c, req, 400, "Bad request", why, NULL, NULL);
    const char *type = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Content-Type");
    const char *content_length = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Content-Length");
    bool with_upload = type && strncasecmp (type, "application/offset+octet-stream", 31) == 0
                    && content_length && strcmp (content_length, "0");
    if (!with_upload && content_length && strcmp (content_length, "0"))
        return s_problem (c, req, 415, "Unsupported media type",
                          "bytes sent with the creation need Content-Type: application/offset+octet-stream",
                          NULL, NULL);
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db)
        return s_db_unavailable (c, req, err);
    bool answered = false;
    enum MHD_Result quota = rp_tus_quota (c, req, db, true, &answered);
    if (answered)
        return quota;
    int64_t now = rp_clock_wall_ms ();
    rp_tus_new_t upload = { .length = length, .metadata = metadata, .now_ms = now,
                            .expires_ms = now + rp_gw->config.uploads_tus_expire_s * 1000 };
    rp_photo_new_t photo = { .user_id = req->user_id, .batch_id = meta.batch_id [0] ? meta.batch_id : NULL,
                             .filename = meta.filename [0] ? meta.filename : "upload",
                             .bytes = length > 0 ? length : 0, .status = "uploading",
                             .tags = meta.tags [0] ? meta.tags : NULL, .upload = &upload };
    char batch [RP_ID_MAX];
    bool duplicate = false;
    int rc = rp_db_photo_create (db, &photo, self->id, batch, &duplicate, err, sizeof err);
    if (rc == RP_NOT_FOUND)
        return s_problem (c, req, 404, "Not found", err, NULL, NULL);
    if (rc == RP_REFUSED)               //  a batch id, tags or metadata it does not take
        return s_problem (c, req, 400, "Bad request", err, NULL, NULL);
    if (rc)
        return s_db_unavailable (c, req, err);
    self->length = length;
    self->expires_ms = upload.expires_ms;
    snprintf (self->location, sizeof self->location, "/api/v1/tus/%s", self->id);
    rp_info ("gateway", "req=%s upload=%s created: %s, %lld bytes%s", req->id, self->id, photo.filename,
             (long long) length, length < 0 ? " (deferred)" : "");
    if (with_upload) {
        enum MHD_Result answer = MHD_NO;
        if (s_prepare_append (c, req, self, db, 0, &answer))
            return answer;
    }
    return MHD_YES;
}

//  ---------------------------------------------------------------------------
//  The gateway's entry points

enum MHD_Result
rp_tus_begin (struct MHD_Connection *c, rp_req_t *req, const char *method, const char *rest)
{
    //  Clients that cannot send PATCH or DELETE say so (tus allows it)
    const char *override = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "X-HTTP-Method-Override");
    if (override && streq (method, "POST") && (streq (override, "PATCH") || streq (override, "DELETE")
                                                || streq (override, "HEAD")))
        method = override;
    if (streq (method, "OPTIONS"))
        return s_options (c, req);
    const char *version = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Tus-Resumable");
    if (!version || strcmp (version, S_VERSION))
        return s_problem (c, req, 412, "Precondition failed",
                          version ? "this server speaks tus 1.0.0 only" : "the Tus-Resumable: 1.0.0 header is missing",
                          NULL, NULL);
    rp_tus_req_t *self = (rp_tus_req_t *) rp_alloc (sizeof (rp_tus_req_t));
    self->fd = -1;
    self->length = -1;
    self->new_length = -1;
    char host [200] = "";
    gethostname (host, sizeof host - 1);
    char random [RP_ID_MAX];
    rp_db_new_id (random);
    snprintf (self->owner, sizeof self->owner, "%s:%ld:%s:%.8s", host, (long) getpid (), req->id, random + 24);
    req->tus = self;

    bool collection = rest [0] == 0 || streq (rest, "/");
    const char *id = rest [0] == '/' ? rest + 1 : rest;
    if (collection) {
        if (!streq (method, "POST"))
            return s_problem (c, req, 405, "Method not allowed", "POST creates an upload", "Allow", "POST, OPTIONS");
        self->kind = S_CREATE;
        return s_begin_create (c, req, self);
    }
    if (!rp_db_valid_id (id) || strlen (id) >= RP_ID_MAX)
        return s_problem (c, req, 404, "Not found", "no such upload", NULL, NULL);
    snprintf (self->id, sizeof self->id, "%s", id);
    if (streq (method, "HEAD") || streq (method, "GET"))
        return s_head (c, req, id);
    if (streq (method, "DELETE"))
        return s_delete (c, req, self);
    if (streq (method, "PATCH")) {
        self->kind = S_PATCH;
        return s_begin_patch (c, req, self);
    }
    return s_problem (c, req, 405, "Method not allowed", "use HEAD, PATCH or DELETE on an upload",
                      "Allow", "HEAD, PATCH, DELETE, OPTIONS");
}

enum MHD_Result
rp_tus_data (struct MHD_Connection *c, rp_req_t *req, const char *data, size_t size)
{
    rp_tus_req_t *self = req->tus;
    if (self->error.status || self->fd < 0) {
        //  Read and drop the rest so the client gets the answer, up to a
        //  bound; past it, cut the connection
        self->discarded += (int64_t) size;
        return self->discarded > S_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    int64_t length = self->new_length >= 0 ? self->new_length : self->length;
    int64_t limit = (length >= 0 ? length : rp_gw->config.limits_max_upload_bytes) - self->start;
    if (self->written + (int64_t) size > limit) {
        s_fail (self, 413, "Payload too large", "the body goes past the upload's Upload-Length");
        return MHD_YES;
    }
    //  The first bytes of the upload tell whether it is an image at all
    if (self->start == 0 && !self->sniffed) {
        size_t take = RP_SNIFF_ACCEPT_BYTES - self->head_len < size ? RP_SNIFF_ACCEPT_BYTES - self->head_len : size;
        memcpy (self->head + self->head_len, data, take);
        self->head_len += take;
        if (self->head_len == RP_SNIFF_ACCEPT_BYTES) {
            self->sniffed = true;
            if (!rp_sniff_check (self->head, self->head_len, self->not_image_why, sizeof self->not_image_why)) {
                self->not_image = true;
                if (!self->md) {
                    s_fail (self, 415, "Unsupported media type", self->not_image_why);
                    return MHD_YES;
                }
            }
        }
    }
    //  Not an image, but the checksum speaks first (bytes garbled on the
    //  way are a 460 to send again, not a photo failed for good): digest
    //  the rest, keep none of it
    if (self->not_image) {
        EVP_DigestUpdate (self->md, data, size);
        self->written += (int64_t) size;
        return MHD_YES;
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = write (self->fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rp_warn ("gateway", "req=%s upload=%s cannot write %s: %s", req->id, self->id, self->part_path,
                     strerror (errno));
            s_fail (self, 503, "Service unavailable", "storage is unavailable; try again shortly");
            return MHD_YES;
        }
        done += (size_t) n;
    }
    if (self->md)
        EVP_DigestUpdate (self->md, data, size);
    self->written += (int64_t) size;
    char err [512];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    int64_t now = rp_clock_wall_ms ();
    int rc = 0;
    if (!self->md && self->written - self->committed >= S_CHECKPOINT)
        rc = db ? s_part_commit (db, self, err, sizeof err) : -1;
    else
    if (now - self->renewed_ms > rp_gw->config.uploads_tus_lock_s * 1000 / 3) {
        rc = db ? rp_db_tus_lock (db, self->id, self->owner, NULL, now,
                                  now + rp_gw->config.uploads_tus_lock_s * 1000, err, sizeof err) : -1;
        if (rc == 0)
            self->renewed_ms = now;
    }
    if (rc == RP_CONFLICT || rc == RP_BUSY || rc == RP_NOT_FOUND)
        s_fail (self, 409, "Conflict", "another request took this upload over; resume from its offset (HEAD)");
    else
    if (rc)
        s_fail (self, 503, "Service unavailable", "the photo library is unavailable; try again shortly");
    return MHD_YES;
}

//  The answer to a PATCH or a creation with upload once the body is in.
static enum MHD_Result
s_finish_append (struct MHD_Connection *c, rp_req_t *req, rp_tus_req_t *self, rp_db_t *db, int status)
{
    char err [512];
    if (self->start == 0 && !self->sniffed && self->head_len > 0) {
        //  A short first part: sniff what there is when it is the whole upload
        int64_t length = self->new_length >= 0 ? self->new_length : self->length;
        if (length >= 0 && self->written == length
        &&  !rp_sniff_check (self->head, self->head_len, self->not_image_why, sizeof self->not_image_why))
            self->not_image = true;
    }
    //  The checksum first: bytes that are not what the client sent say
    //  nothing about the upload
    if (!self->error.status && self->md) {
        unsigned char digest [EVP_MAX_MD_SIZE];
        unsigned int digest_len = 0;
        EVP_DigestFinal_ex (self->md, digest, &digest_len);
        if (digest_len != self->expected_len || memcmp (digest, self->expected, digest_len)) {
            s_fail (self, 460, "Checksum mismatch",
                    "the body does not match Upload-Checksum; it was discarded and the offset is unchanged");
        }
    }
    if (self->not_image && !self->error.status)
        s_fail (self, 415, "Unsupported media type", self->not_image_why);
    if (self->not_image && self->error.status == 415) {
        //  Nothing of it is kept; the photo ends failed with the reason
        s_part_discard (self);
        if (rp_db_tus_fail (db, self->id, self->error.detail, err, sizeof err) == 0) {
            self->locked = false;
            s_live_set (self->owner, false);
            s_remove_dir (self->id);
        }
    }
    if (self->error.status) {
        if (!self->md && !self->not_image && self->error.status != 413 && self->written > self->committed)
            s_part_commit (db, self, err, sizeof err);      //  keep what arrived
        s_part_discard (self);
        s_unlock (db, self);
        return s_problem (c, req, self->error.status, self->error.title, self->error.detail, NULL, NULL);
    }
    int rc = s_part_commit (db, self, err, sizeof err);
    if (self->fd >= 0) {
        close (self->fd);
        self->fd = -1;
    }
    if (rc == RP_CONFLICT) {
        s_part_discard (self);
        s_unlock (db, self);
        return s_problem (c, req, 409, "Conflict", "another request took this upload over; resume from its offset (HEAD)",
                          NULL, NULL);
    }
    if (rc) {
        rp_warn ("gateway", "req=%s upload=%s cannot commit its part: %s", req->id, self->id, err);
        s_part_discard (self);
        s_unlock (db, self);
        return s_problem (c, req, 503, "Service unavailable", "the photo library is unavailable; try again shortly",
                          "Retry-After", "2");
    }
    if (self->written == 0 && self->part_path [0])
        unlink (self->part_path);       //  an empty part is not worth a file
    int64_t offset = self->start + self->written;
    s_outcome_t outcome = { 0 };
    bool complete = self->length >= 0 && offset == self->length;
    if (complete)
        s_complete (db, self->id, self->owner, self->length, &outcome);
    if (outcome.status == 415 || outcome.status == 410) {
        self->locked = false;           //  the upload's rows are gone
        s_live_set (self->owner, false);
    }
    s_unlock (db, self);
    if (outcome.status)
        return s_problem (c, req, outcome.status,
                          outcome.status == 415 ? "Unsupported media type"
                          : outcome.status == 410 ? "Gone" : outcome.status == 409 ? "Conflict"
                          : outcome.status == 404 ? "Not found" : "Service unavailable",
                          outcome.detail, outcome.status == 503 ? "Retry-After" : NULL, "2");
    struct MHD_Response *response = s_empty ();
    if (!response)
        return MHD_NO;
    s_header_int (response, "Upload-Offset", offset);
    s_header_expires (response, self->expires_ms ? self->expires_ms
                                                 : rp_clock_wall_ms () + rp_gw->config.uploads_tus_expire_s * 1000);
    if (self->location [0])
        MHD_add_response_header (response, "Location", self->location);
    if (complete) {
        req->acknowledged = true;
        MHD_add_response_header (response, "Photo-Id", outcome.photo_id);
        MHD_add_response_header (response, "Photo-Duplicate", outcome.duplicate ? "true" : "false");
    }
    return rp_gw_queue (c, req, status, response);
}

enum MHD_Result
rp_tus_finish (struct MHD_Connection *c, rp_req_t *req)
{
    rp_tus_req_t *self = req->tus;
    char err [512];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db) {
        s_part_discard (self);
        return s_db_unavailable (c, req, err);
    }
    if (self->kind == S_PATCH)
        return s_finish_append (c, req, self, db, 204);
    //  Creation, without bytes or with them
    if (self->fd >= 0)
        return s_finish_append (c, req, self, db, 201);
    struct MHD_Response *response = s_empty ();
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Location", self->location);
    s_header_expires (response, self->expires_ms);
    if (self->length == 0) {
        //  Nothing to send: an empty file is not an image
        s_outcome_t outcome;
        s_complete (db, self->id, self->owner, 0, &outcome);
        MHD_destroy_response (response);
        return s_problem (c, req, outcome.status ? outcome.status : 415, "Unsupported media type",
                          outcome.status ? outcome.detail : "an empty file is not an image", NULL, NULL);
    }
    return rp_gw_queue (c, req, 201, response);
}

void
rp_tus_end (rp_tus_req_t **self_p, bool completed)
{
    if (!self_p || !*self_p)
        return;
    rp_tus_req_t *self = *self_p;
    char err [512];
    rp_db_t *db = self->locked || self->fd >= 0 ? rp_gw_db (err, sizeof err) : NULL;
    if (self->fd >= 0 && db && !self->md && !self->not_image && !self->error.status) {
        //  Cut off: keep what arrived, durable, for the client to resume from
        if (s_part_commit (db, self, err, sizeof err) == 0 && self->written > 0)
            rp_info ("gateway", "upload=%s request ended early: kept %lld bytes, offset %lld", self->id,
                     (long long) self->written, (long long) (self->start + self->written));
    }
    s_part_discard (self);
    s_unlock (db, self);
    s_live_set (self->owner, false);
    if (self->md)
        EVP_MD_CTX_free (self->md);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  The sweep

static void
s_sweep_dirs (rp_db_t *db)
{
    char dir [RP_STR_MAX + 16];
    snprintf (dir, sizeof dir, "%s/tus", rp_gw->config.data_dir);
    DIR *listing = opendir (dir);
    if (!listing)
        return;
    struct dirent *entry;
    time_t now = time (NULL);
    while ((entry = readdir (listing))) {
        if (entry->d_name [0] == '.' || !rp_db_valid_id (entry->d_name))
            continue;
        char path [RP_STR_MAX + 300];
        snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
        struct stat st;
        if (stat (path, &st) || now - st.st_mtime < S_DIR_GRACE_S)
            continue;
        rp_tus_t upload;
        char err [256];
        if (rp_db_tus_get (db, NULL, entry->d_name, &upload, err, sizeof err) == RP_NOT_FOUND) {
            s_remove_dir (entry->d_name);
            rp_info ("gateway", "removed the parts of upload=%s (no upload refers to them)", entry->d_name);
        }
        rp_db_tus_clear (&upload);
    }
    closedir (listing);
}

void
rp_tus_sweep (rp_db_t *db, bool now)
{
    if (!db || !rp_gw)
        return;
    if (!rp_gw_sweep_due (&s_next_sweep_ms, S_SWEEP_MS, now))
        return;
    char err [512];
    json_t *expired = NULL;
    if (rp_db_tus_expired (db, rp_clock_wall_ms (), 100, &expired, err, sizeof err)) {
        rp_debug ("gateway", "tus sweep: %s", err);
        return;
    }
    size_t index;
    json_t *item;
    int failed = 0, forgotten = 0;
    json_array_foreach (expired, index, item) {
        const char *id = json_string_value (json_object_get (item, "id"));
        bool done = json_is_true (json_object_get (item, "done"));
        if (!id)
            continue;
        rp_tus_req_t self = { .fd = -1 };
        snprintf (self.id, sizeof self.id, "%s", id);
        char host [200] = "";
        gethostname (host, sizeof host - 1);
        snprintf (self.owner, sizeof self.owner, "%s:%ld:sweep", host, (long) getpid ());
        if (s_lock (db, &self, err, sizeof err))
            continue;                   //  in use (or gone): next time
        int rc = done ? rp_db_tus_delete (db, NULL, id, err, sizeof err)
                      : rp_db_tus_fail (db, id, "the resumable upload expired before all its bytes arrived",
                                        err, sizeof err);
        if (rc == 0) {
            self.locked = false;
            s_remove_dir (id);
            if (done)
                forgotten++;
            else
                failed++;
        }
        s_unlock (db, &self);
        s_live_set (self.owner, false);
    }
    json_decref (expired);
    if (failed || forgotten)
        rp_info ("gateway", "tus sweep: %d expired uploads failed, %d finished ones forgotten", failed, forgotten);
    s_sweep_dirs (db);
}
