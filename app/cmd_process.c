/*  app/cmd_process.c: `rapidphoto process [--out DIR] FILE|DIR...`

    Drives files through the real actors with no HTTP and no database: each
    file goes into a blob store, and one resize job and one EXIF job go to
    the broker (an in-process one with its worker pools, or a remote one
    with --connect) naming it by its store address, as the pipeline's jobs
    do. When both answers are in, the derivatives are linked (or copied)
    out of the store to DIR/<stem>.<name>.<ext>, and the file's JSON is
    written to DIR/<stem>.json and printed as one line on stdout (with
    "timings": milliseconds per stage as the workers measured them, for
    bench/). Progress goes to stderr when it is a terminal. Exit 1 if any
    file failed.
    The store: without --connect a private scratch store in a temporary
    folder under DIR (no fsync: it is removed at the end), which the
    in-process workers use as their data.dir; with --connect the
    configured one (data.dir, or S3), which the remote workers must share:
    what goes in is left there.
    A worker's answer names paths on its own machine: the derivatives are
    taken from our store by address and name, never from a path it gave.
*/
#include "engine/alloc.h"
#include "engine/broker.h"
#include "engine/clock.h"
#include "engine/link.h"
#include "engine/log.h"
#include "engine/msg.h"
#include "engine/runtime.h"
#include "library/blobstore.h"
#include "app/commands.h"
#include "app/roles.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


typedef struct {
    char *path;             //  as the user gave it (or found under a folder)
    char *abspath;          //  what goes into the store
    char stem [256];        //  unique among this run's files
    char sha256 [65];       //  its store address, once stored
    json_t *resize;         //  resize result, once in
    json_t *exif;           //  EXIF result, once in
    char *resize_error;     //  reasons, when a job failed
    char *exif_error;
    int answers;            //  0..2
    int64_t started;
} s_file_t;

//  Collecting the files of a folder, sorted, for nftw
static zlistx_t *s_walk_list;
static int
s_walk_one (const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (type == FTW_F && S_ISREG (st->st_mode)) {
        const char *base = path + ftw->base;
        if (*base != '.')           //  skip hidden files (.DS_Store and friends)
            zlistx_add_end (s_walk_list, rp_strdup (path));
    }
    return 0;
}

static int
s_string_compare (const void *a, const void *b)
{
    return strcmp ((const char *) a, (const char *) b);
}

int
rp_collect_files (char **args, int count, zlistx_t *paths)
{
    for (int i = 0; i < count; i++) {
        struct stat st;
        if (stat (args [i], &st) == 0 && S_ISDIR (st.st_mode)) {
            zlistx_t *found = zlistx_new ();
            zlistx_set_destructor (found, (zlistx_destructor_fn *) zstr_free);
            zlistx_set_comparator (found, s_string_compare);
            s_walk_list = found;
            if (nftw (args [i], s_walk_one, 16, FTW_PHYS) != 0) {
                fprintf (stderr, "rapidphoto: cannot read folder %s: %s\n", args [i], strerror (errno));
                zlistx_destroy (&found);
                return -1;
            }
            zlistx_sort (found);
            for (char *p = (char *) zlistx_first (found); p; p = (char *) zlistx_next (found))
                zlistx_add_end (paths, rp_strdup (p));
            zlistx_destroy (&found);
        }
        else
            //  Missing or unreadable files are processed too: they fail with a reason
            zlistx_add_end (paths, rp_strdup (args [i]));
    }
    return (int) zlistx_size (paths);
}

//  "IMG_0001.JPG" -> "IMG_0001"; made unique with -2, -3...
static void
s_make_stem (s_file_t *file, zhash_t *used)
{
    const char *base = strrchr (file->path, '/');
    base = base ? base + 1 : file->path;
    char stem [200];
    snprintf (stem, sizeof stem, "%s", *base ? base : "file");
    char *dot = strrchr (stem, '.');
    if (dot && dot != stem)
        *dot = 0;
    snprintf (file->stem, sizeof file->stem, "%s", stem);
    for (int n = 2; zhash_lookup (used, file->stem); n++)
        snprintf (file->stem, sizeof file->stem, "%s-%d", stem, n);
    zhash_insert (used, file->stem, file);
}

