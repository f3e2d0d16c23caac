/*  library/blobstore.c: the disk backend of the blob store.

    Durability: write to objects/tmp/<random>, fsync the file, link it into
    objects/ab/cd/<sha256> (link fails with EEXIST when the bytes are already
    there: deduplicated), fsync that folder, unlink the temporary. Folders
    are made 0700 and each new one is fsync'd into its parent (engine/fs.h);
    files are 0600 (mkostemp's mode, kept by the link). A crash at any point
    leaves either the old state or a complete blob, plus maybe a temporary
    file that rp_blobstore_clean_tmp removes at start-up.
    The temporary name outlives the store (rp_blob_store) until the caller
    is done with the writer: until the row that needs the bytes is
    committed, the writer can put them back at their address
    (rp_blob_restore) if a collection took them in between (library.c).
    Fault hooks: RP_FAULT_DISK_WRITE=N makes the Nth write of the process
    fail with EIO, as a failing disk would; RP_FAULT_DIR_SYNC (engine/fs.h)
    a folder sync.
    S3 (storage.backend = s3): the same steps make the local cached copy,
    then the object is stored in S3 before the commit returns; see
    blobstore.h for the rest. An upload of a part's worth and more
    (RP_S3_STREAM_PART) is streamed to S3 while it arrives (s3_mirror.h):
    the store then sends only its last part, completes it and copies it to
    its address, instead of sending the whole object after the last byte.
*/
#include "library/blobstore.h"
#include "engine/alloc.h"
#include "engine/fault.h"
#include "engine/fs.h"
#include "engine/hex.h"
#include "engine/log.h"
#include "library/sniff.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_HEAD_BYTES RP_SNIFF_BYTES

struct _rp_blobstore_t {
    char root [PATH_MAX - 64];      //  <dir>/objects
    char tmp [PATH_MAX - 64];       //  <dir>/objects/tmp
    rp_s3_mirror_t *s3;             //  NULL for the disk backend
    //  Derivative suffixes ".<name>.<ext>", for deleting them in S3
    char suffixes [RP_DERIVATIVES_MAX][48];
    const char *mimes [RP_DERIVATIVES_MAX];
    int nsuffixes;
    bool scratch;                   //  commits skip fsync (rp_blobstore_open_scratch)
    bool stream;                    //  S3: large uploads streamed while they arrive (storage.s3_stream)
};

struct _rp_blob_writer_t {
    rp_blobstore_t *store;          //  borrowed
    int fd;                         //  the temporary file
    char tmp_path [PATH_MAX];
    EVP_MD_CTX *sha;                //  running SHA-256
    int64_t size;
    int64_t max_bytes;
    unsigned char head [S_HEAD_BYTES];
    size_t head_size;
    bool stored;                    //  rp_blob_store succeeded: sha256 and path are set
    char sha256 [65];
    char path [PATH_MAX];           //  the address: objects/ab/cd/<sha256>
    rp_s3_stream_t *stream;         //  S3: the bytes on their way while they arrive
    bool stream_tried;              //  one try per writer; a failure sends it whole
    char expected [65];             //  the SHA-256 the client declared, or ""
};

static atomic_long s_writes;        //  for the DISK_WRITE fault hook

//  Folders of the store: the engine's user's alone, durable in their parent
#define S_DIR_MODE 0700

rp_blobstore_t *
rp_blobstore_open_disk (const char *dir, char *err, size_t errlen)
{
    rp_blobstore_t *self = (rp_blobstore_t *) rp_alloc (sizeof (rp_blobstore_t));
    int n1 = snprintf (self->root, sizeof self->root, "%s/objects", dir);
    int n2 = snprintf (self->tmp, sizeof self->tmp, "%s/objects/tmp", dir);
    if (n1 < 0 || n2 < 0 || (size_t) n2 >= sizeof self->tmp) {
        snprintf (err, errlen, "storage folder path is too long");
        free (self);
        return NULL;
    }
    if (rp_fs_mkdirs (self->tmp, S_DIR_MODE, err, errlen)) {
        free (self);
        return NULL;
    }
    //  The data folder holds every user's photos (and SQLite's file): one
    //  an older version made open to others is closed to them
    struct stat st;
    if (stat (dir, &st) == 0 && (st.st_mode & 077)) {
        if (chmod (dir, st.st_mode & 0700) == 0)
            rp_info ("storage", "%s was open to other users (%o); now %o", dir, (unsigned) (st.st_mode & 0777),
                     (unsigned) (st.st_mode & 0700));
        else
            rp_warn ("storage", "%s is open to other users (%o) and cannot be closed: %s", dir,
                     (unsigned) (st.st_mode & 0777), strerror (errno));
    }
    return self;
}

