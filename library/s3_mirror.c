/*  library/s3_mirror.c: see s3_mirror.h.

    The pool: at most S_POOL idle clients kept; a call takes an idle one
    whose credentials are still current, or makes one. Credentials are
    compared by access key and session token, so a refresh from the ECS
    endpoint retires the old clients as they come back.

    Streams (s3_mirror.h): one thread per stream, holding one client of
    the pool for its life. The writer and the thread share only the
    stream's counters under its mutex: how far the file is written (the
    writer's), whether it is whole or given up (the writer's), and what
    came of it (the thread's). The thread reads the file through a FILE
    of its own, only below what the writer said is written, so it never
    reads a byte still to come. finish and abort join the thread: the
    part on its way is finished first (bounded by the client's timeout
    and retries), so abort may wait for one part.
*/
#include "library/s3_mirror.h"
#include "engine/alloc.h"
#include "engine/aws/common.h"
#include "engine/aws/credentials.h"
#include "engine/hex.h"
#include "engine/log.h"
#include "engine/thread.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <errno.h>

#define S_POOL 16

typedef struct {
    rp_s3_t *client;
    rp_aws_keys_t keys;             //  what it signs with
} s_client_t;

struct _rp_s3_mirror_t {
    char bucket [RP_STR_MAX];
    char prefix [RP_STR_MAX];
    char endpoint [RP_STR_MAX];
    char region [64];
    rp_aws_provider_t *provider;
    pthread_mutex_t lock;
    s_client_t *idle [S_POOL];
    int nidle;
};

