/*  actors/resize/resize.c: make the derivatives of one photo with libvips.

    DESIGN
    rp_resize_photo is a plain job handler: the resize worker actor calls it
    on its own thread, one photo at a time, and many workers call it at once.
    It keeps no state between calls and owns nothing when it returns; every
    VipsImage it makes is its own and is unreffed before it returns.

    The steps, each of which can refuse the photo with a reason a person can
    read:
      1. size on disk against max_bytes, then the type by its first bytes
         (library/sniff), never by the name: SVG, HTML, text... are refused;
      2. the header only (lazy, sequential open), width*height of one page
         against max_pixels, before a single pixel is decoded. The loader
         libvips picked must be the one for the sniffed type, so a file that
         sniffs as JPEG can never reach another decoder. HEIC and AVIF go
         to libheif directly instead (s_heif_*): the libvips we link by
         default (the sharp project's build) has no HEVC decoder, and
         Debian's libheif decodes AV1 with dav1d, twice as fast as that
         build's aom; the primary image's size is checked the same way;
      3. one decode with shrink-on-load, sized for the largest derivative
         (vips_thumbnail, fail_on set explicitly; for HEIF, libheif's full
         decode shrunk with vips_thumbnail_image), converted to 8-bit sRGB,
         computed into memory (see s_render), then turned upright. HEIF/AVIF
         are never rotated by EXIF: libheif has already applied the
         irot/imir boxes, and the HEIF spec says those win over the EXIF tag;
      4. every derivative is made from that one memory image (no second
         decode), alpha flattened onto white for JPEG, metadata stripped,
         written to a unique temporary file in the destination folder and
         fsynced;
      5. only when every derivative is written are they renamed into place.
      6. the ThumbHash placeholder (engine/thumbhash) from the smallest
         derivative's pixels that still have 100 on their long side, kept
         in memory for it (else the memory image of step 3): shrunk to
         fit 100 x 100 (ThumbHash's limit), 8-bit RGBA
         (opaque alpha added when there is none), already upright; its
         base64 is the result's "thumbhash". A placeholder that cannot be
         made is logged and left null: the photo itself is fine.
      7. the perceptual hash (engine/phash.h) of the same memory image,
         shrunk to 32x32: near-duplicate search at no second decode; its
         16 hex characters are the result's "phash".
    On failure the temporary files are removed and nothing is renamed, so a
    failed call leaves no output files and a call that runs twice never
    leaves a half-written one. The result carries "timings": decode_ms
    (steps 1-3) and <derivative>_ms (step 4, each), for the benchmarks.

    Camera RAW (DNG, CR2, ORF, RW2) takes LibRaw's way through steps 2
    and 3 (see "Camera RAW" below): the header and pixel limits from
    LibRaw's metadata, then the embedded JPEG preview when it is large
    enough, else a real demosaic, handed to step 3 like HEIF's full decode
    and turned upright there by the RAW's orientation. The original is
    never touched.

    Global libvips state is main's: vips_init, vips_cache_set_max (0) (the
    loaders are cached by file name otherwise), vips_block_untrusted_set,
    vips_concurrency_set, and vips_thread_shutdown () when a worker thread
    ends.
*/
#include "actors/resize/resize.h"
#include "engine/clock.h"
#include "engine/fs.h"
#include "engine/log.h"
#include "engine/thumbhash.h"
#include "engine/phash.h"
#include "library/sniff.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libheif/heif.h>
#include <libraw/libraw.h>
#include <omp.h>
#include <vips/vips.h>

#define S_SOURCE "resize"

//  One derivative on its way to disk
typedef struct {
    const rp_derivative_t *spec;    //  borrowed from opts
    const char *ext;                //  file name extension, static
    char final_path [PATH_MAX];     //  "<dest_prefix>.<name>.<ext>"
    char tmp_path [PATH_MAX];       //  unique temporary name beside it
    int tmp_made;                   //  tmp_path exists and is ours
    int width;                      //  pixels written
    int height;
    int64_t bytes;                  //  file size written
    double ms;                      //  resize, encode, write and fsync
    mode_t mode;                    //  the source's permissions (read, write)
} s_output_t;

//  The loader libvips must pick for each type rp_sniff accepts
static const struct {
    const char *mime;
    const char *loader;
} s_loaders [] = {
    { "image/jpeg", "jpegload" },
    { "image/png",  "pngload" },
    { "image/webp", "webpload" },
    { "image/gif",  "gifload" },
    { "image/tiff", "tiffload" },
    { "image/heic", "heifload" },
    { "image/avif", "heifload" },
};

void
rp_resize_opts_from_config (rp_resize_opts_t *opts, const rp_config_t *config)
{
    assert (opts);
    assert (config);
    memset (opts, 0, sizeof *opts);
    int count = config->derivative_count;
    if (count > RP_DERIVATIVES_MAX)
        count = RP_DERIVATIVES_MAX;
    memcpy (opts->derivatives, config->derivatives, sizeof opts->derivatives [0] * (size_t) count);
    opts->derivative_count = count;
    opts->max_pixels = config->limits_max_pixels;
    opts->max_bytes = config->limits_max_upload_bytes;
    opts->fail_on = config->limits_fail_on;
}

//  The last component of a path, for messages and logs.
static const char *
s_basename (const char *path)
{
    const char *slash = strrchr (path, '/');
    return slash ? slash + 1 : path;
}

//  Copy one line of libvips error text into out, keeping only the last
//  component of anything that looks like an absolute path, and dropping
//  control characters. out is always terminated.
static void
s_clean_line (char *out, size_t outlen, const char *line, size_t linelen)
{
    size_t o = 0;
    for (size_t i = 0; i < linelen && o + 1 < outlen; i++) {
        char c = line [i];
        int at_token_start = i == 0 || strchr (" \"'(=:", line [i - 1]);
        if (c == '/' && at_token_start) {
            //  An absolute path: skip to just after its last slash
            size_t end = i;
            while (end < linelen && !strchr (" \"')\t,", line [end]))
                end++;
            size_t last = i;
            for (size_t k = i; k < end; k++)
                if (line [k] == '/')
                    last = k;
            i = last;
            continue;
        }
        if ((unsigned char) c < 0x20 || c == 0x7f)
            c = ' ';
        out [o++] = c;
    }
    //  No trailing blanks
    while (o > 0 && out [o - 1] == ' ')
        o--;
    out [o] = 0;
}

//  Lines libvips leaves in the error buffer that never explain a failure.
static int
s_is_noise (const char *line, size_t len)
{
    static const char *const noise [] = {
        "vips_image_get: field",        //  a metadata lookup that missed
        ": bad seek to ",               //  heifload probing past the end, even on success
        NULL
    };
    for (const char *const *n = noise; *n; n++) {
        size_t nl = strlen (*n);
        for (size_t i = 0; i + nl <= len; i++)
            if (memcmp (line + i, *n, nl) == 0)
                return 1;
    }
    return 0;
}

//  Write "<what>: <libvips reason>" into err. The libvips error buffer is
//  one for the whole process: vips_error_buffer_copy takes and clears it in
//  one step, under libvips' lock. The failing loader or operation writes its
//  message last (libjpeg's earlier warnings come before it), so the last
//  line that explains something is used. A loader that fails without a
//  message (libpng through a warning) still gets a reason.
static void
s_vips_reason (char *err, size_t errlen, const char *what)
{
    char *text = vips_error_buffer_copy ();
    char line [512] = "";
    if (text) {
        const char *p = text;
        while (*p) {
            const char *eol = strchr (p, '\n');
            size_t len = eol ? (size_t) (eol - p) : strlen (p);
            if (len > 0 && !s_is_noise (p, len))
                s_clean_line (line, sizeof line, p, len);
            p += len;
            if (*p == '\n')
                p++;
        }
        g_free (text);
    }
    if (line [0])
        snprintf (err, errlen, "%s: %s", what, line);
    else
        snprintf (err, errlen, "%s: the image data is damaged or incomplete", what);
}

