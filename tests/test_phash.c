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

//  The band values are exactly those within the radius, and the search
//  they drive finds every hash within the distance (pigeonhole), on
//  random hashes checked against a brute-force scan
Test (phash, bands_find_everything_within_the_threshold)
{
    static char list [8192];
    const int counts [] = { 1, 17, 137, 697 };
    for (int r = 0; r <= 3; r++)
        cr_expect_eq (rp_phash_band_values (0xbeef, r, list, sizeof list), counts [r]);
    cr_expect_eq (rp_phash_band_values (0xbeef, 4, list, sizeof list), -1);
    cr_expect_eq (rp_phash_band_values (0xbeef, 3, list, 100), -1, "too small a buffer");
    cr_expect_eq (rp_phash_band (0x0123456789abcdefULL, 0), 0x0123);
    cr_expect_eq (rp_phash_band (0x0123456789abcdefULL, 3), 0xcdef);
    cr_expect_eq (rp_phash_band_radius (RP_PHASH_THRESHOLD), RP_PHASH_THRESHOLD / 4);

    srand (14);
    int radius = rp_phash_band_radius (RP_PHASH_THRESHOLD);
    for (int trial = 0; trial < 2000; trial++) {
        uint64_t a = (uint64_t) rand () << 40 ^ (uint64_t) rand () << 20 ^ (uint64_t) rand ();
        uint64_t b = a;
        int flips = rand () % (RP_PHASH_THRESHOLD + 1);
        for (int f = 0; f < flips; f++)
            b ^= 1ULL << (rand () % 64);
        //  b is within the threshold of a: some band of b is in a's list
        bool found = false;
        for (int band = 0; band < RP_PHASH_BANDS && !found; band++) {
            rp_phash_band_values (rp_phash_band (a, band), radius, list, sizeof list);
            char want [8];
            snprintf (want, sizeof want, "%u", rp_phash_band (b, band));
            for (char *p = strtok (list, ","); p && !found; p = strtok (NULL, ","))
                found = strcmp (p, want) == 0;
        }
        cr_assert (found, "distance %d not found", rp_phash_distance (a, b));
    }
}
