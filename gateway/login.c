/*  gateway/login.c: the HTTP side of auth.c. POST /api/v1/auth/login
    trades a user name and password for a token; every other API request
    proves itself with that token in Authorization: Bearer.

    DESIGN
    Plain functions on the MHD thread that owns the request; the state
    they use is auth.c's (the throttle's table and the password stamps,
    thread-safe), one decoy hash made once per process, and the count of
    password checks running.
    Who the client is: the connection's address, or behind a trusted proxy
    (http.trusted_proxies) the one X-Forwarded-For names (address.h); an
    IPv6 client counts by its /64.
    Login: failures are counted per (client, user name), per user name and
    per client, each with its own limit a minute (auth.login_failures,
    _per_user, _per_address), then 429 with Retry-After naming the limit.
    The first stops one guesser at one account; the second bounds guesses
    at an account from many addresses; the third, much higher, bounds one
    address spraying names without locking out everyone behind it (a
    company's NAT, a proxy that is not trusted). A success clears the
    first two. At most auth.password_checks password checks run at once
    (each a 16 MiB scrypt); past that a login is answered 503 with
    Retry-After at once, so logins never take every HTTP thread. An
    unknown name is checked against the decoy hash, so it costs the same
    scrypt as a known one and timing tells no one which names exist. The
    password is copied off the JSON body and wiped after the check.
    Tokens: the signature and expiry (auth.c), then the token's password
    stamp against the user's current one, read from the database at most
    every S_STAMP_AGE_MS per user (auth.c keeps them), so a token stops
    working within that long of `rapidphoto user passwd`.
*/
#include "engine/clock.h"
#include "engine/log.h"
#include "gateway/gateway_private.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S_STAMP_AGE_MS 5000             //  how stale a password stamp may be
#define S_FORWARDED_MAX 2048            //  X-Forwarded-For, all its lines

int
rp_gw_authenticate (struct MHD_Connection *c, rp_req_t *req, char *why, size_t whylen)
{
    const char *header = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Authorization");
    if (!header || strncasecmp (header, "Bearer ", 7) != 0) {
        snprintf (why, whylen, "an Authorization: Bearer <token> header is required (POST /api/v1/auth/login)");
        return 401;
    }
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    char user_id [RP_ID_MAX], stamp [RP_AUTH_STAMP_MAX], current [RP_AUTH_STAMP_MAX];
    if (rp_auth_token_verify (rp_gw->secret, token, user_id, stamp, why, whylen))
        return 401;
    int64_t now = rp_clock_ms ();
    if (!rp_auth_stamp_cached (user_id, now, S_STAMP_AGE_MS, current)) {
        char err [256], hash [RP_PASSWORD_HASH_MAX];
        rp_db_t *db = rp_gw_db (err, sizeof err);
        int rc = db ? rp_db_user_hash (db, user_id, hash, sizeof hash, err, sizeof err) : -1;
        if (rc == RP_NOT_FOUND) {
            snprintf (why, whylen, "the access token's user no longer exists");
            return 401;
        }
        if (rc) {
            rp_warn ("gateway", "req=%s cannot check a token: %s", req->id, err);
            snprintf (why, whylen, "the photo library is unavailable; try again shortly");
            return 503;
        }
        rp_auth_stamp (rp_gw->secret, hash, current);
        rp_auth_stamp_remember (user_id, current, now);
    }
    if (strcmp (stamp, current) != 0) {
        snprintf (why, whylen, "the password changed since this token was issued: log in again");
        return 401;
    }
    snprintf (req->user_id, sizeof req->user_id, "%s", user_id);
    return 0;
}

//  Every X-Forwarded-For line, joined by commas in the order they came
typedef struct {
    char text [S_FORWARDED_MAX];
    size_t len;
    bool over;
} s_forwarded_t;

static enum MHD_Result
s_forwarded_line (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    s_forwarded_t *self = (s_forwarded_t *) cls;
    if (strcasecmp (key, "X-Forwarded-For") != 0 || !value)
        return MHD_YES;
    size_t len = strlen (value);
    if (self->len + len + 2 >= sizeof self->text) {
        self->over = true;
        return MHD_NO;
    }
    if (self->len)
        self->text [self->len++] = ',';
    memcpy (self->text + self->len, value, len + 1);
    self->len += len;
    return MHD_YES;
}

void
rp_gw_client (struct MHD_Connection *c, char key [RP_ADDRESS_KEY_MAX])
{
    snprintf (key, RP_ADDRESS_KEY_MAX, "unknown");
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    uint8_t peer [16], client [16];
    if (!info || !rp_address_from_sockaddr (info->client_addr, peer))
        return;
    s_forwarded_t forwarded = { .len = 0 };
    if (rp_proxies_has (&rp_gw->proxies, peer))
        MHD_get_connection_values (c, MHD_HEADER_KIND, s_forwarded_line, &forwarded);
    //  Too long to read whole: the proxy's own address is all we believe
    rp_address_client (&rp_gw->proxies, peer, forwarded.len && !forwarded.over ? forwarded.text : NULL, client);
    rp_address_key (client, key);
}

static char s_dummy_hash [RP_PASSWORD_HASH_MAX];
static pthread_once_t s_dummy_once = PTHREAD_ONCE_INIT;

static void
s_dummy_make (void)
{
    rp_password_hash ("no such user: timing decoy", s_dummy_hash, sizeof s_dummy_hash);
}

//  Password checks running now, at most auth.password_checks
static pthread_mutex_t s_checks_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_checks = 0;

