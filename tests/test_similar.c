/*  tests/test_similar.c: near-duplicates (issue 14, item 4) through a real
    `rapidphoto serve`, on SQLite and on PostgreSQL (RP_TEST_PG_URL).

    A camera photo of the corpus is uploaded, then variants of it made
    here with the vips CLI (resized and recompressed, PNG, WebP, metadata
    stripped) and a different photo. Checked over HTTP: every photo's
    JSON has a 16-hex "phash"; GET /photos/{id}/similar lists the variants
    nearest first with their distance, never the photo itself nor the
    different one, and is 404 for another user; the complete events of
    the stream (SSE, from the start) carry "similar": a variant's names
    the source, the source's (first in) and the different photo's are
    empty. And the events outbox (what the SQS bridge publishes) carries
    the same lists, read from the database afterwards.
*/
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "engine/db/db.h"
#include "engine/phash.h"
#include "tests/support/library.h"
#include "tests/support/server.h"
#include "tests/support/testdata.h"

#define S_SOURCE    "camera/sony_dslr-a200_makernote.jpg"
#define S_OTHER     "camera/nikon_d70s_gps_makernote.jpg"
#define S_VARIANTS  4

//  Upload one file; its photo id into id
static void
s_upload (rp_test_server_t *server, const char *token, const char *path, char id [RP_ID_MAX])
{
    CURL *curl = curl_easy_init ();
    curl_mime *form = curl_mime_init (curl);
    curl_mimepart *part = curl_mime_addpart (form);
    curl_mime_name (part, "file");
    curl_mime_filedata (part, path);
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "POST", "/api/v1/photos", token, NULL, NULL, 0, form, &reply), 202,
                  "%s", reply.body);
    curl_mime_free (form);
    curl_easy_cleanup (curl);
    json_t *answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    json_t *photo = json_array_get (json_object_get (answer, "photos"), 0);
    cr_assert (json_is_false (json_object_get (photo, "duplicate")), "%s is not an exact duplicate", path);
    snprintf (id, RP_ID_MAX, "%s", json_string_value (json_object_get (photo, "id")));
    json_decref (answer);
    char *status = rp_test_wait_final (server, token, id, 20000);
    cr_assert_str_eq (status, "complete", "%s", path);
    free (status);
}

static json_t *
s_get (rp_test_server_t *server, const char *token, const char *path, long want)
{
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply), want,
                  "GET %s: %s", path, reply.body);
    json_t *json = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    return json;
}

static bool
s_has (json_t *ids, const char *id)
{
    size_t i;
    json_t *one;
    json_array_foreach (ids, i, one)
        if (strcmp (json_string_value (one), id) == 0)
            return true;
    return false;
}

typedef struct {
    int want;
    int events;
} s_enough_t;

static bool
s_enough (const rp_test_reply_t *reply, void *arg)
{
    s_enough_t *enough = arg;
    enough->events = rp_test_count_text (reply->body, "event: photo\n");
    return enough->events >= enough->want;
}

//  The "similar" of each photo's complete event, id -> array, from the
//  stream replayed from its start
static json_t *
s_complete_events (rp_test_server_t *server, const char *token, int photos)
{
    char url [128];
    snprintf (url, sizeof url, "%s/api/v1/events", server->base);
    const char *headers [] = { "Last-Event-ID: 0", NULL };
    s_enough_t enough = { .want = 3 * photos };     //  queued, processing, complete
    rp_test_reply_t reply;
    rp_test_http (&(rp_test_http_t) { .url = url, .token = token, .headers = headers,
                                      .timeout_ms = 10000, .enough = s_enough, .arg = &enough }, &reply);
    cr_assert_eq (enough.events, 3 * photos, "%s", reply.body);
    json_t *similar = json_object ();
    for (const char *p = reply.body; (p = strstr (p, "data: ")); p += 6) {
        json_t *event = json_loadb (p + 6, strcspn (p + 6, "\n"), 0, NULL);
        cr_assert (json_is_object (event), "%.200s", p);
        const char *status = json_string_value (json_object_get (event, "status"));
        if (strcmp (status, "complete") == 0) {
            json_t *ids = json_object_get (event, "similar");
            cr_assert (json_is_array (ids), "a complete event has \"similar\": %.300s", p);
            json_object_set (similar, json_string_value (json_object_get (event, "id")), ids);
        }
        else
            cr_expect_null (json_object_get (event, "similar"), "only complete events: %.300s", p);
        json_decref (event);
    }
    rp_test_reply_free (&reply);
    return similar;
}

