/*  actors/exif/exif.c: see exif.h.

    DESIGN
    rp_exif_read is a plain function the EXIF worker calls on its own thread;
    several workers run it at once. rp_exif_read_buffer runs steps 2-4 on
    bytes already in memory (the fuzz target's way in), with the same result. It keeps no state between calls: every
    buffer, VipsImage, ExifData and digest context it makes is released
    before it returns. It needs vips_init () to have run once (main does it)
    and, like every libvips user, the calling thread should call
    vips_thread_shutdown () when it exits.

    Steps:
    1. Read the whole file into memory, refusing files over max_bytes
       (nothing is allocated past the limit) and anything that is not a
       regular file.
    2. SHA-256 of the bytes (OpenSSL EVP), type by magic bytes (rp_sniff).
       A file that is not an accepted image gets nulls everywhere else: it
       is never handed to a decoder.
    3. Header-only load with the one libvips loader that matches the sniffed
       type (never vips' own content guessing, which sends HTML to the SVG
       loader). The operation is built outside the libvips operation cache,
       so no cache entry outlives our buffer. Header reads decode no pixels,
       so decompression bombs cost nothing here.
    4. EXIF with libexif, with EXIF_DATA_OPTION_FOLLOW_SPECIFICATION off:
       we want what the file says, not entries libexif would invent.
       JPEG: the first APP1 "Exif" segment, found by walking the markers
       ourselves, so files libvips cannot decode (no image data, two SOIs)
       still give their EXIF. Other types: libvips' "exif-data" blob (HEIF,
       AVIF, PNG eXIf, WebP EXIF). TIFF: libvips has no blob for it, so the
       file itself is given to libexif as the TIFF block; libexif only sees
       its first 64 KiB, so a TIFF whose IFD0 lies further (the corpus's
       16-bit TIFF) gives only the Orientation libvips read from the header.

    5. Camera RAW (DNG, CR2, ORF, RW2: library/sniff.h): the TIFF-based
       ones (DNG, CR2) go to libexif as a TIFF block, as a TIFF does, so a
       phone's DNG gives the very same values, strings and taken_at (with
       its offset) as its JPEG would. libexif stops at 64 KiB and knows no
       ORF/RW2 header, and some RAWs keep their tags where libexif does not
       look (TIFF/EP: in IFD0), so every field still null is then filled
       from what LibRaw parsed (libraw_open_buffer: metadata only, no
       samples): idata make/model (LibRaw's normalised names, "Nikon" for
       "NIKON CORPORATION"), lens.Lens, other.shutter/aperture/iso_speed/
       focal_len, other.timestamp (LibRaw reads the date as local time;
       given back the same way, without an offset) and other.parsed_gps.
       width/height are LibRaw's output size (the raw image's, not the
       embedded preview's that IFD0 may describe); the orientation is
       IFD0's tag, else LibRaw's flip. A RAW LibRaw cannot open keeps
       whatever libexif read (the resize actor fails it, naming LibRaw).

    Failures (-1, reason in err, *result untouched): the file cannot be
    read, is not a regular file, or is over max_bytes; and, never caused by
    the file's content, max_bytes <= 0, a failing digest or no memory.
    Anything wrong inside the file gives nulls, never -1.

    Decisions a caller can rely on:
    - exif.orientation is the EXIF Orientation tag of IFD0: null when
      absent, 1 when present but outside 1..8 (0 means "undefined"; we
      treat it as upright, as viewers do). For HEIF/AVIF it is reported as
      the file says, but libvips (libheif) has already applied the
      container's irot/imir transforms, so it must not be applied again.
    - width/height are the size as displayed: libvips' header size, swapped
      for orientations 5..8, except for HEIF/AVIF where libvips' size is
      already the displayed one. When the header cannot be read, the EXIF
      PixelXDimension/PixelYDimension (swapped the same way), else null.
    - Every rational with a zero denominator, and every non-finite number,
      is null. GPS is null unless both latitude and longitude are complete
      and within range; a missing N/S or E/W reference counts as N or E.
    - Strings are cut at the first NUL, made valid UTF-8 (invalid bytes and
      control characters become U+FFFD), trimmed of spaces, bounded to
      RP_EXIF_STRING_MAX bytes, and null when empty.
    - taken_at is the first well-formed of DateTimeOriginal,
      DateTimeDigitized, DateTime ("YYYY:MM:DD HH:MM:SS", a real calendar
      date; all-zero or blank values are not), as "YYYY-MM-DDTHH:MM:SS",
      followed by the matching offset tag (OffsetTimeOriginal,
      OffsetTimeDigitized, OffsetTime; OffsetTime also serves the first two
      when they are missing) when it is a well-formed "+HH:MM".
    - rp_exif_read_timed's timings are {"read_ms","hash_ms","exif_ms"}:
      milliseconds spent reading the file, computing its SHA-256, and on
      everything after (type, header, EXIF, the JSON). The EXIF worker adds
      them to its result as "timings", for the stage breakdown of bench/.
*/
#include "actors/exif/exif.h"
#include "engine/clock.h"
#include "engine/hex.h"
#include "engine/log.h"
#include "library/sniff.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libexif/exif-data.h>
#include <libexif/exif-log.h>
#include <libraw/libraw.h>
#include <openssl/evp.h>
#include <vips/vips.h>

//  Longest string we put in the JSON, in bytes of UTF-8.
#define RP_EXIF_STRING_MAX 256

//  libexif reads at most this much of an EXIF block (it caps offsets to the
//  size of one JPEG APP1 segment).
#define S_EXIF_BLOCK_MAX 0xFFFE

