/*  engine/hex.h: bytes as lowercase hexadecimal, and back.

    The one hex codec: SHA-256 digests (blob addresses, SigV4, S3 payload
    hashes, EXIF), ids, salts and secrets are all written with it.
    Lowercase only, as everything we store and compare is.
*/
#ifndef RP_HEX_H
#define RP_HEX_H

#include <stddef.h>

//  len bytes of in as 2 * len lowercase hex characters and a NUL into out,
//  which holds at least 2 * len + 1 bytes.
void rp_hex_encode (const unsigned char *in, size_t len, char *out);

//  len hex characters of text (lowercase) into len / 2 bytes of out, which
//  holds outmax bytes; *outlen gets how many. 0, or -1 when len is 0 or
//  odd, the bytes would not fit, or a character is not lowercase hex
//  (then out is undefined and *outlen untouched).
int rp_hex_decode (const char *text, size_t len, unsigned char *out, size_t outmax, size_t *outlen);

#endif
