/*  gateway/static.c: the web app, served at / from files compiled into the
    binary (cmake/embed_web.cmake builds the table rp_web_files).

    A URL either is one of the table's paths, exactly, or is 404: nothing is
    ever read from the disk, so no path (dots, encoded slashes, NULs) can
    reach another file. `/` is /index.html. Fingerprinted assets
    (/assets/<build>/...) are cached for a year as immutable; index.html, the
    service worker and the manifest are revalidated on every load (no-cache)
    and answer 304 to a matching If-None-Match, so a new build reaches a
    browser on its next visit. Every answer carries a Content-Security-Policy
    that allows only this origin (and blob: images, which the app makes from
    authenticated fetches of thumbnails and previews).

    In S3 mode downloads answer 302 to a presigned GET on the bucket, and the
    app's fetch() follows it there (dropping its Authorization header, as
    browsers do across origins), so connect-src also allows the bucket's
    origin. It is taken from a presigned URL, never written out here: what
    the redirects name is what the policy allows (https://<bucket>.s3.
    <region>.amazonaws.com against AWS, the endpoint of AWS_ENDPOINT_URL_S3
    otherwise). The bucket must answer CORS for the app's origin (README).
*/
#include "engine/log.h"
#include "gateway/gateway_private.h"
#include <czmq.h>

#include <ctype.h>
#include <pthread.h>
#include <string.h>

#define S_CSP_HEAD "default-src 'self'; img-src 'self' blob:; "
#define S_CSP_TAIL "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
#define S_CSP S_CSP_HEAD S_CSP_TAIL

//  Guards rp_gw->csp while it is worked out; once set it never changes
static pthread_mutex_t s_csp_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct {
    const char *extension;
    const char *type;
} s_types [] = {
    { ".html", "text/html; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },
    { ".mjs", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },
    { ".webmanifest", "application/manifest+json" },
    { ".json", "application/json" },
    { ".svg", "image/svg+xml" },
    { ".png", "image/png" },
    { ".ico", "image/x-icon" },
    { ".webp", "image/webp" },
    { ".txt", "text/plain; charset=utf-8" },
};

static const char *
s_content_type (const char *path)
{
    size_t len = strlen (path);
    for (size_t i = 0; i < sizeof s_types / sizeof s_types [0]; i++) {
        size_t n = strlen (s_types [i].extension);
        if (len > n && streq (path + len - n, s_types [i].extension))
            return s_types [i].type;
    }
    return "application/octet-stream";
}

static const rp_web_file_t *
s_find (const char *url)
{
    if (streq (url, "/"))
        url = "/index.html";
    for (size_t i = 0; i < rp_web_files_count; i++)
        if (streq (rp_web_files [i].path, url))
            return &rp_web_files [i];
    return NULL;
}

//  True when If-None-Match names this ETag: "*", or one entry of the
//  comma-separated list, weak (W/"...") or strong.
static bool
s_not_modified (struct MHD_Connection *c, const char *etag)
{
    const char *match = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "If-None-Match");
    if (!match)
        return false;
    size_t etag_len = strlen (etag);
    const char *p = match;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp (p, "W/", 2) == 0)
            p += 2;
        size_t n = strcspn (p, ",");
        while (n > 0 && (p [n - 1] == ' ' || p [n - 1] == '\t'))
            n--;
        if (n == etag_len && memcmp (p, etag, n) == 0)
            return true;
        p += strcspn (p, ",");
    }
    return false;
}

//  The origin (scheme://authority) of an absolute http(s) URL into origin.
//  -1 when url is not one, or its authority holds a character that has no
//  place in a CSP source (only letters, digits and . - : [ ] do).
static int
s_origin (const char *url, char *origin, size_t size)
{
    const char *authority = NULL;
    if (strncmp (url, "https://", 8) == 0)
        authority = url + 8;
    else
    if (strncmp (url, "http://", 7) == 0)
        authority = url + 7;
    else
        return -1;
    size_t n = strcspn (authority, "/?#");
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum ((unsigned char) authority [i]) && !strchr (".-:[]", authority [i]))
            return -1;
    size_t len = (size_t) (authority - url) + n;
    if (len >= size)
        return -1;
    memcpy (origin, url, len);
    origin [len] = 0;
    return 0;
}