static const unsigned char s_exif_header [6] = { 'E', 'x', 'i', 'f', 0, 0 };


//  --------------------------------------------------------------------------
//  Reading the file

//  Thread-safe strerror into buf.
static void
s_strerror (int errnum, char *buf, size_t len)
{
#if defined (_GNU_SOURCE)
    const char *text = strerror_r (errnum, buf, len);
    if (text != buf)
        snprintf (buf, len, "%s", text);
#else
    if (strerror_r (errnum, buf, len) != 0)
        snprintf (buf, len, "error %d", errnum);
#endif
}

//  Read src into a new buffer (caller frees *data). On error returns -1 with
//  the reason in err and *data untouched.
static int
s_read_file (const char *src, int64_t max_bytes, unsigned char **data, size_t *size,
             char *err, size_t errlen)
{
    char why [128];
    int fd = open (src, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        s_strerror (errno, why, sizeof why);
        snprintf (err, errlen, "cannot read file: %s", why);
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st) != 0) {
        s_strerror (errno, why, sizeof why);
        snprintf (err, errlen, "cannot read file: %s", why);
        close (fd);
        return -1;
    }
    if (S_ISDIR (st.st_mode)) {
        snprintf (err, errlen, "cannot read file: %s", "Is a directory");
        close (fd);
        return -1;
    }
    //  A FIFO or device could block or never end: only regular files
    if (!S_ISREG (st.st_mode)) {
        snprintf (err, errlen, "cannot read file: not a regular file");
        close (fd);
        return -1;
    }
    if ((int64_t) st.st_size > max_bytes) {
        snprintf (err, errlen, "file is larger than the limit (%lld > %lld bytes)",
                  (long long) st.st_size, (long long) max_bytes);
        close (fd);
        return -1;
    }
    size_t want = (size_t) st.st_size;
    unsigned char *buf = malloc (want ? want : 1);
    if (!buf) {
        snprintf (err, errlen, "cannot read file: out of memory");
        close (fd);
        return -1;
    }
    //  If the file shrinks while we read, we keep what was there; if it
    //  grows, we stop at the size we checked against the limit.
    size_t have = 0;
    while (have < want) {
        ssize_t n = read (fd, buf + have, want - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            s_strerror (errno, why, sizeof why);
            snprintf (err, errlen, "cannot read file: %s", why);
            free (buf);
            close (fd);
            return -1;
        }
        if (n == 0)
            break;
        have += (size_t) n;
    }
    close (fd);
    *data = buf;
    *size = have;
    return 0;
}

//  Lowercase hex SHA-256 of data into hex (65 bytes). 0 or -1.
static int
s_sha256_hex (const unsigned char *data, size_t size, char hex [65])
{
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    if (!ctx)
        return -1;
    int ok = EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL)
          && EVP_DigestUpdate (ctx, data, size)
          && EVP_DigestFinal_ex (ctx, md, &mdlen)
          && mdlen == 32;
    EVP_MD_CTX_free (ctx);
    if (!ok)
        return -1;
    rp_hex_encode (md, mdlen, hex);
    return 0;
}


//  --------------------------------------------------------------------------
//  Finding the EXIF block

//  The payload of the first APP1 segment that starts with "Exif\0\0", or
//  NULL. A segment cut short by the end of the file gives what is there.
//  Stops at the start of scan data: EXIF after it is not EXIF.
static const unsigned char *
s_jpeg_find_exif (const unsigned char *d, size_t n, size_t *len)
{
    if (n < 4 || d [0] != 0xFF || d [1] != 0xD8)
        return NULL;
    size_t i = 2;
    while (i + 2 <= n) {
        if (d [i] != 0xFF)
            return NULL;                //  lost sync: not a marker
        unsigned char marker = d [i + 1];
        if (marker == 0xFF) {           //  fill byte before a marker
            i++;
            continue;
        }
        //  Markers without a length (a second SOI occurs in the wild)
        if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
            i += 2;
            continue;
        }
        if (marker == 0xD9 || marker == 0xDA)
            return NULL;                //  EOI or start of scan
        if (i + 4 > n)
            return NULL;
        size_t seglen = ((size_t) d [i + 2] << 8) | d [i + 3];
        if (seglen < 2)
            return NULL;
        size_t start = i + 4;
        size_t avail = n - start;
        size_t body = seglen - 2;
        if (marker == 0xE1 && body >= sizeof s_exif_header && avail >= sizeof s_exif_header
        &&  memcmp (d + start, s_exif_header, sizeof s_exif_header) == 0) {
            *len = body < avail ? body : avail;
            return d + start;
        }
        if (body > avail)
            return NULL;
        i = start + body;
    }
    return NULL;
}

//  Counts libexif's complaints about the data, for the log line.
static void
s_exif_log_func (ExifLog *log, ExifLogCode code, const char *domain,
                 const char *format, va_list args, void *data)
{
    if (code == EXIF_LOG_CODE_CORRUPT_DATA || code == EXIF_LOG_CODE_NO_MEMORY)
        (*(int *) data)++;
}