rp_blobstore_t *
rp_blobstore_open_scratch (const char *dir, char *err, size_t errlen)
{
    rp_blobstore_t *self = rp_blobstore_open_disk (dir, err, errlen);
    if (self)
        self->scratch = true;
    return self;
}

rp_blobstore_t *
rp_blobstore_open (const rp_config_t *config, char *err, size_t errlen)
{
    rp_blobstore_t *self = rp_blobstore_open_disk (config->data_dir, err, errlen);
    if (!self || strcmp (config->storage_backend, "s3") != 0)
        return self;
    self->s3 = rp_s3_mirror_new (config, err, errlen);
    if (!self->s3) {
        rp_blobstore_close (&self);
        return NULL;
    }
    self->stream = config->storage_s3_stream != 0;
    for (int i = 0; i < config->derivative_count && i < RP_DERIVATIVES_MAX; i++) {
        const char *mime = "application/octet-stream";
        const char *ext = rp_derivative_ext (config->derivatives [i].format, &mime);
        self->mimes [self->nsuffixes] = mime;
        snprintf (self->suffixes [self->nsuffixes++], sizeof self->suffixes [0], ".%s.%s",
                  config->derivatives [i].name, ext ? ext : "bin");
    }
    return self;
}

rp_s3_mirror_t *
rp_blobstore_s3 (rp_blobstore_t *self)
{
    return self->s3;
}

void
rp_blobstore_close (rp_blobstore_t **self_p)
{
    if (self_p && *self_p) {
        rp_s3_mirror_destroy (&(*self_p)->s3);
        free (*self_p);
        *self_p = NULL;
    }
}

rp_blob_writer_t *
rp_blob_begin (rp_blobstore_t *self, int64_t max_bytes, char *err, size_t errlen)
{
    rp_blob_writer_t *w = (rp_blob_writer_t *) rp_alloc (sizeof (rp_blob_writer_t));
    w->store = self;
    w->max_bytes = max_bytes;
    snprintf (w->tmp_path, sizeof w->tmp_path, "%s/upload-XXXXXX", self->tmp);
    w->fd = mkostemp (w->tmp_path, O_CLOEXEC);
    if (w->fd < 0) {
        snprintf (err, errlen, "cannot create a temporary file in storage: %s", strerror (errno));
        free (w);
        return NULL;
    }
    w->sha = EVP_MD_CTX_new ();
    if (!w->sha || EVP_DigestInit_ex (w->sha, EVP_sha256 (), NULL) != 1) {
        snprintf (err, errlen, "cannot start SHA-256");
        rp_blob_abort (&w);
        return NULL;
    }
    return w;
}

static const char *s_mime (rp_blob_writer_t *w);

//  S3: once a part's worth is in, the upload starts on its way to S3
//  (s3_mirror.h, streams); smaller uploads go whole at the store
static void
s_stream_grow (rp_blob_writer_t *w)
{
    if (!w->stream && !w->stream_tried && w->size >= RP_S3_STREAM_PART) {
        w->stream_tried = true;
        char err [512], relative [160] = "";
        if (*w->expected)
            rp_blob_relative (w->expected, "", relative, sizeof relative);
        w->stream = rp_s3_stream_begin (w->store->s3, w->tmp_path, s_mime (w), *relative ? relative : NULL,
                                        err, sizeof err);
        if (!w->stream)
            rp_warn ("storage", "cannot stream an upload to S3 (it goes whole when complete): %s", err);
    }
    if (w->stream)
        rp_s3_stream_grow (w->stream, w->size);
}

