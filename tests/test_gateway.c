/*  tests/test_gateway.c: the HTTP API through the real `rapidphoto serve`.

    Each test starts the binary on free ports with a fresh data folder
    (SQLite + disk), adds users, and drives it with libcurl the way a client
    would: login, uploads (multipart with several files, raw bodies, 100 at
    once), the gallery (list, get, tags, batches, downloads with Range and
    If-None-Match, delete) and the hostile cases, each of which must get the
    right 4xx, store nothing and leave the server serving.
*/
#include <criterion/criterion.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/log.h"
#include "tests/support/library.h"
#include "tests/support/server.h"
#include "tests/support/testdata.h"

//  ---------------------------------------------------------------------------

Test (gateway, login_tokens_and_rate_limit, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "gw-login" });
    char *token = rp_test_login (&server, "alice");
    rp_test_reply_t reply;
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos", token, NULL, NULL, 0, NULL, &reply), 200);
    rp_test_reply_free (&reply);
    //  Wrong passwords: 401 five times, then 429 with Retry-After
    for (int i = 0; i < 5; i++) {
        cr_expect_eq (rp_test_json_request (&server, "POST", "/api/v1/auth/login", NULL,
                                      "{\"username\":\"bob\",\"password\":\"guess\"}", &reply), 401);
        cr_expect (strstr (reply.headers, "application/problem+json"));
        rp_test_reply_free (&reply);
    }
    cr_expect_eq (rp_test_json_request (&server, "POST", "/api/v1/auth/login", NULL,
                                  "{\"username\":\"bob\",\"password\":\"correct horse battery\"}", &reply), 429);
    cr_expect (rp_test_has_header (&reply, "Retry-After:"));
    rp_test_reply_free (&reply);
    //  A malformed body is a 400
    cr_expect_eq (rp_test_json_request (&server, "POST", "/api/v1/auth/login", NULL, "{nope", &reply), 400);
    rp_test_reply_free (&reply);
    //  `rapidphoto token` signs with the same secret
    char command [1024];
    snprintf (command, sizeof command, "%s RAPIDPHOTO_DB_URL='%s' %s token alice --ttl 600", server.lib.env_dir,
              server.db_url, rp_test_binary ());
    char *printed = NULL;
    cr_assert_eq (rp_test_run (command, &printed), 0);
    printed [strcspn (printed, "\n")] = 0;
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos", printed, NULL, NULL, 0, NULL, &reply), 200);
    rp_test_reply_free (&reply);
    struct stat st;
    char secret [600];
    snprintf (secret, sizeof secret, "%s/jwt_secret", server.lib.dir);
    cr_assert_eq (stat (secret, &st), 0);
    cr_expect_eq (st.st_mode & 0777, 0600);
    free (printed);
    free (token);
    rp_test_server_stop (&server);
}

static void s_uploads_gallery_and_downloads (bool pg);
Test (gateway, uploads_gallery_and_downloads, .timeout = 180) { s_uploads_gallery_and_downloads (false); }
Test (gateway_pg, uploads_gallery_and_downloads, .timeout = 180) { s_uploads_gallery_and_downloads (true); }