static int
s_write_atomic (const char *path, const char *text)
{
    char tmp [PATH_MAX];
    int n = snprintf (tmp, sizeof tmp, "%s.tmp-%d", path, (int) getpid ());
    if (n < 0 || (size_t) n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen (text), done = 0;
    while (done < len) {
        ssize_t written = write (fd, text + done, len - done);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            close (fd);
            unlink (tmp);
            return -1;
        }
        done += (size_t) written;
    }
    if (close (fd) || rename (tmp, path)) {
        unlink (tmp);
        return -1;
    }
    return 0;
}

static json_t *
s_get (json_t *object, const char *key)
{
    json_t *value = object ? json_object_get (object, key) : NULL;
    return value ? json_incref (value) : json_null ();
}

//  Where the workers spent their time on this file: the EXIF worker's
//  {"read_ms","hash_ms","exif_ms"} and the resize worker's {"decode_ms",
//  "<derivative>_ms"...}, in one object (empty when neither reported any).
static json_t *
s_timings (s_file_t *file)
{
    json_t *timings = json_object ();
    json_t *parts [2] = { file->exif, file->resize };
    for (int k = 0; k < 2; k++) {
        json_t *part = parts [k] ? json_object_get (parts [k], "timings") : NULL;
        if (json_is_object (part))
            json_object_update (timings, part);
    }
    return timings;
}

//  Both answers are in: the file's JSON, as written and printed.
static json_t *
s_compose (s_file_t *file, int64_t now)
{
    const char *error = file->resize_error ? file->resize_error : file->exif_error;
    json_t *out = json_object ();
    json_object_set_new (out, "file", json_string (file->path));
    json_object_set_new (out, "status", json_string (error ? "failed" : "complete"));
    json_object_set_new (out, "error", error ? json_string (error) : json_null ());
    json_object_set_new (out, "sha256", s_get (file->exif, "sha256"));
    json_object_set_new (out, "bytes", s_get (file->exif, "bytes"));
    //  The decoder's word on type and size wins over the header reader's
    json_t *source = file->resize ? file->resize : file->exif;
    json_object_set_new (out, "content_type", s_get (source, "content_type"));
    json_object_set_new (out, "width", s_get (source, "width"));
    json_object_set_new (out, "height", s_get (source, "height"));
    json_object_set_new (out, "taken_at", s_get (file->exif, "taken_at"));
    json_object_set_new (out, "exif", s_get (file->exif, "exif"));
    json_object_set_new (out, "derivatives", file->resize && !error
                         ? s_get (file->resize, "derivatives") : json_object ());
    json_object_set_new (out, "duration_ms", json_integer (now - file->started));
    json_object_set_new (out, "timings", s_timings (file));
    return out;
}

//  Put a file into the store; its address into file->sha256. -1 with err.
static int
s_store_file (rp_blobstore_t *store, s_file_t *file, int64_t max_bytes, char *err, size_t errlen)
{
    rp_blob_writer_t *writer = rp_blob_begin_file (store, file->abspath, max_bytes, err, errlen);
    bool existed = false;
    return writer ? rp_blob_commit (&writer, file->sha256, &existed, err, errlen) : -1;
}

//  The mode of the files written into --out: 0666 less the umask, read
//  once at the start (umask can only be read by setting it)
static mode_t s_output_mode = 0644;

