/*  library/sniff.c: see sniff.h. Magic numbers from the formats' own specs:
    JPEG SOI FF D8 FF; PNG's 8-byte signature; RIFF....WEBP; GIF87a/89a;
    TIFF II*\0 / MM\0*; ISO BMFF 'ftyp' with a HEIF or AVIF brand. */
#include "library/sniff.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
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

const char *
rp_sniff (const unsigned char *d, size_t n)
{
    if (!d || n < 4)
        return NULL;
    if (n >= 3 && d [0] == 0xFF && d [1] == 0xD8 && d [2] == 0xFF)
        return "image/jpeg";
    if (n >= 8 && memcmp (d, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "image/png";
    if (n >= 12 && memcmp (d, "RIFF", 4) == 0 && memcmp (d + 8, "WEBP", 4) == 0)
        return "image/webp";
    if (n >= 6 && (memcmp (d, "GIF87a", 6) == 0 || memcmp (d, "GIF89a", 6) == 0))
        return "image/gif";
    if (memcmp (d, "II*\0", 4) == 0 || memcmp (d, "MM\0*", 4) == 0)
        return "image/tiff";
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
        snprintf (err, errlen, "not a supported image (JPEG, PNG, WebP, GIF, TIFF, HEIC, AVIF): it looks like %s",
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
