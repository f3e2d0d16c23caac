/*  bench/phash_files.c: the engine's perceptual hash of each file named,
    through the resize actor's own path (rp_resize_photo with the default
    derivatives: one decode, the hash from the decoded image).

    rp_phash_files OUTDIR FILE...   prints "<16 hex> <file>" per file, or
                                    "error <file>: <reason>" for a refused one

    bench/phash_matrix.sh feeds it the variants it makes from the corpus.
    OUTDIR receives the derivatives (a scratch folder).
*/
#include "actors/resize/resize.h"

#include <stdio.h>
#include <string.h>
#include <vips/vips.h>

int
main (int argc, char *argv [])
{
    if (argc < 3) {
        fprintf (stderr, "usage: rp_phash_files OUTDIR FILE...\n");
        return 2;
    }
    if (VIPS_INIT (argv [0]))
        return 1;
    vips_cache_set_max (0);
    rp_config_t config;
    rp_config_defaults (&config);
    rp_resize_opts_t opts;
    rp_resize_opts_from_config (&opts, &config);
    int failed = 0;
    for (int i = 2; i < argc; i++) {
        char prefix [4096], err [512];
        snprintf (prefix, sizeof prefix, "%s/out%d", argv [1], i);
        json_t *result = NULL;
        if (rp_resize_photo (&opts, argv [i], prefix, &result, err, sizeof err)) {
            printf ("error %s: %s\n", argv [i], err);
            failed++;
            continue;
        }
        printf ("%s %s\n", json_string_value (json_object_get (result, "phash")), argv [i]);
        json_decref (result);
    }
    vips_shutdown ();
    return failed ? 1 : 0;
}
