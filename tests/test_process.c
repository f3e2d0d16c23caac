/*  tests/test_process.c: `rapidphoto process` over the whole shared corpus.

    The real binary, the real broker and actors, every file of
    ../shared/testdata/images at once, as a user would run it:
        rapidphoto process --out DIR images/
    Readable images must come out complete with both derivatives at the
    right size and upright; broken and hostile files must fail with a reason
    or, where still readable, complete; nothing may crash or hang, and the
    whole run must stay under 1 GiB of memory.
*/
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>
#include <czmq.h>

#include "tests/support/testdata.h"

static json_t *s_results;       //  relative path ("camera/x.jpg") -> the file's JSON line
static int s_exit_status = -2;
static long s_peak_rss_kb;
static char s_out [512];

static const char *
s_relative (const char *file)
{
    const char *at = strstr (file, "/images/");
    return at ? at + 8 : file;
}

//  Run the command once for the whole suite. Criterion runs each test in a
//  process of its own, so the first test runs it and leaves the outcome in
//  a folder named after the runner's pid; the others read it from there.
static void
s_run_once (void)
{
    if (s_results || !rp_testdata_dir ())
        return;
    cr_assert_eq (VIPS_INIT ("test_process"), 0);
    char dir [256], stdout_path [512], stderr_path [512], outcome_path [512];
    snprintf (dir, sizeof dir, "/tmp/rp-test-process-run-%d", (int) getppid ());
    snprintf (s_out, sizeof s_out, "%s/out", dir);
    snprintf (stdout_path, sizeof stdout_path, "%s/results.jsonl", dir);
    snprintf (stderr_path, sizeof stderr_path, "%s/process.log", dir);
    snprintf (outcome_path, sizeof outcome_path, "%s/outcome", dir);
    FILE *outcome = fopen (outcome_path, "r");
    if (outcome) {
        cr_assert_eq (fscanf (outcome, "%d %ld", &s_exit_status, &s_peak_rss_kb), 2);
        fclose (outcome);
    }
    else {
        char images [512];
        rp_testdata_path (images, sizeof images, "");
        mkdir (dir, 0755);
        pid_t pid = rp_test_spawn ((char *[]) { "process", "--out", s_out, images, NULL },
                                   NULL, stdout_path, stderr_path);
        s_exit_status = rp_test_wait (pid, 300000);
        cr_assert_neq (s_exit_status, -1, "process did not finish in 5 minutes (see %s)", stderr_path);
        struct rusage usage;
        getrusage (RUSAGE_CHILDREN, &usage);
        s_peak_rss_kb = usage.ru_maxrss;
        outcome = fopen (outcome_path, "w");
        fprintf (outcome, "%d %ld\n", s_exit_status, s_peak_rss_kb);
        fclose (outcome);
    }
    s_results = json_object ();
    FILE *file = fopen (stdout_path, "r");
    cr_assert_not_null (file);
    char *line = NULL;
    size_t cap = 0;
    while (getline (&line, &cap, file) > 0) {
        json_error_t jerr;
        json_t *result = json_loads (line, 0, &jerr);
        cr_assert_not_null (result, "not a JSON line: %s (%s)", line, jerr.text);
        const char *path = json_string_value (json_object_get (result, "file"));
        cr_assert_not_null (path);
        cr_assert_null (json_object_get (s_results, s_relative (path)), "%s reported twice", path);
        json_object_set_new (s_results, s_relative (path), result);
    }
    free (line);
    fclose (file);
}

static json_t *
s_result (const char *rel)
{
    json_t *r = json_object_get (s_results, rel);
    cr_assert_not_null (r, "no result line for %s", rel);
    return r;
}

static const char *
s_status (json_t *r)
{
    return json_string_value (json_object_get (r, "status"));
}

//  Load a derivative and return its size; checks its format by magic bytes.
static void
s_derivative_size (json_t *r, const char *name, int *width, int *height)
{
    json_t *d = json_object_get (json_object_get (r, "derivatives"), name);
    cr_assert_not_null (d, "%s has no %s", json_string_value (json_object_get (r, "file")), name);
    const char *path = json_string_value (json_object_get (d, "path"));
    VipsImage *image = vips_image_new_from_file (path, NULL);
    cr_assert_not_null (image, "cannot read %s", path);
    const char *loader = NULL;
    vips_image_get_string (image, "vips-loader", &loader);
    cr_assert_str_eq (loader, streq (name, "thumbnail") ? "webpload" : "jpegload", "%s", path);
    *width = image->Xsize;
    *height = image->Ysize;
    g_object_unref (image);
}

