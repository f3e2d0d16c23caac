/*  engine/aws/s3_event.h: S3 event notifications, as S3 delivers them to
    SQS, read into the objects they announce.

    A message body is {"Records":[{"eventName":"ObjectCreated:Put","s3":{
    "bucket":{"name":...},"object":{"key":...,"size":...,"eTag":...}}}...]}
    with keys URL-encoded ('+' for a space, %XX for the rest), or S3's
    {"Event":"s3:TestEvent",...} sent when notifications are configured,
    which carries no object.
*/
#ifndef RP_S3_EVENT_H
#define RP_S3_EVENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *event;                    //  "ObjectCreated:Put", ...
    char *bucket;
    char *key;                      //  decoded
    char *etag;                     //  may be ""
    int64_t size;                   //  -1 when absent
} rp_s3_object_event_t;

//  Parse a message body. Returns the number of ObjectCreated:* records
//  (in *events, caller frees with rp_s3_events_free), 0 for a test event or
//  a message with no object created, -1 with err when the body is not an S3
//  notification at all.
int rp_s3_events_parse (const char *body, rp_s3_object_event_t **events, size_t *count,
                        char *err, size_t errlen);
void rp_s3_events_free (rp_s3_object_event_t **events, size_t count);

//  Decode an S3 event key ('+' -> ' ', %XX -> byte) into out. -1 when it
//  is malformed (a bad escape, a NUL byte) or does not fit.
int rp_s3_key_decode (const char *key, char *out, size_t outlen);

#endif
