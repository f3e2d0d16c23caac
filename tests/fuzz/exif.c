/*  tests/fuzz/exif.c: a photo's identity and EXIF (actors/exif/exif.c).

    The input is a file's bytes, read as the EXIF worker reads a file
    (rp_exif_read_buffer: the same steps without the file): its digest, its
    type, the libvips header of that type, the EXIF block (found by our own
    JPEG marker walk, or from libvips) through libexif, and the result.
    Checked, as exif.h and the DESIGN comment promise: it never fails on
    content; the result serialises (valid UTF-8, finite numbers); bytes and
    the type are the input's; width and height are both set or both null;
    orientation is null or 1..8; GPS, when present, is in range; strings are
    at most 256 bytes; taken_at is "YYYY-MM-DDTHH:MM:SS" with an optional
    "+HH:MM".

    Seeds: the shared photo corpus (every format, malformed and adversarial
    files), given at run time; tests/fuzz/corpus/exif holds small hand-made
    ones (a minimal JPEG with an EXIF block, a bare TIFF).
*/
#include "library/sniff.h"
#include "actors/exif/exif.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_vips.h"

#include <ctype.h>
#include <math.h>

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    rp_fuzz_vips_start ((*argv) [0]);
    return 0;
}

static void
s_check_string (json_t *exif, const char *key)
{
    json_t *value = json_object_get (exif, key);
    RP_FUZZ_CHECK (json_is_null (value) || (json_is_string (value) && json_string_length (value) <= 256
                                            && json_string_length (value) > 0),
                   "exif.%s is not a short string or null", key);
}

static void
s_check_number (json_t *object, const char *key, double low, double high)
{
    json_t *value = json_object_get (object, key);
    RP_FUZZ_CHECK (json_is_null (value) || (json_is_number (value) && isfinite (json_number_value (value))
                                            && json_number_value (value) >= low
                                            && json_number_value (value) <= high),
                   "%s = %g is out of %g..%g", key, json_number_value (value), low, high);
}

static void
s_check_taken_at (json_t *value)
{
    if (json_is_null (value))
        return;
    RP_FUZZ_CHECK (json_is_string (value), "taken_at is not a string");
    const char *s = json_string_value (value);
    const char *shape = "dddd-dd-ddTdd:dd:dd";
    size_t n = strlen (shape);
    RP_FUZZ_CHECK (strlen (s) == n || strlen (s) == n + 6, "taken_at %s", s);
    for (size_t i = 0; i < strlen (s); i++) {
        char want = i < n ? shape [i] : i == n ? '?' : i == n + 3 ? ':' : 'd';
        bool ok = want == 'd' ? isdigit ((unsigned char) s [i]) != 0
                : want == '?' ? s [i] == '+' || s [i] == '-' : s [i] == want;
        RP_FUZZ_CHECK (ok, "taken_at %s at %zu", s, i);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    json_t *result = NULL;
    char err [256] = "";
    int rc = rp_exif_read_buffer (data, size, "fuzz", &result, err, sizeof err);
    RP_FUZZ_CHECK (rc == 0, "failed on content: %s", err);
    char *text = json_dumps (result, JSON_COMPACT);
    RP_FUZZ_CHECK (text, "the result does not serialise");
    free (text);

    RP_FUZZ_CHECK (json_integer_value (json_object_get (result, "bytes")) == (json_int_t) size, "bytes");
    RP_FUZZ_CHECK (strlen (json_string_value (json_object_get (result, "sha256"))) == 64, "sha256");
    const char *mime = rp_sniff (data, size);
    json_t *type = json_object_get (result, "content_type");
    RP_FUZZ_CHECK (mime ? json_is_string (type) && strcmp (json_string_value (type), mime) == 0 : json_is_null (type),
                   "content_type is not the sniffed type");
    json_t *width = json_object_get (result, "width"), *height = json_object_get (result, "height");
    RP_FUZZ_CHECK (json_is_null (width) == json_is_null (height), "one of width and height only");
    RP_FUZZ_CHECK (json_is_null (width) || (json_integer_value (width) > 0 && json_integer_value (height) > 0),
                   "a size of %lld x %lld", (long long) json_integer_value (width),
                   (long long) json_integer_value (height));
    s_check_taken_at (json_object_get (result, "taken_at"));

    json_t *exif = json_object_get (result, "exif");
    RP_FUZZ_CHECK (json_is_object (exif), "no exif object");
    const char *strings [] = { "make", "model", "lens" };
    for (size_t i = 0; i < sizeof strings / sizeof strings [0]; i++)
        s_check_string (exif, strings [i]);
    s_check_number (exif, "orientation", 1, 8);
    s_check_number (exif, "exposure_time", -INFINITY, INFINITY);
    s_check_number (exif, "f_number", -INFINITY, INFINITY);
    s_check_number (exif, "focal_length", -INFINITY, INFINITY);
    s_check_number (exif, "iso", -INFINITY, INFINITY);
    json_t *gps = json_object_get (exif, "gps");
    RP_FUZZ_CHECK (json_is_null (gps) || json_is_object (gps), "gps");
    if (json_is_object (gps)) {
        s_check_number (gps, "lat", -90, 90);
        s_check_number (gps, "lon", -180, 180);
        s_check_number (gps, "alt", -INFINITY, INFINITY);
    }
    json_decref (result);
    return 0;
}
