/*  tests/test_raw.c: DNG (camera RAW) through LibRaw, end to end.

    Camera RAW samples cannot be downloaded here, so tests/raw/make_dng.py
    builds DNGs at test time, into a temporary folder, from a real camera
    photo of the corpus (canon_powershot_sx60hs_orient6.jpg, 2048x1536):
    its stored pixels mosaicked to an RGGB Bayer pattern of 14-bit samples,
    with the DNG colour tags, EXIF and GPS IFDs; with and without a
    full-size embedded JPEG preview, with Orientation 1 and 6, truncated,
    and with the raw strip's offset past the end. mosaic_orient6.dng keeps
    its Exif and GPS IFDs after the raw data, past what libexif reads, so
    its exposure, lens, GPS values are LibRaw's (the EXIF actor's fallback);
    the others' come from libexif. LibRaw's own dcraw_emu
    renders mosaic.dng to within 2.1 (of 255; mean absolute difference,
    RGB, full size, sRGB tone curve, no auto-brightening) of the source.

    Each goes through real HTTP to a running `rapidphoto serve`; the test
    waits for the final state and reads back the photo JSON (type, size,
    EXIF, taken_at), the original (byte for byte), and the preview and
    thumbnail derivatives, compared with the source photo made the same
    size by libvips: mean absolute difference (of 255) of the greyscale
    images shrunk by 4, which averages out demosaic and JPEG noise but not
    a wrong picture. Threshold 6. Measured here: 0.49 to 0.50 for the 1440
    px previews and 0.81 to 0.84 for the 256 px thumbnails, both ways
    (embedded preview and demosaic); the undemosaiced mosaic the engine
    made before LibRaw (dark and grey) was 122 off at 1440 px, and the same
    photo upside down is 51.7 off (checked below on every photo, so the
    measure is known to tell). 6 leaves room for another demosaic or JPEG
    encoder while staying far below either mistake. The engine's
    log says which way each was decoded, and the test checks that the
    preview DNGs took the embedded preview and the others a demosaic.
    The two damaged DNGs must end `failed` with a reason naming LibRaw.
    In process, the resize actor then refuses a DNG over limits.max_pixels
    and, with derivatives of 720 px, demosaics at half size (measured 0.58
    off). Sniffing is checked on made-up headers.
    Skips, saying so, without the corpus or without /usr/bin/python3's
    tifffile and numpy (python3-tifffile, python3-numpy).
*/
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>
#include "actors/resize/resize.h"
#include "engine/config.h"
#include "library/sniff.h"
#include "tests/support/server.h"
#include "tests/support/testdata.h"

#define S_SOURCE "camera/canon_powershot_sx60hs_orient6.jpg"
#define S_THRESHOLD 6.0

static void
s_setup (void)
{
    cr_assert_eq (VIPS_INIT ("test_raw"), 0, "vips_init failed");
    vips_cache_set_max (0);
}

static void
s_teardown (void)
{
    vips_shutdown ();
}

//  About 30 s in the normal build; the ASan build on a loaded 2-core
//  machine takes several minutes
TestSuite (raw, .init = s_setup, .fini = s_teardown, .timeout = 540);

//  Make the DNGs into a new folder (caller frees its name); skips when the
//  corpus or the Python modules are absent.
static char *
s_make_dngs (char *source, size_t size)
{
    RP_REQUIRE_TESTDATA ();
    if (rp_test_run ("/usr/bin/python3 -c 'import tifffile, numpy' 2>/dev/null", NULL) != 0
    ||  rp_test_run ("command -v vips >/dev/null", NULL) != 0)
        cr_skip_test ("skipped: /usr/bin/python3 with tifffile and numpy (python3-tifffile, "
                      "python3-numpy) and the vips command (libvips-tools) are needed to build DNGs");
    cr_assert (rp_testdata_path (source, size, S_SOURCE));
    const char *src_dir = getenv ("RP_SOURCE_DIR");
    cr_assert (src_dir, "RP_SOURCE_DIR is set by ctest");
    char *dir = rp_test_tmpdir ("raw");
    char command [4096];
    snprintf (command, sizeof command, "/usr/bin/python3 '%s/tests/raw/make_dng.py' '%s' '%s' 2>&1",
              src_dir, source, dir);
    char *out = NULL;
    int status = rp_test_run (command, &out);
    cr_assert_eq (status, 0, "make_dng.py: %s", out ? out : "");
    free (out);
    return dir;
}