static void
s_uploads_gallery_and_downloads (bool pg)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = pg ? "gw_flow" : "gw-flow", .pg = pg });
    char *token = rp_test_login (&server, "alice");
    char *bob = rp_test_login (&server, "bob");
    CURL *curl = curl_easy_init ();

    //  Multipart: three files, tags and a batch id of the client's choosing
    curl_mime *form = curl_mime_init (curl);
    char paths [3][600];
    for (int i = 0; i < 3; i++) {
        char name [32];
        snprintf (name, sizeof name, "flow%d.jpg", i);
        rp_test_server_photo (&server, name, i, paths [i], sizeof paths [i]);
        curl_mimepart *part = curl_mime_addpart (form);
        curl_mime_name (part, "file");
        curl_mime_filedata (part, paths [i]);
        if (i == 1)
            curl_mime_filename (part, "../../etc/pass\x01wd.jpg");
    }
    curl_mimepart *part = curl_mime_addpart (form);
    curl_mime_name (part, "tags");
    curl_mime_data (part, "holiday,beach'; DROP TABLE photos;--", CURL_ZERO_TERMINATED);
    part = curl_mime_addpart (form);
    curl_mime_name (part, "batch_id");
    curl_mime_data (part, "batch-one", CURL_ZERO_TERMINATED);
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, NULL, NULL, 0, form, &reply), 202,
                  "%s", reply.body);
    curl_mime_free (form);
    json_t *answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    cr_assert_str_eq (json_string_value (json_object_get (answer, "batch_id")), "batch-one");
    json_t *photos = json_object_get (answer, "photos");
    cr_assert_eq (json_array_size (photos), 3);
    char ids [3][RP_ID_MAX];
    for (int i = 0; i < 3; i++) {
        json_t *photo = json_array_get (photos, (size_t) i);
        snprintf (ids [i], RP_ID_MAX, "%s", json_string_value (json_object_get (photo, "id")));
        cr_expect_str_eq (json_string_value (json_object_get (photo, "status")), "queued");
        cr_expect (json_is_false (json_object_get (photo, "duplicate")));
        cr_expect_eq (strlen (json_string_value (json_object_get (photo, "sha256"))), 64);
    }
    //  The path and the control character are gone from the name
    cr_expect_str_eq (json_string_value (json_object_get (json_array_get (photos, 1), "filename")), "passwd.jpg");
    json_decref (answer);

    //  Raw body with X-Filename; then the same bytes again are a duplicate,
    //  answered from X-Content-SHA256 alone
    char raw_path [600];
    rp_test_server_photo (&server, "raw.jpg", 50, raw_path, sizeof raw_path);
    size_t raw_len = 0;
    char *raw = rp_test_read_file (raw_path, &raw_len);
    const char *raw_headers [] = { "Content-Type: image/jpeg", "X-Filename: my raw \"photo\".jpg", NULL };
    cr_assert_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, raw_headers, raw, raw_len, NULL, &reply), 202,
                  "%s", reply.body);
    answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    json_t *first = json_array_get (json_object_get (answer, "photos"), 0);
    char raw_id [RP_ID_MAX], raw_sha [65];
    snprintf (raw_id, sizeof raw_id, "%s", json_string_value (json_object_get (first, "id")));
    snprintf (raw_sha, sizeof raw_sha, "%s", json_string_value (json_object_get (first, "sha256")));
    cr_expect_str_eq (json_string_value (json_object_get (first, "filename")), "my raw photo.jpg");
    json_decref (answer);
    char sha_header [128];
    snprintf (sha_header, sizeof sha_header, "X-Content-SHA256: %s", raw_sha);
    const char *dup_headers [] = { "Content-Type: image/jpeg", sha_header, NULL };
    cr_assert_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, dup_headers, "", 0, NULL, &reply), 202);
    answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    first = json_array_get (json_object_get (answer, "photos"), 0);
    cr_expect (json_is_true (json_object_get (first, "duplicate")));
    cr_expect_str_eq (json_string_value (json_object_get (first, "id")), raw_id);
    json_decref (answer);
    //  A declared SHA-256 the body does not have is a 400 naming both, and stores nothing
    char other_path [600];
    rp_test_server_photo (&server, "other.jpg", 51, other_path, sizeof other_path);
    size_t other_len = 0;
    char *other = rp_test_read_file (other_path, &other_len);
    char lie [128];
    snprintf (lie, sizeof lie, "X-Content-SHA256: %064d", 7);
    const char *lie_headers [] = { "Content-Type: image/jpeg", "X-Filename: other.jpg", lie, NULL };
    int64_t rows = rp_test_photo_rows (&server);
    cr_assert_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, lie_headers, other, other_len, NULL,
                                   &reply), 400, "%s", reply.body);
    cr_expect (strstr (reply.body, "X-Content-SHA256") && strstr (reply.body, "0000000000000007"), "%s", reply.body);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_photo_rows (&server), rows, "a body that is not what it declared stores no row");
    free (other);
    //  POST /photos/check
    char check [256];
    snprintf (check, sizeof check, "{\"sha256\":[\"%s\",\"%064d\"]}", raw_sha, 0);
    cr_assert_eq (rp_test_json_request (&server, "POST", "/api/v1/photos/check", token, check, &reply), 200);
    answer = rp_test_reply_json (&reply);
    cr_expect_str_eq (json_string_value (json_object_get (json_object_get (answer, "existing"), raw_sha)), raw_id);
    cr_expect_eq (json_object_size (json_object_get (answer, "existing")), 1);
    json_decref (answer);
    rp_test_reply_free (&reply);
    //  Bob sees none of it
    cr_assert_eq (rp_test_json_request (&server, "POST", "/api/v1/photos/check", bob, check, &reply), 200);
    cr_expect (strstr (reply.body, "{\"existing\":{}}"), "%s", reply.body);
    rp_test_reply_free (&reply);

    //  Every photo reaches complete
    for (int i = 0; i < 3; i++) {
        char *status = rp_test_wait_final (&server, token, ids [i], 60000);
        cr_expect_str_eq (status, "complete");
        free (status);
    }
    char *status = rp_test_wait_final (&server, token, raw_id, 60000);
    cr_expect_str_eq (status, "complete");
    free (status);

    //  GET one photo: EXIF fields, urls; bob gets 404
    char path [256];
    snprintf (path, sizeof path, "/api/v1/photos/%s", ids [0]);
    cr_assert_eq (rp_test_request (&server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200);
    json_t *photo = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    char url [256];
    snprintf (url, sizeof url, "/api/v1/photos/%s/thumbnail", ids [0]);
    cr_expect_str_eq (json_string_value (json_object_get (json_object_get (photo, "urls"), "thumbnail")), url);
    cr_expect_eq (json_integer_value (json_object_get (photo, "width")), 320);
    cr_expect (json_is_object (json_object_get (photo, "exif")));
    cr_expect_eq (json_array_size (json_object_get (photo, "tags")), 2);
    json_decref (photo);
    cr_expect_eq (rp_test_request (&server, "GET", path, bob, NULL, NULL, 0, NULL, &reply), 404);
    cr_expect (strstr (reply.headers, "application/problem+json"));
    rp_test_reply_free (&reply);
    snprintf (path, sizeof path, "/api/v1/photos/%s/original", ids [0]);
    cr_expect_eq (rp_test_request (&server, "GET", path, bob, NULL, NULL, 0, NULL, &reply), 404);
    rp_test_reply_free (&reply);

    //  List: newest first, paged with the cursor, filtered by tag and status
    cr_assert_eq (rp_test_request (&server, "GET", "/api/v1/photos?limit=2", token, NULL, NULL, 0, NULL, &reply), 200);
    json_t *page = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    cr_expect_eq (json_array_size (json_object_get (page, "items")), 2);
    cr_expect_str_eq (json_string_value (json_object_get (json_array_get (json_object_get (page, "items"), 0), "id")), raw_id);
    const char *cursor = json_string_value (json_object_get (page, "next_cursor"));
    cr_assert_not_null (cursor);
    char *escaped = curl_easy_escape (curl, cursor, 0);
    snprintf (path, sizeof path, "/api/v1/photos?limit=2&cursor=%s", escaped);
    curl_free (escaped);
    json_decref (page);
    cr_assert_eq (rp_test_request (&server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200);
    page = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    cr_expect_eq (json_array_size (json_object_get (page, "items")), 2);
    cr_expect (json_is_null (json_object_get (page, "next_cursor")));
    json_decref (page);
    escaped = curl_easy_escape (curl, "beach'; DROP TABLE photos;--", 0);
    snprintf (path, sizeof path, "/api/v1/photos?tag=%s&status=complete", escaped);
    curl_free (escaped);
    cr_assert_eq (rp_test_request (&server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200);
    page = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    cr_expect_eq (json_array_size (json_object_get (page, "items")), 3);
    json_decref (page);
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos?status=bogus", token, NULL, NULL, 0, NULL, &reply), 400);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos?cursor=garbage", token, NULL, NULL, 0, NULL, &reply), 400);
    rp_test_reply_free (&reply);

    //  Tags: replace, add, remove one (SQL metacharacters are just text)
    snprintf (path, sizeof path, "/api/v1/photos/%s/tags", ids [0]);
    cr_assert_eq (rp_test_json_request (&server, "PUT", path, token, "{\"tags\":[\"x\\\"); DELETE FROM photos;--\",\"cats\"]}", &reply), 200,
                  "%s", reply.body);
    rp_test_reply_free (&reply);
    cr_assert_eq (rp_test_json_request (&server, "POST", path, token, "{\"tags\":[\"dogs\"]}", &reply), 200);
    photo = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    cr_expect_eq (json_array_size (json_object_get (photo, "tags")), 3);
    json_decref (photo);
    snprintf (path, sizeof path, "/api/v1/photos/%s/tags/cats", ids [0]);
    cr_expect_eq (rp_test_request (&server, "DELETE", path, token, NULL, NULL, 0, NULL, &reply), 204);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "DELETE", path, bob, NULL, NULL, 0, NULL, &reply), 404);
    rp_test_reply_free (&reply);
    snprintf (path, sizeof path, "/api/v1/photos/%s/tags", ids [0]);
    cr_expect_eq (rp_test_json_request (&server, "PUT", path, token, "{\"tags\":[\"\\u0001bad\"]}", &reply), 400);
    rp_test_reply_free (&reply);

    //  Batch: counts from the rows
    cr_assert_eq (rp_test_request (&server, "GET", "/api/v1/batches/batch-one", token, NULL, NULL, 0, NULL, &reply), 200);
    json_t *batch = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    cr_expect_eq (json_integer_value (json_object_get (batch, "total")), 3);
    cr_expect_eq (json_integer_value (json_object_get (json_object_get (batch, "counts"), "complete")), 3);
    json_decref (batch);
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/batches/batch-one", bob, NULL, NULL, 0, NULL, &reply), 404);
    rp_test_reply_free (&reply);

    //  Downloads: the original byte for byte, ETag and 304, Range 206 and 416
    snprintf (path, sizeof path, "/api/v1/photos/%s/original", raw_id);
    cr_assert_eq (rp_test_request (&server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200);
    cr_expect_eq (reply.len, raw_len);
    cr_expect (memcmp (reply.body, raw, raw_len) == 0);
    char etag [128];
    snprintf (etag, sizeof etag, "ETag: \"%s\"", raw_sha);
    cr_expect (rp_test_has_header (&reply, etag), "%s", reply.headers);
    cr_expect (rp_test_has_header (&reply, "Content-Disposition: attachment; filename=\"my raw photo.jpg\"; "
                                      "filename*=UTF-8''my%20raw%20photo.jpg"), "%s", reply.headers);
    rp_test_reply_free (&reply);
    char inm [128];
    snprintf (inm, sizeof inm, "If-None-Match: \"%s\"", raw_sha);
    const char *inm_headers [] = { inm, NULL };
    cr_expect_eq (rp_test_request (&server, "GET", path, token, inm_headers, NULL, 0, NULL, &reply), 304);
    rp_test_reply_free (&reply);
    const char *range_headers [] = { "Range: bytes=10-19", NULL };
    cr_expect_eq (rp_test_request (&server, "GET", path, token, range_headers, NULL, 0, NULL, &reply), 206);
    cr_expect_eq (reply.len, 10);
    cr_expect (memcmp (reply.body, raw + 10, 10) == 0);
    char content_range [96];
    snprintf (content_range, sizeof content_range, "Content-Range: bytes 10-19/%zu", raw_len);
    cr_expect (rp_test_has_header (&reply, content_range), "%s", reply.headers);
    rp_test_reply_free (&reply);
    const char *suffix_headers [] = { "Range: bytes=-5", NULL };
    cr_expect_eq (rp_test_request (&server, "GET", path, token, suffix_headers, NULL, 0, NULL, &reply), 206);
    cr_expect (reply.len == 5 && memcmp (reply.body, raw + raw_len - 5, 5) == 0);
    rp_test_reply_free (&reply);
    const char *bad_range [] = { "Range: bytes=99999999-", NULL };
    cr_expect_eq (rp_test_request (&server, "GET", path, token, bad_range, NULL, 0, NULL, &reply), 416);
    rp_test_reply_free (&reply);
    snprintf (path, sizeof path, "/api/v1/photos/%s/thumbnail", raw_id);
    cr_assert_eq (rp_test_request (&server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200);
    cr_expect (rp_test_has_header (&reply, "Content-Type: image/webp"));
    cr_expect (rp_test_has_header (&reply, "immutable"));
    cr_expect (reply.len > 100 && memcmp (reply.body, "RIFF", 4) == 0);
    rp_test_reply_free (&reply);
    snprintf (path, sizeof path, "/api/v1/photos/%s/preview", raw_id);
    cr_assert_eq (rp_test_request (&server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200);
    cr_expect (rp_test_has_header (&reply, "Content-Type: image/jpeg"));
    rp_test_reply_free (&reply);

    //  Delete: 204, then 404; bob cannot delete alice's
    snprintf (path, sizeof path, "/api/v1/photos/%s", raw_id);
    cr_expect_eq (rp_test_request (&server, "DELETE", path, bob, NULL, NULL, 0, NULL, &reply), 404);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "DELETE", path, token, NULL, NULL, 0, NULL, &reply), 204);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 404);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_photo_rows (&server), 3);

    //  Operations
    cr_expect_eq (rp_test_request (&server, "GET", "/readyz", NULL, NULL, NULL, 0, NULL, &reply), 200, "%s", reply.body);
    rp_test_reply_free (&reply);
    //  Photos by status as the readiness prober last counted them (every 2 s)
    const char *rid [] = { "X-Request-Id: test-req-42", NULL };
    for (int i = 0; i < 50; i++) {
        cr_assert_eq (rp_test_request (&server, "GET", "/metrics", NULL, rid, NULL, 0, NULL, &reply), 200);
        if (strstr (reply.body, "rapidphoto_photos{status=\"complete\"} 3"))
            break;
        rp_test_reply_free (&reply);
        usleep (100 * 1000);
    }
    cr_expect (strstr (reply.body, "rapidphoto_http_requests_total{route=\"POST upload\",status=\"202\"}"));
    cr_expect (strstr (reply.body, "rapidphoto_photos{status=\"complete\"} 3"), "%s", reply.body);
    cr_expect (strstr (reply.body, "rapidphoto_http_request_duration_seconds_bucket"));
    //  Queues, workers and stage times come from the broker itself
    cr_expect (strstr (reply.body, "rapidphoto_jobs_queued{pool=\"resize\"} 0"), "%s", reply.body);
    cr_expect (strstr (reply.body, "rapidphoto_workers{pool=\"exif\"}"), "%s", reply.body);
    cr_expect (strstr (reply.body, "rapidphoto_stage_duration_seconds_sum{pool=\"resize\"}"), "%s", reply.body);
    cr_expect (strstr (reply.body, "rapidphoto_jobs_done_total{pool=\"resize\"}"), "%s", reply.body);
    cr_expect (rp_test_has_header (&reply, "X-Request-Id: test-req-42"));
    rp_test_reply_free (&reply);
    curl_easy_cleanup (curl);
    free (raw);
    free (token);
    free (bob);
    rp_test_server_stop (&server);
    cr_expect_gt (rp_test_count_in_file (server.log, "req=test-req-42"), 0, "access log line with the request id");
}

