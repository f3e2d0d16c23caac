/*  engine/aws/common.c: see common.h. */
#include "engine/aws/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
rp_aws_split_url (const char *url, char *scheme, size_t scheme_len, char *authority, size_t authority_len)
{
    const char *sep = url ? strstr (url, "://") : NULL;
    if (!sep || strncmp (url, "http", 4) != 0)
        return -1;
    snprintf (scheme, scheme_len, "%.*s", (int) (sep - url), url);
    const char *host = sep + 3;
    snprintf (authority, authority_len, "%.*s", (int) strcspn (host, "/"), host);
    return 0;
}

const char *
rp_aws_region (void)
{
    const char *region = getenv ("AWS_REGION");
    if (!region || !*region)
        region = getenv ("AWS_DEFAULT_REGION");
    return region && *region ? region : "us-east-1";
}

const char *
rp_aws_endpoint (const char *service)
{
    char name [64];
    snprintf (name, sizeof name, "AWS_ENDPOINT_URL_%s", service);
    const char *endpoint = getenv (name);
    if (!endpoint || !*endpoint)
        endpoint = getenv ("AWS_ENDPOINT_URL");
    return endpoint ? endpoint : "";
}

const char *
rp_aws_ca_bundle (void)
{
    const char *bundle = getenv ("AWS_CA_BUNDLE");
    return bundle && *bundle ? bundle : NULL;
}
