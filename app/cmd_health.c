/*  app/cmd_health.c: `rapidphoto health [--config FILE] [URL]`, the
    container's HEALTHCHECK: one GET of this engine's /healthz, exit 0 when
    it answers 200, else 1, with one line either way.

    Without URL the address comes from http.listen, as `serve` reads it
    (the same --config and RAPIDPHOTO_* environment, so a container's own
    settings): a wildcard host (0.0.0.0, *, empty) is asked on 127.0.0.1.
    It needs no tool in the image beyond the binary (no curl, no shell).
*/
#include "engine/buf.h"
#include "app/commands.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>            //  optind

//  A health answer is a few bytes; a larger one is read and dropped
#define S_BODY_MAX 1024
//  Docker's default HEALTHCHECK timeout is 30 s; answer well within it
#define S_TIMEOUT_MS 5000L
#define S_CONNECT_TIMEOUT_MS 2000L

//  http://HOST:PORT/healthz for http.listen "HOST:PORT"; -1 with the
//  reason in err when it is not that (the gateway refuses it too).
static int
s_url_from_listen (const char *listen, char *url, size_t urlsize, char *err, size_t errlen)
{
    char host [256];
    snprintf (host, sizeof host, "%s", listen);
    char *colon = strrchr (host, ':');
    long port = 0;
    char *end = NULL;
    if (colon) {
        *colon = 0;
        port = strtol (colon + 1, &end, 10);
    }
    if (!colon || end == colon + 1 || !end || *end || port < 1 || port > 65535) {
        snprintf (err, errlen, "http.listen \"%s\" is not host:port with a port from 1 to 65535", listen);
        return -1;
    }
    //  A wildcard listens on loopback too; anything else is asked where it listens
    const char *ask = host;
    if (!*host || streq (host, "*") || streq (host, "0.0.0.0"))
        ask = "127.0.0.1";
    snprintf (url, urlsize, "http://%s:%ld/healthz", ask, port);
    return 0;
}

int
rp_cmd_health (int argc, char **argv)
{
    const char *config_path = NULL;
    int rc = rp_cmd_parse_config ("health", argc, argv, &config_path, 1);
    if (rc)
        return rc;
    char url [RP_STR_MAX + 32];
    if (optind < argc) {
        const char *given = argv [optind];
        if (strncmp (given, "http://", 7) != 0 && strncmp (given, "https://", 8) != 0)
            return rp_usage_error ("health", "URL must start with http:// or https://, not \"%s\"", given);
        if (strlen (given) >= sizeof url)
            return rp_usage_error ("health", "URL is longer than %zu characters", sizeof url - 1);
        snprintf (url, sizeof url, "%s", given);
    }
    else {
        rp_config_t config;
        if (rp_cmd_load_config ("health", config_path, &config))
            return 1;
        char err [RP_STR_MAX + 128];
        if (s_url_from_listen (config.http_listen, url, sizeof url, err, sizeof err)) {
            fprintf (stderr, "rapidphoto health: %s\n", err);
            return 1;
        }
    }
    rp_cmd_log_to_stderr ();

    //  One thread, no other curl user in this process: global init here
    if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf (stderr, "rapidphoto health: cannot start libcurl\n");
        return 1;
    }
    CURL *curl = curl_easy_init ();
    if (!curl) {
        fprintf (stderr, "rapidphoto health: cannot start libcurl\n");
        curl_global_cleanup ();
        return 1;
    }
    rp_buf_t body;
    rp_buf_init (&body, S_BODY_MAX);
    char why [CURL_ERROR_SIZE] = "";
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, S_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, S_CONNECT_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "rapidphoto-health/" RP_VERSION);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, why);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, rp_buf_collect_head);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &body);
    CURLcode code = curl_easy_perform (curl);
    long status = 0;
    if (code == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (curl);
    rp_buf_free (&body);
    curl_global_cleanup ();

    if (code != CURLE_OK) {
        fprintf (stderr, "rapidphoto health: %s: %s\n", url, *why ? why : curl_easy_strerror (code));
        return 1;
    }
    if (status != 200) {
        fprintf (stderr, "rapidphoto health: %s answered %ld\n", url, status);
        return 1;
    }
    printf ("healthy: %s answered 200\n", url);
    return 0;
}
