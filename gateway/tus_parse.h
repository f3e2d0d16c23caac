/*  gateway/tus_parse.h: the parsers of tus's request headers (tus.c).

    Declared apart so the tus fuzz target (tests/fuzz/tus.c) can call them
    on any text; the rest of the gateway goes through tus.c's entry points
    (gateway_private.h). Every header comes from the client: each parser
    refuses what it does not take and never reads past the text.
*/
#ifndef RP_TUS_PARSE_H
#define RP_TUS_PARSE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/gateway_private.h"

//  What Upload-Metadata may set
typedef struct {
    char filename [RP_GW_FILENAME_MAX + 1];     //  "filename", or else "name": cleaned
    char batch_id [RP_ID_MAX];
    char tags [1024];
} rp_tus_metadata_t;

//  Upload-Length, Upload-Offset, Content-Length: digits only, at most 19
//  of them. True with *value, or false (and *value untouched).
bool rp_tus_parse_size (const char *text, int64_t *value);

//  Upload-Metadata: "key base64,key base64,key" (text may be NULL: none).
//  0 with *meta filled (absent keys empty), or -1 with a reason in why.
int rp_tus_parse_metadata (const char *text, rp_tus_metadata_t *meta, char *why, size_t whylen);

//  Upload-Checksum: "<algorithm> <base64 digest>", sha1 or sha256. 0 with
//  the algorithm in *md and the digest in expected (*expected_len bytes),
//  1 when text is NULL (no checksum asked), or -1 with a reason in why.
int rp_tus_parse_checksum (const char *text, const EVP_MD **md, unsigned char expected [EVP_MAX_MD_SIZE],
                           size_t *expected_len, char *why, size_t whylen);

#endif
