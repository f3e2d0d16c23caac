/*  engine/phash.c: the DCT perceptual hash and its search bands.

    DESIGN
    Pure functions over memory: no allocation, no state, no libraries but
    libm. The DCT is the separable DCT-II over 32 points, rows then
    columns, with the cosine table computed once per call (32 x 32 values:
    cheaper than sharing a table across threads). Only the 11 lowest
    frequencies of each direction are ever read (the zigzag's first 65
    coefficients lie within the top-left 11 x 11), so the column pass
    computes those alone. The median splits the 64 coefficients into 32
    above and 32 at or below it. A coefficient below RP_PHASH_FLOOR (256:
    the DCT here is unnormalised, so a cosine pattern of amplitude A grey
    levels gives 256 A) counts as 0: an image of one flat colour hashes
    to 0, and so does every recompressed copy of it, whose rounding and
    block noise stays far below one grey level over a 32x32 average (with
    a 1e-6 cutoff such noise could turn into 24 to 32 random bits: the
    likely cause of the first matrix's misses, all at that distance).
*/
#include "engine/phash.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_N     RP_PHASH_SIDE
#define S_LOW   11                  //  frequencies needed in each direction

//  The zigzag order's first 65 positions (row, column) of the DCT, DC first
static const unsigned char s_zigzag [65][2] = {
    {0,0}, {0,1}, {1,0}, {2,0}, {1,1}, {0,2}, {0,3}, {1,2}, {2,1}, {3,0},
    {4,0}, {3,1}, {2,2}, {1,3}, {0,4}, {0,5}, {1,4}, {2,3}, {3,2}, {4,1},
    {5,0}, {6,0}, {5,1}, {4,2}, {3,3}, {2,4}, {1,5}, {0,6}, {0,7}, {1,6},
    {2,5}, {3,4}, {4,3}, {5,2}, {6,1}, {7,0}, {8,0}, {7,1}, {6,2}, {5,3},
    {4,4}, {3,5}, {2,6}, {1,7}, {0,8}, {0,9}, {1,8}, {2,7}, {3,6}, {4,5},
    {5,4}, {6,3}, {7,2}, {8,1}, {9,0}, {10,0}, {9,1}, {8,2}, {7,3}, {6,4},
    {5,5}, {4,6}, {3,7}, {2,8}, {1,9}
};

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

uint64_t
rp_phash_grey (const double grey [S_N * S_N])
{
    double cosines [S_LOW][S_N];
    for (int k = 0; k < S_LOW; k++)
        for (int n = 0; n < S_N; n++)
            cosines [k][n] = cos (M_PI / S_N * (n + 0.5) * k);
    //  Rows: rows [y][u] = sum over x of grey [y][x] cos (u, x)
    double rows [S_N][S_LOW];
    for (int y = 0; y < S_N; y++)
        for (int u = 0; u < S_LOW; u++) {
            double sum = 0;
            for (int x = 0; x < S_N; x++)
                sum += grey [y * S_N + x] * cosines [u][x];
            rows [y][u] = sum;
        }
    //  Columns: dct [v][u] = sum over y of rows [y][u] cos (v, y)
    double dct [S_LOW][S_LOW];
    for (int v = 0; v < S_LOW; v++)
        for (int u = 0; u < S_LOW; u++) {
            double sum = 0;
            for (int y = 0; y < S_N; y++)
                sum += rows [y][u] * cosines [v][y];
            dct [v][u] = sum;
        }
    double coeffs [64], sorted [64];
    for (int i = 0; i < 64; i++) {
        double c = dct [s_zigzag [i + 1][0]][s_zigzag [i + 1][1]];
        //  Noise below one grey level is no signal: 0, not a random bit
        coeffs [i] = sorted [i] = fabs (c) < RP_PHASH_FLOOR ? 0 : c;
    }
    qsort (sorted, 64, sizeof sorted [0], s_compare);
    double median = (sorted [31] + sorted [32]) / 2;
    uint64_t hash = 0;
    for (int i = 0; i < 64; i++)
        if (coeffs [i] > median)
            hash |= (uint64_t) 1 << (63 - i);
    return hash;
}

