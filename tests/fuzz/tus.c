/*  tests/fuzz/tus.c: the tus request headers (gateway/tus.c, through
    gateway/tus_parse.h).

    The input is three header values, one a line: Upload-Metadata,
    Upload-Checksum, then one of the sizes (Upload-Length, Upload-Offset,
    Content-Length); a header the input does not reach is absent. HTTP
    header values hold neither line ends nor NULs, so nothing is lost by
    the split. Checked: a refusal says why; metadata fills its fields
    within their bounds, the file name cleaned as rp_gw_sanitize_filename
    promises (valid UTF-8, no control characters, no path, at most 255
    bytes); a checksum is sha1 or sha256 with a digest of that size; a
    size is a whole number.

    Seeds: tests/fuzz/corpus/tus (what tus-js-client and the tus test
    suite send, and broken ones); dictionary: tests/fuzz/tus.dict.
*/
#include "engine/utf8.h"
#include "gateway/tus_parse.h"
#include "tests/fuzz/fuzz.h"

//  The next line of the input, or NULL (absent) when it is spent.
static char *
s_header (rp_fuzz_in_t *in, bool *spent)
{
    if (*spent)
        return NULL;
    if (!in->size)
        *spent = true;
    return rp_fuzz_string_until (in, '\n');
}

static void
s_check_metadata (const char *text)
{
    rp_tus_metadata_t meta;
    char why [256] = "";
    if (rp_tus_parse_metadata (text, &meta, why, sizeof why)) {
        RP_FUZZ_CHECK (why [0], "metadata refused without a reason");
        return;
    }
    RP_FUZZ_CHECK (strnlen (meta.filename, sizeof meta.filename) < sizeof meta.filename, "filename unterminated");
    RP_FUZZ_CHECK (strnlen (meta.batch_id, sizeof meta.batch_id) < sizeof meta.batch_id, "batch_id unterminated");
    RP_FUZZ_CHECK (strnlen (meta.tags, sizeof meta.tags) < sizeof meta.tags, "tags unterminated");
    size_t len = strlen (meta.filename);
    RP_FUZZ_CHECK (rp_utf8_valid (meta.filename, len), "the file name is not valid UTF-8");
    RP_FUZZ_CHECK (len <= RP_GW_FILENAME_MAX, "a file name of %zu bytes", len);
    RP_FUZZ_CHECK (!strpbrk (meta.filename, "/\\\"\x7f"), "the file name keeps a path or a quote: %s", meta.filename);
    for (size_t i = 0; i < len; i++)
        RP_FUZZ_CHECK ((unsigned char) meta.filename [i] >= 0x20, "a control character in the file name");
    RP_FUZZ_CHECK (meta.filename [0] != '.' && meta.filename [0] != ' ', "the file name starts with a dot or space");
}

static void
s_check_checksum (const char *text)
{
    const EVP_MD *md = NULL;
    unsigned char expected [EVP_MAX_MD_SIZE];
    size_t expected_len = 0;
    char why [256] = "";
    int rc = rp_tus_parse_checksum (text, &md, expected, &expected_len, why, sizeof why);
    RP_FUZZ_CHECK (rc == 1 ? text == NULL : text != NULL, "rc %d for %s header", rc, text ? "a" : "no");
    if (rc < 0)
        RP_FUZZ_CHECK (why [0], "checksum refused without a reason");
    if (rc == 0) {
        RP_FUZZ_CHECK (md == EVP_sha1 () || md == EVP_sha256 (), "an algorithm neither sha1 nor sha256");
        RP_FUZZ_CHECK (expected_len == (size_t) EVP_MD_get_size (md), "a digest of %zu bytes", expected_len);
    }
}

static void
s_check_size (const char *text)
{
    int64_t value = -7;
    if (rp_tus_parse_size (text, &value))
        RP_FUZZ_CHECK (value >= 0 && text && *text, "%s read as %lld", text ? text : "(none)", (long long) value);
    else
        RP_FUZZ_CHECK (value == -7, "a refused size changed its output");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    rp_fuzz_in_t in = rp_fuzz_in (data, size);
    bool spent = false;
    char *metadata = s_header (&in, &spent);
    char *checksum = s_header (&in, &spent);
    char *length = s_header (&in, &spent);
    s_check_metadata (metadata);
    s_check_checksum (checksum);
    s_check_size (length);
    free (metadata);
    free (checksum);
    free (length);
    return 0;
}
