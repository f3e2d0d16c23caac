/*  tests/fuzz/fuzz.h: what the fuzz targets share. Header only.

    A target gets the fuzzer's bytes once per input. Those that need more
    than one piece of input (a message's frames, a sequence of steps, a
    header and a body) read it as a stream of small decisions with the
    reader below (LLVM's FuzzedDataProvider, in C): every read succeeds,
    giving zeros or fewer bytes once the input is spent, so any input is a
    valid program for the target.

    A target calls RP_FUZZ_CHECK on a property the code promises (a message
    it accepted reads back the same); a broken promise aborts, and libFuzzer
    keeps the input as a crash like any sanitizer report.
*/
#ifndef RP_FUZZ_H
#define RP_FUZZ_H

#include <czmq.h>
#include <dirent.h>
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  The entry points libFuzzer calls (declared here for -Wmissing-prototypes)
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

#define RP_FUZZ_CHECK(cond, ...) do {                                              \
    if (!(cond)) {                                                                 \
        fprintf (stderr, "%s:%d: broken promise: %s: ", __FILE__, __LINE__, #cond); \
        fprintf (stderr, __VA_ARGS__);                                             \
        fprintf (stderr, "\n");                                                    \
        abort ();                                                                  \
    }                                                                              \
} while (0)

typedef struct {
    const uint8_t *data;                //  what is left of the input
    size_t size;
} rp_fuzz_in_t;

static inline rp_fuzz_in_t
rp_fuzz_in (const uint8_t *data, size_t size)
{
    rp_fuzz_in_t in = { data, size };
    return in;
}

//  The next byte, 0 when the input is spent.
static inline uint8_t
rp_fuzz_byte (rp_fuzz_in_t *in)
{
    if (!in->size)
        return 0;
    in->size--;
    return *in->data++;
}

//  A number in 0..max from the next byte.
static inline unsigned
rp_fuzz_pick (rp_fuzz_in_t *in, unsigned max)
{
    return rp_fuzz_byte (in) % (max + 1);
}

//  The bytes up to the next `sep` (not included; it is consumed), or all
//  that is left; *len is their count. Points into the input.
static inline const uint8_t *
rp_fuzz_until (rp_fuzz_in_t *in, uint8_t sep, size_t *len)
{
    const uint8_t *start = in->data;
    const uint8_t *end = (const uint8_t *) memchr (in->data, sep, in->size);
    *len = end ? (size_t) (end - start) : in->size;
    in->data += *len + (end ? 1 : 0);
    in->size -= *len + (end ? 1 : 0);
    return start;
}

//  The same as a new NUL-terminated string (caller frees); NULs inside
//  end it early, as they would in a C string from the wire.
static inline char *
rp_fuzz_string_until (rp_fuzz_in_t *in, uint8_t sep)
{
    size_t len = 0;
    const uint8_t *bytes = rp_fuzz_until (in, sep, &len);
    char *text = (char *) malloc (len + 1);
    if (!text)
        abort ();
    memcpy (text, bytes, len);
    text [len] = 0;
    return text;
}

//  The rest of the input as one message's frames, split at each 0xC1 (the
//  one byte msgpack never uses and UTF-8 never holds, so no tag, command
//  or body the fuzzer could use is lost). At least one frame. Caller
//  destroys it.
static inline zmsg_t *
rp_fuzz_frames (rp_fuzz_in_t *in)
{
    zmsg_t *zmsg = zmsg_new ();
    do {
        size_t len = 0;
        const uint8_t *frame = rp_fuzz_until (in, 0xC1, &len);
        zmsg_addmem (zmsg, frame, len);
    } while (in->size);
    return zmsg;
}

//  ---------------------------------------------------------------------------
//  A folder of the target's own (for files the code under test writes), on
//  /dev/shm when there is one, removed with what it holds when the fuzzer
//  ends (not after a crash: it is small)

static char rp_fuzz_folder_path [256];

static inline int
rp_fuzz_folder_remove_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    remove (path);
    return 0;
}

static inline void
rp_fuzz_folder_remove (void)
{
    nftw (rp_fuzz_folder_path, rp_fuzz_folder_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

//  Make the folder "rp-fuzz-<name>-XXXXXX"; its path (static). Aborts when
//  it cannot: the target cannot run.
static inline const char *
rp_fuzz_folder (const char *name)
{
    const char *base = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
    snprintf (rp_fuzz_folder_path, sizeof rp_fuzz_folder_path, "%s/rp-fuzz-%s-XXXXXX", base, name);
    if (!mkdtemp (rp_fuzz_folder_path))
        abort ();
    atexit (rp_fuzz_folder_remove);
    return rp_fuzz_folder_path;
}

//  Remove the files in dir but keep (NULL: none); how many there were.
static inline int
rp_fuzz_folder_empty (const char *dir, const char *keep)
{
    DIR *d = opendir (dir);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *entry;
    while ((entry = readdir (d))) {
        if (entry->d_name [0] == '.' || (keep && strcmp (entry->d_name, keep) == 0))
            continue;
        char path [600];
        snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
        unlink (path);
        found++;
    }
    closedir (d);
    return found;
}

#endif
