/*  library/sniff.h: decide a file's type by its first bytes, never its name.

    Only the formats the engine accepts are recognised: JPEG, PNG, WebP, GIF,
    TIFF, HEIC/HEIF and AVIF, and camera RAW for LibRaw: DNG
    (image/x-adobe-dng), Canon CR2 (image/x-canon-cr2), Olympus ORF
    (image/x-olympus-orf), Panasonic RW2 (image/x-panasonic-rw2). Everything else (SVG, HTML, text, PDF, empty
    files) is "not an image" for us, even when a decoder could read it.
*/
#ifndef RP_SNIFF_H
#define RP_SNIFF_H

#include <stddef.h>

//  How many leading bytes rp_sniff looks at (fewer is fine for short files;
//  more are ignored): enough for a DNG's IFD0 right after its header.
#define RP_SNIFF_BYTES 4096

//  Enough leading bytes to tell whether a file is an accepted image at all
//  (which type of TIFF it is may take RP_SNIFF_BYTES): the gateway's early
//  refusal of an upload waits for no more than these.
#define RP_SNIFF_ACCEPT_BYTES 64

//  The MIME type of an accepted image format, or NULL. The string is static.
const char *rp_sniff (const unsigned char *data, size_t size);

//  1 when mime (rp_sniff's) is a camera RAW, decoded with LibRaw, else 0.
int rp_sniff_is_raw (const char *mime);

//  A short human description of what the bytes look like when rp_sniff said
//  NULL ("empty file", "text", "HTML", "SVG", "PDF", "unknown binary"),
//  for failure reasons. Static string.
const char *rp_sniff_describe (const unsigned char *data, size_t size);

//  The check every way bytes arrive by makes (library.h's ingest, and the
//  gateway as soon as an upload's first bytes are in): the MIME type of an
//  accepted image format, or NULL with the refusal a user sees in err,
//  written here only: "not a supported image (JPEG, PNG, WebP, GIF, TIFF,
//  HEIC, AVIF, DNG or camera RAW): it looks like HTML".
const char *rp_sniff_check (const unsigned char *data, size_t size, char *err, size_t errlen);

//  Sniff the start of a file: 0 with *mime set (NULL when not an accepted
//  image), or -1 when the file cannot be read (errno set).
int rp_sniff_file (const char *path, const char **mime, const char **described);

#endif