//  Parse an EXIF block: "Exif\0\0" then a TIFF header, or a bare TIFF
//  header. Returns new ExifData (caller unrefs) or NULL when the block
//  gives no entries at all.
static ExifData *
s_exif_parse (const unsigned char *block, size_t len, int *warnings)
{
    if (!block || len < 8)
        return NULL;
    //  Some writers put a 4-byte offset before the header (HEIF's Exif item)
    if (len >= 14 && memcmp (block, s_exif_header, 6) != 0
    &&  memcmp (block + 4, s_exif_header, 6) == 0) {
        block += 4;
        len -= 4;
    }
    unsigned char *copy = NULL;
    if (memcmp (block, s_exif_header, 6) != 0) {
        if (memcmp (block, "II*\0", 4) != 0 && memcmp (block, "MM\0*", 4) != 0)
            return NULL;
        //  Bare TIFF: libexif wants the "Exif\0\0" prefix. It reads no
        //  further than S_EXIF_BLOCK_MAX anyway, so the copy is bounded.
        size_t take = len < S_EXIF_BLOCK_MAX - 6 ? len : S_EXIF_BLOCK_MAX - 6;
        copy = malloc (take + 6);
        if (!copy)
            return NULL;
        memcpy (copy, s_exif_header, 6);
        memcpy (copy + 6, block, take);
        block = copy;
        len = take + 6;
    }
    ExifData *ed = exif_data_new ();
    ExifLog *log = exif_log_new ();
    if (!ed || !log) {
        if (ed)
            exif_data_unref (ed);
        if (log)
            exif_log_unref (log);
        free (copy);
        return NULL;
    }
    exif_log_set_func (log, s_exif_log_func, warnings);
    exif_data_log (ed, log);
    exif_data_unset_option (ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_unset_option (ed, EXIF_DATA_OPTION_IGNORE_UNKNOWN_TAGS);
    exif_data_load_data (ed, block, len > UINT_MAX ? UINT_MAX : (unsigned int) len);
    //  Only loading logs. The maker-note reader may keep a reference to the
    //  log, but the counter it writes to lives in rp_exif_read's frame,
    //  which outlives ed.
    exif_data_log (ed, NULL);
    exif_log_unref (log);
    free (copy);
    unsigned int entries = 0;
    for (int i = 0; i < EXIF_IFD_COUNT; i++)
        entries += ed->ifd [i] ? ed->ifd [i]->count : 0;
    if (entries == 0) {
        exif_data_unref (ed);
        return NULL;
    }
    return ed;
}


//  --------------------------------------------------------------------------
//  Header-only load with libvips

//  libvips' pending error messages (shared by all threads, so this also
//  clears other threads' messages) as one line for the log.
static void
s_vips_error (char *buf, size_t size)
{
    char *text = vips_error_buffer_copy ();
    snprintf (buf, size, "%s", text ? text : "");
    g_free (text);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    size_t len = strlen (buf);
    while (len > 0 && buf [len - 1] == ' ')
        buf [--len] = 0;
}

//  The libvips loader for an accepted type, or NULL.
static const char *
s_loader_for (const char *mime)
{
    if (!mime)
        return NULL;
    if (strcmp (mime, "image/jpeg") == 0) return "jpegload_buffer";
    if (strcmp (mime, "image/png") == 0)  return "pngload_buffer";
    if (strcmp (mime, "image/webp") == 0) return "webpload_buffer";
    if (strcmp (mime, "image/gif") == 0)  return "gifload_buffer";
    if (strcmp (mime, "image/tiff") == 0) return "tiffload_buffer";
    if (strcmp (mime, "image/heic") == 0 || strcmp (mime, "image/avif") == 0)
        return "heifload_buffer";
    return NULL;
}

static bool
s_is_heif (const char *mime)
{
    return mime && (strcmp (mime, "image/heic") == 0 || strcmp (mime, "image/avif") == 0);
}

//  Read the header of data (which must outlive the image) with the given
//  loader. Returns a new image (caller unrefs) or NULL with libvips' reason
//  in why. No pixels are decoded. The operation bypasses the libvips cache.
static VipsImage *
s_vips_header (const unsigned char *data, size_t size, const char *loader,
               char *why, size_t whylen)
{
    if (!loader || size == 0) {
        snprintf (why, whylen, "%s", size ? "not an accepted image" : "empty file");
        return NULL;
    }
    VipsOperation *op = vips_operation_new (loader);
    if (!op) {
        s_vips_error (why, whylen);
        return NULL;
    }
    VipsBlob *blob = vips_blob_new (NULL, data, size);
    int rc = vips_object_set (VIPS_OBJECT (op),
                              "buffer", blob,
                              "access", VIPS_ACCESS_SEQUENTIAL,
                              //  Only the header is read: be lenient, the
                              //  resize actor decides what is too broken
                              "fail_on", VIPS_FAIL_ON_NONE,
                              NULL);
    vips_area_unref (VIPS_AREA (blob));
    VipsImage *out = NULL;
    if (rc == 0 && vips_object_build (VIPS_OBJECT (op)) == 0)
        g_object_get (op, "out", &out, NULL);
    else {
        s_vips_error (why, whylen);
        if (!*why)
            snprintf (why, whylen, "%s failed", loader);
    }
    vips_object_unref_outputs (VIPS_OBJECT (op));
    g_object_unref (op);
    return out;
}


//  --------------------------------------------------------------------------
//  Reading values from entries. Every reader checks format, component
//  count and size, so a malformed entry gives "absent", never a read past
//  its data.

static ExifEntry *
s_entry (ExifData *ed, ExifIfd ifd, ExifTag tag)
{
    if (!ed || !ed->ifd [ifd])
        return NULL;
    ExifEntry *e = exif_content_get_entry (ed->ifd [ifd], tag);
    if (!e || !e->data || e->components == 0)
        return NULL;
    size_t unit = exif_format_get_size (e->format);
    if (unit == 0 || e->size / unit < e->components)
        return NULL;
    return e;
}

//  Component idx of an integer-valued entry. 0 or -1.
static int
s_integer (ExifEntry *e, ExifByteOrder order, unsigned long idx, long long *value)
{
    if (!e || idx >= e->components)
        return -1;
    const unsigned char *p = e->data + idx * exif_format_get_size (e->format);
    switch (e->format) {
        case EXIF_FORMAT_BYTE:
            *value = p [0];
            return 0;
        case EXIF_FORMAT_SBYTE:
            *value = (signed char) p [0];
            return 0;
        case EXIF_FORMAT_SHORT:
            *value = exif_get_short (p, order);
            return 0;
        case EXIF_FORMAT_SSHORT:
            *value = exif_get_sshort (p, order);
            return 0;
        case EXIF_FORMAT_LONG:
            *value = exif_get_long (p, order);
            return 0;
        case EXIF_FORMAT_SLONG:
            *value = exif_get_slong (p, order);
            return 0;
        default:
            return -1;
    }
}

//  Component idx of a rational (or, leniently, integer) entry as a finite
//  double. -1 on a zero denominator.
static int
s_number (ExifEntry *e, ExifByteOrder order, unsigned long idx, double *value)
{
    if (!e || idx >= e->components)
        return -1;
    const unsigned char *p = e->data + idx * exif_format_get_size (e->format);
    double v;
    if (e->format == EXIF_FORMAT_RATIONAL) {
        ExifRational r = exif_get_rational (p, order);
        if (r.denominator == 0)
            return -1;
        v = (double) r.numerator / (double) r.denominator;
    }
    else
    if (e->format == EXIF_FORMAT_SRATIONAL) {
        ExifSRational r = exif_get_srational (p, order);
        if (r.denominator == 0)
            return -1;
        v = (double) r.numerator / (double) r.denominator;
    }
    else {
        long long i;
        if (s_integer (e, order, idx, &i))
            return -1;
        v = (double) i;
    }
    if (!isfinite (v))
        return -1;
    *value = v;
    return 0;
}

//  Length of one valid UTF-8 character at s (n bytes left), or 0 when the
//  bytes there are not one (RFC 3629: no overlongs, no surrogates, max
//  U+10FFFF).
static size_t
s_utf8_char (const unsigned char *s, size_t n)
{
    unsigned char c = s [0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else
    if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    }
    else
    if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    }
    else
        return 0;
    if (n < len)
        return 0;
    if (s [1] < lo || s [1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s [k] < 0x80 || s [k] > 0xBF)
            return 0;
    return len;
}

//  Make raw bytes into a trimmed, valid, bounded UTF-8 string in out (at
//  least RP_EXIF_STRING_MAX + 1 bytes). Returns its length (0: nothing
//  left). Stops at the first NUL.
static size_t
s_clean_string (const unsigned char *raw, size_t n, char *out)
{
    static const char replacement [] = "\xEF\xBF\xBD";     //  U+FFFD
    const unsigned char *nul = memchr (raw, 0, n);
    if (nul)
        n = (size_t) (nul - raw);
    size_t i = 0, o = 0;
    while (i < n && raw [i] == ' ')                         //  leading spaces
        i++;
    while (i < n) {
        size_t len = s_utf8_char (raw + i, n - i);
        const char *piece = (const char *) raw + i;
        size_t piece_len = len;
        if (len == 0 || (len == 1 && (raw [i] < 0x20 || raw [i] == 0x7F))) {
            piece = replacement;
            piece_len = 3;
            len = 1;
        }
        if (o + piece_len > RP_EXIF_STRING_MAX)
            break;                                          //  whole characters only
        memcpy (out + o, piece, piece_len);
        o += piece_len;
        i += len;
    }
    while (o > 0 && out [o - 1] == ' ')                     //  trailing spaces
        o--;
    out [o] = 0;
    return o;
}

//  A text entry (ASCII, or UNDEFINED/BYTE used as text) as a JSON string,
//  or NULL.
static json_t *
s_string (ExifData *ed, ExifIfd ifd, ExifTag tag)
{
    ExifEntry *e = s_entry (ed, ifd, tag);
    if (!e || (e->format != EXIF_FORMAT_ASCII && e->format != EXIF_FORMAT_UNDEFINED
           &&  e->format != EXIF_FORMAT_BYTE))
        return NULL;
    char text [RP_EXIF_STRING_MAX + 1];
    size_t len = s_clean_string (e->data, e->size, text);
    return len ? json_stringn (text, len) : NULL;
}

//  A text entry as a C string in buf (trimmed, NUL-terminated), or false.
static bool
s_text (ExifData *ed, ExifIfd ifd, ExifTag tag, char *buf, size_t size)
{
    ExifEntry *e = s_entry (ed, ifd, tag);
    if (!e || e->format != EXIF_FORMAT_ASCII || size == 0)
        return false;
    char text [RP_EXIF_STRING_MAX + 1];
    size_t len = s_clean_string (e->data, e->size, text);
    if (len == 0 || len >= size)
        return false;
    memcpy (buf, text, len + 1);
    return true;
}

static json_t *
s_real (ExifData *ed, ExifIfd ifd, ExifTag tag)
{
    if (!ed)
        return NULL;
    double v;
    ExifEntry *e = s_entry (ed, ifd, tag);
    if (!e || s_number (e, exif_data_get_byte_order (ed), 0, &v))
        return NULL;
    return json_real (v);
}


//  --------------------------------------------------------------------------
//  Fields

//  n decimal digits at s into *value, or false.
static bool
s_digits (const char *s, int n, int *value)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s [i] < '0' || s [i] > '9')
            return false;
        v = v * 10 + (s [i] - '0');
    }
    *value = v;
    return true;
}

