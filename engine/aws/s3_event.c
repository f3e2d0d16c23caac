/*  engine/aws/s3_event.c: S3 event notifications (see s3_event.h). */
#include "engine/aws/s3_event.h"
#include "engine/alloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX 1024                  //  S3's own limit on a key, in bytes

static int
s_hex (char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int
rp_s3_key_decode (const char *key, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *c = key; *c; c++) {
        if (o + 1 >= outlen)
            return -1;
        if (*c == '+')
            out [o++] = ' ';
        else
        if (*c == '%') {
            int high = s_hex (c [1]), low = high < 0 ? -1 : s_hex (c [2]);
            if (low < 0 || (high == 0 && low == 0))
                return -1;
            out [o++] = (char) (high * 16 + low);
            c += 2;
        }
        else
            out [o++] = *c;
    }
    out [o] = 0;
    return 0;
}

void
rp_s3_events_free (rp_s3_object_event_t **events, size_t count)
{
    if (!events || !*events)
        return;
    for (size_t i = 0; i < count; i++) {
        free ((*events) [i].event);
        free ((*events) [i].bucket);
        free ((*events) [i].key);
        free ((*events) [i].etag);
    }
    free (*events);
    *events = NULL;
}

int
rp_s3_events_parse (const char *body, rp_s3_object_event_t **events, size_t *count,
                    char *err, size_t errlen)
{
    *events = NULL;
    *count = 0;
    json_error_t jerr;
    json_t *json = body ? json_loads (body, 0, &jerr) : NULL;
    if (!json_is_object (json)) {
        snprintf (err, errlen, "not an S3 event notification: the message is not a JSON object");
        json_decref (json);
        return -1;
    }
    const char *test = json_string_value (json_object_get (json, "Event"));
    if (test && strcmp (test, "s3:TestEvent") == 0) {
        json_decref (json);
        return 0;
    }
    json_t *records = json_object_get (json, "Records");
    if (!json_is_array (records)) {
        snprintf (err, errlen, "not an S3 event notification: no Records");
        json_decref (json);
        return -1;
    }
    size_t n = json_array_size (records);
    rp_s3_object_event_t *out = n ? (rp_s3_object_event_t *) calloc (n, sizeof (rp_s3_object_event_t)) : NULL;
    size_t kept = 0;
    int rc = 0;
    for (size_t i = 0; i < n && out; i++) {
        json_t *record = json_array_get (records, i);
        const char *name = json_string_value (json_object_get (record, "eventName"));
        const char *source = json_string_value (json_object_get (record, "eventSource"));
        json_t *s3 = json_object_get (record, "s3");
        const char *bucket = json_string_value (json_object_get (json_object_get (s3, "bucket"), "name"));
        json_t *object = json_object_get (s3, "object");
        const char *key = json_string_value (json_object_get (object, "key"));
        if (!name || !bucket || !key || (source && strcmp (source, "aws:s3"))) {
            snprintf (err, errlen, "not an S3 event notification: record %zu has no eventName, bucket or key", i);
            rc = -1;
            break;
        }
        if (strncmp (name, "ObjectCreated:", 14) != 0)
            continue;                   //  removals and the rest are not ours to act on
        char decoded [S_KEY_MAX + 1];
        if (strlen (key) > 3 * S_KEY_MAX || rp_s3_key_decode (key, decoded, sizeof decoded)) {
            snprintf (err, errlen, "S3 event record %zu: the key \"%.80s\" is not a valid encoded key", i, key);
            rc = -1;
            break;
        }
        json_t *size = json_object_get (object, "size");
        const char *etag = json_string_value (json_object_get (object, "eTag"));
        out [kept].event = rp_strdup (name);
        out [kept].bucket = rp_strdup (bucket);
        out [kept].key = rp_strdup (decoded);
        out [kept].etag = rp_strdup (etag ? etag : "");
        out [kept].size = json_is_integer (size) ? (int64_t) json_integer_value (size) : -1;
        kept++;
    }
    json_decref (json);
    if (rc || (n && !out)) {
        rp_s3_events_free (&out, kept);
        if (!rc)
            snprintf (err, errlen, "out of memory");
        return -1;
    }
    if (kept == 0)
        free (out);
    else
        *events = out;
    *count = kept;
    return (int) kept;
}