//  Mean absolute difference of two images as greyscale, both shrunk by 4
//  (a and b must have the same size). -1 when libvips fails.
static double
s_difference (VipsImage *a, VipsImage *b)
{
    VipsImage *t [8] = { NULL };
    double mean = -1;
    if (vips_colourspace (a, &t [0], VIPS_INTERPRETATION_B_W, NULL) == 0
    &&  vips_colourspace (b, &t [1], VIPS_INTERPRETATION_B_W, NULL) == 0
    &&  vips_resize (t [0], &t [2], 0.25, NULL) == 0
    &&  vips_resize (t [1], &t [3], 0.25, NULL) == 0
    &&  vips_extract_band (t [2], &t [4], 0, NULL) == 0
    &&  vips_extract_band (t [3], &t [5], 0, NULL) == 0
    &&  vips_subtract (t [4], t [5], &t [6], NULL) == 0
    &&  vips_abs (t [6], &t [7], NULL) == 0
    &&  vips_avg (t [7], &mean, NULL) != 0)
        mean = -1;
    for (size_t i = 0; i < sizeof t / sizeof t [0]; i++)
        if (t [i])
            g_object_unref (t [i]);
    return mean;
}

//  GET a derivative; compare it with the source photo thumbnailed by
//  libvips to the same size (turned upright by its own EXIF when
//  `upright`, else as stored). Checks the long edge; returns the difference.
static double
s_compare (rp_test_server_t *server, const char *token, const char *id, const char *name,
           const char *source, bool upright, int long_edge, bool portrait, double *flipped)
{
    char path [256];
    snprintf (path, sizeof path, "/api/v1/photos/%s/%s", id, name);
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "GET", path, token, NULL, NULL, 0, NULL, &reply), 200);
    VipsImage *got = vips_image_new_from_buffer (reply.body, reply.len, "", NULL);
    cr_assert (got, "%s of %s decodes", name, id);
    VipsImage *mem = vips_image_copy_memory (got);
    g_object_unref (got);
    rp_test_reply_free (&reply);
    cr_assert (mem);
    int w = mem->Xsize, h = mem->Ysize;
    cr_expect_eq (w > h ? w : h, long_edge, "%s is %dx%d", name, w, h);
    cr_expect_eq (h > w, portrait, "%s is %dx%d: %s expected", name, w, h,
                  portrait ? "portrait" : "landscape");
    VipsImage *lazy = NULL;
    cr_assert_eq (vips_thumbnail (source, &lazy, w, "height", h, "size", VIPS_SIZE_FORCE,
                                  "no_rotate", !upright, NULL), 0);
    //  In memory: it is read twice, once upside down
    VipsImage *reference = vips_image_copy_memory (lazy);
    g_object_unref (lazy);
    cr_assert (reference);
    double mad = s_difference (mem, reference);
    if (flipped) {
        VipsImage *down = NULL;
        cr_assert_eq (vips_rot (reference, &down, VIPS_ANGLE_D180, NULL), 0);
        *flipped = s_difference (mem, down);
        g_object_unref (down);
    }
    g_object_unref (reference);
    g_object_unref (mem);
    cr_assert (mad >= 0, "libvips compares %s", name);
    return mad;
}

//  Upload one file as a multipart form; its id into id
static void
s_upload (rp_test_server_t *server, const char *token, const char *path, char *id, size_t idlen)
{
    curl_mime *form = curl_mime_init (NULL);
    curl_mimepart *part = curl_mime_addpart (form);
    curl_mime_name (part, "file");
    curl_mime_filedata (part, path);
    rp_test_reply_t reply;
    cr_assert_eq (rp_test_request (server, "POST", "/api/v1/photos", token, NULL, NULL, 0, form, &reply), 202,
                  "%s", reply.body ? reply.body : "");
    curl_mime_free (form);
    json_t *answer = rp_test_reply_json (&reply);
    rp_test_reply_free (&reply);
    json_t *photo = json_array_get (json_object_get (answer, "photos"), 0);
    snprintf (id, idlen, "%s", json_string_value (json_object_get (photo, "id")));
    json_decref (answer);
}

