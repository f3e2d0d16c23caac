/*  engine/log.c: see log.h. */
#include "engine/log.h"
#include "engine/clock.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static volatile int s_level = RP_LOG_INFO;
static volatile int s_fd = STDERR_FILENO;       //  set at start-up, before any thread logs
static const char *s_names [] = { "DEBUG", "INFO ", "WARN ", "ERROR" };

void
rp_log_set_level (rp_log_level_t level)
{
    s_level = level;
}

rp_log_level_t
rp_log_get_level (void)
{
    return (rp_log_level_t) s_level;
}

void
rp_log_set_output (rp_log_output_t output)
{
    s_fd = output == RP_LOG_STDOUT ? STDOUT_FILENO : STDERR_FILENO;
}

rp_log_output_t
rp_log_get_output (void)
{
    return s_fd == STDOUT_FILENO ? RP_LOG_STDOUT : RP_LOG_STDERR;
}

int
rp_log_level_parse (const char *name)
{
    if (!name)
        return -1;
    if (strcasecmp (name, "debug") == 0) return RP_LOG_DEBUG;
    if (strcasecmp (name, "info") == 0)  return RP_LOG_INFO;
    if (strcasecmp (name, "warn") == 0)  return RP_LOG_WARN;
    if (strcasecmp (name, "error") == 0) return RP_LOG_ERROR;
    return -1;
}

//  Append text to line[n..cap), its control characters escaped ("\n",
//  "\t", "\x1b"...): text from outside (a user name, an S3 key, a file
//  name) can neither end the line nor drive a terminal. The new length.
static size_t
s_escaped (char *line, size_t n, size_t cap, const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c && n + 4 < cap; c++) {
        if (*c >= 0x20 && *c != 0x7f)
            line [n++] = (char) *c;
        else {
            int w = *c == '\n' ? snprintf (line + n, cap - n, "\\n")
                  : *c == '\r' ? snprintf (line + n, cap - n, "\\r")
                  : *c == '\t' ? snprintf (line + n, cap - n, "\\t")
                  : snprintf (line + n, cap - n, "\\x%02x", *c);
            n += (size_t) w;
        }
    }
    return n;
}

void
rp_log (rp_log_level_t level, const char *source, const char *fmt, ...)
{
    if ((int) level < s_level)
        return;
    char line [2048], text [2048];
    int64_t now_ms = rp_clock_wall_ms ();
    time_t now = (time_t) (now_ms / 1000);
    struct tm tm;
    gmtime_r (&now, &tm);
    size_t n = strftime (line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    int w = snprintf (line + n, sizeof line - n, ".%03dZ %s %-7s ",
                      (int) (now_ms % 1000), s_names [level], source ? source : "-");
    if (w > 0)
        n += (size_t) w;
    va_list args;
    va_start (args, fmt);
    w = vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    if (w > 0 && n < sizeof line - 1)
        n = s_escaped (line, n, sizeof line - 1, text);     //  long lines are cut, not split
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line [n++] = '\n';
    ssize_t rc = write (s_fd, line, n);
    (void) rc;
}