int
rp_blob_write (rp_blob_writer_t *w, const void *data, size_t size, char *err, size_t errlen)
{
    if (w->size + (int64_t) size > w->max_bytes) {
        snprintf (err, errlen, "upload is larger than the limit of %lld bytes", (long long) w->max_bytes);
        return -1;
    }
    long nth = atomic_fetch_add (&s_writes, 1) + 1;
    int64_t fault = rp_fault_value ("DISK_WRITE");
    if (fault && nth == fault) {
        snprintf (err, errlen, "cannot write to storage: %s (fault injected)", strerror (EIO));
        return -1;
    }
    const unsigned char *bytes = (const unsigned char *) data;
    if (w->head_size < S_HEAD_BYTES) {
        size_t take = S_HEAD_BYTES - w->head_size < size ? S_HEAD_BYTES - w->head_size : size;
        memcpy (w->head + w->head_size, bytes, take);
        w->head_size += take;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = write (w->fd, bytes + done, size - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf (err, errlen, "cannot write to storage: %s", strerror (errno));
            return -1;
        }
        done += (size_t) n;
    }
    EVP_DigestUpdate (w->sha, data, size);
    w->size += (int64_t) size;
    if (w->store->s3 && w->store->stream)
        s_stream_grow (w);
    return 0;
}

void
rp_blob_expect (rp_blob_writer_t *w, const char *sha256)
{
    if (!w->stream_tried && rp_blob_is_address (sha256))
        snprintf (w->expected, sizeof w->expected, "%s", sha256);
}

int64_t
rp_blob_size (rp_blob_writer_t *w)
{
    return w->size;
}

const unsigned char *
rp_blob_head (rp_blob_writer_t *w, size_t *size)
{
    *size = w->head_size;
    return w->head;
}

void
rp_blob_abort (rp_blob_writer_t **writer_p)
{
    if (!writer_p || !*writer_p)
        return;
    rp_blob_writer_t *w = *writer_p;
    rp_s3_stream_abort (&w->stream);
    if (w->fd >= 0) {
        close (w->fd);
        unlink (w->tmp_path);
    }
    EVP_MD_CTX_free (w->sha);
    free (w);
    *writer_p = NULL;
}

static void
s_address (rp_blobstore_t *self, const char *sha256, char *dir, size_t dirlen, char *path, size_t pathlen)
{
    snprintf (dir, dirlen, "%s/%.2s/%.2s", self->root, sha256, sha256 + 2);
    snprintf (path, pathlen, "%s/%.2s/%.2s/%.64s", self->root, sha256, sha256 + 2, sha256);
}

//  A finished SHA-256 context's digest as hex
static void
s_hex_digest (EVP_MD_CTX *sha, char sha256 [65])
{
    unsigned char digest [32] = { 0 };
    unsigned int len = 0;
    EVP_DigestFinal_ex (sha, digest, &len);
    rp_hex_encode (digest, sizeof digest, sha256);
}

int
rp_blob_digest (rp_blob_writer_t *w, char sha256 [65])
{
    EVP_MD_CTX *copy = EVP_MD_CTX_new ();
    if (!copy || EVP_MD_CTX_copy_ex (copy, w->sha) != 1) {
        EVP_MD_CTX_free (copy);
        return -1;
    }
    s_hex_digest (copy, sha256);
    EVP_MD_CTX_free (copy);
    return 0;
}

//  The content type to store an original with in S3
static const char *
s_mime (rp_blob_writer_t *w)
{
    const char *mime = rp_sniff (w->head, w->head_size);
    return mime ? mime : "application/octet-stream";
}

//  Link the temporary file at the address and make the folder durable.
//  *made: the link is new (false: the bytes were there). 0 or -1 with err.
static int
s_link (rp_blob_writer_t *w, bool *made, char *err, size_t errlen)
{
    char dir [PATH_MAX];
    s_address (w->store, w->sha256, dir, sizeof dir, w->path, sizeof w->path);
    *made = false;
    //  A scratch store (`process`) need not survive a crash: no syncs
    bool scratch = w->store->scratch;
    if ((scratch ? rp_fs_mkdirs_scratch : rp_fs_mkdirs) (dir, S_DIR_MODE, err, errlen))
        return -1;
    if (link (w->tmp_path, w->path)) {
        if (errno == EEXIST)
            return 0;               //  the same bytes are already stored
        snprintf (err, errlen, "cannot store the upload: %s", strerror (errno));
        return -1;
    }
    if (!scratch && rp_fs_sync_dir (dir)) {
        snprintf (err, errlen, "cannot make the storage folder durable: %s", strerror (errno));
        unlink (w->path);
        return -1;
    }
    *made = true;
    return 0;
}

