/*  tests/fuzz/multipart.c: POST /api/v1/photos with any multipart body,
    through libmicrohttpd's post processor and our part handling
    (gateway/upload.c), by the gateway's own request handler (routes.c).

    A libmicrohttpd daemon with no listening socket runs in this thread
    (external select): each input is one request written into a socket
    pair handed to it with MHD_add_connection, a piece at a time with an
    MHD_run after each, so the body reaches the post processor and
    s_iterate in pieces of the size the input chooses. The request carries
    a valid token (the gateway's state, rp_gw, is set up here with a blob
    store in a folder of its own, on /dev/shm when there is one). Its
    database URL names no database: an upload that passes every check
    fails at the commit with 503, so the parts are written and sniffed but
    nothing is stored.

    The input: one byte choosing the size of the pieces, the Content-Type
    up to the first line end (line ends in it are spaces: the request stays
    HTTP), then the body (sent with its Content-Length). Checked: every
    request gets an answer, 400, 413, 415 or (all checks passed) 503, never
    a 5xx of another kind; and whatever the answer, no temporary file is
    left in the blob store (upload.c: a refused request leaves nothing
    behind).

    RP_FUZZ_VERBOSE=1 in the environment prints each answer (its first 4 KiB).

    Seeds: tests/fuzz/corpus/multipart (what browsers and curl send, odd
    boundaries, several files, fields); dictionary: tests/fuzz/multipart.dict.
*/
#include "engine/clock.h"
#include "engine/log.h"
#include "gateway/auth.h"
#include "gateway/gateway_private.h"
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

static struct MHD_Daemon *s_daemon;
static char s_tmp [320];                //  the blob store's temporary files
static char s_token [1024];             //  a valid Bearer token
static char s_stamp [RP_AUTH_STAMP_MAX];    //  its password stamp
#define S_USER "0123456789abcdef0123456789abcdef"
#define S_PASSWORD_HASH "the fuzz user's password hash"

static void
s_quiet (void *cls, const char *fmt, va_list ap)
{
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    rp_gw_t *gw = (rp_gw_t *) calloc (1, sizeof (rp_gw_t));
    char err [256];
    if (!gw || rp_config_load (&gw->config, NULL, err, sizeof err))
        abort ();
    rp_log_set_level (RP_LOG_ERROR);
    const char *dir = rp_fuzz_folder ("multipart");
    snprintf (s_tmp, sizeof s_tmp, "%s/objects/tmp", dir);
    snprintf (gw->config.data_dir, sizeof gw->config.data_dir, "%s", dir);
    snprintf (gw->config.db_url, sizeof gw->config.db_url, "none:the fuzz target has no database");
    gw->config.limits_max_upload_bytes = 4096;         //  small: a file over it is reachable (413)
    snprintf (gw->secret, sizeof gw->secret, "a fuzz secret of at least thirty-two bytes");
    gw->blobs = rp_blobstore_open_disk (dir, err, sizeof err);
    if (!gw->blobs)
        abort ();
    rp_gw = gw;
    int64_t expires = 0;
    char *token = rp_auth_token_issue (gw->secret, S_USER, S_PASSWORD_HASH, 3600 * 24 * 365, &expires);
    rp_auth_stamp (gw->secret, S_PASSWORD_HASH, s_stamp);
    if (!token)
        abort ();
    snprintf (s_token, sizeof s_token, "%s", token);
    free (token);
    //  As gateway.c starts its daemon, but driven from here, with no socket
    s_daemon = MHD_start_daemon (MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                 rp_gw_request_handler, NULL,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (64 * 1024),
                                 MHD_OPTION_NOTIFY_COMPLETED, rp_gw_request_completed, NULL,
                                 MHD_OPTION_EXTERNAL_LOGGER, s_quiet, NULL,
                                 MHD_OPTION_END);
    if (!s_daemon)
        abort ();
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static const size_t pieces [] = { 1, 3, 17, 100, 1000, 4096, 65536, 1 << 20 };
    rp_fuzz_in_t in = rp_fuzz_in (data, size);
    //  The user's password stamp, as the database would give it (there is
    //  none): fresh for each input, so the token is always taken
    rp_auth_stamp_remember (S_USER, s_stamp, rp_clock_ms ());
    size_t piece = pieces [rp_fuzz_pick (&in, 7)];
    char *type = rp_fuzz_string_until (&in, '\n');
    for (char *c = type; *c; c++)
        if (*c == '\r')
            *c = ' ';
    //  At most 64 rounds, whatever the piece size
    if (piece < in.size / 64)
        piece = in.size / 64;

    char head [8192];
    int head_len = snprintf (head, sizeof head, "POST /api/v1/photos HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Authorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                             "Connection: close\r\n\r\n", s_token, type, in.size);
    free (type);
    if (head_len <= 0 || (size_t) head_len >= sizeof head)
        return 0;                       //  a Content-Type too long for the request's head
    size_t total = (size_t) head_len + in.size;
    uint8_t *request = (uint8_t *) malloc (total);
    if (!request)
        return 0;
    memcpy (request, head, (size_t) head_len);
    memcpy (request + head_len, in.data, in.size);

    int fds [2];
    RP_FUZZ_CHECK (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0, "socketpair");
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons (40000),
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    RP_FUZZ_CHECK (MHD_add_connection (s_daemon, fds [1], (struct sockaddr *) &peer, sizeof peer) == MHD_YES,
                   "MHD_add_connection");
    char answer [4096];
    size_t answer_len = 0, sent = 0;
    bool closed = false;
    for (int round = 0; !closed && round < 100000; round++) {
        if (sent < total) {
            size_t want = total - sent < piece ? total - sent : piece;
            ssize_t n = send (fds [0], request + sent, want, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t) n;
            else
            if (n < 0 && errno != EAGAIN)
                sent = total;           //  the server closed early: the rest is not wanted
        }
        MHD_run (s_daemon);
        for (;;) {
            char buf [4096];
            ssize_t n = recv (fds [0], buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                closed = true;
                break;
            }
            if (n < 0)
                break;
            size_t keep = sizeof answer - 1 - answer_len < (size_t) n ? sizeof answer - 1 - answer_len : (size_t) n;
            memcpy (answer + answer_len, buf, keep);
            answer_len += keep;
        }
    }
    close (fds [0]);
    MHD_run (s_daemon);                 //  the connection is closed and its request completed
    free (request);
    answer [answer_len] = 0;

    RP_FUZZ_CHECK (closed, "the connection never ended");
    int status = 0;
    RP_FUZZ_CHECK (sscanf (answer, "HTTP/1.1 %d", &status) == 1, "no answer: [%.200s]", answer);
    RP_FUZZ_CHECK (status == 400 || status == 413 || status == 415 || status == 503 || status == 431,
                   "answered %d: [%.400s]", status, answer);
    if (getenv ("RP_FUZZ_VERBOSE"))         //  what each input was answered
        fprintf (stderr, "%s\n", answer);
    int left = rp_fuzz_folder_empty (s_tmp, NULL);
    RP_FUZZ_CHECK (left == 0, "%d temporary files left behind by a %d", left, status);
    return 0;
}
