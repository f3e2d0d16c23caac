/*  tests/thumbhash/rgba.c: thumbhash_rgba, the C side of the ThumbHash
    comparison (tests/thumbhash/thumbhash.spec.mjs).

        thumbhash_rgba OUTDIR FILE...
        thumbhash_rgba --raw W H RGBAFILE [W H RGBAFILE]...

    For each FILE, in order: the pixels the engine makes its placeholder
    from (rp_resize_placeholder_rgba: the resize job's own decode, upright,
    sRGB, shrunk to fit 100 x 100, 8-bit RGBA) are written to
    OUTDIR/<n>.rgba (n counts from 0), and one JSON line is printed:
        {"file":F,"width":W,"height":H,"rgba":PATH,"thumbhash":BASE64}
    the hash being the engine's encoder's (engine/thumbhash) on those very
    bytes; or {"file":F,"error":REASON} when the engine refuses the file.
    The spec gives the same bytes to the npm reference and compares.
    --raw: the encoder alone on given pixels (W x H, 4 bytes a pixel),
    one base64 hash a line, or "refused" when the encoder refuses them.
    Exit status 0 unless the arguments or files are wrong.
*/
#include "actors/resize/resize.h"
#include "engine/config.h"
#include "engine/log.h"
#include "engine/thumbhash.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

//  --raw: the encoder on pixels made elsewhere
static int
s_raw (int argc, char *argv [])
{
    for (int i = 2; i + 2 < argc; i += 3) {
        long w = strtol (argv [i], NULL, 10), h = strtol (argv [i + 1], NULL, 10);
        FILE *in = fopen (argv [i + 2], "rb");
        size_t size = w > 0 && h > 0 && w <= 1000 && h <= 1000 ? (size_t) w * (size_t) h * 4 : 0;
        unsigned char *rgba = size ? malloc (size) : NULL;
        if (!in || !rgba || fread (rgba, 1, size, in) != size) {
            fprintf (stderr, "thumbhash_rgba: cannot read %ldx%ld pixels from %s\n", w, h, argv [i + 2]);
            free (rgba);
            if (in)
                fclose (in);
            return 1;
        }
        fclose (in);
        unsigned char hash [RP_THUMBHASH_MAX];
        size_t len = 0;
        char text [RP_THUMBHASH_B64_MAX + 1];
        if (rp_thumbhash_encode ((int) w, (int) h, rgba, hash, &len) || rp_thumbhash_base64 (hash, len, text, sizeof text))
            printf ("refused\n");
        else
            printf ("%s\n", text);
        free (rgba);
    }
    return 0;
}

int
main (int argc, char *argv [])
{
    if (argc >= 2 && strcmp (argv [1], "--raw") == 0)
        return s_raw (argc, argv);
    if (argc < 3) {
        fprintf (stderr, "usage: thumbhash_rgba OUTDIR FILE...\n");
        return 2;
    }
    if (VIPS_INIT (argv [0]))
        return 1;
    vips_cache_set_max (0);         //  as main does
    rp_log_set_level (RP_LOG_ERROR);
    rp_config_t config;
    rp_config_defaults (&config);
    rp_resize_opts_t opts;
    rp_resize_opts_from_config (&opts, &config);
    int status = 0;
    for (int i = 2; i < argc && status == 0; i++) {
        char err [512] = "", path [4096];
        unsigned char *rgba = NULL;
        int width = 0, height = 0;
        json_t *line;
        if (rp_resize_placeholder_rgba (&opts, argv [i], &rgba, &width, &height, err, sizeof err))
            line = json_pack ("{s:s, s:s}", "file", argv [i], "error", err);
        else {
            snprintf (path, sizeof path, "%s/%d.rgba", argv [1], i - 2);
            FILE *out = fopen (path, "wb");
            size_t size = (size_t) width * (size_t) height * 4;
            if (!out || fwrite (rgba, 1, size, out) != size || fclose (out) != 0) {
                fprintf (stderr, "thumbhash_rgba: cannot write %s\n", path);
                g_free (rgba);
                return 1;
            }
            unsigned char hash [RP_THUMBHASH_MAX];
            size_t len = 0;
            char text [RP_THUMBHASH_B64_MAX + 1] = "";
            if (rp_thumbhash_encode (width, height, rgba, hash, &len)
            ||  rp_thumbhash_base64 (hash, len, text, sizeof text)) {
                fprintf (stderr, "thumbhash_rgba: the encoder refused %dx%d\n", width, height);
                status = 1;
            }
            line = json_pack ("{s:s, s:i, s:i, s:s, s:s}", "file", argv [i], "width", width,
                              "height", height, "rgba", path, "thumbhash", text);
        }
        g_free (rgba);
        char *text = json_dumps (line, JSON_COMPACT);
        printf ("%s\n", text);
        free (text);
        json_decref (line);
    }
    vips_shutdown ();
    return status;
}
