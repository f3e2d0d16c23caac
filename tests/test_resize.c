/*  tests/test_resize.c: the resize job handler, rp_resize_photo.

    Each test is a usage example: build options from the default config,
    call rp_resize_photo on a photo, then look at what landed on disk by
    loading it back with libvips. Tests that need the shared photo corpus
    start with RP_REQUIRE_TESTDATA() and skip, saying so, without it.

    Every call also checks that it left no libvips object alive (the count
    of live VipsObjects is the same before and after), which is how a leak
    in the handler shows up here.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             //  memmem
#endif
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include "engine/clock.h"
#include "engine/config.h"
#include "engine/log.h"
#include "actors/resize/resize.h"
#include "engine/thumbhash.h"
#include "tests/support/testdata.h"

//  ---------------------------------------------------------------------
//  Helpers

static void
s_setup (void)
{
    cr_assert_eq (VIPS_INIT ("test_resize"), 0, "vips_init failed");
    //  What main does once: no operation cache (loaders are cached by file
    //  name otherwise), and report any leaked object at shutdown
    vips_cache_set_max (0);
    vips_leak_set (TRUE);
    rp_log_set_level (RP_LOG_WARN);
}

static void
s_teardown (void)
{
    vips_shutdown ();
}

TestSuite (resize, .init = s_setup, .fini = s_teardown, .timeout = 120);

//  The options the engine uses out of the box: thumbnail webp 256x256 and
//  preview jpeg 1440x1440, 100 Mpx, fail_on truncated.
static rp_resize_opts_t
s_default_opts (void)
{
    rp_config_t config;
    rp_config_defaults (&config);
    rp_resize_opts_t opts;
    rp_resize_opts_from_config (&opts, &config);
    return opts;
}

static void *
s_count_object (void *object, void *a, void *b)
{
    (*(int *) a)++;
    return NULL;
}

static int
s_live_objects (void)
{
    int count = 0;
    vips_object_map (s_count_object, &count, NULL);
    return count;
}

//  One job: resize `src` into "<dir>/photo.*". Checks the call leaked no
//  libvips objects and that its outcome is well formed either way.
static int
s_resize (const rp_resize_opts_t *opts, const char *src, const char *dir,
          json_t **result, char *err, size_t errlen)
{
    char prefix [1024];
    snprintf (prefix, sizeof prefix, "%s/photo", dir);
    int before = s_live_objects ();
    int rc = rp_resize_photo (opts, src, prefix, result, err, errlen);
    cr_assert_eq (s_live_objects (), before, "%s: rp_resize_photo left %d libvips objects alive",
                  src, s_live_objects () - before);
    if (rc == 0)
        cr_assert_not_null (*result);
    else {
        cr_assert_null (*result);
        cr_assert_gt (strlen (err), 0, "%s: failed without a reason", src);
        cr_assert_null (strchr (err, '\n'), "reason is more than one line: %s", err);
        //  The reason reaches users: no folders of ours in it
        cr_assert_null (strstr (err, dir), "reason shows a path: %s", err);
        const char *corpus = rp_testdata_dir ();
        if (corpus)
            cr_assert_null (strstr (err, corpus), "reason shows a path: %s", err);
    }
    return rc;
}

//  Number of entries in a folder (not counting . and ..)
static int
s_count_files (const char *dir)
{
    DIR *d = opendir (dir);
    cr_assert_not_null (d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir (d)))
        if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
            n++;
    closedir (d);
    return n;
}

static int64_t
s_file_size (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? (int64_t) st.st_size : -1;
}

//  The first bytes of a file decide its format, as for uploads
static const char *
s_magic (const char *path)
{
    unsigned char head [16] = { 0 };
    FILE *f = fopen (path, "rb");
    cr_assert_not_null (f, "cannot open %s", path);
    size_t n = fread (head, 1, sizeof head, f);
    fclose (f);
    if (n >= 3 && head [0] == 0xFF && head [1] == 0xD8 && head [2] == 0xFF)
        return "jpeg";
    if (n >= 12 && memcmp (head, "RIFF", 4) == 0 && memcmp (head + 8, "WEBP", 4) == 0)
        return "webp";
    if (n >= 8 && memcmp (head, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "png";
    if (n >= 12 && memcmp (head + 4, "ftypavif", 8) == 0)
        return "avif";
    return "unknown";
}

//  Check one derivative of a result: its file exists with the reported
//  size, its format is right by magic bytes, it fits its box without being
//  enlarged, and it decodes to the reported size as 8-bit sRGB.
static void
s_check_derivative (json_t *result, const rp_derivative_t *spec, const char *src)
{
    int src_width = (int) json_integer_value (json_object_get (result, "width"));
    int src_height = (int) json_integer_value (json_object_get (result, "height"));
    json_t *d = json_object_get (json_object_get (result, "derivatives"), spec->name);
    cr_assert_not_null (d, "%s: no derivative %s", src, spec->name);
    const char *path = json_string_value (json_object_get (d, "path"));
    const char *format = json_string_value (json_object_get (d, "format"));
    int width = (int) json_integer_value (json_object_get (d, "width"));
    int height = (int) json_integer_value (json_object_get (d, "height"));
    cr_assert_not_null (path);
    cr_assert_str_eq (format, spec->format);
    cr_assert_str_eq (s_magic (path), spec->format, "%s: %s is not %s by its bytes",
                      src, path, spec->format);
    cr_assert_eq (s_file_size (path), json_integer_value (json_object_get (d, "bytes")));

    //  Fits the box, never enlarged, and touches the box or is the original size
    cr_assert (width >= 1 && height >= 1);
    cr_assert (width <= spec->width && height <= spec->height,
               "%s: %s is %dx%d, box %dx%d", src, spec->name, width, height,
               spec->width, spec->height);
    cr_assert (width <= src_width && height <= src_height, "%s: %s was enlarged", src, spec->name);
    cr_assert (width == spec->width || height == spec->height
               || (width == src_width && height == src_height),
               "%s: %s is %dx%d, smaller than it needs to be", src, spec->name, width, height);
    //  Same aspect ratio as the original, to within rounding of one pixel
    double expect_height = (double) width * src_height / src_width;
    cr_assert (height >= expect_height - 1.01 && height <= expect_height + 1.01,
               "%s: %s is %dx%d, aspect of %dx%d lost", src, spec->name, width, height,
               src_width, src_height);

    VipsImage *image = vips_image_new_from_file (path, NULL);
    cr_assert_not_null (image, "%s: %s does not load", src, path);
    cr_assert_eq (image->Xsize, width);
    cr_assert_eq (image->Ysize, height);
    cr_assert_eq (image->BandFmt, VIPS_FORMAT_UCHAR);
    cr_assert (image->Bands == 3 || image->Bands == 4, "%s: %d bands", path, image->Bands);
    g_object_unref (image);
}

static void
s_check_all_derivatives (const rp_resize_opts_t *opts, json_t *result, const char *src)
{
    cr_assert_eq ((int) json_object_size (json_object_get (result, "derivatives")),
                  opts->derivative_count);
    for (int i = 0; i < opts->derivative_count; i++)
        s_check_derivative (result, &opts->derivatives [i], src);
}

static const char *
s_derivative_path (json_t *result, const char *name)
{
    json_t *d = json_object_get (json_object_get (result, "derivatives"), name);
    return json_string_value (json_object_get (d, "path"));
}

static int
s_derivative_int (json_t *result, const char *name, const char *field)
{
    json_t *d = json_object_get (json_object_get (result, "derivatives"), name);
    return (int) json_integer_value (json_object_get (d, field));
}

//  Mean absolute difference of two same-sized images, 0..255
static double
s_mean_abs_diff (VipsImage *a, VipsImage *b)
{
    VipsImage *diff = NULL, *absolute = NULL;
    double mean = -1;
    cr_assert_eq (a->Xsize, b->Xsize);
    cr_assert_eq (a->Ysize, b->Ysize);
    if (vips_subtract (a, b, &diff, NULL) == 0
    &&  vips_abs (diff, &absolute, NULL) == 0)
        cr_assert_eq (vips_avg (absolute, &mean, NULL), 0);
    if (diff) g_object_unref (diff);
    if (absolute) g_object_unref (absolute);
    cr_assert_geq (mean, 0);
    return mean;
}

static VipsImage *
s_load (const char *path)
{
    VipsImage *image = vips_image_new_from_file (path, NULL);
    cr_assert_not_null (image, "cannot load %s", path);
    return image;
}

//  File names (sorted) in a corpus folder, for the "every file" tests
static int
s_corpus_files (const char *folder, char names [][256], int max)
{
    char dir [1024];
    cr_assert_not_null (rp_testdata_path (dir, sizeof dir, folder));
    struct dirent **list = NULL;
    int n = scandir (dir, &list, NULL, alphasort);
    cr_assert_geq (n, 0, "cannot list %s", dir);
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (list [i]->d_name [0] != '.' && count < max)
            snprintf (names [count++], 256, "%.255s", list [i]->d_name);
        free (list [i]);
    }
    free (list);
    return count;
}

//  A mean difference above this means a different picture (mirrored,
//  rotated); the same picture through another decode path stays under 4.
#define S_SAME_PICTURE 10.0

//  ---------------------------------------------------------------------
//  Synthetic photos: no corpus needed

Test (resize, synthetic_jpeg_makes_both_default_derivatives)
{
    char *dir = rp_test_tmpdir ("resize");
    char src [1024];
    snprintf (src, sizeof src, "%s/upload.bin", dir);     //  the name says nothing
    cr_assert_eq (rp_test_make_jpeg (src, 3000, 2000, 0), 0);
    char *out = rp_test_tmpdir ("resize-out");

    rp_resize_opts_t opts = s_default_opts ();
    json_t *result = NULL;
    char err [256] = "";
    cr_assert_eq (s_resize (&opts, src, out, &result, err, sizeof err), 0, "failed: %s", err);

    cr_assert_str_eq (json_string_value (json_object_get (result, "content_type")), "image/jpeg");
    cr_assert_eq (json_integer_value (json_object_get (result, "width")), 3000);
    cr_assert_eq (json_integer_value (json_object_get (result, "height")), 2000);
    s_check_all_derivatives (&opts, result, src);
    cr_assert_eq (s_derivative_int (result, "thumbnail", "width"), 256);
    cr_assert_eq (s_derivative_int (result, "thumbnail", "height"), 171);
    cr_assert_eq (s_derivative_int (result, "preview", "width"), 1440);
    cr_assert_eq (s_derivative_int (result, "preview", "height"), 960);

    //  The names the header promises, and nothing else in the folder
    char expect [1100];
    snprintf (expect, sizeof expect, "%s/photo.thumbnail.webp", out);
    cr_assert_str_eq (s_derivative_path (result, "thumbnail"), expect);
    snprintf (expect, sizeof expect, "%s/photo.preview.jpg", out);
    cr_assert_str_eq (s_derivative_path (result, "preview"), expect);
    cr_assert_eq (s_count_files (out), 2);

    //  Where the time went: the decode and each derivative, in ms
    json_t *timings = json_object_get (result, "timings");
    cr_assert (json_is_object (timings));
    cr_assert_eq (json_object_size (timings), 4);
    const char *keys [] = { "decode_ms", "thumbnail_ms", "preview_ms", "thumbhash_ms" };
    for (int i = 0; i < 4; i++) {
        json_t *ms = json_object_get (timings, keys [i]);
        cr_assert (json_is_real (ms), "timings.%s is missing", keys [i]);
        cr_assert (json_real_value (ms) > 0 && json_real_value (ms) < 60000, "%s", keys [i]);
    }
    //  The placeholder (tests/thumbhash compares it with the reference)
    json_t *thumbhash = json_object_get (result, "thumbhash");
    cr_assert (json_is_string (thumbhash), "no thumbhash");
    cr_assert (rp_thumbhash_valid (json_string_value (thumbhash), json_string_length (thumbhash)),
               "thumbhash %s is not a placeholder's base64", json_string_value (thumbhash));
    //  ... made from the thumbnail's pixels, not the 1440 px decode, and
    //  they are the ones rp_resize_placeholder_rgba gives tests/thumbhash
    unsigned char *rgba = NULL;
    int width = 0, height = 0;
    cr_assert_eq (rp_resize_placeholder_rgba (&opts, src, &rgba, &width, &height, err, sizeof err), 0,
                  "placeholder pixels: %s", err);
    cr_expect_eq (width, 100);
    cr_expect_eq (height, 67);
    unsigned char hash [RP_THUMBHASH_MAX];
    size_t len = 0;
    char text [RP_THUMBHASH_B64_MAX + 1];
    cr_assert_eq (rp_thumbhash_encode (width, height, rgba, hash, &len), 0);
    cr_assert_eq (rp_thumbhash_base64 (hash, len, text, sizeof text), 0);
    cr_expect_str_eq (text, json_string_value (thumbhash));
    g_free (rgba);

    json_decref (result);
    free (dir);
    free (out);
}

Test (resize, synthetic_jpeg_with_orientation_6_comes_out_portrait)
{
    char *dir = rp_test_tmpdir ("resize");
    char src [1024];
    snprintf (src, sizeof src, "%s/sideways.jpg", dir);
    //  Stored 3000x2000 with Orientation=6: displayed 2000x3000
    cr_assert_eq (rp_test_make_jpeg (src, 3000, 2000, 6), 0);

    rp_resize_opts_t opts = s_default_opts ();
    json_t *result = NULL;
    char err [256] = "";
    cr_assert_eq (s_resize (&opts, src, dir, &result, err, sizeof err), 0, "failed: %s", err);
    cr_assert_eq (json_integer_value (json_object_get (result, "width")), 2000);
    cr_assert_eq (json_integer_value (json_object_get (result, "height")), 3000);
    cr_assert_eq (s_derivative_int (result, "preview", "width"), 960);
    cr_assert_eq (s_derivative_int (result, "preview", "height"), 1440);
    cr_assert_eq (s_derivative_int (result, "thumbnail", "width"), 171);
    cr_assert_eq (s_derivative_int (result, "thumbnail", "height"), 256);
    s_check_all_derivatives (&opts, result, src);

    //  Upright means the same pixels as rotating the stored image 90 degrees
    //  clockwise by hand (the gradient's bright corner moves)
    VipsImage *shrunk = NULL, *stored = NULL, *rotated = NULL, *expected = NULL;
    cr_assert_eq (vips_thumbnail (src, &shrunk, 1440, "no_rotate", TRUE, NULL), 0);
    cr_assert_not_null (stored = vips_image_copy_memory (shrunk));     //  rot needs random access
    cr_assert_eq (vips_rot90 (stored, &rotated, NULL), 0);
    cr_assert_eq (vips_extract_band (rotated, &expected, 0, "n", 3, NULL), 0);
    VipsImage *preview = s_load (s_derivative_path (result, "preview"));
    cr_assert_lt (s_mean_abs_diff (preview, expected), S_SAME_PICTURE);
    g_object_unref (preview);
    g_object_unref (expected);
    g_object_unref (rotated);
    g_object_unref (stored);
    g_object_unref (shrunk);
    json_decref (result);
    free (dir);
}

Test (resize, every_output_format_and_any_box)
{
    char *dir = rp_test_tmpdir ("resize");
    char src [1024];
    snprintf (src, sizeof src, "%s/in.jpg", dir);
    cr_assert_eq (rp_test_make_jpeg (src, 1200, 900, 0), 0);

    rp_resize_opts_t opts = s_default_opts ();
    char err [256] = "";
    const char *specs [][2] = {
        { "square", "png 90 300x300" },
        { "banner", "avif 60 1000x200" },          //  height decides
        { "tall", "webp 75 100x2000" },            //  width decides
        { "big", "jpeg 85 4000x4000" },            //  larger than the photo: not enlarged
    };
    opts.derivative_count = 4;
    for (int i = 0; i < 4; i++) {
        snprintf (opts.derivatives [i].name, sizeof opts.derivatives [i].name, "%s", specs [i][0]);
        cr_assert_eq (rp_derivative_parse (&opts.derivatives [i], specs [i][1], err, sizeof err), 0);
    }
    json_t *result = NULL;
    cr_assert_eq (s_resize (&opts, src, dir, &result, err, sizeof err), 0, "failed: %s", err);
    s_check_all_derivatives (&opts, result, src);
    cr_assert_eq (s_derivative_int (result, "square", "width"), 300);
    cr_assert_eq (s_derivative_int (result, "banner", "height"), 200);
    cr_assert_eq (s_derivative_int (result, "tall", "width"), 100);
    cr_assert_eq (s_derivative_int (result, "big", "width"), 1200);
    cr_assert (strstr (s_derivative_path (result, "banner"), "photo.banner.avif"));
    cr_assert (strstr (s_derivative_path (result, "square"), "photo.square.png"));
    json_decref (result);
    free (dir);
}

Test (resize, running_a_job_twice_gives_the_same_files_and_no_leftovers)
{
    char *dir = rp_test_tmpdir ("resize");
    char src [1024];
    snprintf (src, sizeof src, "%s/in.jpg", dir);
    cr_assert_eq (rp_test_make_jpeg (src, 800, 600, 0), 0);
    char *out = rp_test_tmpdir ("resize-out");

    rp_resize_opts_t opts = s_default_opts ();
    char err [256] = "";
    json_t *first = NULL, *second = NULL;
    cr_assert_eq (s_resize (&opts, src, out, &first, err, sizeof err), 0, "failed: %s", err);
    cr_assert_eq (s_resize (&opts, src, out, &second, err, sizeof err), 0, "failed: %s", err);
    //  Everything but how long it took
    json_object_del (first, "timings");
    json_object_del (second, "timings");
    cr_assert (json_equal (first, second), "a second run reported something else");
    cr_assert_eq (s_count_files (out), 2, "temporary files were left behind");
    json_decref (first);
    json_decref (second);
    free (dir);
    free (out);
}

Test (resize, refuses_files_larger_than_max_bytes_and_leaves_nothing)
{
    char *dir = rp_test_tmpdir ("resize");
    char src [1024];
    snprintf (src, sizeof src, "%s/in.jpg", dir);
    cr_assert_eq (rp_test_make_jpeg (src, 800, 600, 0), 0);
    char *out = rp_test_tmpdir ("resize-out");

    rp_resize_opts_t opts = s_default_opts ();
    opts.max_bytes = 1000;
    char err [256] = "";
    json_t *result = NULL;
    cr_assert_eq (s_resize (&opts, src, out, &result, err, sizeof err), -1);
    cr_assert (strstr (err, "more than the limit of 1000 bytes"), "reason: %s", err);
    cr_assert_eq (s_count_files (out), 0);
    free (dir);
    free (out);
}

Test (resize, refuses_a_missing_file)
{
    char *out = rp_test_tmpdir ("resize-out");
    rp_resize_opts_t opts = s_default_opts ();
    char err [256] = "";
    json_t *result = NULL;
    cr_assert_eq (s_resize (&opts, "/nonexistent/photo.jpg", out, &result, err, sizeof err), -1);
    cr_assert (strstr (err, "cannot read the file"), "reason: %s", err);
    free (out);
}

//  Several workers run the handler at once; each job gets its own result
typedef struct {
    char src [1024];
    char out [1024];
    int width;
    int rc;
    char err [256];
    int preview_width;
} s_job_t;

static void *
s_job_thread (void *arg)
{
    s_job_t *job = arg;
    rp_resize_opts_t opts = s_default_opts ();
    char prefix [1100];
    snprintf (prefix, sizeof prefix, "%s/photo", job->out);
    json_t *result = NULL;
    job->rc = rp_resize_photo (&opts, job->src, prefix, &result, job->err, sizeof job->err);
    if (job->rc == 0) {
        job->preview_width = s_derivative_int (result, "preview", "width");
        json_decref (result);
    }
    vips_thread_shutdown ();    //  a thread libvips did not create
    return NULL;
}

Test (resize, jobs_run_concurrently_on_several_threads)
{
    enum { JOBS = 4 };
    s_job_t jobs [JOBS];
    pthread_t threads [JOBS];
    char *dir = rp_test_tmpdir ("resize");
    for (int i = 0; i < JOBS; i++) {
        memset (&jobs [i], 0, sizeof jobs [i]);
        jobs [i].width = 1000 + 300 * i;
        snprintf (jobs [i].src, sizeof jobs [i].src, "%s/in-%d.jpg", dir, i);
        snprintf (jobs [i].out, sizeof jobs [i].out, "%s/out-%d", dir, i);
        cr_assert_eq (mkdir (jobs [i].out, 0755), 0);
        cr_assert_eq (rp_test_make_jpeg (jobs [i].src, jobs [i].width, 500, 0), 0);
    }
    for (int i = 0; i < JOBS; i++)
        cr_assert_eq (pthread_create (&threads [i], NULL, s_job_thread, &jobs [i]), 0);
    for (int i = 0; i < JOBS; i++)
        pthread_join (threads [i], NULL);
    for (int i = 0; i < JOBS; i++) {
        cr_assert_eq (jobs [i].rc, 0, "job %d failed: %s", i, jobs [i].err);
        cr_assert_eq (jobs [i].preview_width, jobs [i].width > 1440 ? 1440 : jobs [i].width);
        cr_assert_eq (s_count_files (jobs [i].out), 2);
    }
    free (dir);
}

//  ---------------------------------------------------------------------
//  The photo corpus

//  A corpus path ("formats/png_rgba.png") or folder ("camera") as a test's
//  parameter: the parameters reach each test's own process as bytes, so
//  they hold no pointers
typedef struct {
    char rel [96];
} s_rel_t;

//  Resize one corpus file with `opts`; returns rc, result and reason.
static int
s_resize_corpus (const rp_resize_opts_t *opts, const char *rel, const char *out,
                 json_t **result, char *err, size_t errlen)
{
    char src [1024];
    cr_assert_not_null (rp_testdata_path (src, sizeof src, rel));
    return s_resize (opts, src, out, result, err, errlen);
}

//  Resize a corpus file's default derivatives into a fresh folder; the
//  preview (caller unrefs) and the result (caller decrefs).
static VipsImage *
s_corpus_preview (const rp_resize_opts_t *opts, const char *rel, json_t **result)
{
    char *out = rp_test_tmpdir ("resize-corpus");
    cr_assert_not_null (out);
    char err [256] = "";
    *result = NULL;
    cr_assert_eq (s_resize_corpus (opts, rel, out, result, err, sizeof err), 0, "%s: %s", rel, err);
    free (out);
    return s_load (s_derivative_path (*result, "preview"));
}

//  Landscape_<o>.jpg for o in 1..8, then 0 (an invalid tag, read as 1):
//  each comes out as the upright Landscape_1 does
ParameterizedTestParameters (resize, every_exif_orientation_comes_out_upright)
{
    static int orientations [] = { 1, 2, 3, 4, 5, 6, 7, 8, 0 };
    return cr_make_param_array (int, orientations, sizeof orientations / sizeof orientations [0]);
}

ParameterizedTest (int *orientation, resize, every_exif_orientation_comes_out_upright)
{
    RP_REQUIRE_TESTDATA ();
    rp_resize_opts_t opts = s_default_opts ();
    char rel [64];
    snprintf (rel, sizeof rel, "orientation/Landscape_%d.jpg", *orientation);
    json_t *result = NULL;
    VipsImage *preview = s_corpus_preview (&opts, rel, &result);
    cr_assert_eq (json_integer_value (json_object_get (result, "width")), 1800, "%s", rel);
    cr_assert_eq (json_integer_value (json_object_get (result, "height")), 1200, "%s", rel);
    cr_assert_eq (s_derivative_int (result, "preview", "width"), 1440, "%s", rel);
    cr_assert_eq (s_derivative_int (result, "preview", "height"), 960, "%s", rel);
    s_check_all_derivatives (&opts, result, rel);
    if (*orientation != 1) {
        json_t *upright = NULL;
        VipsImage *reference = s_corpus_preview (&opts, "orientation/Landscape_1.jpg", &upright);
        double diff = s_mean_abs_diff (preview, reference);
        cr_assert_lt (diff, S_SAME_PICTURE, "%s is not upright: mean difference %.1f", rel, diff);
        g_object_unref (reference);
        json_decref (upright);
    }
    g_object_unref (preview);
    json_decref (result);
}

//  The check above has teeth: Landscape_3 left as stored (upside down) and
//  a mirrored upright picture are both far above the threshold
Test (resize, the_orientation_check_tells_wrong_pictures_apart)
{
    RP_REQUIRE_TESTDATA ();
    rp_resize_opts_t opts = s_default_opts ();
    json_t *upright = NULL;
    VipsImage *reference = s_corpus_preview (&opts, "orientation/Landscape_1.jpg", &upright);
    char src [1024];
    VipsImage *as_stored = NULL, *mirrored = NULL;
    rp_testdata_path (src, sizeof src, "orientation/Landscape_3.jpg");
    cr_assert_eq (vips_thumbnail (src, &as_stored, 1440, "no_rotate", TRUE, NULL), 0);
    cr_assert_gt (s_mean_abs_diff (as_stored, reference), 3 * S_SAME_PICTURE);
    cr_assert_eq (vips_flip (reference, &mirrored, VIPS_DIRECTION_HORIZONTAL, NULL), 0);
    cr_assert_gt (s_mean_abs_diff (mirrored, reference), 3 * S_SAME_PICTURE);
    g_object_unref (as_stored);
    g_object_unref (mirrored);
    g_object_unref (reference);
    json_decref (upright);
}

//  HEIF: libheif applies the irot box on load; the EXIF Orientation inside
//  must not rotate it again.
Test (resize, iphone_heic_is_portrait_not_rotated_twice)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-heic");
    rp_resize_opts_t opts = s_default_opts ();
    char err [256] = "";
    json_t *result = NULL;
    //  Stored 4032x3024 with irot 270 and EXIF Orientation=6: upright is 3024x4032
    cr_assert_eq (s_resize_corpus (&opts, "formats/heic_iphone13promax_orient6.heic", out,
                                   &result, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (json_string_value (json_object_get (result, "content_type")), "image/heic");
    cr_assert_eq (json_integer_value (json_object_get (result, "width")), 3024);
    cr_assert_eq (json_integer_value (json_object_get (result, "height")), 4032);
    cr_assert_eq (s_derivative_int (result, "preview", "width"), 1080);
    cr_assert_eq (s_derivative_int (result, "preview", "height"), 1440);
    cr_assert_eq (s_derivative_int (result, "thumbnail", "width"), 192);
    cr_assert_eq (s_derivative_int (result, "thumbnail", "height"), 256);
    s_check_all_derivatives (&opts, result, "iphone heic");
    json_decref (result);
    free (out);
}

Test (resize, nokia_heif_follows_its_irot_box)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-heif");
    rp_resize_opts_t opts = s_default_opts ();
    char err [256] = "";
    json_t *result = NULL;
    //  Stored 4608x3456 with irot 270 and EXIF Orientation=1. The HEIF spec
    //  makes irot win, as browsers and phones do, so this is portrait. (The
    //  stored pixels of this particular file are the upright landscape
    //  scene: the phone wrote an irot it should not have. We follow the
    //  spec, not a guess.)
    cr_assert_eq (s_resize_corpus (&opts, "formats/heif_nokia8.3_gps.heif", out,
                                   &result, err, sizeof err), 0, "%s", err);
    cr_assert_eq (json_integer_value (json_object_get (result, "width")), 3456);
    cr_assert_eq (json_integer_value (json_object_get (result, "height")), 4608);
    cr_assert_eq (s_derivative_int (result, "preview", "width"), 1080);
    cr_assert_eq (s_derivative_int (result, "preview", "height"), 1440);
    s_check_all_derivatives (&opts, result, "nokia heif");
    json_decref (result);
    free (out);
}

Test (resize, avif_files_work)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-avif");
    rp_resize_opts_t opts = s_default_opts ();
    char err [256] = "";
    json_t *result = NULL;
    cr_assert_eq (s_resize_corpus (&opts, "formats/avif_iphonexs_orient6_gps.avif", out,
                                   &result, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (json_string_value (json_object_get (result, "content_type")), "image/avif");
    cr_assert_eq (s_derivative_int (result, "preview", "width"), 1080);
    cr_assert_eq (s_derivative_int (result, "preview", "height"), 1440);
    s_check_all_derivatives (&opts, result, "iphone avif");
    json_decref (result);

    cr_assert_eq (s_resize_corpus (&opts, "formats/avif_example.avif", out,
                                   &result, err, sizeof err), 0, "%s", err);
    cr_assert_eq (s_derivative_int (result, "preview", "width"), 800);
    cr_assert_eq (s_derivative_int (result, "preview", "height"), 533);
    s_check_all_derivatives (&opts, result, "example avif");
    json_decref (result);
    free (out);
}

//  Every real photo in camera/, formats/ and large/ resizes; SVG is refused.
ParameterizedTestParameters (resize, every_photo_of_a_folder_completes_but_svg)
{
    static s_rel_t folders [] = { { "camera" }, { "formats" }, { "large" } };
    return cr_make_param_array (s_rel_t, folders, sizeof folders / sizeof folders [0]);
}

ParameterizedTest (s_rel_t *param, resize, every_photo_of_a_folder_completes_but_svg)
{
    RP_REQUIRE_TESTDATA ();
    const char *folder = param->rel;
    static char names [64][256];
    int count = s_corpus_files (folder, names, 64);
    cr_assert_gt (count, 0);
    rp_resize_opts_t opts = s_default_opts ();
    for (int i = 0; i < count; i++) {
        char rel [600], out [1100];
        snprintf (rel, sizeof rel, "%.64s/%.255s", folder, names [i]);
        char *dir = rp_test_tmpdir ("resize-all");
        snprintf (out, sizeof out, "%s", dir);
        free (dir);
        json_t *result = NULL;
        char err [256] = "";
        int rc = s_resize_corpus (&opts, rel, out, &result, err, sizeof err);
        if (strstr (names [i], ".svg")) {
            cr_expect_eq (rc, -1, "%s: an SVG was accepted", rel);
            cr_expect (strstr (err, "not a supported image"), "%s: %s", rel, err);
            cr_expect_eq (s_count_files (out), 0);
            continue;
        }
        cr_expect_eq (rc, 0, "%s failed: %s", rel, err);
        if (rc == 0) {
            s_check_all_derivatives (&opts, result, rel);
            json_decref (result);
        }
    }
}

//  Broken and hostile files: a readable reason or valid derivatives, never
//  a crash, and no files left behind on failure.
ParameterizedTestParameters (resize, every_broken_file_fails_readably_or_completes)
{
    static s_rel_t folders [] = { { "malformed" }, { "adversarial" } };
    return cr_make_param_array (s_rel_t, folders, sizeof folders / sizeof folders [0]);
}

ParameterizedTest (s_rel_t *param, resize, every_broken_file_fails_readably_or_completes)
{
    RP_REQUIRE_TESTDATA ();
    const char *folder = param->rel;
    static char names [64][256];
    int count = s_corpus_files (folder, names, 64);
    cr_assert_gt (count, 0);
    rp_resize_opts_t opts = s_default_opts ();
    for (int i = 0; i < count; i++) {
        char rel [600];
        snprintf (rel, sizeof rel, "%.64s/%.255s", folder, names [i]);
        char *out = rp_test_tmpdir ("resize-bad");
        json_t *result = NULL;
        char err [256] = "";
        int64_t started = rp_clock_ms ();
        int rc = s_resize_corpus (&opts, rel, out, &result, err, sizeof err);
        int64_t took = rp_clock_ms () - started;
        if (rc == 0) {
            s_check_all_derivatives (&opts, result, rel);
            json_decref (result);
        }
        else
            cr_expect_eq (s_count_files (out), 0, "%s: failed but left files", rel);
        cr_log_info ("%-45s %5lld ms  %s", rel, (long long) took, rc == 0 ? "ok" : err);
        free (out);
    }
}

ParameterizedTestParameters (resize, header_bombs_are_refused_before_decoding)
{
    static s_rel_t bombs [] = {
        { "adversarial/png_60000x60000_header_only.png" },
        { "adversarial/png_60000x60000_zeros_1bit_bomb.png" },
        { "adversarial/jpeg_65500x65500_header_only.jpg" },
        { "adversarial/jpeg_20000x14000_black_optimized.jpg" },     //  280 Mpx > 100 Mpx
    };
    return cr_make_param_array (s_rel_t, bombs, sizeof bombs / sizeof bombs [0]);
}

ParameterizedTest (s_rel_t *bomb, resize, header_bombs_are_refused_before_decoding)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-bomb");
    rp_resize_opts_t opts = s_default_opts ();
    json_t *result = NULL;
    char err [256] = "";
    int64_t started = rp_clock_ms ();
    cr_assert_eq (s_resize_corpus (&opts, bomb->rel, out, &result, err, sizeof err), -1,
                  "%s was accepted", bomb->rel);
    int64_t took = rp_clock_ms () - started;
    cr_assert_lt (took, 1000, "%s took %lld ms to refuse", bomb->rel, (long long) took);
    cr_assert (strstr (err, "pixel limit of 100.0 megapixels"), "%s: %s", bomb->rel, err);
    cr_assert_eq (s_count_files (out), 0);
    free (out);
}

Test (resize, a_header_bomb_is_refused_with_its_size)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-bomb");
    rp_resize_opts_t opts = s_default_opts ();
    json_t *result = NULL;
    char err [256] = "";
    s_resize_corpus (&opts, "adversarial/png_60000x60000_header_only.png", out,
                     &result, err, sizeof err);
    cr_assert_str_eq (err, "image is 60000x60000 pixels (3600.0 megapixels), "
                           "more than the pixel limit of 100.0 megapixels");
    free (out);
}

//  A file of another kind, whatever its name says, and the reason given
typedef struct {
    char rel [96];
    char reason [96];
} s_not_image_t;

ParameterizedTestParameters (resize, the_type_comes_from_the_bytes_not_the_name)
{
    static s_not_image_t cases [] = {
        { "adversarial/html_script.jpg", "not a supported image: the file is HTML" },
        { "adversarial/text_file.jpg",   "not a supported image: the file is text" },
        { "adversarial/zero_bytes.jpg",  "not a supported image: the file is an empty file" },
        { "formats/svg_logo.svg",        "not a supported image: the file is XML or SVG" },
    };
    return cr_make_param_array (s_not_image_t, cases, sizeof cases / sizeof cases [0]);
}

ParameterizedTest (s_not_image_t *not_image, resize, the_type_comes_from_the_bytes_not_the_name)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-sniff");
    rp_resize_opts_t opts = s_default_opts ();
    json_t *result = NULL;
    char err [256] = "";
    cr_assert_eq (s_resize_corpus (&opts, not_image->rel, out, &result, err, sizeof err), -1);
    cr_assert_str_eq (err, not_image->reason);
    free (out);
}

//  A PNG named .jpg is a PNG
Test (resize, a_png_named_jpg_is_a_png)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-sniff");
    rp_resize_opts_t opts = s_default_opts ();
    json_t *result = NULL;
    char err [256] = "";
    cr_assert_eq (s_resize_corpus (&opts, "adversarial/png_disguised_as.jpg", out,
                                   &result, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (json_string_value (json_object_get (result, "content_type")), "image/png");
    json_decref (result);
    free (out);
}

Test (resize, the_3000_frame_gif_loads_only_its_first_frame)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-gif");
    rp_resize_opts_t opts = s_default_opts ();
    json_t *result = NULL;
    char err [256] = "";
    int64_t started = rp_clock_ms ();
    cr_assert_eq (s_resize_corpus (&opts, "adversarial/gif_3000_frames.gif", out,
                                   &result, err, sizeof err), 0, "%s", err);
    //  No hang (the frame count is read from the whole file, which is quick)
    cr_assert_lt (rp_clock_ms () - started, 10000);
    cr_assert_eq (json_integer_value (json_object_get (result, "width")), 32);
    cr_assert_eq (json_integer_value (json_object_get (result, "height")), 32);
    //  One frame out: a 32x32 still, not a 32x96000 strip
    cr_assert_eq (s_derivative_int (result, "preview", "height"), 32);
    cr_assert_eq (s_derivative_int (result, "thumbnail", "height"), 32);
    json_decref (result);
    free (out);
}

//  A libvips error reaches the user as one readable line without paths
Test (resize, decode_errors_are_readable)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-err");
    rp_resize_opts_t opts = s_default_opts ();
    json_t *result = NULL;
    char err [256] = "";
    cr_assert_eq (s_resize_corpus (&opts, "malformed/jpeg_truncated_10000_bytes.jpg", out,
                                   &result, err, sizeof err), -1);
    //  libjpeg-turbo and mozjpeg word it differently
    cr_assert (strcmp (err, "cannot decode image: VipsJpeg: Premature end of input file") == 0
           ||  strcmp (err, "cannot decode image: VipsJpeg: premature end of JPEG image") == 0,
               "%s", err);
    cr_assert_eq (s_resize_corpus (&opts, "malformed/exif_only_no_image_fuji.jpg", out,
                                   &result, err, sizeof err), -1);
    cr_assert_str_eq (err, "cannot read image header: VipsJpeg: Invalid JPEG file structure: "
                           "two SOI markers");
    cr_assert_eq (s_count_files (out), 0);
    free (out);
}

//  fail_on decides how broken is too broken. With the default, truncated,
//  a cut-off file is refused, and recoverable damage (stray bytes, a short
//  APP14 segment, a bad later GIF frame) still gives derivatives. With
//  warning, those are refused too.
typedef struct {
    char rel [96];
    VipsFailOn passes;              //  resizes under this fail_on
    VipsFailOn fails;               //  and is refused under this one
    char fails_name [16];
} s_fail_on_t;

ParameterizedTestParameters (resize, fail_on_truncated_versus_warning)
{
    static s_fail_on_t cases [] = {
        //  Recoverable
        { "malformed/exif_bad_ifd0.jpg",              VIPS_FAIL_ON_TRUNCATED, VIPS_FAIL_ON_WARNING, "warning" },
        { "malformed/jpeg_truncated_app14.jpg",       VIPS_FAIL_ON_TRUNCATED, VIPS_FAIL_ON_WARNING, "warning" },
        { "malformed/gif_invalid_multiframe.gif",     VIPS_FAIL_ON_TRUNCATED, VIPS_FAIL_ON_WARNING, "warning" },
        //  Truncated
        { "malformed/jpeg_truncated_10000_bytes.jpg", VIPS_FAIL_ON_NONE, VIPS_FAIL_ON_TRUNCATED, "truncated" },
        { "adversarial/truncated_half.jpg",           VIPS_FAIL_ON_NONE, VIPS_FAIL_ON_TRUNCATED, "truncated" },
        { "malformed/gif_truncated.gif",              VIPS_FAIL_ON_NONE, VIPS_FAIL_ON_TRUNCATED, "truncated" },
        { "malformed/png_huge_idat_chunk.png",        VIPS_FAIL_ON_NONE, VIPS_FAIL_ON_TRUNCATED, "truncated" },
    };
    return cr_make_param_array (s_fail_on_t, cases, sizeof cases / sizeof cases [0]);
}

ParameterizedTest (s_fail_on_t *damaged, resize, fail_on_truncated_versus_warning)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-failon");
    rp_resize_opts_t opts = s_default_opts ();
    cr_assert_eq (opts.fail_on, VIPS_FAIL_ON_TRUNCATED);
    json_t *result = NULL;
    char err [256] = "";
    opts.fail_on = damaged->passes;
    cr_assert_eq (s_resize_corpus (&opts, damaged->rel, out, &result, err, sizeof err), 0,
                  "%s: %s", damaged->rel, err);
    json_decref (result);
    opts.fail_on = damaged->fails;
    cr_assert_eq (s_resize_corpus (&opts, damaged->rel, out, &result, err, sizeof err), -1,
                  "%s passed under fail_on=%s", damaged->rel, damaged->fails_name);
    free (out);
}

//  No EXIF, GPS, XMP, IPTC or ICC in what we publish
Test (resize, metadata_is_stripped)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-meta");
    rp_resize_opts_t opts = s_default_opts ();
    //  Add the other two output formats, so every encoder is checked
    char err [256] = "";
    opts.derivative_count = 4;
    snprintf (opts.derivatives [2].name, sizeof opts.derivatives [2].name, "png");
    cr_assert_eq (rp_derivative_parse (&opts.derivatives [2], "png 90 300x300", err, sizeof err), 0);
    snprintf (opts.derivatives [3].name, sizeof opts.derivatives [3].name, "avif");
    cr_assert_eq (rp_derivative_parse (&opts.derivatives [3], "avif 60 300x300", err, sizeof err), 0);

    json_t *result = NULL;
    cr_assert_eq (s_resize_corpus (&opts, "synthetic/metadata_gps_iptc_xmp.jpg", out,
                                   &result, err, sizeof err), 0, "%s", err);
    //  Orientation=6 was applied before the tag went
    cr_assert_eq (json_integer_value (json_object_get (result, "width")), 240);
    cr_assert_eq (json_integer_value (json_object_get (result, "height")), 320);
    const char *names [] = { "thumbnail", "preview", "png", "avif" };
    for (size_t i = 0; i < 4; i++) {
        const char *path = s_derivative_path (result, names [i]);
        VipsImage *image = s_load (path);
        const char *fields [] = { VIPS_META_EXIF_NAME, VIPS_META_XMP_NAME,
                                  VIPS_META_IPTC_NAME, VIPS_META_ICC_NAME, VIPS_META_ORIENTATION };
        for (size_t f = 0; f < sizeof fields / sizeof fields [0]; f++)
            cr_assert_eq (vips_image_get_typeof (image, fields [f]), 0,
                          "%s still has %s", path, fields [f]);
        char **all = vips_image_get_fields (image);
        for (char **field = all; *field; field++)
            cr_assert_neq (strncmp (*field, "exif-", 5), 0, "%s still has %s", path, *field);
        g_strfreev (all);
        g_object_unref (image);

        //  And not hidden anywhere in the bytes either
        FILE *f = fopen (path, "rb");
        cr_assert_not_null (f);
        static char bytes [1 << 20];
        size_t n = fread (bytes, 1, sizeof bytes, f);
        fclose (f);
        const char *secrets [] = { "Paris", "Test Photographer", "SyntheticCam", "PrivacyTest" };
        for (size_t s = 0; s < 4; s++)
            cr_assert_null (memmem (bytes, n, secrets [s], strlen (secrets [s])),
                            "%s still contains \"%s\"", path, secrets [s]);
    }
    json_decref (result);
    free (out);
}

Test (resize, alpha_is_kept_in_webp_and_flattened_on_white_in_jpeg)
{
    RP_REQUIRE_TESTDATA ();
    char *out = rp_test_tmpdir ("resize-alpha");
    rp_resize_opts_t opts = s_default_opts ();
    json_t *result = NULL;
    char err [256] = "";
    cr_assert_eq (s_resize_corpus (&opts, "formats/png_rgba.png", out, &result, err, sizeof err),
                  0, "%s", err);
    VipsImage *thumb = s_load (s_derivative_path (result, "thumbnail"));
    cr_assert_eq (thumb->Bands, 4);
    cr_assert (vips_image_hasalpha (thumb));
    //  Some of it is see-through: the alpha band goes below opaque
    VipsImage *alpha = NULL;
    double lowest = 255;
    cr_assert_eq (vips_extract_band (thumb, &alpha, 3, NULL), 0);
    cr_assert_eq (vips_min (alpha, &lowest, NULL), 0);
    cr_assert_lt (lowest, 128);

    //  Where the original is fully transparent, the JPEG preview is white
    char src [1024];
    rp_testdata_path (src, sizeof src, "formats/png_rgba.png");
    VipsImage *original = s_load (src), *original_alpha = NULL;
    int x = 0, y = 0;
    cr_assert_eq (vips_extract_band (original, &original_alpha, 3, NULL), 0);
    cr_assert_eq (vips_min (original_alpha, &lowest, "x", &x, "y", &y, NULL), 0);
    cr_assert_eq (lowest, 0);
    VipsImage *preview = s_load (s_derivative_path (result, "preview"));
    cr_assert_eq (preview->Bands, 3);
    cr_assert_eq (preview->Xsize, original->Xsize);     //  128 px: not resized
    double *pixel = NULL;
    int n = 0;
    cr_assert_eq (vips_getpoint (preview, &pixel, &n, x, y, NULL), 0);
    for (int b = 0; b < n; b++)
        cr_assert_gt (pixel [b], 240, "band %d at %d,%d is %.0f, not white", b, x, y, pixel [b]);
    g_free (pixel);
    g_object_unref (preview);
    g_object_unref (original_alpha);
    g_object_unref (original);
    g_object_unref (alpha);
    g_object_unref (thumb);
    json_decref (result);
    free (out);
}

//  CMYK, wide-gamut and 16-bit inputs all come out as 8-bit, 3-band sRGB
ParameterizedTestParameters (resize, colour_comes_out_as_8_bit_srgb)
{
    static s_rel_t inputs [] = {
        { "formats/jpeg_cmyk_adobe_no_icc.jpg" },
        { "formats/jpeg_adobergb_icc.jpg" },
        { "formats/png_16bit_rgb.png" },
        { "formats/tiff_16bit_rgb.tif" },
        { "formats/jpeg_grayscale.jpg" },
    };
    return cr_make_param_array (s_rel_t, inputs, sizeof inputs / sizeof inputs [0]);
}

ParameterizedTest (s_rel_t *input, resize, colour_comes_out_as_8_bit_srgb)
{
    RP_REQUIRE_TESTDATA ();
    rp_resize_opts_t opts = s_default_opts ();
    char *out = rp_test_tmpdir ("resize-colour");
    json_t *result = NULL;
    char err [256] = "";
    cr_assert_eq (s_resize_corpus (&opts, input->rel, out, &result, err, sizeof err), 0,
                  "%s: %s", input->rel, err);
    VipsImage *preview = s_load (s_derivative_path (result, "preview"));
    cr_assert_eq (preview->Bands, 3, "%s: %d bands", input->rel, preview->Bands);
    cr_assert_eq (preview->BandFmt, VIPS_FORMAT_UCHAR);
    cr_assert_eq (preview->Type, VIPS_INTERPRETATION_sRGB);
    //  Not black, not blank: the picture survived the conversion
    double mean = 0;
    cr_assert_eq (vips_avg (preview, &mean, NULL), 0);
    cr_assert (mean > 20 && mean < 235, "%s: mean %.1f", input->rel, mean);
    g_object_unref (preview);
    json_decref (result);
    free (out);
}

//  The 16-bit PNG and TIFF are the same picture as the 8-bit JPEG
//  (libvips' sample.*): same pixels to within JPEG noise
ParameterizedTestParameters (resize, sixteen_bit_photos_are_the_same_picture_in_8_bits)
{
    static s_rel_t same [] = { { "formats/png_16bit_rgb.png" }, { "formats/tiff_16bit_rgb.tif" } };
    return cr_make_param_array (s_rel_t, same, sizeof same / sizeof same [0]);
}

ParameterizedTest (s_rel_t *same, resize, sixteen_bit_photos_are_the_same_picture_in_8_bits)
{
    RP_REQUIRE_TESTDATA ();
    rp_resize_opts_t opts = s_default_opts ();
    json_t *jpeg = NULL, *result = NULL;
    VipsImage *reference = s_corpus_preview (&opts, "formats/jpeg_adobergb_icc.jpg", &jpeg);
    VipsImage *preview = s_corpus_preview (&opts, same->rel, &result);
    double diff = s_mean_abs_diff (preview, reference);
    cr_assert_lt (diff, S_SAME_PICTURE, "%s differs from the JPEG by %.1f", same->rel, diff);
    g_object_unref (preview);
    g_object_unref (reference);
    json_decref (result);
    json_decref (jpeg);
}

//  A photo with an embedded profile is converted through it; a photo
//  without one is taken as sRGB and keeps its colours exactly.
Test (resize, colour_profiles_are_honoured_and_untagged_photos_left_alone)
{
    RP_REQUIRE_TESTDATA ();
    rp_resize_opts_t opts = s_default_opts ();
    char err [256] = "";
    char src [1024];

    //  Adobe RGB (290x442, so the preview is not resized)
    char *out = rp_test_tmpdir ("resize-icc");
    json_t *result = NULL;
    cr_assert_eq (s_resize_corpus (&opts, "formats/jpeg_adobergb_icc.jpg", out,
                                   &result, err, sizeof err), 0, "%s", err);
    VipsImage *preview = s_load (s_derivative_path (result, "preview"));
    rp_testdata_path (src, sizeof src, "formats/jpeg_adobergb_icc.jpg");
    VipsImage *raw = s_load (src), *converted = NULL;
    cr_assert_eq (vips_icc_transform (raw, &converted, "srgb", "embedded", TRUE, NULL), 0);
    double to_converted = s_mean_abs_diff (preview, converted);
    double to_raw = s_mean_abs_diff (preview, raw);
    cr_assert_lt (to_converted, 2.0, "Adobe RGB preview is %.2f off the sRGB conversion", to_converted);
    cr_assert_lt (to_converted, to_raw, "Adobe RGB values were copied, not converted");
    g_object_unref (converted);
    g_object_unref (raw);
    g_object_unref (preview);
    json_decref (result);
    free (out);

    //  No profile: the preview is exactly a plain resize saved as JPEG at
    //  the same quality, and far from what an sRGB "export" would give
    out = rp_test_tmpdir ("resize-icc");
    cr_assert_eq (s_resize_corpus (&opts, "orientation/Landscape_1.jpg", out,
                                   &result, err, sizeof err), 0, "%s", err);
    preview = s_load (s_derivative_path (result, "preview"));
    rp_testdata_path (src, sizeof src, "orientation/Landscape_1.jpg");
    VipsImage *plain = NULL, *exported = NULL, *encoded = NULL;
    void *jpeg = NULL;
    size_t jpeg_length = 0;
    cr_assert_eq (vips_thumbnail (src, &plain, 1440, NULL), 0);
    cr_assert_eq (vips_jpegsave_buffer (plain, &jpeg, &jpeg_length, "Q", opts.derivatives [1].quality,
                                        "optimize_coding", TRUE, "strip", TRUE, NULL), 0);
    cr_assert_not_null (encoded = vips_image_new_from_buffer (jpeg, jpeg_length, "", NULL));
    double diff = s_mean_abs_diff (preview, encoded);
    cr_assert_lt (diff, 0.5, "untagged photo changed colour by %.2f", diff);
    //  libvips 8.14's sRGB "export" of an untagged photo goes through XYZ and
    //  shifts it; where it does, the preview must not have taken that route
    //  (8.18's export is the identity, so there is nothing to tell apart)
    VipsImage *streamed = NULL;
    cr_assert_eq (vips_thumbnail (src, &streamed, 1440, "export_profile", "srgb", NULL), 0);
    cr_assert_not_null (exported = vips_image_copy_memory (streamed));   //  read twice below
    g_object_unref (streamed);
    if (s_mean_abs_diff (encoded, exported) > 3.0)
        cr_assert_gt (s_mean_abs_diff (preview, exported), 3.0);
    g_object_unref (exported);
    g_object_unref (encoded);
    g_free (jpeg);
    g_object_unref (plain);
    g_object_unref (preview);
    json_decref (result);
    free (out);
}

//  The whole corpus on four threads at once, as a busy worker pool runs it:
//  good photos still complete, broken ones still fail with a reason.
typedef struct {
    char rel [128][300];        //  corpus files, shared read-only
    int count;
    int next;                   //  next file to take, atomically
    int rc [128];
    char err [128][256];
    char out [1024];
} s_pool_t;

static void *
s_pool_thread (void *arg)
{
    s_pool_t *pool = arg;
    rp_resize_opts_t opts = s_default_opts ();
    int i;
    while ((i = __atomic_fetch_add (&pool->next, 1, __ATOMIC_SEQ_CST)) < pool->count) {
        char src [1024], prefix [1400];
        rp_testdata_path (src, sizeof src, pool->rel [i]);
        snprintf (prefix, sizeof prefix, "%s/job-%d", pool->out, i);
        json_t *result = NULL;
        pool->rc [i] = rp_resize_photo (&opts, src, prefix, &result,
                                        pool->err [i], sizeof pool->err [i]);
        json_decref (result);
    }
    vips_thread_shutdown ();
    return NULL;
}

//  The whole corpus under ASan on a loaded 2-core machine takes minutes
Test (resize, the_corpus_on_four_threads_at_once, .timeout = 600)
{
    RP_REQUIRE_TESTDATA ();
    static s_pool_t pool;
    memset (&pool, 0, sizeof pool);
    const char *folders [] = { "camera", "formats", "malformed", "adversarial", "orientation" };
    for (size_t f = 0; f < sizeof folders / sizeof folders [0]; f++) {
        static char names [64][256];
        int n = s_corpus_files (folders [f], names, 64);
        for (int i = 0; i < n && pool.count < 128; i++)
            snprintf (pool.rel [pool.count++], sizeof pool.rel [0], "%.32s/%.255s",
                      folders [f], names [i]);
    }
    char *out = rp_test_tmpdir ("resize-pool");
    snprintf (pool.out, sizeof pool.out, "%s", out);
    pthread_t threads [4];
    for (int t = 0; t < 4; t++)
        cr_assert_eq (pthread_create (&threads [t], NULL, s_pool_thread, &pool), 0);
    for (int t = 0; t < 4; t++)
        pthread_join (threads [t], NULL);
    for (int i = 0; i < pool.count; i++) {
        int good = strncmp (pool.rel [i], "camera/", 7) == 0
                || strncmp (pool.rel [i], "orientation/", 12) == 0
                || (strncmp (pool.rel [i], "formats/", 8) == 0 && !strstr (pool.rel [i], ".svg"));
        if (good)
            cr_expect_eq (pool.rc [i], 0, "%s failed: %s", pool.rel [i], pool.err [i]);
        else
        if (pool.rc [i] != 0) {
            cr_expect_gt (strlen (pool.err [i]), 0, "%s failed without a reason", pool.rel [i]);
            cr_log_info ("%-45s %s", pool.rel [i], pool.err [i]);
        }
    }
    free (out);
}
