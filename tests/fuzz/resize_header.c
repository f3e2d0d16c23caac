/*  tests/fuzz/resize_header.c: the resize actor's checks before it decodes
    (actors/resize/resize.c, steps 1 and 2 of its DESIGN comment).

    The input is written to a file in a folder of its own (on /dev/shm when
    there is one) and given to rp_resize_photo as a resize worker would,
    with the pixel limit at one pixel: the size and type checks, the
    libvips header (the loader must be the sniffed type's) or libheif's
    boxes for HEIF and AVIF, and the pixel check all run, and every image
    of more than one pixel is refused there, before any decoding. A
    one-pixel image goes on through the decode and its (one-pixel)
    derivatives. Checked, as resize.h promises: a refusal has a reason that
    names no path but the file's own name, and leaves no output file; a
    success names a one-pixel image and its derivatives.

    Seeds: the shared photo corpus, given at run time; tests/fuzz/corpus/
    resize_header holds small hand-made headers.
*/
#include "actors/resize/resize.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_vips.h"

#include <fcntl.h>

static char s_src [300];                //  the input's file, in our folder
static char s_dest [300];               //  the derivatives' prefix, beside it
static const char *s_dir;
static rp_resize_opts_t s_opts;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    rp_config_t config;
    char err [256];
    if (rp_config_load (&config, NULL, err, sizeof err))
        abort ();
    rp_resize_opts_from_config (&s_opts, &config);
    s_opts.max_pixels = 1;
    rp_fuzz_vips_start ((*argv) [0]);           //  after the config, which sets the log level too
    s_dir = rp_fuzz_folder ("resize");
    snprintf (s_src, sizeof s_src, "%s/photo", s_dir);
    snprintf (s_dest, sizeof s_dest, "%s/out", s_dir);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    int fd = open (s_src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    RP_FUZZ_CHECK (fd >= 0, "cannot write %s", s_src);
    RP_FUZZ_CHECK (write (fd, data, size) == (ssize_t) size, "cannot write %s", s_src);
    close (fd);

    json_t *result = NULL;
    char err [512] = "";
    int rc = rp_resize_photo (&s_opts, s_src, s_dest, &result, err, sizeof err);
    int left = rp_fuzz_folder_empty (s_dir, "photo");
    if (rc) {
        RP_FUZZ_CHECK (err [0], "refused without a reason");
        RP_FUZZ_CHECK (!strstr (err, s_dir), "the reason names a path: %s", err);
        RP_FUZZ_CHECK (left == 0, "%d files left behind by a refusal (%s)", left, err);
        RP_FUZZ_CHECK (!result, "a result with a refusal");
    }
    else {
        RP_FUZZ_CHECK (json_integer_value (json_object_get (result, "width")) == 1
                       && json_integer_value (json_object_get (result, "height")) == 1,
                       "an image over the pixel limit was decoded");
        RP_FUZZ_CHECK (left == s_opts.derivative_count, "%d derivatives for %d", left, s_opts.derivative_count);
        json_decref (result);
    }
    return 0;
}
