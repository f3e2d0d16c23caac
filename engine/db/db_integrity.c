/*  engine/db/db_integrity.c: the rows of the bit-rot checks (schema V10):
    which addresses are due a check, and what a check found. See db.h. */
#include "engine/db/db_private.h"

#include <stdio.h>
#include <string.h>

int
rp_db_scrub_due (rp_db_t *self, const char *after_sha256, int64_t older_than_ms, int limit,
                 json_t **due, char *err, size_t errlen)
{
    *due = NULL;
    char max [16], older [24];
    snprintf (max, sizeof max, "%d", limit < 1 ? 100 : limit > 1000 ? 1000 : limit);
    snprintf (older, sizeof older, "%lld", (long long) (older_than_ms > 0 ? older_than_ms : 0));
    if (after_sha256 && *after_sha256 && !rp_db_valid_sha256 (after_sha256)) {
        rp_db_err (err, errlen, "sha256 must be 64 lowercase hex characters");
        return RP_REFUSED;
    }
    rp_rows_t rows = { 0 };
    int rc;
    if (after_sha256) {
        const char *params [] = { after_sha256, max };
        rc = rp_db_exec (self, RP_SQL_SCRUB_ALL, params, 2, &rows, err, errlen);
    }
    else {
        const char *params [] = { older, max };
        rc = rp_db_exec (self, RP_SQL_SCRUB_DUE, params, 2, &rows, err, errlen);
    }
    if (rc)
        return -1;
    json_t *list = json_array ();
    for (int r = 0; r < rows.rows; r++) {
        const char *sha256 = rp_rows_get (&rows, r, 0);
        const char *id = rp_rows_get (&rows, r, 2);
        int64_t bytes = 0;
        if (!rp_db_valid_sha256 (sha256) || !id || rp_db_parse_int (rp_rows_get (&rows, r, 1), &bytes))
            continue;
        json_t *item = json_object ();
        json_object_set_new (item, "sha256", json_string (sha256));
        json_object_set_new (item, "bytes", json_integer (bytes));
        json_object_set_new (item, "id", json_string (id));
        json_array_append_new (list, item);
    }
    rp_rows_clear (&rows);
    *due = list;
    return 0;
}

int
rp_db_scrub_mark (rp_db_t *self, const char *sha256, const char *integrity, int64_t *marked,
                  char *err, size_t errlen)
{
    *marked = 0;
    if (!rp_db_valid_sha256 (sha256)) {
        rp_db_err (err, errlen, "sha256 must be 64 lowercase hex characters");
        return RP_REFUSED;
    }
    if (!integrity || (strcmp (integrity, "ok") != 0 && strcmp (integrity, "damaged") != 0)) {
        rp_db_err (err, errlen, "integrity must be ok or damaged");
        return RP_REFUSED;
    }
    rp_rows_t rows = { 0 };
    const char *params [] = { sha256, integrity };
    if (rp_db_exec (self, RP_SQL_SCRUB_MARK, params, 2, &rows, err, errlen))
        return -1;
    *marked = rows.changes;
    rp_rows_clear (&rows);
    return 0;
}

int
rp_db_scrub_claim (rp_db_t *self, const char *sha256, int64_t older_than_ms, bool *claimed,
                   char *err, size_t errlen)
{
    *claimed = false;
    if (!rp_db_valid_sha256 (sha256)) {
        rp_db_err (err, errlen, "sha256 must be 64 lowercase hex characters");
        return RP_REFUSED;
    }
    char older [24];
    snprintf (older, sizeof older, "%lld", (long long) (older_than_ms > 0 ? older_than_ms : 0));
    rp_rows_t rows = { 0 };
    const char *params [] = { sha256, older };
    if (rp_db_exec (self, RP_SQL_SCRUB_CLAIM, params, 2, &rows, err, errlen))
        return -1;
    *claimed = rows.changes > 0;
    rp_rows_clear (&rows);
    return 0;
}

int
rp_db_scrub_counts (rp_db_t *self, json_t **counts, char *err, size_t errlen)
{
    *counts = NULL;
    rp_rows_t rows = { 0 };
    if (rp_db_exec (self, RP_SQL_SCRUB_COUNTS, NULL, 0, &rows, err, errlen))
        return -1;
    json_t *result = json_pack ("{s:i,s:i,s:i}", "ok", 0, "damaged", 0, "unchecked", 0);
    for (int r = 0; r < rows.rows; r++) {
        const char *what = rp_rows_get (&rows, r, 0);
        int64_t n = 0;
        if (what && json_object_get (result, what) && rp_db_parse_int (rp_rows_get (&rows, r, 1), &n) == 0)
            json_object_set_new (result, what, json_integer (n));
    }
    rp_rows_clear (&rows);
    *counts = result;
    return 0;
}
