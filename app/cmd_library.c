/*  app/cmd_library.c: commands on the photo library: migrate, user,
    import. */
#include "engine/runtime.h"
#include "engine/alloc.h"
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/log.h"
#include "library/blobstore.h"
#include "library/library.h"
#include "app/commands.h"
#include "app/roles.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

//  Open the configured database, schema up to date. NULL (printed) on error.
static rp_db_t *
s_open_db (const char *command, const rp_config_t *config)
{
    char err [512];
    //  data.dir holds SQLite's file: make it exist
    rp_blobstore_t *blobs = rp_blobstore_open (config, err, sizeof err);
    if (!blobs) {
        fprintf (stderr, "rapidphoto %s: %s\n", command, err);
        return NULL;
    }
    rp_blobstore_close (&blobs);
    rp_db_t *db = rp_db_open (config->db_url, err, sizeof err);
    int applied = 0;
    if (!db || rp_db_migrate (db, &applied, err, sizeof err)) {
        fprintf (stderr, "rapidphoto %s: %s\n", command, err);
        rp_db_close (&db);
        return NULL;
    }
    return db;
}

//  Options shared by the library commands: --config FILE.
static const char *
s_take_config (int *argc, char **argv)
{
    const char *path = NULL;
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        if (streq (argv [i], "--config") && i + 1 < *argc)
            path = argv [++i];
        else
        if (strncmp (argv [i], "--config=", 9) == 0)
            path = argv [i] + 9;
        else
            argv [out++] = argv [i];
    }
    *argc = out;
    return path;
}

int
rp_cmd_migrate (int argc, char **argv)
{
    const char *config_path = s_take_config (&argc, argv);
    if (argc > 1)
        return rp_usage_error ("migrate", "unexpected argument \"%s\"", argv [1]);
    rp_config_t config;
    if (rp_cmd_load_config ("migrate", config_path, &config))
        return 1;
    char err [512];
    rp_blobstore_t *blobs = rp_blobstore_open (&config, err, sizeof err);
    rp_blobstore_close (&blobs);
    rp_db_t *db = rp_db_open (config.db_url, err, sizeof err);
    int applied = 0;
    if (!db || rp_db_migrate (db, &applied, err, sizeof err)) {
        fprintf (stderr, "rapidphoto migrate: %s\n", err);
        rp_db_close (&db);
        return 1;
    }
    printf ("%s: %d migration%s applied; the schema is up to date\n", rp_db_backend (db),
            applied, applied == 1 ? "" : "s");
    rp_db_close (&db);
    return 0;
}

//  A password from stdin (one line), or asked for twice on the terminal.
static int
s_read_password (const char *command, bool from_stdin, char *out, size_t size)
{
    if (!from_stdin && !isatty (STDIN_FILENO))
        return rp_usage_error (command, "no terminal to ask on: pass the password on stdin with --password-stdin");
    char again [256] = "";
    for (int round = 0; round < (from_stdin ? 1 : 2); round++) {
        char *target = round == 0 ? out : again;
        size_t cap = round == 0 ? size : sizeof again;
        struct termios saved, quiet;
        bool tty = !from_stdin && tcgetattr (STDIN_FILENO, &saved) == 0;
        if (tty) {
            fprintf (stderr, round == 0 ? "Password: " : "Again: ");
            quiet = saved;
            quiet.c_lflag &= ~(tcflag_t) ECHO;
            tcsetattr (STDIN_FILENO, TCSANOW, &quiet);
        }
        char *line = fgets (target, (int) cap, stdin);
        if (tty) {
            tcsetattr (STDIN_FILENO, TCSANOW, &saved);
            fprintf (stderr, "\n");
        }
        if (!line) {
            fprintf (stderr, "rapidphoto %s: no password given\n", command);
            return 1;
        }
        target [strcspn (target, "\r\n")] = 0;
    }
    if (!from_stdin && strcmp (out, again) != 0) {
        fprintf (stderr, "rapidphoto %s: the passwords differ\n", command);
        return 1;
    }
    if (strlen (out) < 8) {
        fprintf (stderr, "rapidphoto %s: the password must have at least 8 characters\n", command);
        return 1;
    }
    return 0;
}

