/*  tests/support/library.h: helpers for tests that run the engine against a
    data folder and then look inside its database and storage. */
#ifndef RP_TEST_LIBRARY_H
#define RP_TEST_LIBRARY_H

#include <stdbool.h>
#include "engine/db/db.h"

//  A fresh data folder, its SQLite URL, and the environment entries that
//  point the engine at them (and at free broker ports), for rp_test_spawn.
typedef struct {
    char dir [256];
    char url [320];
    char env_dir [300];
    char env_frontend [96];
    char env_backend [96];
    char *env [8];              //  NULL-terminated, for rp_test_spawn
} rp_test_library_t;

void rp_test_library_init (rp_test_library_t *lib, const char *name);
//  The same on an existing folder (another engine's), with broker ports of its own.
void rp_test_library_on (rp_test_library_t *lib, const char *dir);

//  Run `rapidphoto user add NAME` with a password on stdin; exit status.
int rp_test_user_add (rp_test_library_t *lib, const char *name);

//  Open the library's database (caller closes).
rp_db_t *rp_test_library_db (rp_test_library_t *lib);

//  Count files under <dir>/objects/tmp.
int rp_test_library_tmp_files (rp_test_library_t *lib);

//  rp_db_outbox_claim, asked again (every 50 ms, for up to 60 s) while it
//  succeeds with fewer than `want` events. On PostgreSQL an outcome is
//  published once every transaction older than its own has ended, in any
//  schema of the server: the suites running beside this one hold some
//  open for a moment (test_db's outbox_late holds one for 5.5 s). Waiting
//  is the promise ("once those end"), not a retry of a failure.
int rp_test_outbox_claim_at_least (rp_db_t *db, const char *name, const char *owner, int64_t now_ms,
                                   int64_t until_ms, int limit, size_t want, int64_t *cursor,
                                   json_t **events, char *err, size_t errlen);

#endif