Test (gateway, hostile_requests, .timeout = 180)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "gw-hostile" });
    char *token = rp_test_login (&server, "alice");
    rp_test_reply_t reply;
    char photo [600];
    rp_test_server_photo (&server, "ok.jpg", 3, photo, sizeof photo);
    size_t len = 0;
    char *bytes = rp_test_read_file (photo, &len);
    const char *raw_headers [] = { "Content-Type: image/jpeg", "X-Filename: ok.jpg", NULL };

    //  No token, a bad signature, an expired token
    cr_expect_eq (rp_test_request (&server, "POST", "/api/v1/photos", NULL, raw_headers, bytes, len, NULL, &reply), 401);
    rp_test_reply_free (&reply);
    char forged [2048];
    snprintf (forged, sizeof forged, "%s", token);
    forged [strlen (forged) - 3] = forged [strlen (forged) - 3] == 'A' ? 'B' : 'A';
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos", forged, NULL, NULL, 0, NULL, &reply), 401);
    rp_test_reply_free (&reply);
    char command [1024];
    snprintf (command, sizeof command, "%s RAPIDPHOTO_DB_URL='%s' %s token alice --ttl 1", server.lib.env_dir,
              server.db_url, rp_test_binary ());
    char *expired = NULL;
    cr_assert_eq (rp_test_run (command, &expired), 0);
    expired [strcspn (expired, "\n")] = 0;
    sleep (2);
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos", expired, NULL, NULL, 0, NULL, &reply), 401);
    cr_expect (strstr (reply.body, "expired"), "%s", reply.body);
    rp_test_reply_free (&reply);
    free (expired);
    //  A token signed with "none"
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos",
                             "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.",
                             NULL, NULL, 0, NULL, &reply), 401);
    rp_test_reply_free (&reply);

    //  Not an image, by its bytes, whatever its name says
    const char *fake_headers [] = { "Content-Type: image/jpeg", "X-Filename: evil.jpg", NULL };
    const char *html = "<html><script>alert(1)</script></html>, padded to be longer than a sniff";
    cr_expect_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, fake_headers, html, strlen (html), NULL, &reply), 415);
    cr_expect (strstr (reply.headers, "application/problem+json"));
    cr_expect (!strstr (reply.body, server.lib.dir), "no internal paths: %s", reply.body);
    rp_test_reply_free (&reply);
    //  A big one too: refused by its first bytes, the rest read and dropped
    size_t text_len = 3 << 20;
    char *text = malloc (text_len);
    memset (text, 'a', text_len);
    cr_expect_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, fake_headers, text, text_len, NULL, &reply), 415);
    rp_test_reply_free (&reply);
    free (text);
    //  Text/plain is not an upload
    const char *text_headers [] = { "Content-Type: text/plain", NULL };
    cr_expect_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, text_headers, "hello", 5, NULL, &reply), 415);
    rp_test_reply_free (&reply);
    //  Multipart without a boundary
    const char *nob [] = { "Content-Type: multipart/form-data", NULL };
    cr_expect_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, nob, "--x\r\n\r\n", 7, NULL, &reply), 400);
    rp_test_reply_free (&reply);
    //  A multipart whose body is not multipart
    const char *badmp [] = { "Content-Type: multipart/form-data; boundary=XYZ", NULL };
    const char *garbage = "this is not a multipart body at all";
    long st = rp_test_request (&server, "POST", "/api/v1/photos", token, badmp, garbage, strlen (garbage), NULL, &reply);
    cr_expect_eq (st, 400, "%s", reply.body);
    rp_test_reply_free (&reply);
    //  2 GiB declared: 413 before a byte of the body is read
    const char *huge [] = { "Content-Type: image/jpeg", "Content-Length: 2147483648", NULL };
    int64_t started = rp_clock_ms ();
    cr_expect_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, huge, "", 0, NULL, &reply), 413);
    cr_expect_lt (rp_clock_ms () - started, 5000);
    rp_test_reply_free (&reply);
    //  A file over the limit in a multipart that does not say its size up front
    char big_path [600];
    snprintf (big_path, sizeof big_path, "%s/big.jpg", server.lib.dir);
    FILE *big = fopen (big_path, "wb");
    fwrite (bytes, 1, len, big);
    char *zeros = calloc (1, 1 << 20);
    for (int i = 0; i < 9; i++)
        fwrite (zeros, 1, 1 << 20, big);
    fclose (big);
    free (zeros);
    CURL *curl = curl_easy_init ();
    curl_mime *form = curl_mime_init (curl);
    curl_mimepart *part = curl_mime_addpart (form);
    curl_mime_name (part, "file");
    curl_mime_filedata (part, big_path);
    cr_expect_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, NULL, NULL, 0, form, &reply), 413, "%s", reply.body);
    rp_test_reply_free (&reply);
    curl_mime_free (form);
    curl_easy_cleanup (curl);
    //  Huge headers
    size_t hsize = 1 << 20;
    char *header = malloc (hsize + 16);
    memcpy (header, "X-Big: ", 7);
    memset (header + 7, 'a', hsize);
    header [hsize + 7] = 0;
    const char *big_headers [] = { header, NULL };
    long status = rp_test_request (&server, "GET", "/api/v1/photos", token, big_headers, NULL, 0, NULL, &reply);
    cr_expect (status == 431 || status == 413 || status == 400 || status == 0, "status %ld", status);
    rp_test_reply_free (&reply);
    free (header);
    //  A body that lies about its length: the client stops early and leaves
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) server.port) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    cr_assert_eq (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    char request [4096];
    int n = snprintf (request, sizeof request, "POST /api/v1/photos HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer %s\r\nContent-Type: image/jpeg\r\nX-Filename: liar.jpg\r\n"
                      "Content-Length: 5000000\r\n\r\n", token);
    cr_assert_eq (write (fd, request, (size_t) n), n);
    cr_assert_eq (write (fd, bytes, len), (ssize_t) len);
    usleep (200 * 1000);
    close (fd);
    usleep (300 * 1000);
    //  Path traversal in the photo id
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos/..%2F..%2Fetc%2Fpasswd/original", token, NULL, NULL, 0, NULL, &reply), 404);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos/%27%20OR%201=1%20--", token, NULL, NULL, 0, NULL, &reply), 404);
    rp_test_reply_free (&reply);

    //  Nothing was stored, no temporary file is left, and the server still serves
    cr_expect_eq (rp_test_photo_rows (&server), 0);
    cr_expect_eq (rp_test_library_tmp_files (&server.lib), 0);
    cr_expect_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, raw_headers, bytes, len, NULL, &reply), 202,
                  "%s", reply.body);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_photo_rows (&server), 1);
    free (bytes);
    free (token);
    rp_test_server_stop (&server);
}

