/*  tests/test_tus.c: resumable uploads (tus 1.0) through the real `serve`.

    The protocol's edge cases one by one (each must get its status, store
    nothing it should not and leave the server serving), a PATCH cut off
    mid-body keeping what arrived, and one upload served in turn by two
    engines sharing PostgreSQL and storage, including a lease taken over
    from an engine killed mid-PATCH. The client scenarios with a real tus
    client (tus-js-client) are in tests/tus/tus_client.mjs.
*/
#include <criterion/criterion.h>
#include <czmq.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/server.h"
#include "tests/support/testdata.h"

#define MiB (1024 * 1024)

//  ---------------------------------------------------------------------------
//  Helpers

typedef struct {
    rp_test_server_t *server;
    char *token;
} s_client_t;

//  A tus request: headers as "Name: value" (NULL-terminated), Tus-Resumable
//  added unless no_version.
static long
s_tus (s_client_t *client, const char *method, const char *path, const char *const *headers,
       const void *body, size_t len, bool no_version, rp_test_reply_t *reply)
{
    const char *all [16];
    int n = 0;
    if (!no_version)
        all [n++] = "Tus-Resumable: 1.0.0";
    for (int i = 0; headers && headers [i] && n < 15; i++)
        all [n++] = headers [i];
    all [n] = NULL;
    return rp_test_request (client->server, method, path, client->token, all, body, len, NULL, reply);
}

static int64_t
s_header_int (const rp_test_reply_t *reply, const char *name)
{
    const char *value = rp_test_header_value (reply, name);
    return value ? strtoll (value, NULL, 10) : -1;
}

//  POST /api/v1/tus; the upload's path ("/api/v1/tus/<id>") into path.
static void
s_create (s_client_t *client, int64_t length, const char *metadata, char *path, size_t size)
{
    char length_header [64], meta_header [512];
    snprintf (length_header, sizeof length_header, "Upload-Length: %lld", (long long) length);
    snprintf (meta_header, sizeof meta_header, "Upload-Metadata: %s", metadata ? metadata : "filename cC5qcGc=");
    const char *headers [] = { length_header, meta_header, NULL };
    rp_test_reply_t reply;
    cr_assert_eq (s_tus (client, "POST", "/api/v1/tus", headers, NULL, 0, false, &reply), 201, "%s", reply.body);
    const char *location = rp_test_header_value (&reply, "Location");
    cr_assert_not_null (location);
    cr_assert (strncmp (location, "/api/v1/tus/", 12) == 0, "%s", location);
    snprintf (path, size, "%s", location);
    cr_assert_not_null (rp_test_header_value (&reply, "Upload-Expires"));
    rp_test_reply_free (&reply);
}

static long
s_patch (s_client_t *client, const char *path, int64_t offset, const void *data, size_t len,
         const char *extra, rp_test_reply_t *reply)
{
    char offset_header [64];
    snprintf (offset_header, sizeof offset_header, "Upload-Offset: %lld", (long long) offset);
    const char *headers [] = { offset_header, "Content-Type: application/offset+octet-stream", extra, NULL };
    return s_tus (client, "PATCH", path, headers, data, len, false, reply);
}

static int64_t
s_offset (s_client_t *client, const char *path)
{
    rp_test_reply_t reply;
    cr_assert_eq (s_tus (client, "HEAD", path, NULL, NULL, 0, false, &reply), 200);
    int64_t offset = s_header_int (&reply, "Upload-Offset");
    rp_test_reply_free (&reply);
    return offset;
}

static void
s_checksum (const char *algorithm, const void *data, size_t len, char *out, size_t outlen)
{
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_Digest (data, len, digest, &digest_len, streq (algorithm, "sha1") ? EVP_sha1 () : EVP_sha256 (), NULL);
    unsigned char encoded [128];
    EVP_EncodeBlock (encoded, digest, (int) digest_len);
    snprintf (out, outlen, "Upload-Checksum: %s %s", algorithm, encoded);
}