//  "YYYY:MM:DD HH:MM:SS" into "YYYY-MM-DDTHH:MM:SS" (out: 20 bytes), or
//  false when it is not a real date and time.
static bool
s_parse_datetime (const char *s, char *out, size_t outlen)
{
    if (strlen (s) != 19)
        return false;
    int year, month, day, hour, minute, second;
    if (!s_digits (s, 4, &year) || !s_digits (s + 5, 2, &month) || !s_digits (s + 8, 2, &day)
    ||  !s_digits (s + 11, 2, &hour) || !s_digits (s + 14, 2, &minute)
    ||  !s_digits (s + 17, 2, &second))
        return false;
    //  ':' is the standard date separator; '-' and 'T' appear in the wild
    if ((s [4] != ':' && s [4] != '-') || s [7] != s [4] || (s [10] != ' ' && s [10] != 'T')
    ||  s [13] != ':' || s [16] != ':')
        return false;
    static const int days [12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days [month - 1])
        return false;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && day == 29 && !leap)
        return false;
    if (hour > 23 || minute > 59 || second > 60)
        return false;
    snprintf (out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d",
              year, month, day, hour, minute, second);
    return true;
}

//  "+HH:MM" / "-HH:MM" within +-14:00, or false.
static bool
s_valid_offset (const char *s)
{
    int hour, minute;
    if (strlen (s) != 6 || (s [0] != '+' && s [0] != '-') || s [3] != ':')
        return false;
    if (!s_digits (s + 1, 2, &hour) || !s_digits (s + 4, 2, &minute))
        return false;
    return minute <= 59 && (hour < 14 || (hour == 14 && minute == 0));
}