int
rp_blob_store (rp_blob_writer_t **writer_p, char sha256 [65], bool *existed, char *err, size_t errlen)
{
    rp_blob_writer_t *w = *writer_p;
    assert (!w->stored);
    s_hex_digest (w->sha, w->sha256);
    snprintf (sha256, 65, "%s", w->sha256);
    if (!w->store->scratch && fsync (w->fd)) {
        snprintf (err, errlen, "cannot make the upload durable: %s", strerror (errno));
        rp_blob_abort (writer_p);
        return -1;
    }
    bool made = false;
    if (s_link (w, &made, err, errlen)) {
        rp_blob_abort (writer_p);
        return -1;
    }
    *existed = !made;
    //  S3: durable once S3 has it (the local copy is only a cache)
    if (w->store->s3) {
        char relative [160];
        rp_blob_relative (w->sha256, "", relative, sizeof relative);
        //  New here: most likely new to S3 as well, so no HEAD first. Known
        //  here: its earlier commit may have failed at S3, so ask. Sent
        //  from the temporary name (the same bytes): the cache's trim may
        //  remove the address's link at any time, as what is cached is in
        //  S3 (pipeline.c), so the upload must not read it back from there
        //  Streamed while it arrived: the rest, and the copy to its
        //  address; should that fail, it goes whole as any other
        bool streamed = false;
        if (w->stream && *w->expected && strcmp (w->expected, w->sha256)) {
            //  Declared one address, sent other bytes: never complete it there
            rp_warn ("storage", "an upload declared SHA-256 %.12s... and is %.12s...: its stream is aborted",
                     w->expected, w->sha256);
            rp_s3_stream_abort (&w->stream);
        }
        if (w->stream) {
            streamed = rp_s3_stream_finish (&w->stream, w->size, relative, *existed, err, errlen) == 0;
            if (!streamed)
                rp_warn ("storage", "streaming an upload to S3 failed (sending it whole): %s", err);
        }
        if (!streamed
        &&  rp_s3_mirror_put (w->store->s3, relative, w->tmp_path, s_mime (w), *existed, err, errlen)) {
            rp_blob_abort (writer_p);
            return RP_UNAVAILABLE;
        }
    }
    w->stored = true;
    return 0;
}

int
rp_blob_commit (rp_blob_writer_t **writer_p, char sha256 [65], bool *existed, char *err, size_t errlen)
{
    int rc = rp_blob_store (writer_p, sha256, existed, err, errlen);
    rp_blob_abort (writer_p);       //  closes and unlinks the temporary name
    return rc;
}

int
rp_blob_restore (rp_blob_writer_t *w, bool *restored, char *err, size_t errlen)
{
    assert (w->stored);
    *restored = false;
    if (access (w->path, F_OK) != 0) {
        if (errno != ENOENT) {
            snprintf (err, errlen, "cannot look for the stored upload: %s", strerror (errno));
            return -1;
        }
        bool made = false;
        if (s_link (w, &made, err, errlen))
            return -1;
        *restored = made && !w->store->s3;      //  S3: the folder is only a cache
    }
    if (w->store->s3) {
        char relative [160];
        rp_blob_relative (w->sha256, "", relative, sizeof relative);
        int64_t size = -1;
        char etag [RP_S3_ETAG_MAX];
        int rc = rp_s3_mirror_head (w->store->s3, relative, &size, etag, err, errlen);
        bool missing = rc == RP_NOT_FOUND || (rc == 0 && size != w->size);
        if (missing)
            rc = rp_s3_mirror_put (w->store->s3, relative, w->tmp_path, s_mime (w), false, err, errlen);
        if (rc)
            return RP_UNAVAILABLE;
        *restored = *restored || missing;
    }
    return 0;
}

rp_blob_writer_t *
rp_blob_begin_file (rp_blobstore_t *self, const char *path, int64_t max_bytes, char *err, size_t errlen)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf (err, errlen, "cannot read file: %s", strerror (errno));
        return NULL;
    }
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode)) {
        snprintf (err, errlen, "not a regular file");
        close (fd);
        return NULL;
    }
    if (st.st_size > max_bytes) {
        snprintf (err, errlen, "file is %lld bytes, more than the limit of %lld bytes",
                  (long long) st.st_size, (long long) max_bytes);
        close (fd);
        return NULL;
    }
    rp_blob_writer_t *w = rp_blob_begin (self, max_bytes, err, errlen);
    if (!w) {
        close (fd);
        return NULL;
    }
    static __thread unsigned char buffer [256 * 1024];
    ssize_t n;
    while (w && (n = read (fd, buffer, sizeof buffer)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            snprintf (err, errlen, "cannot read file: %s", strerror (errno));
        if (n < 0 || rp_blob_write (w, buffer, (size_t) n, err, errlen))
            rp_blob_abort (&w);
    }
    close (fd);
    return w;
}

