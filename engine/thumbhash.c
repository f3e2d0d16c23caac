/*  engine/thumbhash.c: the ThumbHash encoder (see thumbhash.h).

    DESIGN
    A pure function of the pixels. One channel at a time is laid out in
    a block of w * h doubles (80 KB at most: 100 x 100), freed before it
    returns; the rest is on the stack.

    Faithful to the reference (thumbhash.js, rgbaToThumbHash, 0.1.1):
    every expression is written in the reference's order of operations,
    in doubles, since a different order can move a value across a
    rounding boundary and change a byte:
      - alpha = a / 255, and each colour channel is alpha / 255 * c;
      - the average is taken over alpha, then divided by the alpha sum;
      - the DCT's f accumulates channel * fx * fy over y then x, and is
        divided by w * h once at the end;
      - Math.round(x) is floor(x), plus 1 when x - floor(x) >= 0.5
        (halves go up, as in JavaScript, not away from zero as C's round);
      - no fused multiply-add: CMakeLists.txt builds this file with
        -ffp-contract=off, as JavaScript never fuses.
    cos is not the C library's: glibc's and V8's Math.cos differ in the
    last bit for about 3 % of the angles used here, and on a flat picture
    the AC terms are sums of such last bits (measured: a grey 64 x 48 and
    a camera photo hashed differently). s_cos is fdlibm's algorithm, which
    V8 implements (src/base/ieee754.cc): reduction by pi/2 in three parts
    (Cody-Waite; the angles here are below 7 pi, so the large-argument
    path is never needed) and fdlibm's polynomial kernels, with its
    published coefficients.
*/
#include "engine/thumbhash.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  JavaScript's Math.round
static double
s_round (double x)
{
    double r = floor (x);
    return x - r >= 0.5 ? r + 1.0 : r;
}

//  ---------------------------------------------------------------------
//  cos as fdlibm computes it

static int32_t
s_high (double x)
{
    uint64_t bits;
    memcpy (&bits, &x, sizeof bits);
    return (int32_t) (bits >> 32);
}

//  x with its high word replaced and low word zeroed
static double
s_with_high (int32_t high)
{
    uint64_t bits = (uint64_t) (uint32_t) high << 32;
    double x;
    memcpy (&x, &bits, sizeof x);
    return x;
}

//  cos (x + y) for |x| <= pi/4, y the tail of x
static double
s_kernel_cos (double x, double y)
{
    const double C1 =  4.16666666666666019037e-02, C2 = -1.38888888888741095749e-03,
                 C3 =  2.48015872894767294178e-05, C4 = -2.75573143513906633035e-07,
                 C5 =  2.08757232129817482790e-09, C6 = -1.13596475577881948265e-11;
    int32_t ix = s_high (x) & 0x7fffffff;
    if (ix < 0x3e400000 && (int) x == 0)
        return 1.0;
    double z = x * x;
    double r = z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
    if (ix < 0x3fd33333)
        return 1.0 - (0.5 * z - (z * r - x * y));
    double qx = ix > 0x3fe90000 ? 0.28125 : s_with_high (ix - 0x00200000);
    double hz = 0.5 * z - qx;
    double a = 1.0 - qx;
    return a - (hz - (z * r - x * y));
}

//  sin (x + y) for |x| <= pi/4, y the tail of x (iy 1: y is used)
static double
s_kernel_sin (double x, double y, int iy)
{
    const double S1 = -1.66666666666666324348e-01, S2 =  8.33333333332248946124e-03,
                 S3 = -1.98412698298579493134e-04, S4 =  2.75573137070700676789e-06,
                 S5 = -2.50507602534068634195e-08, S6 =  1.58969099521155010221e-10;
    int32_t ix = s_high (x) & 0x7fffffff;
    if (ix < 0x3e400000 && (int) x == 0)
        return x;
    double z = x * x;
    double v = z * x;
    double r = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
    if (iy == 0)
        return x + v * (S1 + z * r);
    return x - ((z * (0.5 * y - v * r) - y) - v * S1);
}

