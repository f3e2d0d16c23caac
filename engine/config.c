/*  engine/config.c: see config.h.

    Every key the engine knows is in s_keys below, with its default; adding a
    setting means adding a row there and a field in rp_config_t. The
    [derivatives] section is open: each key names a derivative. A key that
    is gone moves to s_retired, so configs that still set it keep starting.
*/
#include "engine/config.h"
#include "engine/link.h"
#include "engine/log.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char **environ;

typedef enum { K_STR, K_INT, K_ENUM, K_FAILON, K_LOGLEVEL, K_LOGOUTPUT, K_LOGFORMAT, K_RATE, K_ENDPOINT, K_BOOL, K_KEY, K_KEYS } s_kind_t;

typedef struct {
    const char *section;
    const char *key;
    s_kind_t kind;
    size_t offset;              //  field in rp_config_t
    size_t size;                //  for strings: buffer size; for ints: sizeof
    int64_t min, max;           //  for ints
    const char *choices;        //  for enums: "a|b|c"
    const char *def;            //  default, as text
} s_key_t;

#define STR(sec, k, field, def) \
    { sec, k, K_STR, offsetof (rp_config_t, field), sizeof (((rp_config_t *) 0)->field), 0, 0, NULL, def }
#define INT(sec, k, field, lo, hi, def) \
    { sec, k, K_INT, offsetof (rp_config_t, field), sizeof (((rp_config_t *) 0)->field), lo, hi, NULL, def }
#define ENUM(sec, k, field, choices, def) \
    { sec, k, K_ENUM, offsetof (rp_config_t, field), sizeof (((rp_config_t *) 0)->field), 0, 0, choices, def }
#define BOOL(sec, k, field, def) \
    { sec, k, K_BOOL, offsetof (rp_config_t, field), sizeof (int), 0, 0, "no|yes", def }
#define KEY(sec, k, kind, field) \
    { sec, k, kind, offsetof (rp_config_t, field), sizeof (((rp_config_t *) 0)->field), 0, 0, NULL, "" }

