/*  engine/aws/common.h: small pieces the AWS clients share: a bounded
    collector for answers, and splitting an endpoint URL. */
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

#endif
