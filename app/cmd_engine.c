/*  app/cmd_engine.c: the long-running roles: serve, pipeline, broker,
    worker; and keygen, the keys their tcp ports take.

    DESIGN: how serve, pipeline and gateway stop, rp_cmd_drain_and_stop
    ECS stops a task with SIGTERM, waits its stopTimeout (30 s unless the
    task definition says otherwise), then sends SIGKILL; a rolling
    deployment does this to every old task. So a stop is a drain, in this
    order, and the process is gone within shutdown.timeout_s (25 s):
      1. SIGTERM (or SIGINT): the signal thread sets zsys_interrupted, which
         rp_runtime_wait_for_signal sees within 20 ms; rp_drain_begin. From
         then on (engine/drain.h): /readyz answers 503 (the load balancer
         takes the task out), a request that would start an upload (POST
         /photos, tus creation, presign) gets 503 with Retry-After, every
         answer says Connection: close, event streams end with a retry
         hint within the gateway's 250 ms tick, the pipeline and the SQS
         ingest bridge take no new work. Requests under way go on: an
         upload's body is read, committed and answered, a tus PATCH
         appends; photos the pipeline holds finish and commit.
      2. The wait: until no HTTP request (event streams aside) and no
         photo is in flight, or four fifths of the timeout have passed;
         the last fifth (at most 5 s) is kept for step 3. At that deadline
         what is still in flight is logged (one WARN line).
      3. The actors stop, newest first (engine/runtime.h): the gateway
         (libmicrohttpd closes what is left: a request cut there was
         never answered, and a tus PATCH keeps the bytes that arrived),
         the bridges, the pipeline (a photo it still holds goes back to
         queued, its claim undone: none stays processing), the workers
         (each finishes the job it runs), the broker.
      4. Exit 0, with the drain's time in the last log line. A stop still
         under way at the timeout (a stuck thread) is cut there: one line
         on stderr and exit status 1, before ECS's SIGKILL would.
    Nothing acknowledged is lost at any step: an upload is answered only
    once committed, and a photo is either committed, queued, or (with the
    database away) left processing for start-up recovery.
*/
#include "engine/broker.h"
#include "engine/clock.h"
#include "engine/drain.h"
#include "engine/link.h"
#include "engine/log.h"
#include "engine/runtime.h"
#include "engine/trace.h"
#include "library/library.h"
#include "actors/actors.h"
#include "actors/bridges/bridges.h"
#include "actors/scrub/scrub.h"
#include "gateway/gateway.h"
#include "app/commands.h"
#include "app/health_port.h"
#include "app/roles.h"

#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <vips/vips.h>


int
rp_cmd_config (const char *command, const char *path, rp_config_t *config, char *err, size_t errlen)
{
    if (rp_config_load (config, path, err, errlen))
        return -1;
    //  Threads per libvips pipeline: with one worker per core, one is best
    if (config->pools_vips_concurrency > 0)
        vips_concurrency_set (config->pools_vips_concurrency);
    //  X-Ray: segments of rapid-photo-<command>, to AWS_XRAY_DAEMON_ADDRESS if
    //  set, from the commands that serve requests or process photos (not
    //  health, the container's probe, nor the one-shot commands)
    static const char *const traced [] = { "serve", "gateway", "pipeline", "worker", "lambda" };
    bool tracing = false;
    for (size_t i = 0; i < sizeof traced / sizeof traced [0]; i++)
        tracing |= streq (command, traced [i]);
    if (tracing && rp_trace_init (command, config->tracing_sample_rate, err, errlen))
        return -1;
    //  czmq's own log lines go where ours do (rp_config_load switched ours)
    zsys_set_logstream (config->log_output == RP_LOG_STDOUT ? stdout : stderr);
    return 0;
}

int
rp_cmd_load_config (const char *command, const char *path, rp_config_t *config)
{
    char err [1024];
    if (rp_cmd_config (command, path, config, err, sizeof err)) {
        fprintf (stderr, "rapidphoto %s: %s\n", command, err);
        return 1;
    }
    return 0;
}

void
rp_cmd_log_to_stderr (void)
{
    rp_log_set_output (RP_LOG_STDERR);
    zsys_set_logstream (stderr);
}

int
rp_cmd_parse_config (const char *command, int argc, char **argv, const char **config_path,
                     int max_args)
{
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long (argc, argv, ":c:", options, NULL)) != -1) {
        if (opt == 'c')
            *config_path = optarg;
        else
        if (opt == ':')
            return rp_usage_error (command, "%s needs a value", argv [optind - 1]);
        else
            return rp_usage_error (command, "unknown option %s", argv [optind - 1]);
    }
    if (argc - optind > max_args)
        return rp_usage_error (command, "unexpected argument \"%s\"", argv [optind + max_args]);
    return 0;
}

