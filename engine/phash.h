/*  engine/phash.h: a 64-bit perceptual hash of a photo, and the Hamming
    distance search over it.

    The hash is the DCT pHash: the photo in greyscale at 32x32 pixels, its
    2-D DCT-II, the 64 lowest-frequency coefficients after the DC term
    (zigzag order, as JPEG walks them: the top-left 8x8 without the DC,
    and the first coefficient of the next diagonal), one bit per
    coefficient: 1 when it is above their median. A coefficient smaller
    than RP_PHASH_FLOOR (a pattern of one grey level) is noise and counts
    as 0, so a flat frame hashes to 0 however it was recompressed.
    Resizing, recompressing, converting between formats and stripping
    metadata move few bits; a different photo differs in about half.

    Search (multi-index hashing with prefixes that widen with the
    library): bits 63..1 are cut into RP_PHASH_BANDS bands of
    RP_PHASH_BAND_BITS bits, each stored in its own indexed column (bit 0
    is not indexed). With radii r_0..r_{k-1} whose sum is d - k + 1, two
    hashes at distance d agree to within r_i bits in some band i
    (pigeonhole: every band at r_i + 1 or more makes d + 1 or more), and
    that holds as well for the first w bits of each band. So a search
    looks up, in each band, the ranges of values whose first w bits are
    within r_i of the query's, w about log2 of the library's size (each
    range then holds about one hash), and checks those candidates with a
    popcount: the ranges grow as (log N)^3, not as N.
*/
#ifndef RP_PHASH_H
#define RP_PHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_PHASH_SIDE  32           //  the greyscale image the DCT reads, pixels square
#define RP_PHASH_BANDS 3            //  bands, each an indexed column
#define RP_PHASH_BAND_BITS 21       //  bits 63..43, 42..22, 21..1
#define RP_PHASH_WIDTH_MIN 4        //  the narrowest prefix searched
#define RP_PHASH_FLOOR 256.0        //  a coefficient below it is 0 (see rp_phash_grey)
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

//  The largest distance a search takes: every band's radius at most 3.
#define RP_PHASH_DISTANCE_MAX (4 * RP_PHASH_BANDS - 1)

//  Band `band` (0 = the highest RP_PHASH_BAND_BITS bits) of a hash.
unsigned rp_phash_band (uint64_t hash, int band);

//  The radius band `band` is searched within, for distance d: the radii
//  of the bands add up to d - RP_PHASH_BANDS + 1 (for 10: 2, 3, 3); -1
//  when the band need not be searched at all.
int rp_phash_band_radius (int distance, int band);

//  The prefix width (bits of each band) to search a library of about
//  `library` hashes with: ceil (log2 (library)), within
//  RP_PHASH_WIDTH_MIN..RP_PHASH_BAND_BITS.
int rp_phash_query_width (double library);

//  The ranges of band values whose first `width` bits are within Hamming
//  distance `radius` of `value`'s: their low ends, as decimal numbers
//  separated by commas, into out (outlen bytes); each range is
//  2^(RP_PHASH_BAND_BITS - width) values long. Returns how many ranges
//  (0 and an empty list for radius -1), or -1 when radius is out of
//  -1..3, width out of 1..RP_PHASH_BAND_BITS, or out is too small.
int rp_phash_band_ranges (unsigned value, int width, int radius, char *out, size_t outlen);

#endif