//  x - n * pi/2 as y[0] + y[1], |x| up to 2^19 * pi/2; returns n
static int
s_rem_pio2 (double x, double y [2])
{
    static const int32_t npio2_hw [32] = {
        0x3FF921FB, 0x400921FB, 0x4012D97C, 0x401921FB, 0x401F6A7A, 0x4022D97C,
        0x4025FDBB, 0x402921FB, 0x402C463A, 0x402F6A7A, 0x4031475C, 0x4032D97C,
        0x40346B9C, 0x4035FDBB, 0x40378FDB, 0x403921FB, 0x403AB41B, 0x403C463A,
        0x403DD85A, 0x403F6A7A, 0x40407E4C, 0x4041475C, 0x4042106C, 0x4042D97C,
        0x4043A28C, 0x40446B9C, 0x404534AC, 0x4045FDBB, 0x4046C6CB, 0x40478FDB,
        0x404858EB, 0x404921FB,
    };
    const double invpio2 = 6.36619772367581382433e-01,
                 pio2_1  = 1.57079632673412561417e+00, pio2_1t = 6.07710050650619224932e-11,
                 pio2_2  = 6.07710050630396597660e-11, pio2_2t = 2.02226624879595063154e-21,
                 pio2_3  = 2.02226624871116645580e-21, pio2_3t = 8.47842766036889956997e-32;
    int32_t hx = s_high (x);
    int32_t ix = hx & 0x7fffffff;
    if (ix < 0x4002d97c) {              //  |x| < 3pi/4: one step
        double z;
        if (hx > 0) {
            z = x - pio2_1;
            if (ix != 0x3ff921fb) {
                y [0] = z - pio2_1t;
                y [1] = (z - y [0]) - pio2_1t;
            }
            else {
                z -= pio2_2;
                y [0] = z - pio2_2t;
                y [1] = (z - y [0]) - pio2_2t;
            }
            return 1;
        }
        z = x + pio2_1;
        if (ix != 0x3ff921fb) {
            y [0] = z + pio2_1t;
            y [1] = (z - y [0]) + pio2_1t;
        }
        else {
            z += pio2_2;
            y [0] = z + pio2_2t;
            y [1] = (z - y [0]) + pio2_2t;
        }
        return -1;
    }
    double t = fabs (x);
    int n = (int) (t * invpio2 + 0.5);
    double fn = (double) n;
    double r = t - fn * pio2_1;
    double w = fn * pio2_1t;
    if (n < 32 && ix != npio2_hw [n - 1])
        y [0] = r - w;
    else {
        int32_t j = ix >> 20;
        y [0] = r - w;
        int32_t i = j - ((s_high (y [0]) >> 20) & 0x7ff);
        if (i > 16) {               //  a second step: 118 bits of pi/2
            double t2 = r;
            w = fn * pio2_2;
            r = t2 - w;
            w = fn * pio2_2t - ((t2 - r) - w);
            y [0] = r - w;
            i = j - ((s_high (y [0]) >> 20) & 0x7ff);
            if (i > 49) {           //  a third: 151 bits
                double t3 = r;
                w = fn * pio2_3;
                r = t3 - w;
                w = fn * pio2_3t - ((t3 - r) - w);
                y [0] = r - w;
            }
        }
    }
    y [1] = (r - y [0]) - w;
    if (hx < 0) {
        y [0] = -y [0];
        y [1] = -y [1];
        return -n;
    }
    return n;
}

static double
s_cos (double x)
{
    int32_t ix = s_high (x) & 0x7fffffff;
    if (ix <= 0x3fe921fb)
        return s_kernel_cos (x, 0.0);
    if (ix > 0x413921fb)
        return cos (x);             //  never here: angles stay below 7 pi
    double y [2];
    switch (s_rem_pio2 (x, y) & 3) {
        case 0:  return s_kernel_cos (y [0], y [1]);
        case 1:  return -s_kernel_sin (y [0], y [1], 1);
        case 2:  return -s_kernel_cos (y [0], y [1]);
        default: return s_kernel_sin (y [0], y [1], 1);
    }
}

//  ---------------------------------------------------------------------
//  The encoder

