/*  engine/db/migrate.c: rp_db_migrate, see db.h.

    Migrations are schemas/<backend>/V<version>__<description>.sql, compiled
    in (migrations.h). They are forward-only: each is applied once, in
    version order, in its own transaction, and recorded in
    flyway_schema_history exactly as Flyway records it (same table, same
    columns, same CRC32 checksum of the script's lines), so Flyway and the
    runbook query
        SELECT version, description, installed_on FROM flyway_schema_history
        ORDER BY installed_rank DESC
    see the same history.

    Each round takes the migration lock (PostgreSQL: an advisory transaction
    lock; SQLite: BEGIN IMMEDIATE), reads the history, checks it against what
    this binary carries, and applies the next one missing. Several processes
    migrating at once therefore apply each script once. Refused, with nothing
    changed: a database whose applied script changed since (checksum), a
    failed migration on record, a gap (a missing version below an applied
    one), a migration this binary does not know below its newest one, and a
    newer migration that contracts.

    Rollbacks (schemas/README.md): migrations are expand-then-contract. An
    expand migration only adds (tables, nullable or defaulted columns,
    indexes), so the release before it runs unchanged on the schema after
    it: this binary runs on a database newer than it knows as long as every
    newer migration is an expand one, and says so in a WARN line. A
    migration that removes or changes what an earlier release uses is named
    V<n>__contract_<what>.sql; a binary older than it refuses to start.
*/
#include "engine/clock.h"
#include "engine/db/db_private.h"
#include "engine/db/migrations.h"
#include "engine/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PARTS_MAX 8               //  version parts: 1, 1.2, 2_1 (= 2.1)

typedef struct {
    const rp_migration_t *source;   //  the compiled-in script
    char version [50];              //  "1", "1.2", as Flyway writes it
    char description [200];         //  "init", underscores as spaces
    long parts [S_PARTS_MAX];       //  the version, to compare
    int nparts;
    int32_t checksum;               //  Flyway's
} s_script_t;

