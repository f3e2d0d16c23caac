/*  tests/support/pg.c: see pg.h. */
#include "tests/support/pg.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
rp_test_pg_enabled (void)
{
    const char *base = getenv ("RP_TEST_PG_URL");
    return base && *base;
}

void
rp_test_pg_schema (const char *name, char *url, size_t size)
{
    if (!rp_test_pg_enabled ())
        cr_skip_test ("skipped: RP_TEST_PG_URL is unset (tools/test.sh starts PostgreSQL with "
                      "tools/pg.sh and sets it)");
    const char *base = getenv ("RP_TEST_PG_URL");
    cr_assert_eq (strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"),
                  strlen (name), "a schema name of letters, digits and '_': %s", name);
    PGconn *conn = PQconnectdb (base);
    cr_assert_eq (PQstatus (conn), CONNECTION_OK, "RP_TEST_PG_URL: %s", PQerrorMessage (conn));
    char sql [512];
    snprintf (sql, sizeof sql, "SET client_min_messages = warning; "
              "DROP SCHEMA IF EXISTS test_%s CASCADE; CREATE SCHEMA test_%s", name, name);
    PGresult *res = PQexec (conn, sql);
    cr_assert_eq (PQresultStatus (res), PGRES_COMMAND_OK, "%s", PQerrorMessage (conn));
    PQclear (res);
    PQfinish (conn);
    int n = snprintf (url, size, "%s%soptions=-csearch_path%%3Dtest_%s", base,
                      strchr (base, '?') ? "&" : "?", name);
    cr_assert (n > 0 && (size_t) n < size, "the schema's URL is longer than %zu", size);
}
