/*  actors/actors.c: the registry of job kinds (see actors.h).

    A job names its original by store address (job->src: its SHA-256),
    never by path: each handler finds it in the worker's own store (its
    config's data.dir; storage.backend = s3: fetched into that cache first)
    and refuses anything that is not an address, so a job can neither read
    nor write outside the store. Derivatives land beside the original
    (<sha256>.<name>.<ext>); a job's dest, from older producers, is never
    looked at. In S3 mode the resize handler stores the derivatives in S3
    before it answers, so a worker on another machine needs only the
    bucket (the engine's in-process workers are given disk mode: their
    pipeline fetches and stores for them, with its own backoff).
*/
#include "actors/actors.h"
#include "library/blobstore.h"
#include "actors/exif/exif.h"
#include "actors/resize/resize.h"

#include <limits.h>
#include <string.h>
#include <vips/vips.h>

//  The original a job names, in this worker's store: *store (caller
//  closes) and its path. RP_UNAVAILABLE when S3 cannot be reached; -1 when
//  src is no address or the original is not stored (err says which,
//  never echoing what the job said).
static int
s_original (const rp_config_t *config, const rp_msg_t *job, rp_blobstore_t **store,
            char *path, size_t size, char *err, size_t errlen)
{
    *store = NULL;
    if (!rp_blob_is_address (job->src)) {
        snprintf (err, errlen, "refused: a job names its photo by store address "
                  "(its SHA-256, 64 lowercase hex digits), never by path");
        return -1;
    }
    *store = rp_blobstore_open (config, err, errlen);
    if (!*store)
        return -1;
    int rc = rp_blob_fetch (*store, job->src, err, errlen);
    if (rc == 0 && rp_blob_path (*store, job->src, path, size))
        rc = -1;                //  an address always has a path
    if (rc)
        rp_blobstore_close (store);
    return rc;
}

//  What a job kind does with its original (at path, in store): its
//  result into *json. 0, or as the handler returns.
typedef int (s_work_fn) (const rp_config_t *config, rp_blobstore_t *store, const char *path,
                         const rp_msg_t *job, json_t **json, char *err, size_t errlen);

//  A handler: the job's original found, the work done on it, its result
//  as the job's result text.
static int
s_handle (const rp_config_t *config, const rp_msg_t *job, s_work_fn *work, char **result,
          char *err, size_t errlen)
{
    rp_blobstore_t *store = NULL;
    char path [PATH_MAX];
    int rc = s_original (config, job, &store, path, sizeof path, err, errlen);
    if (rc)
        return rc;
    json_t *json = NULL;
    rc = work (config, store, path, job, &json, err, errlen);
    rp_blobstore_close (&store);
    if (rc == 0 && !(*result = json_dumps (json, JSON_COMPACT))) {
        snprintf (err, errlen, "cannot encode the result");
        rc = -1;
    }
    json_decref (json);
    return rc;
}

static int
s_resize_work (const rp_config_t *config, rp_blobstore_t *store, const char *path,
               const rp_msg_t *job, json_t **json, char *err, size_t errlen)
{
    rp_resize_opts_t opts;
    rp_resize_opts_from_config (&opts, config);
    //  The derivatives' prefix is the original's own path: beside it
    int rc = rp_resize_photo (&opts, path, path, json, err, errlen);
    if (rc == 0 && rp_blobstore_s3 (store))
        rc = rp_blob_push_derivatives (store, job->src, err, errlen);
    return rc;
}

static int
s_exif_work (const rp_config_t *config, rp_blobstore_t *store, const char *path,
             const rp_msg_t *job, json_t **json, char *err, size_t errlen)
{
    json_t *timings = NULL;
    //  The address is the bytes' SHA-256, checked as they went in
    if (rp_exif_read_stored (path, job->src, config->limits_max_upload_bytes, json, &timings,
                             err, errlen))
        return -1;
    if (timings)                //  the stage breakdown (bench/); NULL only without memory
        json_object_set_new (*json, "timings", timings);
    return 0;
}

static int
s_resize (const rp_config_t *config, const rp_msg_t *job, char **result, char *err, size_t errlen)
{
    return s_handle (config, job, s_resize_work, result, err, errlen);
}

static int
s_exif (const rp_config_t *config, const rp_msg_t *job, char **result, char *err, size_t errlen)
{
    return s_handle (config, job, s_exif_work, result, err, errlen);
}

//  libvips keeps per-thread state in threads it did not create
static void
s_vips_thread_exit (void)
{
    vips_thread_shutdown ();
}

static const rp_job_kind_t s_kinds [] = {
    { "resize", s_resize, s_vips_thread_exit },
    { "exif", s_exif, NULL },
};

const rp_job_kind_t *
rp_actors_kind (const char *pool)
{
    for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds [0]; i++)
        if (strcmp (s_kinds [i].pool, pool) == 0)
            return &s_kinds [i];
    return NULL;
}

const char *
rp_actors_pools (void)
{
    return "resize, exif";
}

int
rp_actors_start_pool (rp_runtime_t *runtime, const char *pool, int threads, const char *endpoint,
                      const rp_config_t *config, char *err, size_t errlen)
{
    const rp_job_kind_t *kind = rp_actors_kind (pool);
    if (!kind) {
        snprintf (err, errlen, "unknown pool \"%s\" (this build serves: %s)", pool, rp_actors_pools ());
        return -1;
    }
    rp_runtime_start_pool (runtime, kind, threads, endpoint, config);
    return 0;
}