static bool
s_is_sha (const char *s)
{
    if (strlen (s) != 64)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

bool
rp_blob_is_address (const char *text)
{
    return text && s_is_sha (text);
}

int
rp_blob_path (rp_blobstore_t *self, const char *sha256, char *buf, size_t size)
{
    if (!s_is_sha (sha256))
        return -1;
    char dir [PATH_MAX];
    s_address (self, sha256, dir, sizeof dir, buf, size);
    return 0;
}

bool
rp_blob_exists (rp_blobstore_t *self, const char *sha256)
{
    char path [PATH_MAX];
    return rp_blob_path (self, sha256, path, sizeof path) == 0 && access (path, F_OK) == 0;
}

int
rp_blob_relative (const char *sha256, const char *suffix, char *buf, size_t size)
{
    if (!s_is_sha (sha256))
        return -1;
    int n = snprintf (buf, size, "objects/%.2s/%.2s/%s%s", sha256, sha256 + 2, sha256, suffix);
    return n < 0 || (size_t) n >= size ? -1 : 0;
}

//  SHA-256 of a file, as hex
static int
s_file_sha256 (const char *path, char sha256 [65])
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL);
    static __thread unsigned char buffer [256 * 1024];
    size_t n;
    while ((n = fread (buffer, 1, sizeof buffer, file)) > 0)
        EVP_DigestUpdate (ctx, buffer, n);
    int rc = ferror (file) ? -1 : 0;
    fclose (file);
    unsigned char digest [32];
    unsigned int len = 0;
    EVP_DigestFinal_ex (ctx, digest, &len);
    EVP_MD_CTX_free (ctx);
    rp_hex_encode (digest, sizeof digest, sha256);
    return rc;
}

//  A fresh temporary path in the cache's tmp folder (the file is made)
static int
s_tmp_file (rp_blobstore_t *self, const char *stem, char *path, size_t size)
{
    snprintf (path, size, "%s/%s-XXXXXX", self->tmp, stem);
    int fd = mkostemp (path, O_CLOEXEC);
    if (fd < 0)
        return -1;
    close (fd);
    return 0;
}

int
rp_blob_fetch (rp_blobstore_t *self, const char *sha256, char *err, size_t errlen)
{
    char dir [PATH_MAX], path [PATH_MAX], relative [160];
    if (rp_blob_relative (sha256, "", relative, sizeof relative)) {
        snprintf (err, errlen, "not a SHA-256: %.80s", sha256);
        return -1;
    }
    s_address (self, sha256, dir, sizeof dir, path, sizeof path);
    if (access (path, F_OK) == 0) {
        //  In use again: the cache trim (by time written) leaves it alone
        if (self->s3)
            utimensat (AT_FDCWD, path, NULL, 0);
        return 0;
    }
    if (!self->s3) {
        snprintf (err, errlen, "the original %.12s... is missing from storage", sha256);
        return -1;
    }
    //  Local trouble (a full disk) is as passing as S3 being away: the bytes
    //  are safe in S3, so the photo must wait, not fail
    char tmp [PATH_MAX];
    if (s_tmp_file (self, "fetch", tmp, sizeof tmp)) {
        snprintf (err, errlen, "cannot create a temporary file in the local cache: %s", strerror (errno));
        return RP_UNAVAILABLE;
    }
    int rc = rp_s3_mirror_get (self->s3, relative, tmp, -1, err, errlen);
    if (rc == RP_NOT_FOUND) {
        snprintf (err, errlen, "the original %.12s... is missing from S3", sha256);
        rc = -1;
    }
    else
    if (rc)
        rc = RP_UNAVAILABLE;
    else {
        char actual [65], why [256];
        if (s_file_sha256 (tmp, actual) || strcmp (actual, sha256) != 0) {
            snprintf (err, errlen, "the original %.12s... in S3 does not hash to its name", sha256);
            rc = -1;
        }
        else
        if (rp_fs_mkdirs (dir, S_DIR_MODE, why, sizeof why)) {
            snprintf (err, errlen, "cannot cache the original: %s", why);
            rc = RP_UNAVAILABLE;
        }
        else
        if (rename (tmp, path) && errno != EEXIST) {
            snprintf (err, errlen, "cannot cache the original: %s", strerror (errno));
            rc = RP_UNAVAILABLE;
        }
    }
    unlink (tmp);
    return rc;
}

