/*  tests/fuzz/fuzz_vips.h: what the image targets (exif, resize_header)
    share: libvips started as main () starts it (app/main.c). Header only.
*/
#ifndef RP_FUZZ_VIPS_H
#define RP_FUZZ_VIPS_H

#include <stdlib.h>
#include <vips/vips.h>

#include "engine/log.h"

//  Once, from LLVMFuzzerInitialize. libvips' warnings about broken files
//  would only slow the fuzzer down; so would our log lines below errors.
static inline void
rp_fuzz_vips_start (const char *argv0)
{
    setenv ("VIPS_WARNING", "0", 0);
    if (VIPS_INIT (argv0))
        abort ();
    vips_cache_set_max (0);
    vips_block_untrusted_set (TRUE);
    vips_concurrency_set (1);
    rp_log_set_level (RP_LOG_ERROR);
}

#endif