//  The stop's hard limit (DESIGN, step 4): async-signal-safe
static void
s_out_of_time (int signum)
{
    static const char line [] = "rapidphoto: still stopping at shutdown.timeout_s: exiting now, status 1\n";
    ssize_t rc = write (STDERR_FILENO, line, sizeof line - 1);
    (void) rc;
    _exit (1);
}

void
rp_cmd_drain_and_stop (rp_runtime_t **runtime, const rp_config_t *config)
{
    int64_t began = rp_clock_ms ();
    int64_t timeout_ms = config->shutdown_timeout_s * 1000;
    int64_t reserve_ms = timeout_ms / 5 < 5000 ? timeout_ms / 5 : 5000;
    signal (SIGALRM, s_out_of_time);
    alarm ((unsigned int) config->shutdown_timeout_s);
    rp_drain_begin ();
    rp_info ("main", "stopping: draining (readyz 503, new uploads refused), at most %lld ms for "
             "%lld HTTP requests and %lld photos in flight", (long long) (timeout_ms - reserve_ms),
             (long long) rp_drain_in_flight (RP_DRAIN_REQUESTS), (long long) rp_drain_in_flight (RP_DRAIN_PHOTOS));
    bool drained = rp_drain_wait (began + timeout_ms - reserve_ms) == 0;
    int64_t waited = rp_clock_ms () - began;
    rp_runtime_destroy (runtime);
    rp_info ("main", "stopped: drained=%s in %lldms, stopped=%lldms", drained ? "yes" : "no",
             (long long) waited, (long long) (rp_clock_ms () - began));
    alarm (0);
}

int
rp_cmd_broker (int argc, char **argv)
{
    const char *config_path = NULL;
    int rc = rp_cmd_parse_config ("broker", argc, argv, &config_path, 0);
    if (rc)
        return rc;
    rp_config_t config;
    if (rp_cmd_load_config ("broker", config_path, &config))
        return 1;
    rp_broker_args_t args;
    rp_broker_args_from_config (&args, &config);
    snprintf (args.frontends [0], RP_STR_MAX, "%s", config.broker_frontend);
    snprintf (args.backends [0], RP_STR_MAX, "%s", config.broker_backend);
    char err [RP_STR_MAX];
    zactor_t *broker = rp_broker_new (&args, err, sizeof err);
    if (!broker) {
        fprintf (stderr, "rapidphoto broker: %s\n", err);
        return 1;
    }
    rp_runtime_t *runtime = rp_runtime_new ();
    rp_runtime_adopt (runtime, "broker", &broker);
    rp_info ("main", "broker ready: producers on %s, workers on %s", config.broker_frontend,
             config.broker_backend);
    rp_runtime_wait_for_signal ();
    rp_info ("main", "stopping");
    rp_runtime_destroy (&runtime);
    return 0;
}

//  What serve and pipeline share: the library first (schema up to date,
//  then what a crash left behind), then the broker, the worker pools, the
//  pipeline, and in S3 mode the SQS bridges (ingest, events) when their
//  queues are set. *pipeline (may be NULL) borrows the pipeline actor.
//  The runtime, or NULL with the error printed.
static rp_runtime_t *
s_engine_start (const char *command, const rp_config_t *config, zactor_t **pipeline)
{
    char err [512];
    if (rp_library_open_and_recover (config, err, sizeof err)) {
        fprintf (stderr, "rapidphoto %s: %s\n", command, err);
        return NULL;
    }
    rp_runtime_t *runtime = rp_runtime_new ();
    rp_roles_opts_t opts = { .listen_tcp = true, .pools = true, .pipeline = true };
    if (rp_roles_start (runtime, config, &opts, pipeline, err, sizeof err)
    ||  rp_bridges_start (runtime, config, err, sizeof err)) {
        fprintf (stderr, "rapidphoto %s: %s\n", command, err);
        rp_runtime_destroy (&runtime);
        return NULL;
    }
    //  The background bit-rot check, when asked for (scrub.rate_mb_s)
    if (config->scrub_rate_mb_s > 0) {
        zactor_t *scrub = zactor_new (rp_scrub_actor, (void *) config);
        if (!scrub) {
            fprintf (stderr, "rapidphoto %s: cannot start the background scrub\n", command);
            rp_runtime_destroy (&runtime);
            return NULL;
        }
        rp_runtime_adopt (runtime, "scrub", &scrub);
    }
    return runtime;
}