static const s_key_t s_keys [] = {
    STR  ("http", "listen", http_listen, "127.0.0.1:8080"),
    INT  ("http", "max_connections", http_max_connections, 16, 1000000, "2048"),
    INT  ("http", "max_connections_per_address", http_max_connections_per_address, 0, 1000000, "256"),
    INT  ("http", "max_streams", http_max_streams, 1, 1000000, "1024"),
    INT  ("http", "max_streams_per_user", http_max_streams_per_user, 1, 1000000, "16"),
    STR  ("http", "trusted_proxies", http_trusted_proxies, ""),
    STR  ("data", "dir", data_dir, "./var"),
    STR  ("db", "url", db_url, ""),
    ENUM ("storage", "backend", storage_backend, "disk|s3", "disk"),
    STR  ("storage", "s3_bucket", storage_s3_bucket, ""),
    STR  ("storage", "s3_prefix", storage_s3_prefix, ""),
    BOOL ("storage", "s3_stream", storage_s3_stream, "yes"),
    STR  ("auth", "jwt_secret", auth_jwt_secret, ""),
    INT  ("auth", "token_ttl", auth_token_ttl, 60, 365LL * 86400, "86400"),
    INT  ("auth", "login_failures", auth_login_failures, 1, 1000000, "5"),
    INT  ("auth", "login_failures_per_user", auth_login_failures_per_user, 1, 1000000, "20"),
    INT  ("auth", "login_failures_per_address", auth_login_failures_per_address, 1, 1000000, "100"),
    INT  ("auth", "password_checks", auth_password_checks, 0, 256, "0"),
    STR  ("metrics", "token", metrics_token, ""),
    BOOL ("metrics", "emf", metrics_emf, "off"),
    STR  ("metrics", "emf_namespace", metrics_emf_namespace, "RapidPhotoUpload"),
    INT  ("metrics", "emf_interval_s", metrics_emf_interval_s, 1, 3600, "60"),
    INT  ("limits", "max_upload_bytes", limits_max_upload_bytes, 1, 1LL << 40, "104857600"),
    INT  ("limits", "max_request_bytes", limits_max_request_bytes, 1, 1LL << 40, "1G"),
    INT  ("limits", "max_pixels", limits_max_pixels, 1, 1LL << 40, "100000000"),
    { "limits", "fail_on", K_FAILON, offsetof (rp_config_t, limits_fail_on), sizeof (int),
      0, 0, "none|truncated|error|warning", "truncated" },
    INT  ("pools", "resize", pools_resize, 0, 256, "0"),
    INT  ("pools", "exif", pools_exif, 0, 256, "0"),
    INT  ("pools", "vips_concurrency", pools_vips_concurrency, 0, 256, "1"),
    INT  ("pools", "nice", pools_nice, 0, 19, "10"),
    { "broker", "frontend", K_ENDPOINT, offsetof (rp_config_t, broker_frontend),
      sizeof (((rp_config_t *) 0)->broker_frontend), 0, 0, NULL, "tcp://127.0.0.1:5570" },
    { "broker", "backend", K_ENDPOINT, offsetof (rp_config_t, broker_backend),
      sizeof (((rp_config_t *) 0)->broker_backend), 0, 0, NULL, "tcp://127.0.0.1:5571" },
    INT  ("broker", "heartbeat_ms", broker_heartbeat_ms, 50, 60000, "1000"),
    INT  ("broker", "liveness", broker_liveness, 2, 100, "3"),
    INT  ("broker", "job_timeout_ms", broker_job_timeout_ms, 100, 3600000, "60000"),
    INT  ("broker", "max_attempts", broker_max_attempts, 1, 100, "3"),
    INT  ("broker", "drain_ms", broker_drain_ms, 0, 600000, "10000"),
    INT  ("broker", "queue_max", broker_queue_max, 1, 1000000, "10000"),
    INT  ("broker", "queue_expiry_ms", broker_queue_expiry_ms, 0, 86400000, "0"),
    KEY  ("broker", "curve_secret_key", K_KEY, broker_curve_secret_key),
    KEY  ("broker", "curve_clients", K_KEYS, broker_curve_clients),
    KEY  ("broker", "curve_server_key", K_KEY, broker_curve_server_key),
    KEY  ("broker", "curve_client_secret_key", K_KEY, broker_curve_client_secret_key),
    BOOL ("broker", "trust_network", broker_trust_network, "no"),
    INT  ("pipeline", "max_attempts", pipeline_max_attempts, 1, 100, "3"),
    INT  ("pipeline", "retry_base_ms", pipeline_retry_base_ms, 0, 3600000, "1000"),
    INT  ("pipeline", "in_flight", pipeline_in_flight, 0, 10000, "0"),
    INT  ("uploads", "tus_expire_s", uploads_tus_expire_s, 1, 365LL * 86400, "86400"),
    INT  ("uploads", "tus_lock_s", uploads_tus_lock_s, 1, 3600, "10"),
    INT  ("uploads", "max_open_per_user", uploads_max_open_per_user, 1, 1000000, "100"),
    INT  ("storage", "orphan_grace_s", storage_orphan_grace_s, 0, 365LL * 86400, "3600"),
    INT  ("scrub", "rate_mb_s", scrub_rate_mb_s, 0, 100000, "0"),
    INT  ("scrub", "recheck_s", scrub_recheck_s, 1, 10LL * 365 * 86400, "2592000"),
    STR  ("sqs", "ingest_queue_url", sqs_ingest_queue_url, ""),
    STR  ("sqs", "events_queue_url", sqs_events_queue_url, ""),
    ENUM ("sqs", "protocol", sqs_protocol, "json|query", "json"),
    INT  ("sqs", "visibility_s", sqs_visibility_s, 5, 43200, "60"),
    INT  ("sqs", "wait_s", sqs_wait_s, 0, 20, "20"),
    INT  ("shutdown", "timeout_s", shutdown_timeout_s, 1, 3600, "25"),
    INT  ("lambda", "deadline_margin_ms", lambda_deadline_margin_ms, 100, 600000, "1500"),
    { "log", "level", K_LOGLEVEL, offsetof (rp_config_t, log_level), sizeof (int),
      0, 0, "debug|info|warn|error", "info" },
    { "log", "output", K_LOGOUTPUT, offsetof (rp_config_t, log_output), sizeof (int),
      0, 0, "stderr|stdout", "stderr" },
    { "log", "format", K_LOGFORMAT, offsetof (rp_config_t, log_format), sizeof (int),
      0, 0, "text|json", "text" },
    { "tracing", "sample_rate", K_RATE, offsetof (rp_config_t, tracing_sample_rate), sizeof (double),
      0, 0, NULL, "0.05" },
};
#define S_KEY_COUNT (sizeof s_keys / sizeof s_keys [0])

