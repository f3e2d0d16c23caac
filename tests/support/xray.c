/*  tests/support/xray.c: see xray.h. */
#include "tests/support/xray.h"
#include "engine/trace.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <czmq.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void
rp_test_xray_open (rp_test_xray_t *xray)
{
    xray->fd = socket (AF_INET, SOCK_DGRAM, 0);
    cr_assert_geq (xray->fd, 0);
    int size = 8 << 20;             //  every datagram of the run waits here until read
    setsockopt (xray->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    cr_assert_eq (bind (xray->fd, (struct sockaddr *) &address, sizeof address), 0);
    socklen_t len = sizeof address;
    getsockname (xray->fd, (struct sockaddr *) &address, &len);
    xray->port = ntohs (address.sin_port);
    snprintf (xray->setting, sizeof xray->setting, "AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:%d", xray->port);
}

json_t *
rp_test_xray_collect (rp_test_xray_t *xray, int quiet_ms)
{
    static const char header [] = "{\"format\":\"json\",\"version\":1}\n";
    json_t *documents = json_array ();
    static char datagram [70000];
    struct pollfd pfd = { .fd = xray->fd, .events = POLLIN };
    while (poll (&pfd, 1, quiet_ms) == 1) {
        ssize_t n = recv (xray->fd, datagram, sizeof datagram - 1, 0);
        cr_assert_gt (n, 0);
        cr_assert_leq (n, 64 * 1024, "a datagram of %zd bytes: over the daemon's 64 KiB", n);
        datagram [n] = 0;
        cr_assert (strncmp (datagram, header, sizeof header - 1) == 0, "no header line: %.80s", datagram);
        json_error_t error;
        json_t *document = json_loads (datagram + sizeof header - 1, 0, &error);
        cr_assert_not_null (document, "not one JSON document (%s): %s", error.text, datagram);
        json_array_append_new (documents, document);
    }
    close (xray->fd);
    return documents;
}

static bool
s_hex16 (const char *text)
{
    return text && strlen (text) == 16 && strspn (text, "0123456789abcdef") == 16;
}

void
rp_test_xray_check (json_t *documents, const char *outside_parent, json_t *complete)
{
    json_t *ids = json_object ();
    size_t i;
    json_t *doc;
    json_array_foreach (documents, i, doc)
        json_object_set_new (ids, json_string_value (json_object_get (doc, "id")) ?: "", json_true ());
    json_object_set_new (ids, outside_parent, json_true ());
    double now = rp_trace_now ();
    json_array_foreach (documents, i, doc) {
        char *text = json_dumps (doc, JSON_COMPACT);
        const char *id = json_string_value (json_object_get (doc, "id"));
        const char *trace_id = json_string_value (json_object_get (doc, "trace_id"));
        const char *parent = json_string_value (json_object_get (doc, "parent_id"));
        json_t *start = json_object_get (doc, "start_time"), *end = json_object_get (doc, "end_time");
        cr_expect (s_hex16 (id), "id: %s", text);
        cr_expect (rp_trace_id_valid (trace_id), "trace_id: %s", text);
        //  The trace id's time is its start's, in hex epoch seconds
        long long epoch = trace_id ? strtoll (trace_id + 2, NULL, 16) : 0;
        cr_expect (epoch > now - 86400 && epoch < now + 60, "trace_id time: %s", text);
        cr_expect (json_is_string (json_object_get (doc, "name")), "name: %s", text);
        cr_expect (json_is_real (start) && json_real_value (start) > now - 600
                   && json_real_value (start) <= now + 1, "start_time: %s", text);
        if (end)
            cr_expect (json_is_real (end) && json_real_value (end) >= json_real_value (start)
                       && json_real_value (end) <= now + 1, "end_time: %s", text);
        else
            cr_expect (json_is_true (json_object_get (doc, "in_progress")), "neither ended nor in progress: %s", text);
        if (json_object_get (doc, "type"))
            cr_expect (streq (json_string_value (json_object_get (doc, "type")), "subsegment") && parent,
                       "a subsegment without its parent: %s", text);
        if (parent)
            cr_expect (s_hex16 (parent) && json_object_get (ids, parent), "parent unknown: %s", text);
        if (end && id)
            json_object_set (complete, id, doc);
        free (text);
    }
    json_decref (ids);
}

int
rp_test_xray_find (json_t *complete, const char *trace_id, const char *name, const char *parent,
                   json_t **found)
{
    int count = 0;
    const char *id;
    json_t *doc;
    if (found)
        *found = NULL;
    json_object_foreach (complete, id, doc) {
        const char *doc_parent = json_string_value (json_object_get (doc, "parent_id"));
        if ((trace_id && !streq (json_string_value (json_object_get (doc, "trace_id")), trace_id))
        ||  (name && !streq (json_string_value (json_object_get (doc, "name")), name))
        ||  (parent && !(doc_parent && streq (doc_parent, parent))))
            continue;
        if (found && !*found)
            *found = doc;
        count++;
    }
    return count;
}

