/*  engine/emf.c: see emf.h.

    DESIGN
    Thread: one zactor, started by the roles that run (serve, gateway,
    pipeline) when metrics.emf is on. Every metrics.emf_interval_s it
      1. takes the process's window (engine/metrics.h: uploads, times,
         failures recorded by every thread since the last take),
      2. asks for the gauges: the photos queued in the database, on a
         connection of its own (a broken one is closed and opened again
         next time), and the broker's STATUS (queues, jobs running and
         workers per pool, at most S_BROKER_MS) when the role has one,
      3. renders them (rp_metrics_render) and writes each document with
         one write(2) on stdout, as the log writes its lines, so the two
         never interleave mid-line.
    A gauge it cannot get is left out of that interval's documents (and
    logged once until it comes back); the counts still go.
    Messages: $TERM on its pipe (a last batch is written first: a stop
    loses nothing counted), FLUSH (write now, answer "OK": tests).
    Owns: its database connection.
*/
#include "engine/emf.h"
#include "engine/alloc.h"
#include "engine/broker.h"
#include "engine/clock.h"
#include "engine/db/db.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/thread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_BROKER_MS 1000                //  a STATUS round trip

typedef struct {
    rp_emf_args_t args;
    rp_db_t *db;
    bool db_said;                       //  "cannot count" logged, until it works again
    bool broker_said;
} s_emf_t;

//  Write all of text on stdout, one line (one document) per write(2)
static void
s_write_lines (const char *text)
{
    while (*text) {
        const char *eol = strchr (text, '\n');
        size_t len = eol ? (size_t) (eol - text) + 1 : strlen (text);
        size_t done = 0;
        while (done < len) {
            ssize_t rc = write (STDOUT_FILENO, text + done, len - done);
            if (rc < 0 && errno == EINTR)
                continue;
            if (rc <= 0)
                return;                 //  stdout is gone: nothing to tell it
            done += (size_t) rc;
        }
        text += len;
    }
}

//  A gauge's outcome, logged once when it goes missing and once when it is back
static void
s_gauge_outcome (bool *said, bool ok, const char *what, const char *err)
{
    if (!ok && !*said)
        rp_warn ("emf", "%s left out until it answers: %s", what, err);
    else
    if (ok && *said)
        rp_info ("emf", "%s counted again", what);
    *said = !ok;
}

static json_t *
s_counts (s_emf_t *self)
{
    char err [256] = "";
    if (!self->db)
        self->db = rp_db_open (self->args.config.db_url, err, sizeof err);
    json_t *counts = NULL;
    if (self->db && rp_db_status_counts (self->db, &counts, err, sizeof err) != 0) {
        rp_db_close (&self->db);        //  a new connection next time
        counts = NULL;
    }
    s_gauge_outcome (&self->db_said, counts != NULL, "QueueDepth (the database)", err);
    return counts;
}

static json_t *
s_broker (s_emf_t *self)
{
    char err [256] = "";
    json_t *status = NULL;
    if (rp_broker_query_status (self->args.broker, &self->args.config, S_BROKER_MS, &status,
                                err, sizeof err) != 0)
        status = NULL;
    s_gauge_outcome (&self->broker_said, status != NULL, "the pools' metrics (the broker)", err);
    return status;
}

static void
s_flush (s_emf_t *self)
{
    rp_metrics_window_t *window = (rp_metrics_window_t *) rp_alloc (sizeof (rp_metrics_window_t));
    rp_metrics_take (window);
    rp_metrics_context_t context = {
        .ns = self->args.config.metrics_emf_namespace, .service = self->args.service,
        .timestamp_ms = rp_clock_wall_ms (),
        .counts = self->args.database ? s_counts (self) : NULL,
        .broker = *self->args.broker ? s_broker (self) : NULL,
    };
    char *text = rp_metrics_render (window, &context);
    s_write_lines (text);
    free (text);
    json_decref (context.counts);
    json_decref (context.broker);
    free (window);
}

void
rp_emf_actor (zsock_t *pipe, void *arg)
{
    s_emf_t self = { .args = *(const rp_emf_args_t *) arg };
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zsock_signal (pipe, 0);
    int64_t interval_ms = self.args.config.metrics_emf_interval_s * 1000;
    int64_t next = rp_clock_ms () + interval_ms;
    while (true) {
        int64_t wait = next - rp_clock_ms ();
        if (wait > 0 && zpoller_wait (poller, (int) wait) == pipe) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            bool flush = command && streq (command, "FLUSH");
            zstr_free (&command);
            if (term)
                break;
            if (flush) {
                s_flush (&self);
                zstr_send (pipe, "OK");
            }
            continue;
        }
        if (zpoller_terminated (poller))
            break;
        if (rp_clock_ms () < next)
            continue;
        s_flush (&self);
        next += interval_ms;
        if (next <= rp_clock_ms ())     //  a slow flush: no catching up in a burst
            next = rp_clock_ms () + interval_ms;
    }
    s_flush (&self);
    zpoller_destroy (&poller);
    rp_db_close (&self.db);
    rp_thread_end ();
}
