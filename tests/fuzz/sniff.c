/*  tests/fuzz/sniff.c: the type check every upload goes through
    (library/sniff.c: rp_sniff, rp_sniff_describe, rp_sniff_check).

    The input is a file's first bytes. Checked: the type is one of the
    eleven accepted (seven image formats, DNG and three camera RAWs), or
    none; the check agrees with the sniff and, when it
    refuses, says why with the description; the description is never empty,
    and "an image" exactly when the sniff found one.

    Seeds: tests/fuzz/corpus/sniff (one header of each format and of the
    refused look-alikes; orf.bin is the input that found the RAW types
    missing from the list below) and, at run time, the shared photo corpus.
*/
#include "library/sniff.h"
#include "tests/fuzz/fuzz.h"

static const char *const s_types [] = {
    "image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/heic", "image/avif",
    "image/x-adobe-dng", "image/x-canon-cr2", "image/x-olympus-orf", "image/x-panasonic-rw2"
};

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *mime = rp_sniff (data, size);
    bool known = mime == NULL;
    for (size_t i = 0; i < sizeof s_types / sizeof s_types [0] && !known; i++)
        known = strcmp (mime, s_types [i]) == 0;
    RP_FUZZ_CHECK (known, "an unknown type %s", mime);

    const char *described = rp_sniff_describe (data, size);
    RP_FUZZ_CHECK (described && *described, "no description");
    RP_FUZZ_CHECK ((strcmp (described, "an image") == 0) == (mime != NULL), "%s described as %s",
                   mime ? mime : "no image", described);

    char err [256] = "";
    const char *checked = rp_sniff_check (data, size, err, sizeof err);
    RP_FUZZ_CHECK (checked == mime, "the check says %s, the sniff %s", checked ? checked : "none",
                   mime ? mime : "none");
    RP_FUZZ_CHECK (mime || strstr (err, described), "refused without saying what it looks like: %s", err);
    return 0;
}
