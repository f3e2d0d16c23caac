/*  app/main.c: `rapidphoto`, one binary that holds every role.

    main() does the process-wide work exactly once: libvips and czmq start-up,
    signal handling (SIGINT and SIGTERM blocked in every thread and taken by
    one of their own, which sets zsys_interrupted: engine/runtime.h; so only
    main reacts), then hands over to a subcommand.
*/
#include "engine/log.h"
#include "engine/runtime.h"
#include "app/commands.h"

#include <czmq.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <vips/vips.h>

static const char s_usage [] =
"Usage: rapidphoto COMMAND [OPTIONS]\n"
"\n"
"  serve   [--config FILE]          all roles in one process: HTTP gateway, broker,\n"
"                                   worker pools, pipeline\n"
"  pipeline [--config FILE]         serve without the HTTP API: processes the photos\n"
"                                   that gateways commit to the shared database (broker,\n"
"                                   worker pools, pipeline, SQS bridges); answers only\n"
"                                   GET /healthz on http.listen. Run as many as the work needs\n"
"  broker  [--config FILE]          the broker alone, on broker.frontend / broker.backend\n"
"                                   (beyond loopback: CURVE keys, see configs/rapidphoto.ini)\n"
"  gateway [--config FILE]          the HTTP gateway alone; photos are processed by\n"
"                                   whatever runs a pipeline (pipeline, serve) on the\n"
"                                   same database\n"
"  worker  --pool resize|exif[,...] [--connect ENDPOINT] [--threads N] [--config FILE]\n"
"                                   worker actors that join a broker over tcp; they find\n"
"                                   photos in data.dir's store (shared with the engine) or S3\n"
"  process [--out DIR] [--config FILE] [--connect ENDPOINT] FILE|DIR...\n"
"                                   run files through the resize and EXIF actors: writes\n"
"                                   DIR/<stem>.thumbnail.webp, DIR/<stem>.preview.jpg,\n"
"                                   DIR/<stem>.json, prints one JSON line per file;\n"
"                                   exit 1 if any file failed. With --connect the files\n"
"                                   go into data.dir's store, which those workers share\n"
"  import  --user NAME [--tags a,b] [--config FILE] FILE|DIR...\n"
"                                   ingest files and folders into the library\n"
"  migrate [--config FILE]          apply the schema migrations to the configured db\n"
"  scrub   [--rate MB/S] [--config FILE]\n"
"                                   bit-rot check of every complete photo: re-read each\n"
"                                   original and compare its SHA-256, check that derivatives\n"
"                                   decode and make lost or damaged ones again, mark a\n"
"                                   damaged original (integrity: damaged; nothing deleted).\n"
"                                   S3: object present, size, ETag. Findings as JSON lines;\n"
"                                   exit 0 all sound, 3 damage found, 1 not all checked\n"
"  user    add NAME [--password-stdin] | list | passwd NAME [--password-stdin]\n"
"  token   NAME [--ttl SECONDS] [--config FILE]\n"
"                                   print an access token (scripts, load tests)\n"
"  keygen                           print a CURVE key pair for broker.curve_* (the\n"
"                                   broker's, or a worker's or other client's)\n"
"  health  [--config FILE] [URL]    GET this engine's /healthz (http.listen; a wildcard\n"
"                                   host is asked on 127.0.0.1) or URL: exit 0 on 200,\n"
"                                   else 1 (the container image's HEALTHCHECK)\n"
"  lambda  [--config FILE]          the image processor as an AWS Lambda function (a custom\n"
"                                   runtime on AWS_LAMBDA_RUNTIME_API): SQS batches of S3\n"
"                                   notifications in, photos processed, batchItemFailures out;\n"
"                                   needs storage.backend = s3 and a PostgreSQL db.url\n"
"  --version | --help\n"
"\n"
"Settings: an INI file (--config) and RAPIDPHOTO_<SECTION>_<KEY> variables;\n"
"see configs/rapidphoto.ini. Exit status: 0 success, 1 failure, 2 wrong usage.\n";

int
rp_usage_error (const char *command, const char *fmt, ...)
{
    char text [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    fprintf (stderr, "rapidphoto %s: %s (see rapidphoto --help)\n", command, text);
    return 2;
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        fputs (s_usage, stderr);
        return 2;
    }
    const char *command = argv [1];
    if (streq (command, "--help") || streq (command, "-h") || streq (command, "help")) {
        fputs (s_usage, stdout);
        return 0;
    }
    if (streq (command, "--version")) {
        printf ("rapidphoto %s (libvips %s, libzmq %d.%d.%d, czmq %d.%d.%d)\n", RP_VERSION,
                vips_version_string (), ZMQ_VERSION_MAJOR, ZMQ_VERSION_MINOR, ZMQ_VERSION_PATCH,
                CZMQ_VERSION_MAJOR, CZMQ_VERSION_MINOR, CZMQ_VERSION_PATCH);
        return 0;
    }
    static const struct {
        const char *name;
        int (*run) (int, char **);
    } commands [] = {
        { "serve", rp_cmd_serve },
        { "pipeline", rp_cmd_pipeline },
        { "broker", rp_cmd_broker },
        { "worker", rp_cmd_worker },
        { "process", rp_cmd_process },
        { "import", rp_cmd_import },
        { "migrate", rp_cmd_migrate },
        { "user", rp_cmd_user },
        { "gateway", rp_cmd_gateway },
        { "token", rp_cmd_token },
        { "keygen", rp_cmd_keygen },
        { "health", rp_cmd_health },
        { "lambda", rp_cmd_lambda },
        { "scrub", rp_cmd_scrub },
    };
    int (*run) (int, char **) = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands [0]; i++)
        if (streq (command, commands [i].name))
            run = commands [i].run;
    if (!run) {
        fprintf (stderr, "rapidphoto: unknown command \"%s\" (see rapidphoto --help)\n", command);
        return 2;
    }

    //  Process-wide start-up, once.
    //  Signals first, before libvips or czmq start a thread (runtime.h)
    rp_runtime_take_signals ();
    //  Memory: libvips allocates (and zeroes) tens of MB of pixel buffers of
    //  100 KB..5 MB for every photo. With glibc's defaults those are fresh
    //  mmaps, page-faulted in and unmapped again each time: measured on 12 MP
    //  JPEGs, a third more CPU per photo (user and system). Kept in the heap
    //  instead, each worker reuses its own pages. The resident size then
    //  stays near the high-water mark of the photos in flight.
    mallopt (M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt (M_TRIM_THRESHOLD, 128 * 1024 * 1024);
    if (VIPS_INIT (argv [0])) {
        fprintf (stderr, "rapidphoto: cannot start libvips: %s\n", vips_error_buffer ());
        return 1;
    }
    vips_cache_set_max (0);                 //  every photo is new: caching only costs memory
    vips_block_untrusted_set (TRUE);        //  only the well-fuzzed loaders, whatever the bytes say
    zsys_init ();
    zsys_set_logstream (stderr);         //  stdout carries results (process)
    zsys_set_linger (0);

    //  getopt sees the command's own arguments, with the command as argv [0]
    int rc = run (argc - 1, argv + 1);

    vips_shutdown ();
    return rc;
}