//  Keys that once meant something and now do nothing. Setting one is not
//  an error (an unknown key would stop start-up): it is ignored, with one
//  warning line each time it is set.
static const struct { const char *section, *key, *why; } s_retired [] = {
    //  A job kind that never came: whatever receives a photo's bytes (an
    //  upload, an import, the SQS bridge) stores them itself through
    //  library/library.h before it answers
    { "pools", "store", "there is no store job kind: the bytes are stored as they arrive" },
};

static const s_key_t *
s_key_find (const char *section, const char *key)
{
    for (size_t i = 0; i < S_KEY_COUNT; i++)
        if (strcasecmp (s_keys [i].section, section) == 0
        &&  strcasecmp (s_keys [i].key, key) == 0)
            return &s_keys [i];
    return NULL;
}

static int
s_choice_index (const char *choices, const char *value)
{
    size_t vlen = strlen (value);
    int index = 0;
    const char *p = choices;
    while (*p) {
        const char *bar = strchr (p, '|');
        size_t len = bar ? (size_t) (bar - p) : strlen (p);
        if (len == vlen && strncasecmp (p, value, len) == 0)
            return index;
        if (!bar)
            break;
        p = bar + 1;
        index++;
    }
    return -1;
}

//  Parse an integer with an optional K/M/G (binary) suffix.
static int
s_parse_int (const char *text, int64_t *out)
{
    errno = 0;
    char *end = NULL;
    long long v = strtoll (text, &end, 10);
    if (errno || end == text)
        return -1;
    int64_t mult = 1;
    if (*end == 'K' || *end == 'k') { mult = 1024; end++; }
    else if (*end == 'M' || *end == 'm') { mult = 1024 * 1024; end++; }
    else if (*end == 'G' || *end == 'g') { mult = 1024LL * 1024 * 1024; end++; }
    while (isspace ((unsigned char) *end))
        end++;
    if (*end)
        return -1;
    if (v > INT64_MAX / mult || v < INT64_MIN / mult)
        return -1;
    *out = (int64_t) v * mult;
    return 0;
}

int
rp_derivative_parse (rp_derivative_t *d, const char *spec, char *err, size_t errlen)
{
    char format [8] = "";
    int quality = 0, width = 0, height = 0;
    char tail = 0;
    if (sscanf (spec, "%7s %d %dx%d %c", format, &quality, &width, &height, &tail) != 4) {
        snprintf (err, errlen, "expected \"FORMAT QUALITY WIDTHxHEIGHT\" (e.g. \"webp 80 256x256\"), got \"%s\"", spec);
        return -1;
    }
    if (s_choice_index ("webp|jpeg|png|avif", format) < 0) {
        snprintf (err, errlen, "format \"%s\" is not one of webp, jpeg, png, avif", format);
        return -1;
    }
    if (quality < 1 || quality > 100) {
        snprintf (err, errlen, "quality %d is outside 1..100", quality);
        return -1;
    }
    if (width < 8 || height < 8 || width > 16384 || height > 16384) {
        snprintf (err, errlen, "size %dx%d is outside 8..16384", width, height);
        return -1;
    }
    for (char *c = format; *c; c++)
        *c = (char) tolower ((unsigned char) *c);
    snprintf (d->format, sizeof d->format, "%s", format);
    d->quality = quality;
    d->width = width;
    d->height = height;
    return 0;
}