static void
s_near_duplicates (bool pg)
{
    char source [1024], other [1024];
    if (!rp_testdata_dir ()) {
        cr_skip_test ("the corpus (../shared/testdata) is absent: near-duplicates not tested");
        return;
    }
    rp_testdata_path (source, sizeof source, S_SOURCE);
    rp_testdata_path (other, sizeof other, S_OTHER);
    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = pg ? "similar_pg" : "similar", .pg = pg });
    char *token = rp_test_login (&server, "alice");
    char *bob = rp_test_login (&server, "bob");
    //  An outbox publisher starts at the newest event: start one now
    char err [256];
    rp_db_t *db = rp_db_open (server.db_url, err, sizeof err);
    cr_assert_not_null (db, "%s", err);
    int64_t cursor = 0;
    json_t *events = NULL;
    cr_assert_eq (rp_db_outbox_claim (db, "test_similar", "me", 1, 60000, 100, &cursor, &events,
                                      err, sizeof err), 0, "%s", err);
    json_decref (events);

    //  The variants, made with the vips CLI beside the data folder
    char variants [S_VARIANTS][1100], command [4096];
    //  { name, vips operation, output options, extension, operation's argument }
    const char *makes [S_VARIANTS][5] = {
        { "resize",   "resize", "[Q=70]",       "jpg",  "0.4" },    //  smaller, recompressed
        { "png",      "copy",   "",             "png",  "" },
        { "webp",     "copy",   "[Q=75]",       "webp", "" },
        { "stripped", "copy",   "[Q=90,strip]", "jpg",  "" },
    };
    for (int i = 0; i < S_VARIANTS; i++) {
        snprintf (variants [i], sizeof variants [i], "%s/variant-%s.%s", server.lib.dir, makes [i][0], makes [i][3]);
        snprintf (command, sizeof command, "vips %s '%s' '%s%s' %s", makes [i][1], source, variants [i],
                  makes [i][2], makes [i][4]);
        cr_assert_eq (rp_test_run (command, NULL), 0, "%s", command);
    }

    //  The source first, then its variants, then a different photo
    char source_id [RP_ID_MAX], variant_ids [S_VARIANTS][RP_ID_MAX], other_id [RP_ID_MAX];
    s_upload (&server, token, source, source_id);
    for (int i = 0; i < S_VARIANTS; i++)
        s_upload (&server, token, variants [i], variant_ids [i]);
    s_upload (&server, token, other, other_id);

    //  Every photo has its hash in its JSON
    char path [256];
    snprintf (path, sizeof path, "/api/v1/photos/%s", source_id);
    json_t *photo = s_get (&server, token, path, 200);
    uint64_t hash;
    cr_expect_eq (rp_phash_parse (json_string_value (json_object_get (photo, "phash")), &hash), 0,
                  "phash: %s", json_dumps (photo, 0));
    json_decref (photo);

    //  The source's near-duplicates: its variants, nearest first
    snprintf (path, sizeof path, "/api/v1/photos/%s/similar", source_id);
    json_t *answer = s_get (&server, token, path, 200);
    json_t *items = json_object_get (answer, "items");
    cr_assert_eq (json_array_size (items), S_VARIANTS, "%s", json_dumps (answer, 0));
    json_int_t last = -1;
    size_t i;
    json_t *item;
    json_t *found = json_array ();
    json_array_foreach (items, i, item) {
        json_int_t distance = json_integer_value (json_object_get (item, "distance"));
        cr_expect (json_is_integer (json_object_get (item, "distance")));
        cr_expect (distance >= last && distance <= RP_PHASH_THRESHOLD, "distance %lld", (long long) distance);
        last = distance;
        cr_expect_eq (rp_phash_parse (json_string_value (json_object_get (item, "phash")), &hash), 0);
        cr_expect_str_eq (json_string_value (json_object_get (item, "status")), "complete");
        cr_expect (json_is_object (json_object_get (item, "urls")), "the photo JSON the API gives elsewhere");
        json_array_append (found, json_object_get (item, "id"));
    }
    for (int v = 0; v < S_VARIANTS; v++)
        cr_expect (s_has (found, variant_ids [v]), "variant %s is similar", makes [v][0]);
    cr_expect (!s_has (found, source_id) && !s_has (found, other_id));
    json_decref (found);
    json_decref (answer);

    //  The different photo has none; another user's photo is not found
    snprintf (path, sizeof path, "/api/v1/photos/%s/similar", other_id);
    answer = s_get (&server, token, path, 200);
    cr_expect_eq (json_array_size (json_object_get (answer, "items")), 0, "%s", json_dumps (answer, 0));
    json_decref (answer);
    snprintf (path, sizeof path, "/api/v1/photos/%s/similar", source_id);
    json_decref (s_get (&server, bob, path, 404));
    json_decref (s_get (&server, token, "/api/v1/photos/nosuchphoto/similar", 404));

    //  The complete events said so as each photo finished
    json_t *similar = s_complete_events (&server, token, 2 + S_VARIANTS);
    cr_expect_eq (json_array_size (json_object_get (similar, source_id)), 0, "the first in has none");
    for (int v = 0; v < S_VARIANTS; v++) {
        json_t *ids = json_object_get (similar, variant_ids [v]);
        cr_expect (s_has (ids, source_id), "variant %s's complete event names the source", makes [v][0]);
        cr_expect_eq (json_array_size (ids), (size_t) v + 1, "the source and the variants before it");
    }
    cr_expect_eq (json_array_size (json_object_get (similar, other_id)), 0, "a different photo has none");

    //  The events outbox (what the SQS bridge publishes) carries them too
    rp_test_server_stop (&server);
    cr_assert_eq (rp_test_outbox_claim_at_least (db, "test_similar", "me", 1, 60000, 100, 2 + S_VARIANTS,
                                                 &cursor, &events, err, sizeof err), 0, "%s", err);
    int completes = 0;
    json_array_foreach (events, i, item) {
        if (strcmp (json_string_value (json_object_get (item, "status")), "complete"))
            continue;
        completes++;
        const char *id = json_string_value (json_object_get (item, "id"));
        cr_expect (json_equal (json_object_get (item, "similar"), json_object_get (similar, id)),
                   "photo %s: the outbox's similar is the stream's", id);
    }
    cr_expect_eq (completes, 2 + S_VARIANTS);
    json_decref (events);
    rp_db_close (&db);
    json_decref (similar);
    free (token);
    free (bob);
}

Test (similar, near_duplicates, .timeout = 120) { s_near_duplicates (false); }
Test (similar_pg, near_duplicates, .timeout = 120) { s_near_duplicates (true); }