//  libvips also writes to the error buffer when it goes on: libjpeg's
//  warnings below fail_on, heifload's "bad seek" on every HEIF. Left there,
//  they would pile up until the fixed-size buffer is full and later real
//  errors are lost, so every job that used libvips empties it at the end.
//  (Another thread's error could go with them in the instant between its
//  failure and its copy; that job then reports "damaged or incomplete"
//  without details.)
static void
s_vips_error_drain (void)
{
    g_free (vips_error_buffer_copy ());
}

//  Step 1: size and type by content. On success *mime is a static string.
static int
s_check_file (const rp_resize_opts_t *opts, const char *src, const char **mime, mode_t *mode,
              char *err, size_t errlen)
{
    struct stat st;
    if (stat (src, &st) != 0) {
        snprintf (err, errlen, "cannot read the file: %s", strerror (errno));
        return -1;
    }
    *mode = st.st_mode & 0666;
    if (!S_ISREG (st.st_mode)) {
        snprintf (err, errlen, "not a supported image: not a regular file");
        return -1;
    }
    if (opts->max_bytes > 0 && (int64_t) st.st_size > opts->max_bytes) {
        snprintf (err, errlen, "file is %" PRId64 " bytes, more than the limit of %" PRId64 " bytes",
                  (int64_t) st.st_size, opts->max_bytes);
        return -1;
    }
    const char *described = NULL;
    if (rp_sniff_file (src, mime, &described) != 0) {
        snprintf (err, errlen, "cannot read the file: %s", strerror (errno));
        return -1;
    }
    if (!*mime) {
        snprintf (err, errlen, "not a supported image: the file is %s",
                  described ? described : "of an unknown type");
        return -1;
    }
    return 0;
}

//  What the header says, before any decoding
typedef struct {
    int width;                  //  one page, as stored (after irot for HEIF)
    int height;
    int orientation;            //  EXIF orientation to apply, 1..8 (1 for HEIF)
    int has_icc;                //  an embedded colour profile to convert from
    int display_width;          //  after orientation
    int display_height;
    const char *route;          //  RAW only: how it was decoded, for the log line
} s_header_t;

//  Step 2: open the header lazily and check its size. Nothing is decoded.
static int
s_read_header (const rp_resize_opts_t *opts, const char *src, const char *mime,
               s_header_t *hdr, char *err, size_t errlen)
{
    VipsImage *image = vips_image_new_from_file (src,
        "access", VIPS_ACCESS_SEQUENTIAL,
        "fail_on", (VipsFailOn) opts->fail_on,
        NULL);
    if (!image) {
        s_vips_reason (err, errlen, "cannot read image header");
        return -1;
    }
    int rc = -1;
    const char *loader = NULL;
    const char *expected = NULL;
    for (size_t i = 0; i < sizeof s_loaders / sizeof s_loaders [0]; i++)
        if (strcmp (s_loaders [i].mime, mime) == 0)
            expected = s_loaders [i].loader;
    if (!vips_image_get_typeof (image, VIPS_META_LOADER)
    ||  vips_image_get_string (image, VIPS_META_LOADER, &loader)
    ||  !expected || strcmp (loader, expected) != 0) {
        snprintf (err, errlen, "not a supported image: the content does not match its %s signature",
                  mime);
        goto done;
    }
    //  Multi-page files (GIF, WebP, HEIF, TIFF): the default load is page 0
    //  only, so the size that matters is one page.
    hdr->width = image->Xsize;
    hdr->height = vips_image_get_page_height (image);
    if (hdr->width <= 0 || hdr->height <= 0) {
        snprintf (err, errlen, "not a supported image: it has no pixels");
        goto done;
    }
    int64_t pixels = (int64_t) hdr->width * hdr->height;
    if (opts->max_pixels > 0 && pixels > opts->max_pixels) {
        snprintf (err, errlen,
                  "image is %dx%d pixels (%.1f megapixels), more than the pixel limit of %.1f megapixels",
                  hdr->width, hdr->height, (double) pixels / 1e6, (double) opts->max_pixels / 1e6);
        goto done;
    }
    //  HEIF/AVIF: libheif has already applied the irot/imir boxes, and the
    //  HEIF spec says they win over an EXIF Orientation (an iPhone HEIC has
    //  both). libvips 8.14 drops the tag itself; we do not rely on that.
    int orientation = vips_image_get_orientation (image);
    if (strcmp (loader, "heifload") == 0 || orientation < 1 || orientation > 8)
        orientation = 1;
    hdr->orientation = orientation;
    hdr->has_icc = vips_image_get_typeof (image, VIPS_META_ICC_NAME) != 0;
    int swap = orientation >= 5;
    hdr->display_width = swap ? hdr->height : hdr->width;
    hdr->display_height = swap ? hdr->width : hdr->height;
    rc = 0;
done:
    g_object_unref (image);
    return rc;
}

//  Scale at which `box` fits the displayed image; never above 1.
static double
s_fit_scale (const s_header_t *hdr, int box_width, int box_height)
{
    double sx = (double) box_width / hdr->display_width;
    double sy = (double) box_height / hdr->display_height;
    double s = sx < sy ? sx : sy;
    return s < 1.0 ? s : 1.0;
}

//  libvips 8.15.5 and later: vips_image_copy_memory keeps every error of
//  the decode (libvips PR #4116), and is what s_render does, faster.
#if VIPS_MAJOR_VERSION > 8 || (VIPS_MAJOR_VERSION == 8 \
    && (VIPS_MINOR_VERSION > 15 || (VIPS_MINOR_VERSION == 15 && VIPS_MICRO_VERSION >= 5)))
#   define S_COPY_MEMORY_KEEPS_ERRORS 1
#else
#   define S_COPY_MEMORY_KEEPS_ERRORS 0
#endif

//  Compute `in` into a new memory image. The copy has the pixels and the
//  interpretation; every error of the decode comes back here.
//
//  Before 8.15.5 (Debian's 8.14), vips_image_copy_memory's threadpool can
//  lose a loader's error when the image is one or two tiles, so a broken
//  1x1 PNG sometimes "decodes"; there the image is computed on this thread,
//  strip by strip from the top (sequential loaders need that order), and
//  every error comes back from vips_region_prepare.
static VipsImage *
s_render (VipsImage *in)
{
#if S_COPY_MEMORY_KEEPS_ERRORS
    return vips_image_copy_memory (in);
#else
    VipsImage *out = vips_image_new_memory ();
    VipsRegion *region = vips_region_new (in);
    if (!region) {
        g_object_unref (out);
        return NULL;
    }
    vips_image_init_fields (out, in->Xsize, in->Ysize, in->Bands, in->BandFmt,
                            VIPS_CODING_NONE, in->Type, in->Xres, in->Yres);
    //  Mark it as a loader marks sequential images: without the hint,
    //  libvips 8.14 shrinks it with no line cache and reallocates buffers
    //  line by line (measured: the thumbnail step 92 -> 26 ms per photo)
    vips_image_set_int (out, "vips-sequential", 1);
    const int strip = 16;       //  measured: taller strips are slower, not faster
    int rc = 0;
    for (int top = 0; top < in->Ysize && rc == 0; top += strip) {
        VipsRect rect = { 0, top, in->Xsize, VIPS_MIN (strip, in->Ysize - top) };
        rc = vips_region_prepare (region, &rect);
        for (int y = top; y < top + rect.height && rc == 0; y++)
            rc = vips_image_write_line (out, y, VIPS_REGION_ADDR (region, 0, y));
    }
    g_object_unref (region);
    if (rc) {
        g_object_unref (out);
        return NULL;
    }
    return out;
#endif
}