rp_s3_mirror_t *
rp_s3_mirror_new (const rp_config_t *config, char *err, size_t errlen)
{
    if (!*config->storage_s3_bucket) {
        snprintf (err, errlen, "storage.s3_bucket must be set when storage.backend = s3");
        return NULL;
    }
    rp_aws_provider_t *provider = rp_aws_provider_new (err, errlen);
    if (!provider)
        return NULL;
    rp_s3_mirror_t *self = (rp_s3_mirror_t *) rp_alloc (sizeof (rp_s3_mirror_t));
    snprintf (self->bucket, sizeof self->bucket, "%s", config->storage_s3_bucket);
    snprintf (self->prefix, sizeof self->prefix, "%s", config->storage_s3_prefix);
    snprintf (self->endpoint, sizeof self->endpoint, "%s", rp_aws_endpoint ("S3"));
    snprintf (self->region, sizeof self->region, "%s", rp_aws_region ());
    self->provider = provider;
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

static void
s_client_destroy (s_client_t **client_p)
{
    if (*client_p) {
        rp_s3_destroy (&(*client_p)->client);
        free (*client_p);
        *client_p = NULL;
    }
}

void
rp_s3_mirror_destroy (rp_s3_mirror_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rp_s3_mirror_t *self = *self_p;
    for (int i = 0; i < self->nidle; i++)
        s_client_destroy (&self->idle [i]);
    rp_aws_provider_destroy (&self->provider);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

static bool
s_same_keys (const rp_aws_keys_t *a, const rp_aws_keys_t *b)
{
    return strcmp (a->access_key, b->access_key) == 0 && strcmp (a->secret_key, b->secret_key) == 0
        && strcmp (a->session_token, b->session_token) == 0;
}

//  A client signing with current credentials; attempts 0 = the default,
//  timeout_s 0 = the default. NULL with err.
static s_client_t *
s_client_new (rp_s3_mirror_t *self, const rp_aws_keys_t *keys, int attempts, long timeout_s,
              char *err, size_t errlen)
{
    rp_s3_config_t config = {
        .endpoint = self->endpoint, .region = self->region, .bucket = self->bucket,
        .credentials = { keys->access_key, keys->secret_key,
                         *keys->session_token ? keys->session_token : NULL },
        .attempts = attempts, .timeout_s = timeout_s,
    };
    rp_s3_t *s3 = rp_s3_new (&config, err, errlen);
    if (!s3)
        return NULL;
    s_client_t *client = (s_client_t *) rp_alloc (sizeof (s_client_t));
    client->client = s3;
    client->keys = *keys;
    return client;
}

static s_client_t *
s_take (rp_s3_mirror_t *self, char *err, size_t errlen)
{
    rp_aws_keys_t keys;
    if (rp_aws_credentials_get (self->provider, &keys, err, errlen))
        return NULL;
    s_client_t *client = NULL;
    pthread_mutex_lock (&self->lock);
    while (self->nidle > 0 && !client) {
        client = self->idle [--self->nidle];
        if (!s_same_keys (&client->keys, &keys)) {
            s_client_destroy (&client);
        }
    }
    pthread_mutex_unlock (&self->lock);
    return client ? client : s_client_new (self, &keys, 0, 0, err, errlen);
}

static void
s_give (rp_s3_mirror_t *self, s_client_t *client)
{
    pthread_mutex_lock (&self->lock);
    if (self->nidle < S_POOL) {
        self->idle [self->nidle++] = client;
        client = NULL;
    }
    pthread_mutex_unlock (&self->lock);
    s_client_destroy (&client);
}

int
rp_s3_mirror_key (rp_s3_mirror_t *self, const char *relative, char key [RP_S3_KEY_MAX + 1], char *err,
                  size_t errlen)
{
    size_t len = strlen (self->prefix) + strlen (relative);
    if (len > RP_S3_KEY_MAX) {
        snprintf (err, errlen, "the S3 key %s%.40s... is %zu bytes; S3 takes at most %d", self->prefix, relative,
                  len, RP_S3_KEY_MAX);
        return -1;
    }
    snprintf (key, RP_S3_KEY_MAX + 1, "%s%s", self->prefix, relative);
    return 0;
}

const char *
rp_s3_mirror_bucket (rp_s3_mirror_t *self)
{
    return self->bucket;
}

const char *
rp_s3_mirror_prefix (rp_s3_mirror_t *self)
{
    return self->prefix;
}

//  The key for relative, and a client to use it with (s_give it back);
//  NULL when the key is too long or no client can be had
static s_client_t *
s_take_for (rp_s3_mirror_t *self, const char *relative, char key [RP_S3_KEY_MAX + 1], char *err, size_t errlen)
{
    if (rp_s3_mirror_key (self, relative, key, err, errlen))
        return NULL;
    return s_take (self, err, errlen);
}

int
rp_s3_mirror_put (rp_s3_mirror_t *self, const char *relative, const char *path,
                  const char *content_type, bool maybe_there, char *err, size_t errlen)
{
    char key [RP_S3_KEY_MAX + 1], etag [RP_S3_ETAG_MAX];
    s_client_t *client = s_take_for (self, relative, key, err, errlen);
    if (!client)
        return -1;
    int64_t size = -1;
    struct stat st;
    int64_t local = stat (path, &st) == 0 ? (int64_t) st.st_size : -1;
    int rc = maybe_there ? rp_s3_head (client->client, key, &size, etag, err, errlen) : RP_NOT_FOUND;
    if (rc == 0 && size == local && local >= 0)
        rc = 0;                     //  the same name holds the same bytes
    else
    if (rc == 0 || rc == RP_NOT_FOUND)
        rc = rp_s3_put_file (client->client, key, path, content_type, etag, err, errlen);
    s_give (self, client);
    return rc;
}

int
rp_s3_mirror_get (rp_s3_mirror_t *self, const char *relative, const char *path, int64_t max_bytes,
                  char *err, size_t errlen)
{
    char key [RP_S3_KEY_MAX + 1];
    s_client_t *client = s_take_for (self, relative, key, err, errlen);
    if (!client)
        return -1;
    int rc = rp_s3_get_file (client->client, key, 0, max_bytes >= 0 ? max_bytes : -1, path, err, errlen);
    s_give (self, client);
    return rc;
}

int
rp_s3_mirror_head (rp_s3_mirror_t *self, const char *relative, int64_t *size,
                   char etag [RP_S3_ETAG_MAX], char *err, size_t errlen)
{
    char key [RP_S3_KEY_MAX + 1];
    s_client_t *client = s_take_for (self, relative, key, err, errlen);
    if (!client)
        return -1;
    int rc = rp_s3_head (client->client, key, size, etag, err, errlen);
    s_give (self, client);
    return rc;
}

int
rp_s3_mirror_delete (rp_s3_mirror_t *self, const char *relative, char *err, size_t errlen)
{
    char key [RP_S3_KEY_MAX + 1];
    s_client_t *client = s_take_for (self, relative, key, err, errlen);
    if (!client)
        return -1;
    int rc = rp_s3_delete (client->client, key, err, errlen);
    s_give (self, client);
    return rc;
}

int
rp_s3_mirror_presign (rp_s3_mirror_t *self, const char *method, const char *relative,
                      int expires_s, int64_t content_length, char **url, char *err, size_t errlen)
{
    char key [RP_S3_KEY_MAX + 1];
    s_client_t *client = s_take_for (self, relative, key, err, errlen);
    if (!client)
        return -1;
    int rc = rp_s3_presign (client->client, method, key, expires_s, content_length, url, err, errlen);
    s_give (self, client);
    return rc;
}

int
rp_s3_mirror_ping (rp_s3_mirror_t *self, char *err, size_t errlen)
{
    rp_aws_keys_t keys;
    if (rp_aws_credentials_get (self->provider, &keys, err, errlen))
        return -1;
    //  One try, a short timeout: readiness must answer quickly
    s_client_t *client = s_client_new (self, &keys, 1, 3, err, errlen);
    if (!client)
        return -1;
    char key [RP_S3_KEY_MAX + 1], etag [RP_S3_ETAG_MAX];
    if (rp_s3_mirror_key (self, "readiness-probe", key, err, errlen)) {
        s_client_destroy (&client);
        return -1;
    }
    int64_t size;
    int rc = rp_s3_head (client->client, key, &size, etag, err, errlen);
    s_client_destroy (&client);
    return rc == RP_NOT_FOUND ? 0 : rc;
}

int
rp_s3_mirror_list (rp_s3_mirror_t *self, const char *relative_prefix, const char *start_after, int max_keys,
                   json_t **names, bool *truncated, char *err, size_t errlen)
{
    *names = NULL;
    char prefix [RP_S3_KEY_MAX + 1], after [RP_S3_KEY_MAX + 1] = "";
    if (rp_s3_mirror_key (self, relative_prefix, prefix, err, errlen)
    ||  (start_after && *start_after && rp_s3_mirror_key (self, start_after, after, err, errlen)))
        return -1;
    s_client_t *client = s_take (self, err, errlen);
    if (!client)
        return -1;
    json_t *keys = NULL;
    int rc = rp_s3_list (client->client, prefix, after, max_keys, &keys, truncated, err, errlen);
    s_give (self, client);
    if (rc)
        return rc;
    //  Relative names: the prefix off
    size_t skip = strlen (self->prefix);
    json_t *relative = json_array ();
    size_t i;
    json_t *key;
    json_array_foreach (keys, i, key) {
        const char *text = json_string_value (key);
        if (text && strlen (text) >= skip)
            json_array_append_new (relative, json_string (text + skip));
    }
    json_decref (keys);
    *names = relative;
    return 0;
}

//  ---------------------------------------------------------------------------
//  Streams (s3_mirror.h)

struct _rp_s3_stream_t {
    rp_s3_mirror_t *mirror;             //  borrowed
    s_client_t *client;                 //  the thread's, then finish's
    FILE *file;                         //  the local file, read from
    char key [RP_S3_KEY_MAX + 1];       //  <prefix>streams/<random>, or the declared address
    bool direct;                        //  key is the declared address: no copy at the end
    char content_type [128];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    //  Under lock: what the writer says, and what the thread has done
    int64_t written;                    //  bytes in the file
    int64_t final;                      //  -1 until finish: the whole size
    bool stop;                          //  abort
    int rc;                             //  0: completed, the object is at key
    char err [512];
    char etag [RP_S3_ETAG_MAX];
};

static void *
s_stream_run (void *arg)
{
    rp_s3_stream_t *self = (rp_s3_stream_t *) arg;
    rp_s3_t *s3 = self->client->client;
    char err [512] = "";
    rp_s3_multipart_t *mp = NULL;
    int rc = 0;
    //  Straight to the address: the same bytes may be there already
    //  (content-addressed), and then there is nothing to send
    int64_t there = -1;
    if (self->direct) {
        char etag [RP_S3_ETAG_MAX];
        rc = rp_s3_head (s3, self->key, &there, etag, err, sizeof err);
        if (rc == RP_NOT_FOUND)
            rc = 0, there = -1;
    }
    if (rc == 0 && there < 0) {
        mp = rp_s3_multipart_begin (s3, self->key, self->content_type, err, sizeof err);
        rc = mp ? 0 : -1;
    }
    if (rc == 0 && there >= 0) {
        //  Only the final size is awaited, to compare
        pthread_mutex_lock (&self->lock);
        while (!self->stop && self->final < 0)
            pthread_cond_wait (&self->changed, &self->lock);
        bool same = !self->stop && self->final == there;
        pthread_mutex_unlock (&self->lock);
        if (!same) {
            rc = -1;
            snprintf (err, sizeof err, "s3 object %s is there with %lld bytes, not these", self->key,
                      (long long) there);
        }
    }
    int64_t sent = 0;
    while (rc == 0 && mp) {
        pthread_mutex_lock (&self->lock);
        while (!self->stop && self->final < 0 && self->written - sent < RP_S3_STREAM_PART)
            pthread_cond_wait (&self->changed, &self->lock);
        bool stop = self->stop;
        int64_t final = self->final;
        pthread_mutex_unlock (&self->lock);
        if (stop) {
            rc = -1;
            snprintf (err, sizeof err, "the upload was given up");
            break;
        }
        //  A whole part while more may come; at the end, what is left
        //  (nothing when the last part ended at the last byte)
        int64_t len = final < 0 ? RP_S3_STREAM_PART
                    : final - sent > RP_S3_STREAM_PART ? RP_S3_STREAM_PART : final - sent;
        if (len > 0 && (rc = rp_s3_multipart_part (s3, mp, self->file, sent, len, err, sizeof err)) == 0)
            sent += len;
        if (rc == 0 && final >= 0 && sent == final) {
            rc = rp_s3_multipart_complete (s3, &mp, self->etag, err, sizeof err);
            break;
        }
    }
    if (mp)
        rp_s3_multipart_abort (s3, &mp);
    pthread_mutex_lock (&self->lock);
    self->rc = rc;
    snprintf (self->err, sizeof self->err, "%s", err);
    pthread_mutex_unlock (&self->lock);
    rp_thread_end ();
    return NULL;
}

rp_s3_stream_t *
rp_s3_stream_begin (rp_s3_mirror_t *self, const char *path, const char *content_type, const char *address,
                    char *err, size_t errlen)
{
    unsigned char random [16];
    char relative [200];
    if (address)
        snprintf (relative, sizeof relative, "%s", address);
    else {
        if (getrandom (random, sizeof random, 0) != sizeof random) {
            snprintf (err, errlen, "cannot name a stream: %s", strerror (errno));
            return NULL;
        }
        memcpy (relative, "streams/", 8);
        rp_hex_encode (random, sizeof random, relative + 8);
    }
    rp_s3_stream_t *stream = (rp_s3_stream_t *) rp_alloc (sizeof (rp_s3_stream_t));
    stream->mirror = self;
    stream->direct = address != NULL;
    stream->final = -1;
    snprintf (stream->content_type, sizeof stream->content_type, "%s", content_type);
    stream->file = fopen (path, "rbe");
    if (!stream->file) {
        snprintf (err, errlen, "cannot read %s: %s", path, strerror (errno));
        free (stream);
        return NULL;
    }
    stream->client = s_take_for (self, relative, stream->key, err, errlen);
    if (!stream->client) {
        fclose (stream->file);
        free (stream);
        return NULL;
    }
    pthread_mutex_init (&stream->lock, NULL);
    pthread_cond_init (&stream->changed, NULL);
    int rc = pthread_create (&stream->thread, NULL, s_stream_run, stream);
    if (rc) {
        snprintf (err, errlen, "cannot start a stream's thread: %s", strerror (rc));
        pthread_mutex_destroy (&stream->lock);
        pthread_cond_destroy (&stream->changed);
        s_give (self, stream->client);
        fclose (stream->file);
        free (stream);
        return NULL;
    }
    return stream;
}

void
rp_s3_stream_grow (rp_s3_stream_t *stream, int64_t size)
{
    pthread_mutex_lock (&stream->lock);
    //  The thread waits for a whole part past what it sent: wake it when one more is in
    bool part = size / RP_S3_STREAM_PART > stream->written / RP_S3_STREAM_PART;
    stream->written = size;
    if (part)
        pthread_cond_signal (&stream->changed);
    pthread_mutex_unlock (&stream->lock);
}

//  Wait for the thread, free all but the client (returned). rc and err
//  are the thread's.
static s_client_t *
s_stream_end (rp_s3_stream_t **stream_p, int *rc, char *err, size_t errlen)
{
    rp_s3_stream_t *stream = *stream_p;
    pthread_join (stream->thread, NULL);
    *rc = stream->rc;
    if (err)
        snprintf (err, errlen, "%s", stream->err);
    s_client_t *client = stream->client;
    pthread_mutex_destroy (&stream->lock);
    pthread_cond_destroy (&stream->changed);
    fclose (stream->file);
    free (stream);
    *stream_p = NULL;
    return client;
}

int
rp_s3_stream_finish (rp_s3_stream_t **stream_p, int64_t size, const char *relative, bool maybe_there,
                     char *err, size_t errlen)
{
    rp_s3_stream_t *stream = *stream_p;
    rp_s3_mirror_t *self = stream->mirror;
    char key [RP_S3_KEY_MAX + 1], from [RP_S3_KEY_MAX + 1], etag [RP_S3_ETAG_MAX];
    snprintf (from, sizeof from, "%s", stream->key);
    if (rp_s3_mirror_key (self, relative, key, err, errlen)) {
        rp_s3_stream_abort (stream_p);
        return -1;
    }
    //  Known here: S3 may hold it already (the same name, the same bytes);
    //  asked with a client of the pool while the thread goes on (a stream
    //  straight to its address asks that itself, first)
    if (maybe_there && !stream->direct) {
        int64_t there = -1;
        int rc = rp_s3_mirror_head (self, relative, &there, etag, err, errlen);
        if (rc == 0 && there == size) {
            rp_s3_stream_abort (stream_p);
            return 0;
        }
        if (rc != 0 && rc != RP_NOT_FOUND) {
            rp_s3_stream_abort (stream_p);
            return -1;
        }
    }
    pthread_mutex_lock (&stream->lock);
    stream->final = size;
    pthread_cond_signal (&stream->changed);
    pthread_mutex_unlock (&stream->lock);
    int rc = 0;
    bool direct = stream->direct;
    s_client_t *client = s_stream_end (stream_p, &rc, err, errlen);
    if (rc == 0 && direct && strcmp (from, key)) {
        rc = -1;
        snprintf (err, errlen, "a stream to %s was finished as %s", from, key);
    }
    if (rc == 0 && !direct) {
        rc = rp_s3_copy (client->client, from, key, etag, err, errlen);
        char why [512];
        if (rp_s3_delete (client->client, from, why, sizeof why))
            rp_warn ("s3", "%s (the bucket's lifecycle rule for streams/ will remove it)", why);
    }
    s_give (self, client);
    return rc;
}

void
rp_s3_stream_abort (rp_s3_stream_t **stream_p)
{
    if (!stream_p || !*stream_p)
        return;
    rp_s3_stream_t *stream = *stream_p;
    rp_s3_mirror_t *self = stream->mirror;
    pthread_mutex_lock (&stream->lock);
    stream->stop = true;
    pthread_cond_signal (&stream->changed);
    pthread_mutex_unlock (&stream->lock);
    int rc;
    s_client_t *client = s_stream_end (stream_p, &rc, NULL, 0);
    s_give (self, client);
}
