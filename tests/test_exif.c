/*  tests/test_exif.c: rp_exif_read, the EXIF job handler.

    How to use it:

        json_t *photo = NULL;
        char err [256];
        if (rp_exif_read ("/uploads/p-3.jpg", 50 * 1024 * 1024, &photo, err, sizeof err))
            fail_the_job (err);             //  unreadable or too big: "cannot read file: ..."
        else {
            //  {"sha256":..., "bytes":..., "content_type":"image/jpeg", "width":1800,
            //   "height":1200, "taken_at":"2019-07-01T12:00:00+02:00",
            //   "exif":{"make":"Canon", ..., "gps":{"lat":..,"lon":..,"alt":..}}}
            json_decref (photo);
        }

    The suites below are, in order: the exiftool oracle over the whole corpus,
    named corpus files (orientation, HEIF, malformed, adversarial, checksums),
    refusals (size limit, missing file), hand-made EXIF blocks for the edge
    cases the corpus does not have (zero denominators, bad UTF-8, bad dates,
    random damage), and several threads at once.
*/
#include "actors/exif/exif.h"
#include "tests/support/testdata.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <vips/vips.h>

#define MAX_BYTES (64 * 1024 * 1024)

static void
s_setup (void)
{
    //  main () does this in the engine; rp_exif_read never does
    if (VIPS_INIT ("test_exif"))
        cr_assert_fail ("vips_init failed");
    vips_cache_set_max (0);
    vips_leak_set (TRUE);
}

static void
s_teardown (void)
{
    vips_shutdown ();
}

TestSuite (exif, .init = s_setup, .fini = s_teardown, .timeout = 300);


//  --------------------------------------------------------------------------
//  Helpers

//  rp_exif_read on any path; must succeed. Caller decrefs.
static json_t *
s_read_path (const char *path)
{
    json_t *result = NULL;
    char err [256] = "";
    int rc = rp_exif_read (path, MAX_BYTES, &result, err, sizeof err);
    cr_assert_eq (rc, 0, "%s: rp_exif_read failed: %s", path, err);
    cr_assert_not_null (result);
    //  What the worker will send on: it must serialise (jansson refuses
    //  invalid UTF-8, NaN and infinities)
    char *text = json_dumps (result, JSON_COMPACT);
    cr_assert_not_null (text, "%s: result does not serialise", path);
    json_error_t error;
    json_t *again = json_loads (text, 0, &error);
    cr_assert_not_null (again, "%s: result does not parse back: %s", path, error.text);
    json_decref (again);
    free (text);
    return result;
}

//  rp_exif_read on a corpus file (path under images/). Caller decrefs.
static json_t *
s_read (const char *rel)
{
    char path [4096];
    cr_assert_not_null (rp_testdata_path (path, sizeof path, rel));
    return s_read_path (path);
}

//  A value by dotted path ("exif.gps.lat"); NULL when any step is absent
//  or not an object.
static json_t *
s_get (json_t *root, const char *path)
{
    json_t *node = root;
    while (node && *path) {
        const char *dot = strchr (path, '.');
        size_t len = dot ? (size_t) (dot - path) : strlen (path);
        char key [64];
        if (len >= sizeof key || !json_is_object (node))
            return NULL;
        memcpy (key, path, len);
        key [len] = 0;
        node = json_object_get (node, key);
        path += len + (dot ? 1 : 0);
    }
    return node;
}

//  The string at path, or NULL.
static const char *
s_str (json_t *root, const char *path)
{
    return json_string_value (s_get (root, path));
}

//  The string at path for assertions: "<not a string>" instead of NULL.
static const char *
s_text_at (json_t *root, const char *path)
{
    const char *text = s_str (root, path);
    return text ? text : "<not a string>";
}

static long long
s_int (json_t *root, const char *path)
{
    json_t *v = s_get (root, path);
    cr_assert (json_is_integer (v), "%s is not an integer", path);
    return json_integer_value (v);
}

static double
s_num (json_t *root, const char *path)
{
    json_t *v = s_get (root, path);
    cr_assert (json_is_number (v), "%s is not a number", path);
    return json_number_value (v);
}

static bool
s_is_null (json_t *root, const char *path)
{
    json_t *v = s_get (root, path);
    return !v || json_is_null (v);
}

//  Whole file into a new buffer (caller frees).
static unsigned char *
s_slurp (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    cr_assert_not_null (file, "cannot open %s", path);
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc (cap);
    cr_assert_not_null (buf);
    size_t n;
    while ((n = fread (buf + len, 1, cap - len, file)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = realloc (buf, cap);
            cr_assert_not_null (buf);
        }
    }
    fclose (file);
    *size = len;
    return buf;
}

static void
s_spit (const char *path, const unsigned char *data, size_t size)
{
    FILE *file = fopen (path, "wb");
    cr_assert_not_null (file, "cannot create %s", path);
    cr_assert_eq (fwrite (data, 1, size, file), size);
    cr_assert_eq (fclose (file), 0);
}


//  --------------------------------------------------------------------------
//  The exiftool oracle (tests/data/exif_expected.json, see its README)

//  Where libexif (or our documented policy) legitimately differs from
//  exiftool. `ours` is the JSON of what rp_exif_read gives. Each one is
//  checked both ways: we give `ours`, and exiftool's value still differs
//  (else the exception is stale and must go).
typedef struct {
    const char *file;
    const char *field;
    const char *ours;
    const char *reason;
} s_exception_t;

static const s_exception_t s_exceptions [] = {
    { "orientation/Landscape_0.jpg", "exif.orientation", "1",
      "Orientation 0 is not a valid value; we report 1 (upright), as viewers treat it; "
      "exiftool prints the raw 0" },
    { "malformed/exif_bad_ifd0.jpg", "exif.orientation", "1",
      "IFD0 claims 32 entries in a 138-byte block: exiftool rejects the whole directory "
      "(\"Bad IFD0 directory\"), libexif keeps the entries that fit, Orientation=1 among them" },
    { "malformed/exif_exifoffset_wrong_type.jpg", "taken_at", "\"2013-07-05T03:18:27\"",
      "the ExifOffset pointer is stored as a string: exiftool refuses to follow it and only "
      "has IFD0's ModifyDate; libexif follows it and finds DateTimeOriginal (the file's XMP "
      "agrees: 2013:07:05 03:18:27Z)" },
    { "malformed/exif_only_no_image_canon_s70.jpg", "width", "480",
      "no SOF, so no header size for exiftool (or libvips); we fall back to EXIF "
      "PixelXDimension x PixelYDimension (640x480), swapped for Orientation 6" },
    { "malformed/exif_only_no_image_canon_s70.jpg", "height", "640", "as width" },
    { "malformed/exif_only_no_image_fuji.jpg", "width", "640",
      "no SOF; EXIF PixelXDimension (Orientation 1)" },
    { "malformed/exif_only_no_image_fuji.jpg", "height", "480", "as width" },
    { "malformed/exif_only_no_image_olympus_sanyo.jpg", "width", "640",
      "no SOF; EXIF PixelXDimension (Orientation 1)" },
    { "malformed/exif_only_no_image_olympus_sanyo.jpg", "height", "480", "as width" },
    { "malformed/png_huge_exif_chunk.png", "width", "null",
      "libvips refuses the header (an eXIf chunk claiming 1073741823 bytes); exiftool reads "
      "IHDR's 1x1 and stops" },
    { "malformed/png_huge_exif_chunk.png", "height", "null", "as width" },
    { "formats/svg_logo.svg", "width", "null",
      "SVG is not an accepted image type (content_type null), so it is never parsed" },
    { "formats/svg_logo.svg", "height", "null", "as width" },
};