int
rp_blob_push_derivatives (rp_blobstore_t *self, const char *sha256, char *err, size_t errlen)
{
    if (!self->s3)
        return 0;
    char dir [PATH_MAX], path [PATH_MAX];
    s_address (self, sha256, dir, sizeof dir, path, sizeof path);
    for (int i = 0; i < self->nsuffixes; i++) {
        char local [PATH_MAX], relative [160];
        snprintf (local, sizeof local, "%s%s", path, self->suffixes [i]);
        if (access (local, F_OK) != 0)
            continue;               //  a format this photo does not get
        rp_blob_relative (sha256, self->suffixes [i], relative, sizeof relative);
        if (rp_s3_mirror_put (self->s3, relative, local, self->mimes [i], false, err, errlen))
            return RP_UNAVAILABLE;
    }
    return 0;
}

int
rp_blob_import_object (rp_blobstore_t *self, const char *relative, int64_t max_bytes,
                       rp_blob_writer_t **writer_p, char *err, size_t errlen)
{
    *writer_p = NULL;
    if (!self->s3) {
        snprintf (err, errlen, "objects can only be imported with storage.backend = s3");
        return RP_ERROR;
    }
    int64_t object_size = -1;
    char etag [RP_S3_ETAG_MAX];
    int rc = rp_s3_mirror_head (self->s3, relative, &object_size, etag, err, errlen);
    if (rc)
        return rc == RP_NOT_FOUND ? RP_NOT_FOUND : RP_UNAVAILABLE;
    if (object_size == 0) {
        snprintf (err, errlen, "the object is empty");
        return RP_REFUSED;
    }
    if (object_size > max_bytes) {
        snprintf (err, errlen, "the object is %lld bytes, more than the limit of %lld bytes",
                  (long long) object_size, (long long) max_bytes);
        return RP_REFUSED;
    }
    char tmp [PATH_MAX];
    if (s_tmp_file (self, "import", tmp, sizeof tmp)) {
        snprintf (err, errlen, "cannot create a temporary file in storage: %s", strerror (errno));
        return RP_ERROR;
    }
    //  Bounded: the object may have been replaced since the HEAD
    rc = rp_s3_mirror_get (self->s3, relative, tmp, max_bytes, err, errlen);
    struct stat st;
    if (rc == 0 && stat (tmp, &st) == 0 && (int64_t) st.st_size > max_bytes) {
        snprintf (err, errlen, "the object grew past the limit of %lld bytes while it was read",
                  (long long) max_bytes);
        rc = RP_REFUSED;
    }
    else
    if (rc == 0) {
        *writer_p = rp_blob_begin_file (self, tmp, max_bytes, err, errlen);
        rc = *writer_p ? RP_OK : RP_ERROR;
    }
    else
    if (rc != RP_NOT_FOUND)
        rc = RP_UNAVAILABLE;
    unlink (tmp);
    return rc;
}

int
rp_blob_delete (rp_blobstore_t *self, const char *sha256, char *err, size_t errlen)
{
    if (!s_is_sha (sha256)) {
        snprintf (err, errlen, "not a SHA-256: %.80s", sha256);
        return -1;
    }
    if (self->s3) {
        for (int i = -1; i < self->nsuffixes; i++) {
            char relative [160];
            rp_blob_relative (sha256, i < 0 ? "" : self->suffixes [i], relative, sizeof relative);
            if (rp_s3_mirror_delete (self->s3, relative, err, errlen))
                return RP_UNAVAILABLE;
        }
    }
    char dir [PATH_MAX], path [PATH_MAX];
    s_address (self, sha256, dir, sizeof dir, path, sizeof path);
    DIR *d = opendir (dir);
    if (!d)
        return 0;
    struct dirent *entry;
    int rc = 0;
    while ((entry = readdir (d))) {
        //  The original and every "<sha>.<derivative>" beside it
        if (strncmp (entry->d_name, sha256, 64) != 0)
            continue;
        char victim [PATH_MAX];
        snprintf (victim, sizeof victim, "%s/%.200s", dir, entry->d_name);
        if (unlink (victim) && errno != ENOENT) {
            snprintf (err, errlen, "cannot delete stored bytes: %s", strerror (errno));
            rc = -1;
        }
    }
    closedir (d);
    rp_fs_sync_dir (dir);
    return rc;
}