static json_t *
s_taken_at (ExifData *ed)
{
    if (!ed)
        return NULL;
    static const struct {
        ExifIfd ifd;
        ExifTag time;
        ExifTag offset;
    } sources [] = {
        { EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_ORIGINAL,  EXIF_TAG_OFFSET_TIME_ORIGINAL },
        { EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_DIGITIZED, EXIF_TAG_OFFSET_TIME_DIGITIZED },
        { EXIF_IFD_0,    EXIF_TAG_DATE_TIME,           EXIF_TAG_OFFSET_TIME },
    };
    char text [64], when [32], offset [16];
    for (size_t i = 0; i < sizeof sources / sizeof sources [0]; i++) {
        if (!s_text (ed, sources [i].ifd, sources [i].time, text, sizeof text)
        ||  !s_parse_datetime (text, when, sizeof when))
            continue;
        bool zoned = (s_text (ed, EXIF_IFD_EXIF, sources [i].offset, offset, sizeof offset)
                      && s_valid_offset (offset))
                  || (s_text (ed, EXIF_IFD_EXIF, EXIF_TAG_OFFSET_TIME, offset, sizeof offset)
                      && s_valid_offset (offset));
        char iso [64];
        snprintf (iso, sizeof iso, "%s%s", when, zoned ? offset : "");
        return json_string (iso);
    }
    return NULL;
}

//  deg/min/sec rationals (1 to 3 of them) and a reference letter into a
//  signed decimal, or false.
static bool
s_gps_coordinate (ExifData *ed, ExifTag tag, ExifTag ref_tag, char negative, double limit,
                  double *value)
{
    ExifByteOrder order = exif_data_get_byte_order (ed);
    ExifEntry *e = s_entry (ed, EXIF_IFD_GPS, tag);
    if (!e)
        return false;
    double parts [3] = { 0, 0, 0 };
    unsigned long count = e->components < 3 ? e->components : 3;
    for (unsigned long i = 0; i < count; i++)
        if (s_number (e, order, i, &parts [i]) || parts [i] < 0)
            return false;
    double v = parts [0] + parts [1] / 60.0 + parts [2] / 3600.0;
    char ref [8];
    if (s_text (ed, EXIF_IFD_GPS, ref_tag, ref, sizeof ref) && ref [0] == negative)
        v = -v;
    if (!isfinite (v) || fabs (v) > limit)
        return false;
    *value = v;
    return true;
}

static json_t *
s_gps (ExifData *ed)
{
    if (!ed)
        return NULL;
    double lat, lon, alt;
    if (!s_gps_coordinate (ed, EXIF_TAG_GPS_LATITUDE, EXIF_TAG_GPS_LATITUDE_REF, 'S', 90, &lat)
    ||  !s_gps_coordinate (ed, EXIF_TAG_GPS_LONGITUDE, EXIF_TAG_GPS_LONGITUDE_REF, 'W', 180, &lon))
        return NULL;
    ExifByteOrder order = exif_data_get_byte_order (ed);
    json_t *altitude = NULL;
    if (s_number (s_entry (ed, EXIF_IFD_GPS, EXIF_TAG_GPS_ALTITUDE), order, 0, &alt) == 0) {
        long long below = 0;
        //  GPSAltitudeRef 1: below sea level
        if (s_integer (s_entry (ed, EXIF_IFD_GPS, EXIF_TAG_GPS_ALTITUDE_REF), order, 0, &below) == 0
        &&  below == 1)
            alt = -alt;
        altitude = json_real (alt);
    }
    return json_pack ("{s:f, s:f, s:o}", "lat", lat, "lon", lon,
                      "alt", altitude ? altitude : json_null ());
}

