/*  engine/db/passwords.c: password hashes, see db.h.

    scrypt through OpenSSL's EVP_PBE_scrypt, N=16384 r=8 p=1 (16 MiB and a
    few tens of milliseconds per hash), a 16-byte random salt and a 32-byte
    key, stored as "scrypt$N$r$p$<salt hex>$<key hex>". The parameters travel
    with the hash, so stronger ones later still verify the old hashes.
    Verification compares in constant time (CRYPTO_memcmp) and treats any
    malformed or out-of-bounds stored value as "no match", never as an error
    to crash on: stored hashes come from the database.
*/
#include "engine/db/db_private.h"
#include "engine/hex.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_N        16384
#define S_R        8
#define S_P        1
#define S_SALT     16
#define S_KEY      32
#define S_BYTES_MAX 64          //  salt or key a stored hash may carry

//  Memory scrypt needs for these parameters, with room to spare.
static uint64_t
s_maxmem (uint64_t n, uint64_t r, uint64_t p)
{
    return 128 * r * (n + 2) + 128 * r * p + (1 << 20);
}

static int
s_derive (const char *password, const unsigned char *salt, size_t saltlen,
          uint64_t n, uint64_t r, uint64_t p, unsigned char *key, size_t keylen)
{
    return EVP_PBE_scrypt (password, strlen (password), salt, saltlen, n, r, p,
                           s_maxmem (n, r, p), key, keylen) == 1 ? 0 : -1;
}

int
rp_password_hash (const char *password, char *out, size_t outlen)
{
    if (!password || !out || outlen == 0)
        return -1;
    unsigned char salt [S_SALT], key [S_KEY];
    if (RAND_bytes (salt, sizeof salt) != 1 || s_derive (password, salt, sizeof salt, S_N, S_R, S_P,
                                                         key, sizeof key))
        return -1;
    char salt_hex [2 * S_SALT + 1], key_hex [2 * S_KEY + 1];
    rp_hex_encode (salt, sizeof salt, salt_hex);
    rp_hex_encode (key, sizeof key, key_hex);
    OPENSSL_cleanse (key, sizeof key);
    int n = snprintf (out, outlen, "scrypt$%d$%d$%d$%s$%s", S_N, S_R, S_P, salt_hex, key_hex);
    OPENSSL_cleanse (key_hex, sizeof key_hex);
    return n > 0 && (size_t) n < outlen ? 0 : -1;
}

//  One "$"-terminated decimal field in [min, max]; advances *text.
static int
s_field (const char **text, uint64_t min, uint64_t max, uint64_t *value)
{
    const char *s = *text;
    uint64_t v = 0;
    size_t digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 10) {
        v = v * 10 + (uint64_t) (*s - '0');
        s++, digits++;
    }
    if (digits == 0 || *s != '$' || v < min || v > max)
        return -1;
    *value = v;
    *text = s + 1;
    return 0;
}

bool
rp_password_verify (const char *password, const char *stored)
{
    if (!password || !stored || strncmp (stored, "scrypt$", 7) != 0)
        return false;
    const char *s = stored + 7;
    uint64_t n, r, p;
    //  Bounds keep a stored value from asking for unbounded memory or time
    if (s_field (&s, 2, 1 << 20, &n) || (n & (n - 1)) || s_field (&s, 1, 32, &r)
    ||  s_field (&s, 1, 16, &p) || 128 * r * n > (256u << 20))
        return false;
    const char *dollar = strchr (s, '$');
    if (!dollar)
        return false;
    unsigned char salt [S_BYTES_MAX], want [S_BYTES_MAX], got [S_BYTES_MAX];
    size_t saltlen = 0, keylen = 0;
    if (rp_hex_decode (s, (size_t) (dollar - s), salt, sizeof salt, &saltlen)
    ||  rp_hex_decode (dollar + 1, strlen (dollar + 1), want, sizeof want, &keylen) || keylen < 16)
        return false;
    bool match = s_derive (password, salt, saltlen, n, r, p, got, keylen) == 0
              && CRYPTO_memcmp (got, want, keylen) == 0;
    OPENSSL_cleanse (got, sizeof got);
    return match;
}