//  Both derivatives exist, fit their boxes, and keep the aspect ratio.
static void
s_expect_derivatives (json_t *r)
{
    const char *file = json_string_value (json_object_get (r, "file"));
    int w = (int) json_integer_value (json_object_get (r, "width"));
    int h = (int) json_integer_value (json_object_get (r, "height"));
    cr_assert (w > 0 && h > 0, "%s: no size", file);
    static const struct { const char *name; int box; } boxes [] = { { "thumbnail", 256 }, { "preview", 1440 } };
    for (int i = 0; i < 2; i++) {
        int dw, dh;
        s_derivative_size (r, boxes [i].name, &dw, &dh);
        int longest = w > h ? w : h;
        int expect_long = longest < boxes [i].box ? longest : boxes [i].box;
        cr_expect_eq (dw > dh ? dw : dh, expect_long, "%s %s is %dx%d for a %dx%d photo",
                      file, boxes [i].name, dw, dh, w, h);
        //  Same orientation and aspect ratio, within rounding
        double want = (double) w / h, got = (double) dw / dh;
        cr_expect (got / want > 0.9 && got / want < 1.1, "%s %s aspect %.3f, photo %.3f",
                   file, boxes [i].name, got, want);
    }
}

TestSuite (process, .init = s_run_once, .timeout = 400);

Test (process, runs_to_the_end_without_crashing_within_memory)
{
    RP_REQUIRE_TESTDATA ();
    cr_assert_eq (s_exit_status, 1, "exit 1: some corpus files are meant to fail");
    cr_assert_eq (json_object_size (s_results), 78, "one line per corpus file, got %zu",
                  json_object_size (s_results));
    cr_assert_lt (s_peak_rss_kb, 1024L * 1024, "peak resident memory %ld KiB", s_peak_rss_kb);
}

Test (process, every_readable_photo_is_complete_with_both_derivatives)
{
    RP_REQUIRE_TESTDATA ();
    const char *rel;
    json_t *r;
    int checked = 0;
    json_object_foreach (s_results, rel, r) {
        bool readable = strncmp (rel, "camera/", 7) == 0 || strncmp (rel, "large/", 6) == 0
                     || strncmp (rel, "orientation/", 12) == 0 || strncmp (rel, "synthetic/", 10) == 0
                     || (strncmp (rel, "formats/", 8) == 0 && !strstr (rel, ".svg"));
        if (!readable)
            continue;
        json_t *error = json_object_get (r, "error");
        cr_assert_str_eq (s_status (r), "complete", "%s: %s", rel,
                          json_is_string (error) ? json_string_value (error) : "");
        cr_assert_eq (strlen (json_string_value (json_object_get (r, "sha256"))), 64);
        s_expect_derivatives (r);
        checked++;
    }
    cr_assert_eq (checked, 17 + 1 + 9 + 1 + 19, "every readable corpus photo was checked");
}

Test (process, all_nine_orientations_come_out_upright)
{
    RP_REQUIRE_TESTDATA ();
    VipsImage *reference = NULL;
    for (int n = 0; n <= 8; n++) {
        char rel [64];
        snprintf (rel, sizeof rel, "orientation/Landscape_%d.jpg", n);
        json_t *r = s_result (rel);
        cr_assert_str_eq (s_status (r), "complete");
        cr_assert_eq (json_integer_value (json_object_get (r, "width")), 1800, "%s", rel);
        cr_assert_eq (json_integer_value (json_object_get (r, "height")), 1200, "%s", rel);
        const char *path = json_string_value (json_object_get (
            json_object_get (json_object_get (r, "derivatives"), "preview"), "path"));
        VipsImage *preview = vips_image_new_from_file (path, NULL);
        cr_assert_not_null (preview);
        cr_assert_eq (preview->Xsize, 1440);
        cr_assert_eq (preview->Ysize, 960);
        if (!reference)
            reference = preview;        //  Landscape_0: orientation 0 counts as 1
        else {
            //  The same picture as the reference, pixel for pixel, give or take JPEG noise
            VipsImage *diff = NULL, *absdiff = NULL;
            double mean = 0;
            cr_assert_eq (vips_subtract (preview, reference, &diff, NULL), 0);
            cr_assert_eq (vips_abs (diff, &absdiff, NULL), 0);
            cr_assert_eq (vips_avg (absdiff, &mean, NULL), 0);
            cr_expect_lt (mean, 8.0, "%s differs from upright by %.1f on average", rel, mean);
            g_object_unref (diff);
            g_object_unref (absdiff);
            g_object_unref (preview);
        }
    }
    g_object_unref (reference);
}

Test (process, the_iphone_heic_comes_out_upright_not_rotated_twice)
{
    RP_REQUIRE_TESTDATA ();
    json_t *r = s_result ("formats/heic_iphone13promax_orient6.heic");
    cr_assert_str_eq (s_status (r), "complete");
    int w, h;
    s_derivative_size (r, "preview", &w, &h);
    cr_assert_eq (w, 1080, "portrait, as the phone showed it");
    cr_assert_eq (h, 1440);
    cr_assert_str_eq (json_string_value (json_object_get (r, "content_type")), "image/heic");
    r = s_result ("formats/heif_nokia8.3_gps.heif");
    s_derivative_size (r, "preview", &w, &h);
    cr_assert_eq (w, 1080);
    cr_assert_eq (h, 1440);
}