static int
s_set_derivative (rp_config_t *config, const char *name, const char *value,
                  char *err, size_t errlen)
{
    size_t nlen = strlen (name);
    if (nlen == 0 || nlen >= sizeof config->derivatives [0].name) {
        snprintf (err, errlen, "derivatives.%s: name must be 1..31 characters", name);
        return -1;
    }
    for (const char *c = name; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '_') {
            snprintf (err, errlen, "derivatives.%s: name may hold only letters, digits and _", name);
            return -1;
        }
    rp_derivative_t *slot = NULL;
    for (int i = 0; i < config->derivative_count; i++)
        if (strcasecmp (config->derivatives [i].name, name) == 0)
            slot = &config->derivatives [i];
    if (strcasecmp (value, "off") == 0) {
        //  Drop it from the list
        if (slot) {
            int index = (int) (slot - config->derivatives);
            memmove (slot, slot + 1, sizeof *slot * (size_t) (config->derivative_count - index - 1));
            config->derivative_count--;
        }
        return 0;
    }
    rp_derivative_t d;
    memset (&d, 0, sizeof d);
    char why [256];
    if (rp_derivative_parse (&d, value, why, sizeof why)) {
        snprintf (err, errlen, "derivatives.%s: %s", name, why);
        return -1;
    }
    for (size_t i = 0; i <= nlen; i++)
        d.name [i] = (char) tolower ((unsigned char) name [i]);
    if (!slot) {
        if (config->derivative_count >= RP_DERIVATIVES_MAX) {
            snprintf (err, errlen, "derivatives.%s: at most %d derivatives", name, RP_DERIVATIVES_MAX);
            return -1;
        }
        slot = &config->derivatives [config->derivative_count++];
    }
    *slot = d;
    return 0;
}

//  A CURVE key setting: Z85 keys separated by commas, spaces or new lines,
//  or "@PATH": a file that holds them, one a line, "#" starting a comment
//  line (a secret from a mounted volume). "@" is a Z85 character too, so a
//  value is a file when it starts with "@" and names one that exists, or
//  is no key; a key that begins with "@" is taken as a key.
//  K_KEY takes one key (or none: ""), K_KEYS a list, kept comma-separated.
//  On error the field is untouched.
#define S_KEY_FILE_MAX (64 * 1024)

