/*  tests/support/library.c: see library.h. */
#include "tests/support/library.h"
#include "tests/support/testdata.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
rp_test_library_init (rp_test_library_t *lib, const char *name)
{
    char *dir = rp_test_tmpdir (name);
    cr_assert_not_null (dir, "cannot make a folder for %s", name);
    rp_test_library_on (lib, dir);
    free (dir);
}

void
rp_test_library_on (rp_test_library_t *lib, const char *dir)
{
    memset (lib, 0, sizeof *lib);
    snprintf (lib->dir, sizeof lib->dir, "%s", dir);
    snprintf (lib->url, sizeof lib->url, "sqlite:%s/rapidphoto.db", lib->dir);
    snprintf (lib->env_dir, sizeof lib->env_dir, "RAPIDPHOTO_DATA_DIR=%s", lib->dir);
    snprintf (lib->env_frontend, sizeof lib->env_frontend, "RAPIDPHOTO_BROKER_FRONTEND=tcp://127.0.0.1:%d",
              rp_test_free_port ());
    snprintf (lib->env_backend, sizeof lib->env_backend, "RAPIDPHOTO_BROKER_BACKEND=tcp://127.0.0.1:%d",
              rp_test_free_port ());
    lib->env [0] = lib->env_dir;
    lib->env [1] = lib->env_frontend;
    lib->env [2] = lib->env_backend;
    lib->env [3] = NULL;
}

int
rp_test_user_add (rp_test_library_t *lib, const char *name)
{
    char command [1024];
    snprintf (command, sizeof command,
              "echo 'correct horse battery' | %s %s user add %s --password-stdin >/dev/null",
              lib->env_dir, rp_test_binary (), name);
    return rp_test_run (command, NULL);
}

rp_db_t *
rp_test_library_db (rp_test_library_t *lib)
{
    char err [256];
    rp_db_t *db = rp_db_open (lib->url, err, sizeof err);
    cr_assert_not_null (db, "%s", err);
    return db;
}

int
rp_test_library_tmp_files (rp_test_library_t *lib)
{
    char path [512];
    snprintf (path, sizeof path, "%s/objects/tmp", lib->dir);
    DIR *d = opendir (path);
    if (!d)
        return 0;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (d)))
        if (entry->d_name [0] != '.')
            count++;
    closedir (d);
    return count;
}

int
rp_test_outbox_claim_at_least (rp_db_t *db, const char *name, const char *owner, int64_t now_ms,
                               int64_t until_ms, int limit, size_t want, int64_t *cursor,
                               json_t **events, char *err, size_t errlen)
{
    for (int waited_ms = 0;; waited_ms += 50) {
        int rc = rp_db_outbox_claim (db, name, owner, now_ms, until_ms, limit, cursor, events, err, errlen);
        if (rc || json_array_size (*events) >= want || waited_ms >= 60000)
            return rc;
        json_decref (*events);
        *events = NULL;
        usleep (50 * 1000);
    }
}