//  ---------------------------------------------------------------------------
//  Refusals by status code, never by the words of a message

//  Run SQL on the server's database behind its back (a test's sabotage).
static void
s_sql (rp_test_server_t *server, bool pg, const char *sql)
{
    if (pg) {
        PGconn *conn = PQconnectdb (server->db_url);
        cr_assert_eq (PQstatus (conn), CONNECTION_OK, "%s", PQerrorMessage (conn));
        PGresult *res = PQexec (conn, sql);
        cr_assert_eq (PQresultStatus (res), PGRES_COMMAND_OK, "%s", PQerrorMessage (conn));
        PQclear (res);
        PQfinish (conn);
        return;
    }
    sqlite3 *db = NULL;
    cr_assert_eq (strncmp (server->db_url, "sqlite:", 7), 0);
    cr_assert_eq (sqlite3_open (server->db_url + 7, &db), SQLITE_OK);
    sqlite3_busy_timeout (db, 5000);
    char *error = NULL;
    cr_assert_eq (sqlite3_exec (db, sql, NULL, NULL, &error), SQLITE_OK, "%s", error ? error : "");
    sqlite3_close (db);
}

//  The filename a 202 gave the first photo; "" when none.
static void
s_answered_name (const rp_test_reply_t *reply, char *name, size_t size)
{
    json_t *answer = rp_test_reply_json (reply);
    const char *stored = json_string_value (json_object_get (json_array_get (json_object_get (answer, "photos"), 0),
                                                             "filename"));
    snprintf (name, size, "%s", stored ? stored : "");
    json_decref (answer);
}

//  The problem's detail; "" when none.
static void
s_detail (const rp_test_reply_t *reply, char *detail, size_t size)
{
    json_t *problem = rp_test_reply_json (reply);
    const char *text = json_string_value (json_object_get (problem, "detail"));
    snprintf (detail, size, "%s", text ? text : "");
    json_decref (problem);
}

static void s_refusals_by_code (bool pg);
Test (gateway, refusals_by_code_not_by_wording, .timeout = 120) { s_refusals_by_code (false); }
Test (gateway_pg, refusals_by_code_not_by_wording, .timeout = 120) { s_refusals_by_code (true); }