static const s_exception_t *
s_exception (const char *file, const char *field)
{
    for (size_t i = 0; i < sizeof s_exceptions / sizeof s_exceptions [0]; i++)
        if (strcmp (s_exceptions [i].file, file) == 0 && strcmp (s_exceptions [i].field, field) == 0)
            return &s_exceptions [i];
    return NULL;
}

static bool
s_ends_with (const char *s, const char *suffix)
{
    size_t n = strlen (s), m = strlen (suffix);
    return n >= m && strcasecmp (s + n - m, suffix) == 0;
}

//  exiftool "YYYY:MM:DD HH:MM:SS" into our "YYYY-MM-DDTHH:MM:SS".
static void
s_iso_date (const char *exif, char *out, size_t size)
{
    cr_assert_eq (strlen (exif), 19, "unexpected date \"%s\" in the table: extend the test", exif);
    snprintf (out, size, "%s", exif);
    out [4] = out [7] = '-';
    out [10] = 'T';
}

//  What rp_exif_read should say, in its own shape, from one exiftool row.
static json_t *
s_expected (const char *file, json_t *row)
{
    json_t *exif = json_object ();
    json_object_set (exif, "make", s_get (row, "Make") ? s_get (row, "Make") : json_null ());
    json_object_set (exif, "model", s_get (row, "Model") ? s_get (row, "Model") : json_null ());
    json_object_set (exif, "lens", s_get (row, "LensModel") ? s_get (row, "LensModel") : json_null ());
    json_object_set (exif, "exposure_time", s_get (row, "ExposureTime") ? s_get (row, "ExposureTime") : json_null ());
    json_object_set (exif, "f_number", s_get (row, "FNumber") ? s_get (row, "FNumber") : json_null ());
    json_object_set (exif, "iso", s_get (row, "ISO") ? s_get (row, "ISO") : json_null ());
    json_object_set (exif, "focal_length", s_get (row, "FocalLength") ? s_get (row, "FocalLength") : json_null ());
    json_object_set (exif, "orientation", s_get (row, "Orientation") ? s_get (row, "Orientation") : json_null ());
    json_t *lat = s_get (row, "GPSLatitude"), *lon = s_get (row, "GPSLongitude");
    if (lat && lon) {
        json_t *alt = json_null ();
        if (s_get (row, "GPSAltitude")) {
            double metres = json_number_value (s_get (row, "GPSAltitude"));
            json_t *ref = s_get (row, "GPSAltitudeRef");
            if (ref && json_integer_value (ref) == 1)
                metres = -metres;
            alt = json_real (metres);
        }
        json_object_set_new (exif, "gps", json_pack ("{s:O, s:O, s:o}", "lat", lat, "lon", lon, "alt", alt));
    }
    else
        json_object_set_new (exif, "gps", json_null ());

    //  taken_at: the first date present, with its offset (or OffsetTime)
    static const char *const dates [3][3] = {
        { "DateTimeOriginal", "OffsetTimeOriginal", "OffsetTime" },
        { "CreateDate", "OffsetTimeDigitized", "OffsetTime" },
        { "ModifyDate", "OffsetTime", "OffsetTime" },
    };
    json_t *taken_at = json_null ();
    for (int i = 0; i < 3; i++) {
        const char *when = s_str (row, dates [i][0]);
        if (!when)
            continue;
        char iso [64];
        s_iso_date (when, iso, sizeof iso);
        const char *offset = s_str (row, dates [i][1]) ? s_str (row, dates [i][1]) : s_str (row, dates [i][2]);
        char text [80];
        snprintf (text, sizeof text, "%s%s", iso, offset ? offset : "");
        taken_at = json_string (text);
        break;
    }

    //  Displayed size: header size, turned by the EXIF orientation, except
    //  HEIF-family files, which libvips turns by their irot box instead
    json_t *width = json_null (), *height = json_null ();
    if (s_get (row, "ImageWidth") && s_get (row, "ImageHeight")) {
        long long w = json_integer_value (s_get (row, "ImageWidth"));
        long long h = json_integer_value (s_get (row, "ImageHeight"));
        bool heif = s_ends_with (file, ".heic") || s_ends_with (file, ".heif") || s_ends_with (file, ".avif");
        long long orientation = json_integer_value (s_get (row, "Orientation"));
        long long rotation = json_integer_value (s_get (row, "Rotation"));
        bool turn = heif ? (rotation == 90 || rotation == 270) : (orientation >= 5 && orientation <= 8);
        width = json_integer (turn ? h : w);
        height = json_integer (turn ? w : h);
    }
    return json_pack ("{s:o, s:o, s:o, s:o}", "width", width, "height", height,
                      "taken_at", taken_at, "exif", exif);
}

//  Compare one field with the tolerance it deserves.
static bool
s_same (const char *field, json_t *want, json_t *got)
{
    bool want_null = !want || json_is_null (want);
    bool got_null = !got || json_is_null (got);
    if (want_null || got_null)
        return want_null == got_null;
    if (json_is_string (want))
        return json_is_string (got) && strcmp (json_string_value (want), json_string_value (got)) == 0;
    if (json_is_number (want) && json_is_number (got)) {
        double a = json_number_value (want), b = json_number_value (got);
        if (strstr (field, "gps.lat") || strstr (field, "gps.lon"))
            return fabs (a - b) <= 1e-5;                    //  degrees: about a metre
        if (strcmp (field, "exif.iso") == 0 || strcmp (field, "exif.orientation") == 0
        ||  strcmp (field, "width") == 0 || strcmp (field, "height") == 0)
            return json_is_integer (got) && json_is_integer (want)
                && json_integer_value (want) == json_integer_value (got);
        //  Measurements: exiftool prints 10 significant digits ("135" for 135/1)
        return json_is_real (got) && fabs (a - b) <= 1e-4 * fmax (fabs (a), fabs (b)) + 1e-12;
    }
    return json_equal (want, got);
}

static char *
s_show (json_t *value)
{
    return value ? json_dumps (value, JSON_ENCODE_ANY | JSON_COMPACT) : strdup ("absent");
}

static const char *const s_fields [] = {
    "width", "height", "taken_at",
    "exif.make", "exif.model", "exif.lens", "exif.exposure_time", "exif.f_number",
    "exif.iso", "exif.focal_length", "exif.orientation", "exif.gps",
    "exif.gps.lat", "exif.gps.lon", "exif.gps.alt",
};

