/*  engine/aws/common.h: small pieces the AWS clients share: splitting an
    endpoint URL, and the AWS settings of the environment. (Their answers
    are collected in engine/buf.h's bounded buffers.) */
#ifndef RP_AWS_COMMON_H
#define RP_AWS_COMMON_H

#include <stddef.h>

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

//  The CA bundle to verify AWS's TLS certificates with: AWS_CA_BUNDLE (the
//  AWS SDKs' variable), else NULL: libcurl's built-in default (Debian's
//  /etc/ssl/certs/ca-certificates.crt). The Lambda package's bootstrap sets
//  it on hosts without that file (Amazon Linux: /etc/pki/tls/certs/ca-bundle.crt).
//  Each client sets it as CURLOPT_CAINFO on every request.
const char *rp_aws_ca_bundle (void);

#endif
