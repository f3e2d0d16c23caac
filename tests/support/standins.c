/*  tests/support/standins.c: see standins.h. */
#include "tests/support/standins.h"
#include "tests/support/http.h"
#include "tests/support/testdata.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t
rp_test_standin_start (const char *script, char *const args [], const char *probe, int *port,
                       const char *log)
{
    const char *source = getenv ("RP_SOURCE_DIR");
    cr_assert_not_null (source, "RP_SOURCE_DIR (set by ctest) names the source tree");
    char path [512], number [16];
    snprintf (path, sizeof path, "%s/tools/aws/%s", source, script);
    *port = rp_test_free_port ();
    snprintf (number, sizeof number, "%d", *port);
    //  The .mjs stand-ins run on Node, the .py ones (moto) on python3
    size_t len = strlen (script);
    char *interpreter = len > 3 && strcmp (script + len - 3, ".py") == 0 ? "python3" : "node";
    char *argv [32] = { interpreter, path, "--port", number };
    int argc = 4;
    for (int i = 0; args && args [i] && argc < 31; i++)
        argv [argc++] = args [i];
    argv [argc] = NULL;
    pid_t pid = fork ();
    cr_assert_geq (pid, 0);
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGTERM);     //  it goes when the test goes
        FILE *out = freopen (log, "w", stdout);
        out = freopen (log, "a", stderr);
        (void) out;
        execvp (interpreter, argv);
        _exit (127);
    }
    char url [600];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/%s", *port, probe ? probe : "");
    for (int i = 0; i < 150; i++) {
        if (rp_test_http_status (url) > 0)
            return pid;
        if (waitpid (pid, NULL, WNOHANG) == pid) {
            //  Gone already (a missing package, say): its first words say why
            char line [300] = "";
            FILE *file = fopen (log, "r");
            if (file && !fgets (line, sizeof line, file))
                line [0] = 0;
            if (file)
                fclose (file);
            cr_assert_fail ("%s exited before it answered (log: %s): %s", script, log, line);
        }
        usleep (100 * 1000);
    }
    cr_assert_fail ("%s did not start (log: %s)", script, log);
    return -1;
}

void
rp_test_standin_stop (pid_t pid)
{
    if (pid > 0) {
        kill (pid, SIGTERM);
        rp_test_wait (pid, 10000);
    }
}