//  Copy from to a new file to (made). 0, or -1 with errno.
static int
s_copy_file (const char *from, const char *to)
{
    int in = open (from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close (in);
        return -1;
    }
    static __thread char buffer [128 * 1024];
    ssize_t n = 0;
    while ((n = read (in, buffer, sizeof buffer)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (ssize_t done = 0; done < n; ) {
            ssize_t w = write (out, buffer + done, (size_t) (n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                n = -1;
                break;
            }
            done += w;
        }
        if (n < 0)
            break;
    }
    int saved = errno;
    close (in);
    if (close (out) || n < 0) {
        unlink (to);
        errno = n < 0 ? saved : errno;
        return -1;
    }
    return 0;
}

//  The derivatives the resize answer names, out of the store to
//  DIR/<stem>.<name>.<ext>, each entry's "path" set to its copy. Only
//  names and formats are taken from the answer. 0, or -1 with err.
static int
s_export_derivatives (rp_blobstore_t *store, s_file_t *file, const char *out_dir,
                      char *err, size_t errlen)
{
    const char *name;
    json_t *entry;
    json_object_foreach (json_object_get (file->resize, "derivatives"), name, entry) {
        const char *ext = rp_derivative_ext (json_string_value (json_object_get (entry, "format")), NULL);
        bool named = *name && strlen (name) < 32;
        for (const char *c = name; *c; c++)
            named &= isalnum ((unsigned char) *c) || *c == '_';
        if (!named || !ext || !json_is_object (entry)) {
            snprintf (err, errlen, "the resize answer names a derivative that is none");
            return -1;
        }
        char suffix [64], from [PATH_MAX], to [PATH_MAX], tmp [PATH_MAX + 32];
        snprintf (suffix, sizeof suffix, ".%s.%s", name, ext);
        rp_blob_path (store, file->sha256, from, sizeof from);
        size_t len = strlen (from);
        snprintf (from + len, sizeof from - len, "%s", suffix);
        int n = snprintf (to, sizeof to, "%s/%s%s", out_dir, file->stem, suffix);
        if (n < 0 || (size_t) n >= sizeof to) {
            snprintf (err, errlen, "the output name for %s%s is too long", file->stem, suffix);
            return -1;
        }
        snprintf (tmp, sizeof tmp, "%s.tmp-%d", to, (int) getpid ());
        unlink (tmp);
        int rc = link (from, tmp) == 0 || s_copy_file (from, tmp) == 0 ? 0 : -1;
        //  The store keeps its files private; what is written for the
        //  user is made as the user's other files are (0666 less the umask)
        if (rc == 0)
            chmod (tmp, s_output_mode);
        if (rc && errno == ENOENT && rp_blobstore_s3 (store)) {
            //  Made by a worker elsewhere, which stored it in S3
            char relative [160], why [256];
            rp_blob_relative (file->sha256, suffix, relative, sizeof relative);
            rc = rp_s3_mirror_get (rp_blobstore_s3 (store), relative, tmp, -1, why, sizeof why);
            if (rc)
                unlink (tmp);
            errno = ENOENT;
        }
        if (rc || rename (tmp, to)) {
            snprintf (err, errlen, "cannot write %s%s: %s", file->stem, suffix, strerror (errno));
            unlink (tmp);
            return -1;
        }
        json_object_set_new (entry, "path", json_string (to));
    }
    return 0;
}

static int
s_remove_one (const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (type == FTW_DP)
        rmdir (path);
    else
        unlink (path);
    return 0;
}

//  Both answers are in (or the file could not be stored): its line out.
static void
s_finish (s_file_t *file, const char *out_dir, int64_t now)
{
    json_t *photo = s_compose (file, now);
    char *line = json_dumps (photo, JSON_COMPACT);
    char json_path [PATH_MAX];
    int n = snprintf (json_path, sizeof json_path, "%s/%s.json", out_dir, file->stem);
    if (n < 0 || (size_t) n >= sizeof json_path)
        errno = ENAMETOOLONG;
    if (!line || n < 0 || (size_t) n >= sizeof json_path || s_write_atomic (json_path, line))
        fprintf (stderr, "rapidphoto process: cannot write %s: %s\n", json_path, strerror (errno));
    if (line) {
        printf ("%s\n", line);
        fflush (stdout);
    }
    free (line);
    json_decref (photo);
}

typedef struct {
    const char *out_dir;
    const char *config_path;
    const char *connect;
} s_options_t;

static int
s_parse (int argc, char **argv, s_options_t *options)
{
    static const struct option longopts [] = {
        { "out", required_argument, NULL, 'o' },
        { "config", required_argument, NULL, 'c' },
        { "connect", required_argument, NULL, 'C' },
        { NULL, 0, NULL, 0 }
    };
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long (argc, argv, ":o:c:C:", longopts, NULL)) != -1) {
        switch (opt) {
            case 'o': options->out_dir = optarg; break;
            case 'c': options->config_path = optarg; break;
            case 'C': options->connect = optarg; break;
            case ':': return rp_usage_error ("process", "%s needs a value", argv [optind - 1]);
            default:  return rp_usage_error ("process", "unknown option %s", argv [optind - 1]);
        }
    }
    if (optind >= argc)
        return rp_usage_error ("process", "no files given");
    return 0;
}