static json_t *
s_load_table (void)
{
    char path [4096];
    const char *root = getenv ("RP_SOURCE_DIR");
    if (root && *root)
        snprintf (path, sizeof path, "%s/tests/data/exif_expected.json", root);
    else {
        //  Built by hand: the table sits next to this file
        snprintf (path, sizeof path, "%s", __FILE__);
        char *slash = strrchr (path, '/');
        snprintf (slash ? slash + 1 : path, sizeof path - (size_t) (slash ? slash + 1 - path : 0),
                  "data/exif_expected.json");
    }
    json_error_t error;
    json_t *table = json_load_file (path, 0, &error);
    cr_assert_not_null (table, "cannot load %s: %s", path, error.text);
    return table;
}

Test (exif, camera_values_match_exiftool,
      .description = "EXIF values for every corpus file match what exiftool reports "
                     "(tests/data/exif_expected.json), except the listed exceptions")
{
    RP_REQUIRE_TESTDATA ();
    json_t *table = s_load_table ();
    json_t *files = json_object_get (table, "files");
    cr_assert (json_object_size (files) >= 70, "the table lists too few files");
    bool used [sizeof s_exceptions / sizeof s_exceptions [0]] = { false };
    const char *file;
    json_t *row;
    int checked = 0;
    json_object_foreach (files, file, row) {
        json_t *got = s_read (file);
        json_t *want = s_expected (file, row);
        for (size_t f = 0; f < sizeof s_fields / sizeof s_fields [0]; f++) {
            const char *field = s_fields [f];
            json_t *w = s_get (want, field), *g = s_get (got, field);
            if (strcmp (field, "exif.gps") == 0) {      //  only null-ness here
                cr_expect_eq (s_is_null (want, field), s_is_null (got, field),
                              "%s: gps is %s, exiftool has %s", file,
                              s_is_null (got, field) ? "null" : "set",
                              s_is_null (want, field) ? "none" : "one");
                continue;
            }
            const s_exception_t *exception = s_exception (file, field);
            if (exception) {
                used [exception - s_exceptions] = true;
                json_t *ours = json_loads (exception->ours, JSON_DECODE_ANY, NULL);
                cr_assert_not_null (ours, "bad exception value %s", exception->ours);
                char *shown = s_show (g);
                cr_expect (s_same (field, ours, g), "%s %s: expected %s (exception: %s), got %s",
                           file, field, exception->ours, exception->reason, shown);
                cr_expect (!s_same (field, ours, w),
                           "%s %s: exiftool now agrees with us; remove the exception", file, field);
                free (shown);
                json_decref (ours);
                continue;
            }
            char *shown_want = s_show (w), *shown_got = s_show (g);
            cr_expect (s_same (field, w, g), "%s %s: exiftool says %s, we say %s",
                       file, field, shown_want, shown_got);
            free (shown_want);
            free (shown_got);
            checked++;
        }
        json_decref (want);
        json_decref (got);
    }
    for (size_t i = 0; i < sizeof s_exceptions / sizeof s_exceptions [0]; i++)
        cr_expect (used [i], "exception for %s %s matches no file in the table",
                   s_exceptions [i].file, s_exceptions [i].field);
    cr_log_info ("%d fields compared with exiftool", checked);
    json_decref (table);
}

Test (exif, values_exiftool_finds_outside_exif,
      .description = "exiftool's bare -ISO and -LensModel also read maker notes; we "
                     "report EXIF only, so these stay null (the third such value, an XMP "
                     "DateTimeOriginal, is an exception in the oracle test)")
{
    RP_REQUIRE_TESTDATA ();
    //  exiftool -ISO says 50, computed from Canon maker notes; EXIF has no ISOSpeedRatings
    json_t *canon = s_read ("malformed/exif_only_no_image_canon_s70.jpg");
    cr_expect (s_is_null (canon, "exif.iso"));
    json_decref (canon);
    //  exiftool -LensModel finds "OLYMPUS M.14-42mm F3.5-5.6 II R" in Olympus maker notes
    json_t *olympus = s_read ("camera/olympus_e-p3_12mp.jpg");
    cr_expect (s_is_null (olympus, "exif.lens"));
    json_decref (olympus);
}


//  --------------------------------------------------------------------------
//  Named corpus files

Test (exif, orientation_landscape_0_to_8)
{
    RP_REQUIRE_TESTDATA ();
    for (int n = 0; n <= 8; n++) {
        char rel [64];
        snprintf (rel, sizeof rel, "orientation/Landscape_%d.jpg", n);
        json_t *photo = s_read (rel);
        //  0 is not a valid Orientation: reported as 1 (upright)
        cr_expect_eq (s_int (photo, "exif.orientation"), n == 0 ? 1 : n, "%s", rel);
        //  5..8 are stored 1200x1800 and shown 1800x1200, like the others
        cr_expect_eq (s_int (photo, "width"), 1800, "%s", rel);
        cr_expect_eq (s_int (photo, "height"), 1200, "%s", rel);
        cr_expect_str_eq (s_text_at (photo, "content_type"), "image/jpeg");
        json_decref (photo);
    }
}

Test (exif, heic_iphone_is_portrait_and_zoned)
{
    RP_REQUIRE_TESTDATA ();
    json_t *photo = s_read ("formats/heic_iphone13promax_orient6.heic");
    cr_expect_str_eq (s_text_at (photo, "content_type"), "image/heic");
    //  Stored 4032x3024 with irot; libvips applies irot, so EXIF Orientation=6
    //  must not turn it again
    cr_expect_eq (s_int (photo, "width"), 3024);
    cr_expect_eq (s_int (photo, "height"), 4032);
    cr_expect_eq (s_int (photo, "exif.orientation"), 6);
    cr_expect_str_eq (s_text_at (photo, "exif.make"), "Apple");
    cr_expect_str_eq (s_text_at (photo, "exif.model"), "iPhone 13 Pro Max");
    cr_expect_str_eq (s_text_at (photo, "taken_at"), "2022-02-16T12:55:41+01:00");
    cr_expect (s_is_null (photo, "exif.gps"));
    json_decref (photo);
}

Test (exif, heif_nokia_gps)
{
    RP_REQUIRE_TESTDATA ();
    json_t *photo = s_read ("formats/heif_nokia8.3_gps.heif");
    cr_expect_eq (s_int (photo, "width"), 3456);
    cr_expect_eq (s_int (photo, "height"), 4608);
    cr_expect_eq (s_int (photo, "exif.orientation"), 1);
    cr_expect_float_eq (s_num (photo, "exif.gps.lat"), 40.78868522, 1e-6);
    cr_expect_float_eq (s_num (photo, "exif.gps.lon"), -4.00514085, 1e-6);   //  W
    cr_expect_float_eq (s_num (photo, "exif.gps.alt"), 1942.4216, 1e-3);
    //  No DateTimeOriginal in this file: taken_at falls back to DateTime
    cr_expect_str_eq (s_text_at (photo, "taken_at"), "2022-02-03T14:44:07");
    json_decref (photo);
}