//  ---------------------------------------------------------------------
//  HEIC/HEIF (HEVC) and AVIF through Debian's libheif directly: the
//  bundled libvips has no HEVC decoder and decodes AV1 with aom (measured:
//  twice the CPU of libheif's dav1d on a 12 MP AVIF); Debian's libvips calls
//  the same libheif the same way. libheif applies the irot/imir/clap boxes
//  while decoding, so what it hands over is upright.

//  One HEIF file open with libheif: its context and primary image
typedef struct {
    struct heif_context *context;
    struct heif_image_handle *handle;
} s_heif_t;

static void
s_heif_close (s_heif_t *heif)
{
    if (heif->handle)
        heif_image_handle_release (heif->handle);
    if (heif->context)
        heif_context_free (heif->context);
    heif->handle = NULL;
    heif->context = NULL;
}

//  "<what>: <libheif's message>", without paths
static void
s_heif_reason (char *err, size_t errlen, const char *what, struct heif_error error)
{
    char line [256];
    const char *message = error.message && *error.message ? error.message
                                                          : "the image data is damaged or incomplete";
    s_clean_line (line, sizeof line, message, strlen (message));
    snprintf (err, errlen, "%s: heif: %s", what, line);
}

//  Step 2 for HEIF: parse the boxes (no pixels), check the primary image's
//  size as displayed (after irot) against max_pixels.
static int
s_heif_read_header (const rp_resize_opts_t *opts, const char *src, s_heif_t *heif,
                    s_header_t *hdr, char *err, size_t errlen)
{
    if (!(heif->context = heif_context_alloc ())) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    struct heif_error error = heif_context_read_from_file (heif->context, src, NULL);
    if (error.code == heif_error_Ok)
        error = heif_context_get_primary_image_handle (heif->context, &heif->handle);
    if (error.code != heif_error_Ok) {
        s_heif_reason (err, errlen, "cannot read image header", error);
        return -1;
    }
    hdr->width = heif_image_handle_get_width (heif->handle);
    hdr->height = heif_image_handle_get_height (heif->handle);
    if (hdr->width <= 0 || hdr->height <= 0) {
        snprintf (err, errlen, "not a supported image: it has no pixels");
        return -1;
    }
    int64_t pixels = (int64_t) hdr->width * hdr->height;
    if (opts->max_pixels > 0 && pixels > opts->max_pixels) {
        snprintf (err, errlen,
                  "image is %dx%d pixels (%.1f megapixels), more than the pixel limit of %.1f megapixels",
                  hdr->width, hdr->height, (double) pixels / 1e6, (double) opts->max_pixels / 1e6);
        return -1;
    }
    //  The HEIF spec: irot/imir win over an EXIF Orientation (an iPhone
    //  HEIC has both), and libheif has applied them
    hdr->orientation = 1;
    enum heif_color_profile_type profile = heif_image_handle_get_color_profile_type (heif->handle);
    hdr->has_icc = profile == heif_color_profile_type_prof || profile == heif_color_profile_type_rICC;
    hdr->display_width = hdr->width;
    hdr->display_height = hdr->height;
    return 0;
}

//  Frees the libheif image when the VipsImage made over its pixels closes
static void
s_heif_image_free (VipsImage *image, void *heif_image)
{
    heif_image_release (heif_image);
}

//  Decode the primary image at full size, upright, to 8-bit interleaved RGB
//  or RGBA, as a VipsImage over libheif's pixels (no copy) carrying the
//  embedded ICC profile. Returns it (caller unrefs) or NULL with err set.
static VipsImage *
s_heif_decode (const rp_resize_opts_t *opts, const s_heif_t *heif, const s_header_t *hdr,
               char *err, size_t errlen)
{
    int alpha = heif_image_handle_has_alpha_channel (heif->handle);
    struct heif_decoding_options *options = heif_decoding_options_alloc ();
    if (!options) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    options->convert_hdr_to_8bit = 1;       //  10-bit HEIC: 8-bit out, as everything else
    //  fail_on error or warning: refuse what libheif would otherwise repair
    options->strict_decoding = opts->fail_on >= VIPS_FAIL_ON_ERROR;
    struct heif_image *decoded = NULL;
    struct heif_error error = heif_decode_image (heif->handle, &decoded, heif_colorspace_RGB,
        alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, options);
    heif_decoding_options_free (options);
    if (error.code != heif_error_Ok) {
        if (decoded)
            heif_image_release (decoded);
        s_heif_reason (err, errlen, "cannot decode image", error);
        return NULL;
    }
    int bands = alpha ? 4 : 3;
    int stride = 0;
    const uint8_t *pixels = heif_image_get_plane_readonly (decoded, heif_channel_interleaved, &stride);
    int width = heif_image_get_width (decoded, heif_channel_interleaved);
    int height = heif_image_get_height (decoded, heif_channel_interleaved);
    //  What was checked against max_pixels is what was decoded
    if (!pixels || width != hdr->width || height != hdr->height
    ||  heif_image_get_bits_per_pixel (decoded, heif_channel_interleaved) != 8 * bands) {
        heif_image_release (decoded);
        snprintf (err, errlen, "cannot decode image: heif: unexpected decoded layout");
        return NULL;
    }
    VipsImage *image = NULL;
    if (stride == width * bands) {
        //  The usual case: rows are contiguous, so libvips reads libheif's
        //  buffer in place, and releases it when the image closes
        image = vips_image_new_from_memory (pixels, (size_t) stride * (size_t) height,
                                            width, height, bands, VIPS_FORMAT_UCHAR);
        if (image)
            g_signal_connect (image, "close", G_CALLBACK (s_heif_image_free), decoded);
        else
            heif_image_release (decoded);
    }
    else {
        //  Padded rows: one copy, row by row
        image = vips_image_new_memory ();
        vips_image_init_fields (image, width, height, bands, VIPS_FORMAT_UCHAR,
                                VIPS_CODING_NONE, VIPS_INTERPRETATION_sRGB, 1.0, 1.0);
        int rc = vips_image_write_prepare (image);
        for (int y = 0; y < height && rc == 0; y++)
            rc = vips_image_write_line (image, y, (VipsPel *) (pixels + (size_t) y * (size_t) stride));
        heif_image_release (decoded);
        if (rc) {
            g_object_unref (image);
            image = NULL;
        }
    }
    if (!image) {
        s_vips_reason (err, errlen, "cannot decode image");
        return NULL;
    }
    image->Type = VIPS_INTERPRETATION_sRGB;
    if (hdr->has_icc) {
        size_t size = heif_image_handle_get_raw_color_profile_size (heif->handle);
        void *profile = size > 0 ? g_try_malloc (size) : NULL;
        //  No usable profile: the pixels are taken as sRGB
        if (profile
        &&  heif_image_handle_get_raw_color_profile (heif->handle, profile).code == heif_error_Ok)
            vips_image_set_blob_copy (image, VIPS_META_ICC_NAME, profile, size);
        g_free (profile);
    }
    return image;
}

//  ---------------------------------------------------------------------
//  Camera RAW (DNG, CR2, ORF, RW2: library/sniff.h) through LibRaw's
//  thread-safe library (libraw_r), one libraw_data_t per call. libraw_open_file
//  parses the metadata only; the sizes are checked against max_pixels (the
//  raw frame, which libraw_unpack allocates, and the output size) before a
//  sample is read. Then one of two ways, both handing over an image in the
//  RAW's stored orientation (LibRaw's own rotation is off: s_decode turns
//  the shrunk image upright by hdr->orientation, from LibRaw's sizes.flip,
//  which is what the RAW's Orientation tag says):
//    - fast: the embedded preview, when it is a JPEG whose long edge is at
//      least what the largest derivative needs and whose shape is the raw
//      image's (within 2 %): decoded by libvips from LibRaw's copy of it.
//      A camera writes its preview unrotated, like the raw data, so the
//      RAW's orientation is applied to it and the preview's own EXIF
//      Orientation, if any, is not;
//    - else a real demosaic: libraw_unpack, libraw_dcraw_process (camera
//      white balance, the file's colour matrix to sRGB, sRGB's tone curve,
//      no automatic brightening, 8 bits), at half size (one pixel per 2x2
//      Bayer block, no interpolation) when that still covers the largest
//      derivative, and libraw_dcraw_make_mem_image copied into a VipsImage.
//  Every LibRaw failure names LibRaw and its error string.

