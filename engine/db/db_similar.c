/*  engine/db/db_similar.c: near-duplicates, by Hamming distance between
    perceptual hashes (schema V9, engine/phash.h).

    DESIGN
    The search is multi-index hashing over the three 21-bit bands stored
    in indexed columns (photos_phash_b0..b2, each on (user_id, band)), by
    prefixes as wide as the library needs. For a largest distance d, every
    hash within d agrees with the query's to within r_i bits in at least
    one band i, r_0 + r_1 + r_2 = d - 2 (10 bits: 2, 3, 3; pigeonhole),
    and so within r_i in the first w bits of that band, whatever w. w is
    about log2 of how many hashes the user has, read off the band-0 index
    next to the query (how far apart the next 64 values lie: 64 index
    steps, never a count of the library), so each range of values sharing
    a w-bit prefix holds about one hash. One statement then scans, in each
    band, the C(w, 0) + ... + C(w, r_i) ranges whose prefix is within r_i
    of the query's: ranges and candidates grow as (log N)^3, not N. The
    candidates (what the ranges hand back) are checked with a popcount
    here, nearest first, ties by id. A wrong estimate of the library's
    size costs time, never a match.
    The same search runs inside the transaction that completes a photo
    (db_commands.c), so a complete event's "similar" is what the library
    held at that search (two near-duplicates completing at once on two
    engines may not name each other; /similar, asked later, finds both).
*/
#include "engine/db/db_private.h"
#include "engine/phash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One band's ranges at radius 3 and the widest prefix: 1 + 21 + 210 +
//  1330 = 1562 numbers of at most 8 bytes with their commas
#define S_LIST_MAX 16384

static int
s_by_distance (const void *a, const void *b)
{
    const rp_similar_t *x = a, *y = b;
    if (x->distance != y->distance)
        return x->distance - y->distance;
    return strcmp (x->id, y->id);
}

//  About how many hashes the user has, judged from the 64 band-0 values
//  next to `value` (above it, else below): 0 and *library, or -1
static int
s_library_size (rp_db_t *self, const char *user_id, unsigned value, double *library,
                char *err, size_t errlen)
{
    char text [16];
    snprintf (text, sizeof text, "%u", value);
    const char *params [] = { user_id, text };
    const rp_sql_t sql [2] = { RP_SQL_PHASH_ABOVE, RP_SQL_PHASH_BELOW };
    *library = 0;               //  fewer than 64 on either side: under 128 in all
    for (int i = 0; i < 2; i++) {
        rp_rows_t rows = { 0 };
        if (rp_db_exec (self, sql [i], params, 2, &rows, err, errlen))
            return -1;
        const char *far = rows.rows > 0 ? rp_rows_get (&rows, 0, 0) : NULL;
        if (far) {
            double gap = strtod (far, NULL) - (double) value;
            if (gap < 0)
                gap = -gap;
            *library = 64.0 * (double) (1u << RP_PHASH_BAND_BITS) / (gap + 1);
            rp_rows_clear (&rows);
            return 0;
        }
        rp_rows_clear (&rows);
    }
    return 0;
}

