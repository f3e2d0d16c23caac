/*  engine/hex.c: see hex.h. */
#include "engine/hex.h"

void
rp_hex_encode (const unsigned char *in, size_t len, char *out)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out [2 * i] = digits [in [i] >> 4];
        out [2 * i + 1] = digits [in [i] & 15];
    }
    out [2 * len] = 0;
}

//  A lowercase hex digit's value, or -1.
static int
s_digit (char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int
rp_hex_decode (const char *text, size_t len, unsigned char *out, size_t outmax, size_t *outlen)
{
    if (len == 0 || len % 2 || len / 2 > outmax)
        return -1;
    for (size_t i = 0; i < len; i += 2) {
        int high = s_digit (text [i]), low = s_digit (text [i + 1]);
        if (high < 0 || low < 0)
            return -1;
        out [i / 2] = (unsigned char) (high * 16 + low);
    }
    *outlen = len / 2;
    return 0;
}
