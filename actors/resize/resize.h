/*  actors/resize/resize.h: make the derivatives of one photo with libvips.

    rp_resize_photo is the work of the resize job kind (actors/actors.c's
    handler calls it on a worker's thread). It is a plain function with no
    state between calls, so it is safe to run on many threads at once and
    to run twice for the same job (outputs are written to a temporary name
    and renamed into place).
*/
#ifndef RP_RESIZE_H
#define RP_RESIZE_H

#include <jansson.h>
#include "engine/config.h"

typedef struct {
    rp_derivative_t derivatives [RP_DERIVATIVES_MAX];   //  what to make
    int derivative_count;
    int64_t max_pixels;         //  header width*height above this is refused, before decode
    int64_t max_bytes;          //  files larger than this are refused
    int fail_on;                //  VipsFailOn for the loaders
} rp_resize_opts_t;

//  Copy the resize settings out of a loaded config.
void rp_resize_opts_from_config (rp_resize_opts_t *opts, const rp_config_t *config);

//  Decode `src` once (shrink-on-load at the largest derivative's size),
//  orient it upright, convert to sRGB, and write every derivative as
//  "<dest_prefix>.<name>.<ext>" (ext: webp, jpg, png, avif).
//  On success returns 0 and sets *result (caller owns, json_decref) to
//      {"content_type":"image/jpeg","width":W,"height":H,   // as displayed
//       "derivatives":{"<name>":{"path":"...","format":"webp","width":w,
//                                "height":h,"bytes":n},...},
//       "thumbhash":"<base64>"|null,    // the placeholder (engine/thumbhash.h)
//       "phash":"<16 hex>",
//       "timings":{"decode_ms":t,"<name>_ms":t,...,"thumbhash_ms":t}}
//  phash: engine/phash.h's hash of the decoded image, upright.
//  timings are milliseconds (doubles): decode_ms from the start to the
//  image in memory (type check, header, decode, shrink, colour, rotation),
//  <name>_ms for each derivative (resize, encode, write, fsync).
//  On failure returns -1, writes a reason a person can read to err (no
//  internal paths beyond the file's own name), and leaves no output files.
int rp_resize_photo (const rp_resize_opts_t *opts, const char *src,
                     const char *dest_prefix, json_t **result,
                     char *err, size_t errlen);

//  The pixels the placeholder is made from: `src` decoded as
//  rp_resize_photo decodes it (same checks, same upright sRGB memory
//  image), shrunk to fit 100 x 100, 8-bit RGBA row by row. *rgba is the
//  caller's (g_free). 0, or -1 with a reason in err. For tests: they feed
//  the same bytes to the reference encoder.
int rp_resize_placeholder_rgba (const rp_resize_opts_t *opts, const char *src,
                                unsigned char **rgba, int *width, int *height,
                                char *err, size_t errlen);

#endif