int
rp_db_similar_search (rp_db_t *self, const char *user_id, const char *exclude_id, uint64_t hash,
                      int max_distance, rp_similar_t **found, int *count, int *examined,
                      char *err, size_t errlen)
{
    *found = NULL;
    *count = 0;
    if (examined)
        *examined = 0;
    if (max_distance < 0 || max_distance > RP_PHASH_DISTANCE_MAX) {
        rp_db_err (err, errlen, "a distance must be 0 to %d bits", RP_PHASH_DISTANCE_MAX);
        return RP_REFUSED;
    }
    double library = 0;
    if (s_library_size (self, user_id, rp_phash_band (hash, 0), &library, err, errlen))
        return -1;
    int width = rp_phash_query_width (library);
    char span [16];
    snprintf (span, sizeof span, "%u", 1u << (RP_PHASH_BAND_BITS - width));
    char *lists = malloc ((size_t) RP_PHASH_BANDS * S_LIST_MAX);
    if (!lists) {
        rp_db_err (err, errlen, "out of memory");
        return -1;
    }
    const char *params [3 + RP_PHASH_BANDS] = { user_id, exclude_id ? exclude_id : "" };
    for (int b = 0; b < RP_PHASH_BANDS; b++) {
        char *list = lists + (size_t) b * S_LIST_MAX;
        if (rp_phash_band_ranges (rp_phash_band (hash, b), width,
                                  rp_phash_band_radius (max_distance, b), list, S_LIST_MAX) < 0) {
            free (lists);
            rp_db_err (err, errlen, "cannot list the band ranges to look up");
            return -1;
        }
        params [2 + b] = list;
    }
    params [2 + RP_PHASH_BANDS] = span;
    rp_rows_t rows = { 0 };
    int rc = rp_db_exec (self, RP_SQL_PHASH_CANDIDATES, params, 3 + RP_PHASH_BANDS, &rows, err, errlen);
    free (lists);
    if (rc)
        return -1;
    rp_similar_t *list = rows.rows > 0 ? calloc ((size_t) rows.rows, sizeof *list) : NULL;
    if (rows.rows > 0 && !list) {
        rp_rows_clear (&rows);
        rp_db_err (err, errlen, "out of memory");
        return -1;
    }
    int n = 0;
    for (int r = 0; r < rows.rows; r++) {
        const char *id = rp_rows_get (&rows, r, 0);
        uint64_t other;
        if (!id || strlen (id) >= RP_ID_MAX || rp_phash_parse (rp_rows_get (&rows, r, 1), &other))
            continue;
        int distance = rp_phash_distance (hash, other);
        if (distance > max_distance)
            continue;
        snprintf (list [n].id, sizeof list [n].id, "%s", id);
        list [n].distance = distance;
        n++;
    }
    if (examined)
        *examined = rows.rows;
    rp_rows_clear (&rows);
    if (n > 1)
        qsort (list, (size_t) n, sizeof *list, s_by_distance);
    if (n == 0) {
        free (list);
        list = NULL;
    }
    *found = list;
    *count = n;
    return 0;
}

int
rp_db_photo_similar (rp_db_t *self, const char *user_id, const char *id, int max_distance, int limit,
                     json_t **items, int *examined, char *err, size_t errlen)
{
    *items = NULL;
    if (examined)
        *examined = 0;
    json_t *photo = NULL;
    int rc = rp_db_photo_get (self, user_id, id, &photo, err, errlen);
    if (rc)
        return rc;
    uint64_t hash;
    int has_hash = rp_phash_parse (json_string_value (json_object_get (photo, "phash")), &hash) == 0;
    json_decref (photo);
    json_t *list = json_array ();
    if (!list) {
        rp_db_err (err, errlen, "out of memory");
        return -1;
    }
    if (!has_hash) {            //  not complete yet, or completed before V9
        *items = list;
        return 0;
    }
    rp_similar_t *found = NULL;
    int count = 0;
    rc = rp_db_similar_search (self, user_id, id, hash, max_distance, &found, &count, examined,
                               err, errlen);
    if (rc) {
        json_decref (list);
        return rc;
    }
    if (limit < 1 || limit > 100)
        limit = 100;
    for (int i = 0; i < count && (int) json_array_size (list) < limit; i++) {
        json_t *other = NULL;
        int got = rp_db_photo_get (self, user_id, found [i].id, &other, err, errlen);
        if (got == RP_NOT_FOUND)
            continue;           //  deleted since the search
        if (got) {
            free (found);
            json_decref (list);
            return got;
        }
        json_object_set_new (other, "distance", json_integer (found [i].distance));
        json_array_append_new (list, other);
    }
    free (found);
    *items = list;
    return 0;
}

void
rp_db_event_similar (json_t *event, const char *similar)
{
    if (!event || !similar)
        return;
    json_t *ids = json_loads (similar, JSON_REJECT_DUPLICATES, NULL);
    bool valid = json_is_array (ids);
    size_t i;
    json_t *one;
    json_array_foreach (ids, i, one)
        if (!json_is_string (one) || !rp_db_valid_id (json_string_value (one)))
            valid = false;
    if (valid)
        json_object_set_new (event, "similar", ids);
    else
        json_decref (ids);
}
