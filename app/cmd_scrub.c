/*  app/cmd_scrub.c: `rapidphoto scrub`, one whole bit-rot check of the
    library now (actors/scrub/scrub.h does the checking; the background
    scrub on serve does the same slowly, scrub.rate_mb_s).

    Output: stdout one JSON line per address with something to say (a
    damaged original, derivatives made again or that could not be),
    stderr a progress line every 100 photos or 10 s and a summary.
    Exit status: 0 every original sound (lost or damaged derivatives made
    again count as sound), 3 damage found (an original missing or not
    hashing to its name, or a derivative that could not be made again),
    1 the check could not finish (the database or S3 away; photos not
    checked are counted as errors), 2 wrong usage.
*/
#include "engine/log.h"
#include "actors/scrub/scrub.h"
#include "app/commands.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
s_progress (const rp_scrub_counts_t *counts, bool done, void *arg)
{
    (void) arg;
    fprintf (stderr, "scrub: %s%lld checked (%.1f MB read), %lld damaged, %lld derivatives made again, "
                     "%lld could not be, %lld not checked (errors)\n",
             done ? "done: " : "", (long long) counts->checked, (double) counts->bytes / 1e6,
             (long long) counts->damaged, (long long) counts->regenerated, (long long) counts->unrepaired,
             (long long) counts->errors);
}

static void
s_finding (json_t *finding, void *arg)
{
    (void) arg;
    char *text = json_dumps (finding, JSON_COMPACT);
    if (text)
        printf ("%s\n", text);
    free (text);
    fflush (stdout);
}

int
rp_cmd_scrub (int argc, char **argv)
{
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "rate", required_argument, NULL, 'r' },
        { NULL, 0, NULL, 0 }
    };
    const char *config_path = NULL;
    int64_t rate_mb_s = 0;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long (argc, argv, ":c:r:", options, NULL)) != -1) {
        if (opt == 'c')
            config_path = optarg;
        else
        if (opt == 'r') {
            char *end = NULL;
            long long value = strtoll (optarg, &end, 10);
            if (!*optarg || *end || value < 0 || value > 100000)
                return rp_usage_error ("scrub", "--rate takes MB/s, 0 (no limit) to 100000, not \"%s\"", optarg);
            rate_mb_s = value;
        }
        else
        if (opt == ':')
            return rp_usage_error ("scrub", "%s needs a value", argv [optind - 1]);
        else
            return rp_usage_error ("scrub", "unknown option %s", argv [optind - 1]);
    }
    if (optind < argc)
        return rp_usage_error ("scrub", "unexpected argument \"%s\"", argv [optind]);
    rp_config_t config;
    if (rp_cmd_load_config ("scrub", config_path, &config))
        return 1;
    rp_cmd_log_to_stderr ();
    char err [512];
    rp_scrub_t *scrub = rp_scrub_new (&config, rate_mb_s * 1000000, err, sizeof err);
    if (!scrub) {
        fprintf (stderr, "rapidphoto scrub: %s\n", err);
        return 1;
    }
    rp_scrub_counts_t counts = { 0 };
    int rc = rp_scrub_pass (scrub, &counts, s_progress, s_finding, NULL, err, sizeof err);
    bool stopped = rp_interrupted ();
    rp_scrub_destroy (&scrub);
    if (rc) {
        fprintf (stderr, "rapidphoto scrub: %s\n", err);
        return 1;
    }
    if (counts.damaged || counts.unrepaired)
        return 3;
    return counts.errors || stopped ? 1 : 0;
}