//  Orientation of IFD0: 0 when absent, 1..8 otherwise (out of range: 1).
static int
s_orientation (ExifData *ed)
{
    if (!ed)
        return 0;
    long long v;
    ExifEntry *e = s_entry (ed, EXIF_IFD_0, EXIF_TAG_ORIENTATION);
    if (!e || s_integer (e, exif_data_get_byte_order (ed), 0, &v))
        return 0;
    return v >= 1 && v <= 8 ? (int) v : 1;
}

static json_t *
s_iso (ExifData *ed)
{
    if (!ed)
        return NULL;
    long long v;
    ExifByteOrder order = exif_data_get_byte_order (ed);
    if (s_integer (s_entry (ed, EXIF_IFD_EXIF, EXIF_TAG_ISO_SPEED_RATINGS), order, 0, &v))
        return NULL;
    //  65535 means "too big for a SHORT": EXIF 2.3 puts the value in ISOSpeed
    long long wide;
    if (v == 65535
    &&  s_integer (s_entry (ed, EXIF_IFD_EXIF, EXIF_TAG_ISO_SPEED), order, 0, &wide) == 0
    &&  wide > 0)
        v = wide;
    return json_integer (v);
}

//  PixelXDimension x PixelYDimension, for when the header is unreadable.
static bool
s_exif_size (ExifData *ed, long long *width, long long *height)
{
    if (!ed)
        return false;
    ExifByteOrder order = exif_data_get_byte_order (ed);
    if (s_integer (s_entry (ed, EXIF_IFD_EXIF, EXIF_TAG_PIXEL_X_DIMENSION), order, 0, width)
    ||  s_integer (s_entry (ed, EXIF_IFD_EXIF, EXIF_TAG_PIXEL_Y_DIMENSION), order, 0, height))
        return false;
    return *width > 0 && *height > 0;
}

static json_t *
s_or_null (json_t *value)
{
    return value ? value : json_null ();
}


//  --------------------------------------------------------------------------
//  Camera RAW through LibRaw (step 5 of the DESIGN)

//  What LibRaw parsed from a RAW's metadata
typedef struct {
    int width, height;          //  LibRaw's output size, stored orientation
    int orientation;            //  1..8, from LibRaw's flip
    char make [64], model [64], lens [128];
    double shutter, aperture, iso, focal;
    time_t timestamp;
    bool gps;
    double lat, lon, alt;
    bool has_alt;
} s_raw_info_t;

static void
s_raw_quiet (void *data, const char *file, const int offset)
{
    (void) data;
    (void) file;
    (void) offset;
}

//  A LibRaw char array (maybe unterminated) into out
static void
s_raw_copy (char *out, size_t outlen, const char *in, size_t inlen)
{
    size_t n = strnlen (in, inlen);
    if (n >= outlen)
        n = outlen - 1;
    memcpy (out, in, n);
    out [n] = 0;
}

//  deg/min/sec into a signed decimal within limit, or false
static bool
s_raw_coordinate (const float dms [3], char ref, char negative, double limit, double *value)
{
    if (dms [0] < 0 || dms [1] < 0 || dms [2] < 0)
        return false;
    double v = dms [0] + dms [1] / 60.0 + dms [2] / 3600.0;
    if (ref == negative)
        v = -v;
    if (!isfinite (v) || fabs (v) > limit)
        return false;
    *value = v;
    return true;
}

//  Open data with LibRaw (metadata only) into info. 0, or -1 when LibRaw
//  cannot read it.
static int
s_raw_read (const unsigned char *data, size_t size, s_raw_info_t *info)
{
    memset (info, 0, sizeof *info);
    libraw_data_t *lr = libraw_init (0);
    if (!lr)
        return -1;
    libraw_set_dataerror_handler (lr, s_raw_quiet, NULL);
    //  The buffer is only read (LibRaw's API is not const-correct)
    if (libraw_open_buffer (lr, (void *) data, size) != LIBRAW_SUCCESS) {
        libraw_close (lr);
        return -1;
    }
    static const int orientation [8] = { 1, 2, 4, 3, 5, 8, 6, 7 };     //  LibRaw's flip -> EXIF
    info->width = lr->sizes.width;
    info->height = lr->sizes.height;
    info->orientation = lr->sizes.flip >= 0 && lr->sizes.flip < 8 ? orientation [lr->sizes.flip] : 1;
    s_raw_copy (info->make, sizeof info->make, lr->idata.make, sizeof lr->idata.make);
    s_raw_copy (info->model, sizeof info->model, lr->idata.model, sizeof lr->idata.model);
    s_raw_copy (info->lens, sizeof info->lens, lr->lens.Lens, sizeof lr->lens.Lens);
    info->shutter = lr->other.shutter;
    info->aperture = lr->other.aperture;
    info->iso = lr->other.iso_speed;
    info->focal = lr->other.focal_len;
    info->timestamp = lr->other.timestamp;
    const libraw_gps_info_t *gps = &lr->other.parsed_gps;
    if (gps->gpsparsed
    &&  s_raw_coordinate (gps->latitude, gps->latref, 'S', 90, &info->lat)
    &&  s_raw_coordinate (gps->longitude, gps->longref, 'W', 180, &info->lon)) {
        info->gps = true;
        if (isfinite (gps->altitude) && gps->altitude != 0) {
            info->has_alt = true;
            info->alt = gps->altref == 1 ? -gps->altitude : gps->altitude;
        }
    }
    libraw_close (lr);
    return 0;
}