//  A photo of about `size` bytes: a real JPEG padded with APP15 segments of
//  pseudo-random bytes (decoders skip them), unique per seed.
static char *
s_photo_bytes (rp_test_server_t *server, size_t size, int seed, size_t *len)
{
    char path [600];
    rp_test_server_photo (server, "base.jpg", seed, path, sizeof path);
    size_t base_len = 0;
    char *base = rp_test_read_file (path, &base_len);
    char *out = malloc (size + base_len + 65536);
    memcpy (out, base, 2);
    size_t at = 2;
    uint32_t x = (uint32_t) seed * 2654435761u + 1;
    while (at + 4 + base_len < size) {
        size_t chunk = size - at - base_len - 4;
        if (chunk > 65533)
            chunk = 65533;
        out [at++] = (char) 0xFF;
        out [at++] = (char) 0xEF;
        out [at++] = (char) ((chunk + 2) >> 8);
        out [at++] = (char) ((chunk + 2) & 0xFF);
        for (size_t i = 0; i < chunk; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            out [at++] = (char) x;
        }
    }
    memcpy (out + at, base + 2, base_len - 2);
    at += base_len - 2;
    free (base);
    *len = at;
    return out;
}

//  The original of a photo must be exactly `data`.
static void
s_expect_original (s_client_t *client, const char *photo_id, const char *data, size_t len)
{
    char *status = rp_test_wait_final (client->server, client->token, photo_id, 60000);
    cr_assert_str_eq (status, "complete");
    free (status);
    char path [128];
    snprintf (path, sizeof path, "/api/v1/photos/%s/original", photo_id);
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (client->server, "GET", path, client->token, NULL, NULL, 0, NULL, &reply), 200);
    cr_assert_eq (reply.len, len, "stored %zu bytes, sent %zu", reply.len, len);
    cr_assert (memcmp (reply.body, data, len) == 0, "the stored bytes differ from the bytes sent");
    rp_test_reply_free (&reply);
}

//  A PATCH over a raw socket that sends `sent` of its `declared` body bytes
//  and stays open: the caller closes it (a client that went away) or keeps
//  it (a request in flight). Returns the socket.
static int
s_patch_open (rp_test_server_t *server, const char *token, const char *path, int64_t offset,
              const char *data, size_t declared, size_t sent)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) server->port) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    cr_assert_eq (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    char head [4096];
    int n = snprintf (head, sizeof head,
                      "PATCH %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                      "Tus-Resumable: 1.0.0\r\nUpload-Offset: %lld\r\n"
                      "Content-Type: application/offset+octet-stream\r\nContent-Length: %zu\r\n\r\n",
                      path, token, (long long) offset, declared);
    cr_assert_eq (write (fd, head, (size_t) n), n);
    for (size_t done = 0; done < sent;) {
        ssize_t w = write (fd, data + done, sent - done);
        cr_assert_gt (w, 0);
        done += (size_t) w;
    }
    return fd;
}

//  The user's event stream from the start, as much as arrives in a second.
static char *
s_events (s_client_t *client)
{
    char url [128];
    snprintf (url, sizeof url, "%s/api/v1/events?last_event_id=0", client->server->base);
    rp_test_reply_t reply;
    //  Ends by the timeout: a stream does not end
    rp_test_http (&(rp_test_http_t) { .url = url, .token = client->token, .timeout_ms = 1500 }, &reply);
    return rp_test_reply_take_body (&reply);
}

static const char *
s_id_of (const char *path)
{
    return strrchr (path, '/') + 1;
}

//  ---------------------------------------------------------------------------

