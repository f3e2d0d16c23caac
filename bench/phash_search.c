/*  bench/phash_search.c: near-duplicate search time over a library loaded
    by bench/phash_search.sh (one user, photos "p0000000".."p<count-1>",
    complete, each with a phash; every 1000th photo "pN000" has a twin
    "pN001" a few bits away).

    rp_phash_search DB_URL USER_ID COUNT QUERIES

    Runs QUERIES searches through rp_db_photo_similar (the API's own
    function: the band lookups, the popcount check, the read model of
    each match), half from the planted photos (their twin must be found)
    and half from random ones, and prints the time per query (p50, p95,
    max) and the candidates the band indexes handed back per query (mean,
    p95, max) against COUNT.
*/
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/phash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static int
s_int (const void *a, const void *b)
{
    return *(const int *) a - *(const int *) b;
}

int
main (int argc, char *argv [])
{
    if (argc != 5) {
        fprintf (stderr, "usage: rp_phash_search DB_URL USER_ID COUNT QUERIES\n");
        return 2;
    }
    long count = strtol (argv [3], NULL, 10), queries = strtol (argv [4], NULL, 10);
    if (count < 2000 || queries < 2 || queries > 100000) {
        fprintf (stderr, "rp_phash_search: COUNT at least 2000, QUERIES 2..100000\n");
        return 2;
    }
    char err [512];
    rp_db_t *db = rp_db_open (argv [1], err, sizeof err);
    if (!db) {
        fprintf (stderr, "rp_phash_search: %s\n", err);
        return 1;
    }
    double *ms = calloc ((size_t) queries, sizeof *ms);
    int *examined = calloc ((size_t) queries, sizeof *examined);
    if (!ms || !examined)
        return 1;
    srand (42);
    long planted = 0, twins_found = 0, matches = 0;
    for (long q = 0; q < queries; q++) {
        char id [RP_ID_MAX], twin [RP_ID_MAX] = "";
        long n;
        if (q % 2 == 0) {       //  a planted photo: its twin is within the threshold
            n = (rand () % (count / 1000)) * 1000;
            snprintf (twin, sizeof twin, "p%07ld", n + 1);
            planted++;
        }
        else
            n = rand () % count;
        snprintf (id, sizeof id, "p%07ld", n);
        json_t *items = NULL;
        double started = rp_clock_ms_precise ();
        int rc = rp_db_photo_similar (db, argv [2], id, RP_PHASH_THRESHOLD, 100, &items,
                                      &examined [q], err, sizeof err);
        ms [q] = rp_clock_ms_precise () - started;
        if (rc) {
            fprintf (stderr, "rp_phash_search: %s: %s\n", id, err);
            return 1;
        }
        size_t i;
        json_t *item;
        json_array_foreach (items, i, item) {
            matches++;
            if (*twin && strcmp (json_string_value (json_object_get (item, "id")), twin) == 0)
                twins_found++;
        }
        json_decref (items);
    }
    qsort (ms, (size_t) queries, sizeof *ms, s_double);
    double total = 0;
    for (long q = 0; q < queries; q++)
        total += examined [q];
    qsort (examined, (size_t) queries, sizeof *examined, s_int);
    printf ("photos %ld, queries %ld, threshold %d bits, %d bands of %d bits (radii %d, %d, %d), "
            "prefix width %d for %ld hashes\n",
            count, queries, RP_PHASH_THRESHOLD, RP_PHASH_BANDS, RP_PHASH_BAND_BITS,
            rp_phash_band_radius (RP_PHASH_THRESHOLD, 0), rp_phash_band_radius (RP_PHASH_THRESHOLD, 1),
            rp_phash_band_radius (RP_PHASH_THRESHOLD, 2), rp_phash_query_width ((double) count), count);
    printf ("time per query ms: p50 %.2f p95 %.2f max %.2f\n",
            ms [queries / 2], ms [queries * 95 / 100], ms [queries - 1]);
    printf ("candidates per query: mean %.1f p95 %d max %d (%.4f%% of %ld)\n",
            total / (double) queries, examined [queries * 95 / 100], examined [queries - 1],
            100.0 * total / (double) queries / (double) count, count);
    printf ("planted twins found %ld of %ld; matches in all %ld\n", twins_found, planted, matches);
    free (ms);
    free (examined);
    rp_db_close (&db);
    return twins_found == planted ? 0 : 1;
}