static void
s_refusals_by_code (bool pg)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = pg ? "gw_codes" : "gw-codes", .pg = pg });
    char *token = rp_test_login (&server, "alice");
    rp_test_reply_t reply;
    char name [300], detail [512];
    int variant = 80;

    //  File names with bytes PostgreSQL refuses as UTF-8 (a UTF-16
    //  surrogate, overlong forms, past U+10FFFF): the bytes are replaced,
    //  the photo is stored, and it is never a 503 to retry forever
    static const struct { const char *sent; const char *stored; } names [] = {
        { "a\xed\xa0\x80" "b.jpg", "a___b.jpg" },
        { "\xc0\xaf" "etc.jpg", "__etc.jpg" },
        { "\xe0\x80\xaf" "etc.jpg", "___etc.jpg" },
        { "far\xf4\x90\x80\x80.jpg", "far____.jpg" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        char path [600], header [400];
        rp_test_server_photo (&server, "name.jpg", variant++, path, sizeof path);
        size_t len = 0;
        char *bytes = rp_test_read_file (path, &len);
        snprintf (header, sizeof header, "X-Filename: %s", names [i].sent);
        const char *raw_headers [] = { "Content-Type: image/jpeg", header, NULL };
        long status = rp_test_request (&server, "POST", "/api/v1/photos", token, raw_headers, bytes, len, NULL, &reply);
        cr_expect_eq (status, 202, "raw upload named %zu: %ld %s", i, status, reply.body);
        s_answered_name (&reply, name, sizeof name);
        cr_expect_str_eq (name, names [i].stored, "raw upload named %zu", i);
        rp_test_reply_free (&reply);
        free (bytes);
        //  The same name on a multipart part
        rp_test_server_photo (&server, "part.jpg", variant++, path, sizeof path);
        curl_mime *form = curl_mime_init (NULL);
        curl_mimepart *part = curl_mime_addpart (form);
        curl_mime_name (part, "file");
        curl_mime_filedata (part, path);
        curl_mime_filename (part, names [i].sent);
        status = rp_test_request (&server, "POST", "/api/v1/photos", token, NULL, NULL, 0, form, &reply);
        curl_mime_free (form);
        cr_expect_eq (status, 202, "multipart upload named %zu: %ld %s", i, status, reply.body);
        s_answered_name (&reply, name, sizeof name);
        cr_expect_str_eq (name, names [i].stored, "multipart upload named %zu", i);
        rp_test_reply_free (&reply);
    }
    int64_t rows = rp_test_photo_rows (&server);
    cr_expect_eq (rows, 8);

    //  A tag or a batch id the database refuses: 400, naming it, nothing stored
    char path [600];
    rp_test_server_photo (&server, "refused.jpg", variant++, path, sizeof path);
    size_t len = 0;
    char *bytes = rp_test_read_file (path, &len);
    static const struct { const char *header; const char *named; } refused [] = {
        { "X-Tags: fine,bad\xed\xa0\x80tag", "tag" },
        { "X-Batch-Id: no-good!", "batch" },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        const char *headers [] = { "Content-Type: image/jpeg", "X-Filename: refused.jpg", refused [i].header, NULL };
        long status = rp_test_request (&server, "POST", "/api/v1/photos", token, headers, bytes, len, NULL, &reply);
        cr_expect_eq (status, 400, "%s: %ld %s", refused [i].header, status, reply.body);
        s_detail (&reply, detail, sizeof detail);
        cr_expect (strstr (detail, refused [i].named), "the 400 names the %s: %s", refused [i].named, detail);
        rp_test_reply_free (&reply);
    }
    curl_mime *form = curl_mime_init (NULL);
    curl_mimepart *part = curl_mime_addpart (form);
    curl_mime_name (part, "file");
    curl_mime_filedata (part, path);
    part = curl_mime_addpart (form);
    curl_mime_name (part, "tags");
    curl_mime_data (part, "\xc0\xaf", CURL_ZERO_TERMINATED);
    long status = rp_test_request (&server, "POST", "/api/v1/photos", token, NULL, NULL, 0, form, &reply);
    curl_mime_free (form);
    cr_expect_eq (status, 400, "%ld %s", status, reply.body);
    s_detail (&reply, detail, sizeof detail);
    cr_expect (strstr (detail, "tag"), "%s", detail);
    rp_test_reply_free (&reply);
    //  tus: the same refusals at creation (Upload-Metadata, base64), and
    //  metadata that is not text (SQLite would keep it; PostgreSQL not)
    static const struct { const char *header; const char *named; } metadata [] = {
        { "Upload-Metadata: filename YS5qcGc=,tags 7aCA", "tag" },                 //  a surrogate
        { "Upload-Metadata: filename YS5qcGc=,batch_id bm8gZ29vZCE=", "batch" },   //  "no good!"
        { "Upload-Metadata: filename YS5qcGc=,k\xed\xa0\x80 YQ==", "Upload-Metadata" },
    };
    for (size_t i = 0; i < sizeof metadata / sizeof metadata [0]; i++) {
        const char *headers [] = { "Tus-Resumable: 1.0.0", "Upload-Length: 100", metadata [i].header, NULL };
        status = rp_test_request (&server, "POST", "/api/v1/tus", token, headers, NULL, 0, NULL, &reply);
        cr_expect_eq (status, 400, "%s: %ld %s", metadata [i].header, status, reply.body);
        s_detail (&reply, detail, sizeof detail);
        cr_expect (strstr (detail, metadata [i].named), "%s", detail);
        rp_test_reply_free (&reply);
    }
    cr_expect_eq (rp_test_photo_rows (&server), rows, "nothing refused was stored");
    cr_expect_eq (rp_test_library_tmp_files (&server.lib), 0);

    //  The database fails (here: a trigger that refuses every tag) with a
    //  message that merely says "tag": that is the server's trouble, a 503
    //  to try again, not the client's 400
    s_sql (&server, pg, pg
           ? "CREATE FUNCTION tags_offline () RETURNS trigger LANGUAGE plpgsql AS "
             "$$ BEGIN RAISE EXCEPTION 'tag storage is offline'; END $$; "
             "CREATE TRIGGER tags_offline BEFORE INSERT ON tags FOR EACH ROW EXECUTE FUNCTION tags_offline ()"
           : "CREATE TRIGGER tags_offline BEFORE INSERT ON tags BEGIN "
             "SELECT RAISE (ABORT, 'tag storage is offline'); END");
    const char *tagged [] = { "Content-Type: image/jpeg", "X-Filename: tagged.jpg", "X-Tags: holiday", NULL };
    status = rp_test_request (&server, "POST", "/api/v1/photos", token, tagged, bytes, len, NULL, &reply);
    cr_expect_eq (status, 503, "%ld %s", status, reply.body);
    cr_expect (rp_test_has_header (&reply, "Retry-After:"), "%s", reply.headers);
    rp_test_reply_free (&reply);
    const char *tus_tagged [] = { "Tus-Resumable: 1.0.0", "Upload-Length: 100",
                                  "Upload-Metadata: filename YS5qcGc=,tags aG9saWRheQ==", NULL };
    status = rp_test_request (&server, "POST", "/api/v1/tus", token, tus_tagged, NULL, 0, NULL, &reply);
    cr_expect_eq (status, 503, "tus creation: %ld %s", status, reply.body);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_photo_rows (&server), rows, "the failed commits left nothing");
    //  With the database well again the same upload goes in
    s_sql (&server, pg, pg ? "DROP TRIGGER tags_offline ON tags" : "DROP TRIGGER tags_offline");
    status = rp_test_request (&server, "POST", "/api/v1/photos", token, tagged, bytes, len, NULL, &reply);
    cr_expect_eq (status, 202, "%ld %s", status, reply.body);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_photo_rows (&server), rows + 1);
    free (bytes);
    free (token);
    rp_test_server_stop (&server);
}

static void s_hundred_concurrent_uploads (bool pg);
Test (gateway, hundred_concurrent_uploads, .timeout = 300) { s_hundred_concurrent_uploads (false); }
Test (gateway_pg, hundred_concurrent_uploads, .timeout = 300) { s_hundred_concurrent_uploads (true); }

