/*  library/filename.h: a file name as the library keeps it, from whatever
    a client or an S3 key said.

    One cleaner for every way a photo arrives: an upload's part or
    X-Filename, tus metadata, a presigned upload's declared name, and the
    last segment of an S3 import key. The photo's name is shown, offered
    back in Content-Disposition and written into logs, so it is plain: the
    last path part only (either separator), no control characters or
    quotes, valid UTF-8 (each byte of anything else becomes "_"), no
    leading dots or spaces (no hidden files, no ".."), no trailing ones,
    at most RP_FILENAME_MAX bytes cut at a character's start, never empty
    ("upload").
*/
#ifndef RP_LIBRARY_FILENAME_H
#define RP_LIBRARY_FILENAME_H

#include <stddef.h>

#define RP_FILENAME_MAX 255

//  Clean name (len bytes; stops at a NUL) into out (outlen bytes).
void rp_filename_clean (const char *name, size_t len, char *out, size_t outlen);

#endif