static double
s_number (json_t *object, const char *key)
{
    json_t *v = json_object_get (object, key);
    cr_assert (json_is_number (v), "%s is a number", key);
    return json_number_value (v);
}

Test (raw, dng_end_to_end)
{
    char source [1024];
    char *dir = s_make_dngs (source, sizeof source);
    char path [2048];
    snprintf (path, sizeof path, "%s/expected.json", dir);
    json_error_t jerr;
    json_t *expected = json_load_file (path, 0, &jerr);
    cr_assert (expected, "expected.json: %s", jerr.text);

    rp_test_server_t server;
    rp_test_server_start (&server, &(rp_test_server_opts_t) { .name = "raw" });
    char *token = rp_test_login (&server, "alice");

    static const struct {
        const char *name;
        int orientation;        //  0: damaged, must fail
        const char *route;
    } files [] = {
        { "preview",         1, "from RAW, embedded preview" },
        { "preview_orient6", 6, "from RAW, embedded preview" },
        { "mosaic",          1, "from RAW, demosaiced," },
        { "mosaic_orient6",  6, "from RAW, demosaiced," },
        { "truncated",       0, NULL },
        { "garbage",         0, NULL },
    };
    enum { COUNT = sizeof files / sizeof files [0] };
    char ids [COUNT][RP_ID_MAX];
    for (int i = 0; i < COUNT; i++) {
        snprintf (path, sizeof path, "%s/%s.dng", dir, files [i].name);
        s_upload (&server, token, path, ids [i], sizeof ids [i]);
    }
    int w = (int) json_integer_value (json_object_get (expected, "width"));
    int h = (int) json_integer_value (json_object_get (expected, "height"));
    for (int i = 0; i < COUNT; i++) {
        char *status = rp_test_wait_final (&server, token, ids [i], 60000);
        cr_assert_str_eq (status, files [i].orientation ? "complete" : "failed", "%s", files [i].name);
        free (status);

        char url [512];
        snprintf (url, sizeof url, "/api/v1/photos/%s", ids [i]);
        rp_test_reply_t reply;
        cr_assert_eq (rp_test_request (&server, "GET", url, token, NULL, NULL, 0, NULL, &reply), 200);
        json_t *photo = rp_test_reply_json (&reply);
        rp_test_reply_free (&reply);
        cr_expect_str_eq (json_string_value (json_object_get (photo, "content_type")), "image/x-adobe-dng");
        if (!files [i].orientation) {
            const char *error = json_string_value (json_object_get (photo, "error"));
            cr_expect (error && strstr (error, "LibRaw: "), "%s fails naming LibRaw: %s", files [i].name,
                       error ? error : "(no error)");
            printf ("raw: %s failed: %s\n", files [i].name, error ? error : "");
            json_decref (photo);
            continue;
        }
        bool portrait = files [i].orientation == 6;
        cr_expect_eq (json_integer_value (json_object_get (photo, "width")), portrait ? h : w);
        cr_expect_eq (json_integer_value (json_object_get (photo, "height")), portrait ? w : h);
        cr_expect_str_eq (json_string_value (json_object_get (photo, "taken_at")),
                          json_string_value (json_object_get (expected, "taken_at")));
        json_t *exif = json_object_get (photo, "exif");
        cr_assert (json_is_object (exif), "%s has exif", files [i].name);
        static const char *const strings [] = { "make", "model", "lens", NULL };
        for (const char *const *k = strings; *k; k++)
            cr_expect_str_eq (json_string_value (json_object_get (exif, *k)),
                              json_string_value (json_object_get (expected, *k)), "%s %s", files [i].name, *k);
        static const char *const numbers [] = { "exposure_time", "f_number", "iso", "focal_length", NULL };
        for (const char *const *k = numbers; *k; k++)
            cr_expect (fabs (s_number (exif, *k) - s_number (expected, *k)) < 1e-6, "%s %s: %g",
                       files [i].name, *k, s_number (exif, *k));
        cr_expect_eq (json_integer_value (json_object_get (exif, "orientation")), files [i].orientation);
        json_t *gps = json_object_get (exif, "gps");
        cr_assert (json_is_object (gps), "%s has GPS", files [i].name);
        cr_expect (fabs (s_number (gps, "lat") - s_number (expected, "lat")) < 1e-5);
        cr_expect (fabs (s_number (gps, "lon") - s_number (expected, "lon")) < 1e-5);
        cr_expect (fabs (s_number (gps, "alt") - s_number (expected, "alt")) < 1e-3);
        char sha [65];
        snprintf (sha, sizeof sha, "%s", json_string_value (json_object_get (photo, "sha256")));
        json_decref (photo);

        //  The original, byte for byte
        snprintf (path, sizeof path, "%s/%s.dng", dir, files [i].name);
        size_t len = 0;
        char *bytes = rp_test_read_file (path, &len);
        //  (7 MB: up to 3 minutes, for the ASan build on a loaded machine)
        snprintf (url, sizeof url, "%s/api/v1/photos/%s/original", server.base, ids [i]);
        cr_assert_eq (rp_test_http (&(rp_test_http_t) { .url = url, .token = token, .timeout_ms = 180000 },
                                    &reply), 200);
        cr_expect (reply.len == len && memcmp (reply.body, bytes, len) == 0, "%s: the original as uploaded",
                   files [i].name);
        rp_test_reply_free (&reply);
        free (bytes);

        //  The derivatives against the source photo; upright: the DNG's
        //  Orientation 6 is the source JPEG's own EXIF orientation
        double flipped = 0;
        double preview = s_compare (&server, token, ids [i], "preview", source, portrait, 1440, portrait,
                                    &flipped);
        double thumb = s_compare (&server, token, ids [i], "thumbnail", source, portrait, 256, portrait, NULL);
        printf ("raw: %s: preview differs by %.2f (upside down: %.2f), thumbnail by %.2f (threshold %.0f)\n",
                files [i].name, preview, flipped, thumb, S_THRESHOLD);
        cr_expect (preview < S_THRESHOLD, "%s preview differs by %.2f", files [i].name, preview);
        cr_expect (thumb < S_THRESHOLD, "%s thumbnail differs by %.2f", files [i].name, thumb);
        cr_expect (flipped > 5 * S_THRESHOLD, "the measure tells a wrong picture: %.2f", flipped);

        //  The way it was decoded, from the engine's log line for it
        char *log = rp_test_read_file (server.log, &len);
        cr_assert (log);
        char needle [128];
        snprintf (needle, sizeof needle, "file=%s ", sha);
        const char *line = strstr (log, needle);
        cr_assert (line, "the log has a resize line for %s", files [i].name);
        const char *eol = strchr (line, '\n');
        char text [512];
        snprintf (text, sizeof text, "%.*s", (int) (eol ? eol - line : (long) strlen (line)), line);
        cr_expect (strstr (text, files [i].route), "%s: %s", files [i].name, text);
        free (log);
    }
    json_decref (expected);
    free (token);
    rp_test_server_stop (&server);

    //  A RAW larger than limits.max_pixels is refused from LibRaw's
    //  metadata, before a sample is read, with the reason the other
    //  formats give (the resize actor called here, on the same files)
    rp_config_t config;
    rp_config_defaults (&config);
    rp_resize_opts_t opts;
    rp_resize_opts_from_config (&opts, &config);
    opts.max_pixels = 1000000;
    char src [2048], prefix [2048 + 16], err [512];
    snprintf (src, sizeof src, "%s/mosaic.dng", dir);
    snprintf (prefix, sizeof prefix, "%s/limited", dir);
    json_t *result = NULL;
    cr_expect_eq (rp_resize_photo (&opts, src, prefix, &result, err, sizeof err), -1);
    cr_expect_null (result);
    cr_expect (strstr (err, "image is 2048x1536 pixels (3.1 megapixels), more than the pixel limit of 1.0 megapixels"),
               "%s", err);

    //  Derivatives of at most 720 px: half LibRaw's output (1024x768)
    //  covers them, so the demosaic runs at half size (one pixel per 2x2
    //  block); the result still matches the source photo
    rp_resize_opts_from_config (&opts, &config);
    for (int i = 0; i < opts.derivative_count; i++) {
        opts.derivatives [i].width = opts.derivatives [i].width > 720 ? 720 : opts.derivatives [i].width;
        opts.derivatives [i].height = opts.derivatives [i].height > 720 ? 720 : opts.derivatives [i].height;
    }
    snprintf (prefix, sizeof prefix, "%s/half", dir);
    cr_assert_eq (rp_resize_photo (&opts, src, prefix, &result, err, sizeof err), 0, "%s", err);
    json_t *made = json_object_get (json_object_get (result, "derivatives"), "preview");
    VipsImage *half = vips_image_new_from_file (json_string_value (json_object_get (made, "path")),
                                                "access", VIPS_ACCESS_RANDOM, NULL);
    cr_assert (half);
    cr_expect_eq (half->Xsize, 720);
    cr_expect_eq (half->Ysize, 540);
    VipsImage *reference = NULL;
    cr_assert_eq (vips_thumbnail (source, &reference, 720, "height", 540, "size", VIPS_SIZE_FORCE,
                                  "no_rotate", TRUE, NULL), 0);
    double mad = s_difference (half, reference);
    printf ("raw: mosaic at half size: preview (720 px) differs by %.2f\n", mad);
    cr_expect (mad >= 0 && mad < S_THRESHOLD, "half-size demosaic differs by %.2f", mad);
    g_object_unref (reference);
    g_object_unref (half);
    json_decref (result);
    free (dir);
}

