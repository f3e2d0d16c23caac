/*  engine/thumbhash.h: ThumbHash placeholders, and their base64 form.

    A ThumbHash (Evan Wallace's) is a 5 to 25 byte summary of a small
    picture that a client paints at once, blurred, while the thumbnail
    loads. rp_thumbhash_encode is the reference encoder (npm `thumbhash`,
    rgbaToThumbHash) written again in C: the same double arithmetic in the
    same order and JavaScript's Math.round, so that on the same RGBA input
    it gives the same bytes (tests/thumbhash checks it over the corpus).
*/
#ifndef RP_THUMBHASH_H
#define RP_THUMBHASH_H

#include <stdbool.h>
#include <stddef.h>

//  The most bytes a hash takes (25 are made; room to spare), its base64
//  text with padding, and the input's largest side
#define RP_THUMBHASH_MAX        32
#define RP_THUMBHASH_B64_MAX    ((RP_THUMBHASH_MAX + 2) / 3 * 4)
#define RP_THUMBHASH_SIDE_MAX   100

//  The hash of a w x h picture, rgba row by row, 4 bytes a pixel, not
//  premultiplied, into out; *len gets its length. 0, or -1 when w or h is
//  not within 1..RP_THUMBHASH_SIDE_MAX or memory ran out (then out is
//  untouched).
int rp_thumbhash_encode (int w, int h, const unsigned char *rgba,
                         unsigned char out [RP_THUMBHASH_MAX], size_t *len);

//  len bytes as standard base64 (A-Z a-z 0-9 + /, '=' padding) and a NUL
//  into out, which holds at least RP_THUMBHASH_B64_MAX + 1 bytes. 0, or -1
//  when len is over RP_THUMBHASH_MAX.
int rp_thumbhash_base64 (const unsigned char *in, size_t len, char *out, size_t outlen);

//  True when text (len bytes) is a hash as we store it: standard base64
//  with padding of 5 to RP_THUMBHASH_MAX bytes, nothing else.
bool rp_thumbhash_valid (const char *text, size_t len);

#endif
