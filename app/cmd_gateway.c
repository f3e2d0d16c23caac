/*  app/cmd_gateway.c: the HTTP roles: `rapidphoto gateway` (the gateway
    alone, feeding whichever engine processes the same database: a
    `pipeline` or a `serve`) and
    `rapidphoto token NAME` (an access token for scripts and load tests). */
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/log.h"
#include "engine/runtime.h"
#include "library/blobstore.h"
#include "library/library.h"
#include "gateway/auth.h"
#include "gateway/gateway.h"
#include "app/commands.h"
#include "app/roles.h"

#include <getopt.h>
#include <string.h>

int
rp_cmd_gateway (int argc, char **argv)
{
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 }
    };
    const char *config_path = NULL;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long (argc, argv, ":c:", options, NULL)) != -1) {
        if (opt == 'c')
            config_path = optarg;
        else
        if (opt == ':')
            return rp_usage_error ("gateway", "%s needs a value", argv [optind - 1]);
        else
            return rp_usage_error ("gateway", "unknown option %s", argv [optind - 1]);
    }
    if (optind < argc)
        return rp_usage_error ("gateway", "unexpected argument \"%s\"", argv [optind]);
    rp_config_t config;
    if (rp_cmd_load_config ("gateway", config_path, &config))
        return 1;
    char err [512];
    if (rp_library_open_and_recover (&config, err, sizeof err)) {
        fprintf (stderr, "rapidphoto gateway: %s\n", err);
        return 1;
    }
    rp_runtime_t *runtime = rp_runtime_new ();
    rp_gateway_args_t args = { .config = config, .in_process_engine = false };
    zactor_t *gateway = rp_gateway_new (&args);
    if (!gateway) {
        fprintf (stderr, "rapidphoto gateway: cannot serve HTTP on %s (see the log line above)\n",
                 config.http_listen);
        rp_runtime_destroy (&runtime);
        return 1;
    }
    rp_runtime_adopt (runtime, "gateway", &gateway);
    //  A gateway alone has no broker: no pools to report
    if (rp_roles_start_emf (runtime, &config, "gateway", NULL, err, sizeof err)) {
        fprintf (stderr, "rapidphoto gateway: %s\n", err);
        rp_runtime_destroy (&runtime);
        return 1;
    }
    rp_info ("main", "gateway serving http://%s, library %s", config.http_listen, config.db_url);
    //  S3 mode: what this gateway stored stays in its local cache (data.dir)
    //  once S3 has it. In serve the pipeline's minute trims that cache;
    //  a gateway alone runs no pipeline, so it trims its own, or its disk
    //  (an ECS task's ephemeral storage) fills with every upload
    rp_blobstore_t *cache = streq (config.storage_backend, "s3")
                          ? rp_blobstore_open (&config, err, sizeof err) : NULL;
    int64_t next_trim = rp_clock_ms () + 60000;
    while (!rp_interrupted ()) {
        zclock_sleep (20);              //  a SIGTERM starts the drain at once
        if (cache && rp_clock_ms () >= next_trim) {
            int trimmed = 0;
            rp_blobstore_trim_cache (cache, config.storage_orphan_grace_s, NULL, NULL, &trimmed);
            if (trimmed)
                rp_info ("main", "local cache: %d files older than %llds removed (they are in S3)", trimmed,
                         (long long) config.storage_orphan_grace_s);
            next_trim = rp_clock_ms () + 60000;
        }
    }
    rp_cmd_drain_and_stop (&runtime, &config);
    rp_blobstore_close (&cache);
    return 0;
}

int
rp_cmd_token (int argc, char **argv)
{
    static const struct option options [] = {
        { "ttl", required_argument, NULL, 't' },
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 }
    };
    const char *config_path = NULL;
    long long ttl = 0;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long (argc, argv, ":t:c:", options, NULL)) != -1) {
        if (opt == 'c')
            config_path = optarg;
        else
        if (opt == 't') {
            char *end = NULL;
            ttl = strtoll (optarg, &end, 10);
            if (!end || *end || ttl < 1 || ttl > 10LL * 365 * 86400)
                return rp_usage_error ("token", "--ttl takes seconds from 1 to 315360000, not \"%s\"", optarg);
        }
        else
        if (opt == ':')
            return rp_usage_error ("token", "%s needs a value", argv [optind - 1]);
        else
            return rp_usage_error ("token", "unknown option %s", argv [optind - 1]);
    }
    if (optind >= argc)
        return rp_usage_error ("token", "say which user: token NAME [--ttl SECONDS]");
    if (optind + 1 < argc)
        return rp_usage_error ("token", "unexpected argument \"%s\"", argv [optind + 1]);
    const char *name = argv [optind];
    rp_config_t config;
    if (rp_cmd_load_config ("token", config_path, &config))
        return 1;
    rp_cmd_log_to_stderr ();
    char err [512];
    rp_db_t *db = rp_db_open (config.db_url, err, sizeof err);
    char id [RP_ID_MAX], hash [RP_PASSWORD_HASH_MAX];
    int rc = db ? rp_db_user_find (db, name, id, hash, sizeof hash, err, sizeof err) : -1;
    rp_db_close (&db);
    if (rc == RP_NOT_FOUND) {
        fprintf (stderr, "rapidphoto token: no user \"%s\" (rapidphoto user add %s)\n", name, name);
        return 1;
    }
    if (rc) {
        fprintf (stderr, "rapidphoto token: %s\n", err);
        return 1;
    }
    char secret [RP_SECRET_MAX];
    if (rp_auth_secret (&config, secret, err, sizeof err)) {
        fprintf (stderr, "rapidphoto token: %s\n", err);
        return 1;
    }
    //  Stamped with the user's password as it is: `user passwd` ends it
    char *token = rp_auth_token_issue (secret, id, hash, ttl ? ttl : config.auth_token_ttl, NULL);
    if (!token) {
        fprintf (stderr, "rapidphoto token: cannot sign a token\n");
        return 1;
    }
    printf ("%s\n", token);
    free (token);
    return 0;
}
