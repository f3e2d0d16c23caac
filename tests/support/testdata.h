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

//  Run a shell command, capturing stdout into *out (caller frees) if out is
//  not NULL; returns the exit status (or -1).
int rp_test_run (const char *command, char **out);

#define RP_REQUIRE_TESTDATA() \
    do { if (!rp_testdata_dir ()) \
        cr_skip_test ("skipped: ../shared/testdata is absent (RP_TESTDATA unset or missing)"); \
    } while (0)

#endif