static void
s_hundred_concurrent_uploads (bool pg)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = pg ? "gw_hundred" : "gw-hundred", .pg = pg });
    char *token = rp_test_login (&server, "alice");
    enum { N = 100 };
    char (*paths) [600] = calloc (N, 600);
    for (int i = 0; i < N; i++) {
        char name [32];
        snprintf (name, sizeof name, "c%03d.jpg", i);
        snprintf (paths [i], 600, "%s/%s", server.lib.dir, name);
        cr_assert_eq (rp_test_make_jpeg (paths [i], 1200 + i, 900, 1), 0);
    }
    CURLM *multi = curl_multi_init ();
    curl_multi_setopt (multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) N);
    CURL *easy [N];
    curl_mime *forms [N];
    rp_test_reply_t replies [N];
    CURLcode results [N];
    char url [128];
    snprintf (url, sizeof url, "%s/api/v1/photos", server.base);
    for (int i = 0; i < N; i++) {
        forms [i] = curl_mime_init (NULL);
        curl_mimepart *part = curl_mime_addpart (forms [i]);
        curl_mime_name (part, "file");
        curl_mime_filedata (part, paths [i]);
        part = curl_mime_addpart (forms [i]);
        curl_mime_name (part, "batch_id");
        curl_mime_data (part, "hundred", CURL_ZERO_TERMINATED);
        easy [i] = rp_test_http_prepare (&(rp_test_http_t) { .method = "POST", .url = url, .token = token,
                                                            .form = forms [i] }, &replies [i]);
        results [i] = CURLE_GOT_NOTHING;
        curl_easy_setopt (easy [i], CURLOPT_FORBID_REUSE, 1L);
        curl_multi_add_handle (multi, easy [i]);
    }
    int64_t started = rp_clock_ms ();
    int running = 1;
    while (running) {
        curl_multi_perform (multi, &running);
        if (running)
            curl_multi_poll (multi, NULL, 0, 100, NULL);
    }
    int64_t uploaded_ms = rp_clock_ms () - started;
    CURLMsg *done;
    int left;
    while ((done = curl_multi_info_read (multi, &left)))
        for (int i = 0; i < N; i++)
            if (done->msg == CURLMSG_DONE && done->easy_handle == easy [i])
                results [i] = done->data.result;
    int accepted = 0;
    for (int i = 0; i < N; i++) {
        curl_multi_remove_handle (multi, easy [i]);
        long code = rp_test_http_finish (easy [i], results [i], &replies [i]);
        if (code == 202)
            accepted++;
        else
            cr_log_warn ("upload %d: %ld %s", i, code, replies [i].body ? replies [i].body : "");
        curl_mime_free (forms [i]);
        rp_test_reply_free (&replies [i]);
    }
    curl_multi_cleanup (multi);
    cr_assert_eq (accepted, N, "all %d uploads answered 202", N);
    //  All reach complete: the batch counts say so
    int complete = 0;
    for (int waited = 0; waited < 240000 && complete < N; waited += 250) {
        rp_test_reply_t reply;
        rp_test_request (&server, "GET", "/api/v1/batches/hundred", token, NULL, NULL, 0, NULL, &reply);
        json_t *batch = rp_test_reply_json (&reply);
        complete = (int) json_integer_value (json_object_get (json_object_get (batch, "counts"), "complete"));
        int failed = (int) json_integer_value (json_object_get (json_object_get (batch, "counts"), "failed"));
        cr_assert_eq (failed, 0, "%s", reply.body);
        json_decref (batch);
        rp_test_reply_free (&reply);
        if (complete < N)
            usleep (250 * 1000);
    }
    int64_t complete_ms = rp_clock_ms () - started;
    cr_expect_eq (complete, N);
    //  Peak resident memory of the whole serve process (gateway + workers)
    char status_path [64], *status_text = NULL, command [128];
    snprintf (status_path, sizeof status_path, "/proc/%d/status", (int) server.pid);
    snprintf (command, sizeof command, "grep VmHWM %s", status_path);
    rp_test_run (command, &status_text);
    cr_log_info ("100 concurrent uploads: all 202 in %lld ms, all complete in %lld ms; serve %s",
                 (long long) uploaded_ms, (long long) complete_ms, status_text ? status_text : "");
    fprintf (stderr, "MEASURED: 100 concurrent uploads: all 202 in %lld ms, all complete in %lld ms; serve %s",
             (long long) uploaded_ms, (long long) complete_ms, status_text ? status_text : "\n");
    free (status_text);
    free (paths);
    free (token);
    rp_test_server_stop (&server);
}

//  ---------------------------------------------------------------------------
//  Live status

typedef struct {
    rp_test_server_t *server;
    const char *token;
    char last_event_id [32];        //  "" for none
    int want;                       //  events to read before hanging up
    char *text;                     //  what the stream said (NULL: nothing)
    int events;
} s_sse_t;

static bool
s_sse_enough (const rp_test_reply_t *reply, void *arg)
{
    s_sse_t *sse = (s_sse_t *) arg;
    sse->events = rp_test_count_text (reply->body, "event: photo\n");
    return sse->events >= sse->want;
}

//  Read the user's event stream until it has said `want` events, or for
//  timeout_ms; how the transfer ended
static CURLcode
s_sse_read (s_sse_t *sse, long timeout_ms)
{
    char url [128], resume [64];
    snprintf (url, sizeof url, "%s/api/v1/events", sse->server->base);
    snprintf (resume, sizeof resume, "Last-Event-ID: %s", sse->last_event_id);
    const char *headers [] = { sse->last_event_id [0] ? resume : NULL, NULL };
    rp_test_reply_t reply;
    rp_test_http (&(rp_test_http_t) { .url = url, .token = sse->token, .headers = headers,
                                      .timeout_ms = timeout_ms, .enough = s_sse_enough, .arg = sse }, &reply);
    CURLcode result = reply.result;
    sse->text = rp_test_reply_take_body (&reply);
    return result;
}

static void *
s_sse_thread (void *arg)
{
    s_sse_read ((s_sse_t *) arg, 90000);
    return NULL;
}

//  The status sequence the stream shows for one photo, "queued,processing,..."
static void
s_sequence (const char *text, const char *photo_id, char *out, size_t outlen)
{
    out [0] = 0;
    char needle [64];
    snprintf (needle, sizeof needle, "{\"id\":\"%s\"", photo_id);
    for (const char *p = text; (p = strstr (p, needle)); p += strlen (needle)) {
        const char *status = strstr (p, "\"status\":\"");
        if (!status)
            break;
        status += 10;
        size_t n = strcspn (status, "\"");
        size_t used = strlen (out);
        snprintf (out + used, outlen - used, "%s%.*s", used ? "," : "", (int) n, status);
    }
}

static void s_live_status_events_resume (bool pg);
Test (gateway, live_status_events_resume, .timeout = 180) { s_live_status_events_resume (false); }
Test (gateway_pg, live_status_events_resume, .timeout = 180) { s_live_status_events_resume (true); }

