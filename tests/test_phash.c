/*  tests/test_phash.c: engine/phash, the perceptual hash and its bands,
    in memory (the real path, through serve and both databases, is
    tests/test_similar.c).
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/phash.h"

Test (phash, hex_round_trip_and_refusals)
{
    char hex [17];
    uint64_t back = 0;
    rp_phash_hex (0x0123456789abcdefULL, hex);
    cr_expect_str_eq (hex, "0123456789abcdef");
    cr_expect_eq (rp_phash_parse (hex, &back), 0);
    cr_expect_eq (back, 0x0123456789abcdefULL);
    cr_expect_eq (rp_phash_parse ("0123456789ABCDEF", &back), -1, "lowercase only");
    cr_expect_eq (rp_phash_parse ("0123456789abcde", &back), -1, "16 characters");
    cr_expect_eq (rp_phash_parse ("0123456789abcdefa", &back), -1);
    cr_expect_eq (rp_phash_parse ("0123456789abcdeg", &back), -1);
    cr_expect_eq (rp_phash_parse (NULL, &back), -1);
    cr_expect_eq (rp_phash_distance (0, ~0ULL), 64);
    cr_expect_eq (rp_phash_distance (5, 6), 2);
}

Test (phash, images)
{
    static unsigned char pixels [RP_PHASH_SIDE * RP_PHASH_SIDE * 4];
    uint64_t flat = 1, gradient = 0, brighter = 0, transparent = 0;
    memset (pixels, 128, sizeof pixels);
    cr_expect_eq (rp_phash_pixels (pixels, 3, &flat), 0);
    cr_expect_eq (flat, 0, "one flat colour: every coefficient is 0, none above the median");
    cr_expect_eq (rp_phash_pixels (pixels, 5, &flat), -1);
    cr_expect_eq (rp_phash_pixels (pixels, 0, &flat), -1);
    //  A diagonal pattern, then the same brighter and with less contrast:
    //  the same hash (the DCT's AC terms only scale)
    for (int y = 0; y < RP_PHASH_SIDE; y++)
        for (int x = 0; x < RP_PHASH_SIDE; x++)
            pixels [y * RP_PHASH_SIDE + x] = (unsigned char) (x * 3 + y * 5 + (x * y) % 17);
    cr_expect_eq (rp_phash_pixels (pixels, 1, &gradient), 0);
    for (int i = 0; i < RP_PHASH_SIDE * RP_PHASH_SIDE; i++)
        pixels [i] = (unsigned char) (pixels [i] / 2 + 60);
    cr_expect_eq (rp_phash_pixels (pixels, 1, &brighter), 0);
    cr_expect_leq (rp_phash_distance (gradient, brighter), 2);
    cr_expect_eq (__builtin_popcountll (gradient), 32, "half the bits above the median");
    //  Fully transparent RGBA is white, whatever its colour
    memset (pixels, 0, sizeof pixels);
    cr_expect_eq (rp_phash_pixels (pixels, 4, &transparent), 0);
    cr_expect_eq (transparent, 0);
}

//  A flat frame with rounding noise of up to one grey level either way
//  (what recompressing a blank frame leaves) still hashes to 0
Test (phash, noisy_flat_frame_hashes_to_zero)
{
    static unsigned char pixels [RP_PHASH_SIDE * RP_PHASH_SIDE];
    srand (7);
    for (int i = 0; i < RP_PHASH_SIDE * RP_PHASH_SIDE; i++)
        pixels [i] = (unsigned char) (137 + rand () % 3 - 1);
    uint64_t hash = 1;
    cr_expect_eq (rp_phash_pixels (pixels, 1, &hash), 0);
    cr_expect_eq (hash, 0, "noise below a grey level is no signal: %016llx",
                  (unsigned long long) hash);
}

static unsigned
s_popcount (unsigned v)
{
    return (unsigned) __builtin_popcount (v);
}

//  The ranges are exactly those whose prefix is within the radius, the
//  radii add up as the pigeonhole needs, and the search they drive finds
//  every hash within the distance at every prefix width, on random
//  hashes checked against a brute-force comparison
Test (phash, bands_find_everything_within_the_threshold)
{
    static char list [16384];
    //  Radii: d - 2 in all, for 10 bits 2, 3, 3; 11 bits the most
    cr_expect_eq (rp_phash_band_radius (10, 0), 2);
    cr_expect_eq (rp_phash_band_radius (10, 1), 3);
    cr_expect_eq (rp_phash_band_radius (10, 2), 3);
    cr_expect_eq (rp_phash_band_radius (0, 0), -1, "distance 0: one band is enough");
    cr_expect_eq (rp_phash_band_radius (0, 1), -1);
    cr_expect_eq (rp_phash_band_radius (0, 2), 0);
    cr_expect_eq (RP_PHASH_DISTANCE_MAX, 11);
    for (int d = 0; d <= RP_PHASH_DISTANCE_MAX; d++) {
        int sum = 0;
        for (int b = 0; b < RP_PHASH_BANDS; b++) {
            cr_expect_leq (rp_phash_band_radius (d, b), 3);
            sum += rp_phash_band_radius (d, b) + 1;
        }
        cr_expect_eq (sum, d + 1, "every band beyond its radius makes more than %d", d);
    }
    //  Widths: about log2 of the library, within 4..21
    cr_expect_eq (rp_phash_query_width (0), RP_PHASH_WIDTH_MIN);
    cr_expect_eq (rp_phash_query_width (100000), 17);
    cr_expect_eq (rp_phash_query_width (1000000), 20);
    cr_expect_eq (rp_phash_query_width (1e12), RP_PHASH_BAND_BITS);
    //  Ranges: C(w, 0) + ... + C(w, r) low ends, each prefix within r
    const int counts [] = { 1, 21, 211, 1351 };
    for (int r = 0; r <= 3; r++)
        cr_expect_eq (rp_phash_band_ranges (0xbeef, 20, r, list, sizeof list), counts [r]);
    cr_expect_eq (rp_phash_band_ranges (0xbeef, 21, 3, list, sizeof list), 1 + 21 + 210 + 1330);
    cr_expect_eq (rp_phash_band_ranges (0xbeef, 20, -1, list, sizeof list), 0);
    cr_expect_str_eq (list, "");
    cr_expect_eq (rp_phash_band_ranges (0xbeef, 20, 4, list, sizeof list), -1);
    cr_expect_eq (rp_phash_band_ranges (0xbeef, 22, 1, list, sizeof list), -1);
    cr_expect_eq (rp_phash_band_ranges (0xbeef, 20, 3, list, 100), -1, "too small a buffer");
    cr_expect_eq (rp_phash_band_ranges (0x1abcde, 4, 1, list, sizeof list), 5);
    cr_expect_str_eq (list, "1703936,1572864,1966080,1179648,655360", "0xd prefix, 4 bits");
    for (char *p = strtok (list, ","); p; p = strtok (NULL, ","))
        cr_expect_leq (s_popcount (((unsigned) strtoul (p, NULL, 10) >> 17) ^ 0xdu), 1);
    cr_expect_eq (rp_phash_band (0x0123456789abcdefULL, 0), 0x0123456789abcdefULL >> 43);
    cr_expect_eq (rp_phash_band (0x0123456789abcdefULL, 2), (0x0123456789abcdefULL >> 1) & 0x1fffff);

    srand (14);
    const int widths [] = { 4, 9, 17, 20, 21 };
    for (int trial = 0; trial < 3000; trial++) {
        uint64_t a = (uint64_t) rand () << 40 ^ (uint64_t) rand () << 20 ^ (uint64_t) rand ();
        uint64_t b = a;
        int want = trial % (RP_PHASH_THRESHOLD + 1);
        while (rp_phash_distance (a, b) < want)
            b ^= 1ULL << (rand () % 64);
        int width = widths [trial % 5];
        unsigned span = 1u << (RP_PHASH_BAND_BITS - width);
        //  b is within the threshold of a: some band of b lies in one of
        //  a's ranges
        bool found = false;
        for (int band = 0; band < RP_PHASH_BANDS && !found; band++) {
            int n = rp_phash_band_ranges (rp_phash_band (a, band), width,
                                          rp_phash_band_radius (RP_PHASH_THRESHOLD, band),
                                          list, sizeof list);
            cr_assert_geq (n, 0);
            unsigned value = rp_phash_band (b, band);
            for (char *p = strtok (list, ","); p && !found; p = strtok (NULL, ",")) {
                unsigned lo = (unsigned) strtoul (p, NULL, 10);
                found = value >= lo && value < lo + span;
            }
        }
        cr_assert (found, "distance %d not found at width %d", rp_phash_distance (a, b), width);
    }
}