typedef struct {
    libraw_data_t *lr;
} s_raw_t;

static void
s_raw_close (s_raw_t *raw)
{
    if (raw->lr)
        libraw_close (raw->lr);
    raw->lr = NULL;
}

//  "<what>: LibRaw: <its error string>" (code: LibRaw's, or errno when > 0)
static void
s_raw_reason (char *err, size_t errlen, const char *what, int code)
{
    snprintf (err, errlen, "%s: LibRaw: %s", what, code > 0 ? strerror (code) : libraw_strerror (code));
}

//  LibRaw reports damaged data through this callback (its default prints
//  to stderr); the failing call's return code says what happened.
static void
s_raw_data_error (void *data, const char *file, const int offset)
{
    (void) data;
    (void) file;
    (void) offset;
}

//  The EXIF orientation (1..8) of a LibRaw flip: LibRaw maps the
//  Orientation tag o to flip "50132467"[o & 7]; this is its inverse.
static int
s_raw_orientation (int flip)
{
    static const int orientation [8] = { 1, 2, 4, 3, 5, 8, 6, 7 };
    return flip >= 0 && flip < 8 ? orientation [flip] : 1;
}

//  Step 2 for RAW: open with LibRaw (metadata only) and check the sizes.
static int
s_raw_read_header (const rp_resize_opts_t *opts, const char *src, s_raw_t *raw,
                   s_header_t *hdr, char *err, size_t errlen)
{
    if (!(raw->lr = libraw_init (0))) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    libraw_set_dataerror_handler (raw->lr, s_raw_data_error, NULL);
    //  LibRaw holds the raw frame (2 bytes a pixel) and its image (up to 8)
    //  at once: bounded by max_pixels' worth, not its default 2 GiB
    if (opts->max_pixels > 0) {
        int64_t mb = opts->max_pixels * 10 / (1024 * 1024) + 64;
        raw->lr->params.max_raw_memory_mb = (unsigned) (mb < 2048 ? mb : 2048);
    }
    int rc = libraw_open_file (raw->lr, src);
    if (rc != LIBRAW_SUCCESS) {
        s_raw_reason (err, errlen, "cannot read image header", rc);
        return -1;
    }
    const libraw_image_sizes_t *sizes = &raw->lr->sizes;
    hdr->width = sizes->width;
    hdr->height = sizes->height;
    if (hdr->width <= 0 || hdr->height <= 0 || sizes->raw_width == 0 || sizes->raw_height == 0) {
        snprintf (err, errlen, "not a supported image: it has no pixels");
        return -1;
    }
    int64_t pixels = (int64_t) hdr->width * hdr->height;
    int64_t frame = (int64_t) sizes->raw_width * sizes->raw_height;
    if (opts->max_pixels > 0 && (pixels > opts->max_pixels || frame > opts->max_pixels)) {
        int64_t larger = frame > pixels ? frame : pixels;
        snprintf (err, errlen,
                  "image is %dx%d pixels (%.1f megapixels), more than the pixel limit of %.1f megapixels",
                  frame > pixels ? sizes->raw_width : hdr->width,
                  frame > pixels ? sizes->raw_height : hdr->height,
                  (double) larger / 1e6, (double) opts->max_pixels / 1e6);
        return -1;
    }
    hdr->orientation = s_raw_orientation (sizes->flip);
    hdr->has_icc = 0;
    int swap = hdr->orientation >= 5;
    hdr->display_width = swap ? hdr->height : hdr->width;
    hdr->display_height = swap ? hdr->width : hdr->height;
    return 0;
}

static void
s_raw_mem_free (VipsImage *image, void *processed)
{
    (void) image;
    libraw_dcraw_clear_mem (processed);
}

//  The long edge, in stored pixels, that the largest derivative needs
static int
s_raw_needed (const rp_resize_opts_t *opts, const s_header_t *hdr)
{
    double best = 0;
    for (int i = 0; i < opts->derivative_count; i++) {
        double s = s_fit_scale (hdr, opts->derivatives [i].width, opts->derivatives [i].height);
        if (s > best)
            best = s;
    }
    int edge = hdr->width > hdr->height ? hdr->width : hdr->height;
    return (int) ceil (best * edge);
}

//  The embedded JPEG preview as a lazily decoded VipsImage, when it is
//  large enough and of the raw image's shape; NULL (err untouched) when
//  there is none fit for use, -1 in *failed with err set when it is unfit
//  for a reason worth refusing the photo for (too many pixels).
static VipsImage *
s_raw_preview (const rp_resize_opts_t *opts, s_raw_t *raw, s_header_t *hdr, int needed,
               int *failed, char *err, size_t errlen)
{
    *failed = 0;
    if (libraw_unpack_thumb (raw->lr) != LIBRAW_SUCCESS
    ||  raw->lr->thumbnail.tformat != LIBRAW_THUMBNAIL_JPEG)
        return NULL;
    int rc = 0;
    libraw_processed_image_t *thumb = libraw_dcraw_make_mem_thumb (raw->lr, &rc);
    if (!thumb)
        return NULL;
    if (thumb->type != LIBRAW_IMAGE_JPEG || thumb->data_size == 0) {
        libraw_dcraw_clear_mem (thumb);
        return NULL;
    }
    VipsImage *image = vips_image_new_from_buffer (thumb->data, thumb->data_size, "",
                                                   "access", VIPS_ACCESS_SEQUENTIAL,
                                                   "fail_on", (VipsFailOn) opts->fail_on,
                                                   NULL);
    if (!image) {
        //  A damaged preview: the raw data may still be fine
        s_vips_error_drain ();
        libraw_dcraw_clear_mem (thumb);
        return NULL;
    }
    g_signal_connect (image, "close", G_CALLBACK (s_raw_mem_free), thumb);
    const char *loader = NULL;
    int w = image->Xsize, h = image->Ysize;
    double shape = (double) w / h, want = (double) hdr->width / hdr->height;
    if (vips_image_get_string (image, VIPS_META_LOADER, &loader) || strcmp (loader, "jpegload_buffer") != 0
    ||  (w > h ? w : h) < needed || fabs (shape - want) > 0.02 * want) {
        g_object_unref (image);
        return NULL;
    }
    if (opts->max_pixels > 0 && (int64_t) w * h > opts->max_pixels) {
        snprintf (err, errlen,
                  "the embedded preview is %dx%d pixels, more than the pixel limit of %.1f megapixels",
                  w, h, (double) opts->max_pixels / 1e6);
        g_object_unref (image);
        *failed = 1;
        return NULL;
    }
    hdr->has_icc = vips_image_get_typeof (image, VIPS_META_ICC_NAME) != 0;
    return image;
}

