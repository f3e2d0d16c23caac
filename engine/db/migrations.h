/*  engine/db/migrations.h: the SQL migrations compiled into the binary.

    The table is generated at build time by cmake/embed_migrations.cmake from
    schemas/<backend>/V<version>__<description>.sql; migrate.c applies it.
*/
#ifndef RP_DB_MIGRATIONS_H
#define RP_DB_MIGRATIONS_H

#include <stddef.h>

typedef struct {
    const char *backend;        //  "sqlite" or "postgresql": the schemas/ folder
    const char *script;         //  the file name, e.g. "V1__init.sql"
    const char *text;           //  the file's bytes as they are
} rp_migration_t;

//  rp_migrations_count entries, then one of NULLs.
extern const rp_migration_t rp_migrations [];
extern const size_t rp_migrations_count;

#endif