Test (tus, protocol_edge_cases, .timeout = 180)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "tus-edges" });
    s_client_t alice = { &server, rp_test_login (&server, "alice") };
    s_client_t bob = { &server, rp_test_login (&server, "bob") };
    s_client_t nobody = { &server, NULL };
    rp_test_reply_t reply;

    //  Discovery needs no token
    cr_assert_eq (s_tus (&nobody, "OPTIONS", "/api/v1/tus", NULL, NULL, 0, true, &reply), 204);
    cr_assert_str_eq (rp_test_header_value (&reply, "Tus-Version"), "1.0.0");
    const char *extensions = rp_test_header_value (&reply, "Tus-Extension");
    cr_assert_not_null (extensions);
    const char *wanted [] = { "creation", "creation-with-upload", "creation-defer-length", "expiration",
                              "checksum", "termination" };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted [0]; i++)
        cr_assert_not_null (strstr (extensions, wanted [i]), "Tus-Extension lacks %s", wanted [i]);
    cr_assert_str_eq (rp_test_header_value (&reply, "Tus-Checksum-Algorithm"), "sha1,sha256");
    cr_assert_eq (s_header_int (&reply, "Tus-Max-Size"), 8 << 20);
    rp_test_reply_free (&reply);

    //  Creation: auth, version, length, metadata
    const char *length_5 [] = { "Upload-Length: 5", NULL };
    cr_assert_eq (s_tus (&nobody, "POST", "/api/v1/tus", length_5, NULL, 0, false, &reply), 401);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_tus (&alice, "POST", "/api/v1/tus", length_5, NULL, 0, true, &reply), 412, "no Tus-Resumable");
    cr_assert_str_eq (rp_test_header_value (&reply, "Tus-Version"), "1.0.0");
    rp_test_reply_free (&reply);
    const char *old_version [] = { "Tus-Resumable: 0.2.2", "Upload-Length: 5", NULL };
    cr_assert_eq (s_tus (&alice, "POST", "/api/v1/tus", old_version, NULL, 0, true, &reply), 412);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_tus (&alice, "POST", "/api/v1/tus", NULL, NULL, 0, false, &reply), 400, "no length");
    rp_test_reply_free (&reply);
    const char *lengths [] = { "Upload-Length: abc", "Upload-Length: -5", "Upload-Length: 99999999999999999999" };
    for (int i = 0; i < 3; i++) {
        const char *headers [] = { lengths [i], NULL };
        cr_assert_eq (s_tus (&alice, "POST", "/api/v1/tus", headers, NULL, 0, false, &reply), 400, "%s", lengths [i]);
        rp_test_reply_free (&reply);
    }
    const char *too_big [] = { "Upload-Length: 8388609", NULL };
    cr_assert_eq (s_tus (&alice, "POST", "/api/v1/tus", too_big, NULL, 0, false, &reply), 413);
    rp_test_reply_free (&reply);
    const char *metadata [] = { "filename !!!notbase64", "filename YQ", "filename YQ==,tags ***", ",",
                                "filename YQ==,batch_id Li4vLi4v" };
    for (int i = 0; i < 5; i++) {
        char header [128];
        snprintf (header, sizeof header, "Upload-Metadata: %s", metadata [i]);
        const char *headers [] = { "Upload-Length: 5", header, NULL };
        cr_assert_eq (s_tus (&alice, "POST", "/api/v1/tus", headers, NULL, 0, false, &reply), 400,
                      "%s: %s", metadata [i], reply.body);
        rp_test_reply_free (&reply);
    }
    cr_assert_eq (rp_test_photo_rows (&server), 0, "refused creations made no photo");

    //  A good one; a key without a value is allowed
    size_t len = 0;
    char *photo = s_photo_bytes (&server, 300 * 1024, 1, &len);
    char path [128];
    s_create (&alice, (int64_t) len, "filename cGhvdG8uanBn,is_confidential,tags YSxi", path, sizeof path);
    cr_assert_eq (s_tus (&alice, "HEAD", path, NULL, NULL, 0, false, &reply), 200);
    cr_assert_eq (s_header_int (&reply, "Upload-Offset"), 0);
    cr_assert_eq (s_header_int (&reply, "Upload-Length"), (int64_t) len);
    cr_assert_str_eq (rp_test_header_value (&reply, "Upload-Metadata"), "filename cGhvdG8uanBn,is_confidential,tags YSxi");
    cr_assert_str_eq (rp_test_header_value (&reply, "Cache-Control"), "no-store");
    cr_assert_not_null (rp_test_header_value (&reply, "Upload-Expires"));
    rp_test_reply_free (&reply);

    //  Isolation: bob cannot see, write or end it
    cr_assert_eq (s_tus (&bob, "HEAD", path, NULL, NULL, 0, false, &reply), 404);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_patch (&bob, path, 0, photo, 100, NULL, &reply), 404);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_tus (&bob, "DELETE", path, NULL, NULL, 0, false, &reply), 404);
    rp_test_reply_free (&reply);
    //  Unknown and hostile ids
    cr_assert_eq (s_tus (&alice, "HEAD", "/api/v1/tus/0123456789abcdef0123456789abcdef", NULL, NULL, 0, false, &reply), 404);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_tus (&alice, "HEAD", "/api/v1/tus/..%2F..%2Fetc", NULL, NULL, 0, false, &reply), 404);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_tus (&alice, "GET", "/api/v1/tus", NULL, NULL, 0, false, &reply), 405);
    rp_test_reply_free (&reply);

    //  PATCH: content type, version, offset
    const char *no_type [] = { "Upload-Offset: 0", NULL };
    cr_assert_eq (s_tus (&alice, "PATCH", path, no_type, photo, 100, false, &reply), 415);
    rp_test_reply_free (&reply);
    const char *wrong_type [] = { "Upload-Offset: 0", "Content-Type: image/jpeg", NULL };
    cr_assert_eq (s_tus (&alice, "PATCH", path, wrong_type, photo, 100, false, &reply), 415);
    rp_test_reply_free (&reply);
    const char *unversioned [] = { "Upload-Offset: 0", "Content-Type: application/offset+octet-stream", NULL };
    cr_assert_eq (s_tus (&alice, "PATCH", path, unversioned, photo, 100, true, &reply), 412);
    rp_test_reply_free (&reply);
    const char *no_offset [] = { "Content-Type: application/offset+octet-stream", NULL };
    cr_assert_eq (s_tus (&alice, "PATCH", path, no_offset, photo, 100, false, &reply), 400);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_patch (&alice, path, -1, photo, 100, NULL, &reply), 400, "a negative offset");
    rp_test_reply_free (&reply);
    cr_assert_eq (s_patch (&alice, path, 5, photo + 5, 100, NULL, &reply), 409, "an offset in the future");
    cr_assert_eq (s_header_int (&reply, "Upload-Offset"), 0);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_offset (&alice, path), 0);

    //  Bytes in; the expiry stays the one set at creation
    cr_assert_eq (s_tus (&alice, "HEAD", path, NULL, NULL, 0, false, &reply), 200);
    char expires [64];
    snprintf (expires, sizeof expires, "%s", rp_test_header_value (&reply, "Upload-Expires"));
    rp_test_reply_free (&reply);
    sleep (1);
    cr_assert_eq (s_patch (&alice, path, 0, photo, 100 * 1024, NULL, &reply), 204, "%s", reply.body);
    cr_assert_eq (s_header_int (&reply, "Upload-Offset"), 100 * 1024);
    cr_assert_str_eq (rp_test_header_value (&reply, "Upload-Expires"), expires);
    cr_assert_null (rp_test_header_value (&reply, "Photo-Id"), "not complete yet");
    rp_test_reply_free (&reply);
    cr_assert_eq (s_patch (&alice, path, 0, photo, 100, NULL, &reply), 409, "an offset in the past");
    cr_assert_eq (s_header_int (&reply, "Upload-Offset"), 100 * 1024);
    rp_test_reply_free (&reply);
    //  Past Upload-Length: refused before any of it is kept
    char *over = calloc (1, len + 10);                   //  ten bytes more than the upload
    memcpy (over, photo, len);
    cr_assert_eq (s_patch (&alice, path, 100 * 1024, over + 100 * 1024, len - 100 * 1024 + 10, NULL, &reply), 413);
    rp_test_reply_free (&reply);
    free (over);
    cr_assert_eq (s_offset (&alice, path), 100 * 1024);
    //  Upload-Length cannot change
    const char *relength [] = { "Upload-Offset: 102400", "Upload-Length: 5000000",
                                "Content-Type: application/offset+octet-stream", NULL };
    cr_assert_eq (s_tus (&alice, "PATCH", path, relength, photo + 100 * 1024, 10, false, &reply), 400);
    rp_test_reply_free (&reply);
    //  Checksums: unknown algorithm, malformed digest, mismatch (460, offset unchanged)
    const char *bad_checksums [] = { "Upload-Checksum: md5 CY9rzUYh03PK3k6DJie09g==", "Upload-Checksum: sha1 xyz",
                                     "Upload-Checksum: sha256", "Upload-Checksum: sha1 AAAA" };
    for (int i = 0; i < 4; i++) {
        cr_assert_eq (s_patch (&alice, path, 100 * 1024, photo + 100 * 1024, 1000, bad_checksums [i], &reply), 400,
                      "%s", bad_checksums [i]);
        rp_test_reply_free (&reply);
    }
    char checksum [200];
    s_checksum ("sha1", photo, 1000, checksum, sizeof checksum);       //  of other bytes
    cr_assert_eq (s_patch (&alice, path, 100 * 1024, photo + 100 * 1024, 1000, checksum, &reply), 460);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_offset (&alice, path), 100 * 1024, "a mismatched chunk is discarded");
    s_checksum ("sha256", photo + 100 * 1024, 1000, checksum, sizeof checksum);
    cr_assert_eq (s_patch (&alice, path, 100 * 1024, photo + 100 * 1024, 1000, checksum, &reply), 204);
    rp_test_reply_free (&reply);
    s_checksum ("sha1", photo + 101 * 1024 - 24, len - (101 * 1024 - 24), checksum, sizeof checksum);
    cr_assert_eq (s_patch (&alice, path, 100 * 1024 + 1000, photo + 100 * 1024 + 1000, len - 100 * 1024 - 1000,
                           checksum, &reply), 204, "%s", reply.body);
    cr_assert_eq (s_header_int (&reply, "Upload-Offset"), (int64_t) len);
    cr_assert_str_eq (rp_test_header_value (&reply, "Photo-Duplicate"), "false");
    char photo_id [64];
    snprintf (photo_id, sizeof photo_id, "%s", rp_test_header_value (&reply, "Photo-Id"));
    cr_assert_str_eq (photo_id, s_id_of (path), "the upload's id is the photo's");
    rp_test_reply_free (&reply);
    s_expect_original (&alice, photo_id, photo, len);
    //  Upload-Metadata became the photo's name and tags
    char photo_path [128];
    snprintf (photo_path, sizeof photo_path, "/api/v1/photos/%s", photo_id);
    rp_test_request (&server, "GET", photo_path, alice.token, NULL, NULL, 0, NULL, &reply);
    json_t *json = rp_test_reply_json (&reply);
    cr_assert_str_eq (json_string_value (json_object_get (json, "filename")), "photo.jpg");
    cr_assert_eq (json_array_size (json_object_get (json, "tags")), 2);
    json_decref (json);
    rp_test_reply_free (&reply);
    //  A finished upload takes no more bytes; HEAD names its photo
    cr_assert_eq (s_patch (&alice, path, (int64_t) len, photo, 1, NULL, &reply), 409);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_tus (&alice, "HEAD", path, NULL, NULL, 0, false, &reply), 200);
    cr_assert_str_eq (rp_test_header_value (&reply, "Photo-Id"), photo_id);
    rp_test_reply_free (&reply);

    //  The same bytes again, by creation-with-upload: a duplicate
    char create_length [64];
    snprintf (create_length, sizeof create_length, "Upload-Length: %zu", len);
    const char *with_upload [] = { create_length, "Content-Type: application/offset+octet-stream", NULL };
    cr_assert_eq (s_tus (&alice, "POST", "/api/v1/tus", with_upload, photo, len, false, &reply), 201, "%s", reply.body);
    cr_assert_eq (s_header_int (&reply, "Upload-Offset"), (int64_t) len);
    cr_assert_str_eq (rp_test_header_value (&reply, "Photo-Duplicate"), "true");
    cr_assert_str_eq (rp_test_header_value (&reply, "Photo-Id"), photo_id);
    rp_test_reply_free (&reply);

    //  The event stream showed the upload's progress, then the duplicate
    char *events = s_events (&alice);
    cr_assert_not_null (events);
    char progress [160];
    snprintf (progress, sizeof progress, "\"id\":\"%s\",", photo_id);
    cr_assert_not_null (strstr (events, progress), "%s", events);
    cr_assert_not_null (strstr (events, "\"status\":\"uploading\",\"error\":null,\"received\":102400,"), "%s", events);
    snprintf (progress, sizeof progress, "\"status\":\"duplicate\",\"error\":null,\"duplicate_of\":\"%s\"", photo_id);
    cr_assert_not_null (strstr (events, progress), "%s", events);
    free (events);

    //  Deferred length, set by a later PATCH
    size_t len2 = 0;
    char *photo2 = s_photo_bytes (&server, 200 * 1024, 2, &len2);
    const char *deferred [] = { "Upload-Defer-Length: 1", NULL };
    cr_assert_eq (s_tus (&alice, "POST", "/api/v1/tus", deferred, NULL, 0, false, &reply), 201);
    char path2 [128];
    snprintf (path2, sizeof path2, "%s", rp_test_header_value (&reply, "Location"));
    rp_test_reply_free (&reply);
    cr_assert_eq (s_tus (&alice, "HEAD", path2, NULL, NULL, 0, false, &reply), 200);
    cr_assert_str_eq (rp_test_header_value (&reply, "Upload-Defer-Length"), "1");
    rp_test_reply_free (&reply);
    cr_assert_eq (s_patch (&alice, path2, 0, photo2, 50000, NULL, &reply), 204);
    rp_test_reply_free (&reply);
    char final_length [64];
    snprintf (final_length, sizeof final_length, "Upload-Length: %zu", len2);
    cr_assert_eq (s_patch (&alice, path2, 50000, photo2 + 50000, len2 - 50000, final_length, &reply), 204,
                  "%s", reply.body);
    snprintf (photo_id, sizeof photo_id, "%s", rp_test_header_value (&reply, "Photo-Id"));
    rp_test_reply_free (&reply);
    s_expect_original (&alice, photo_id, photo2, len2);

    //  Not an image: 415 on the first bytes, the photo fails with the reason
    char text [300];
    memset (text, 'a', sizeof text);
    memcpy (text, "Dear diary, today I uploaded a text file named holiday.jpg", 58);
    s_create (&alice, sizeof text, "filename aG9saWRheS5qcGc=", path, sizeof path);
    cr_assert_eq (s_patch (&alice, path, 0, text, sizeof text, NULL, &reply), 415);
    cr_assert_not_null (strstr (reply.body, "text"), "%s", reply.body);
    rp_test_reply_free (&reply);
    snprintf (photo_path, sizeof photo_path, "/api/v1/photos/%s", s_id_of (path));
    rp_test_request (&server, "GET", photo_path, alice.token, NULL, NULL, 0, NULL, &reply);
    json = rp_test_reply_json (&reply);
    cr_assert_str_eq (json_string_value (json_object_get (json, "status")), "failed");
    cr_assert_not_null (strstr (json_string_value (json_object_get (json, "error")), "not a supported image"));
    json_decref (json);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_tus (&alice, "HEAD", path, NULL, NULL, 0, false, &reply), 404, "a refused upload is over");
    rp_test_reply_free (&reply);
    //  An empty file is refused too
    const char *empty [] = { "Upload-Length: 0", NULL };
    cr_assert_eq (s_tus (&alice, "POST", "/api/v1/tus", empty, NULL, 0, false, &reply), 415);
    rp_test_reply_free (&reply);

    //  Termination
    s_create (&alice, 1000, NULL, path, sizeof path);
    cr_assert_eq (s_patch (&alice, path, 0, photo2, 500, NULL, &reply), 204);
    rp_test_reply_free (&reply);
    char parts [700];
    snprintf (parts, sizeof parts, "%s/tus/%s", server.lib.dir, s_id_of (path));
    struct stat st;
    cr_assert_eq (stat (parts, &st), 0, "the part is on disk while the upload lives");
    cr_assert_eq (s_tus (&alice, "DELETE", path, NULL, NULL, 0, false, &reply), 204);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_tus (&alice, "HEAD", path, NULL, NULL, 0, false, &reply), 404);
    rp_test_reply_free (&reply);
    cr_assert_neq (stat (parts, &st), 0, "termination removed the parts");
    snprintf (photo_path, sizeof photo_path, "/api/v1/photos/%s", s_id_of (path));
    cr_assert_eq (rp_test_request (&server, "GET", photo_path, alice.token, NULL, NULL, 0, NULL, &reply), 404);
    rp_test_reply_free (&reply);

    //  Still serving
    cr_assert_eq (rp_test_request (&server, "GET", "/healthz", NULL, NULL, NULL, 0, NULL, &reply), 200);
    rp_test_reply_free (&reply);
    free (photo);
    free (photo2);
    free (alice.token);
    free (bob.token);
    rp_test_server_stop (&server);
}