//  One channel's value at pixel i, as the reference's l, p, q, a arrays
//  hold it: the pixel composited atop the average colour, then LPQA
typedef struct {
    const unsigned char *rgba;
    double avg_r, avg_g, avg_b;
} s_source_t;

enum { S_L, S_P, S_Q, S_A };

static double
s_value (const s_source_t *src, int i, int which)
{
    const unsigned char *px = src->rgba + (size_t) i * 4;
    double alpha = px [3] / 255.0;
    if (which == S_A)
        return alpha;
    double r = src->avg_r * (1 - alpha) + alpha / 255 * px [0];
    double g = src->avg_g * (1 - alpha) + alpha / 255 * px [1];
    double b = src->avg_b * (1 - alpha) + alpha / 255 * px [2];
    if (which == S_L)
        return (r + g + b) / 3;
    if (which == S_P)
        return (r + g) / 2 - b;
    return r - g;
}

//  At most 7 x 7 terms a channel (lx, ly <= 7)
#define S_AC_MAX 48

//  The reference's encodeChannel: DC, normalised AC terms, scale
static void
s_encode_channel (const double *channel, int w, int h, int nx, int ny,
                  double *dc, double ac [S_AC_MAX], int *ac_count, double *scale)
{
    double fx [RP_THUMBHASH_SIDE_MAX];
    *dc = 0;
    *scale = 0;
    *ac_count = 0;
    for (int cy = 0; cy < ny; cy++) {
        for (int cx = 0; cx * ny < nx * (ny - cy); cx++) {
            double f = 0;
            for (int x = 0; x < w; x++)
                fx [x] = s_cos (M_PI / w * cx * (x + 0.5));
            for (int y = 0; y < h; y++) {
                double fy = s_cos (M_PI / h * cy * (y + 0.5));
                for (int x = 0; x < w; x++)
                    f += channel [x + y * w] * fx [x] * fy;
            }
            f /= w * h;
            if (cx || cy) {
                ac [(*ac_count)++] = f;
                *scale = fmax (*scale, fabs (f));
            }
            else
                *dc = f;
        }
    }
    if (*scale)
        for (int i = 0; i < *ac_count; i++)
            ac [i] = 0.5 + 0.5 / *scale * ac [i];
}

