/*  library/sniff.c: see sniff.h. Magic numbers from the formats' own specs:
    JPEG SOI FF D8 FF; PNG's 8-byte signature; RIFF....WEBP; GIF87a/89a;
    TIFF II*\0 / MM\0*; ISO BMFF 'ftyp' with a HEIF or AVIF brand.

    Camera RAW (decoded by LibRaw, actors/resize): a DNG is a TIFF whose
    IFD0 holds the DNGVersion tag (0xC612); the sniff walks IFD0 when it
    lies within the first RP_SNIFF_BYTES (cameras, phones and Adobe's
    converter write it right after the header; a DNG whose IFD0 lies
    further is taken for a plain TIFF). Canon CR2 says "CR" 2 at byte 8 of
    its TIFF header; Olympus ORF ("IIRO", "IIRS", "MMOR") and Panasonic RW2
    ("IIU\0") have headers of their own. Other TIFF-based RAWs (NEF, ARW,
    PEF...) are not told apart from TIFF here. Only the first RP_SNIFF_BYTES
    are ever looked at, so every caller, whatever it has read, agrees. */
#include "library/sniff.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>
#include <unistd.h>

static int
s_brand_is (const unsigned char *brand, const char *const *list)
{
    for (; *list; list++)
        if (memcmp (brand, *list, 4) == 0)
            return 1;
    return 0;
}

//  ISO base media file: size(4) 'ftyp' major(4) minor(4) compatible(4)...
static const char *
s_sniff_isobmff (const unsigned char *d, size_t n)
{
    static const char *const avif [] = { "avif", "avis", NULL };
    static const char *const heic [] = { "heic", "heix", "heim", "heis", "hevc", "hevx",
                                         "mif1", "msf1", "mif2", NULL };
    if (n < 16 || memcmp (d + 4, "ftyp", 4) != 0)
        return NULL;
    size_t box = ((size_t) d [0] << 24) | ((size_t) d [1] << 16) | ((size_t) d [2] << 8) | d [3];
    if (box < 16)
        return NULL;
    if (box > n)
        box = n;
    //  The major brand decides when it is specific; mif1 files say more in
    //  their compatible brands.
    if (s_brand_is (d + 8, avif))
        return "image/avif";
    for (size_t i = 16; i + 4 <= box; i += 4)
        if (s_brand_is (d + i, avif))
            return "image/avif";
    if (s_brand_is (d + 8, heic))
        return "image/heic";
    for (size_t i = 16; i + 4 <= box; i += 4)
        if (s_brand_is (d + i, heic))
            return "image/heic";
    return NULL;
}

static uint32_t
s_tiff32 (const unsigned char *p, int little)
{
    return little ? (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24
                  : (uint32_t) p [3] | (uint32_t) p [2] << 8 | (uint32_t) p [1] << 16 | (uint32_t) p [0] << 24;
}

static unsigned
s_tiff16 (const unsigned char *p, int little)
{
    return little ? (unsigned) p [0] | (unsigned) p [1] << 8 : (unsigned) p [1] | (unsigned) p [0] << 8;
}

//  A TIFF (d starts "II*\0" or "MM\0*"): a DNG when IFD0, read within the
//  n bytes only, has the DNGVersion tag; a CR2 by its header.
static const char *
s_sniff_tiff (const unsigned char *d, size_t n)
{
    int little = d [0] == 'I';
    if (n >= 12 && little && d [8] == 'C' && d [9] == 'R' && d [10] == 2)
        return "image/x-canon-cr2";
    if (n < 8)
        return "image/tiff";
    uint32_t ifd = s_tiff32 (d + 4, little);
    if (ifd < 8 || (size_t) ifd + 2 > n)
        return "image/tiff";
    unsigned count = s_tiff16 (d + ifd, little);
    for (unsigned i = 0; i < count; i++) {
        size_t entry = (size_t) ifd + 2 + (size_t) i * 12;
        if (entry + 12 > n)
            break;
        if (s_tiff16 (d + entry, little) == 0xC612)
            return "image/x-adobe-dng";
    }
    return "image/tiff";
}

const char *
rp_sniff (const unsigned char *d, size_t n)
{
    if (!d || n < 4)
        return NULL;
    //  The same answer whatever a caller has read: the first bytes decide
    if (n > RP_SNIFF_BYTES)
        n = RP_SNIFF_BYTES;
    if (n >= 3 && d [0] == 0xFF && d [1] == 0xD8 && d [2] == 0xFF)
        return "image/jpeg";
    if (n >= 8 && memcmp (d, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "image/png";
    if (n >= 12 && memcmp (d, "RIFF", 4) == 0 && memcmp (d + 8, "WEBP", 4) == 0)
        return "image/webp";
    if (n >= 6 && (memcmp (d, "GIF87a", 6) == 0 || memcmp (d, "GIF89a", 6) == 0))
        return "image/gif";
    if (memcmp (d, "II*\0", 4) == 0 || memcmp (d, "MM\0*", 4) == 0)
        return s_sniff_tiff (d, n);
    if (memcmp (d, "IIRO", 4) == 0 || memcmp (d, "IIRS", 4) == 0 || memcmp (d, "MMOR", 4) == 0)
        return "image/x-olympus-orf";
    if (memcmp (d, "IIU\0", 4) == 0)
        return "image/x-panasonic-rw2";
    return s_sniff_isobmff (d, n);
}

const char *
rp_sniff_describe (const unsigned char *d, size_t n)
{
    if (n == 0)
        return "an empty file";
    if (rp_sniff (d, n))
        return "an image";
    //  Skip leading white space and a UTF-8 BOM for the markup checks
    size_t i = 0;
    if (n >= 3 && d [0] == 0xEF && d [1] == 0xBB && d [2] == 0xBF)
        i = 3;
    while (i < n && isspace (d [i]))
        i++;
    const char *s = (const char *) d + i;
    size_t left = n - i;
    if (left >= 5 && strncasecmp (s, "<?xml", 5) == 0)
        return "XML or SVG";
    if (left >= 4 && strncasecmp (s, "<svg", 4) == 0)
        return "SVG";
    if (left >= 5 && (strncasecmp (s, "<html", 5) == 0 || strncasecmp (s, "<!doc", 5) == 0))
        return "HTML";
    if (n >= 5 && memcmp (d, "%PDF-", 5) == 0)
        return "PDF";
    if (n >= 12 && memcmp (d + 4, "ftyp", 4) == 0)
        return "a video or unsupported ISO media file";
    size_t printable = 0;
    for (size_t k = 0; k < n; k++)
        if (isprint (d [k]) || isspace (d [k]))
            printable++;
    if (printable == n)
        return "text";
    return "unknown binary data";
}

const char *
rp_sniff_check (const unsigned char *d, size_t n, char *err, size_t errlen)
{
    const char *mime = rp_sniff (d, n);
    if (!mime)
        snprintf (err, errlen, "not a supported image (JPEG, PNG, WebP, GIF, TIFF, HEIC, AVIF, DNG or camera RAW): it looks like %s",
                  rp_sniff_describe (d, n));
    return mime;
}

int
rp_sniff_file (const char *path, const char **mime, const char **described)
{
    unsigned char head [RP_SNIFF_BYTES];
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read (fd, head, sizeof head);
    close (fd);
    if (n < 0)
        return -1;
    *mime = rp_sniff (head, (size_t) n);
    if (described)
        *described = rp_sniff_describe (head, (size_t) n);
    return 0;
}

int
rp_sniff_is_raw (const char *mime)
{
    return mime && strncmp (mime, "image/x-", 8) == 0;
}