int
rp_cmd_serve (int argc, char **argv)
{
    const char *config_path = NULL;
    int rc = rp_cmd_parse_config ("serve", argc, argv, &config_path, 0);
    if (rc)
        return rc;
    rp_config_t config;
    if (rp_cmd_load_config ("serve", config_path, &config))
        return 1;
    rp_runtime_t *runtime = s_engine_start ("serve", &config, NULL);
    if (!runtime)
        return 1;
    //  The gateway last: uploads are taken only once the pipeline is there
    rp_gateway_args_t gargs = { .config = config, .in_process_engine = true };
    zactor_t *gateway = rp_gateway_new (&gargs);
    if (!gateway) {
        fprintf (stderr, "rapidphoto serve: cannot serve HTTP on %s (see the log line above)\n",
                 config.http_listen);
        rp_runtime_destroy (&runtime);
        return 1;
    }
    rp_runtime_adopt (runtime, "gateway", &gateway);
    //  Last, so it stops first: its last batch is written while the broker
    //  still answers, once the drain has let the requests finish
    char err [512];
    if (rp_roles_start_emf (runtime, &config, "serve", RP_INPROC_FRONTEND, err, sizeof err)) {
        fprintf (stderr, "rapidphoto serve: %s\n", err);
        rp_runtime_destroy (&runtime);
        return 1;
    }
    rp_info ("main", "serving http://%s: broker on %s and %s, %d resize and %d exif workers, library %s",
             config.http_listen, config.broker_frontend, config.broker_backend, config.pools_resize,
             config.pools_exif, config.db_url);
    rp_runtime_wait_for_signal ();
    rp_cmd_drain_and_stop (&runtime, &config);
    return 0;
}

//  `rapidphoto pipeline`: everything of serve but the HTTP API. It claims
//  the photos that gateways (and import) committed to the shared database,
//  runs them through its own broker and worker pools, and in S3 mode runs
//  the SQS bridges; any number of them share the work (claims are one
//  transaction each). Its only port besides the broker's is /healthz on
//  http.listen, answered while the pipeline actor answers on its pipe.
int
rp_cmd_pipeline (int argc, char **argv)
{
    const char *config_path = NULL;
    int rc = rp_cmd_parse_config ("pipeline", argc, argv, &config_path, 0);
    if (rc)
        return rc;
    rp_config_t config;
    if (rp_cmd_load_config ("pipeline", config_path, &config))
        return 1;
    zactor_t *pipeline = NULL;
    rp_runtime_t *runtime = s_engine_start ("pipeline", &config, &pipeline);
    if (!runtime)
        return 1;
    char err [512];
    if (rp_roles_start_emf (runtime, &config, "pipeline", RP_INPROC_FRONTEND, err, sizeof err)) {
        fprintf (stderr, "rapidphoto pipeline: %s\n", err);
        rp_runtime_destroy (&runtime);
        return 1;
    }
    rp_health_port_t *health = rp_health_port_new (config.http_listen, "pipeline", rp_library_stale_ms (&config),
                                                   err, sizeof err);
    if (!health) {
        fprintf (stderr, "rapidphoto pipeline: %s\n", err);
        rp_runtime_destroy (&runtime);
        return 1;
    }
    rp_info ("main", "pipeline: processing the photos of %s; broker on %s and %s, %d resize and %d exif "
             "workers; health on http://%s/healthz", config.db_url, config.broker_frontend,
             config.broker_backend, config.pools_resize, config.pools_exif, config.http_listen);
    //  Until SIGINT or SIGTERM: once a second ask the pipeline what it
    //  holds; each answer is a beat of /healthz
    zpoller_t *poller = zpoller_new (pipeline, NULL);
    bool asked = false;
    int64_t next_ask = 0;
    while (!rp_interrupted ()) {
        if (!asked && rp_clock_ms () >= next_ask) {
            zstr_send (pipeline, "IN_FLIGHT");
            asked = true;
        }
        if (zpoller_wait (poller, 100) == pipeline) {
            char *answer = zstr_recv (pipeline);
            char *end = NULL;
            long long in_flight = answer ? strtoll (answer, &end, 10) : -1;
            if (answer && end && !*end)
                rp_health_port_beat (health, in_flight);
            zstr_free (&answer);
            asked = false;
            next_ask = rp_clock_ms () + 1000;
        }
    }
    zpoller_destroy (&poller);
    rp_cmd_drain_and_stop (&runtime, &config);
    rp_health_port_destroy (&health);
    return 0;
}

