/*  engine/aws/credentials.h: where the AWS bridges get their credentials.

    The AWS way, in the SDKs' order: the environment (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), else the ECS task role's
    container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
    under http://169.254.170.2, or AWS_CONTAINER_CREDENTIALS_FULL_URI with
    AWS_CONTAINER_AUTHORIZATION_TOKEN), whose temporary credentials are
    fetched again before they expire (five minutes ahead).

    Each user makes its own provider (each SQS bridge actor, each S3
    mirror); a provider may be shared by threads: rp_aws_credentials_get is
    thread-safe and hands out a copy.
*/
#ifndef RP_AWS_CREDENTIALS_H
#define RP_AWS_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RP_AWS_KEY_MAX 256
#define RP_AWS_TOKEN_MAX 4096

typedef struct {
    char access_key [RP_AWS_KEY_MAX];
    char secret_key [RP_AWS_KEY_MAX];
    char session_token [RP_AWS_TOKEN_MAX];      //  "" when none
    time_t expires;                             //  0: does not expire
} rp_aws_keys_t;

typedef struct _rp_aws_provider_t rp_aws_provider_t;

//  A provider from the environment. NULL with err naming what to set when
//  there are no credentials at all, or when the endpoint's answer is unusable.
rp_aws_provider_t *rp_aws_provider_new (char *err, size_t errlen);
void rp_aws_provider_destroy (rp_aws_provider_t **self_p);

//  Current credentials (refreshed when they expire within five minutes). 0,
//  or -1 with err (the previous credentials are kept until they expire).
int rp_aws_credentials_get (rp_aws_provider_t *self, rp_aws_keys_t *keys, char *err, size_t errlen);

//  "environment" or "container endpoint <url>", for logs.
const char *rp_aws_provider_source (rp_aws_provider_t *self);

#endif
