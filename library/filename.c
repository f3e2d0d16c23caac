/*  library/filename.c: see filename.h. */
#include "library/filename.h"
#include "engine/utf8.h"

#include <stdio.h>
#include <string.h>

void
rp_filename_clean (const char *name, size_t len, char *out, size_t outlen)
{
    size_t cap = outlen - 1 < RP_FILENAME_MAX ? outlen - 1 : RP_FILENAME_MAX;
    //  The last path part, whichever separator the client used
    size_t start = 0;
    for (size_t i = 0; i < len; i++)
        if (name [i] == '/' || name [i] == '\\')
            start = i + 1;
    size_t o = 0;
    for (size_t i = start; i < len && name [i];) {
        unsigned char ch = (unsigned char) name [i];
        //  Text as the database takes it: each byte of anything else
        //  (overlong forms, surrogates, past U+10FFFF) becomes "_"
        size_t n = rp_utf8_char (name + i, len - i);
        if (n == 0) {
            if (o + 1 > cap)
                break;
            out [o++] = '_';
            i++;
            continue;
        }
        if (n == 1 && (ch < 0x20 || ch == 0x7F || ch == '"')) {
            i++;                        //  control characters (and quotes) go
            continue;
        }
        if (o + n > cap)
            break;
        memcpy (out + o, name + i, n);
        o += n;
        i += n;
    }
    out [o] = 0;
    //  No leading dots or spaces (hidden files, "..") and no trailing spaces
    size_t lead = strspn (out, ". ");
    if (lead)
        memmove (out, out + lead, strlen (out + lead) + 1);
    size_t end = strlen (out);
    while (end && (out [end - 1] == ' ' || out [end - 1] == '.'))
        out [--end] = 0;
    if (!*out)
        snprintf (out, outlen, "upload");
}
