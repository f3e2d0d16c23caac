/*  tests/support/testdata.c: see testdata.h. */
#include "tests/support/testdata.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vips/vips.h>

const char *
rp_testdata_dir (void)
{
    const char *dir = getenv ("RP_TESTDATA");
    if (!dir || !*dir)
        return NULL;
    char probe [4096];
    snprintf (probe, sizeof probe, "%s/images", dir);
    struct stat st;
    if (stat (probe, &st) != 0 || !S_ISDIR (st.st_mode))
        return NULL;
    return dir;
}

const char *
rp_testdata_path (char *buf, size_t size, const char *rel)
{
    const char *dir = rp_testdata_dir ();
    if (!dir)
        return NULL;
    snprintf (buf, size, "%s/images/%s", dir, rel);
    return buf;
}

const char *
rp_test_binary (void)
{
    const char *bin = getenv ("RP_BINARY");
    return bin && *bin ? bin : "./rapidphoto";
}

char *
rp_test_tmpdir (const char *name)
{
    char tmpl [256];
    snprintf (tmpl, sizeof tmpl, "/tmp/rp-test-%s-XXXXXX", name);
    char *dir = mkdtemp (tmpl);
    return dir ? strdup (dir) : NULL;
}

int
rp_test_make_jpeg (const char *path, int width, int height, int orientation)
{
    static int started = 0;
    if (!started) {
        if (VIPS_INIT ("rp-test"))
            return -1;
        started = 1;
    }
    VipsImage *x = NULL, *y = NULL, *r = NULL, *g = NULL, *b = NULL, *rgb = NULL, *u8 = NULL;
    int rc = -1;
    //  A gradient with a bright corner: orientation mistakes show up in tests
    if (vips_xyz (&x, width, height, NULL))
        goto done;
    if (vips_extract_band (x, &r, 0, NULL) || vips_extract_band (x, &g, 1, NULL))
        goto done;
    if (vips_linear1 (r, &y, 255.0 / (width > 1 ? width - 1 : 1), 0, NULL))
        goto done;
    VipsImage *gg = NULL;
    if (vips_linear1 (g, &gg, 255.0 / (height > 1 ? height - 1 : 1), 0, NULL))
        goto done;
    if (vips_black (&b, width, height, NULL)) {
        g_object_unref (gg);
        goto done;
    }
    VipsImage *bands [3] = { y, gg, b };
    if (vips_bandjoin (bands, &rgb, 3, NULL)) {
        g_object_unref (gg);
        goto done;
    }
    g_object_unref (gg);
    if (vips_cast_uchar (rgb, &u8, NULL))
        goto done;
    u8->Type = VIPS_INTERPRETATION_sRGB;
    if (orientation > 0) {
        VipsImage *copy = NULL;
        if (vips_copy (u8, &copy, NULL))
            goto done;
        vips_image_set_int (copy, VIPS_META_ORIENTATION, orientation);
        g_object_unref (u8);
        u8 = copy;
        rc = vips_jpegsave (u8, path, "Q", 85, NULL);
    }
    else
        rc = vips_jpegsave (u8, path, "Q", 85, "strip", TRUE, NULL);
done:
    if (x) g_object_unref (x);
    if (y) g_object_unref (y);
    if (r) g_object_unref (r);
    if (g) g_object_unref (g);
    if (b) g_object_unref (b);
    if (rgb) g_object_unref (rgb);
    if (u8) g_object_unref (u8);
    return rc == 0 ? 0 : -1;
}

int
rp_test_make_noise_jpeg (const char *path, int width, int height)
{
    if (VIPS_INIT ("rp-test"))
        return -1;
    VipsImage *bands [3] = { NULL, NULL, NULL }, *rgb = NULL, *u8 = NULL;
    int rc = -1;
    for (int i = 0; i < 3; i++)
        if (vips_gaussnoise (&bands [i], width, height, "mean", 128.0, "sigma", 60.0, "seed", 7 + i, NULL))
            goto done;
    if (vips_bandjoin (bands, &rgb, 3, NULL) || vips_cast_uchar (rgb, &u8, NULL))
        goto done;
    u8->Type = VIPS_INTERPRETATION_sRGB;
    rc = vips_jpegsave (u8, path, "Q", 100, "subsample_mode", VIPS_FOREIGN_SUBSAMPLE_OFF, "strip", TRUE, NULL);
done:
    for (int i = 0; i < 3; i++)
        if (bands [i])
            g_object_unref (bands [i]);
    if (rgb) g_object_unref (rgb);
    if (u8) g_object_unref (u8);
    return rc == 0 ? 0 : -1;
}