Test (exif, jpeg_gps_signs_and_offset)
{
    RP_REQUIRE_TESTDATA ();
    json_t *kodak = s_read ("camera/kodak_cx7530_gps.jpg");
    cr_expect_float_eq (s_num (kodak, "exif.gps.lat"), -0.3713, 1e-6);       //  S
    cr_expect (s_is_null (kodak, "exif.gps.alt"));
    json_decref (kodak);
    json_t *nokia = s_read ("camera/hmd_nokia8.3_gps.jpg");
    cr_expect_str_eq (s_text_at (nokia, "taken_at"), "2022-08-14T14:12:31+03:00");
    json_decref (nokia);
}

//  Every string in a result, at any depth, is at most 256 bytes.
static void
s_expect_bounded (json_t *node, const char *file)
{
    const char *key;
    json_t *value;
    if (json_is_string (node))
        cr_expect_leq (json_string_length (node), 256, "%s: a string of %zu bytes",
                       file, json_string_length (node));
    else
    if (json_is_object (node))
        json_object_foreach (node, key, value)
            s_expect_bounded (value, file);
}

static void
s_sweep (const char *folder)
{
    char dir [4096];
    cr_assert_not_null (rp_testdata_path (dir, sizeof dir, folder));
    DIR *d = opendir (dir);
    cr_assert_not_null (d, "cannot list %s", dir);
    struct dirent *entry;
    int files = 0;
    while ((entry = readdir (d))) {
        if (entry->d_name [0] == '.')
            continue;
        char rel [512];
        snprintf (rel, sizeof rel, "%s/%s", folder, entry->d_name);
        json_t *photo = s_read (rel);           //  0 and valid JSON, for every file
        s_expect_bounded (photo, rel);
        cr_expect_eq (strlen (s_text_at (photo, "sha256")), 64, "%s", rel);
        cr_expect (json_is_object (s_get (photo, "exif")), "%s: no exif object", rel);
        json_decref (photo);
        files++;
    }
    closedir (d);
    cr_expect_gt (files, 10);
}

Test (exif, malformed_files_never_fail)
{
    RP_REQUIRE_TESTDATA ();
    s_sweep ("malformed");
}

Test (exif, adversarial_files_never_fail)
{
    RP_REQUIRE_TESTDATA ();
    s_sweep ("adversarial");
}

Test (exif, exif_without_image_data)
{
    RP_REQUIRE_TESTDATA ();
    //  libvips cannot decode these (two SOI markers); the EXIF is intact
    static const char *const expected [][3] = {
        { "malformed/exif_only_no_image_canon_s70.jpg", "Canon", "Canon PowerShot S70" },
        { "malformed/exif_only_no_image_fuji.jpg", "FUJIFILM", "FinePix Z33WP" },
        { "malformed/exif_only_no_image_olympus_sanyo.jpg", "SANYO Electric Co.,Ltd.", "TH1" },
    };
    for (size_t i = 0; i < 3; i++) {
        json_t *photo = s_read (expected [i][0]);
        cr_expect_str_eq (s_text_at (photo, "exif.make"), expected [i][1]);
        cr_expect_str_eq (s_text_at (photo, "exif.model"), expected [i][2]);
        cr_expect_str_eq (s_text_at (photo, "content_type"), "image/jpeg");
        json_decref (photo);
    }
}

Test (exif, malformed_exif_gives_what_it_can)
{
    RP_REQUIRE_TESTDATA ();
    json_t *photo = s_read ("malformed/exif_empty_gps_ifd.jpg");
    cr_expect (s_is_null (photo, "exif.gps"), "an empty GPS IFD is no position");
    cr_expect_str_eq (s_text_at (photo, "exif.make"), "Xiaomi");
    cr_expect_eq (s_int (photo, "exif.orientation"), 6);
    json_decref (photo);

    photo = s_read ("malformed/exif_resolution_zero_over_zero.jpg");
    cr_expect_eq (s_int (photo, "width"), 200);
    cr_expect_eq (s_int (photo, "exif.orientation"), 1);
    json_decref (photo);

    photo = s_read ("malformed/exif_malformed_app1.jpg");   //  0 tags: nulls, not an error
    cr_expect (s_is_null (photo, "exif.orientation"));
    cr_expect (s_is_null (photo, "taken_at"));
    cr_expect_eq (s_int (photo, "width"), 200);
    json_decref (photo);

    photo = s_read ("adversarial/truncated_half.jpg");      //  EXIF survives the cut
    cr_expect_eq (s_int (photo, "exif.orientation"), 6);
    cr_expect_eq (s_int (photo, "width"), 1800);
    json_decref (photo);
}

Test (exif, oversized_user_comments_are_bounded)
{
    RP_REQUIRE_TESTDATA ();
    //  60000- and 65400-byte UserComments (the second one split over two
    //  APP1 segments, of which libexif reads the first): the result holds
    //  neither, and Make/Model still come through
    const char *files [] = { "adversarial/exif_usercomment_60000.jpg",
                             "adversarial/exif_usercomment_65400_multisegment.jpg" };
    for (int i = 0; i < 2; i++) {
        json_t *photo = s_read (files [i]);
        cr_expect_str_eq (s_text_at (photo, "exif.make"), "SyntheticCam");
        cr_expect_str_eq (s_text_at (photo, "exif.model"), "HugeComment");
        char *text = json_dumps (photo, JSON_COMPACT);
        cr_expect_lt (strlen (text), 1024, "%s: result of %zu bytes", files [i], strlen (text));
        free (text);
        json_decref (photo);
    }
}

