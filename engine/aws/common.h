/*  engine/aws/common.h: small pieces the AWS clients share: a bounded
    collector for answers, splitting an endpoint URL, and the AWS settings
    of the environment. */
#ifndef RP_AWS_COMMON_H
#define RP_AWS_COMMON_H

#include <stdbool.h>
#include <stddef.h>

//  An answer collected from curl, NUL-terminated, at most max bytes: past
//  that the transfer is cut (too_big set). Free data when done.
typedef struct {
    char *data;
    size_t len;
    size_t max;
    bool too_big;
} rp_aws_body_t;

//  A CURLOPT_WRITEFUNCTION for an rp_aws_body_t (CURLOPT_WRITEDATA).
size_t rp_aws_body_collect (char *data, size_t size, size_t n, void *arg);

//  "http(s)://authority[/...]" into scheme and authority (host[:port]).
//  -1 when url is not an http(s) URL.
int rp_aws_split_url (const char *url, char *scheme, size_t scheme_len, char *authority,
                      size_t authority_len);

//  The AWS settings of the environment, the SDKs' way: the region
//  (AWS_REGION, else AWS_DEFAULT_REGION, else "us-east-1") and a service's
//  endpoint override (AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL;
//  "" for AWS itself). service is "S3" or "SQS".
const char *rp_aws_region (void);
const char *rp_aws_endpoint (const char *service);

#endif