int
rp_cmd_worker (int argc, char **argv)
{
    static const struct option options [] = {
        { "pool", required_argument, NULL, 'p' },
        { "connect", required_argument, NULL, 'C' },
        { "threads", required_argument, NULL, 't' },
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 }
    };
    const char *pools = NULL, *endpoint = NULL, *config_path = NULL;
    long threads = 0;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long (argc, argv, ":p:C:t:c:", options, NULL)) != -1) {
        switch (opt) {
            case 'p': pools = optarg; break;
            case 'C': endpoint = optarg; break;
            case 'c': config_path = optarg; break;
            case 't': {
                char *end = NULL;
                threads = strtol (optarg, &end, 10);
                if (!end || *end || threads < 1 || threads > 256)
                    return rp_usage_error ("worker", "--threads takes a number from 1 to 256, not \"%s\"", optarg);
                break;
            }
            case ':':
                return rp_usage_error ("worker", "%s needs a value", argv [optind - 1]);
            default:
                return rp_usage_error ("worker", "unknown option %s", argv [optind - 1]);
        }
    }
    if (optind < argc)
        return rp_usage_error ("worker", "unexpected argument \"%s\"", argv [optind]);
    if (!pools)
        return rp_usage_error ("worker", "--pool is required (resize, exif)");
    rp_config_t config;
    if (rp_cmd_load_config ("worker", config_path, &config))
        return 1;
    if (!endpoint)
        endpoint = config.broker_backend;

    rp_runtime_t *runtime = rp_runtime_new ();
    char list [256];
    snprintf (list, sizeof list, "%s", pools);
    for (char *pool = list, *next; pool && *pool; pool = next) {
        next = strchr (pool, ',');
        if (next)
            *next++ = 0;
        //  0 only for a pool rp_actors_start_pool refuses
        int count = threads ? (int) threads
                  : streq (pool, "resize") ? config.pools_resize
                  : streq (pool, "exif") ? config.pools_exif : 0;
        char err [256];
        if (rp_actors_start_pool (runtime, pool, count, endpoint, &config, err, sizeof err)) {
            rp_runtime_destroy (&runtime);
            return rp_usage_error ("worker", "%s", err);
        }
        rp_info ("main", "%d %s workers joining the broker at %s", count, pool, endpoint);
    }
    rp_runtime_wait_for_signal ();
    rp_info ("main", "stopping: draining work in flight (at most %lld ms)",
             (long long) config.broker_drain_ms);
    rp_runtime_destroy (&runtime);
    return 0;
}

int
rp_cmd_keygen (int argc, char **argv)
{
    if (argc > 1)
        return rp_usage_error ("keygen", "takes no arguments");
    char public_key [RP_CURVE_KEY_LEN + 1], secret_key [RP_CURVE_KEY_LEN + 1];
    if (!rp_curve_available () || zmq_curve_keypair (public_key, secret_key)) {
        fprintf (stderr, "rapidphoto keygen: this libzmq cannot make CURVE keys (built without CURVE)\n");
        return 1;
    }
    //  Z85 holds no quote, backslash or semicolon: the keys paste as they
    //  are into the INI file, and single-quoted into a shell
    printf ("# A CURVE key pair (Z85), from `rapidphoto keygen`. The secret key stays with its owner.\n"
            "# public key: %s\n"
            "#\n"
            "# As the broker's pair: the broker's [broker] section, or its environment\n"
            "curve_secret_key = %s\n"
            "# RAPIDPHOTO_BROKER_CURVE_SECRET_KEY='%s'\n"
            "# ...and every client's (workers, a separate gateway, process --connect)\n"
            "curve_server_key = %s\n"
            "# RAPIDPHOTO_BROKER_CURVE_SERVER_KEY='%s'\n"
            "#\n"
            "# As a client's pair: the client's [broker] section, or its environment\n"
            "curve_client_secret_key = %s\n"
            "# RAPIDPHOTO_BROKER_CURVE_CLIENT_SECRET_KEY='%s'\n"
            "# ...and on the broker, one entry of its comma-separated list\n"
            "curve_clients = %s\n"
            "# RAPIDPHOTO_BROKER_CURVE_CLIENTS='%s'\n",
            public_key, secret_key, secret_key, public_key, public_key, secret_key, secret_key,
            public_key, public_key);
    //  The secret leaves only through stdout
    memset (secret_key, 0, sizeof secret_key);
    return 0;
}