Test (exif, not_an_image_is_not_an_error)
{
    RP_REQUIRE_TESTDATA ();
    const char *files [] = { "adversarial/zero_bytes.jpg", "adversarial/text_file.jpg",
                             "adversarial/html_script.jpg", "formats/svg_logo.svg" };
    for (int i = 0; i < 4; i++) {
        json_t *photo = s_read (files [i]);
        cr_expect (s_is_null (photo, "content_type"), "%s", files [i]);
        cr_expect (s_is_null (photo, "width"), "%s", files [i]);
        cr_expect (s_is_null (photo, "exif.make"), "%s", files [i]);
        json_decref (photo);
    }
    json_t *empty = s_read ("adversarial/zero_bytes.jpg");
    cr_expect_eq (s_int (empty, "bytes"), 0);
    cr_expect_str_eq (s_text_at (empty, "sha256"),
                      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    json_decref (empty);
    json_t *disguised = s_read ("adversarial/png_disguised_as.jpg");
    cr_expect_str_eq (s_text_at (disguised, "content_type"), "image/png");
    json_decref (disguised);
}

Test (exif, sha256_matches_corpus_checksums)
{
    RP_REQUIRE_TESTDATA ();
    char sums_path [4096];
    snprintf (sums_path, sizeof sums_path, "%s/SHA256SUMS", rp_testdata_dir ());
    size_t size;
    char *sums = (char *) s_slurp (sums_path, &size);
    sums = realloc (sums, size + 1);
    sums [size] = 0;
    const char *files [] = { "camera/apple_iphone6_gps.jpg", "large/xiaomi_mi9t_12mp_orient6.jpg",
                             "formats/heic_iphone13promax_orient6.heic",
                             "malformed/exif_only_no_image_fuji.jpg", "adversarial/zero_bytes.jpg" };
    for (int i = 0; i < 5; i++) {
        //  A line is "<64 hex>  images/<rel>"
        char needle [512];
        snprintf (needle, sizeof needle, "  images/%s\n", files [i]);
        const char *at = strstr (sums, needle);
        cr_assert (at && at - sums >= 64, "%s is not in SHA256SUMS", files [i]);
        char want [65];
        memcpy (want, at - 64, 64);
        want [64] = 0;
        json_t *photo = s_read (files [i]);
        cr_expect_str_eq (s_text_at (photo, "sha256"), want, "%s", files [i]);
        json_decref (photo);
    }
    free (sums);
}


//  --------------------------------------------------------------------------
//  Refusals: the only two ways rp_exif_read returns -1

Test (exif, file_over_the_limit_is_refused)
{
    char *dir = rp_test_tmpdir ("exif");
    char path [512];
    snprintf (path, sizeof path, "%s/big.jpg", dir);
    unsigned char bytes [1000];
    memset (bytes, 0xAB, sizeof bytes);
    s_spit (path, bytes, sizeof bytes);

    json_t *result = NULL;
    char err [256] = "";
    cr_assert_eq (rp_exif_read (path, 999, &result, err, sizeof err), -1);
    cr_expect_null (result, "on failure *result is untouched");
    cr_expect_str_eq (err, "file is larger than the limit (1000 > 999 bytes)");
    cr_expect_null (strstr (err, dir), "the reason does not reveal the path");

    //  Exactly at the limit is fine
    cr_assert_eq (rp_exif_read (path, 1000, &result, err, sizeof err), 0, "%s", err);
    cr_expect_eq (s_int (result, "bytes"), 1000);
    json_decref (result);
    free (dir);
}

Test (exif, missing_or_unreadable_file_is_refused)
{
    json_t *result = NULL;
    char err [256] = "";
    cr_assert_eq (rp_exif_read ("/nonexistent-rp-dir/photo.jpg", MAX_BYTES, &result, err, sizeof err), -1);
    cr_expect_null (result);
    cr_expect_str_eq (err, "cannot read file: No such file or directory");

    char *dir = rp_test_tmpdir ("exif");
    cr_assert_eq (rp_exif_read (dir, MAX_BYTES, &result, err, sizeof err), -1);
    cr_expect_str_eq (err, "cannot read file: Is a directory");
    cr_expect_null (result);

    //  A small err buffer gets a truncated, terminated reason
    char tiny [8];
    cr_assert_eq (rp_exif_read ("/nonexistent-rp-dir/photo.jpg", MAX_BYTES, &result, tiny, sizeof tiny), -1);
    cr_expect_str_eq (tiny, "cannot ");
    free (dir);
}


//  --------------------------------------------------------------------------
//  Hand-made EXIF blocks: exactly the bytes a test wants, little-endian

typedef struct {
    uint16_t tag;
    uint16_t type;                  //  1 BYTE, 2 ASCII, 3 SHORT, 4 LONG, 5 RATIONAL, 7 UNDEFINED
    uint32_t count;
    unsigned char value [2048];
    size_t len;
} s_tag_t;

typedef struct {
    s_tag_t tags [16];
    int count;
} s_ifd_t;

typedef struct {
    s_ifd_t ifd0, exif, gps;
} s_exif_t;

static s_tag_t *
s_add (s_ifd_t *ifd, uint16_t tag, uint16_t type, uint32_t count, size_t len)
{
    cr_assert_lt (ifd->count, 16);
    cr_assert_leq (len, sizeof ifd->tags [0].value);
    s_tag_t *t = &ifd->tags [ifd->count++];
    memset (t, 0, sizeof *t);
    t->tag = tag;
    t->type = type;
    t->count = count;
    t->len = len;
    return t;
}

static void
s_put16 (unsigned char *p, uint32_t v)
{
    p [0] = v & 0xFF;
    p [1] = (v >> 8) & 0xFF;
}

static void
s_put32 (unsigned char *p, uint32_t v)
{
    s_put16 (p, v & 0xFFFF);
    s_put16 (p + 2, v >> 16);
}

//  Raw bytes as ASCII (len counts everything, NULs included)
static void
s_ascii (s_ifd_t *ifd, uint16_t tag, const char *bytes, size_t len)
{
    s_tag_t *t = s_add (ifd, tag, 2, (uint32_t) len, len);
    memcpy (t->value, bytes, len);
}

//  A C string as ASCII with its NUL
static void
s_text (s_ifd_t *ifd, uint16_t tag, const char *text)
{
    s_ascii (ifd, tag, text, strlen (text) + 1);
}

static void
s_short (s_ifd_t *ifd, uint16_t tag, uint16_t value)
{
    s_put16 (s_add (ifd, tag, 3, 1, 2)->value, value);
}

static void
s_long (s_ifd_t *ifd, uint16_t tag, uint32_t value)
{
    s_put32 (s_add (ifd, tag, 4, 1, 4)->value, value);
}

static void
s_byte (s_ifd_t *ifd, uint16_t tag, unsigned char value)
{
    s_add (ifd, tag, 1, 1, 1)->value [0] = value;
}

//  count rationals from num, den pairs
static void
s_rationals (s_ifd_t *ifd, uint16_t tag, int count, const uint32_t *pairs)
{
    s_tag_t *t = s_add (ifd, tag, 5, (uint32_t) count, (size_t) count * 8);
    for (int i = 0; i < 2 * count; i++)
        s_put32 (t->value + 4 * i, pairs [i]);
}

static void
s_rational (s_ifd_t *ifd, uint16_t tag, uint32_t num, uint32_t den)
{
    uint32_t pair [2] = { num, den };
    s_rationals (ifd, tag, 1, pair);
}

//  Write one IFD at *pos (offsets are from the TIFF header at base),
//  values after it. Returns where the IFD starts.
static uint32_t
s_write_ifd (unsigned char *base, size_t *pos, size_t cap, const s_ifd_t *ifd,
             uint16_t pointer_tags [2], unsigned char **pointer_slots)
{
    int pointers = (pointer_tags [0] != 0) + (pointer_tags [1] != 0);
    int entries = ifd->count + pointers;
    uint32_t start = (uint32_t) *pos;
    size_t data = *pos + 2 + 12 * (size_t) entries + 4;
    cr_assert_lt (data, cap);
    s_put16 (base + *pos, (uint32_t) entries);
    unsigned char *e = base + *pos + 2;
    for (int i = 0; i < ifd->count; i++, e += 12) {
        const s_tag_t *t = &ifd->tags [i];
        s_put16 (e, t->tag);
        s_put16 (e + 2, t->type);
        s_put32 (e + 4, t->count);
        if (t->len <= 4)
            memcpy (e + 8, t->value, t->len);
        else {
            cr_assert_lt (data + t->len, cap);
            memcpy (base + data, t->value, t->len);
            s_put32 (e + 8, (uint32_t) data);
            data += t->len + (t->len & 1);
        }
    }
    for (int i = 0; i < 2; i++) {
        if (!pointer_tags [i])
            continue;
        s_put16 (e, pointer_tags [i]);
        s_put16 (e + 2, 4);
        s_put32 (e + 4, 1);
        pointer_slots [i] = e + 8;                              //  patched by the caller
        e += 12;
    }
    s_put32 (e, 0);                                             //  no next IFD
    *pos = data;
    return start;
}

//  "Exif\0\0" + TIFF into buf; returns its length.
static size_t
s_exif_block (const s_exif_t *x, unsigned char *buf, size_t cap)
{
    memcpy (buf, "Exif\0\0II*\0\x08\0\0\0", 14);
    unsigned char *base = buf + 6;
    size_t pos = 8, room = cap - 6;
    uint16_t tags0 [2] = { x->exif.count ? 0x8769 : 0, x->gps.count ? 0x8825 : 0 };
    unsigned char *slots [2] = { NULL, NULL };
    s_write_ifd (base, &pos, room, &x->ifd0, tags0, slots);
    uint16_t none [2] = { 0, 0 };
    if (x->exif.count) {
        uint32_t at = s_write_ifd (base, &pos, room, &x->exif, none, NULL);
        s_put32 (slots [0], at);
    }
    if (x->gps.count) {
        uint32_t at = s_write_ifd (base, &pos, room, &x->gps, none, NULL);
        s_put32 (slots [1], at);
    }
    return pos + 6;
}

//  One scratch folder per test (each test runs in its own process).
static const char *
s_scratch (void)
{
    static char *dir = NULL;
    if (!dir)
        dir = rp_test_tmpdir ("exif");
    cr_assert_not_null (dir);
    return dir;
}

//  Write a JPEG holding the block, either bare (SOI, APP1, EOI: no image,
//  so no header size) or spliced into a real 40x30 JPEG. Returns the path
//  (caller frees).
static char *
s_jpeg_with (const s_exif_t *x, bool with_image)
{
    static unsigned char block [65536];
    size_t len = s_exif_block (x, block, sizeof block);
    cr_assert_lt (len + 2, 65536);
    const char *dir = s_scratch ();
    char path [512];
    size_t image_size = 0;
    unsigned char *image = NULL;
    if (with_image) {
        snprintf (path, sizeof path, "%s/plain.jpg", dir);
        cr_assert_eq (rp_test_make_jpeg (path, 40, 30, 0), 0);
        image = s_slurp (path, &image_size);
        cr_assert (image_size > 2 && image [0] == 0xFF && image [1] == 0xD8);
    }
    size_t total = 2 + 4 + len + (with_image ? image_size - 2 : 2);
    unsigned char *jpeg = malloc (total);
    size_t n = 0;
    jpeg [n++] = 0xFF;
    jpeg [n++] = 0xD8;
    jpeg [n++] = 0xFF;
    jpeg [n++] = 0xE1;
    jpeg [n++] = (unsigned char) ((len + 2) >> 8);
    jpeg [n++] = (unsigned char) ((len + 2) & 0xFF);
    memcpy (jpeg + n, block, len);
    n += len;
    if (with_image) {
        memcpy (jpeg + n, image + 2, image_size - 2);
        n += image_size - 2;
    }
    else {
        jpeg [n++] = 0xFF;
        jpeg [n++] = 0xD9;
    }
    snprintf (path, sizeof path, "%s/made.jpg", dir);
    s_spit (path, jpeg, n);
    free (jpeg);
    free (image);
    return strdup (path);
}

static json_t *
s_read_made (const s_exif_t *x, bool with_image)
{
    char *path = s_jpeg_with (x, with_image);
    json_t *photo = s_read_path (path);
    free (path);
    return photo;
}

Test (exif, zero_denominators_give_null)
{
    s_exif_t x = { 0 };
    s_text (&x.ifd0, 0x010F, "ZeroCam");
    s_rational (&x.exif, 0x829A, 1, 0);                         //  ExposureTime 1/0
    s_rational (&x.exif, 0x829D, 0, 0);                         //  FNumber 0/0
    s_rational (&x.exif, 0x920A, 50, 0);                        //  FocalLength 50/0
    uint32_t lat [6] = { 48, 1, 51, 0, 30, 1 };                 //  minutes 51/0
    s_text (&x.gps, 0x0001, "N");
    s_rationals (&x.gps, 0x0002, 3, lat);
    uint32_t lon [6] = { 2, 1, 17, 1, 40, 1 };
    s_text (&x.gps, 0x0003, "E");
    s_rationals (&x.gps, 0x0004, 3, lon);
    json_t *photo = s_read_made (&x, true);
    cr_expect_str_eq (s_text_at (photo, "exif.make"), "ZeroCam");
    cr_expect (s_is_null (photo, "exif.exposure_time"));
    cr_expect (s_is_null (photo, "exif.f_number"));
    cr_expect (s_is_null (photo, "exif.focal_length"));
    cr_expect (s_is_null (photo, "exif.gps"), "a latitude with 0 denominator is no position");
    json_decref (photo);
}

Test (exif, gps_hemispheres_and_altitude_below_sea_level)
{
    s_exif_t x = { 0 };
    uint32_t lat [6] = { 33, 1, 51, 1, 5400, 100 };             //  33 51' 54" S
    uint32_t lon [6] = { 15122, 100, 0, 1, 0, 1 };              //  151.22 W (decimal degrees only)
    s_text (&x.gps, 0x0001, "S");
    s_rationals (&x.gps, 0x0002, 3, lat);
    s_text (&x.gps, 0x0003, "W");
    s_rationals (&x.gps, 0x0004, 3, lon);
    s_byte (&x.gps, 0x0005, 1);                                 //  below sea level
    s_rational (&x.gps, 0x0006, 4120, 10);
    json_t *photo = s_read_made (&x, false);
    cr_expect_float_eq (s_num (photo, "exif.gps.lat"), -(33 + 51 / 60.0 + 54 / 3600.0), 1e-9);
    cr_expect_float_eq (s_num (photo, "exif.gps.lon"), -151.22, 1e-9);
    cr_expect_float_eq (s_num (photo, "exif.gps.alt"), -412.0, 1e-9);
    json_decref (photo);

    s_exif_t far = { 0 };                                       //  latitude 95: not usable
    uint32_t bad [6] = { 95, 1, 0, 1, 0, 1 };
    s_rationals (&far.gps, 0x0002, 3, bad);
    s_rationals (&far.gps, 0x0004, 3, lon);
    photo = s_read_made (&far, false);
    cr_expect (s_is_null (photo, "exif.gps"));
    json_decref (photo);
}

Test (exif, strings_are_clean_utf8_trimmed_and_bounded)
{
    s_exif_t x = { 0 };
    s_ascii (&x.ifd0, 0x010F, "  Ca\xFFnon\x01 \0\0junk", 16);   //  bad byte, control, padding
    char model [1000];
    memset (model, 'M', sizeof model - 1);
    model [sizeof model - 1] = 0;
    s_text (&x.ifd0, 0x0110, model);                            //  999 bytes
    char lens [601];
    for (int i = 0; i < 300; i++)
        memcpy (lens + 2 * i, "\xC3\xA9", 2);                   //  600 bytes of two-byte characters
    lens [600] = 0;
    s_text (&x.exif, 0xA434, lens);
    json_t *photo = s_read_made (&x, false);
    cr_expect_str_eq (s_text_at (photo, "exif.make"), "Ca\xEF\xBF\xBDnon\xEF\xBF\xBD");
    cr_expect_eq (strlen (s_text_at (photo, "exif.model")), 256);
    const char *shortened = s_text_at (photo, "exif.lens");
    cr_expect_eq (strlen (shortened), 256, "cut at a character boundary");
    cr_expect_eq ((unsigned char) shortened [254], 0xC3);
    json_decref (photo);

    s_exif_t blank = { 0 };
    s_text (&blank.ifd0, 0x010F, "     ");
    s_ascii (&blank.ifd0, 0x0110, "\0\0\0\0", 4);
    photo = s_read_made (&blank, false);
    cr_expect (s_is_null (photo, "exif.make"), "only spaces: null");
    cr_expect (s_is_null (photo, "exif.model"), "only NULs: null");
    json_decref (photo);
}

Test (exif, taken_at_falls_back_and_checks_offsets)
{
    //  Unknown original time (all zeros): the digitized time, with its offset
    s_exif_t x = { 0 };
    s_text (&x.exif, 0x9003, "0000:00:00 00:00:00");
    s_text (&x.exif, 0x9004, "2019:07:01 12:00:00");
    s_text (&x.exif, 0x9012, "+02:00");
    s_text (&x.ifd0, 0x0132, "2020:01:01 00:00:00");
    json_t *photo = s_read_made (&x, false);
    cr_expect_str_eq (s_text_at (photo, "taken_at"), "2019-07-01T12:00:00+02:00");
    json_decref (photo);

    //  OffsetTime serves when OffsetTimeOriginal is missing; a malformed one is ignored
    s_exif_t y = { 0 };
    s_text (&y.exif, 0x9003, "2024:02:29 23:59:59");
    s_text (&y.exif, 0x9010, "-05:30");
    photo = s_read_made (&y, false);
    cr_expect_str_eq (s_text_at (photo, "taken_at"), "2024-02-29T23:59:59-05:30");
    json_decref (photo);
    s_exif_t z = { 0 };
    s_text (&z.exif, 0x9003, "2024:02:29 23:59:59");
    s_text (&z.exif, 0x9011, "+2:00");
    photo = s_read_made (&z, false);
    cr_expect_str_eq (s_text_at (photo, "taken_at"), "2024-02-29T23:59:59");
    json_decref (photo);

    //  Blanks, impossible dates and garbage: null
    const char *bad [] = { "    :  :     :  :  ", "2023:02:29 10:00:00", "2023:13:01 10:00:00",
                           "2023:01:01 24:00:00", "2023:01:01", "20230101 100000", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        s_exif_t b = { 0 };
        s_text (&b.exif, 0x9003, bad [i]);
        photo = s_read_made (&b, false);
        cr_expect (s_is_null (photo, "taken_at"), "\"%s\" is not a time", bad [i]);
        json_decref (photo);
    }
}

Test (exif, orientation_values_and_displayed_size)
{
    //  Spliced into a real 40x30 JPEG, so the header size is known
    const int values [] = { 1, 5, 6, 8, 0, 9, 65535 };
    const int reported [] = { 1, 5, 6, 8, 1, 1, 1 };
    for (int i = 0; i < 7; i++) {
        s_exif_t x = { 0 };
        s_short (&x.ifd0, 0x0112, (uint16_t) values [i]);
        json_t *photo = s_read_made (&x, true);
        cr_expect_eq (s_int (photo, "exif.orientation"), reported [i], "Orientation %d", values [i]);
        bool turned = reported [i] >= 5;
        cr_expect_eq (s_int (photo, "width"), turned ? 30 : 40, "Orientation %d", values [i]);
        cr_expect_eq (s_int (photo, "height"), turned ? 40 : 30, "Orientation %d", values [i]);
        json_decref (photo);
    }
    //  No Orientation tag: null, and the size as stored
    s_exif_t none = { 0 };
    s_text (&none.ifd0, 0x010F, "NoTurn");
    json_t *photo = s_read_made (&none, true);
    cr_expect (s_is_null (photo, "exif.orientation"));
    cr_expect_eq (s_int (photo, "width"), 40);
    json_decref (photo);
}

Test (exif, size_from_exif_when_the_header_is_unreadable)
{
    s_exif_t x = { 0 };
    s_short (&x.ifd0, 0x0112, 6);
    s_long (&x.exif, 0xA002, 4000);                             //  PixelXDimension
    s_long (&x.exif, 0xA003, 3000);
    json_t *photo = s_read_made (&x, false);                    //  no SOF: libvips cannot say
    cr_expect_eq (s_int (photo, "width"), 3000);
    cr_expect_eq (s_int (photo, "height"), 4000);
    json_decref (photo);

    s_exif_t y = { 0 };
    s_text (&y.ifd0, 0x010F, "NoSize");
    photo = s_read_made (&y, false);
    cr_expect (s_is_null (photo, "width"));
    cr_expect (s_is_null (photo, "height"));
    json_decref (photo);
}

Test (exif, iso_beyond_a_short)
{
    s_exif_t x = { 0 };
    s_short (&x.exif, 0x8827, 65535);                           //  "see ISOSpeed"
    s_long (&x.exif, 0x8833, 102400);
    json_t *photo = s_read_made (&x, false);
    cr_expect_eq (s_int (photo, "exif.iso"), 102400);
    json_decref (photo);
}

Test (exif, png_and_webp_carry_exif_too)
{
    //  libvips writes exif-data into PNG eXIf and WebP EXIF chunks
    s_exif_t x = { 0 };
    s_text (&x.ifd0, 0x010F, "ChunkCam");
    s_short (&x.ifd0, 0x0112, 6);
    char *jpeg = s_jpeg_with (&x, true);
    VipsImage *image = vips_image_new_from_file (jpeg, NULL);
    cr_assert_not_null (image, "%s", vips_error_buffer ());
    const char *suffixes [] = { ".png", ".webp" };
    for (int i = 0; i < 2; i++) {
        char path [600];
        snprintf (path, sizeof path, "%s%s", jpeg, suffixes [i]);
        VipsImage *copy = NULL;
        cr_assert_eq (vips_copy (image, &copy, NULL), 0);
        cr_assert_eq (vips_image_write_to_file (copy, path, NULL), 0, "%s", vips_error_buffer ());
        g_object_unref (copy);
        json_t *photo = s_read_path (path);
        cr_expect_str_eq (s_text_at (photo, "exif.make"), "ChunkCam", "%s", suffixes [i]);
        cr_expect_eq (s_int (photo, "exif.orientation"), 6, "%s", suffixes [i]);
        cr_expect_eq (s_int (photo, "width"), 30, "%s", suffixes [i]);
        cr_expect_eq (s_int (photo, "height"), 40, "%s", suffixes [i]);
        json_decref (photo);
    }
    g_object_unref (image);
    free (jpeg);
}

Test (exif, damaged_blocks_never_crash)
{
    //  A rich block, then the same block truncated at every length and with
    //  bytes flipped pseudo-randomly: always 0, always valid JSON
    s_exif_t x = { 0 };
    s_text (&x.ifd0, 0x010F, "FuzzCam");
    s_text (&x.ifd0, 0x0110, "Model F");
    s_short (&x.ifd0, 0x0112, 6);
    s_text (&x.exif, 0x9003, "2019:07:01 12:00:00");
    s_text (&x.exif, 0x9011, "+02:00");
    s_rational (&x.exif, 0x829A, 1, 250);
    s_short (&x.exif, 0x8827, 200);
    uint32_t lat [6] = { 48, 1, 51, 1, 30, 1 };
    s_text (&x.gps, 0x0001, "N");
    s_rationals (&x.gps, 0x0002, 3, lat);
    s_rationals (&x.gps, 0x0004, 3, lat);
    static unsigned char block [65536];
    size_t len = s_exif_block (&x, block, sizeof block);

    char *dir = rp_test_tmpdir ("exif-fuzz");
    char path [512];
    snprintf (path, sizeof path, "%s/fuzz.jpg", dir);
    unsigned char jpeg [4096];
    cr_assert_lt (len + 8, sizeof jpeg);
    uint32_t seed = 12345;
    for (int round = 0; round < 600; round++) {
        unsigned char damaged [4096];
        memcpy (damaged, block, len);
        size_t use = len;
        if (round < 300)
            use = (size_t) round * len / 300;                   //  truncated
        else
            for (int k = 0; k < 4; k++) {                       //  flipped
                seed = seed * 1103515245 + 12345;
                damaged [6 + (seed >> 8) % (len - 6)] ^= (unsigned char) (seed >> 24 | 1);
            }
        size_t n = 0;
        jpeg [n++] = 0xFF; jpeg [n++] = 0xD8; jpeg [n++] = 0xFF; jpeg [n++] = 0xE1;
        jpeg [n++] = (unsigned char) ((use + 2) >> 8);
        jpeg [n++] = (unsigned char) ((use + 2) & 0xFF);
        memcpy (jpeg + n, damaged, use);
        n += use;
        s_spit (path, jpeg, n);
        json_t *photo = s_read_path (path);
        json_decref (photo);
    }
    free (dir);
}


//  --------------------------------------------------------------------------
//  Several threads at once give what one thread gives

#define S_THREADS 4

static const char *const s_thread_files [] = {
    "camera/apple_iphone6_gps.jpg", "camera/canon_eos40d_makernote.jpg",
    "camera/nikon_d3100_gps_small.jpg", "formats/heic_iphone13promax_orient6.heic",
    "formats/avif_iphonexs_orient6_gps.avif", "malformed/exif_only_no_image_canon_s70.jpg",
    "malformed/exif_bad_ifd0.jpg", "orientation/Landscape_6.jpg", "formats/tiff_16bit_rgb.tif",
};
#define S_THREAD_FILES (sizeof s_thread_files / sizeof s_thread_files [0])

typedef struct {
    char *expected [S_THREAD_FILES];
    int offset;
    int mismatches;
} s_thread_args_t;

static char *
s_dump_file (const char *rel)
{
    char path [4096];
    if (!rp_testdata_path (path, sizeof path, rel))
        return NULL;
    json_t *result = NULL;
    char err [256];
    if (rp_exif_read (path, MAX_BYTES, &result, err, sizeof err))
        return NULL;
    char *text = json_dumps (result, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref (result);
    return text;
}

static void *
s_thread (void *arg)
{
    s_thread_args_t *args = arg;
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < S_THREAD_FILES; i++) {
            size_t k = (i + (size_t) args->offset) % S_THREAD_FILES;
            char *text = s_dump_file (s_thread_files [k]);
            if (!text || strcmp (text, args->expected [k]) != 0)
                args->mismatches++;
            free (text);
        }
    vips_thread_shutdown ();
    return NULL;
}

Test (exif, threads_agree_with_one_thread)
{
    RP_REQUIRE_TESTDATA ();
    s_thread_args_t args [S_THREADS];
    char *expected [S_THREAD_FILES];
    for (size_t i = 0; i < S_THREAD_FILES; i++) {
        expected [i] = s_dump_file (s_thread_files [i]);
        cr_assert_not_null (expected [i], "%s", s_thread_files [i]);
    }
    pthread_t threads [S_THREADS];
    for (int t = 0; t < S_THREADS; t++) {
        memcpy (args [t].expected, expected, sizeof expected);
        args [t].offset = t * 2;
        args [t].mismatches = 0;
        cr_assert_eq (pthread_create (&threads [t], NULL, s_thread, &args [t]), 0);
    }
    for (int t = 0; t < S_THREADS; t++) {
        pthread_join (threads [t], NULL);
        cr_expect_eq (args [t].mismatches, 0, "thread %d saw %d different results",
                      t, args [t].mismatches);
    }
    for (size_t i = 0; i < S_THREAD_FILES; i++)
        free (expected [i]);
}

//  rp_exif_read_buffer (what the fuzz target calls) gives what rp_exif_read
//  gives for the file holding the same bytes.
Test (exif, a_buffer_reads_as_its_file)
{
    RP_REQUIRE_TESTDATA ();
    static const char *const folders [] = { "camera", "formats", "malformed", "adversarial", "orientation" };
    int files = 0;
    for (size_t f = 0; f < sizeof folders / sizeof folders [0]; f++) {
        char dir [4096];
        cr_assert_not_null (rp_testdata_path (dir, sizeof dir, folders [f]));
        DIR *d = opendir (dir);
        cr_assert_not_null (d, "cannot list %s", dir);
        struct dirent *entry;
        while ((entry = readdir (d))) {
            if (entry->d_name [0] == '.')
                continue;
            char path [4600];
            snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
            FILE *file = fopen (path, "rb");
            cr_assert_not_null (file, "%s", path);
            fseek (file, 0, SEEK_END);
            long size = ftell (file);
            fseek (file, 0, SEEK_SET);
            unsigned char *bytes = malloc (size > 0 ? (size_t) size : 1);
            cr_assert_not_null (bytes);
            cr_assert_eq (fread (bytes, 1, (size_t) size, file), (size_t) size, "%s", path);
            fclose (file);
            json_t *from_file = s_read_path (path), *from_buffer = NULL;
            char err [256] = "";
            cr_assert_eq (rp_exif_read_buffer (bytes, (size_t) size, entry->d_name, &from_buffer,
                                               err, sizeof err), 0, "%s: %s", path, err);
            cr_expect (json_equal (from_file, from_buffer), "%s reads otherwise from a buffer", path);
            json_decref (from_file);
            json_decref (from_buffer);
            free (bytes);
            files++;
        }
        closedir (d);
    }
    cr_expect_gt (files, 50);
}