int
rp_cmd_user (int argc, char **argv)
{
    const char *config_path = s_take_config (&argc, argv);
    if (argc < 2)
        return rp_usage_error ("user", "say add NAME, list or passwd NAME");
    const char *verb = argv [1];
    bool from_stdin = false;
    const char *name = NULL;
    for (int i = 2; i < argc; i++) {
        if (streq (argv [i], "--password-stdin"))
            from_stdin = true;
        else
        if (argv [i][0] == '-')
            return rp_usage_error ("user", "unknown option %s", argv [i]);
        else
        if (!name)
            name = argv [i];
        else
            return rp_usage_error ("user", "unexpected argument \"%s\"", argv [i]);
    }
    bool needs_name = streq (verb, "add") || streq (verb, "passwd");
    if (!needs_name && !streq (verb, "list"))
        return rp_usage_error ("user", "unknown action \"%s\" (add, list, passwd)", verb);
    if (needs_name && !name)
        return rp_usage_error ("user", "%s needs a user name", verb);
    if (name) {
        size_t len = strlen (name);
        bool ok = len >= 1 && len <= 64;
        for (const char *c = name; ok && *c; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
              || *c == '.' || *c == '_' || *c == '-' || *c == '@';
        if (!ok)
            return rp_usage_error ("user", "user names are 1 to 64 letters, digits and . _ - @");
    }
    rp_config_t config;
    if (rp_cmd_load_config ("user", config_path, &config))
        return 1;
    rp_cmd_log_to_stderr ();
    char password [256] = "", hash [512] = "", err [512] = "";
    if (needs_name) {
        int rc = s_read_password ("user", from_stdin, password, sizeof password);
        if (rc)
            return rc;
        if (rp_password_hash (password, hash, sizeof hash)) {
            fprintf (stderr, "rapidphoto user: cannot hash the password\n");
            return 1;
        }
        memset (password, 0, sizeof password);
    }
    rp_db_t *db = s_open_db ("user", &config);
    if (!db)
        return 1;
    int rc = 0;
    if (streq (verb, "add")) {
        char id [RP_ID_MAX];
        rc = rp_db_user_add (db, name, hash, id, err, sizeof err);
        if (rc == 0)
            printf ("user %s added (id %s)\n", name, id);
    }
    else
    if (streq (verb, "passwd")) {
        rc = rp_db_user_set_password (db, name, hash, err, sizeof err);
        if (rc == RP_NOT_FOUND)
            snprintf (err, sizeof err, "no user %s", name);
        if (rc == 0)
            printf ("password of %s changed\n", name);
    }
    else {
        json_t *users = NULL;
        rc = rp_db_user_list (db, &users, err, sizeof err);
        if (rc == 0) {
            printf ("%-24s %-34s %8s  %s\n", "NAME", "ID", "PHOTOS", "CREATED");
            size_t i;
            json_t *user;
            json_array_foreach (users, i, user)
                printf ("%-24s %-34s %8lld  %s\n", json_string_value (json_object_get (user, "name")),
                        json_string_value (json_object_get (user, "id")),
                        (long long) json_integer_value (json_object_get (user, "photos")),
                        json_string_value (json_object_get (user, "created_at")));
            json_decref (users);
        }
    }
    if (rc)
        fprintf (stderr, "rapidphoto user: %s\n", err);
    rp_db_close (&db);
    return rc ? 1 : 0;
}

//  ---------------------------------------------------------------------------
//  import

typedef struct {
    char *path;
    char id [RP_ID_MAX];        //  the photo, once stored
    char *refused;              //  why it was not stored
    bool duplicate;
} s_item_t;

int
rp_cmd_import (int argc, char **argv)
{
    static const struct option longopts [] = {
        { "user", required_argument, NULL, 'u' },
        { "config", required_argument, NULL, 'c' },
        { "tags", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 }
    };
    const char *user = NULL, *config_path = NULL, *tags = NULL;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long (argc, argv, ":u:c:t:", longopts, NULL)) != -1) {
        switch (opt) {
            case 'u': user = optarg; break;
            case 'c': config_path = optarg; break;
            case 't': tags = optarg; break;
            case ':': return rp_usage_error ("import", "%s needs a value", argv [optind - 1]);
            default:  return rp_usage_error ("import", "unknown option %s", argv [optind - 1]);
        }
    }
    if (!user)
        return rp_usage_error ("import", "--user NAME is required");
    if (optind >= argc)
        return rp_usage_error ("import", "no files or folders given");
    rp_config_t config;
    if (rp_cmd_load_config ("import", config_path, &config))
        return 1;
    rp_cmd_log_to_stderr ();
    char err [512];
    if (rp_library_open_and_recover (&config, err, sizeof err)) {
        fprintf (stderr, "rapidphoto import: %s\n", err);
        return 1;
    }
    rp_db_t *db = s_open_db ("import", &config);
    if (!db)
        return 1;
    char user_id [RP_ID_MAX];
    int rc = rp_db_user_find (db, user, user_id, NULL, 0, err, sizeof err);
    if (rc) {
        if (rc == RP_NOT_FOUND)
            fprintf (stderr, "rapidphoto import: no user %s (create one with: rapidphoto user add %s)\n",
                     user, user);
        else
            fprintf (stderr, "rapidphoto import: %s\n", err);
        rp_db_close (&db);
        return 1;
    }
    zlistx_t *paths = zlistx_new ();
    zlistx_set_destructor (paths, (zlistx_destructor_fn *) zstr_free);
    int count = rp_collect_files (argv + optind, argc - optind, paths);
    if (count <= 0) {
        if (count == 0)
            fprintf (stderr, "rapidphoto import: no files found\n");
        zlistx_destroy (&paths);
        rp_db_close (&db);
        return 1;
    }
    rp_blobstore_t *blobs = rp_blobstore_open (&config, err, sizeof err);
    rp_runtime_t *runtime = rp_runtime_new ();
    zactor_t *pipeline = NULL;
    rp_roles_opts_t opts = { .listen_tcp = false, .pools = true, .pipeline = true };
    if (!blobs || rp_roles_start (runtime, &config, &opts, &pipeline, err, sizeof err)) {
        fprintf (stderr, "rapidphoto import: %s\n", err);
        rp_runtime_destroy (&runtime);
        rp_blobstore_close (&blobs);
        zlistx_destroy (&paths);
        rp_db_close (&db);
        return 1;
    }

    //  Store every file through the upload path; the pipeline processes
    //  them as they are committed
    s_item_t *items = (s_item_t *) rp_alloc (sizeof (s_item_t) * (size_t) count);
    char batch [RP_ID_MAX] = "";
    bool progress = isatty (STDERR_FILENO);
    int stored = 0, duplicates = 0, refused = 0;
    int index = 0;
    for (char *p = (char *) zlistx_first (paths); p && !rp_interrupted ();
         p = (char *) zlistx_next (paths), index++) {
        s_item_t *item = &items [index];
        item->path = rp_strdup (p);
        const char *base = strrchr (p, '/');
        rp_ingest_t ingest = { .declared_bytes = -1, .user_id = user_id, .batch_id = *batch ? batch : NULL,
                               .filename = base ? base + 1 : p, .tags = tags };
        rp_ingested_t out;
        rp_blob_writer_t *writer = rp_blob_begin_file (blobs, p, config.limits_max_upload_bytes, err, sizeof err);
        if (!writer || rp_library_ingest (blobs, db, &writer, &ingest, &out, err, sizeof err)) {
            item->refused = rp_strdup (err);
            refused++;
            fprintf (stderr, "%simport: %s: %s\n", progress ? "\r" : "", p, err);
        }
        else {
            snprintf (item->id, sizeof item->id, "%s", out.id);
            if (!*batch && !out.duplicate)
                snprintf (batch, sizeof batch, "%s", out.batch_id);
            item->duplicate = out.duplicate;
            out.duplicate ? duplicates++ : stored++;
            zstr_send (pipeline, "WAKE");
        }
        if (progress)
            fprintf (stderr, "\rimport: %d/%d files stored, %d duplicates, %d refused ",
                     index + 1, count, duplicates, refused);
    }
    zlistx_destroy (&paths);
    count = index;

    //  Wait until every new photo is complete or failed
    int complete = 0, failed = 0;
    int64_t last_report = 0;
    while (*batch && !rp_interrupted ()) {
        json_t *state = NULL;
        if (rp_db_batch_get (db, user_id, batch, &state, err, sizeof err)) {
            fprintf (stderr, "rapidphoto import: %s\n", err);
            break;
        }
        json_t *counts = json_object_get (state, "counts");
        int64_t pending = json_integer_value (json_object_get (counts, "queued"))
                        + json_integer_value (json_object_get (counts, "processing"))
                        + json_integer_value (json_object_get (counts, "uploading"));
        complete = (int) json_integer_value (json_object_get (counts, "complete"));
        failed = (int) json_integer_value (json_object_get (counts, "failed"));
        json_decref (state);
        if (progress)
            fprintf (stderr, "\rimport: %d stored: %d complete, %d failed, %lld processing ",
                     stored, complete, failed, (long long) pending);
        else
        if (rp_clock_ms () - last_report > 5000) {
            rp_info ("import", "%d stored: %d complete, %d failed, %lld processing", stored,
                     complete, failed, (long long) pending);
            last_report = rp_clock_ms ();
        }
        if (pending == 0)
            break;
        zclock_sleep (200);
    }
    if (progress)
        fprintf (stderr, "\n");

    //  One line per file on stdout, as the library now has it
    for (int i = 0; i < count; i++) {
        s_item_t *item = &items [i];
        json_t *line = json_object ();
        json_object_set_new (line, "file", json_string (item->path));
        if (item->refused) {
            json_object_set_new (line, "status", json_string ("refused"));
            json_object_set_new (line, "error", json_string (item->refused));
        }
        else {
            json_t *photo = NULL;
            if (rp_db_photo_get (db, user_id, item->id, &photo, err, sizeof err) == 0) {
                json_object_set (line, "id", json_object_get (photo, "id"));
                json_object_set (line, "status", json_object_get (photo, "status"));
                json_object_set (line, "error", json_object_get (photo, "error"));
                json_decref (photo);
            }
            json_object_set_new (line, "duplicate", json_boolean (item->duplicate));
        }
        char *text = json_dumps (line, JSON_COMPACT);
        if (text)
            printf ("%s\n", text);
        free (text);
        json_decref (line);
        free (item->path);
        free (item->refused);
    }
    fflush (stdout);
    free (items);
    fprintf (stderr, "import: %d files: %d imported (%d complete, %d failed), %d duplicates, %d refused\n",
             count, stored, complete, failed, duplicates, refused);
    rp_runtime_destroy (&runtime);
    rp_blobstore_close (&blobs);
    rp_db_close (&db);
    return failed || refused || rp_interrupted () ? 1 : 0;
}
