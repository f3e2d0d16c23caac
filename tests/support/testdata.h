/*  tests/support/testdata.h: helpers shared by the test suites.

    The shared corpus (../shared/testdata) is always there in CI, but not in a
    user's fresh clone. Tests that need it call RP_REQUIRE_TESTDATA(), which
    skips the test with a plain message when it is absent. Tests that need
    photos of their own make them with rp_test_make_jpeg().
*/
#ifndef RP_TEST_TESTDATA_H
#define RP_TEST_TESTDATA_H

#include <criterion/criterion.h>
#include <stddef.h>

//  The corpus folder (RP_TESTDATA from ctest), or NULL when it is absent.
const char *rp_testdata_dir (void);

//  Path of a corpus file into `buf`: "<testdata>/images/<rel>". NULL when absent.
const char *rp_testdata_path (char *buf, size_t size, const char *rel);

//  The built rapidphoto binary (RP_BINARY from ctest).
const char *rp_test_binary (void);

//  A fresh empty temporary directory (caller frees the string; the folder is
//  left for inspection under /tmp/rp-test-*).
char *rp_test_tmpdir (const char *name);

//  Write a synthetic JPEG of w x h pixels (a colour gradient, so resized
//  outputs are not uniform) with optional EXIF orientation (0 = none).
//  Returns 0 or -1.
int rp_test_make_jpeg (const char *path, int width, int height, int orientation);

//  Write a JPEG of w x h pixels of noise (each band its own), at Q 100
//  without chroma subsampling: about 4 bytes a pixel, for tests that need
//  a large upload that is still a photo. Returns 0 or -1.
int rp_test_make_noise_jpeg (const char *path, int width, int height);

//  A whole file's bytes, NUL-terminated (caller frees); its length into *len.
char *rp_test_read_file (const char *path, size_t *len);

//  Run a shell command, capturing stdout into *out (caller frees) if out is
//  not NULL; returns the exit status (or -1).
int rp_test_run (const char *command, char **out);

#define RP_REQUIRE_TESTDATA() \
    do { if (!rp_testdata_dir ()) \
        cr_skip_test ("skipped: ../shared/testdata is absent (RP_TESTDATA unset or missing)"); \
    } while (0)



//  Processes for tests that run the real binary.
#include <sys/types.h>

//  Start `rapidphoto ARGS...` (NULL-terminated) with extra environment
//  entries ("KEY=VALUE", NULL-terminated, may be NULL), stdout and stderr
//  to the given files (NULL: inherit). Returns the pid.
pid_t rp_test_spawn (char *const args [], char *const env [], const char *out, const char *err);
//  The same with another binary than rp_test_binary () (an older release).
pid_t rp_test_spawn_binary (const char *binary, char *const args [], char *const env [], const char *out,
                            const char *err);

//  Wait for pid at most timeout_ms; returns its exit status, 128+signal when
//  killed, or -1 on timeout (the process is left running).
int rp_test_wait (pid_t pid, int timeout_ms);

//  A TCP port on 127.0.0.1 that was free a moment ago: random, below the
//  kernel's ephemeral range, never the same twice in one process; -1 if
//  none was found.
int rp_test_free_port (void);

//  Count lines of a file that contain `needle`.
int rp_test_count_in_file (const char *path, const char *needle);

//  Count the times `needle` occurs in text (NULL: none).
int rp_test_count_text (const char *text, const char *needle);
#endif
