/*  engine/trace.c: see trace.h.

    The socket, role and rate are set once by rp_trace_init before any
    thread starts, and only read after: sendto on one UDP socket from
    several threads is safe, each datagram whole. The current trace is per
    thread.
*/
#include "engine/trace.h"
#include "engine/clock.h"
#include "engine/hex.h"
#include "engine/log.h"

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int s_socket = -1;                       //  to the daemon, or -1: nothing is sent
static struct sockaddr_storage s_daemon;
static socklen_t s_daemon_len;
static double s_rate = 0.05;
static char s_name [64] = "rapid-photo";        //  rapid-photo-<role>
static __thread rp_trace_t s_current;
static __thread char s_segment [RP_TRACE_SPAN_MAX];

static const char s_header_line [] = "{\"format\":\"json\",\"version\":1}\n";

//  Random bytes; a failing getrandom (never seen) leaves the clock's
static void
s_random (unsigned char *out, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom (out + got, len - got, 0);
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    uint64_t mix = (uint64_t) rp_clock_wall_ms () * 0x9e3779b97f4a7c15ULL;
    for (; got < len; got++, mix = mix * 6364136223846793005ULL + 1442695040888963407ULL)
        out [got] = (unsigned char) (mix >> 56);
}

static bool
s_sample (void)
{
    uint32_t r;
    s_random ((unsigned char *) &r, sizeof r);
    return (double) r / 4294967296.0 < s_rate;
}

//  "host:port" into the daemon's address; 0 or -1 with err
static int
s_resolve (const char *hostport, size_t len, char *err, size_t errlen)
{
    char host [256], port [16];
    const char *colon = memrchr (hostport, ':', len);
    size_t hlen = colon ? (size_t) (colon - hostport) : 0;
    size_t plen = colon ? len - hlen - 1 : 0;
    if (!colon || hlen == 0 || hlen >= sizeof host || plen == 0 || plen >= sizeof port) {
        snprintf (err, errlen, "AWS_XRAY_DAEMON_ADDRESS: \"%.*s\" is not host:port", (int) len, hostport);
        return -1;
    }
    memcpy (host, hostport, hlen);
    host [hlen] = 0;
    memcpy (port, colon + 1, plen);
    port [plen] = 0;
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *found = NULL;
    int rc = getaddrinfo (host, port, &hints, &found);
    if (rc || !found) {
        snprintf (err, errlen, "AWS_XRAY_DAEMON_ADDRESS: cannot resolve %s:%s: %s", host, port, gai_strerror (rc));
        return -1;
    }
    memcpy (&s_daemon, found->ai_addr, found->ai_addrlen);
    s_daemon_len = found->ai_addrlen;
    s_socket = socket (found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    freeaddrinfo (found);
    if (s_socket < 0) {
        snprintf (err, errlen, "AWS_XRAY_DAEMON_ADDRESS: cannot open a UDP socket: %s", strerror (errno));
        return -1;
    }
    return 0;
}

int
rp_trace_init (const char *role, double sample_rate, char *err, size_t errlen)
{
    snprintf (s_name, sizeof s_name, "rapid-photo-%s", role ? role : "engine");
    s_rate = sample_rate;
    const char *address = getenv ("AWS_XRAY_DAEMON_ADDRESS");
    if (!address || !*address)
        return 0;
    //  "tcp:h:p udp:h:p" (either order) or "h:p"
    const char *udp = strstr (address, "udp:");
    const char *start = udp ? udp + 4 : address;
    size_t len = strcspn (start, " ");
    if (!udp && strncmp (address, "tcp:", 4) == 0) {
        snprintf (err, errlen, "AWS_XRAY_DAEMON_ADDRESS: \"%s\" names no udp: address", address);
        return -1;
    }
    return s_resolve (start, len, err, errlen);
}

bool
rp_trace_sending (void)
{
    return s_socket >= 0;
}

void
rp_trace_shutdown (void)
{
    if (s_socket >= 0)
        close (s_socket);
    s_socket = -1;
}

static bool
s_hex (const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((text [i] >= '0' && text [i] <= '9') || (text [i] >= 'a' && text [i] <= 'f')))
            return false;
    return true;
}

bool
rp_trace_id_valid (const char *text)
{
    return text && strlen (text) == 35 && text [0] == '1' && text [1] == '-' && s_hex (text + 2, 8)
        && text [10] == '-' && s_hex (text + 11, 24);
}

int
rp_trace_parse (const char *header, rp_trace_t *trace)
{
    if (!header)
        return -1;
    rp_trace_t found = { .sampled = false };
    int sampled = -1;
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t len = strcspn (p, ";");
        size_t key = strcspn (p, "=");
        if (key < len) {
            const char *value = p + key + 1;
            size_t vlen = len - key - 1;
            while (vlen > 0 && value [vlen - 1] == ' ')
                vlen--;
            if (key == 4 && strncmp (p, "Root", 4) == 0 && vlen == 35) {
                memcpy (found.id, value, 35);
                found.id [35] = 0;
            }
            else
            if (key == 6 && strncmp (p, "Parent", 6) == 0 && vlen == 16 && s_hex (value, 16)) {
                memcpy (found.parent, value, 16);
                found.parent [16] = 0;
            }
            else
            if (key == 7 && strncmp (p, "Sampled", 7) == 0 && vlen == 1 && (*value == '0' || *value == '1'))
                sampled = *value == '1';
        }
        p += len;
    }
    if (!rp_trace_id_valid (found.id))
        return -1;
    found.sampled = sampled < 0 ? s_sample () : sampled == 1;
    *trace = found;
    return 0;
}