static int
s_set_keys (const s_key_t *k, char *field, const char *value, char *err, size_t errlen)
{
    const char *text = value;
    char *file_text = NULL;
    if (*value == '@' && (access (value + 1, F_OK) == 0 || !rp_curve_key_valid (value, strlen (value)))) {
        FILE *file = fopen (value + 1, "r");
        if (!file) {
            snprintf (err, errlen, "%s.%s: cannot read key file %s: %s", k->section, k->key,
                      value + 1, strerror (errno));
            return -1;
        }
        file_text = calloc (1, S_KEY_FILE_MAX + 1);
        size_t n = file_text ? fread (file_text, 1, S_KEY_FILE_MAX + 1, file) : 0;
        fclose (file);
        if (!file_text || n > S_KEY_FILE_MAX) {
            snprintf (err, errlen, "%s.%s: key file %s is %s", k->section, k->key, value + 1,
                      file_text ? "larger than 64 KiB" : "too big for memory");
            free (file_text);
            return -1;
        }
        file_text [n] = 0;
        text = file_text;
    }
    char keys [RP_CURVE_CLIENTS_MAX] = "";
    size_t used = 0;
    int count = 0, rc = 0;
    const char *p = text;
    while (*p && rc == 0) {
        //  Skip separators; a "#" at the start of a line comments it out
        if (*p == ',' || isspace ((unsigned char) *p)) {
            p++;
            continue;
        }
        if (*p == '#' && (p == text || p [-1] == '\n')) {
            while (*p && *p != '\n')
                p++;
            continue;
        }
        size_t len = strcspn (p, ", \t\r\n");
        if (!rp_curve_key_valid (p, len)) {
            snprintf (err, errlen, "%s.%s: \"%.*s\" is not a Z85 key (40 characters, as "
                      "`rapidphoto keygen` prints them)", k->section, k->key,
                      (int) (len > 48 ? 48 : len), p);
            rc = -1;
        }
        else
        if (++count > 1 && k->kind == K_KEY) {
            snprintf (err, errlen, "%s.%s: takes one key, not a list", k->section, k->key);
            rc = -1;
        }
        else
        if (used + len + 1 >= k->size || used + len + 1 >= sizeof keys) {
            snprintf (err, errlen, "%s.%s: at most %zu keys", k->section, k->key,
                      (k->size - 1) / (RP_CURVE_KEY_LEN + 1));
            rc = -1;
        }
        else {
            if (used)
                keys [used++] = ',';
            memcpy (keys + used, p, len);
            used += len;
            keys [used] = 0;
        }
        p += len;
    }
    if (file_text) {
        //  It may hold a secret: leave no copy behind
        memset (file_text, 0, S_KEY_FILE_MAX + 1);
        free (file_text);
    }
    if (rc == 0)
        snprintf (field, k->size, "%s", keys);
    return rc;
}

int
rp_config_set (rp_config_t *config, const char *section, const char *key,
               const char *value, char *err, size_t errlen)
{
    if (strcasecmp (section, "derivatives") == 0)
        return s_set_derivative (config, key, value, err, errlen);

    for (size_t i = 0; i < sizeof s_retired / sizeof s_retired [0]; i++)
        if (strcasecmp (s_retired [i].section, section) == 0
        &&  strcasecmp (s_retired [i].key, key) == 0) {
            rp_warn ("config", "%s.%s is no longer used and is ignored (%s); remove it",
                     s_retired [i].section, s_retired [i].key, s_retired [i].why);
            return 0;
        }
    const s_key_t *k = s_key_find (section, key);
    if (!k) {
        snprintf (err, errlen, "unknown setting %s.%s", section, key);
        return -1;
    }
    char *field = (char *) config + k->offset;
    switch (k->kind) {
        case K_STR:
        case K_ENDPOINT:
            if (strlen (value) >= k->size) {
                snprintf (err, errlen, "%s.%s: value is longer than %zu characters",
                          section, key, k->size - 1);
                return -1;
            }
            if (k->kind == K_ENDPOINT && *value
            &&  strncmp (value, "tcp://", 6) != 0 && strncmp (value, "ipc://", 6) != 0
            &&  strncmp (value, "inproc://", 9) != 0) {
                snprintf (err, errlen, "%s.%s: \"%s\" is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH)",
                          section, key, value);
                return -1;
            }
            snprintf (field, k->size, "%s", value);
            return 0;
        case K_INT: {
            int64_t v;
            if (s_parse_int (value, &v) || v < k->min || v > k->max) {
                snprintf (err, errlen, "%s.%s: \"%s\" is not a whole number in %lld..%lld",
                          section, key, value, (long long) k->min, (long long) k->max);
                return -1;
            }
            if (k->size == sizeof (int))
                *(int *) field = (int) v;
            else
                *(int64_t *) field = v;
            return 0;
        }
        case K_RATE: {
            //  A fraction 0..1, as "0.05" or "5%"
            char *end = NULL;
            errno = 0;
            double v = strtod (value, &end);
            if (end && *end == '%' && end > value) {
                v /= 100;
                end++;
            }
            if (errno || !end || end == value || *end || !(v >= 0 && v <= 1)) {
                snprintf (err, errlen, "%s.%s: \"%s\" is not a fraction in 0..1 (0.05, or 5%%)",
                          section, key, value);
                return -1;
            }
            *(double *) field = v;
            return 0;
        }
        case K_KEY:
        case K_KEYS:
            return s_set_keys (k, field, value, err, errlen);
        case K_BOOL:
            if (strcasecmp (value, "yes") == 0 || strcasecmp (value, "true") == 0
            ||  strcasecmp (value, "on") == 0 || strcmp (value, "1") == 0)
                *(int *) field = 1;
            else
            if (strcasecmp (value, "no") == 0 || strcasecmp (value, "false") == 0
            ||  strcasecmp (value, "off") == 0 || strcmp (value, "0") == 0)
                *(int *) field = 0;
            else {
                snprintf (err, errlen, "%s.%s: \"%s\" is not yes or no", section, key, value);
                return -1;
            }
            return 0;
        case K_ENUM:
        case K_FAILON:
        case K_LOGLEVEL:
        case K_LOGOUTPUT:
        case K_LOGFORMAT: {
            int index = s_choice_index (k->choices, value);
            if (index < 0) {
                snprintf (err, errlen, "%s.%s: \"%s\" is not one of %s", section, key, value, k->choices);
                return -1;
            }
            if (k->kind == K_ENUM)
                snprintf (field, k->size, "%s", value);
            else
                *(int *) field = index;     //  fail_on: VipsFailOn order; log: rp_log_level_t, rp_log_output_t, rp_log_format_t order
            return 0;
        }
    }
    return -1;
}

