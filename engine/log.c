/*  engine/log.c: see log.h. */
#include "engine/log.h"
#include "engine/clock.h"
#include "engine/utf8.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static volatile int s_level = RP_LOG_INFO;
static volatile int s_fd = STDERR_FILENO;       //  set at start-up, before any thread logs
static volatile int s_format = RP_LOG_TEXT;     //  set at start-up, as s_fd
static const char *s_names [] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
static const char *s_json_names [] = { "DEBUG", "INFO", "WARN", "ERROR" };
#define S_TRACE_MAX 40                          //  "1-" 8 hex "-" 24 hex, and room
static __thread char s_trace [S_TRACE_MAX];      //  this thread's trace id, or ""

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

void
rp_log_set_format (rp_log_format_t format)
{
    s_format = format;
}

rp_log_format_t
rp_log_get_format (void)
{
    return (rp_log_format_t) s_format;
}

void
rp_log_set_trace (const char *trace_id)
{
    snprintf (s_trace, sizeof s_trace, "%s", trace_id ? trace_id : "");
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

//  Append text to line[n..cap) as the inside of a JSON string: quotes,
//  backslashes and control characters escaped, bytes that are not valid
//  UTF-8 as \u00XX, so every line parses. The new length.
static size_t
s_json_escaped (char *line, size_t n, size_t cap, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && n + 7 < cap) {
        unsigned char c = (unsigned char) text [i];
        size_t width = c >= 0x80 ? rp_utf8_char (text + i, len - i) : 1;
        if (c >= 0x80 && width > 1) {
            memcpy (line + n, text + i, width);
            n += width;
            i += width;
            continue;
        }
        int w = c == '"' ? snprintf (line + n, cap - n, "\\\"")
              : c == '\\' ? snprintf (line + n, cap - n, "\\\\")
              : c == '\n' ? snprintf (line + n, cap - n, "\\n")
              : c == '\t' ? snprintf (line + n, cap - n, "\\t")
              : c < 0x20 || c >= 0x7f ? snprintf (line + n, cap - n, "\\u%04x", c)
              : snprintf (line + n, cap - n, "%c", c);
        n += (size_t) w;
        i++;
    }
    return n;
}

//  Fields whose values are counts: JSON numbers when they are whole
//  numbers, so a query can compare them (duration > 1000)
static bool
s_numeric_field (const char *name, size_t len)
{
    static const char *const numeric [] = { "duration", "status", "attempt", "bytes", "bytes_in",
                                            "bytes_out", "attempts", "size" };
    for (size_t i = 0; i < sizeof numeric / sizeof numeric [0]; i++)
        if (strlen (numeric [i]) == len && memcmp (numeric [i], name, len) == 0)
            return true;
    return false;
}

#define S_FIELDS_MAX 16

//  The JSON members of a message: each word name=value (name in [a-z_]
//  [a-z0-9_]*, value up to the next space, less a trailing ':' ',' or
//  ';'), the first of each name, none named as the line's own members.
static size_t
s_json_fields (char *line, size_t n, size_t cap, const char *text)
{
    struct { const char *name; size_t len; } seen [S_FIELDS_MAX];
    int count = 0;
    const char *p = text;
    while (*p && count < S_FIELDS_MAX) {
        while (*p == ' ')
            p++;
        const char *word = p;
        size_t wlen = strcspn (word, " ");
        p += wlen;
        size_t nlen = 0;
        while (nlen < wlen && ((word [nlen] >= 'a' && word [nlen] <= 'z') || word [nlen] == '_'
                               || (nlen > 0 && word [nlen] >= '0' && word [nlen] <= '9')))
            nlen++;
        if (nlen == 0 || nlen >= wlen || word [nlen] != '=')
            continue;
        const char *value = word + nlen + 1;
        size_t vlen = wlen - nlen - 1;
        while (vlen > 0 && strchr (":,;", value [vlen - 1]))
            vlen--;
        if (vlen == 0)
            continue;
        bool skip = false;
        static const char *const own [] = { "time", "level", "source", "message" };
        for (size_t i = 0; i < sizeof own / sizeof own [0]; i++)
            skip |= strlen (own [i]) == nlen && memcmp (own [i], word, nlen) == 0;
        for (int i = 0; i < count; i++)
            skip |= seen [i].len == nlen && memcmp (seen [i].name, word, nlen) == 0;
        if (skip)
            continue;
        seen [count].name = word;
        seen [count++].len = nlen;
        size_t digits = strspn (value, "0123456789");
        bool number = s_numeric_field (word, nlen) && digits == vlen && digits < 16;
        if (n + nlen + vlen + 8 >= cap)
            break;
        int w = snprintf (line + n, cap - n, ",\"%.*s\":%s", (int) nlen, word, number ? "" : "\"");
        n += (size_t) w;
        if (number) {
            memcpy (line + n, value, vlen);
            n += vlen;
        }
        else {
            n = s_json_escaped (line, n, cap - 2, value, vlen);
            line [n++] = '"';
        }
    }
    return n;
}

void
rp_log (rp_log_level_t level, const char *source, const char *fmt, ...)
{
    if ((int) level < s_level)
        return;
    char line [4096], text [2048];
    int64_t now_ms = rp_clock_wall_ms ();
    time_t now = (time_t) (now_ms / 1000);
    struct tm tm;
    gmtime_r (&now, &tm);
    char stamp [40];
    size_t n = strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (stamp + n, sizeof stamp - n, ".%03dZ", (int) (now_ms % 1000));
    va_list args;
    va_start (args, fmt);
    int w = vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    if (w < 0)
        text [0] = 0;
    //  The request's or job's trace, unless the text names one itself
    size_t tlen = strlen (text);
    if (*s_trace && !strstr (text, "trace=") && tlen + strlen (s_trace) + 8 < sizeof text)
        snprintf (text + tlen, sizeof text - tlen, " trace=%s", s_trace);
    const char *from = source ? source : "-";
    if (s_format == RP_LOG_JSON) {
        //  Cut at 2 KiB of message as text lines are; the members after it
        size_t cap = sizeof line - 2;
        n = (size_t) snprintf (line, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"source\":\"", stamp,
                               s_json_names [level]);
        n = s_json_escaped (line, n, cap / 4, from, strlen (from));
        n += (size_t) snprintf (line + n, cap - n, "\",\"message\":\"");
        n = s_json_escaped (line, n, cap / 2 + cap / 4, text, strlen (text));
        line [n++] = '"';
        n = s_json_fields (line, n, cap - 1, text);
        line [n++] = '}';
    }
    else {
        w = snprintf (line, 2048, "%s %s %-7s ", stamp, s_names [level], from);
        n = w > 0 && w < 2048 ? (size_t) w : 0;
        n = s_escaped (line, n, 2047, text);                //  long lines are cut, not split
        if (n >= 2047)
            n = 2046;
    }
    line [n++] = '\n';
    ssize_t rc = write (s_fd, line, n);
    (void) rc;
}