void
rp_trace_start (rp_trace_t *trace)
{
    unsigned char random [12];
    s_random (random, sizeof random);
    char hex [25];
    rp_hex_encode (random, sizeof random, hex);
    snprintf (trace->id, sizeof trace->id, "1-%08x-%s", (unsigned) (rp_clock_wall_ms () / 1000), hex);
    trace->parent [0] = 0;
    trace->sampled = s_sample ();
}

void
rp_trace_header (const rp_trace_t *trace, const char *segment, char out [RP_TRACE_HEADER_MAX])
{
    if (segment && *segment)
        snprintf (out, RP_TRACE_HEADER_MAX, "Root=%s;Parent=%s;Sampled=%d", trace->id, segment, trace->sampled);
    else
        snprintf (out, RP_TRACE_HEADER_MAX, "Root=%s;Sampled=%d", trace->id, trace->sampled);
}

void
rp_trace_new_span (char out [RP_TRACE_SPAN_MAX])
{
    unsigned char random [8];
    s_random (random, sizeof random);
    rp_hex_encode (random, sizeof random, out);
}

double
rp_trace_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void
rp_trace_enter (const rp_trace_t *trace, const char *segment)
{
    if (!trace || !*trace->id) {
        rp_trace_leave ();
        return;
    }
    s_current = *trace;
    snprintf (s_segment, sizeof s_segment, "%s", segment ? segment : "");
    rp_log_set_trace (trace->id);
}

void
rp_trace_leave (void)
{
    s_current.id [0] = 0;
    s_segment [0] = 0;
    rp_log_set_trace (NULL);
}

bool
rp_trace_current (rp_trace_t *trace, char segment [RP_TRACE_SPAN_MAX])
{
    if (!*s_current.id)
        return false;
    if (trace)
        *trace = s_current;
    if (segment)
        snprintf (segment, RP_TRACE_SPAN_MAX, "%s", s_segment);
    return true;
}

json_t *
rp_trace_segment (const rp_trace_t *trace, const char *id, const char *name, double start, double end)
{
    json_t *document = json_pack ("{s:s, s:s, s:s, s:f}", "name", name ? name : s_name, "id", id,
                                  "trace_id", trace->id, "start_time", start);
    if (*trace->parent)
        json_object_set_new (document, "parent_id", json_string (trace->parent));
    if (end > 0)
        json_object_set_new (document, "end_time", json_real (end));
    else
        json_object_set_new (document, "in_progress", json_true ());
    return document;
}

void
rp_trace_set_status (json_t *document, int status)
{
    if (status == 429)
        json_object_set_new (document, "throttle", json_true ());
    if (status >= 400 && status < 500)
        json_object_set_new (document, "error", json_true ());
    if (status >= 500 || status < 0)
        json_object_set_new (document, "fault", json_true ());
}

void
rp_trace_send (const rp_trace_t *trace, json_t **document_p)
{
    json_t *document = *document_p;
    *document_p = NULL;
    if (!document)
        return;
    if (s_socket < 0 || !trace->sampled) {
        json_decref (document);
        return;
    }
    char datagram [RP_TRACE_DOC_MAX + sizeof s_header_line];
    size_t head = sizeof s_header_line - 1;
    memcpy (datagram, s_header_line, head);
    //  Compact, and what does not fit is not sent (the daemon would drop it)
    size_t n = json_dumpb (document, datagram + head, RP_TRACE_DOC_MAX, JSON_COMPACT | JSON_REAL_PRECISION (17));
    if (n == 0 || n > RP_TRACE_DOC_MAX)
        rp_warn ("trace", "a segment of %zu bytes is over the daemon's limit: not sent", n);
    else {
        ssize_t rc = sendto (s_socket, datagram, head + n, MSG_DONTWAIT | MSG_NOSIGNAL,
                             (struct sockaddr *) &s_daemon, s_daemon_len);
        (void) rc;      //  UDP: a daemon that is not there loses the segment, nothing else
    }
    json_decref (document);
}

bool
rp_trace_active (void)
{
    return *s_current.id && *s_segment && s_current.sampled && s_socket >= 0;
}

void
rp_trace_subsegment (const char *name, const char *namespace, const char *operation, double start,
                     double end, int status, json_t *more)
{
    if (!rp_trace_active ()) {
        json_decref (more);
        return;
    }
    char id [RP_TRACE_SPAN_MAX];
    rp_trace_new_span (id);
    rp_trace_t under = s_current;
    snprintf (under.parent, sizeof under.parent, "%s", s_segment);
    json_t *document = rp_trace_segment (&under, id, name, start, end);
    json_object_set_new (document, "type", json_string ("subsegment"));
    if (namespace)
        json_object_set_new (document, "namespace", json_string (namespace));
    if (operation)
        json_object_set_new (document, "aws", json_pack ("{s:s}", "operation", operation));
    rp_trace_set_status (document, status);
    if (more)
        json_object_update_missing (document, more);
    json_decref (more);
    rp_trace_send (&under, &document);
}