Test (tus, a_cut_off_patch_keeps_what_arrived, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "tus-cut" });
    s_client_t alice = { &server, rp_test_login (&server, "alice") };
    size_t len = 0;
    char *photo = s_photo_bytes (&server, 6 * MiB, 3, &len);
    char path [128];
    s_create (&alice, (int64_t) len, NULL, path, sizeof path);
    //  Half the body, then the client goes away
    int fd = s_patch_open (&server, alice.token, path, 0, photo, len, 3 * MiB);
    usleep (300 * 1000);
    close (fd);
    int64_t kept = -1;
    for (int i = 0; i < 50 && kept <= 0; i++) {
        usleep (100 * 1000);
        kept = s_offset (&alice, path);
    }
    cr_assert_gt (kept, 0, "nothing of the cut PATCH was kept");
    cr_assert_leq (kept, 3 * MiB);
    //  The client resumes from there; the lease of the dead request is no obstacle
    rp_test_reply_t reply;
    cr_assert_eq (s_patch (&alice, path, kept, photo + kept, len - (size_t) kept, NULL, &reply), 204, "%s", reply.body);
    char photo_id [64];
    snprintf (photo_id, sizeof photo_id, "%s", rp_test_header_value (&reply, "Photo-Id"));
    rp_test_reply_free (&reply);
    s_expect_original (&alice, photo_id, photo, len);
    free (photo);
    free (alice.token);
    rp_test_server_stop (&server);
}