int
rp_phash_pixels (const unsigned char *pixels, int bands, uint64_t *hash)
{
    if (bands < 1 || bands > 4)
        return -1;
    double grey [S_N * S_N];
    for (int i = 0; i < S_N * S_N; i++) {
        const unsigned char *p = pixels + (size_t) i * (size_t) bands;
        double luma = bands >= 3 ? 0.299 * p [0] + 0.587 * p [1] + 0.114 * p [2] : p [0];
        if (bands == 2 || bands == 4) {
            double alpha = p [bands - 1] / 255.0;
            luma = luma * alpha + 255.0 * (1 - alpha);
        }
        grey [i] = luma;
    }
    *hash = rp_phash_grey (grey);
    return 0;
}

int
rp_phash_distance (uint64_t a, uint64_t b)
{
    return __builtin_popcountll (a ^ b);
}

void
rp_phash_hex (uint64_t hash, char out [17])
{
    snprintf (out, 17, "%016llx", (unsigned long long) hash);
}

int
rp_phash_parse (const char *text, uint64_t *hash)
{
    if (!text || strlen (text) != 16)
        return -1;
    uint64_t value = 0;
    for (int i = 0; i < 16; i++) {
        char c = text [i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0)
            return -1;
        value = value << 4 | (uint64_t) digit;
    }
    *hash = value;
    return 0;
}

unsigned
rp_phash_band (uint64_t hash, int band)
{
    return (unsigned) (hash >> (64 - RP_PHASH_BAND_BITS * (band + 1)))
         & ((1u << RP_PHASH_BAND_BITS) - 1);
}

int
rp_phash_band_radius (int distance, int band)
{
    //  floor ((R + band) / k) for R = d - k + 1: the k radii add up to R
    //  (Hermite's identity), the smallest first
    int total = (distance < 0 ? 0 : distance) - RP_PHASH_BANDS + 1 + band;
    return total >= 0 ? total / RP_PHASH_BANDS : -((-total + RP_PHASH_BANDS - 1) / RP_PHASH_BANDS);
}

int
rp_phash_query_width (double library)
{
    int width = RP_PHASH_WIDTH_MIN;
    while (width < RP_PHASH_BAND_BITS && (double) (1u << width) < library)
        width++;
    return width;
}

//  Append ",value" (or "value" first) to out at *used; -1 when it is full.
static int
s_append (char *out, size_t outlen, size_t *used, unsigned value)
{
    int n = snprintf (out + *used, outlen - *used, *used ? ",%u" : "%u", value);
    if (n < 0 || (size_t) n >= outlen - *used)
        return -1;
    *used += (size_t) n;
    return 0;
}

int
rp_phash_band_ranges (unsigned value, int width, int radius, char *out, size_t outlen)
{
    if (radius < -1 || radius > 3 || width < 1 || width > RP_PHASH_BAND_BITS || outlen == 0)
        return -1;
    out [0] = 0;
    if (radius < 0)
        return 0;
    int shift = RP_PHASH_BAND_BITS - width;
    unsigned prefix = (value & ((1u << RP_PHASH_BAND_BITS) - 1)) >> shift;
    size_t used = 0;
    int count = 0;
    if (s_append (out, outlen, &used, prefix << shift))
        return -1;
    count++;
    //  Flip one, two or three distinct bits of the prefix
    for (int a = 0; a < width && radius >= 1; a++) {
        if (s_append (out, outlen, &used, (prefix ^ 1u << a) << shift))
            return -1;
        count++;
        for (int b = a + 1; b < width && radius >= 2; b++) {
            if (s_append (out, outlen, &used, (prefix ^ 1u << a ^ 1u << b) << shift))
                return -1;
            count++;
            for (int c = b + 1; c < width && radius >= 3; c++) {
                if (s_append (out, outlen, &used, (prefix ^ 1u << a ^ 1u << b ^ 1u << c) << shift))
                    return -1;
                count++;
            }
        }
    }
    return count;
}