void
rp_config_defaults (rp_config_t *config)
{
    memset (config, 0, sizeof *config);
    char err [256];
    for (size_t i = 0; i < S_KEY_COUNT; i++) {
        int rc = rp_config_set (config, s_keys [i].section, s_keys [i].key, s_keys [i].def,
                                err, sizeof err);
        (void) rc;
        //  Our own defaults must parse; a failure here is a programmer mistake
        if (rc)
            fprintf (stderr, "rapidphoto: bad built-in default: %s\n", err);
    }
    s_set_derivative (config, "thumbnail", "webp 80 256x256", err, sizeof err);
    s_set_derivative (config, "preview", "jpeg 82 1440x1440", err, sizeof err);
}

typedef struct {
    rp_config_t *config;
    const char *path;
    char *err;
    size_t errlen;
    int failed;
} s_ini_ctx_t;

static int
s_ini_handler (void *user, const char *section, const char *name, const char *value)
{
    s_ini_ctx_t *ctx = (s_ini_ctx_t *) user;
    if (ctx->failed)
        return 0;
    char why [RP_STR_MAX + 128];
    if (!*section) {
        snprintf (ctx->err, ctx->errlen, "%s: setting \"%s\" is outside any [section]",
                  ctx->path, name);
        ctx->failed = 1;
        return 0;
    }
    if (rp_config_set (ctx->config, section, name, value ? value : "", why, sizeof why)) {
        snprintf (ctx->err, ctx->errlen, "%s: %s", ctx->path, why);
        ctx->failed = 1;
        return 0;
    }
    return 1;
}