//  A first part garbled on the way (its bytes no longer look like an image)
//  whose Upload-Checksum is the sent bytes': the checksum speaks first, so
//  it is a 460 to send again, not a photo failed for good
Test (tus, a_garbled_first_part_is_sent_again, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "tus-garbled" });
    s_client_t alice = { &server, rp_test_login (&server, "alice") };
    size_t len = 0;
    char *photo = s_photo_bytes (&server, 256 * 1024, 5, &len);
    char path [128];
    s_create (&alice, (int64_t) len, NULL, path, sizeof path);
    char checksum [200];
    s_checksum ("sha256", photo, 64 * 1024, checksum, sizeof checksum);
    char *garbled = malloc (64 * 1024);
    memcpy (garbled, photo, 64 * 1024);
    memset (garbled, 0x20, 64);                 //  the magic bytes gone
    rp_test_reply_t reply;
    long status = s_patch (&alice, path, 0, garbled, 64 * 1024, checksum, &reply);
    cr_expect_eq (status, 460, "%ld %s", status, reply.body);
    rp_test_reply_free (&reply);
    cr_assert_eq (s_offset (&alice, path), 0, "the upload is still there, at 0");
    //  Sent again, right: the upload goes on and completes
    cr_assert_eq (s_patch (&alice, path, 0, photo, 64 * 1024, checksum, &reply), 204, "%s", reply.body);
    rp_test_reply_free (&reply);
    s_checksum ("sha256", photo + 64 * 1024, len - 64 * 1024, checksum, sizeof checksum);
    cr_assert_eq (s_patch (&alice, path, 64 * 1024, photo + 64 * 1024, len - 64 * 1024, checksum, &reply), 204,
                  "%s", reply.body);
    char photo_id [64];
    snprintf (photo_id, sizeof photo_id, "%s", rp_test_header_value (&reply, "Photo-Id"));
    rp_test_reply_free (&reply);
    s_expect_original (&alice, photo_id, photo, len);
    //  Bytes that are not an image and match their checksum still fail at once
    char other [128];
    s_create (&alice, 64 * 1024, NULL, other, sizeof other);
    s_checksum ("sha256", garbled, 64 * 1024, checksum, sizeof checksum);
    cr_expect_eq (s_patch (&alice, other, 0, garbled, 64 * 1024, checksum, &reply), 415, "%s", reply.body);
    rp_test_reply_free (&reply);
    free (garbled);
    free (photo);
    free (alice.token);
    rp_test_server_stop (&server);
}