//  A cleaned LibRaw string as JSON, or NULL when empty
static json_t *
s_raw_string (const char *text)
{
    char clean [RP_EXIF_STRING_MAX + 1];
    size_t len = s_clean_string ((const unsigned char *) text, strlen (text), clean);
    return len ? json_stringn (clean, len) : NULL;
}

//  A positive finite LibRaw number as JSON, or NULL
static json_t *
s_raw_real (double v)
{
    return isfinite (v) && v > 0 ? json_real (v) : NULL;
}

//  Set exif[key] to value when it is null there and value is not NULL.
//  0, or -1 when out of memory.
static int
s_fill (json_t *object, const char *key, json_t *value)
{
    if (!value)
        return 0;
    json_t *have = json_object_get (object, key);
    if (have && !json_is_null (have)) {
        json_decref (value);
        return 0;
    }
    return json_object_set_new (object, key, value);
}

//  Fill the nulls of root and root.exif from info (step 5)
static int
s_raw_fill (json_t *root, json_t *exif, const s_raw_info_t *info)
{
    int rc = 0;
    rc |= s_fill (exif, "make", s_raw_string (info->make));
    rc |= s_fill (exif, "model", s_raw_string (info->model));
    rc |= s_fill (exif, "lens", s_raw_string (info->lens));
    rc |= s_fill (exif, "exposure_time", s_raw_real (info->shutter));
    rc |= s_fill (exif, "f_number", s_raw_real (info->aperture));
    rc |= s_fill (exif, "iso", isfinite (info->iso) && info->iso >= 1 && info->iso < 1e9
                               ? json_integer ((json_int_t) llround (info->iso)) : NULL);
    rc |= s_fill (exif, "focal_length", s_raw_real (info->focal));
    if (info->gps)
        rc |= s_fill (exif, "gps", json_pack ("{s:f, s:f, s:o}", "lat", info->lat, "lon", info->lon,
                                              "alt", info->has_alt ? json_real (info->alt) : json_null ()));
    struct tm tm;
    char when [32];
    if (info->timestamp > 0 && localtime_r (&info->timestamp, &tm)
    &&  tm.tm_year + 1900 >= 1 && tm.tm_year + 1900 <= 9999
    &&  strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm) > 0)
        rc |= s_fill (root, "taken_at", json_string (when));
    return rc ? -1 : 0;
}


//  {"read_ms","hash_ms","exif_ms"}, rounded to microseconds; NULL on no memory.
static json_t *
s_timings (double read_ms, double hash_ms, double exif_ms)
{
    return json_pack ("{s:f, s:f, s:f}",
                      "read_ms", round (read_ms * 1000.0) / 1000.0,
                      "hash_ms", round (hash_ms * 1000.0) / 1000.0,
                      "exif_ms", round (exif_ms * 1000.0) / 1000.0);
}


//  --------------------------------------------------------------------------

int
rp_exif_read (const char *src, int64_t max_bytes, json_t **result,
              char *err, size_t errlen)
{
    return rp_exif_read_timed (src, max_bytes, result, NULL, err, errlen);
}

