/*  engine/aws/s3.h: an S3 client over libcurl, signed with SigV4.

    What the blob store's S3 side (library/s3_mirror.c) needs of S3 and
    nothing more: PUT a file (one
    request below the multipart threshold; above it a multipart upload whose
    parts are retried and which is aborted when it cannot finish), a
    multipart upload a part at a time (an upload streamed to S3 while its
    bytes arrive), a copy inside the bucket, GET a range into a file, HEAD,
    DELETE, LIST a prefix (the sweep of presigned uploads that never
    completed), and presigned URLs for clients.
    Addressing is virtual-hosted (bucket.s3.<region>.amazonaws.com) against
    AWS and path-style (<endpoint>/<bucket>/<key>) against a custom
    endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL), as S3-compatible
    servers expect.

    A client belongs to one thread (it keeps one curl handle, so
    connections are reused). Errors name the operation, the key and S3's
    own code and message.
*/
#ifndef RP_S3_H
#define RP_S3_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/aws/sigv4.h"
#include "engine/status.h"

#define RP_S3_ETAG_MAX 128
#define RP_S3_KEY_MAX 1024              //  S3's own limit on a key, in bytes

typedef struct _rp_s3_t rp_s3_t;

typedef struct {
    const char *endpoint;           //  "http://127.0.0.1:4568"; NULL or "" for AWS itself
    const char *region;             //  "eu-west-3"
    const char *bucket;
    rp_aws_credentials_t credentials;
    int64_t multipart_threshold;    //  bytes; 0 = 16 MiB
    int64_t part_size;              //  bytes; 0 = 8 MiB (S3's minimum is 5 MiB)
    int attempts;                   //  per request (a part, a single PUT); 0 = 4
    long timeout_s;                 //  per request; 0 = 120
} rp_s3_config_t;

//  A client for one bucket. Strings are copied. NULL with err.
rp_s3_t *rp_s3_new (const rp_s3_config_t *config, char *err, size_t errlen);
void rp_s3_destroy (rp_s3_t **self_p);

//  Store a file under key. etag receives the object's ETag (quotes
//  removed). 0, or -1 with err (a multipart upload that failed is aborted).
int rp_s3_put_file (rp_s3_t *self, const char *key, const char *path, const char *content_type,
                    char etag [RP_S3_ETAG_MAX], char *err, size_t errlen);

//  Size and ETag of an object. RP_NOT_FOUND when there is none.
int rp_s3_head (rp_s3_t *self, const char *key, int64_t *size, char etag [RP_S3_ETAG_MAX],
                char *err, size_t errlen);

//  Bytes [first, last] of an object (last -1: to the end) into a file.
//  RP_NOT_FOUND when there is none.
int rp_s3_get_file (rp_s3_t *self, const char *key, int64_t first, int64_t last, const char *path,
                    char *err, size_t errlen);

//  A multipart upload driven a part at a time: begin, then parts in order
//  (each but the last at least 5 MiB, S3's minimum; a FILE range, read
//  twice: once for its SHA-256, once to send), then complete (the
//  object's ETag) or abort. complete and abort free *mp_p; a complete
//  that fails aborts. NULL / -1 with err.
typedef struct _rp_s3_multipart_t rp_s3_multipart_t;
rp_s3_multipart_t *rp_s3_multipart_begin (rp_s3_t *self, const char *key, const char *content_type,
                                          char *err, size_t errlen);
int rp_s3_multipart_part (rp_s3_t *self, rp_s3_multipart_t *mp, FILE *file, int64_t offset, int64_t len,
                          char *err, size_t errlen);
int rp_s3_multipart_complete (rp_s3_t *self, rp_s3_multipart_t **mp_p, char etag [RP_S3_ETAG_MAX],
                              char *err, size_t errlen);
void rp_s3_multipart_abort (rp_s3_t *self, rp_s3_multipart_t **mp_p);

//  Copy an object to another key of the bucket, inside S3 (CopyObject:
//  content type and metadata kept; up to 5 GB). The copy's ETag.
int rp_s3_copy (rp_s3_t *self, const char *from_key, const char *to_key, char etag [RP_S3_ETAG_MAX],
                char *err, size_t errlen);

//  Delete an object (absent is no error).
int rp_s3_delete (rp_s3_t *self, const char *key, char *err, size_t errlen);

//  HTTP requests this client has sent (retries included), for metrics.
uint64_t rp_s3_requests (rp_s3_t *self);

//  A presigned URL for method ("GET", "PUT") on key, valid expires_s;
//  content_length >= 0 is signed (the request must carry exactly that
//  Content-Length: S3 refuses a PUT of any other size). *url is malloc'ed.
int rp_s3_presign (rp_s3_t *self, const char *method, const char *key, int expires_s, int64_t content_length,
                   char **url, char *err, size_t errlen);

//  Up to max_keys (1..1000) keys under prefix, after start_after (NULL or
//  "": from the first), in S3's order (by name): *keys a JSON array of
//  strings (caller decrefs); *truncated when there are more.
int rp_s3_list (rp_s3_t *self, const char *prefix, const char *start_after, int max_keys, json_t **keys,
                bool *truncated, char *err, size_t errlen);

#endif