Test (process, broken_and_hostile_files_fail_with_a_reason_or_complete)
{
    RP_REQUIRE_TESTDATA ();
    const char *rel;
    json_t *r;
    int failed = 0, completed = 0;
    json_object_foreach (s_results, rel, r) {
        if (strncmp (rel, "malformed/", 10) && strncmp (rel, "adversarial/", 12) && !strstr (rel, ".svg"))
            continue;
        const char *status = s_status (r);
        if (streq (status, "failed")) {
            const char *error = json_string_value (json_object_get (r, "error"));
            cr_assert (error && strlen (error) >= 10, "%s failed without a readable reason", rel);
            cr_assert_null (strstr (error, "/work/"), "%s: reason leaks a path: %s", rel, error);
            cr_assert_eq (json_object_size (json_object_get (r, "derivatives")), 0);
            failed++;
        }
        else {
            cr_assert_str_eq (status, "complete", "%s", rel);
            s_expect_derivatives (r);
            completed++;
        }
    }
    cr_assert_eq (failed + completed, 18 + 12 + 1);
    cr_assert_gt (failed, 10);
}

Test (process, pixel_bombs_are_refused_before_decoding)
{
    RP_REQUIRE_TESTDATA ();
    static const char *bombs [] = {
        "adversarial/png_60000x60000_header_only.png",
        "adversarial/png_60000x60000_zeros_1bit_bomb.png",
        "adversarial/jpeg_65500x65500_header_only.jpg",
        "adversarial/jpeg_20000x14000_black_optimized.jpg",
    };
    for (size_t i = 0; i < sizeof bombs / sizeof bombs [0]; i++) {
        json_t *r = s_result (bombs [i]);
        cr_assert_str_eq (s_status (r), "failed", "%s", bombs [i]);
        const char *error = json_string_value (json_object_get (r, "error"));
        //  Refused at the header, which names the size it claims
        cr_assert (strstr (error, "pixel limit"), "%s: %s", bombs [i], error);
        cr_assert (strstr (error, "60000x60000") || strstr (error, "65500x65500")
                   || strstr (error, "20000x14000"), "%s: %s", bombs [i], error);
    }
}

Test (process, non_images_are_named_by_what_they_are)
{
    RP_REQUIRE_TESTDATA ();
    static const struct { const char *rel; const char *says; } cases [] = {
        { "adversarial/text_file.jpg", "text" },
        { "adversarial/html_script.jpg", "HTML" },
        { "adversarial/zero_bytes.jpg", "empty" },
        { "formats/svg_logo.svg", "SVG" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        json_t *r = s_result (cases [i].rel);
        cr_assert_str_eq (s_status (r), "failed", "%s", cases [i].rel);
        const char *error = json_string_value (json_object_get (r, "error"));
        cr_assert (strstr (error, cases [i].says), "%s: %s", cases [i].rel, error);
    }
    //  A PNG named .jpg is a PNG
    json_t *r = s_result ("adversarial/png_disguised_as.jpg");
    cr_assert_str_eq (s_status (r), "complete");
    cr_assert_str_eq (json_string_value (json_object_get (r, "content_type")), "image/png");
}

Test (process, exif_and_files_on_disk_match_the_printed_lines)
{
    RP_REQUIRE_TESTDATA ();
    json_t *r = s_result ("camera/canon_eos40d_makernote.jpg");
    json_t *exif = json_object_get (r, "exif");
    cr_assert_str_eq (json_string_value (json_object_get (exif, "make")), "Canon");
    cr_assert_str_eq (json_string_value (json_object_get (exif, "model")), "Canon EOS 40D");
    //  DIR/<stem>.json holds the same object as the printed line
    char path [1024];
    snprintf (path, sizeof path, "%s/canon_eos40d_makernote.json", s_out);
    json_error_t jerr;
    json_t *on_disk = json_load_file (path, 0, &jerr);
    cr_assert_not_null (on_disk, "%s: %s", path, jerr.text);
    cr_assert (json_equal (on_disk, r));
    json_decref (on_disk);
    //  The outputs are the user's files, made as their others are (0666
    //  less the umask), though the private store they came from is 0600
    mode_t mask = umask (022);
    umask (mask);
    const char *outputs [] = { "thumbnail.webp", "preview.jpg", "json" };
    for (size_t i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/canon_eos40d_makernote.%s", s_out, outputs [i]);
        struct stat st;
        cr_assert_eq (stat (path, &st), 0, "%s", path);
        cr_assert_eq (st.st_mode & 0777, 0666 & ~mask, "%s is %o", path, (unsigned) (st.st_mode & 0777));
    }
}
