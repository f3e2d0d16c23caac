/*  tests/test_blocks.c: the engine's small shared building blocks: the
    bounded buffer (engine/buf.h), the hex codec (engine/hex.h) and the
    clocks (engine/clock.h), and the metrics window the EMF documents are
    made from (engine/metrics.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/hex.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/trace.h"

//  ---------------------------------------------------------------------------
//  The bounded buffer

Test (buf, a_new_buffer_is_an_empty_string)
{
    rp_buf_t buf;
    rp_buf_init (&buf, 16);
    cr_assert_str_eq (rp_buf_data (&buf), "");
    cr_assert_eq (rp_buf_len (&buf), 0);
    cr_assert_eq (rp_buf_error (&buf), 0);
    rp_buf_free (&buf);
    rp_buf_free (&buf);                 //  twice is safe
}

Test (buf, holds_exactly_its_maximum)
{
    rp_buf_t buf;
    rp_buf_init (&buf, 10);
    cr_assert_eq (rp_buf_append (&buf, "01234", 5), 0);
    cr_assert_eq (rp_buf_append_str (&buf, "56789"), 0);
    cr_assert_eq (rp_buf_len (&buf), 10);
    cr_assert_str_eq (rp_buf_data (&buf), "0123456789");
    cr_assert_eq (rp_buf_error (&buf), 0);
    //  A buffer of size 0 takes nothing, but an empty append is fine
    rp_buf_t none;
    rp_buf_init (&none, 0);
    cr_assert_eq (rp_buf_append (&none, "", 0), 0);
    cr_assert_eq (rp_buf_append (&none, "x", 1), -1);
    cr_assert_eq (rp_buf_error (&none), EMSGSIZE);
    rp_buf_free (&none);
    rp_buf_free (&buf);
}

Test (buf, one_byte_over_is_refused_and_nothing_is_appended)
{
    rp_buf_t buf;
    rp_buf_init (&buf, 10);
    cr_assert_eq (rp_buf_append (&buf, "0123456", 7), 0);
    cr_assert_eq (rp_buf_append (&buf, "abcd", 4), -1);      //  11 > 10
    cr_assert_eq (rp_buf_error (&buf), EMSGSIZE);
    cr_assert_eq (rp_buf_len (&buf), 7);
    cr_assert_str_eq (rp_buf_data (&buf), "0123456");          //  as it was
    rp_buf_free (&buf);
}

Test (buf, appends_after_an_error_fail_until_reset)
{
    rp_buf_t buf;
    rp_buf_init (&buf, 8);
    cr_assert_eq (rp_buf_append_str (&buf, "abc"), 0);
    cr_assert_eq (rp_buf_append_str (&buf, "too long now"), -1);
    //  The error sticks: a text built of pieces never misses one in the middle
    cr_assert_eq (rp_buf_append_str (&buf, "d"), -1);
    cr_assert_eq (rp_buf_printf (&buf, "%d", 1), -1);
    cr_assert_eq (rp_buf_append (&buf, "", 0), -1);
    cr_assert_str_eq (rp_buf_data (&buf), "abc");
    cr_assert_eq (rp_buf_error (&buf), EMSGSIZE);
    cr_assert_null (rp_buf_take (&buf), "take gives nothing from a buffer in error");
    cr_assert_str_eq (rp_buf_data (&buf), "abc", "a refused take leaves the buffer as it was");
    //  Reset forgets the bytes and the error; the maximum stays
    rp_buf_reset (&buf);
    cr_assert_eq (rp_buf_error (&buf), 0);
    cr_assert_str_eq (rp_buf_data (&buf), "");
    cr_assert_eq (rp_buf_append_str (&buf, "12345678"), 0);
    cr_assert_eq (rp_buf_append_str (&buf, "9"), -1);
    rp_buf_free (&buf);
    //  Free, too, leaves a usable empty buffer with the same maximum
    cr_assert_eq (rp_buf_error (&buf), 0);
    cr_assert_eq (rp_buf_append_str (&buf, "12345678"), 0);
    cr_assert_eq (rp_buf_append_str (&buf, "9"), -1);
    rp_buf_free (&buf);
}

Test (buf, printf_formats_within_the_maximum)
{
    rp_buf_t buf;
    rp_buf_init (&buf, 12);
    cr_assert_eq (rp_buf_printf (&buf, "%s=%d", "part", 42), 0);
    cr_assert_eq (rp_buf_printf (&buf, "&%c%c", 'x', 'y'), 0);
    cr_assert_str_eq (rp_buf_data (&buf), "part=42&xy");
    cr_assert_eq (rp_buf_printf (&buf, "%02d", 7), 0);          //  exactly 12
    cr_assert_eq (rp_buf_len (&buf), 12);
    cr_assert_eq (rp_buf_printf (&buf, "%d", 1), -1);           //  13
    cr_assert_eq (rp_buf_error (&buf), EMSGSIZE);
    cr_assert_str_eq (rp_buf_data (&buf), "part=42&xy07");
    rp_buf_free (&buf);
}

Test (buf, take_hands_over_the_bytes_and_empties_the_buffer)
{
    rp_buf_t buf;
    rp_buf_init (&buf, 64);
    rp_buf_append_str (&buf, "hello");
    char *text = rp_buf_take (&buf);
    cr_assert_str_eq (text, "hello");
    cr_assert_eq (rp_buf_len (&buf), 0);
    cr_assert_str_eq (rp_buf_data (&buf), "");
    //  The buffer is usable again, with its maximum
    rp_buf_append_str (&buf, "again");
    cr_assert_str_eq (rp_buf_data (&buf), "again");
    free (text);
    rp_buf_free (&buf);
    //  An empty buffer gives a new "", never NULL
    char *empty = rp_buf_take (&buf);
    cr_assert_not_null (empty);
    cr_assert_str_eq (empty, "");
    free (empty);
}

Test (buf, grows_by_many_appends_and_keeps_every_byte)
{
    rp_buf_t buf;
    rp_buf_init (&buf, 100000);
    for (int i = 0; i < 100000; i++)
        cr_assert_eq (rp_buf_append (&buf, &"0123456789" [i % 10], 1), 0);
    cr_assert_eq (rp_buf_len (&buf), 100000);
    const char *data = rp_buf_data (&buf);
    for (int i = 0; i < 100000; i++)
        cr_assert_eq (data [i], '0' + i % 10, "byte %d", i);
    cr_assert_eq (data [100000], 0);
    cr_assert_eq (rp_buf_append (&buf, "x", 1), -1);
    //  Bytes that are not text (NULs) are kept too
    rp_buf_reset (&buf);
    cr_assert_eq (rp_buf_append (&buf, "a\0b", 3), 0);
    cr_assert_eq (rp_buf_len (&buf), 3);
    cr_assert_eq (memcmp (rp_buf_data (&buf), "a\0b", 3), 0);
    rp_buf_free (&buf);
}

Test (buf, collect_is_a_curl_write_callback_that_stops_at_the_maximum)
{
    rp_buf_t buf;
    rp_buf_init (&buf, 6);
    char chunk [] = "abcd";
    cr_assert_eq (rp_buf_collect (chunk, 1, 4, &buf), 4);
    cr_assert_eq (rp_buf_collect (chunk, 2, 2, &buf), 0, "0 makes curl stop the transfer");
    cr_assert_eq (rp_buf_error (&buf), EMSGSIZE);
    cr_assert_str_eq (rp_buf_data (&buf), "abcd");
    rp_buf_free (&buf);
}

Test (buf, collect_head_keeps_the_start_and_reads_the_rest)
{
    rp_buf_t buf;
    rp_buf_init (&buf, 6);
    char chunk [] = "abcd";
    cr_assert_eq (rp_buf_collect_head (chunk, 1, 4, &buf), 4);
    cr_assert_eq (rp_buf_collect_head (chunk, 1, 4, &buf), 4, "the transfer goes on");
    cr_assert_eq (rp_buf_collect_head (chunk, 1, 1, &buf), 1, "and nothing more is kept");
    cr_assert_eq (rp_buf_error (&buf), EMSGSIZE);
    cr_assert_str_eq (rp_buf_data (&buf), "abcd");
    rp_buf_free (&buf);
}

//  ---------------------------------------------------------------------------
//  Hex

Test (hex, encodes_lowercase_with_a_nul)
{
    const unsigned char bytes [] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
    char out [2 * sizeof bytes + 1];
    memset (out, 'x', sizeof out);
    rp_hex_encode (bytes, sizeof bytes, out);
    cr_assert_str_eq (out, "00017f80abff");
    char none [1] = { 'x' };
    rp_hex_encode (bytes, 0, none);
    cr_assert_str_eq (none, "");
}

Test (hex, decodes_what_it_encodes)
{
    unsigned char bytes [32];
    for (int i = 0; i < 32; i++)
        bytes [i] = (unsigned char) (i * 37 + 11);
    char text [65];
    rp_hex_encode (bytes, sizeof bytes, text);
    unsigned char back [32];
    size_t len = 0;
    cr_assert_eq (rp_hex_decode (text, strlen (text), back, sizeof back, &len), 0);
    cr_assert_eq (len, 32);
    cr_assert_eq (memcmp (back, bytes, 32), 0);
}

Test (hex, refuses_what_is_not_lowercase_hex_or_does_not_fit)
{
    unsigned char out [4];
    size_t len = 99;
    cr_assert_eq (rp_hex_decode ("", 0, out, sizeof out, &len), -1, "nothing");
    cr_assert_eq (rp_hex_decode ("abc", 3, out, sizeof out, &len), -1, "odd length");
    cr_assert_eq (rp_hex_decode ("ABCD", 4, out, sizeof out, &len), -1, "upper case");
    cr_assert_eq (rp_hex_decode ("0g", 2, out, sizeof out, &len), -1, "not a digit");
    cr_assert_eq (rp_hex_decode ("0011223344", 10, out, sizeof out, &len), -1, "5 bytes into 4");
    cr_assert_eq (len, 99, "a refusal leaves the length alone");
    cr_assert_eq (rp_hex_decode ("00112233", 8, out, sizeof out, &len), 0, "exactly 4");
    cr_assert_eq (len, 4);
    cr_assert_eq (out [3], 0x33);
}

//  ---------------------------------------------------------------------------
//  Clocks

Test (clock, monotonic_wall_and_precise)
{
    int64_t start = rp_clock_ms ();
    double precise = rp_clock_ms_precise ();
    //  The same monotonic clock, one with the fraction
    cr_assert_geq (precise, (double) start);
    cr_assert_lt (precise - (double) start, 1000.0);
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    nanosleep (&pause, NULL);
    cr_assert_geq (rp_clock_ms () - start, 20);
    cr_assert_geq (rp_clock_ms_precise () - precise, 20.0);
    //  The wall clock is the epoch's, in milliseconds
    int64_t wall = rp_clock_wall_ms ();
    int64_t now = (int64_t) time (NULL) * 1000;
    cr_assert_lt (wall > now ? wall - now : now - wall, 2000);
}

//  ---------------------------------------------------------------------------
//  metrics: the window the EMF documents are made from (engine/metrics.h)

Test (metrics, a_take_empties_the_window_and_counts_stay_exact)
{
    rp_metrics_window_t *w = (rp_metrics_window_t *) calloc (1, sizeof *w);
    rp_metrics_take (w);                //  whatever came before
    for (int i = 0; i < 250; i++) {
        rp_metrics_upload (10);
        rp_metrics_ack ((double) i);
    }
    rp_metrics_failure (RP_FAILURE_TOO_LARGE);
    rp_metrics_failure ((rp_failure_class_t) 99);      //  out of range: Other
    rp_metrics_take (w);
    cr_assert_eq (w->uploads, 250);
    cr_assert_eq (w->upload_bytes, 2500);
    cr_assert_eq (w->ack.seen, 250, "every sample seen");
    cr_assert_eq (w->ack.count, RP_METRICS_SAMPLES, "at most 100 kept: EMF's limit per member");
    for (int i = 0; i < w->ack.count; i++)
        cr_assert (w->ack.values [i] >= 0 && w->ack.values [i] < 250, "a sample of what was recorded");
    cr_assert_eq (w->failures [RP_FAILURE_TOO_LARGE], 1);
    cr_assert_eq (w->failures [RP_FAILURE_OTHER], 1);
    rp_metrics_take (w);
    cr_assert_eq (w->uploads, 0, "the take emptied it");
    cr_assert_eq (w->ack.count, 0);
    free (w);
}

Test (metrics, failure_reasons_fall_into_their_class)
{
    static const struct { const char *reason; bool lost; rp_failure_class_t want; } cases [] = {
        { "not a supported image: the file is text", false, RP_FAILURE_NOT_AN_IMAGE },
        { "image is 20000x20000 pixels (400.0 megapixels), more than the pixel limit of 100.0 megapixels",
          false, RP_FAILURE_TOO_LARGE },
        { "file is 200 bytes, more than the limit of 100 bytes", false, RP_FAILURE_TOO_LARGE },
        { "cannot decode image: VipsJpeg: Premature end of input file", false, RP_FAILURE_DECODE_ERROR },
        { "cannot decode image: the image data is damaged or incomplete", false, RP_FAILURE_DECODE_ERROR },
        { "the broker gave up on the job", true, RP_FAILURE_LOST },
        { "cannot fetch the original from S3: 503", false, RP_FAILURE_STORAGE_UNAVAILABLE },
        { "a worker's result failed a check: no width", false, RP_FAILURE_OTHER },
        { NULL, false, RP_FAILURE_OTHER },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++)
        cr_assert_eq (rp_failure_classify (cases [i].reason, cases [i].lost), cases [i].want,
                      "%s: %s", cases [i].reason ? cases [i].reason : "(none)",
                      rp_failure_class_name (rp_failure_classify (cases [i].reason, cases [i].lost)));
    cr_assert_str_eq (rp_failure_class_name (RP_FAILURE_STORAGE_UNAVAILABLE), "StorageUnavailable");
}

Test (metrics, a_batch_is_one_document_per_dimension_set)
{
    rp_metrics_window_t *w = (rp_metrics_window_t *) calloc (1, sizeof *w);
    w->uploads = 2;
    w->upload_bytes = 300;
    w->ack.count = w->ack.seen = 1;
    w->ack.values [0] = 12.5;
    w->nstages = 1;
    snprintf (w->stages [0].stage, sizeof w->stages [0].stage, "decode");
    w->stages [0].samples.count = w->stages [0].samples.seen = 1;
    w->stages [0].samples.values [0] = 4;
    w->failures [RP_FAILURE_DECODE_ERROR] = 3;
    json_t *counts = json_pack ("{s:i, s:i}", "queued", 7, "complete", 1);
    json_t *broker = json_pack ("{s:{s:{s:i, s:i, s:i}}}", "pools", "resize", "queued", 4, "running", 2, "workers", 2);
    rp_metrics_context_t context = { .ns = "RapidPhotoUpload", .service = "serve", .timestamp_ms = 1796191086797LL,
                                     .counts = counts, .broker = broker };
    char *text = rp_metrics_render (w, &context);
    //  Service; Service+Pool; Service+Stage; Service+Reason: four lines
    json_t *docs [4] = { NULL };
    int n = 0;
    for (char *line = text, *eol; (eol = strchr (line, '\n')); line = eol + 1) {
        *eol = 0;
        cr_assert_lt (n, 4, "one line too many: %s", line);
        json_error_t jerr;
        docs [n] = json_loads (line, 0, &jerr);
        cr_assert_not_null (docs [n], "%s: %s", jerr.text, line);
        cr_assert_eq (json_integer_value (json_object_get (json_object_get (docs [n], "_aws"), "Timestamp")),
                      1796191086797LL);
        n++;
    }
    cr_assert_eq (n, 4);
    cr_assert_eq (json_integer_value (json_object_get (docs [0], "UploadCount")), 2);
    cr_assert_eq (json_integer_value (json_object_get (docs [0], "UploadBytes")), 300);
    cr_assert_eq (json_array_size (json_object_get (docs [0], "AckLatency")), 1);
    cr_assert_null (json_object_get (docs [0], "ProcessingLatency"), "no photo: no empty array");
    cr_assert_eq (json_integer_value (json_object_get (docs [0], "Failures")), 3);
    cr_assert_eq (json_integer_value (json_object_get (docs [0], "QueueDepth")), 7, "the database's queued photos");
    cr_assert_eq (json_integer_value (json_object_get (docs [0], "JobsInFlight")), 2);
    cr_assert_str_eq (json_string_value (json_object_get (docs [1], "Pool")), "resize");
    cr_assert_eq (json_integer_value (json_object_get (docs [1], "QueueDepth")), 4, "the broker's queue");
    cr_assert_str_eq (json_string_value (json_object_get (docs [2], "Stage")), "decode");
    cr_assert_str_eq (json_string_value (json_object_get (docs [3], "Reason")), "DecodeError");
    json_t *dims = json_object_get (json_array_get (json_object_get (json_object_get (docs [3], "_aws"),
                                                                     "CloudWatchMetrics"), 0), "Dimensions");
    cr_assert_str_eq (json_string_value (json_array_get (json_array_get (dims, 0), 1)), "Reason");
    for (int i = 0; i < n; i++)
        json_decref (docs [i]);
    free (text);
    json_decref (counts);
    json_decref (broker);
    free (w);
}

//  X-Ray trace headers (engine/trace.h)

Test (trace, reads_the_albs_header_and_refuses_what_is_not_one)
{
    cr_assert_eq (rp_trace_init ("test", 0, NULL, 0), 0);     //  no daemon: nothing is sent
    rp_trace_t trace;
    cr_assert_eq (rp_trace_parse ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                                  &trace), 0);
    cr_assert_str_eq (trace.id, "1-5759e988-bd862e3fe1be46a994272793");
    cr_assert_str_eq (trace.parent, "53995c3f42cd8ad8");
    cr_assert (trace.sampled);
    //  Any order, spaces, other keys (Self=, Lineage=) ignored
    cr_assert_eq (rp_trace_parse ("Self=1-67891234-12456789abcdef012345678;Sampled=0; Root=1-5759e988-bd862e3fe1be46a994272793",
                                  &trace), 0);
    cr_assert_str_eq (trace.id, "1-5759e988-bd862e3fe1be46a994272793");
    cr_assert_str_eq (trace.parent, "");
    cr_assert (!trace.sampled);
    //  No Sampled=: the rate decides (0 here)
    cr_assert_eq (rp_trace_parse ("Root=1-5759e988-bd862e3fe1be46a994272793", &trace), 0);
    cr_assert (!trace.sampled);
    static const char *const bad [] = {
        "", "Root=", "Root=1-5759e988-bd862e3fe1be46a99427279",        //  23 hex
        "Root=1-5759E988-bd862e3fe1be46a994272793",                       //  upper case
        "Root=2-5759e988-bd862e3fe1be46a994272793", "Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=1-5759e988-bd862e3fe1be46a994272793x",
    };
    rp_trace_t kept = trace;
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        cr_assert_eq (rp_trace_parse (bad [i], &trace), -1, "took %s", bad [i]);
        cr_assert_eq (memcmp (&trace, &kept, sizeof trace), 0, "changed by %s", bad [i]);
    }
    cr_assert_eq (rp_trace_parse (NULL, &trace), -1);
}

Test (trace, new_traces_and_the_header_for_the_next_hop)
{
    cr_assert_eq (rp_trace_init ("test", 1, NULL, 0), 0);
    rp_trace_t trace;
    rp_trace_start (&trace);
    cr_assert (rp_trace_id_valid (trace.id), "%s", trace.id);
    cr_assert (trace.sampled, "rate 1 samples every trace");
    long long epoch = strtoll (trace.id + 2, NULL, 16);
    cr_assert (llabs (epoch - (long long) time (NULL)) <= 2, "the id's time is now: %s", trace.id);
    rp_trace_t other;
    rp_trace_start (&other);
    cr_assert_str_neq (trace.id, other.id);
    char span [RP_TRACE_SPAN_MAX], header [RP_TRACE_HEADER_MAX];
    rp_trace_new_span (span);
    cr_assert_eq (strlen (span), 16);
    cr_assert_eq (strspn (span, "0123456789abcdef"), 16);
    rp_trace_header (&trace, span, header);
    rp_trace_t back;
    cr_assert_eq (rp_trace_parse (header, &back), 0, "%s", header);
    cr_assert_str_eq (back.id, trace.id);
    cr_assert_str_eq (back.parent, span);
    cr_assert (back.sampled);
    //  A bad daemon address is named at start
    char err [256] = "";
    setenv ("AWS_XRAY_DAEMON_ADDRESS", "tcp:127.0.0.1:2000", 1);
    cr_assert_eq (rp_trace_init ("test", 1, err, sizeof err), -1);
    cr_assert (strstr (err, "AWS_XRAY_DAEMON_ADDRESS"), "%s", err);
    setenv ("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1", 1);
    cr_assert_eq (rp_trace_init ("test", 1, err, sizeof err), -1);
    cr_assert (strstr (err, "host:port"), "%s", err);
    setenv ("AWS_XRAY_DAEMON_ADDRESS", "tcp:127.0.0.1:2000 udp:127.0.0.1:2001", 1);
    cr_assert_eq (rp_trace_init ("test", 1, err, sizeof err), 0, "%s", err);
    cr_assert (rp_trace_sending ());
    rp_trace_shutdown ();
    unsetenv ("AWS_XRAY_DAEMON_ADDRESS");
}

//  ---------------------------------------------------------------------------
//  log.format = json (engine/log.h)

Test (log, json_lines_parse_whatever_the_text_holds)
{
    char path [] = "/tmp/rp-test-log-XXXXXX";
    int fd = mkstemp (path);
    cr_assert_geq (fd, 0);
    int saved = dup (STDERR_FILENO);
    dup2 (fd, STDERR_FILENO);
    rp_log_set_output (RP_LOG_STDERR);
    rp_log_set_format (RP_LOG_JSON);
    rp_log_set_trace ("1-5759e988-bd862e3fe1be46a994272793");
    //  Quotes, a backslash, control characters, bytes that are not UTF-8,
    //  a name that is the line's own (level=), a field repeated
    rp_info ("gateway", "req=r-1 user=\"x\\y\" status=404 duration=12 level=forged file=a\nb\x01\xff\xc3\xa9 req=r-2");
    rp_log_set_trace (NULL);
    rp_warn ("pipeline", "photo=p-1 attempt=2: duration=abc");
    rp_log_set_format (RP_LOG_TEXT);
    dup2 (saved, STDERR_FILENO);
    close (saved);
    char text [4096] = "";
    ssize_t n = pread (fd, text, sizeof text - 1, 0);
    close (fd);
    unlink (path);
    text [n > 0 ? n : 0] = 0;
    char *second = strchr (text, '\n');
    cr_assert_not_null (second, "%s", text);
    *second++ = 0;
    json_error_t error;
    json_t *line = json_loads (text, 0, &error);
    cr_assert_not_null (line, "%s: %s", error.text, text);
    cr_assert_str_eq (json_string_value (json_object_get (line, "level")), "INFO");
    cr_assert_str_eq (json_string_value (json_object_get (line, "source")), "gateway");
    cr_assert_str_eq (json_string_value (json_object_get (line, "req")), "r-1");
    cr_assert_eq (json_integer_value (json_object_get (line, "status")), 404);
    cr_assert_eq (json_integer_value (json_object_get (line, "duration")), 12);
    cr_assert_str_eq (json_string_value (json_object_get (line, "trace")), "1-5759e988-bd862e3fe1be46a994272793");
    const char *message = json_string_value (json_object_get (line, "message"));
    //  The stray byte 0xff came through as U+00FF; the valid é as itself
    cr_assert (strstr (message, "user=\"x\\y\"") && strstr (message, "a\nb\x01\xc3\xbf\xc3\xa9"), "%s", message);
    cr_assert (strstr (message, " trace=1-5759e988-bd862e3fe1be46a994272793"), "%s", message);
    json_decref (line);
    line = json_loads (second, 0, &error);
    cr_assert_not_null (line, "%s: %s", error.text, second);
    cr_assert_str_eq (json_string_value (json_object_get (line, "level")), "WARN");
    cr_assert_eq (json_integer_value (json_object_get (line, "attempt")), 2, "the ':' is not the value's");
    cr_assert (json_is_string (json_object_get (line, "duration")), "not a number, kept as text");
    cr_assert_null (json_object_get (line, "trace"));
    json_decref (line);
}
