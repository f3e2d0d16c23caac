/*  gateway/auth.h: access tokens and login throttling.

    Tokens are HS256 JWTs made and checked by libjwt: "sub" is the user id,
    "pwd" the stamp of the user's password when it was issued, "iat" and
    "exp" are Unix seconds. The signing key is auth.jwt_secret (at least 32
    bytes, checked at start-up), or when that is unset a secret generated
    once (32 random bytes, hex) into <data.dir>/jwt_secret with mode 0600,
    so `rapidphoto token` and the gateway agree without configuration.
*/
#ifndef RP_GATEWAY_AUTH_H
#define RP_GATEWAY_AUTH_H

#include <stdbool.h>
#include <stdint.h>
#include "engine/config.h"
#include "engine/db/db.h"

#define RP_SECRET_MAX 520

//  The signing secret into secret: configured, read, or generated. 0 or -1 with err.
int rp_auth_secret (const rp_config_t *config, char secret [RP_SECRET_MAX], char *err, size_t errlen);

//  The stamp of a user's current password hash in their tokens: an HMAC of
//  it under the signing secret (it reveals nothing of the hash). A new
//  password (`rapidphoto user passwd`) has a new salt, so a new stamp, and
//  every token issued before no longer matches.
#define RP_AUTH_STAMP_MAX 33
void rp_auth_stamp (const char *secret, const char *password_hash, char stamp [RP_AUTH_STAMP_MAX]);

//  A token for user_id valid ttl seconds, carrying the stamp of the
//  password hash it was issued under; caller frees. NULL on failure.
char *rp_auth_token_issue (const char *secret, const char *user_id, const char *password_hash, int64_t ttl,
                           int64_t *expires_at);

//  Check a token's signature, algorithm and expiry; user_id receives "sub",
//  stamp its password stamp. 0, or -1 with a reason a client may see.
int rp_auth_token_verify (const char *secret, const char *token, char user_id [RP_ID_MAX],
                          char stamp [RP_AUTH_STAMP_MAX], char *err, size_t errlen);

//  The stamps of users' current passwords, as last read from the database,
//  so checking a token's stamp costs no query per request: a stamp read
//  within max_age_ms is used as it is. Thread-safe; a bounded table (a
//  user pushed out is read again).
bool rp_auth_stamp_cached (const char *user_id, int64_t now_ms, int64_t max_age_ms,
                           char stamp [RP_AUTH_STAMP_MAX]);
void rp_auth_stamp_remember (const char *user_id, const char stamp [RP_AUTH_STAMP_MAX], int64_t now_ms);

//  Failed-login throttle: failures per key (an address and a user name, a
//  user name, an address) counted in windows of RP_LOGIN_WINDOW_S, each key
//  with the limit its caller gives. Thread-safe. Keys are kept by a keyed
//  hash in a fixed table; a key is pushed out only for one with more
//  failures to count, never by crafted names (auth.c says why it cannot
//  be made to forget).
#define RP_LOGIN_WINDOW_S 60
//  Seconds until key may try again (0: now), when it has limit failures.
int rp_auth_throttled (const char *key, int limit);
void rp_auth_failed (const char *key);
void rp_auth_succeeded (const char *key);

#endif