//  RAPIDPHOTO_<SECTION>_<KEY>=value. Section names hold no underscore, so the
//  first underscore after the prefix splits section from key.
static int
s_apply_env (rp_config_t *config, char *err, size_t errlen)
{
    static const char prefix [] = "RAPIDPHOTO_";
    for (char **e = environ; e && *e; e++) {
        if (strncmp (*e, prefix, sizeof prefix - 1) != 0)
            continue;
        const char *name = *e + sizeof prefix - 1;
        const char *eq = strchr (name, '=');
        if (!eq)
            continue;
        char var [128];
        size_t vlen = (size_t) (eq - name);
        if (vlen >= sizeof var)
            vlen = sizeof var - 1;
        memcpy (var, name, vlen);
        var [vlen] = 0;
        if (strcmp (var, "CONFIG") == 0)
            continue;       //  RAPIDPHOTO_CONFIG names the file, it is no setting
        char *us = strchr (var, '_');
        if (!us) {
            snprintf (err, errlen, "environment: RAPIDPHOTO_%s is not RAPIDPHOTO_<SECTION>_<KEY>", var);
            return -1;
        }
        *us = 0;
        char section [128], key [128];
        snprintf (section, sizeof section, "%s", var);
        snprintf (key, sizeof key, "%s", us + 1);
        for (char *c = section; *c; c++) *c = (char) tolower ((unsigned char) *c);
        for (char *c = key; *c; c++) *c = (char) tolower ((unsigned char) *c);
        char why [RP_STR_MAX + 128];
        if (rp_config_set (config, section, key, eq + 1, why, sizeof why)) {
            *us = '_';
            snprintf (err, errlen, "environment: RAPIDPHOTO_%s: %s", var, why);
            return -1;
        }
    }
    return 0;
}

