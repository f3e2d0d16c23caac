/*  gateway/auth.c: see auth.h. */
#include "gateway/auth.h"
#include "engine/hex.h"
#include "engine/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int
s_read_secret (const char *path, char secret [RP_SECRET_MAX], char *err, size_t errlen)
{
    int fd = open (path, O_RDONLY);
    if (fd < 0) {
        snprintf (err, errlen, "cannot read %s: %s", path, strerror (errno));
        return -1;
    }
    ssize_t got = read (fd, secret, RP_SECRET_MAX - 1);
    close (fd);
    if (got < 32) {
        snprintf (err, errlen, "%s holds no usable secret (expected 64 hex characters)", path);
        return -1;
    }
    secret [got] = 0;
    secret [strcspn (secret, "\r\n")] = 0;
    if (strlen (secret) < 32) {
        snprintf (err, errlen, "%s holds no usable secret (expected 64 hex characters)", path);
        return -1;
    }
    return 0;
}

int
rp_auth_secret (const rp_config_t *config, char secret [RP_SECRET_MAX], char *err, size_t errlen)
{
    if (config->auth_jwt_secret [0]) {
        snprintf (secret, RP_SECRET_MAX, "%s", config->auth_jwt_secret);
        return 0;
    }
    char path [RP_STR_MAX + 32];
    snprintf (path, sizeof path, "%s/jwt_secret", config->data_dir);
    if (access (path, F_OK) == 0)
        return s_read_secret (path, secret, err, errlen);
    mkdir (config->data_dir, 0700);
    //  From the kernel, as the database's ids are: OpenSSL's generator
    //  would keep per-thread state on whichever actor thread asks first,
    //  which outlives a detached thread at exit (a leak report under ASan)
    unsigned char bytes [32];
    size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = getrandom (bytes + got, sizeof bytes - got, 0);
        if (n > 0)
            got += (size_t) n;
        else
        if (n < 0 && errno != EINTR) {
            snprintf (err, errlen, "cannot make a secret: no randomness (%s)", strerror (errno));
            return -1;
        }
    }
    char hex [65];
    rp_hex_encode (bytes, sizeof bytes, hex);
    //  Write beside, then link into place: a concurrent starter either wins
    //  or reads the winner's secret, never a half-written file
    char tmp [RP_STR_MAX + 64];
    snprintf (tmp, sizeof tmp, "%s.%d.tmp", path, (int) getpid ());
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        snprintf (err, errlen, "cannot write %s: %s", path, strerror (errno));
        return -1;
    }
    bool ok = write (fd, hex, 64) == 64 && write (fd, "\n", 1) == 1 && fsync (fd) == 0;
    close (fd);
    if (!ok) {
        unlink (tmp);
        snprintf (err, errlen, "cannot write %s: %s", path, strerror (errno));
        return -1;
    }
    int rc = link (tmp, path);
    unlink (tmp);
    if (rc && errno != EEXIST) {
        snprintf (err, errlen, "cannot write %s: %s", path, strerror (errno));
        return -1;
    }
    if (rc == 0)
        rp_info ("auth", "generated a token signing secret in %s", path);
    return s_read_secret (path, secret, err, errlen);
}

void
rp_auth_stamp (const char *secret, const char *password_hash, char stamp [RP_AUTH_STAMP_MAX])
{
    char data [RP_PASSWORD_HASH_MAX + 16];
    snprintf (data, sizeof data, "password:%s", password_hash);
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC (EVP_sha256 (), secret, (int) strlen (secret), (const unsigned char *) data, strlen (data), digest, &len);
    rp_hex_encode (digest, 16, stamp);
}

