/*  actors/actors.c: the registry of job kinds (see actors.h). */
#include "actors/actors.h"
#include "actors/exif/exif.h"
#include "actors/resize/resize.h"

#include <string.h>
#include <vips/vips.h>

static int
s_resize (const rp_config_t *config, const rp_msg_t *job, char **result, char *err, size_t errlen)
{
    if (!job->dest) {
        snprintf (err, errlen, "resize job without a destination");
        return -1;
    }
    rp_resize_opts_t opts;
    rp_resize_opts_from_config (&opts, config);
    json_t *json = NULL;
    if (rp_resize_photo (&opts, job->src, job->dest, &json, err, errlen))
        return -1;
    *result = json_dumps (json, JSON_COMPACT);
    json_decref (json);
    if (!*result) {
        snprintf (err, errlen, "cannot encode the resize result");
        return -1;
    }
    return 0;
}

static int
s_exif (const rp_config_t *config, const rp_msg_t *job, char **result, char *err, size_t errlen)
{
    json_t *json = NULL, *timings = NULL;
    if (rp_exif_read_timed (job->src, config->limits_max_upload_bytes, &json, &timings, err, errlen))
        return -1;
    if (timings)                //  the stage breakdown (bench/); NULL only without memory
        json_object_set_new (json, "timings", timings);
    *result = json_dumps (json, JSON_COMPACT);
    json_decref (json);
    if (!*result) {
        snprintf (err, errlen, "cannot encode the EXIF result");
        return -1;
    }
    return 0;
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