//  Steps 2-4 on bytes in memory (borrowed; the caller frees them after):
//  what rp_exif_read_stored does once the file is read. sha256: the
//  bytes' SHA-256 when known (a store address), NULL to compute it.
//  read_ms is the time the read took, for the timings.
static int
s_read_bytes (const unsigned char *data, size_t size, const char *sha256, const char *name,
              int64_t started, double read_ms, json_t **result, json_t **timings,
              char *err, size_t errlen)
{
    double t_hash = rp_clock_ms_precise ();
    char sha [65];
    if (sha256)
        snprintf (sha, sizeof sha, "%s", sha256);       //  the store checked it
    else
    if (s_sha256_hex (data, size, sha)) {
        snprintf (err, errlen, "cannot compute SHA-256");
        rp_error ("exif", "duration=%lld file=%s %s",
                  (long long) (rp_clock_ms () - started), name, err);
        return -1;
    }
    double t_exif = rp_clock_ms_precise ();
    const char *mime = rp_sniff (data, size);

    //  Header and (for non-JPEG) the EXIF block, from libvips
    char header_error [256] = "";
    VipsImage *image = s_vips_header (data, size, s_loader_for (mime),
                                      header_error, sizeof header_error);
    int warnings = 0;
    ExifData *ed = NULL;
    if (mime && strcmp (mime, "image/jpeg") == 0) {
        size_t len = 0;
        const unsigned char *block = s_jpeg_find_exif (data, size, &len);
        ed = s_exif_parse (block, len, &warnings);
    }
    else
    if (image && vips_image_get_typeof (image, VIPS_META_EXIF_NAME)) {
        const void *block = NULL;
        size_t len = 0;
        if (vips_image_get_blob (image, VIPS_META_EXIF_NAME, &block, &len) == 0)
            ed = s_exif_parse (block, len, &warnings);
    }
    else
    if (mime && (strcmp (mime, "image/tiff") == 0 || strcmp (mime, "image/x-adobe-dng") == 0
             ||  strcmp (mime, "image/x-canon-cr2") == 0))
        ed = s_exif_parse (data, size, &warnings);
    s_raw_info_t raw;
    bool is_raw = rp_sniff_is_raw (mime) && s_raw_read (data, size, &raw) == 0;

    int orientation = s_orientation (ed);
    if (is_raw && orientation == 0)
        orientation = raw.orientation;
    //  TIFF whose IFD0 libexif could not reach: libvips read the tag
    if (orientation == 0 && image && mime && strcmp (mime, "image/tiff") == 0
    &&  vips_image_get_typeof (image, VIPS_META_ORIENTATION)) {
        int v = vips_image_get_orientation (image);
        orientation = v >= 1 && v <= 8 ? v : 1;
    }

    //  Displayed size
    long long width = 0, height = 0;
    bool sized = false;
    if (image) {
        width = vips_image_get_width (image);
        height = vips_image_get_height (image);
        sized = width > 0 && height > 0;
    }
    else
    if (is_raw && raw.width > 0 && raw.height > 0) {
        width = raw.width;
        height = raw.height;
        sized = true;
    }
    else
        sized = s_exif_size (ed, &width, &height);
    if (sized && orientation >= 5 && !(image && s_is_heif (mime))) {
        long long swap = width;
        width = height;
        height = swap;
    }
    bool image_read = image != NULL;
    if (image)
        g_object_unref (image);     //  before data: the image points into it

    json_t *exif = json_object ();
    json_t *root = json_object ();
    int rc = exif && root ? 0 : -1;
    if (exif) {
        rc |= json_object_set_new (exif, "make", s_or_null (s_string (ed, EXIF_IFD_0, EXIF_TAG_MAKE)));
        rc |= json_object_set_new (exif, "model", s_or_null (s_string (ed, EXIF_IFD_0, EXIF_TAG_MODEL)));
        rc |= json_object_set_new (exif, "lens", s_or_null (s_string (ed, EXIF_IFD_EXIF, EXIF_TAG_LENS_MODEL)));
        rc |= json_object_set_new (exif, "exposure_time", s_or_null (s_real (ed, EXIF_IFD_EXIF, EXIF_TAG_EXPOSURE_TIME)));
        rc |= json_object_set_new (exif, "f_number", s_or_null (s_real (ed, EXIF_IFD_EXIF, EXIF_TAG_FNUMBER)));
        rc |= json_object_set_new (exif, "iso", s_or_null (s_iso (ed)));
        rc |= json_object_set_new (exif, "focal_length", s_or_null (s_real (ed, EXIF_IFD_EXIF, EXIF_TAG_FOCAL_LENGTH)));
        rc |= json_object_set_new (exif, "orientation", orientation ? json_integer (orientation) : json_null ());
        rc |= json_object_set_new (exif, "gps", s_or_null (s_gps (ed)));
    }
    if (root) {
        rc |= json_object_set_new (root, "sha256", json_string (sha));
        rc |= json_object_set_new (root, "bytes", json_integer ((json_int_t) size));
        rc |= json_object_set_new (root, "content_type", mime ? json_string (mime) : json_null ());
        rc |= json_object_set_new (root, "width", sized ? json_integer (width) : json_null ());
        rc |= json_object_set_new (root, "height", sized ? json_integer (height) : json_null ());
        rc |= json_object_set_new (root, "taken_at", s_or_null (s_taken_at (ed)));
        if (exif && is_raw)
            rc |= s_raw_fill (root, exif, &raw);
        if (exif) {
            rc |= json_object_set_new (root, "exif", exif);
            exif = NULL;
        }
    }
    json_decref (exif);
    bool had_exif = ed != NULL;
    if (ed)
        exif_data_unref (ed);

    if (rc) {
        json_decref (root);
        snprintf (err, errlen, "out of memory building the result");
        return -1;
    }
    rp_debug ("exif", "duration=%lld file=%s bytes=%zu type=%s exif=%s exif_warnings=%d%s%s",
              (long long) (rp_clock_ms () - started), name, size,
              mime ? mime : "none", had_exif ? "yes" : "no", warnings,
              image_read || !mime ? "" : " header unreadable: ",
              image_read || !mime ? "" : header_error);
    if (timings)
        *timings = s_timings (read_ms, t_exif - t_hash, rp_clock_ms_precise () - t_exif);
    *result = root;
    return 0;
}

int
rp_exif_read_timed (const char *src, int64_t max_bytes, json_t **result,
                    json_t **timings, char *err, size_t errlen)
{
    return rp_exif_read_stored (src, NULL, max_bytes, result, timings, err, errlen);
}

int
rp_exif_read_stored (const char *src, const char *sha256, int64_t max_bytes, json_t **result,
                     json_t **timings, char *err, size_t errlen)
{
    assert (src);
    assert (result);
    assert (err && errlen > 0);
    int64_t started = rp_clock_ms ();
    const char *name = strrchr (src, '/') ? strrchr (src, '/') + 1 : src;

    if (max_bytes <= 0) {
        snprintf (err, errlen, "invalid size limit %lld", (long long) max_bytes);
        return -1;
    }
    double t_read = rp_clock_ms_precise ();
    unsigned char *data = NULL;
    size_t size = 0;
    if (s_read_file (src, max_bytes, &data, &size, err, errlen)) {
        rp_debug ("exif", "duration=%lld file=%s %s",
                  (long long) (rp_clock_ms () - started), name, err);
        return -1;
    }
    int rc = s_read_bytes (data, size, sha256, name, started, rp_clock_ms_precise () - t_read, result,
                           timings, err, errlen);
    free (data);
    return rc;
}

int
rp_exif_read_buffer (const unsigned char *data, size_t size, const char *name, json_t **result,
                     char *err, size_t errlen)
{
    assert (data || size == 0);
    assert (result);
    assert (err && errlen > 0);
    return s_read_bytes (data, size, NULL, name ? name : "-", rp_clock_ms (), 0, result, NULL, err, errlen);
}