Test (tus_pg, two_engines_serve_one_upload_in_turn, .timeout = 240)
{
    rp_test_server_t first, second;
    rp_test_server_start (&first, &(rp_test_server_opts_t) { .name = "tus_two", .pg = true });
    rp_test_server_start (&second, &(rp_test_server_opts_t) { .name = "tus_two", .data_dir = first.lib.dir,
                                                               .db_url = first.db_url });
    //  One token works on both: they share the data folder (and its secret)
    char *token = rp_test_login (&first, "alice");
    s_client_t on_first = { &first, token }, on_second = { &second, token };
    size_t len = 0;
    char *photo = s_photo_bytes (&first, 6 * MiB, 4, &len);
    char path [128];
    s_create (&on_first, (int64_t) len, NULL, path, sizeof path);

    //  Alternate PATCHes of 1 MiB between the engines
    int64_t offset = 0;
    rp_test_reply_t reply;
    for (int turn = 0; offset < 4 * MiB; turn++) {
        s_client_t *client = turn % 2 ? &on_second : &on_first;
        cr_assert_eq (s_patch (client, path, offset, photo + offset, MiB, NULL, &reply), 204,
                      "turn %d: %s", turn, reply.body);
        offset = s_header_int (&reply, "Upload-Offset");
        rp_test_reply_free (&reply);
        cr_assert_eq (s_offset (turn % 2 ? &on_first : &on_second, path), offset, "both engines agree");
    }
    //  While one engine holds the upload mid-PATCH, the other answers 423
    int fd = s_patch_open (&first, token, path, offset, photo + offset, MiB, MiB / 2);
    usleep (300 * 1000);
    cr_assert_eq (s_patch (&on_second, path, offset, photo + offset, MiB, NULL, &reply), 423, "%s", reply.body);
    cr_assert_not_null (rp_test_header_value (&reply, "Retry-After"));
    rp_test_reply_free (&reply);
    //  The first engine dies mid-PATCH: its lease is stale at once (its
    //  process is gone), and the second engine takes the upload over
    kill (first.pid, SIGKILL);
    rp_test_wait (first.pid, 10000);
    close (fd);
    int64_t now = s_offset (&on_second, path);
    cr_assert_eq (now, offset, "the dead engine's uncommitted half is not counted");
    cr_assert_eq (s_patch (&on_second, path, now, photo + now, len - (size_t) now, NULL, &reply), 204, "%s", reply.body);
    char photo_id [64];
    snprintf (photo_id, sizeof photo_id, "%s", rp_test_header_value (&reply, "Photo-Id"));
    rp_test_reply_free (&reply);
    s_expect_original (&on_second, photo_id, photo, len);
    //  The first engine comes back and serves the same photo
    rp_test_server_launch (&first);
    s_expect_original (&on_first, photo_id, photo, len);
    free (photo);
    free (token);
    rp_test_server_stop (&second);
    rp_test_server_stop (&first);
}