//  Flyway's checksum: CRC32 over the script's lines without their line
//  ends (a BOM at the start dropped), as a signed 32-bit integer.
static int32_t
s_flyway_checksum (const char *text)
{
    const unsigned char *s = (const unsigned char *) text;
    if (s [0] == 0xEF && s [1] == 0xBB && s [2] == 0xBF)
        s += 3;
    //  Bit by bit: scripts are small, and there is no table to share
    uint32_t crc = 0xFFFFFFFFu;
    for (; *s; s++) {
        if (*s == '\n' || *s == '\r')
            continue;
        crc ^= *s;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    crc ^= 0xFFFFFFFFu;
    return crc > INT32_MAX ? (int32_t) ((int64_t) crc - 4294967296LL) : (int32_t) crc;
}

//  "1.2" or "1_2" into parts. 0 or -1.
static int
s_parse_version (const char *text, size_t len, long parts [S_PARTS_MAX], int *nparts)
{
    *nparts = 0;
    size_t i = 0;
    while (i < len) {
        if (*nparts == S_PARTS_MAX || text [i] < '0' || text [i] > '9')
            return -1;
        long v = 0;
        while (i < len && text [i] >= '0' && text [i] <= '9' && v < 100000000)
            v = v * 10 + (text [i++] - '0');
        parts [(*nparts)++] = v;
        if (i < len) {
            if (text [i] != '.' && text [i] != '_')
                return -1;
            if (++i == len)
                return -1;
        }
    }
    return *nparts > 0 ? 0 : -1;
}

static int
s_compare (const long *a, int na, const long *b, int nb)
{
    for (int i = 0; i < na || i < nb; i++) {
        long x = i < na ? a [i] : 0, y = i < nb ? b [i] : 0;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

static int
s_cmp_scripts (const void *a, const void *b)
{
    const s_script_t *x = (const s_script_t *) a, *y = (const s_script_t *) b;
    return s_compare (x->parts, x->nparts, y->parts, y->nparts);
}

//  The scripts for this backend, sorted by version. Caller frees. NULL on error.
static s_script_t *
s_load_scripts (const char *backend, size_t *count, char *err, size_t errlen)
{
    s_script_t *scripts = (s_script_t *) calloc (rp_migrations_count + 1, sizeof (s_script_t));
    if (!scripts) {
        rp_db_err (err, errlen, "out of memory");
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < rp_migrations_count; i++) {
        const rp_migration_t *m = &rp_migrations [i];
        if (strcmp (m->backend, backend) != 0)
            continue;
        s_script_t *s = &scripts [n];
        s->source = m;
        const char *sep = strstr (m->script, "__");
        const char *ext = strrchr (m->script, '.');
        if (m->script [0] != 'V' || !sep || !ext || ext < sep + 2
        ||  s_parse_version (m->script + 1, (size_t) (sep - m->script - 1), s->parts, &s->nparts)) {
            rp_db_err (err, errlen, "migration %s is misnamed (V<version>__<description>.sql)", m->script);
            free (scripts);
            return NULL;
        }
        //  Flyway: version separators become dots, description underscores spaces
        snprintf (s->version, sizeof s->version, "%.*s", (int) (sep - m->script - 1), m->script + 1);
        for (char *c = s->version; *c; c++)
            if (*c == '_')
                *c = '.';
        snprintf (s->description, sizeof s->description, "%.*s", (int) (ext - sep - 2), sep + 2);
        for (char *c = s->description; *c; c++)
            if (*c == '_')
                *c = ' ';
        s->checksum = s_flyway_checksum (m->text);
        n++;
    }
    qsort (scripts, n, sizeof (s_script_t), s_cmp_scripts);
    for (size_t i = 1; i < n; i++)
        if (s_cmp_scripts (&scripts [i - 1], &scripts [i]) == 0) {
            rp_db_err (err, errlen, "migrations %s and %s have the same version",
                       scripts [i - 1].source->script, scripts [i].source->script);
            free (scripts);
            return NULL;
        }
    *count = n;
    return scripts;
}

//  True when a migration script's name marks it as one that removes or
//  changes what earlier releases use: V<n>__contract_<what>.sql
static bool
s_contracts (const char *script)
{
    const char *sep = script ? strstr (script, "__") : NULL;
    return sep && strncmp (sep + 2, "contract_", 9) == 0;
}

//  One round, inside the migration transaction: which script to apply next
//  (NULL: none) and the rank it gets; newer receives the newest version on
//  record past what this binary knows ("" when none), each an expand
//  migration. -1 with err when the history is not one this binary can
//  continue.
static int
s_next (const s_script_t *scripts, size_t count, const rp_rows_t *history,
        const s_script_t **next, int64_t *rank, char newer [50], char *err, size_t errlen)
{
    *next = NULL;
    *rank = 1;
    *newer = 0;
    bool *applied = (bool *) calloc (count + 1, sizeof (bool));
    if (!applied) {
        rp_db_err (err, errlen, "out of memory");
        return -1;
    }
    long top [S_PARTS_MAX];
    int ntop = 0;
    int rc = 0;
    for (int r = 0; r < history->rows && rc == 0; r++) {
        int64_t installed_rank = 0, checksum = 0;
        const char *version = rp_rows_get (history, r, 1);
        const char *sum = rp_rows_get (history, r, 2);
        const char *success = rp_rows_get (history, r, 3);
        if (rp_db_parse_int (rp_rows_get (history, r, 0), &installed_rank)) {
            rp_db_err (err, errlen, "flyway_schema_history has an unreadable installed_rank");
            rc = -1;
            break;
        }
        if (installed_rank >= *rank)
            *rank = installed_rank + 1;
        if (!version)
            continue;               //  Flyway's schema marker, repeatable scripts
        bool ok = success && (strcmp (success, "1") == 0 || strcmp (success, "t") == 0
                              || strcmp (success, "true") == 0);
        if (!ok) {
            rp_db_err (err, errlen, "migration %s failed earlier (flyway_schema_history success is "
                       "false): repair the database first", version);
            rc = -1;
            break;
        }
        long parts [S_PARTS_MAX];
        int nparts;
        if (s_parse_version (version, strlen (version), parts, &nparts)) {
            rp_db_err (err, errlen, "flyway_schema_history has an unreadable version");
            rc = -1;
            break;
        }
        if (ntop == 0 || s_compare (parts, nparts, top, ntop) > 0) {
            memcpy (top, parts, sizeof parts);
            ntop = nparts;
        }
        size_t i = 0;
        while (i < count && s_compare (scripts [i].parts, scripts [i].nparts, parts, nparts))
            i++;
        if (i == count) {
            const s_script_t *last = count ? &scripts [count - 1] : NULL;
            const char *script = rp_rows_get (history, r, 4);
            if (last && s_compare (parts, nparts, last->parts, last->nparts) < 0)
                rp_db_err (err, errlen, "the database has migration %s, which this rapidphoto "
                           "does not know", version);
            else
            if (s_contracts (script))
                rp_db_err (err, errlen, "the database schema is at version %s, newer than this "
                           "rapidphoto knows (%s), and %s removed or changed what this release "
                           "uses: run a newer release", version, last ? last->version : "none",
                           script);
            else {
                //  Newer, but it only added to ours: run on it
                snprintf (newer, 50, "%s", version);
                continue;
            }
            rc = -1;
            break;
        }
        if (sum && (rp_db_parse_int (sum, &checksum) || checksum != scripts [i].checksum)) {
            rp_db_err (err, errlen, "migration %s changed after it was applied (checksum %s, now "
                       "%d): migrations are forward-only, add a new one instead",
                       scripts [i].source->script, sum, (int) scripts [i].checksum);
            rc = -1;
            break;
        }
        applied [i] = true;
    }
    for (size_t i = 0; i < count && rc == 0 && !*next; i++) {
        if (applied [i])
            continue;
        if (ntop && s_compare (scripts [i].parts, scripts [i].nparts, top, ntop) < 0) {
            rp_db_err (err, errlen, "migration %s was never applied, but a later one was: "
                       "repair the database first", scripts [i].source->script);
            rc = -1;
        }
        else
            *next = &scripts [i];
    }
    free (applied);
    return rc;
}

int
rp_db_migrate (rp_db_t *self, int *applied, char *err, size_t errlen)
{
    *applied = 0;
    size_t count = 0;
    s_script_t *scripts = s_load_scripts (self->driver->name, &count, err, errlen);
    if (!scripts)
        return -1;
    //  installed_by: PostgreSQL records the database user (current_user), as
    //  Flyway does; SQLite has none, so the account that ran the migration
    const char *user = self->driver == &rp_db_sqlite_driver ? getenv ("USER") : NULL;
    int rc = 0;
    char newer [50] = "";
    while (rc == 0) {
        rp_rows_t history = { 0 };
        const s_script_t *next = NULL;
        int64_t rank = 1;
        if (rp_db_begin (self, RP_TXN_WRITE, err, errlen)) {
            rc = -1;
            break;
        }
        if (rp_db_exec (self, RP_SQL_MIG_LOCK, NULL, 0, NULL, err, errlen)
        ||  self->driver->script (self->handle, self->driver->history_ddl, err, errlen)
        ||  rp_db_exec (self, RP_SQL_MIG_HISTORY, NULL, 0, &history, err, errlen)
        ||  s_next (scripts, count, &history, &next, &rank, newer, err, errlen)) {
            rp_rows_clear (&history);
            rp_db_rollback (self);
            rc = -1;
            break;
        }
        rp_rows_clear (&history);
        if (!next) {
            rc = rp_db_commit (self, err, errlen);      //  the history table, if new
            if (rc == 0 && *newer)
                rp_warn ("db", "the database schema is at version %s, newer than this rapidphoto "
                         "knows (%s); its newer migrations only add to this release's schema "
                         "(expand), so this release runs on it", newer,
                         count ? scripts [count - 1].version : "none");
            break;
        }
        int64_t started = rp_clock_ms ();
        if (self->driver->script (self->handle, next->source->text, err, errlen)) {
            //  Say which script: the driver's message names only the cause
            char cause [256];
            snprintf (cause, sizeof cause, "%s", err ? err : "");
            rp_db_err (err, errlen, "migration %s failed: %s", next->source->script, cause);
            rp_db_rollback (self);
            rc = -1;
            break;
        }
        char rank_text [24], checksum [24], took [24];
        snprintf (rank_text, sizeof rank_text, "%lld", (long long) rank);
        snprintf (checksum, sizeof checksum, "%d", (int) next->checksum);
        snprintf (took, sizeof took, "%lld", (long long) (rp_clock_ms () - started));
        const char *record [] = { rank_text, next->version, next->description, next->source->script,
                                  checksum, user && *user ? user : NULL, took };
        if (rp_db_exec (self, RP_SQL_MIG_RECORD, record, 7, NULL, err, errlen)) {
            rp_db_rollback (self);
            rc = -1;
            break;
        }
        if (rp_db_commit (self, err, errlen)) {
            rc = -1;
            break;
        }
        (*applied)++;
        rp_info ("db", "applied migration %s (%s) duration=%s", next->source->script,
                 self->driver->name, took);
    }
    free (scripts);
    return rc;
}