int
rp_config_load (rp_config_t *config, const char *path, char *err, size_t errlen)
{
    rp_config_defaults (config);
    if (!path)
        path = getenv ("RAPIDPHOTO_CONFIG");
    if (path && *path) {
        FILE *file = fopen (path, "r");
        if (!file) {
            snprintf (err, errlen, "%s: cannot open config file: %s", path, strerror (errno));
            return -1;
        }
        s_ini_ctx_t ctx = { config, path, err, errlen, 0 };
        int rc = ini_parse_file (file, s_ini_handler, &ctx);
        fclose (file);
        if (ctx.failed)
            return -1;
        if (rc > 0) {
            snprintf (err, errlen, "%s:%d: not a valid INI line", path, rc);
            return -1;
        }
        if (rc < 0) {
            snprintf (err, errlen, "%s: cannot read config file", path);
            return -1;
        }
    }
    if (s_apply_env (config, err, errlen))
        return -1;

    //  Derived defaults
    if (!*config->db_url) {
        int n = snprintf (config->db_url, sizeof config->db_url, "sqlite:%s/rapidphoto.db", config->data_dir);
        if (n < 0 || (size_t) n >= sizeof config->db_url) {
            snprintf (err, errlen, "data.dir: path is too long");
            return -1;
        }
    }
    if (strncmp (config->db_url, "sqlite:", 7) != 0
    &&  strncmp (config->db_url, "postgresql://", 13) != 0
    &&  strncmp (config->db_url, "postgres://", 11) != 0) {
        snprintf (err, errlen, "db.url: \"%s\" is neither sqlite:<path> nor postgresql://...", config->db_url);
        return -1;
    }
    if (strcmp (config->storage_backend, "s3") == 0 && !*config->storage_s3_bucket) {
        snprintf (err, errlen, "storage.s3_bucket: must be set when storage.backend = s3");
        return -1;
    }
    //  The prefix is a folder: "photos" means "photos/"
    size_t prefix_len = strlen (config->storage_s3_prefix);
    if (prefix_len && config->storage_s3_prefix [prefix_len - 1] != '/') {
        if (prefix_len + 1 >= sizeof config->storage_s3_prefix) {
            snprintf (err, errlen, "storage.s3_prefix: too long");
            return -1;
        }
        strcat (config->storage_s3_prefix, "/");
    }
    if (config->storage_s3_prefix [0] == '/') {
        snprintf (err, errlen, "storage.s3_prefix: \"%s\" must not start with '/'", config->storage_s3_prefix);
        return -1;
    }
    //  An HMAC key shorter than its hash is a guessable one: the generated
    //  secret is 64 hex characters
    size_t secret_len = strlen (config->auth_jwt_secret);
    if (secret_len && secret_len < 32) {
        snprintf (err, errlen, "auth.jwt_secret: %zu bytes is too short to sign tokens with; use at least 32 "
                  "(`openssl rand -hex 32`), or leave it unset to have one generated", secret_len);
        return -1;
    }
    //  Streams are connections: their limit leaves room for every other request
    if (config->http_max_streams >= config->http_max_connections) {
        snprintf (err, errlen, "http.max_streams: %lld must be below http.max_connections (%lld)",
                  (long long) config->http_max_streams, (long long) config->http_max_connections);
        return -1;
    }
    //  CloudWatch's rule for a namespace: 1 to 255 of these characters,
    //  and not AWS/ (kept for AWS's own)
    size_t ns_len = strlen (config->metrics_emf_namespace);
    if (ns_len == 0 || ns_len > 255
    ||  strspn (config->metrics_emf_namespace, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/#: ") != ns_len
    ||  strncmp (config->metrics_emf_namespace, "AWS/", 4) == 0) {
        snprintf (err, errlen, "metrics.emf_namespace: \"%s\" is not a CloudWatch namespace (1 to 255 letters, "
                  "digits, spaces and . - _ / # :, not starting with AWS/)", config->metrics_emf_namespace);
        return -1;
    }
    if (config->derivative_count == 0) {
        snprintf (err, errlen, "derivatives: at least one derivative is needed");
        return -1;
    }
    //  CURVE keys come in pairs: a broker's key and the clients it lets in;
    //  a client's view of the broker and its own key
    if (!*config->broker_curve_secret_key != !*config->broker_curve_clients) {
        snprintf (err, errlen, *config->broker_curve_secret_key
                  ? "broker.curve_clients: list the public keys of the clients allowed in "
                    "(a broker with broker.curve_secret_key lets no one else in)"
                  : "broker.curve_clients: set broker.curve_secret_key too (the broker's own key)");
        return -1;
    }
    if (!*config->broker_curve_server_key != !*config->broker_curve_client_secret_key) {
        snprintf (err, errlen, *config->broker_curve_server_key
                  ? "broker.curve_client_secret_key: must be set with broker.curve_server_key "
                    "(this client's own key, its public half on the broker's list)"
                  : "broker.curve_server_key: must be set with broker.curve_client_secret_key "
                    "(the broker's public key)");
        return -1;
    }
    if ((*config->broker_curve_secret_key || *config->broker_curve_server_key) && !rp_curve_available ()) {
        snprintf (err, errlen, "broker.curve_*: this libzmq was built without CURVE");
        return -1;
    }
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    if (config->pools_resize == 0)
        config->pools_resize = (int) cores;
    if (config->pools_exif == 0)
        config->pools_exif = (int) (cores > 1 ? cores / 2 : 1);
    if (config->pipeline_in_flight == 0)
        config->pipeline_in_flight = 2 * config->pools_resize + 2;
    if (config->auth_password_checks == 0)
        config->auth_password_checks = (int) cores;
    rp_log_set_level ((rp_log_level_t) config->log_level);
    rp_log_set_output ((rp_log_output_t) config->log_output);
    rp_log_set_format ((rp_log_format_t) config->log_format);
    return 0;
}

const char *
rp_derivative_ext (const char *format, const char **mime)
{
    static const struct { const char *format, *ext, *mime; } known [] = {
        { "webp", "webp", "image/webp" }, { "jpeg", "jpg", "image/jpeg" },
        { "png", "png", "image/png" },    { "avif", "avif", "image/avif" },
    };
    for (size_t i = 0; i < sizeof known / sizeof known [0]; i++)
        if (strcmp (format, known [i].format) == 0) {
            if (mime)
                *mime = known [i].mime;
            return known [i].ext;
        }
    return NULL;
}