char *
rp_auth_token_issue (const char *secret, const char *user_id, const char *password_hash, int64_t ttl,
                     int64_t *expires_at)
{
    jwt_t *jwt = NULL;
    if (jwt_new (&jwt))
        return NULL;
    int64_t now = (int64_t) time (NULL);
    char stamp [RP_AUTH_STAMP_MAX];
    rp_auth_stamp (secret, password_hash, stamp);
    char *token = NULL;
    if (jwt_set_alg (jwt, JWT_ALG_HS256, (const unsigned char *) secret, (int) strlen (secret)) == 0
    &&  jwt_add_grant (jwt, "sub", user_id) == 0
    &&  jwt_add_grant (jwt, "pwd", stamp) == 0
    &&  jwt_add_grant_int (jwt, "iat", (long) now) == 0
    &&  jwt_add_grant_int (jwt, "exp", (long) (now + ttl)) == 0)
        token = jwt_encode_str (jwt);
    jwt_free (jwt);
    if (expires_at)
        *expires_at = now + ttl;
    return token;
}

int
rp_auth_token_verify (const char *secret, const char *token, char user_id [RP_ID_MAX],
                      char stamp [RP_AUTH_STAMP_MAX], char *err, size_t errlen)
{
    jwt_t *jwt = NULL;
    if (strlen (token) > 4096
    ||  jwt_decode (&jwt, token, (const unsigned char *) secret, (int) strlen (secret)) || !jwt) {
        snprintf (err, errlen, "the access token is not valid (bad signature or malformed)");
        return -1;
    }
    int rc = -1;
    const char *sub = jwt_get_grant (jwt, "sub");
    const char *pwd = jwt_get_grant (jwt, "pwd");
    errno = 0;
    long exp = jwt_get_grant_int (jwt, "exp");
    if (jwt_get_alg (jwt) != JWT_ALG_HS256)
        snprintf (err, errlen, "the access token is not signed with HS256");
    else
    if (errno || exp <= 0)
        snprintf (err, errlen, "the access token has no expiry");
    else
    if ((int64_t) exp <= (int64_t) time (NULL))
        snprintf (err, errlen, "the access token has expired: log in again");
    else
    if (!sub || !*sub || strlen (sub) >= RP_ID_MAX)
        snprintf (err, errlen, "the access token names no user");
    else
    if (!pwd || strlen (pwd) != RP_AUTH_STAMP_MAX - 1)
        snprintf (err, errlen, "the access token is from an older version: log in again");
    else {
        snprintf (user_id, RP_ID_MAX, "%s", sub);
        snprintf (stamp, RP_AUTH_STAMP_MAX, "%s", pwd);
        rc = 0;
    }
    jwt_free (jwt);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Password stamps as last read: a direct-mapped table (a user pushed out
//  of its slot is read again, nothing worse), under one mutex

#define S_STAMPS 4096

typedef struct {
    char user_id [RP_ID_MAX];
    char stamp [RP_AUTH_STAMP_MAX];
    int64_t read_ms;
} s_stamp_t;

static s_stamp_t s_stamps [S_STAMPS];
static pthread_mutex_t s_stamps_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t
s_fnv (const char *text)
{
    uint32_t h = 2166136261u;
    for (; *text; text++)
        h = (h ^ (unsigned char) *text) * 16777619u;
    return h;
}

bool
rp_auth_stamp_cached (const char *user_id, int64_t now_ms, int64_t max_age_ms, char stamp [RP_AUTH_STAMP_MAX])
{
    s_stamp_t *slot = &s_stamps [s_fnv (user_id) % S_STAMPS];
    pthread_mutex_lock (&s_stamps_lock);
    bool fresh = strcmp (slot->user_id, user_id) == 0 && now_ms - slot->read_ms < max_age_ms;
    if (fresh)
        memcpy (stamp, slot->stamp, RP_AUTH_STAMP_MAX);
    pthread_mutex_unlock (&s_stamps_lock);
    return fresh;
}

void
rp_auth_stamp_remember (const char *user_id, const char stamp [RP_AUTH_STAMP_MAX], int64_t now_ms)
{
    s_stamp_t *slot = &s_stamps [s_fnv (user_id) % S_STAMPS];
    pthread_mutex_lock (&s_stamps_lock);
    snprintf (slot->user_id, sizeof slot->user_id, "%s", user_id);
    snprintf (slot->stamp, sizeof slot->stamp, "%s", stamp);
    slot->read_ms = now_ms;
    pthread_mutex_unlock (&s_stamps_lock);
}

//  ---------------------------------------------------------------------------
//  Throttle: failure counts in fixed windows, in an open table under one
//  mutex.
//
//  Why it cannot be made to forget a key that counts: a key's place comes
//  from an HMAC under a secret drawn when the process starts, so no one can
//  choose names that land on a victim's slots. A new key takes a slot in its
//  window of S_PROBE that is empty or whose window has passed; only when
//  every one counts does it push one out, and then the one with the fewest
//  failures. To push out a victim's count, someone would have to fill most
//  of the table (S_SLOTS keys, each with at least as many failures) within
//  one window, while password checks run at most auth.password_checks at a
//  time (each a 16 MiB scrypt, tens of milliseconds): on any machine this
//  runs on, hundreds of checks a second at most, tens of thousands a
//  window, against the hundreds of thousands needed.

#define S_SLOTS 16384
#define S_PROBE 32

typedef struct {
    uint8_t digest [16];            //  the key's HMAC, truncated
    int64_t window_start;           //  seconds
    int failures;                   //  0: free
} s_slot_t;

static s_slot_t s_slots [S_SLOTS];
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t s_key_once = PTHREAD_ONCE_INIT;
static unsigned char s_key [32];

static void
s_key_make (void)
{
    //  Without randomness the process could not make secrets either
    if (RAND_bytes (s_key, sizeof s_key) != 1) {
        rp_error ("auth", "no randomness for the login throttle's key");
        abort ();
    }
}

static uint32_t
s_digest (const char *key, uint8_t digest [16])
{
    pthread_once (&s_key_once, s_key_make);
    unsigned char full [EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC (EVP_sha256 (), s_key, sizeof s_key, (const unsigned char *) key, strlen (key), full, &len);
    memcpy (digest, full, 16);
    return (uint32_t) full [16] | (uint32_t) full [17] << 8 | (uint32_t) full [18] << 16 | (uint32_t) full [19] << 24;
}

static bool
s_counts (const s_slot_t *slot, int64_t now)
{
    return slot->failures > 0 && now - slot->window_start < RP_LOGIN_WINDOW_S;
}

//  The slot counting key (made when make); NULL when absent. Lock held.
static s_slot_t *
s_find (const char *key, bool make, int64_t now)
{
    uint8_t digest [16];
    uint32_t home = s_digest (key, digest);
    s_slot_t *free_slot = NULL, *weakest = NULL;
    for (int probe = 0; probe < S_PROBE; probe++) {
        s_slot_t *slot = &s_slots [(home + (uint32_t) probe) % S_SLOTS];
        if (slot->failures > 0 && memcmp (slot->digest, digest, 16) == 0)
            return slot;
        if (!s_counts (slot, now)) {
            if (!free_slot)
                free_slot = slot;
        }
        else
        if (!weakest || slot->failures < weakest->failures)
            weakest = slot;
    }
    if (!make)
        return NULL;
    s_slot_t *slot = free_slot ? free_slot : weakest;
    memcpy (slot->digest, digest, 16);
    slot->window_start = now;
    slot->failures = 0;
    return slot;
}

int
rp_auth_throttled (const char *key, int limit)
{
    int64_t now = (int64_t) time (NULL);
    pthread_mutex_lock (&s_lock);
    s_slot_t *slot = s_find (key, false, now);
    int wait = 0;
    if (slot && s_counts (slot, now) && slot->failures >= limit)
        wait = (int) (RP_LOGIN_WINDOW_S - (now - slot->window_start));
    pthread_mutex_unlock (&s_lock);
    return wait;
}

void
rp_auth_failed (const char *key)
{
    int64_t now = (int64_t) time (NULL);
    pthread_mutex_lock (&s_lock);
    s_slot_t *slot = s_find (key, true, now);
    if (!s_counts (slot, now)) {
        slot->window_start = now;
        slot->failures = 0;
    }
    slot->failures++;
    pthread_mutex_unlock (&s_lock);
}

void
rp_auth_succeeded (const char *key)
{
    pthread_mutex_lock (&s_lock);
    s_slot_t *slot = s_find (key, false, (int64_t) time (NULL));
    if (slot)
        slot->failures = 0;
    pthread_mutex_unlock (&s_lock);
}
