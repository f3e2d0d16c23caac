/*  engine/fs.h: folders that survive a crash.

    fsync makes a file's bytes durable, not the folder entries that lead to
    it: a folder made with mkdir is itself an entry in its parent, which a
    crash may lose unless the parent is fsync'd too, and with it everything
    under the folder. Whoever makes a folder to keep durable files in makes
    it with rp_fs_mkdirs; whoever links, renames or unlinks in a folder and
    counts on it syncs that folder with rp_fs_sync_dir.

    Fault hook: RP_FAULT_DIR_SYNC=N: the Nth folder sync made while the
    hook is set (counted per process, only while it is set) fails with EIO,
    as a failing disk would.
*/
#ifndef RP_FS_H
#define RP_FS_H

#include <stddef.h>
#include <sys/types.h>

//  Make path and whichever of its parents are missing, with mode; each
//  folder made is fsync'd into its parent before the next is made.
//  Folders already there are left as they are. 0, or -1 with err naming
//  the folder: what was made durable before stays, the folder whose sync
//  failed is removed again (so a later call makes it and syncs it anew).
int rp_fs_mkdirs (const char *path, mode_t mode, char *err, size_t errlen);
//  The same without the syncs, for scratch folders that need not survive
//  a crash (`rapidphoto process`'s private store).
int rp_fs_mkdirs_scratch (const char *path, mode_t mode, char *err, size_t errlen);

//  fsync a folder, so what was linked, renamed or unlinked in it survives
//  a crash. 0, or -1 with errno set.
int rp_fs_sync_dir (const char *path);
//  fsync the folder that holds path (its part up to the last slash; "/"
//  for a top name, "." for a name without a slash). 0, or -1 with errno.
int rp_fs_sync_parent (const char *path);

#endif