int
rp_blobstore_clean_tmp (rp_blobstore_t *self, int64_t older_than_s, int *removed)
{
    *removed = 0;
    time_t now = time (NULL);
    DIR *d = opendir (self->tmp);
    if (!d)
        return -1;
    struct dirent *entry;
    while ((entry = readdir (d))) {
        if (entry->d_name [0] == '.')
            continue;
        char path [PATH_MAX];
        snprintf (path, sizeof path, "%s/%.200s", self->tmp, entry->d_name);
        struct stat st;
        if (stat (path, &st) || (int64_t) (now - st.st_mtime) < older_than_s)
            continue;
        if (unlink (path) == 0)
            (*removed)++;
    }
    closedir (d);
    return 0;
}

int
rp_blobstore_each (rp_blobstore_t *self, rp_blob_each_fn *fn, void *arg)
{
    //  objects/ab/cd/<sha>: two levels of two hex characters
    DIR *top = opendir (self->root);
    if (!top)
        return -1;
    struct dirent *a;
    int stop = 0;
    time_t now = time (NULL);
    while (!stop && (a = readdir (top))) {
        if (strlen (a->d_name) != 2 || !strcmp (a->d_name, ".."))
            continue;
        char level1 [PATH_MAX];
        snprintf (level1, sizeof level1, "%s/%s", self->root, a->d_name);
        DIR *mid = opendir (level1);
        if (!mid)
            continue;
        struct dirent *b;
        while (!stop && (b = readdir (mid))) {
            if (strlen (b->d_name) != 2 || !strcmp (b->d_name, ".."))
                continue;
            char level2 [PATH_MAX];
            snprintf (level2, sizeof level2, "%s/%s", level1, b->d_name);
            DIR *leaf = opendir (level2);
            if (!leaf)
                continue;
            struct dirent *c;
            while (!stop && (c = readdir (leaf))) {
                if (!s_is_sha (c->d_name))
                    continue;
                char path [PATH_MAX];
                snprintf (path, sizeof path, "%s/%s", level2, c->d_name);
                struct stat st;
                int64_t age = stat (path, &st) == 0 ? (int64_t) (now - st.st_mtime) : 0;
                stop = fn (c->d_name, age, arg);
            }
            closedir (leaf);
        }
        closedir (mid);
    }
    closedir (top);
    return 0;
}

int
rp_blobstore_trim_cache (rp_blobstore_t *self, int64_t older_than_s, rp_blob_keep_fn *keep, void *arg,
                         int *removed)
{
    *removed = 0;
    if (!self->s3)
        return 0;
    time_t now = time (NULL);
    //  objects/ab/cd/<sha256>[.<derivative>.<ext>]
    DIR *top = opendir (self->root);
    if (!top)
        return -1;
    struct dirent *a;
    while ((a = readdir (top))) {
        if (strlen (a->d_name) != 2 || !strcmp (a->d_name, ".."))
            continue;
        char level1 [PATH_MAX];
        snprintf (level1, sizeof level1, "%s/%s", self->root, a->d_name);
        DIR *mid = opendir (level1);
        struct dirent *b;
        while (mid && (b = readdir (mid))) {
            if (strlen (b->d_name) != 2 || !strcmp (b->d_name, ".."))
                continue;
            char level2 [PATH_MAX];
            snprintf (level2, sizeof level2, "%s/%s", level1, b->d_name);
            DIR *leaf = opendir (level2);
            struct dirent *c;
            while (leaf && (c = readdir (leaf))) {
                char name [65];
                snprintf (name, sizeof name, "%.64s", c->d_name);
                if (!s_is_sha (name) || (keep && keep (name, arg)))
                    continue;
                char path [PATH_MAX];
                snprintf (path, sizeof path, "%s/%.200s", level2, c->d_name);
                struct stat st;
                if (stat (path, &st) == 0 && (int64_t) (now - st.st_mtime) >= older_than_s && unlink (path) == 0)
                    (*removed)++;
            }
            if (leaf)
                closedir (leaf);
        }
        if (mid)
            closedir (mid);
    }
    closedir (top);
    return 0;
}
