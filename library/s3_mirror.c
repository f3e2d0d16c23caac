/*  library/s3_mirror.c: see s3_mirror.h.

    The pool: at most S_POOL idle clients kept; a call takes an idle one
    whose credentials are still current, or makes one. Credentials are
    compared by access key and session token, so a refresh from the ECS
    endpoint retires the old clients as they come back.
*/
#include "library/s3_mirror.h"
#include "engine/alloc.h"
#include "engine/aws/common.h"
#include "engine/aws/credentials.h"
#include "engine/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
