/*  gateway/auth.c: see auth.h. */
#include "gateway/auth.h"
#include "engine/hex.h"
#include "engine/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <pthread.h>
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

char *
rp_auth_token_issue (const char *secret, const char *user_id, int64_t ttl, int64_t *expires_at)
{
    jwt_t *jwt = NULL;
    if (jwt_new (&jwt))
        return NULL;
    int64_t now = (int64_t) time (NULL);
    char *token = NULL;
    if (jwt_set_alg (jwt, JWT_ALG_HS256, (const unsigned char *) secret, (int) strlen (secret)) == 0
    &&  jwt_add_grant (jwt, "sub", user_id) == 0
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
                      char *err, size_t errlen)
{
    jwt_t *jwt = NULL;
    if (strlen (token) > 4096
    ||  jwt_decode (&jwt, token, (const unsigned char *) secret, (int) strlen (secret)) || !jwt) {
        snprintf (err, errlen, "the access token is not valid (bad signature or malformed)");
        return -1;
    }
    int rc = -1;
    const char *sub = jwt_get_grant (jwt, "sub");
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
    else {
        snprintf (user_id, RP_ID_MAX, "%s", sub);
        rc = 0;
    }
    jwt_free (jwt);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Throttle: a small open table of fixed windows, guarded by one mutex

#define S_SLOTS 4096

typedef struct {
    char key [128];
    int64_t window_start;           //  seconds
    int failures;
} s_slot_t;

static s_slot_t s_slots [S_SLOTS];
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t
s_hash (const char *key)
{
    uint32_t h = 2166136261u;
    for (; *key; key++)
        h = (h ^ (unsigned char) *key) * 16777619u;
    return h;
}

//  The slot for key (made when make); NULL when absent. Lock held.
static s_slot_t *
s_find (const char *key, bool make, int64_t now)
{
    uint32_t h = s_hash (key);
    s_slot_t *free_slot = NULL;
    for (int probe = 0; probe < 16; probe++) {
        s_slot_t *slot = &s_slots [(h + (uint32_t) probe) % S_SLOTS];
        if (slot->key [0] && strncmp (slot->key, key, sizeof slot->key - 1) == 0)
            return slot;
        if (!free_slot && (!slot->key [0] || now - slot->window_start >= RP_LOGIN_WINDOW_S))
            free_slot = slot;
    }
    if (!make)
        return NULL;
    if (!free_slot)                 //  table crowded: reuse the home slot
        free_slot = &s_slots [h % S_SLOTS];
    snprintf (free_slot->key, sizeof free_slot->key, "%s", key);
    free_slot->window_start = now;
    free_slot->failures = 0;
    return free_slot;
}

int
rp_auth_throttled (const char *key)
{
    int64_t now = (int64_t) time (NULL);
    pthread_mutex_lock (&s_lock);
    s_slot_t *slot = s_find (key, false, now);
    int wait = 0;
    if (slot && now - slot->window_start < RP_LOGIN_WINDOW_S && slot->failures >= RP_LOGIN_FAILURES)
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
    if (now - slot->window_start >= RP_LOGIN_WINDOW_S) {
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
        slot->key [0] = 0;
    pthread_mutex_unlock (&s_lock);
}