static void
s_live_status_events_resume (bool pg)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = pg ? "gw_events" : "gw-events", .pg = pg });
    char *token = rp_test_login (&server, "alice");
    s_sse_t live = { .server = &server, .token = token, .want = 6 };
    pthread_t thread;
    pthread_create (&thread, NULL, s_sse_thread, &live);
    usleep (500 * 1000);

    CURL *curl = curl_easy_init ();
    curl_mime *form = curl_mime_init (curl);
    for (int i = 0; i < 2; i++) {
        char name [32], path [600];
        snprintf (name, sizeof name, "live%d.jpg", i);
        rp_test_server_photo (&server, name, 10 + i, path, sizeof path);
        curl_mimepart *part = curl_mime_addpart (form);
        curl_mime_name (part, "file");
        curl_mime_filedata (part, path);
    }
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, NULL, NULL, 0, form, &reply), 202);
    json_t *answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    curl_mime_free (form);
    curl_easy_cleanup (curl);
    pthread_join (thread, NULL);
    cr_assert_eq (live.events, 6, "3 events for each of 2 photos:\n%s", live.text);
    for (int i = 0; i < 2; i++) {
        const char *id = json_string_value (json_object_get (json_array_get (json_object_get (answer, "photos"), (size_t) i), "id"));
        char sequence [256];
        s_sequence (live.text, id, sequence, sizeof sequence);
        cr_expect_str_eq (sequence, "queued,processing,complete", "photo %s:\n%s", id, live.text);
    }
    cr_expect (strstr (live.text, "\"batch_id\":\""));

    //  Drop and come back after the third event: the rest, nothing missed
    const char *third = live.text;
    for (int i = 0; i < 3; i++)
        third = strstr (third, "id: ") + 4;
    s_sse_t again = { .server = &server, .token = token, .want = 3 };
    snprintf (again.last_event_id, sizeof again.last_event_id, "%.*s", (int) strcspn (third, "\n"), third);
    pthread_create (&thread, NULL, s_sse_thread, &again);
    pthread_join (thread, NULL);
    cr_assert_eq (again.events, 3, "%s", again.text);
    const char *tail_live = strstr (third, "\n\nid: ");
    const char *tail_again = strstr (again.text, "id: ");
    cr_assert_not_null (tail_live);
    cr_assert_not_null (tail_again);
    cr_expect_str_eq (tail_again, tail_live + 2, "the resumed stream continues exactly where the first left off");

    //  Another user's stream sees none of it
    char *bob = rp_test_login (&server, "bob");
    s_sse_t other = { .server = &server, .token = bob, .want = 1 };
    snprintf (other.last_event_id, sizeof other.last_event_id, "0");
    cr_expect_eq (s_sse_read (&other, 1500), CURLE_OPERATION_TIMEDOUT);
    cr_expect_eq (other.events, 0, "%s", other.text);
    //  No token: 401
    cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/events", NULL, NULL, NULL, 0, NULL, &reply), 401);
    rp_test_reply_free (&reply);

    json_decref (answer);
    free (live.text);
    free (again.text);
    free (other.text);
    free (bob);
    free (token);
    rp_test_server_stop (&server);
}

//  ---------------------------------------------------------------------------
//  `rapidphoto gateway`: the HTTP role alone

Test (gateway, gateway_alone_feeds_the_engine_later, .timeout = 120)
{
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "gw-alone" });
    char *token = rp_test_login (&server, "alice");
    rp_test_server_stop (&server);

    //  The gateway alone takes the upload: it is stored and queued
    pid_t pid = rp_test_spawn ((char *[]) { "gateway", NULL }, server.env, NULL, server.log);
    rp_test_server_answers (&server);
    char path [600];
    rp_test_server_photo (&server, "alone.jpg", 7, path, sizeof path);
    size_t len = 0;
    char *bytes = rp_test_read_file (path, &len);
    const char *headers [] = { "Content-Type: image/jpeg", "X-Filename: alone.jpg", NULL };
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, headers, bytes, len, NULL, &reply), 202,
                  "%s", reply.body);
    json_t *answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    char id [RP_ID_MAX];
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (json_array_get (json_object_get (answer, "photos"), 0), "id")));
    json_decref (answer);
    usleep (600 * 1000);
    char photo_path [128];
    snprintf (photo_path, sizeof photo_path, "/api/v1/photos/%s", id);
    cr_assert_eq (rp_test_request (&server, "GET", photo_path, token, NULL, NULL, 0, NULL, &reply), 200);
    cr_expect (strstr (reply.body, "\"status\":\"queued\""), "no pipeline here: %s", reply.body);
    rp_test_reply_free (&reply);
    //  Unknown users and wrong passwords look the same
    cr_expect_eq (rp_test_json_request (&server, "POST", "/api/v1/auth/login", NULL,
                                  "{\"username\":\"nobody\",\"password\":\"x\"}", &reply), 401);
    rp_test_reply_free (&reply);
    cr_expect_eq (rp_test_request (&server, "GET", "/nowhere", NULL, NULL, NULL, 0, NULL, &reply), 404);
    cr_expect (strstr (reply.headers, "application/problem+json"));
    rp_test_reply_free (&reply);
    kill (pid, SIGTERM);
    cr_expect_eq (rp_test_wait (pid, 30000), 0);

    //  The engine started later on the same library finishes it
    server.pid = rp_test_spawn ((char *[]) { "serve", NULL }, server.env, NULL, server.log);
    char *status = NULL;
    for (int i = 0; i < 200; i++) {
        rp_test_reply_t ping;
        if (rp_test_request (&server, "GET", "/healthz", NULL, NULL, NULL, 0, NULL, &ping) == 200) {
            rp_test_reply_free (&ping);
            break;
        }
        rp_test_reply_free (&ping);
        usleep (50 * 1000);
    }
    status = rp_test_wait_final (&server, token, id, 60000);
    cr_expect_str_eq (status, "complete");
    free (status);
    free (bytes);
    free (token);
    rp_test_server_stop (&server);
}

Test (gateway, idle_event_streams_do_not_hold_threads, .timeout = 120)
{
    rp_test_server_t server;
    //  One user's streams, more than the default allows one user
    const char *env [] = { "RAPIDPHOTO_HTTP_MAX_STREAMS_PER_USER=64", NULL };
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "gw-idle", .env = env });
    char *token = rp_test_login (&server, "alice");
    //  Far more open streams than the gateway has threads
    enum { STREAMS = 64 };
    int fds [STREAMS];
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) server.port) };
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    char request [4096];
    int n = snprintf (request, sizeof request, "GET /api/v1/events HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer %s\r\n\r\n", token);
    for (int i = 0; i < STREAMS; i++) {
        fds [i] = socket (AF_INET, SOCK_STREAM, 0);
        cr_assert_eq (connect (fds [i], (struct sockaddr *) &addr, sizeof addr), 0);
        cr_assert_eq (write (fds [i], request, (size_t) n), n);
    }
    //  Each stream has started
    for (int i = 0; i < STREAMS; i++) {
        char head [512] = "";
        ssize_t got = read (fds [i], head, sizeof head - 1);
        cr_assert_gt (got, 0);
        cr_expect (strstr (head, "200 OK") && strstr (head, "text/event-stream"), "%s", head);
    }
    //  Ordinary requests are still served at once
    int64_t started = rp_clock_ms ();
    for (int i = 0; i < 20; i++) {
        rp_test_reply_t reply;
        cr_expect_eq (rp_test_request (&server, "GET", "/api/v1/photos", token, NULL, NULL, 0, NULL, &reply), 200);
        rp_test_reply_free (&reply);
    }
    cr_expect_lt (rp_clock_ms () - started, 3000, "20 requests took %lld ms", (long long) (rp_clock_ms () - started));
    rp_test_reply_t reply;
    cr_expect_eq (rp_test_request (&server, "GET", "/metrics", NULL, NULL, NULL, 0, NULL, &reply), 200);
    char gauge [64];
    snprintf (gauge, sizeof gauge, "rapidphoto_event_streams %d", STREAMS);
    cr_expect (strstr (reply.body, gauge), "%s", reply.body);
    rp_test_reply_free (&reply);
    for (int i = 0; i < STREAMS; i++)
        close (fds [i]);
    free (token);
    //  Shutdown ends open streams too
    rp_test_server_stop (&server);
}