//  The policy: S_CSP on disk; in S3 mode the same with the bucket's origin
//  in connect-src, worked out on first use from a presigned GET of a probe
//  key (signing only, nothing is sent). Signing needs credentials, which
//  from the ECS endpoint may not be there yet: until it succeeds the answer
//  is S_CSP (downloads blocked, nothing else), with one warning, and the
//  next request tries again.
static const char *
s_csp (void)
{
    rp_s3_mirror_t *s3 = rp_blobstore_s3 (rp_gw->blobs);
    if (!s3)
        return S_CSP;
    pthread_mutex_lock (&s_csp_lock);
    if (!*rp_gw->csp) {
        char err [256] = "", origin [256];
        char *url = NULL;
        if (rp_s3_mirror_presign (s3, "GET", "csp-probe", 60, -1, &url, err, sizeof err) == 0) {
            if (s_origin (url, origin, sizeof origin) == 0) {
                snprintf (rp_gw->csp, sizeof rp_gw->csp,
                          S_CSP_HEAD "connect-src 'self' %s; " S_CSP_TAIL, origin);
                rp_info ("gateway", "the web app may fetch from the bucket's origin %s (CSP connect-src)",
                         origin);
            }
            else
                snprintf (err, sizeof err, "a presigned URL names no origin a CSP can allow: %.*s",
                          (int) (strcspn (url, "?") < 120 ? strcspn (url, "?") : 120), url);
            free (url);
        }
        if (!*rp_gw->csp && !rp_gw->csp_warned) {
            rp_warn ("gateway", "the web app's CSP does not allow the bucket yet, so its downloads "
                     "are blocked in browsers: %s", err);
            rp_gw->csp_warned = true;
        }
    }
    const char *csp = *rp_gw->csp ? rp_gw->csp : S_CSP;
    pthread_mutex_unlock (&s_csp_lock);
    return csp;
}

static void
s_headers (struct MHD_Response *response, const rp_web_file_t *file)
{
    MHD_add_response_header (response, "ETag", file->etag);
    MHD_add_response_header (response, "Cache-Control", file->immutable
                             ? "public, max-age=31536000, immutable" : "no-cache");
    MHD_add_response_header (response, "Content-Security-Policy", s_csp ());
    MHD_add_response_header (response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header (response, "X-Frame-Options", "DENY");
}

enum MHD_Result
rp_static_route (struct MHD_Connection *c, rp_req_t *req, const char *method, const char *url)
{
    snprintf (req->route, sizeof req->route, "%s static", method);
    if (!streq (method, "GET") && !streq (method, "HEAD"))
        return rp_gw_problem_h (c, req, 405, "Method not allowed",
                                "the web app's files answer GET and HEAD only", "Allow", "GET, HEAD");
    const rp_web_file_t *file = s_find (url);
    if (!file)
        return rp_gw_problem (c, req, 404, "Not found", "no such resource");
    struct MHD_Response *response;
    int status = 200;
    if (s_not_modified (c, file->etag)) {
        response = MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT);
        status = 304;
    }
    else {
        response = MHD_create_response_from_buffer (file->size, (void *) file->data,
                                                    MHD_RESPMEM_PERSISTENT);
        if (response)
            MHD_add_response_header (response, "Content-Type", s_content_type (file->path));
        req->bytes_out = streq (method, "HEAD") ? 0 : (int64_t) file->size;
    }
    if (!response)
        return MHD_NO;
    s_headers (response, file);
    return rp_gw_queue (c, req, status, response);
}