//  Decode as the section's comment says. Returns the image in stored
//  orientation (caller unrefs) or NULL with err set.
static VipsImage *
s_raw_decode (const rp_resize_opts_t *opts, s_raw_t *raw, s_header_t *hdr,
              char *err, size_t errlen)
{
    int needed = s_raw_needed (opts, hdr);
    int failed = 0;
    VipsImage *preview = s_raw_preview (opts, raw, hdr, needed, &failed, err, errlen);
    if (preview)
        hdr->route = "embedded preview";
    if (preview || failed)
        return preview;

    libraw_output_params_t *params = &raw->lr->params;
    params->use_camera_wb = 1;
    params->no_auto_bright = 1;
    params->output_color = 1;           //  sRGB
    params->output_bps = 8;
    params->gamm [0] = 1 / 2.4;         //  sRGB's tone curve
    params->gamm [1] = 12.92;
    params->user_flip = 0;              //  s_decode turns it upright, after shrinking
    int edge = hdr->width > hdr->height ? hdr->width : hdr->height;
    params->half_size = edge / 2 >= needed;
    hdr->route = params->half_size ? "demosaiced at half size" : "demosaiced";
    //  Debian's LibRaw demosaics with OpenMP, a team of threads per call:
    //  one thread here, the resize pool already takes the cores
    omp_set_num_threads (1);
    int rc = libraw_unpack (raw->lr);
    if (rc == LIBRAW_SUCCESS)
        rc = libraw_dcraw_process (raw->lr);
    if (rc != LIBRAW_SUCCESS) {
        s_raw_reason (err, errlen, "cannot decode image", rc);
        return NULL;
    }
    libraw_processed_image_t *bitmap = libraw_dcraw_make_mem_image (raw->lr, &rc);
    if (!bitmap) {
        s_raw_reason (err, errlen, "cannot decode image", rc);
        return NULL;
    }
    VipsImage *image = NULL;
    if (bitmap->type == LIBRAW_IMAGE_BITMAP && bitmap->colors == 3 && bitmap->bits == 8
    &&  bitmap->width > 0 && bitmap->height > 0
    &&  bitmap->data_size == (unsigned) bitmap->width * bitmap->height * 3)
        image = vips_image_new_from_memory_copy (bitmap->data, bitmap->data_size,
                                                 bitmap->width, bitmap->height, 3,
                                                 VIPS_FORMAT_UCHAR);
    else
        snprintf (err, errlen, "cannot decode image: LibRaw: unexpected decoded layout");
    libraw_dcraw_clear_mem (bitmap);
    //  The raw frame and LibRaw's image are no longer needed: free them
    //  now, not after the derivatives (the orientation was read at open)
    libraw_recycle (raw->lr);
    if (!image) {
        if (!err [0])
            s_vips_reason (err, errlen, "cannot decode image");
        return NULL;
    }
    image->Type = VIPS_INTERPRETATION_sRGB;
    hdr->has_icc = 0;
    return image;
}

//  ---------------------------------------------------------------------

//  Step 3: decode once, upright, 8-bit sRGB (with alpha when there is one),
//  into memory, at the size of the largest derivative (shrink-on-load).
//  `full` is the already-decoded image for HEIF (libheif cannot shrink on
//  load), else NULL and libvips decodes `src`. Returns the image (caller
//  unrefs) or NULL with err set.
static VipsImage *
s_decode (const rp_resize_opts_t *opts, const char *src, VipsImage *full,
          const s_header_t *hdr, char *err, size_t errlen)
{
    //  The derivative that needs the most pixels decides the decode size;
    //  every other one is then a downscale of it.
    const rp_derivative_t *largest = &opts->derivatives [0];
    double best = s_fit_scale (hdr, largest->width, largest->height);
    for (int i = 1; i < opts->derivative_count; i++) {
        double s = s_fit_scale (hdr, opts->derivatives [i].width, opts->derivatives [i].height);
        if (s > best) {
            best = s;
            largest = &opts->derivatives [i];
        }
    }
    //  We rotate after decoding (vips_thumbnail would rotate through its
    //  own threaded copy), so the box is given in stored orientation.
    int swap = hdr->orientation >= 5;
    int box_width = swap ? largest->height : largest->width;
    int box_height = swap ? largest->width : largest->height;

    VipsImage *t [7] = { NULL };
    VipsImage *out = NULL;
    //  Colour: an embedded profile (Adobe RGB, Display P3, CMYK) is
    //  converted to sRGB through it. Without one the pixels are taken as
    //  sRGB already and left alone: asking libvips 8.14 for an sRGB export
    //  there goes through XYZ and shifts untagged photos (by 3 to 7 levels
    //  on average on the corpus, more on saturated colours).
    //  CMYK without a profile still becomes sRGB (built-in CMYK profile).
    //  The last pair is left off, ending the list, when there is no profile.
    int failed = full
        ? vips_thumbnail_image (full, &t [0], box_width,
            "height", box_height,
            "size", VIPS_SIZE_DOWN,
            "no_rotate", TRUE,
            hdr->has_icc ? "export_profile" : NULL, "srgb",
            NULL)
        : vips_thumbnail (src, &t [0], box_width,
            "height", box_height,
            "size", VIPS_SIZE_DOWN,
            "no_rotate", TRUE,
            "fail_on", (VipsFailOn) opts->fail_on,
            hdr->has_icc ? "export_profile" : NULL, "srgb",
            NULL);
    if (failed) {
        s_vips_reason (err, errlen, "cannot decode image");
        goto done;
    }
    //  Make sure of 8-bit sRGB whatever route the thumbnail took: 16-bit
    //  inputs can stay RGB16/GREY16, greyscale stays B_W.
    VipsImage *in = t [0];
    if (in->Type != VIPS_INTERPRETATION_sRGB) {
        if (vips_colourspace (in, &t [1], VIPS_INTERPRETATION_sRGB, NULL)) {
            s_vips_reason (err, errlen, "cannot convert image to sRGB");
            goto done;
        }
        in = t [1];
    }
    if (in->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar (in, &t [2], NULL)) {
            s_vips_reason (err, errlen, "cannot convert image to 8 bits");
            goto done;
        }
        in = t [2];
    }
    //  More than RGBA (extra channels) cannot be encoded: keep RGB + alpha
    if (in->Bands > 4) {
        if (vips_extract_band (in, &t [3], 0, "n", 4, NULL)) {
            s_vips_reason (err, errlen, "cannot convert image to sRGB");
            goto done;
        }
        in = t [3];
    }
    //  The decode happens here, and this is where fail_on trips on a broken
    //  file. Every derivative reads from this copy instead of the file.
    if (!(t [4] = s_render (in))) {
        s_vips_reason (err, errlen, "cannot decode image");
        goto done;
    }
    in = t [4];
    if (hdr->orientation != 1) {
        if (vips_copy (in, &t [5], NULL)) {
            s_vips_reason (err, errlen, "cannot rotate image");
            goto done;
        }
        vips_image_set_int (t [5], VIPS_META_ORIENTATION, hdr->orientation);
        //  autorot removes the tag again, so nothing is rotated twice
        if (vips_autorot (t [5], &t [6], NULL)) {
            s_vips_reason (err, errlen, "cannot rotate image");
            goto done;
        }
        in = t [6];
    }
    g_object_ref (in);
    out = in;
done:
    for (size_t i = 0; i < sizeof t / sizeof t [0]; i++)
        if (t [i])
            g_object_unref (t [i]);
    return out;
}