int
rp_cmd_process (int argc, char **argv)
{
    s_options_t options = { ".", NULL, NULL };
    int rc = s_parse (argc, argv, &options);
    if (rc)
        return rc;
    rp_config_t config;
    if (rp_cmd_load_config ("process", options.config_path, &config))
        return 1;
    rp_cmd_log_to_stderr ();
    mode_t mask = umask (022);
    umask (mask);
    s_output_mode = 0666 & ~mask;
    if (mkdir (options.out_dir, 0755) && errno != EEXIST) {
        fprintf (stderr, "rapidphoto process: cannot create output folder %s: %s\n",
                 options.out_dir, strerror (errno));
        return 1;
    }
    char out_dir [PATH_MAX];
    if (!realpath (options.out_dir, out_dir)) {
        fprintf (stderr, "rapidphoto process: cannot use output folder %s: %s\n",
                 options.out_dir, strerror (errno));
        return 1;
    }

    zlistx_t *paths = zlistx_new ();
    zlistx_set_destructor (paths, (zlistx_destructor_fn *) zstr_free);
    int count = rp_collect_files (argv + optind, argc - optind, paths);
    if (count <= 0) {
        zlistx_destroy (&paths);
        if (count == 0)
            fprintf (stderr, "rapidphoto process: no files found\n");
        return 1;
    }
    s_file_t *files = (s_file_t *) rp_alloc (sizeof (s_file_t) * (size_t) count);
    zhash_t *stems = zhash_new ();
    int index = 0;
    for (char *p = (char *) zlistx_first (paths); p; p = (char *) zlistx_next (paths), index++) {
        files [index].path = rp_strdup (p);
        char resolved [PATH_MAX];
        files [index].abspath = rp_strdup (realpath (p, resolved) ? resolved : p);
        s_make_stem (&files [index], stems);
    }
    zlistx_destroy (&paths);
    zhash_destroy (&stems);

    //  The store the workers find the files in: a scratch one of our own,
    //  or with --connect the configured one they share
    char scratch [PATH_MAX] = "", err [512];
    rp_config_t engine = config;
    engine.pools_nice = 0;          //  no uploads here to yield the cores to
    rp_blobstore_t *store = NULL;
    if (!options.connect) {
        snprintf (scratch, sizeof scratch, "%s/.rapidphoto-process-XXXXXX", out_dir);
        if (!mkdtemp (scratch)) {
            snprintf (err, sizeof err, "cannot make a scratch folder in %s: %s", out_dir, strerror (errno));
            *scratch = 0;
        }
        else
        if (strlen (scratch) >= sizeof engine.data_dir)
            snprintf (err, sizeof err, "the output folder's path is too long");
        else {
            store = rp_blobstore_open_scratch (scratch, err, sizeof err);
            snprintf (engine.data_dir, sizeof engine.data_dir, "%s", scratch);
            snprintf (engine.storage_backend, sizeof engine.storage_backend, "disk");
        }
    }
    else
        store = rp_blobstore_open (&config, err, sizeof err);

    //  The engine: our own broker and pools, or a remote broker
    rp_runtime_t *runtime = rp_runtime_new ();
    const char *frontend = options.connect;
    if (store && !frontend) {
        rp_roles_opts_t roles = { .listen_tcp = false, .pools = true, .pipeline = false };
        if (rp_roles_start (runtime, &engine, &roles, NULL, err, sizeof err))
            rp_blobstore_close (&store);
        frontend = RP_INPROC_FRONTEND;
    }
    zsock_t *client = store ? rp_link_connect (ZMQ_DEALER, frontend, &config, RP_LINK_UNQUEUED,
                                               err, sizeof err) : NULL;
    if (!client) {
        fprintf (stderr, "rapidphoto process: %s\n", err);
        rp_runtime_destroy (&runtime);
        rp_blobstore_close (&store);
        if (*scratch)
            nftw (scratch, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
        for (int i = 0; i < count; i++) {
            free (files [i].path);
            free (files [i].abspath);
        }
        free (files);
        return 1;
    }

    //  Answers come in any order; a file is done when both of its are in
    int finished = 0, failed = 0;
    bool progress = isatty (STDERR_FILENO);

    //  Job ids are unique across runs sharing a broker: pid + a random tag
    char run [32];
    snprintf (run, sizeof run, "%x%04x", (unsigned) getpid (), (unsigned) (randof (0xffff)));
    static const char *kinds [] = { "resize", "exif" };
    bool refused = false;
    for (int i = 0; i < count && !refused; i++) {
        files [i].started = rp_clock_ms ();
        if (s_store_file (store, &files [i], config.limits_max_upload_bytes, err, sizeof err)) {
            //  Nothing for a worker to do: it fails here, as a worker would
            files [i].resize_error = rp_strdup (err);
            s_finish (&files [i], out_dir, rp_clock_ms ());
            finished++;
            failed++;
            continue;
        }
        for (int k = 0; k < 2; k++) {
            rp_msg_t *submit = rp_msg_new (RP_MSG_SUBMIT);
            rp_msg_setf (&submit->job_id, "p%s-%d-%s", run, i, kinds [k]);
            rp_msg_set (&submit->kind, kinds [k]);
            rp_msg_set (&submit->src, files [i].sha256);
            rp_msg_set (&submit->photo_id, files [i].stem);
            if (rp_msg_send (submit, zsock_resolve (client), NULL) && !refused) {
                //  No broker to queue for: it refused our keys
                fprintf (stderr, "rapidphoto process: the broker at %s takes no jobs from us (%s): "
                         "are broker.curve_server_key and our key on its list right?\n", frontend,
                         zmq_strerror (zmq_errno ()));
                refused = true;
            }
            rp_msg_destroy (&submit);
        }
    }

    //  Silence this long means the broker is unreachable or has no workers
    int64_t patience = config.broker_job_timeout_ms * config.broker_max_attempts + 30000;
    zpoller_t *poller = zpoller_new (client, NULL);
    zpoller_set_nonstop (poller, true);
    int64_t last_answer = rp_clock_ms ();
    while (finished < count && !rp_interrupted () && !refused) {
        if (!zpoller_wait (poller, 500)) {
            if (rp_clock_ms () - last_answer > patience) {
                fprintf (stderr, "rapidphoto process: no answer from the broker at %s for %lld s; "
                         "%d of %d files unfinished\n", frontend, (long long) (patience / 1000),
                         count - finished, count);
                break;
            }
            continue;
        }
        last_answer = rp_clock_ms ();
        zmsg_t *zmsg = zmsg_recv (client);
        rp_msg_t *msg = zmsg ? rp_msg_decode (zmsg, err, sizeof err) : NULL;
        zmsg_destroy (&zmsg);
        int i = -1;
        char kind [16] = "";
        char tag [32] = "";
        if (!msg || msg->command != RP_MSG_RESULT
        ||  sscanf (msg->job_id, "p%31[^-]-%d-%15s", tag, &i, kind) != 3
        ||  strcmp (tag, run) != 0 || i < 0 || i >= count) {
            rp_warn ("process", "dropped an unexpected message from the broker");
            rp_msg_destroy (&msg);
            continue;
        }
        s_file_t *file = &files [i];
        bool is_resize = streq (kind, "resize");
        json_t **slot = is_resize ? &file->resize : &file->exif;
        char **error = is_resize ? &file->resize_error : &file->exif_error;
        if (*slot || *error) {
            //  The broker answers each job once; say so loudly if it did not
            rp_error ("process", "job=%s answered twice, second answer ignored", msg->job_id);
            rp_msg_destroy (&msg);
            continue;
        }
        if (streq (msg->status, "done")) {
            json_error_t jerr;
            *slot = json_loads (msg->result ? msg->result : "", 0, &jerr);
            if (!*slot)
                *error = rp_strdup ("the worker's result was not valid JSON");
        }
        else
            *error = rp_strdup (msg->error ? msg->error : "failed without a reason");
        rp_msg_destroy (&msg);
        if (++file->answers < 2)
            continue;
        if (!file->resize_error && !file->exif_error
        &&  s_export_derivatives (store, file, out_dir, err, sizeof err))
            file->resize_error = rp_strdup (err);
        s_finish (file, out_dir, rp_clock_ms ());
        if (file->resize_error || file->exif_error)
            failed++;
        finished++;
        if (progress)
            fprintf (stderr, "\rprocess: %d/%d files, %d failed ", finished, count, failed);
    }
    if (progress)
        fprintf (stderr, "\n");
    zpoller_destroy (&poller);
    zsock_destroy (&client);
    rp_runtime_destroy (&runtime);
    rp_blobstore_close (&store);
    if (*scratch)
        nftw (scratch, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);

    int unfinished = count - finished;
    for (int i = 0; i < count; i++) {
        free (files [i].path);
        free (files [i].abspath);
        json_decref (files [i].resize);
        json_decref (files [i].exif);
        free (files [i].resize_error);
        free (files [i].exif_error);
    }
    free (files);
    rp_info ("process", "%d files: %d complete, %d failed, %d unfinished", count,
             finished - failed, failed, unfinished);
    return failed || unfinished ? 1 : 0;
}
