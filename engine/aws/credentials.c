/*  engine/aws/credentials.c: AWS credentials from the environment or the
    ECS container credentials endpoint (see credentials.h).
*/
#include "engine/aws/credentials.h"
#include "engine/aws/common.h"
#include "engine/buf.h"
#include "engine/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ECS_HOST "http://169.254.170.2"
#define S_REFRESH_AHEAD_S 300
//  The endpoint answers one JSON object of three keys and a time (a
//  session token is at most a few KiB): 64 KiB is far more than it sends
#define S_ANSWER_MAX (64 * 1024)

struct _rp_aws_provider_t {
    pthread_mutex_t lock;
    char source [600];
    char url [512];                     //  the endpoint; "" for the environment
    char authorization [1024];          //  the endpoint's Authorization header; "" when none
    rp_aws_keys_t keys;
};

//  "2026-11-29T12:34:56Z" -> seconds since the epoch; 0 when malformed.
static time_t
s_parse_time (const char *text)
{
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    const char *end = text ? strptime (text, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end)
        return 0;
    return timegm (&tm);
}

static int
s_copy (char *out, size_t outlen, const char *value, const char *name, char *err, size_t errlen)
{
    if (!value || !*value || strlen (value) >= outlen) {
        snprintf (err, errlen, "the container credentials endpoint's answer has no usable %s", name);
        return -1;
    }
    snprintf (out, outlen, "%s", value);
    return 0;
}

//  Fetch from the endpoint into keys. 0, or -1 with err.
static int
s_fetch (rp_aws_provider_t *self, rp_aws_keys_t *keys, char *err, size_t errlen)
{
    CURL *curl = curl_easy_init ();
    if (!curl) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    rp_buf_t body;
    rp_buf_init (&body, S_ANSWER_MAX);
    struct curl_slist *list = NULL;
    if (*self->authorization) {
        char header [1100];
        snprintf (header, sizeof header, "Authorization: %s", self->authorization);
        list = curl_slist_append (list, header);
    }
    curl_easy_setopt (curl, CURLOPT_URL, self->url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 2L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, 5L);
    if (rp_aws_ca_bundle ())
        curl_easy_setopt (curl, CURLOPT_CAINFO, rp_aws_ca_bundle ());
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, rp_buf_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (list);
    curl_easy_cleanup (curl);
    if (rc != CURLE_OK || status != 200) {
        if (rp_buf_error (&body) == EMSGSIZE)
            snprintf (err, errlen, "the container credentials endpoint %s answered over %d bytes", self->url,
                      S_ANSWER_MAX);
        else
        if (rc != CURLE_OK)
            snprintf (err, errlen, "cannot reach the container credentials endpoint %s: %s", self->url,
                      rp_buf_error (&body) ? strerror (rp_buf_error (&body)) : curl_easy_strerror (rc));
        else
            snprintf (err, errlen, "the container credentials endpoint %s answered %ld", self->url, status);
        rp_buf_free (&body);
        return -1;
    }
    json_error_t jerr;
    json_t *json = json_loads (rp_buf_data (&body), 0, &jerr);
    rp_buf_free (&body);
    if (!json_is_object (json)) {
        snprintf (err, errlen, "the container credentials endpoint %s did not answer JSON", self->url);
        json_decref (json);
        return -1;
    }
    rp_aws_keys_t fresh;
    memset (&fresh, 0, sizeof fresh);
    int result = 0;
    if (s_copy (fresh.access_key, sizeof fresh.access_key,
                json_string_value (json_object_get (json, "AccessKeyId")), "AccessKeyId", err, errlen)
    ||  s_copy (fresh.secret_key, sizeof fresh.secret_key,
                json_string_value (json_object_get (json, "SecretAccessKey")), "SecretAccessKey", err, errlen))
        result = -1;
    const char *token = json_string_value (json_object_get (json, "Token"));
    if (result == 0 && token && s_copy (fresh.session_token, sizeof fresh.session_token, token, "Token", err, errlen))
        result = -1;
    const char *expiration = json_string_value (json_object_get (json, "Expiration"));
    fresh.expires = s_parse_time (expiration);
    if (result == 0 && expiration && !fresh.expires) {
        snprintf (err, errlen, "the container credentials endpoint's Expiration \"%.40s\" is not a time", expiration);
        result = -1;
    }
    json_decref (json);
    if (result == 0)
        *keys = fresh;
    return result;
}

rp_aws_provider_t *
rp_aws_provider_new (char *err, size_t errlen)
{
    rp_aws_provider_t *self = (rp_aws_provider_t *) calloc (1, sizeof (rp_aws_provider_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    const char *access = getenv ("AWS_ACCESS_KEY_ID");
    const char *secret = getenv ("AWS_SECRET_ACCESS_KEY");
    const char *relative = getenv ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = getenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (access && *access) {
        const char *token = getenv ("AWS_SESSION_TOKEN");
        if (!secret || !*secret) {
            snprintf (err, errlen, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
            rp_aws_provider_destroy (&self);
            return NULL;
        }
        if (strlen (access) >= RP_AWS_KEY_MAX || strlen (secret) >= RP_AWS_KEY_MAX
        ||  (token && strlen (token) >= RP_AWS_TOKEN_MAX)) {
            snprintf (err, errlen, "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN is implausibly long");
            rp_aws_provider_destroy (&self);
            return NULL;
        }
        snprintf (self->keys.access_key, sizeof self->keys.access_key, "%s", access);
        snprintf (self->keys.secret_key, sizeof self->keys.secret_key, "%s", secret);
        snprintf (self->keys.session_token, sizeof self->keys.session_token, "%s", token ? token : "");
        snprintf (self->source, sizeof self->source, "environment");
        return self;
    }
    if (relative && *relative)
        snprintf (self->url, sizeof self->url, "%s%s", S_ECS_HOST, relative);
    else
    if (full && *full)
        snprintf (self->url, sizeof self->url, "%s", full);
    else {
        snprintf (err, errlen, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run "
                  "with an ECS task role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)");
        rp_aws_provider_destroy (&self);
        return NULL;
    }
    const char *authorization = getenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (authorization)
        snprintf (self->authorization, sizeof self->authorization, "%s", authorization);
    snprintf (self->source, sizeof self->source, "container endpoint %s", self->url);
    if (s_fetch (self, &self->keys, err, errlen)) {
        rp_aws_provider_destroy (&self);
        return NULL;
    }
    return self;
}

void
rp_aws_provider_destroy (rp_aws_provider_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rp_aws_provider_t *self = *self_p;
    memset (&self->keys, 0, sizeof self->keys);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
rp_aws_credentials_get (rp_aws_provider_t *self, rp_aws_keys_t *keys, char *err, size_t errlen)
{
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    time_t now = time (NULL);
    if (*self->url && self->keys.expires && self->keys.expires - now < S_REFRESH_AHEAD_S) {
        rp_aws_keys_t fresh;
        if (s_fetch (self, &fresh, err, errlen) == 0) {
            self->keys = fresh;
            rp_info ("aws", "credentials refreshed from %s, valid until %lld", self->source,
                     (long long) fresh.expires);
        }
        else
        if (self->keys.expires <= now)
            rc = -1;                    //  nothing valid left
        else
            rp_warn ("aws", "%s; the current credentials hold for %lld s more", err,
                     (long long) (self->keys.expires - now));
    }
    if (rc == 0)
        *keys = self->keys;
    pthread_mutex_unlock (&self->lock);
    return rc;
}

const char *
rp_aws_provider_source (rp_aws_provider_t *self)
{
    return self->source;
}
