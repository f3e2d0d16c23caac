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
*/
#include "gateway/gateway_private.h"
#include <czmq.h>

#include <string.h>

#define S_CSP "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; " \
              "frame-ancestors 'none'; form-action 'self'"

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

static void
s_headers (struct MHD_Response *response, const rp_web_file_t *file)
{
    MHD_add_response_header (response, "ETag", file->etag);
    MHD_add_response_header (response, "Cache-Control", file->immutable
                             ? "public, max-age=31536000, immutable" : "no-cache");
    MHD_add_response_header (response, "Content-Security-Policy", S_CSP);
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
