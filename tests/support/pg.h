/*  tests/support/pg.h: a fresh PostgreSQL schema for a test.

    The suites that run against PostgreSQL (test_db's contract, the servers
    of test_gateway, test_tus and test_aws_bridges) use the server named by
    RP_TEST_PG_URL (tools/test.sh starts one with tools/pg.sh and sets it);
    each test gets an empty schema of its own, made again on every run, and
    a URL whose search_path is that schema.
*/
#ifndef RP_TEST_PG_H
#define RP_TEST_PG_H

#include <stdbool.h>
#include <stddef.h>

//  Whether RP_TEST_PG_URL names a server.
bool rp_test_pg_enabled (void);

//  Drop and make the schema "test_<name>" (name: letters, digits, '_'),
//  and its URL into url. Skips the test, saying why, when RP_TEST_PG_URL
//  is unset.
void rp_test_pg_schema (const char *name, char *url, size_t size);

#endif