//  Run command on a fresh library with http.listen on port, until it exits
//  (20 s at most, then killed): its exit status, or -1; its log into log
static int
s_run_on_port (const char *command, int port, char *log, size_t loglen)
{
    char listen_env [64];
    snprintf (listen_env, sizeof listen_env, "RAPIDPHOTO_HTTP_LISTEN=127.0.0.1:%d", port);
    rp_test_library_t lib;
    rp_test_library_init (&lib, command);
    char *env [12];
    int n = 0;
    for (int k = 0; lib.env [k] && n < 10; k++)
        env [n++] = lib.env [k];
    env [n++] = listen_env;
    env [n] = NULL;
    snprintf (log, loglen, "%s/%s.log", lib.dir, command);
    pid_t pid = rp_test_spawn ((char *[]) { (char *) command, NULL }, env, NULL, log);
    int status = rp_test_wait (pid, 20000);
    if (status == -1) {
        kill (pid, SIGKILL);
        rp_test_wait (pid, 5000);
    }
    return status;
}

//  http.listen already taken (another process on the port): serve and
//  gateway say so and exit 1 at once. They used to go on without HTTP:
//  the gateway's thread had ended, and the PORT question read the actor's
//  last signal as its answer; serve logged "serving" and, on SIGTERM,
//  could wait forever for a signal already taken.
Test (gateway, a_taken_port_stops_serve_and_gateway_at_once, .timeout = 120)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    cr_assert_geq (fd, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    cr_assert_eq (bind (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    cr_assert_eq (listen (fd, 1), 0);
    socklen_t len = sizeof addr;
    cr_assert_eq (getsockname (fd, (struct sockaddr *) &addr, &len), 0);
    static const char *commands [] = { "serve", "gateway" };
    for (int i = 0; i < 2; i++) {
        char log [400];
        int status = s_run_on_port (commands [i], ntohs (addr.sin_port), log, sizeof log);
        cr_expect_eq (status, 1, "%s on a taken port: exit %d, not 1 (log %s)", commands [i], status, log);
        cr_expect_eq (rp_test_count_in_file (log, "Address already in use"), 1, "the reason, once (log %s)", log);
        cr_expect_eq (rp_test_count_in_file (log, "cannot serve HTTP on"), 1, "see %s", log);
        cr_expect_eq (rp_test_count_in_file (log, "serving http://"), 0, "never said to serve (log %s)", log);
    }
    close (fd);
}

//  Two engines on one host, the second given the first's http.listen: the
//  kernel would share the port between them (SO_REUSEPORT) and hand each
//  connection to either; the second must refuse to start instead.
Test (gateway, a_port_another_engine_serves_is_refused, .timeout = 120)
{
    rp_test_server_t first;
    rp_test_server_start (&first, &(rp_test_server_opts_t) { .name = "gw-port-owner" });
    char log [400];
    int status = s_run_on_port ("gateway", first.port, log, sizeof log);
    cr_expect_eq (status, 1, "a second engine on a served port: exit %d, not 1 (log %s)", status, log);
    cr_expect_eq (rp_test_count_in_file (log, "Address already in use"), 1, "the reason, once (log %s)", log);
    //  The first still answers every request
    for (int i = 0; i < 20; i++) {
        rp_test_reply_t reply;
        rp_test_request (&first, "GET", "/healthz", NULL, NULL, NULL, 0, NULL, &reply);
        cr_expect_eq (reply.status, 200, "request %d: %ld", i, reply.status);
        rp_test_reply_free (&reply);
    }
    rp_test_server_stop (&first);
}

//  The niceness of each of serve's threads (/proc/PID/task/TID/stat, the
//  19th field): how many run at `nice`, and the main thread's
static int
s_threads_at_nice (pid_t pid, int nice, int *main_nice)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *dir = opendir (path);
    cr_assert (dir, "%s: %s", path, strerror (errno));
    int count = 0;
    *main_nice = -100;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        char stat_path [128], line [1024] = "";
        snprintf (stat_path, sizeof stat_path, "%s/%s/stat", path, entry->d_name);
        FILE *file = fopen (stat_path, "r");
        if (!file)
            continue;                       //  the thread ended meanwhile
        bool read = fgets (line, sizeof line, file) != NULL;
        fclose (file);
        //  After the command's ")": state is field 3, nice field 19
        char *rest = read ? strrchr (line, ')') : NULL;
        cr_assert (rest, "%s: %s", stat_path, line);
        int field = 2, value = -100;
        for (char *token = strtok (rest + 1, " "); token; token = strtok (NULL, " "))
            if (++field == 19) {
                value = atoi (token);
                break;
            }
        cr_assert_neq (value, -100, "%s has no nice field: %s", stat_path, line);
        count += value == nice;
        if (atoi (entry->d_name) == (int) pid)
            *main_nice = value;
    }
    closedir (dir);
    return count;
}

//  pools.nice: the job threads (two resize, one EXIF here) run at niceness
//  10 by default, below the main, HTTP and pipeline threads at 0, so that
//  acknowledging uploads never waits for a decode; 0 turns it off
Test (gateway, job_threads_run_below_the_http_threads, .timeout = 120)
{
    const char *pools [] = { "RAPIDPHOTO_POOLS_RESIZE=2", "RAPIDPHOTO_POOLS_EXIF=1", NULL };
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "gw-nice", .env = pools });
    //  A photo through the pools, so libvips has started what it starts
    char *token = rp_test_login (&server, "alice");
    char path [600];
    rp_test_server_photo (&server, "nice.jpg", 1, path, sizeof path);
    size_t len = 0;
    char *bytes = rp_test_read_file (path, &len);
    const char *headers [] = { "Content-Type: image/jpeg", "X-Filename: nice.jpg", NULL };
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (&server, "POST", "/api/v1/photos", token, headers, bytes, len, NULL, &reply),
                  202, "%s", reply.body);
    json_t *answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    char *status = rp_test_wait_final (&server, token, json_string_value (json_object_get (
                                       json_array_get (json_object_get (answer, "photos"), 0), "id")), 60000);
    cr_assert_str_eq (status, "complete");
    int main_nice;
    int niced = s_threads_at_nice (server.pid, 10, &main_nice);
    int plain = s_threads_at_nice (server.pid, 0, &main_nice);
    cr_expect_geq (niced, 3, "the 3 job threads at nice 10: %d", niced);
    cr_expect_eq (main_nice, 0);
    cr_expect_geq (plain, 3, "main, HTTP and pipeline threads at 0: %d", plain);
    free (status);
    json_decref (answer);
    free (bytes);
    free (token);
    rp_test_server_stop (&server);

    const char *off [] = { "RAPIDPHOTO_POOLS_RESIZE=2", "RAPIDPHOTO_POOLS_EXIF=1", "RAPIDPHOTO_POOLS_NICE=0", NULL };
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "gw-nice-off", .env = off });
    cr_expect_eq (s_threads_at_nice (server.pid, 10, &main_nice), 0, "pools.nice = 0: nothing niced");
    rp_test_server_stop (&server);
}
