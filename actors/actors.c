/*  actors/actors.c: the registry of job kinds. Adding a kind = a handler in
    actors/<kind>/ and a row in s_kinds. */
#include "actors.h"
#include "exif/exif.h"
#include "resize/resize.h"

#include <string.h>

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

static const struct {
    const char *pool;
    rp_job_handler_fn *handler;
} s_kinds [] = {
    { "resize", s_resize },
    { "exif", s_exif },
};

rp_job_handler_fn *
rp_actors_handler (const char *pool)
{
    for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds [0]; i++)
        if (strcmp (s_kinds [i].pool, pool) == 0)
            return s_kinds [i].handler;
    return NULL;
}

const char *
rp_actors_pools (void)
{
    return "resize, exif";
}
