/*  gateway/auth.h: access tokens and login throttling.

    Tokens are HS256 JWTs made and checked by libjwt: "sub" is the user id,
    "iat" and "exp" are Unix seconds. The signing key is auth.jwt_secret, or
    when that is unset a secret generated once (32 random bytes, hex) into
    <data.dir>/jwt_secret with mode 0600, so `rapidphoto token` and the
    gateway agree without configuration.
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

//  A token for user_id valid ttl seconds; caller frees. NULL on failure.
char *rp_auth_token_issue (const char *secret, const char *user_id, int64_t ttl, int64_t *expires_at);

//  Check a token's signature, algorithm and expiry; user_id receives "sub".
//  0, or -1 with a reason a client may see.
int rp_auth_token_verify (const char *secret, const char *token, char user_id [RP_ID_MAX],
                          char *err, size_t errlen);

//  Failed-login throttle: at most RP_LOGIN_FAILURES failures per key (a user
//  name, an address) per RP_LOGIN_WINDOW_S seconds. Thread-safe.
#define RP_LOGIN_FAILURES 5
#define RP_LOGIN_WINDOW_S 60
//  Seconds until key may try again (0: now).
int rp_auth_throttled (const char *key);
void rp_auth_failed (const char *key);
void rp_auth_succeeded (const char *key);

#endif
