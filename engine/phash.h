/*  engine/phash.h: a 64-bit perceptual hash of a photo, and the Hamming
    distance search over it.

    The hash is the DCT pHash: the photo in greyscale at 32x32 pixels, its
    2-D DCT-II, the 64 lowest-frequency coefficients after the DC term
    (zigzag order, as JPEG walks them: the top-left 8x8 without the DC,
    and the first coefficient of the next diagonal), one bit per
    coefficient: 1 when it is above their median. Resizing, recompressing,
    converting between formats and stripping metadata move few bits; a
    different photo differs in about half of them.

    Search (multi-index hashing): the 64 bits are cut into RP_PHASH_BANDS
    bands of 16 bits, each stored in its own indexed column. Two hashes at
    distance d differ in at most floor (d / RP_PHASH_BANDS) bits of at
    least one band (pigeonhole), so every hash within d is found by
    looking up, in each band, the values within that radius of the
    query's band; the candidates are then checked with a popcount.
*/
#ifndef RP_PHASH_H
#define RP_PHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_PHASH_SIDE  32           //  the greyscale image the DCT reads, pixels square
#define RP_PHASH_BANDS 4            //  16-bit bands, each an indexed column
#define RP_PHASH_BAND_BITS 16
//  The largest distance called similar. Measured on photos made from the
//  corpus (bench/phash_matrix.sh, README "Near-duplicates"): see there.
#define RP_PHASH_THRESHOLD 10

//  The hash of a RP_PHASH_SIDE x RP_PHASH_SIDE greyscale image (row-major,
//  any scale).
uint64_t rp_phash_grey (const double grey [RP_PHASH_SIDE * RP_PHASH_SIDE]);

//  The hash of 8-bit pixels, RP_PHASH_SIDE x RP_PHASH_SIDE, with `bands`
//  channels each: 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA); alpha
//  is flattened onto white, as the JPEG derivatives are. 0, or -1 when
//  bands is none of those.
int rp_phash_pixels (const unsigned char *pixels, int bands, uint64_t *hash);

//  How many bits differ.
int rp_phash_distance (uint64_t a, uint64_t b);

//  As 16 lowercase hex characters and a NUL.
void rp_phash_hex (uint64_t hash, char out [17]);

//  16 lowercase hex characters into *hash; 0, or -1 when text is not that.
int rp_phash_parse (const char *text, uint64_t *hash);

//  Band `band` (0 = the highest 16 bits) of a hash.
unsigned rp_phash_band (uint64_t hash, int band);

//  The largest radius each band is searched within, for distance d.
int rp_phash_band_radius (int distance);

//  Every 16-bit value within Hamming distance `radius` of `value`, as
//  decimal numbers separated by commas, into out (outlen bytes). Returns
//  how many values, or -1 when radius is out of 0..3 or out is too small.
int rp_phash_band_values (unsigned value, int radius, char *out, size_t outlen);

#endif
