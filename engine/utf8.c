/*  engine/utf8.c: see utf8.h. */
#include "engine/utf8.h"

#include <stdint.h>

size_t
rp_utf8_char (const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *) s;
    if (len == 0 || u [0] == 0)
        return 0;
    if (u [0] < 0x80)
        return 1;
    size_t more;
    uint32_t cp;
    if ((u [0] & 0xE0) == 0xC0)      { more = 1; cp = u [0] & 0x1F; }
    else if ((u [0] & 0xF0) == 0xE0) { more = 2; cp = u [0] & 0x0F; }
    else if ((u [0] & 0xF8) == 0xF0) { more = 3; cp = u [0] & 0x07; }
    else
        return 0;
    if (more >= len)
        return 0;
    for (size_t k = 1; k <= more; k++) {
        if ((u [k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (u [k] & 0x3F);
    }
    //  Overlong forms, surrogates, beyond U+10FFFF
    if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000)
    ||  (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return more + 1;
}

bool
rp_utf8_valid (const char *text, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = rp_utf8_char (text + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}