int
rp_thumbhash_encode (int w, int h, const unsigned char *rgba,
                     unsigned char out [RP_THUMBHASH_MAX], size_t *len)
{
    if (w < 1 || h < 1 || w > RP_THUMBHASH_SIDE_MAX || h > RP_THUMBHASH_SIDE_MAX || !rgba)
        return -1;
    //  The average colour
    double avg_r = 0, avg_g = 0, avg_b = 0, avg_a = 0;
    for (int i = 0, j = 0; i < w * h; i++, j += 4) {
        double alpha = rgba [j + 3] / 255.0;
        avg_r += alpha / 255 * rgba [j];
        avg_g += alpha / 255 * rgba [j + 1];
        avg_b += alpha / 255 * rgba [j + 2];
        avg_a += alpha;
    }
    if (avg_a) {
        avg_r /= avg_a;
        avg_g /= avg_a;
        avg_b /= avg_a;
    }
    bool has_alpha = avg_a < w * h;
    int l_limit = has_alpha ? 5 : 7;
    int side = w > h ? w : h;
    int lx = (int) fmax (1, s_round ((double) (l_limit * w) / side));
    int ly = (int) fmax (1, s_round ((double) (l_limit * h) / side));

    //  One channel at a time, as the reference's arrays hold them
    double *channel = (double *) malloc (sizeof (double) * (size_t) (w * h));
    if (!channel)
        return -1;
    s_source_t src = { rgba, avg_r, avg_g, avg_b };
    double dc [4] = { 0 }, scale [4] = { 0 };
    double ac [4][S_AC_MAX];
    int count [4] = { 0 };
    int nx [4] = { lx > 3 ? lx : 3, 3, 3, 5 };
    int ny [4] = { ly > 3 ? ly : 3, 3, 3, 5 };
    int channels = has_alpha ? 4 : 3;
    for (int c = 0; c < channels; c++) {
        for (int i = 0; i < w * h; i++)
            channel [i] = s_value (&src, i, c);
        s_encode_channel (channel, w, h, nx [c], ny [c], &dc [c], ac [c], &count [c], &scale [c]);
    }
    free (channel);

    //  The constants, as the reference packs them (int32 bit operations)
    bool landscape = w > h;
    int32_t header24 = (int32_t) s_round (63 * dc [S_L])
                     | ((int32_t) s_round (31.5 + 31.5 * dc [S_P]) << 6)
                     | ((int32_t) s_round (31.5 + 31.5 * dc [S_Q]) << 12)
                     | ((int32_t) s_round (31 * scale [S_L]) << 18)
                     | ((int32_t) has_alpha << 23);
    int32_t header16 = (landscape ? ly : lx)
                     | ((int32_t) s_round (63 * scale [S_P]) << 3)
                     | ((int32_t) s_round (63 * scale [S_Q]) << 9)
                     | ((int32_t) landscape << 15);
    unsigned char hash [RP_THUMBHASH_MAX + 8];
    memset (hash, 0, sizeof hash);
    hash [0] = (unsigned char) (header24 & 255);
    hash [1] = (unsigned char) ((header24 >> 8) & 255);
    hash [2] = (unsigned char) (header24 >> 16);
    hash [3] = (unsigned char) (header16 & 255);
    hash [4] = (unsigned char) (header16 >> 8);
    size_t used = 5;
    int ac_start = has_alpha ? 6 : 5;
    if (has_alpha)
        hash [used++] = (unsigned char) ((int32_t) s_round (15 * dc [S_A])
                                         | ((int32_t) s_round (15 * scale [S_A]) << 4));
    //  The varying factors, two to a byte
    int ac_index = 0;
    for (int c = 0; c < channels; c++)
        for (int i = 0; i < count [c]; i++) {
            size_t at = (size_t) ac_start + (size_t) (ac_index >> 1);
            hash [at] |= (unsigned char) ((int32_t) s_round (15 * ac [c][i]) << ((ac_index & 1) << 2));
            ac_index++;
            if (at + 1 > used)
                used = at + 1;
        }
    if (used > RP_THUMBHASH_MAX)
        return -1;                  //  cannot happen: 25 bytes at most
    memcpy (out, hash, used);
    *len = used;
    return 0;
}

static const char s_alphabet [] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
rp_thumbhash_base64 (const unsigned char *in, size_t len, char *out, size_t outlen)
{
    if (len > RP_THUMBHASH_MAX || outlen < (len + 2) / 3 * 4 + 1)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t) in [i] << 16;
        if (i + 1 < len)
            v |= (uint32_t) in [i + 1] << 8;
        if (i + 2 < len)
            v |= in [i + 2];
        out [o++] = s_alphabet [(v >> 18) & 63];
        out [o++] = s_alphabet [(v >> 12) & 63];
        out [o++] = i + 1 < len ? s_alphabet [(v >> 6) & 63] : '=';
        out [o++] = i + 2 < len ? s_alphabet [v & 63] : '=';
    }
    out [o] = 0;
    return 0;
}

bool
rp_thumbhash_valid (const char *text, size_t len)
{
    //  5..RP_THUMBHASH_MAX bytes: 8..RP_THUMBHASH_B64_MAX characters, in 4s
    if (!text || len < 8 || len > RP_THUMBHASH_B64_MAX || len % 4 != 0 || strlen (text) != len)
        return false;
    size_t pad = text [len - 1] == '=' ? (text [len - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < len - pad; i++)
        if (!strchr (s_alphabet, text [i]) || text [i] == 0)
            return false;
    //  The bits padding leaves must be zero, so each hash has one text
    if (pad) {
        const char *last = strchr (s_alphabet, text [len - pad - 1]);
        int bits = (int) (last - s_alphabet);
        if ((pad == 1 && (bits & 3)) || (pad == 2 && (bits & 15)))
            return false;
    }
    size_t bytes = len / 4 * 3 - pad;
    return bytes >= 5 && bytes <= RP_THUMBHASH_MAX;
}
