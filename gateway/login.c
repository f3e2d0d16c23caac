/*  gateway/login.c: the HTTP side of auth.c. POST /api/v1/auth/login
    trades a user name and password for a token; every other API request
    proves itself with that token in Authorization: Bearer.

    DESIGN
    Plain functions on the MHD thread that owns the request; the state
    they use is auth.c's (the throttle's table, thread-safe) and one decoy
    hash made once per process.
    Login: at most RP_LOGIN_FAILURES failures per user name and per client
    address in RP_LOGIN_WINDOW_S (auth.h), then 429 with Retry-After. An
    unknown name is checked against the decoy hash, so it costs the same
    scrypt as a known one and timing tells no one which names exist. The
    password is copied off the JSON body and wiped after the check.
*/
#include "engine/log.h"
#include "gateway/gateway_private.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

bool
rp_gw_authenticate (struct MHD_Connection *c, rp_req_t *req, char *why, size_t whylen)
{
    const char *header = MHD_lookup_connection_value (c, MHD_HEADER_KIND, "Authorization");
    if (!header || strncasecmp (header, "Bearer ", 7) != 0) {
        snprintf (why, whylen, "an Authorization: Bearer <token> header is required (POST /api/v1/auth/login)");
        return false;
    }
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    return rp_auth_token_verify (rp_gw->secret, token, req->user_id, why, whylen) == 0;
}

static void
s_client_address (struct MHD_Connection *c, char *out, size_t outlen)
{
    snprintf (out, outlen, "unknown");
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop (AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, out, (socklen_t) outlen);
    else
    if (sa->sa_family == AF_INET6)
        inet_ntop (AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, out, (socklen_t) outlen);
}

static char s_dummy_hash [RP_PASSWORD_HASH_MAX];
static pthread_once_t s_dummy_once = PTHREAD_ONCE_INIT;

static void
s_dummy_make (void)
{
    rp_password_hash ("no such user: timing decoy", s_dummy_hash, sizeof s_dummy_hash);
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
    char address [64], user_key [128], address_key [96];
    s_client_address (c, address, sizeof address);
    snprintf (user_key, sizeof user_key, "user:%s", name);
    snprintf (address_key, sizeof address_key, "addr:%s", address);
    int wait_user = rp_auth_throttled (user_key), wait_addr = rp_auth_throttled (address_key);
    int wait = wait_user > wait_addr ? wait_user : wait_addr;
    if (wait > 0) {
        char detail [160], retry [16];
        snprintf (detail, sizeof detail, "too many failed logins; try again in %d seconds", wait);
        snprintf (retry, sizeof retry, "%d", wait);
        return rp_gw_problem_h (c, req, 429, "Too many requests", detail, "Retry-After", retry);
    }
    char err [256];
    rp_db_t *db = rp_gw_db (err, sizeof err);
    if (!db)
        return rp_gw_db_problem (c, req, -1, err);
    char id [RP_ID_MAX] = "", hash [RP_PASSWORD_HASH_MAX] = "";
    int rc = rp_db_user_find (db, name, id, hash, sizeof hash, err, sizeof err);
    if (rc == -1)
        return rp_gw_db_problem (c, req, -1, err);
    //  An unknown name costs the same scrypt as a known one: no user enumeration by timing
    pthread_once (&s_dummy_once, s_dummy_make);
    bool ok = rp_password_verify (password, rc == 0 ? hash : s_dummy_hash) && rc == 0;
    explicit_bzero (secret, sizeof secret);
    if (!ok) {
        rp_auth_failed (user_key);
        rp_auth_failed (address_key);
        rp_info ("gateway", "req=%s failed login for user %.64s from %s", req->id, name, address);
        return rp_gw_problem (c, req, 401, "Unauthorized", "wrong user name or password");
    }
    rp_auth_succeeded (user_key);
    snprintf (req->user_id, sizeof req->user_id, "%s", id);
    int64_t expires_at = 0;
    char *token = rp_auth_token_issue (rp_gw->secret, id, rp_gw->config.auth_token_ttl, &expires_at);
    if (!token)
        return rp_gw_problem (c, req, 500, "Internal error", "cannot make a token");
    char when [32];
    time_t t = (time_t) expires_at;
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *answer = json_pack ("{s:s, s:s, s:s}", "token", token, "expires_at", when, "user_id", id);
    free (token);
    return rp_gw_json (c, req, 200, answer);
}