//  The file name extension of a configured format, or NULL.
//  Little-endian 32-bit helpers for the RIFF container
static uint32_t
s_le32 (const unsigned char *p)
{
    return (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
}

static void
s_put_le32 (unsigned char *p, uint32_t v)
{
    p [0] = (unsigned char) v;
    p [1] = (unsigned char) (v >> 8);
    p [2] = (unsigned char) (v >> 16);
    p [3] = (unsigned char) (v >> 24);
}

//  Drop the EXIF, XMP and ICC chunks of a WebP file in place, and clear
//  their flags in VP8X. libvips 8.14.1's webpsave ignores "strip" and
//  always writes a freshly made EXIF block (orientation, resolution, size),
//  so we remove it ourselves. Returns the new length, or 0 if the data is
//  not the RIFF/WebP we expect.
static size_t
s_webp_strip (unsigned char *data, size_t len)
{
    if (len < 12 || memcmp (data, "RIFF", 4) != 0 || memcmp (data + 8, "WEBP", 4) != 0)
        return 0;
    size_t in = 12, out = 12;
    while (in + 8 <= len) {
        uint32_t size = s_le32 (data + in + 4);
        size_t whole = 8 + (size_t) size + (size & 1);
        if (whole > len - in)
            return 0;
        int drop = memcmp (data + in, "EXIF", 4) == 0
                || memcmp (data + in, "XMP ", 4) == 0
                || memcmp (data + in, "ICCP", 4) == 0;
        if (memcmp (data + in, "VP8X", 4) == 0 && size >= 1)
            data [in + 8] &= (unsigned char) ~(0x20 | 0x08 | 0x04);   //  ICC, EXIF, XMP
        if (!drop) {
            memmove (data + out, data + in, whole);
            out += whole;
        }
        in += whole;
    }
    if (in != len || out - 8 > UINT32_MAX)
        return 0;
    s_put_le32 (data + 4, (uint32_t) (out - 8));
    return out;
}

//  Encode `image` as spec says into memory. Returns 0 and the buffer
//  (caller g_free()s it) or -1 with the libvips error set.
static int
s_encode (VipsImage *image, const rp_derivative_t *spec, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int rc;
    if (strcmp (spec->format, "webp") == 0) {
        rc = vips_webpsave_buffer (image, buf, len, "Q", spec->quality, "strip", TRUE, NULL);
        if (rc == 0 && !(*len = s_webp_strip (*buf, *len))) {
            vips_error ("webpsave", "unexpected WebP layout");
            rc = -1;
        }
    }
    else
    if (strcmp (spec->format, "jpeg") == 0)
        //  No optimize_coding: measured on 12 MP camera photos, it made the
        //  1440 px preview 1 to 4 % smaller for 10 to 14 ms more CPU, about
        //  a tenth of all the work on a photo
        rc = vips_jpegsave_buffer (image, buf, len, "Q", spec->quality, "strip", TRUE, NULL);
    else
    if (strcmp (spec->format, "png") == 0)
        rc = vips_pngsave_buffer (image, buf, len, "compression", 6, "strip", TRUE, NULL);
    else
        rc = vips_heifsave_buffer (image, buf, len, "Q", spec->quality, "strip", TRUE,
                                   "compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1,
                                   "bitdepth", 8, NULL);
    if (rc) {
        g_free (*buf);
        *buf = NULL;
        *len = 0;
    }
    return rc;
}

//  Write all of buf to fd; 0 or -1 with errno set.
static int
s_write_all (int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write (fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

//  Whether the memory image fits the box as it is. A derivative or a
//  placeholder of a photo that small is the image itself: no resize
//  pipeline to build and run, which on a 100 x 70 photo costs more than
//  its pixels (each libvips operation made is about a millisecond's
//  bookkeeping there).
static int
s_fits (const VipsImage *image, int box_width, int box_height)
{
    return image->Xsize <= box_width && image->Ysize <= box_height;
}

//  The derivative the placeholder is made from, or -1 for the decoded
//  image itself: the smallest one that still has RP_THUMBHASH_SIDE_MAX
//  pixels on its long side (what the placeholder keeps). Shrinking the
//  256 px thumbnail to 100 px reads 49 thousand pixels where the 1440 px
//  decode has 1.5 million: 0.3 ms against 4.7 ms (12 MP photo, measured).
static int
s_placeholder_source (const rp_resize_opts_t *opts, const VipsImage *base)
{
    int best = -1;
    double best_scale = 1.0;
    int long_side = base->Xsize > base->Ysize ? base->Xsize : base->Ysize;
    for (int i = 0; i < opts->derivative_count; i++) {
        double sx = (double) opts->derivatives [i].width / base->Xsize;
        double sy = (double) opts->derivatives [i].height / base->Ysize;
        double scale = sx < sy ? sx : sy;
        if (scale < best_scale && long_side * scale >= RP_THUMBHASH_SIDE_MAX) {
            best_scale = scale;
            best = i;
        }
    }
    return best;
}

//  One derivative's pixels from the decoded image: resized, still with
//  its alpha. With `keep` they are computed into memory first, so the
//  placeholder can be made from them after the encode. NULL with the
//  libvips error set.
static VipsImage *
s_derivative_image (VipsImage *base, const rp_derivative_t *spec, int keep)
{
    VipsImage *image = NULL;
    if (s_fits (base, spec->width, spec->height)) {
        g_object_ref (base);        //  already in memory
        return base;
    }
    //  Already upright, already sRGB: no rotation, no colour management
    if (vips_thumbnail_image (base, &image, spec->width,
            "height", spec->height,
            "size", VIPS_SIZE_DOWN,
            "no_rotate", TRUE,
            NULL))
        return NULL;
    if (keep) {
        VipsImage *memory = vips_image_copy_memory (image);
        g_object_unref (image);
        image = memory;
    }
    return image;
}

//  Step 4: make one derivative from the decoded image and write it to a new
//  temporary file beside its final name, fsynced. On failure the temporary
//  file may exist (out->tmp_made); the caller removes it. With `kept`, the
//  derivative's pixels are handed back (in memory; caller unrefs).
static int
s_write_derivative (VipsImage *base, s_output_t *out, VipsImage **kept,
                    char *err, size_t errlen)
{
    const rp_derivative_t *spec = out->spec;
    VipsImage *t [2] = { NULL };
    VipsImage *image = NULL;
    void *bytes = NULL;
    size_t length = 0;
    int rc = -1;
    int fd = -1;
    if (!(t [0] = s_derivative_image (base, spec, kept != NULL))) {
        s_vips_reason (err, errlen, "cannot resize image");
        goto done;
    }
    image = t [0];
    if (strcmp (spec->format, "jpeg") == 0 && vips_image_hasalpha (image)) {
        VipsArrayDouble *white = vips_array_double_newv (3, 255.0, 255.0, 255.0);
        int failed = vips_flatten (image, &t [1], "background", white, NULL);
        vips_area_unref (VIPS_AREA (white));
        if (failed) {
            s_vips_reason (err, errlen, "cannot flatten transparency");
            goto done;
        }
        image = t [1];
    }
    if (s_encode (image, spec, &bytes, &length)) {
        char what [80];
        snprintf (what, sizeof what, "cannot encode derivative %s", spec->name);
        s_vips_reason (err, errlen, what);
        goto done;
    }
    if (snprintf (out->tmp_path, sizeof out->tmp_path, "%s.tmp-XXXXXX", out->final_path)
        >= (int) sizeof out->tmp_path) {
        snprintf (err, errlen, "cannot write derivative %s: the destination name is too long",
                  spec->name);
        goto done;
    }
    fd = mkstemp (out->tmp_path);
    if (fd < 0) {
        snprintf (err, errlen, "cannot write derivative %s: %s", spec->name, strerror (errno));
        goto done;
    }
    out->tmp_made = 1;
    //  mkstemp makes 0600; a derivative is as readable as its source, no
    //  more: a stored original is the engine's user's alone (0600), a
    //  file given to `rapidphoto process` as its owner left it
    if (fcntl (fd, F_SETFD, FD_CLOEXEC) != 0 || fchmod (fd, out->mode) != 0
    ||  s_write_all (fd, bytes, length) != 0 || fsync (fd) != 0) {
        snprintf (err, errlen, "cannot write derivative %s: %s", spec->name, strerror (errno));
        goto done;
    }
    out->width = image->Xsize;
    out->height = image->Ysize;
    out->bytes = (int64_t) length;
    if (kept) {
        *kept = t [0];
        t [0] = NULL;
    }
    rc = 0;
done:
    if (fd >= 0 && close (fd) != 0 && rc == 0) {
        snprintf (err, errlen, "cannot write derivative %s: %s", spec->name, strerror (errno));
        rc = -1;
    }
    g_free (bytes);
    for (size_t i = 0; i < sizeof t / sizeof t [0]; i++)
        if (t [i])
            g_object_unref (t [i]);
    return rc;
}

//  Step 5: rename every temporary file into place. If one rename fails, the
//  ones already renamed are removed again, so it is all or nothing.
static int
s_commit (s_output_t *outputs, int count, char *err, size_t errlen)
{
    for (int i = 0; i < count; i++) {
        if (rename (outputs [i].tmp_path, outputs [i].final_path) != 0) {
            snprintf (err, errlen, "cannot write derivative %s: %s",
                      outputs [i].spec->name, strerror (errno));
            for (int k = 0; k < i; k++)
                unlink (outputs [k].final_path);
            return -1;
        }
        outputs [i].tmp_made = 0;
    }
    if (count > 0)
        (void) rp_fs_sync_parent (outputs [0].final_path);    //  so the renames survive a crash
    return 0;
}

//  Milliseconds rounded to microseconds, as JSON
static json_t *
s_ms (double ms)
{
    return json_real (round (ms * 1000.0) / 1000.0);
}

//  The result object the header documents, or NULL when out of memory.
static json_t *
s_result (const char *mime, const s_header_t *hdr, const s_output_t *outputs, int count,
          double decode_ms)
{
    json_t *derivatives = json_object ();
    json_t *timings = json_object ();
    json_t *result = json_pack ("{s:s, s:i, s:i}", "content_type", mime,
                                "width", hdr->display_width, "height", hdr->display_height);
    if (!derivatives || !timings || !result
    ||  json_object_set_new (timings, "decode_ms", s_ms (decode_ms)))
        goto fail;
    for (int i = 0; i < count; i++) {
        char key [sizeof outputs [i].spec->name + 4];
        snprintf (key, sizeof key, "%s_ms", outputs [i].spec->name);
        if (json_object_set_new (timings, key, s_ms (outputs [i].ms)))
            goto fail;
    }
    int failed = json_object_set_new (result, "timings", timings);
    timings = NULL;             //  set_new took it, even on failure
    if (failed)
        goto fail;
    for (int i = 0; i < count; i++) {
        json_t *one = json_pack ("{s:s, s:s, s:i, s:i, s:I}",
                                 "path", outputs [i].final_path,
                                 "format", outputs [i].spec->format,
                                 "width", outputs [i].width,
                                 "height", outputs [i].height,
                                 "bytes", (json_int_t) outputs [i].bytes);
        if (!one || json_object_set_new (derivatives, outputs [i].spec->name, one))
            goto fail;
    }
    if (json_object_set_new (result, "derivatives", derivatives)) {
        derivatives = NULL;     //  set_new took it, even on failure
        goto fail;
    }
    return result;
fail:
    json_decref (derivatives);
    json_decref (timings);
    json_decref (result);
    return NULL;
}

//  Step 6: the upright, sRGB memory image shrunk to fit 100 x 100, as
//  8-bit RGBA row by row (caller g_free()s *rgba). 0, or -1 with err.
static int
s_placeholder_rgba (VipsImage *base, unsigned char **rgba, int *width, int *height,
                    char *err, size_t errlen)
{
    VipsImage *t [5] = { NULL };
    int rc = -1;
    *rgba = NULL;
    if (s_fits (base, RP_THUMBHASH_SIDE_MAX, RP_THUMBHASH_SIDE_MAX)) {
        g_object_ref (base);
        t [0] = base;
    }
    else
    if (vips_thumbnail_image (base, &t [0], RP_THUMBHASH_SIDE_MAX,
            "height", RP_THUMBHASH_SIDE_MAX,
            "size", VIPS_SIZE_DOWN,
            "no_rotate", TRUE,
            NULL)) {
        s_vips_reason (err, errlen, "cannot shrink image for its placeholder");
        goto done;
    }
    VipsImage *in = t [0];
    //  Grey (with or without alpha) to sRGB; more than RGBA to RGBA
    if (in->Bands < 3) {
        if (vips_colourspace (in, &t [1], VIPS_INTERPRETATION_sRGB, NULL)) {
            s_vips_reason (err, errlen, "cannot convert image to sRGB for its placeholder");
            goto done;
        }
        in = t [1];
    }
    if (in->Bands == 3) {
        if (vips_bandjoin_const1 (in, &t [2], 255.0, NULL)) {
            s_vips_reason (err, errlen, "cannot add alpha for its placeholder");
            goto done;
        }
        in = t [2];
    }
    else
    if (in->Bands > 4) {
        if (vips_extract_band (in, &t [2], 0, "n", 4, NULL)) {
            s_vips_reason (err, errlen, "cannot convert image to RGBA for its placeholder");
            goto done;
        }
        in = t [2];
    }
    if (in->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar (in, &t [3], NULL)) {
            s_vips_reason (err, errlen, "cannot convert image to 8 bits for its placeholder");
            goto done;
        }
        in = t [3];
    }
    if (in->Bands != 4 || in->Xsize < 1 || in->Ysize < 1
    ||  in->Xsize > RP_THUMBHASH_SIDE_MAX || in->Ysize > RP_THUMBHASH_SIDE_MAX) {
        snprintf (err, errlen, "the placeholder image is %dx%d with %d bands, not RGBA within %dx%d",
                  in->Xsize, in->Ysize, in->Bands, RP_THUMBHASH_SIDE_MAX, RP_THUMBHASH_SIDE_MAX);
        goto done;
    }
    size_t size = 0;
    *rgba = vips_image_write_to_memory (in, &size);
    if (!*rgba || size != (size_t) in->Xsize * (size_t) in->Ysize * 4) {
        g_free (*rgba);
        *rgba = NULL;
        s_vips_reason (err, errlen, "cannot compute the placeholder image");
        goto done;
    }
    *width = in->Xsize;
    *height = in->Ysize;
    rc = 0;
done:
    for (size_t i = 0; i < sizeof t / sizeof t [0]; i++)
        if (t [i])
            g_object_unref (t [i]);
    return rc;
}

//  Step 6: the ThumbHash of the memory image as base64 into out (at least
//  RP_THUMBHASH_B64_MAX + 1 bytes). 0, or -1 with err.
static int
s_placeholder (VipsImage *base, char *out, size_t outlen, char *err, size_t errlen)
{
    unsigned char *rgba = NULL;
    int width = 0, height = 0;
    if (s_placeholder_rgba (base, &rgba, &width, &height, err, errlen))
        return -1;
    unsigned char hash [RP_THUMBHASH_MAX];
    size_t len = 0;
    int rc = rp_thumbhash_encode (width, height, rgba, hash, &len);
    g_free (rgba);
    if (rc == 0)
        rc = rp_thumbhash_base64 (hash, len, out, outlen);
    if (rc)
        snprintf (err, errlen, "cannot encode the placeholder of a %dx%d image", width, height);
    return rc;
}

int
rp_resize_placeholder_rgba (const rp_resize_opts_t *opts, const char *src,
                            unsigned char **rgba, int *width, int *height,
                            char *err, size_t errlen)
{
    assert (opts && src && rgba && width && height);
    *rgba = NULL;
    const char *mime = NULL;
    s_header_t hdr = { 0 };
    VipsImage *base = NULL, *full = NULL, *small = NULL;
    s_heif_t heif = { NULL, NULL };
    s_raw_t raw = { NULL };
    mode_t mode = 0600;
    int rc = -1;
    if (s_check_file (opts, src, &mime, &mode, err, errlen))
        goto done;
    if (strcmp (mime, "image/heic") == 0 || strcmp (mime, "image/avif") == 0) {
        if (s_heif_read_header (opts, src, &heif, &hdr, err, errlen)
        ||  !(full = s_heif_decode (opts, &heif, &hdr, err, errlen)))
            goto done;
    }
    else
    if (rp_sniff_is_raw (mime)) {
        if (s_raw_read_header (opts, src, &raw, &hdr, err, errlen)
        ||  !(full = s_raw_decode (opts, &raw, &hdr, err, errlen)))
            goto done;
    }
    else
    if (s_read_header (opts, src, mime, &hdr, err, errlen))
        goto done;
    if (!(base = s_decode (opts, src, full, &hdr, err, errlen)))
        goto done;
    //  From the same pixels as rp_resize_photo's placeholder
    int source = s_placeholder_source (opts, base);
    if (source >= 0 && !(small = s_derivative_image (base, &opts->derivatives [source], 1))) {
        s_vips_reason (err, errlen, "cannot resize image");
        goto done;
    }
    rc = s_placeholder_rgba (small ? small : base, rgba, width, height, err, errlen);
done:
    if (mime)
        s_vips_error_drain ();
    if (small)
        g_object_unref (small);
    if (base)
        g_object_unref (base);
    if (full)
        g_object_unref (full);
    s_heif_close (&heif);
    s_raw_close (&raw);
    return rc;
}

//  The perceptual hash (engine/phash.h) of the decoded, upright image:
//  shrunk to 32x32 with no regard to its aspect, from memory (no second
//  decode). 0, or -1 with the libvips error set.
static int
s_phash (VipsImage *base, uint64_t *hash)
{
    VipsImage *small = NULL;
    int rc = -1;
    if (vips_thumbnail_image (base, &small, RP_PHASH_SIDE,
            "height", RP_PHASH_SIDE,
            "size", VIPS_SIZE_FORCE,
            "no_rotate", TRUE,
            NULL))
        return -1;
    size_t size = 0;
    unsigned char *pixels = vips_image_write_to_memory (small, &size);
    if (pixels && small->Xsize == RP_PHASH_SIDE && small->Ysize == RP_PHASH_SIDE
    &&  small->BandFmt == VIPS_FORMAT_UCHAR
    &&  size == (size_t) RP_PHASH_SIDE * RP_PHASH_SIDE * (size_t) small->Bands
    &&  rp_phash_pixels (pixels, small->Bands, hash) == 0)
        rc = 0;
    else
    if (pixels)
        vips_error ("phash", "unexpected %dx%d image of %d bands", small->Xsize, small->Ysize, small->Bands);
    g_free (pixels);
    g_object_unref (small);
    return rc;
}

int
rp_resize_photo (const rp_resize_opts_t *opts, const char *src,
                 const char *dest_prefix, json_t **result,
                 char *err, size_t errlen)
{
    assert (opts);
    assert (src);
    assert (dest_prefix);
    assert (result);
    assert (err && errlen > 0);
    assert (opts->derivative_count > 0 && opts->derivative_count <= RP_DERIVATIVES_MAX);

    int64_t started = rp_clock_ms ();
    *result = NULL;
    err [0] = 0;
    int rc = -1;
    const char *mime = NULL;
    s_header_t hdr = { 0 };
    VipsImage *base = NULL;
    VipsImage *full = NULL;         //  HEIF only: the full-size decode
    VipsImage *small = NULL;        //  the placeholder's source, when not base
    s_heif_t heif = { NULL, NULL };
    s_raw_t raw = { NULL };
    s_output_t outputs [RP_DERIVATIVES_MAX];
    memset (outputs, 0, sizeof outputs);
    int count = opts->derivative_count;

    //  Names first: a bad configuration fails before any work
    for (int i = 0; i < count; i++) {
        s_output_t *out = &outputs [i];
        out->spec = &opts->derivatives [i];
        out->ext = rp_derivative_ext (out->spec->format, NULL);
        if (!out->ext) {
            snprintf (err, errlen, "derivative %s: unknown format \"%s\"",
                      out->spec->name, out->spec->format);
            goto done;
        }
        if (snprintf (out->final_path, sizeof out->final_path, "%s.%s.%s",
                      dest_prefix, out->spec->name, out->ext) >= (int) sizeof out->final_path) {
            snprintf (err, errlen, "derivative %s: the destination name is too long",
                      out->spec->name);
            goto done;
        }
    }
    double t_start = rp_clock_ms_precise ();
    mode_t mode = 0600;
    if (s_check_file (opts, src, &mime, &mode, err, errlen))
        goto done;
    for (int i = 0; i < count; i++)
        outputs [i].mode = mode;
    if (strcmp (mime, "image/heic") == 0 || strcmp (mime, "image/avif") == 0) {
        if (s_heif_read_header (opts, src, &heif, &hdr, err, errlen)
        ||  !(full = s_heif_decode (opts, &heif, &hdr, err, errlen)))
            goto done;
        s_heif_close (&heif);
    }
    else
    if (rp_sniff_is_raw (mime)) {
        if (s_raw_read_header (opts, src, &raw, &hdr, err, errlen)
        ||  !(full = s_raw_decode (opts, &raw, &hdr, err, errlen)))
            goto done;
    }
    else
    if (s_read_header (opts, src, mime, &hdr, err, errlen))
        goto done;
    if (!(base = s_decode (opts, src, full, &hdr, err, errlen)))
        goto done;
    if (full) {
        g_object_unref (full);      //  only the shrunk copy is needed now
        full = NULL;
    }
    s_raw_close (&raw);
    double decode_ms = rp_clock_ms_precise () - t_start;
    int source = s_placeholder_source (opts, base);
    for (int i = 0; i < count; i++) {
        double t_derivative = rp_clock_ms_precise ();
        if (s_write_derivative (base, &outputs [i], i == source ? &small : NULL, err, errlen))
            goto done;
        outputs [i].ms = rp_clock_ms_precise () - t_derivative;
    }
    uint64_t phash = 0;
    if (s_phash (base, &phash)) {
        s_vips_reason (err, errlen, "cannot hash image");
        goto done;
    }
    char phash_hex [17];
    rp_phash_hex (phash, phash_hex);
    json_t *json = s_result (mime, &hdr, outputs, count, decode_ms);
    if (!json
    ||  json_object_set_new (json, "phash", json_string (phash_hex))) {
        json_decref (json);
        snprintf (err, errlen, "out of memory");
        goto done;
    }
    //  Step 6: the placeholder, from the same memory image
    double t_placeholder = rp_clock_ms_precise ();
    char thumbhash [RP_THUMBHASH_B64_MAX + 1], why [256];
    json_t *placeholder = json_null ();
    if (s_placeholder (small ? small : base, thumbhash, sizeof thumbhash, why, sizeof why) == 0)
        placeholder = json_string (thumbhash);
    else
        rp_warn (S_SOURCE, "file=%s no placeholder: %s", s_basename (src), why);
    json_object_set_new (json, "thumbhash", placeholder);
    json_object_set_new (json_object_get (json, "timings"), "thumbhash_ms",
                         s_ms (rp_clock_ms_precise () - t_placeholder));
    if (s_commit (outputs, count, err, errlen)) {
        json_decref (json);
        goto done;
    }
    *result = json;
    rc = 0;
done:
    if (mime)
        s_vips_error_drain ();      //  libvips was used: leave its buffer empty
    for (int i = 0; i < count; i++)
        if (outputs [i].tmp_made)
            unlink (outputs [i].tmp_path);
    if (small)
        g_object_unref (small);
    if (base)
        g_object_unref (base);
    if (full)
        g_object_unref (full);
    s_heif_close (&heif);
    s_raw_close (&raw);
    int64_t took = rp_clock_ms () - started;
    if (rc == 0)
        rp_info (S_SOURCE, "file=%s duration=%" PRId64 " %s %dx%d%s%s, %d derivatives written",
                 s_basename (src), took, mime, hdr.display_width, hdr.display_height,
                 hdr.route ? " from RAW, " : "", hdr.route ? hdr.route : "", count);
    else
        rp_info (S_SOURCE, "file=%s duration=%" PRId64 " refused: %s",
                 s_basename (src), took, err);
    return rc;
}