char *
rp_test_read_file (const char *path, size_t *len)
{
    FILE *file = fopen (path, "rb");
    cr_assert_not_null (file, "%s", path);
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    fseek (file, 0, SEEK_SET);
    char *data = malloc ((size_t) size + 1);
    cr_assert_eq (fread (data, 1, (size_t) size, file), (size_t) size);
    data [size] = 0;
    fclose (file);
    data [size] = 0;                    //  as testdata.h says
    *len = (size_t) size;
    return data;
}

int
rp_test_run (const char *command, char **out)
{
    FILE *pipe = popen (command, "r");
    if (!pipe)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc (cap);
    if (!buf) {
        pclose (pipe);
        return -1;
    }
    size_t n;
    while ((n = fread (buf + len, 1, cap - len - 1, pipe)) > 0) {
        len += n;
        if (cap - len < 1024) {
            char *bigger = realloc (buf, cap * 2);
            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
    }
    buf [len] = 0;
    int status = pclose (pipe);
    if (out)
        *out = buf;
    else
        free (buf);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

pid_t
rp_test_spawn (char *const args [], char *const env [], const char *out, const char *err)
{
    return rp_test_spawn_binary (rp_test_binary (), args, env, out, err);
}

pid_t
rp_test_spawn_binary (const char *binary, char *const args [], char *const env [], const char *out,
                      const char *err)
{
    pid_t pid = fork ();
    if (pid != 0)
        return pid;
    //  Never outlive the test: a failed assertion must not leave servers behind
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    for (int i = 0; env && env [i]; i++)
        putenv (env [i]);
    if (out) {
        int fd = open (out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2 (fd, 1);
        close (fd);
    }
    if (err) {
        int fd = open (err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2 (fd, 2);
        close (fd);
    }
    int fd = open ("/dev/null", O_RDONLY);
    dup2 (fd, 0);
    close (fd);
    char *argv [64];
    argv [0] = (char *) binary;
    int n = 1;
    for (; args [n - 1] && n < 63; n++)
        argv [n] = args [n - 1];
    argv [n] = NULL;
    execv (argv [0], argv);
    _exit (127);
}

int
rp_test_wait (pid_t pid, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        int status;
        pid_t rc = waitpid (pid, &status, WNOHANG);
        if (rc == pid)
            return WIFEXITED (status) ? WEXITSTATUS (status)
                 : WIFSIGNALED (status) ? 128 + WTERMSIG (status) : -1;
        struct timespec ts = { 0, 20 * 1000000 };
        nanosleep (&ts, NULL);
    }
    return -1;
}

//  Ports are picked at random below the kernel's ephemeral range (where
//  bind (port 0) and every outgoing connection take theirs, so none of
//  those can be handed the port between this check and the server's own
//  bind), and never twice in one process: two ports asked for in a row
//  (a server's HTTP and its broker's) used to come back equal now and
//  then, the first freed and handed out again at once.
#define S_PORT_LOW 10000
#define S_PORTS_GIVEN_MAX 4096

//  Whether port is bindable on 127.0.0.1 now
static bool
s_port_free (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in addr = { 0 };
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    addr.sin_port = htons ((uint16_t) port);
    bool free = bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
    close (fd);
    return free;
}

int
rp_test_free_port (void)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static int given [S_PORTS_GIVEN_MAX];
    static int given_count = 0;
    //  Below the ephemeral range, read from the kernel (32768 by default)
    int high = 32768;
    FILE *range = fopen ("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (range) {
        int low_ephemeral = 0;
        if (fscanf (range, "%d", &low_ephemeral) == 1 && low_ephemeral > S_PORT_LOW + 1000)
            high = low_ephemeral;
        fclose (range);
    }
    pthread_mutex_lock (&lock);
    int port = -1;
    for (int attempt = 0; attempt < 10000 && port < 0; attempt++) {
        uint32_t r = 0;
        if (getrandom (&r, sizeof r, 0) != (ssize_t) sizeof r)
            r = (uint32_t) rand ();
        int candidate = S_PORT_LOW + (int) (r % (uint32_t) (high - S_PORT_LOW));
        bool seen = false;
        for (int i = 0; i < given_count && !seen; i++)
            seen = given [i] == candidate;
        if (!seen && s_port_free (candidate))
            port = candidate;
    }
    if (port > 0 && given_count < S_PORTS_GIVEN_MAX)
        given [given_count++] = port;
    pthread_mutex_unlock (&lock);
    return port;
}

int
rp_test_count_in_file (const char *path, const char *needle)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    char line [8192];
    int count = 0;
    while (fgets (line, sizeof line, file))
        if (strstr (line, needle))
            count++;
    fclose (file);
    return count;
}

int
rp_test_count_text (const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr (p, needle)); p += strlen (needle))
        n++;
    return n;
}