static bool
s_check_begin (void)
{
    pthread_mutex_lock (&s_checks_lock);
    bool room = s_checks < rp_gw->config.auth_password_checks;
    if (room)
        s_checks++;
    pthread_mutex_unlock (&s_checks_lock);
    return room;
}

static void
s_check_end (void)
{
    pthread_mutex_lock (&s_checks_lock);
    s_checks--;
    pthread_mutex_unlock (&s_checks_lock);
}

//  429 when one of the login's keys has had its failures; else MHD_NO
//  with *answered false.
static enum MHD_Result
s_throttle (struct MHD_Connection *c, rp_req_t *req, const char *const keys [3], bool *answered)
{
    static const char *const settings [3] = { "auth.login_failures", "auth.login_failures_per_user",
                                              "auth.login_failures_per_address" };
    static const char *const whose [3] = { "this user name from your address", "this user name",
                                           "your address" };
    const int limits [3] = { rp_gw->config.auth_login_failures, rp_gw->config.auth_login_failures_per_user,
                             rp_gw->config.auth_login_failures_per_address };
    *answered = false;
    for (int i = 0; i < 3; i++) {
        int wait = rp_auth_throttled (keys [i], limits [i]);
        if (wait > 0) {
            char detail [256], retry [16];
            snprintf (detail, sizeof detail, "too many failed logins for %s (%s = %d a minute); try again in %d seconds",
                      whose [i], settings [i], limits [i], wait);
            snprintf (retry, sizeof retry, "%d", wait);
            *answered = true;
            return rp_gw_problem_h (c, req, 429, "Too many requests", detail, "Retry-After", retry);
        }
    }
    return MHD_NO;
}

enum MHD_Result
rp_gw_login (struct MHD_Connection *c, rp_req_t *req)
{
    json_t *body = rp_gw_body_json (req);
    const char *name = json_string_value (json_object_get (body, "username"));
    const char *password = json_string_value (json_object_get (body, "password"));
    if (!name || !password || !*name || strlen (name) > 64 || strlen (password) > 1024) {
        json_decref (body);
        return rp_gw_problem (c, req, 400, "Bad request",
                              "send {\"username\": \"...\", \"password\": \"...\"} as JSON");
    }
    //  Copies: the body goes before the last use of the name
    char user_name [65], secret [1025];
    snprintf (user_name, sizeof user_name, "%s", name);
    snprintf (secret, sizeof secret, "%s", password);
    name = user_name;
    password = secret;
    json_decref (body);
    char address [RP_ADDRESS_KEY_MAX], pair_key [200], user_key [96], address_key [96];
    rp_gw_client (c, address);
    snprintf (pair_key, sizeof pair_key, "pair:%s|%s", address, name);
    snprintf (user_key, sizeof user_key, "user:%s", name);
    snprintf (address_key, sizeof address_key, "addr:%s", address);
    const char *const keys [3] = { pair_key, user_key, address_key };
    bool answered = false;
    enum MHD_Result answer = s_throttle (c, req, keys, &answered);
    if (answered) {
        explicit_bzero (secret, sizeof secret);
        return answer;
    }
    if (!s_check_begin ()) {
        explicit_bzero (secret, sizeof secret);
        char detail [200];
        snprintf (detail, sizeof detail, "too many logins are being checked at once (auth.password_checks = %d); "
                  "try again in a second", rp_gw->config.auth_password_checks);
        return rp_gw_problem_h (c, req, 503, "Service unavailable", detail, "Retry-After", "1");
    }
    char err [256];
    char id [RP_ID_MAX] = "", hash [RP_PASSWORD_HASH_MAX] = "";
    rp_db_t *db = rp_gw_db (err, sizeof err);
    int rc = db ? rp_db_user_find (db, name, id, hash, sizeof hash, err, sizeof err) : -1;
    if (rc == -1) {
        s_check_end ();
        explicit_bzero (secret, sizeof secret);
        return rp_gw_db_problem (c, req, -1, err);
    }
    //  An unknown name costs the same scrypt as a known one: no user enumeration by timing
    pthread_once (&s_dummy_once, s_dummy_make);
    bool ok = rp_password_verify (password, rc == 0 ? hash : s_dummy_hash) && rc == 0;
    s_check_end ();
    explicit_bzero (secret, sizeof secret);
    if (!ok) {
        for (int i = 0; i < 3; i++)
            rp_auth_failed (keys [i]);
        rp_info ("gateway", "req=%s failed login for user %.64s from %s", req->id, name, address);
        return rp_gw_problem (c, req, 401, "Unauthorized", "wrong user name or password");
    }
    rp_auth_succeeded (pair_key);
    rp_auth_succeeded (user_key);
    snprintf (req->user_id, sizeof req->user_id, "%s", id);
    char stamp [RP_AUTH_STAMP_MAX];
    rp_auth_stamp (rp_gw->secret, hash, stamp);
    rp_auth_stamp_remember (id, stamp, rp_clock_ms ());
    int64_t expires_at = 0;
    char *token = rp_auth_token_issue (rp_gw->secret, id, hash, rp_gw->config.auth_token_ttl, &expires_at);
    explicit_bzero (hash, sizeof hash);
    if (!token)
        return rp_gw_problem (c, req, 500, "Internal error", "cannot make a token");
    char when [32];
    time_t t = (time_t) expires_at;
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *json = json_pack ("{s:s, s:s, s:s}", "token", token, "expires_at", when, "user_id", id);
    free (token);
    return rp_gw_json (c, req, 200, json);
}
