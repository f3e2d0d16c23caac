/*  engine/log.h: one line per event on stderr (or stdout: log.output).

    A line looks like
        2026-11-29T02:10:00.123Z INFO  resize job=j-12 photo=p-3 duration=41 derivatives written
    Fields that identify the work (job=, photo=, worker=) come first, then
    duration= on timed work (whole milliseconds, no unit: what the
    runbook's `parse @message /duration=(?<duration>\d+)/` takes), then
    free text; a line logged while a thread works for a traced request or
    job ends with trace=<X-Ray trace id> (rp_log_set_trace). Errors are at
    level ERROR, which the line spells out. log.format = json writes each
    line as one JSON object instead:
        {"time":"2026-11-29T02:10:00.123Z","level":"INFO","source":"resize",
         "message":"job=j-12 photo=p-3 duration=41 derivatives written",
         "job":"j-12","photo":"p-3","duration":41}
    where every name=value word of the message is a member too (the
    counts, duration=, status=, attempt=, bytes*=, as numbers), so
    CloudWatch Logs Insights discovers them as fields. Each line is written with one
    write(2), so lines from different threads never interleave. Control
    characters in the text (from a user name, a file name, an S3 key) are
    escaped as \n, \r, \t or \xNN, so no outside text ends a line, forges
    the next one or drives a terminal.
*/
#ifndef RP_LOG_H
#define RP_LOG_H

#include <stdarg.h>

typedef enum { RP_LOG_DEBUG = 0, RP_LOG_INFO, RP_LOG_WARN, RP_LOG_ERROR } rp_log_level_t;

//  Lines below this level are dropped. Default INFO; RAPIDPHOTO_LOG_LEVEL or
//  log.level in the config sets it.
void rp_log_set_level (rp_log_level_t level);
rp_log_level_t rp_log_get_level (void);
//  Parse "debug|info|warn|error"; -1 when the name is unknown.
int rp_log_level_parse (const char *name);

//  Where lines go: stderr by default; log.output = stdout (what a container
//  image sets: its log driver collects stdout) sends them to stdout. A
//  command whose results go to stdout (process, import, token...) sets
//  stderr again, so nothing is ever mixed with its results.
typedef enum { RP_LOG_STDERR = 0, RP_LOG_STDOUT } rp_log_output_t;
void rp_log_set_output (rp_log_output_t output);
rp_log_output_t rp_log_get_output (void);

//  How lines look: text (the default) or JSON objects (log.format).
typedef enum { RP_LOG_TEXT = 0, RP_LOG_JSON } rp_log_format_t;
void rp_log_set_format (rp_log_format_t format);
rp_log_format_t rp_log_get_format (void);

//  The trace id (engine/trace.h) every line this thread logs carries as
//  trace=, until set again; NULL or "" for none. Copied.
void rp_log_set_trace (const char *trace_id);

//  Log one line. `source` names the actor or module ("broker", "resize").
void rp_log (rp_log_level_t level, const char *source, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#define rp_debug(src, ...) rp_log (RP_LOG_DEBUG, (src), __VA_ARGS__)
#define rp_info(src, ...)  rp_log (RP_LOG_INFO,  (src), __VA_ARGS__)
#define rp_warn(src, ...)  rp_log (RP_LOG_WARN,  (src), __VA_ARGS__)
#define rp_error(src, ...) rp_log (RP_LOG_ERROR, (src), __VA_ARGS__)

#endif
