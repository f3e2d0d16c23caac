/*  engine/fs.c: see fs.h. */
#include "engine/fs.h"
#include "engine/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Folder syncs made while RP_FAULT_DIR_SYNC is set, across the process
static atomic_llong s_syncs = 0;

int
rp_fs_sync_dir (const char *path)
{
    int64_t nth = rp_fault_value ("DIR_SYNC");
    if (nth > 0 && atomic_fetch_add (&s_syncs, 1) + 1 == nth) {
        errno = EIO;
        return -1;
    }
    int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    int saved = errno;
    close (fd);
    errno = saved;
    return rc;
}

int
rp_fs_sync_parent (const char *path)
{
    char parent [PATH_MAX];
    const char *slash = strrchr (path, '/');
    if (!slash)
        snprintf (parent, sizeof parent, ".");
    else
    if (slash == path)
        snprintf (parent, sizeof parent, "/");
    else
        snprintf (parent, sizeof parent, "%.*s", (int) (slash - path), path);
    return rp_fs_sync_dir (parent);
}

//  Make one folder durable in its parent; when that fails it is removed
//  again, so that a later call makes it (and syncs it) anew rather than
//  find it there and take it for durable.
static int
s_made (const char *path, char *err, size_t errlen)
{
    if (rp_fs_sync_parent (path) == 0)
        return 0;
    snprintf (err, errlen, "cannot make the folder %s durable: %s", path, strerror (errno));
    rmdir (path);
    return -1;
}

//  Make buf (len bytes, NUL-terminated there), its missing parents first,
//  each made durable in its parent when durable. The common case, a
//  folder that is there, is one mkdir.
static int
s_mkdirs (char *buf, size_t len, mode_t mode, bool durable, char *err, size_t errlen)
{
    if (mkdir (buf, mode) == 0)
        return durable ? s_made (buf, err, errlen) : 0;
    if (errno == EEXIST)
        return 0;
    char *slash = errno == ENOENT ? memrchr (buf, '/', len) : NULL;
    if (slash && slash > buf) {
        *slash = 0;
        int rc = s_mkdirs (buf, (size_t) (slash - buf), mode, durable, err, errlen);
        *slash = '/';
        if (rc)
            return rc;
        if (mkdir (buf, mode) == 0)
            return durable ? s_made (buf, err, errlen) : 0;
        if (errno == EEXIST)
            return 0;
    }
    snprintf (err, errlen, "cannot make the folder %s: %s", buf, strerror (errno));
    return -1;
}

static int
s_mkdirs_path (const char *path, mode_t mode, bool durable, char *err, size_t errlen)
{
    char buf [PATH_MAX];
    size_t len = strlen (path);
    if (len == 0 || len >= sizeof buf) {
        snprintf (err, errlen, "a folder name must have 1 to %d bytes", PATH_MAX - 1);
        return -1;
    }
    memcpy (buf, path, len + 1);
    while (len > 1 && buf [len - 1] == '/')
        buf [--len] = 0;
    return s_mkdirs (buf, len, mode, durable, err, errlen);
}

int
rp_fs_mkdirs (const char *path, mode_t mode, char *err, size_t errlen)
{
    return s_mkdirs_path (path, mode, true, err, errlen);
}

int
rp_fs_mkdirs_scratch (const char *path, mode_t mode, char *err, size_t errlen)
{
    return s_mkdirs_path (path, mode, false, err, errlen);
}