//  The sniff, on made-up headers: what is and is not taken for a RAW.
Test (raw, sniff)
{
    unsigned char d [RP_SNIFF_BYTES + 64];
    memset (d, 0, sizeof d);
    //  A little-endian TIFF whose IFD0 (at 8) has two entries, the second DNGVersion
    memcpy (d, "II*\0\x08\0\0\0\x02\0", 10);
    d [10] = 0x00; d [11] = 0x01;                   //  ImageWidth
    d [22] = 0x12; d [23] = 0xC6;                   //  DNGVersion
    cr_expect_str_eq (rp_sniff (d, 64), "image/x-adobe-dng");
    cr_expect (rp_sniff_is_raw (rp_sniff (d, 64)));
    //  Cut inside the second entry: a TIFF as far as the bytes go
    cr_expect_str_eq (rp_sniff (d, 30), "image/tiff");
    //  Big-endian, the same IFD
    unsigned char m [64] = "MM\0*\0\0\0\x08\0\x02\x01\0";
    m [22] = 0xC6; m [23] = 0x12;
    cr_expect_str_eq (rp_sniff (m, sizeof m), "image/x-adobe-dng");
    //  No DNGVersion: a TIFF, not a RAW
    d [22] = 0x13;
    cr_expect_str_eq (rp_sniff (d, 64), "image/tiff");
    cr_expect (!rp_sniff_is_raw ("image/tiff"));
    //  IFD0 past the first RP_SNIFF_BYTES: taken for a TIFF, whatever was read
    memset (d, 0, sizeof d);
    memcpy (d, "II*\0", 4);
    d [4] = (unsigned char) (RP_SNIFF_BYTES + 8);
    d [5] = (unsigned char) ((RP_SNIFF_BYTES + 8) >> 8);
    d [RP_SNIFF_BYTES + 8] = 1;
    d [RP_SNIFF_BYTES + 10] = 0x12; d [RP_SNIFF_BYTES + 11] = 0xC6;
    cr_expect_str_eq (rp_sniff (d, sizeof d), "image/tiff");
    //  An IFD offset that points nowhere
    memcpy (d, "II*\0\xff\xff\xff\xff", 8);
    cr_expect_str_eq (rp_sniff (d, 64), "image/tiff");
    //  Canon CR2, Olympus ORF, Panasonic RW2 by their headers
    cr_expect_str_eq (rp_sniff ((const unsigned char *) "II*\0\x10\0\0\0CR\x02\0", 12), "image/x-canon-cr2");
    cr_expect_str_eq (rp_sniff ((const unsigned char *) "IIRO\x08\0\0\0", 8), "image/x-olympus-orf");
    cr_expect_str_eq (rp_sniff ((const unsigned char *) "MMOR\0\0\0\x08", 8), "image/x-olympus-orf");
    cr_expect_str_eq (rp_sniff ((const unsigned char *) "IIU\0\x08\0\0\0", 8), "image/x-panasonic-rw2");
}
