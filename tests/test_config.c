/*  tests/test_config.c: how settings are read, and how bad ones are refused. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/log.h"
#include "tests/support/testdata.h"

static char *
s_write_ini (const char *text)
{
    char *dir = rp_test_tmpdir ("config");
    static char path [512];
    snprintf (path, sizeof path, "%s/test.ini", dir);
    free (dir);
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file);
    fputs (text, file);
    fclose (file);
    return path;
}

//  rp_config_load with stderr (where the log goes) caught; returns what was
//  written there (caller frees).
static char *
s_load_catching_stderr (rp_config_t *config, const char *path, int *rc, char *err, size_t errlen)
{
    char *dir = rp_test_tmpdir ("config-stderr");
    char caught [512];
    snprintf (caught, sizeof caught, "%s/stderr", dir);
    free (dir);
    int fd = open (caught, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq (fd, 0);
    fflush (stderr);
    int saved = dup (STDERR_FILENO);
    dup2 (fd, STDERR_FILENO);
    *rc = rp_config_load (config, path, err, errlen);
    dup2 (saved, STDERR_FILENO);
    close (saved);
    static char text [4096];
    ssize_t n = pread (fd, text, sizeof text - 1, 0);
    close (fd);
    text [n > 0 ? n : 0] = 0;
    return strdup (text);
}

static int
s_lines (const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

Test (config, defaults_match_the_contract)
{
    rp_config_t c;
    char err [512];
    cr_assert_eq (rp_config_load (&c, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (c.http_listen, "127.0.0.1:8080");
    cr_assert_str_eq (c.data_dir, "./var");
    cr_assert_str_eq (c.db_url, "sqlite:./var/rapidphoto.db");
    cr_assert_str_eq (c.storage_backend, "disk");
    cr_assert_eq (c.limits_max_upload_bytes, 100LL * 1024 * 1024);
    cr_assert_eq (c.limits_max_pixels, 100000000LL);
    cr_assert_eq (c.derivative_count, 2);
    cr_assert_str_eq (c.derivatives [0].name, "thumbnail");
    cr_assert_str_eq (c.derivatives [0].format, "webp");
    cr_assert_eq (c.derivatives [0].quality, 80);
    cr_assert_eq (c.derivatives [0].width, 256);
    cr_assert_str_eq (c.derivatives [1].name, "preview");
    cr_assert_str_eq (c.derivatives [1].format, "jpeg");
    cr_assert_eq (c.derivatives [1].quality, 82);
    cr_assert_eq (c.derivatives [1].height, 1440);
    cr_assert_str_eq (c.sqs_protocol, "json");
    cr_assert_gt (c.pools_resize, 0, "0 means one per core, resolved at load");
    cr_assert_eq (c.broker_queue_max, 10000);
    cr_assert_eq (c.broker_queue_expiry_ms, 0, "0: the job timeout");
    cr_assert_str_eq (c.broker_curve_secret_key, "", "no keys: loopback only");
    cr_assert_str_eq (c.broker_curve_clients, "");
    cr_assert_eq (c.broker_trust_network, 0);
    cr_assert_eq (c.shutdown_timeout_s, 25, "the drain fits ECS's 30 s stopTimeout with margin");
    //  The gateway's limits (README, "Limits")
    cr_assert_eq (c.http_max_connections, 2048);
    cr_assert_eq (c.http_max_connections_per_address, 256);
    cr_assert_eq (c.http_max_streams, 1024);
    cr_assert_lt (c.http_max_streams, c.http_max_connections, "streams leave room for other requests");
    cr_assert_eq (c.http_max_streams_per_user, 16);
    cr_assert_str_eq (c.http_trusted_proxies, "", "no proxy is trusted unless named");
    cr_assert_eq (c.auth_login_failures, 5);
    cr_assert_eq (c.auth_login_failures_per_user, 20);
    cr_assert_eq (c.auth_login_failures_per_address, 100);
    cr_assert_gt (c.auth_password_checks, 0, "0 means one per core, resolved at load");
    cr_assert_str_eq (c.metrics_token, "", "/metrics is open unless a token is set");
    cr_assert_eq (c.metrics_emf, 0, "EMF documents on stdout only when asked for");
    cr_assert_str_eq (c.metrics_emf_namespace, "RapidPhotoUpload", "the dashboard's namespace");
    cr_assert_eq (c.metrics_emf_interval_s, 60);
    cr_assert_eq (c.limits_max_request_bytes, 1LL << 30);
    cr_assert_eq (c.uploads_max_open_per_user, 100);
}

Test (config, shipped_example_file_equals_the_defaults)
{
    const char *source = getenv ("RP_SOURCE_DIR");
    cr_assert_not_null (source);
    char path [1024];
    snprintf (path, sizeof path, "%s/configs/rapidphoto.ini", source);
    rp_config_t from_file, defaults;
    char err [512];
    cr_assert_eq (rp_config_load (&from_file, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq (rp_config_load (&defaults, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq (memcmp (&from_file, &defaults, sizeof defaults), 0,
                  "configs/rapidphoto.ini drifted from the built-in defaults");
}

Test (config, file_then_environment_win_in_that_order)
{
    const char *path = s_write_ini ("[limits]\nmax_pixels = 5000\nmax_upload_bytes = 2M\n"
                                    "[data]\ndir = /srv/photos\n"
                                    "[derivatives]\nsmall = png 90 64x64\npreview = off\n");
    setenv ("RAPIDPHOTO_LIMITS_MAX_PIXELS", "7000", 1);
    rp_config_t c;
    char err [512];
    int rc = rp_config_load (&c, path, err, sizeof err);
    unsetenv ("RAPIDPHOTO_LIMITS_MAX_PIXELS");
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_eq (c.limits_max_pixels, 7000, "the environment beats the file");
    cr_assert_eq (c.limits_max_upload_bytes, 2 * 1024 * 1024);
    cr_assert_str_eq (c.db_url, "sqlite:/srv/photos/rapidphoto.db", "db.url follows data.dir");
    cr_assert_eq (c.derivative_count, 2, "thumbnail and small; preview was turned off");
    cr_assert_str_eq (c.derivatives [1].name, "small");
    cr_assert_str_eq (c.derivatives [1].format, "png");
}

Test (config, unknown_key_in_file_is_named)
{
    const char *path = s_write_ini ("[limits]\nmax_pixel = 5\n");
    rp_config_t c;
    char err [512];
    cr_assert_eq (rp_config_load (&c, path, err, sizeof err), -1);
    cr_assert (strstr (err, "limits.max_pixel"), "error names the key: %s", err);
    cr_assert (strstr (err, path), "error names the file: %s", err);
}

Test (config, unknown_environment_variable_is_named)
{
    setenv ("RAPIDPHOTO_HTTP_LISTN", "x", 1);
    rp_config_t c;
    char err [512];
    int rc = rp_config_load (&c, NULL, err, sizeof err);
    unsetenv ("RAPIDPHOTO_HTTP_LISTN");
    cr_assert_eq (rc, -1);
    cr_assert (strstr (err, "RAPIDPHOTO_HTTP_LISTN"), "%s", err);
}

Test (config, retired_pools_store_still_starts_with_one_warning)
{
    //  pools.store sized a job kind that never came (the bytes are stored
    //  as they arrive). A config written when it was there must still
    //  start, and say once that the key does nothing.
    const char *path = s_write_ini ("[pools]\nstore = 2\nresize = 3\n");
    rp_config_t c;
    char err [512] = "";
    int rc = -1;
    char *said = s_load_catching_stderr (&c, path, &rc, err, sizeof err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_eq (c.pools_resize, 3, "the keys around it still apply");
    cr_assert (strstr (said, "pools.store is no longer used"), "%s", said);
    cr_assert_eq (s_lines (said), 1, "one warning line: %s", said);
    free (said);

    setenv ("RAPIDPHOTO_POOLS_STORE", "4", 1);
    said = s_load_catching_stderr (&c, NULL, &rc, err, sizeof err);
    unsetenv ("RAPIDPHOTO_POOLS_STORE");
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert (strstr (said, "pools.store is no longer used"), "%s", said);
    cr_assert_eq (s_lines (said), 1, "one warning line: %s", said);
    free (said);

    said = s_load_catching_stderr (&c, NULL, &rc, err, sizeof err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_str_eq (said, "", "no warning when the key is not set");
    free (said);
}

Test (config, log_output_sends_log_lines_to_stdout_or_stderr)
{
    //  stderr unless log.output says stdout (a container image does); the
    //  loaded config switches the log itself, as log.level does
    rp_config_t c;
    char err [512];
    cr_assert_eq (rp_config_load (&c, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq (c.log_output, RP_LOG_STDERR);
    cr_assert_eq (rp_log_get_output (), RP_LOG_STDERR);

    setenv ("RAPIDPHOTO_LOG_OUTPUT", "stdout", 1);
    int rc = rp_config_load (&c, NULL, err, sizeof err);
    unsetenv ("RAPIDPHOTO_LOG_OUTPUT");
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_eq (c.log_output, RP_LOG_STDOUT);
    cr_assert_eq (rp_log_get_output (), RP_LOG_STDOUT);

    //  A line logged now lands on stdout, and nothing on stderr
    char *dir = rp_test_tmpdir ("config-output");
    char out_path [512], err_path [512];
    snprintf (out_path, sizeof out_path, "%s/stdout", dir);
    snprintf (err_path, sizeof err_path, "%s/stderr", dir);
    free (dir);
    int out_fd = open (out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int err_fd = open (err_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert (out_fd >= 0 && err_fd >= 0);
    fflush (stdout);
    fflush (stderr);
    int saved_out = dup (STDOUT_FILENO), saved_err = dup (STDERR_FILENO);
    dup2 (out_fd, STDOUT_FILENO);
    dup2 (err_fd, STDERR_FILENO);
    rp_info ("test", "to stdout");
    rp_log_set_output (RP_LOG_STDERR);
    rp_info ("test", "to stderr");
    dup2 (saved_out, STDOUT_FILENO);
    dup2 (saved_err, STDERR_FILENO);
    close (saved_out);
    close (saved_err);
    char out [512] = "", errs [512] = "";
    ssize_t n = pread (out_fd, out, sizeof out - 1, 0);
    out [n > 0 ? n : 0] = 0;
    n = pread (err_fd, errs, sizeof errs - 1, 0);
    errs [n > 0 ? n : 0] = 0;
    close (out_fd);
    close (err_fd);
    cr_assert (strstr (out, "INFO  test    to stdout\n"), "stdout: %s", out);
    cr_assert_eq (s_lines (out), 1, "stdout holds that line alone: %s", out);
    cr_assert (strstr (errs, "to stderr\n") && s_lines (errs) == 1, "stderr: %s", errs);

    setenv ("RAPIDPHOTO_LOG_OUTPUT", "syslog", 1);
    rc = rp_config_load (&c, NULL, err, sizeof err);
    unsetenv ("RAPIDPHOTO_LOG_OUTPUT");
    cr_assert_eq (rc, -1);
    cr_assert (strstr (err, "RAPIDPHOTO_LOG_OUTPUT") && strstr (err, "stderr|stdout"), "%s", err);
}

Test (config, log_format_and_the_tracing_rate)
{
    rp_config_t c;
    char err [512];
    cr_assert_eq (rp_config_load (&c, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq (c.log_format, RP_LOG_TEXT);
    cr_assert_eq (c.tracing_sample_rate, 0.05);
    const char *path = s_write_ini ("[log]\nformat = json\n[tracing]\nsample_rate = 0.5\n");
    cr_assert_eq (rp_config_load (&c, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq (c.log_format, RP_LOG_JSON);
    cr_assert_eq (rp_log_get_format (), RP_LOG_JSON);
    cr_assert_eq (c.tracing_sample_rate, 0.5);
    setenv ("RAPIDPHOTO_TRACING_SAMPLE_RATE", "5%", 1);
    int rc = rp_config_load (&c, NULL, err, sizeof err);
    unsetenv ("RAPIDPHOTO_TRACING_SAMPLE_RATE");
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_eq (c.tracing_sample_rate, 0.05);
    cr_assert_eq (rp_log_get_format (), RP_LOG_TEXT);
}

Test (config, bad_values_are_refused_with_the_reason)
{
    static const struct { const char *ini; const char *expect; } cases [] = {
        { "[limits]\nmax_pixels = lots\n", "limits.max_pixels" },
        { "[limits]\nmax_pixels = -1\n", "limits.max_pixels" },
        { "[limits]\nfail_on = sometimes\n", "none|truncated|error|warning" },
        { "[storage]\nbackend = ftp\n", "storage.backend" },
        { "[storage]\nbackend = s3\n", "storage.s3_bucket" },
        { "[db]\nurl = mysql://x\n", "db.url" },
        { "[broker]\nbackend = localhost:5571\n", "ZeroMQ endpoint" },
        { "[derivatives]\nthumbnail = gif 80 256x256\n", "derivatives.thumbnail" },
        { "[derivatives]\nthumbnail = webp 180 256x256\n", "quality" },
        { "[derivatives]\nthumbnail = webp 80 256\n", "WIDTHxHEIGHT" },
        { "[derivatives]\nthumbnail = off\npreview = off\n", "at least one derivative" },
        { "orphan = 1\n", "outside any [section]" },
        { "[broker]\ncurve_secret_key = not-a-key\n", "broker.curve_secret_key" },
        { "[broker]\ncurve_secret_key = @/nonexistent/broker.key\n", "/nonexistent/broker.key" },
        { "[broker]\ncurve_clients = rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7,x\n", "\"x\" is not a Z85 key" },
        { "[broker]\ncurve_secret_key = JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\n", "broker.curve_clients" },
        { "[broker]\ncurve_server_key = rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n",
          "broker.curve_client_secret_key" },
        { "[broker]\ntrust_network = perhaps\n", "broker.trust_network" },
        { "[broker]\nqueue_max = 0\n", "broker.queue_max" },
        { "[auth]\njwt_secret = only-31-bytes-long-0123456789ab\n", "auth.jwt_secret" },
        { "[http]\nmax_streams = 2048\n", "http.max_streams" },
        { "[http]\nmax_connections = 100\nmax_streams = 100\n", "below http.max_connections" },
        { "[limits]\nmax_request_bytes = 0\n", "limits.max_request_bytes" },
        { "[uploads]\nmax_open_per_user = none\n", "uploads.max_open_per_user" },
        { "[metrics]\nemf = maybe\n", "metrics.emf" },
        { "[metrics]\nemf_interval_s = 0\n", "metrics.emf_interval_s" },
        { "[metrics]\nemf_namespace = AWS/Lambda\n", "metrics.emf_namespace" },
        { "[metrics]\nemf_namespace = Rapid{Photo}\n", "not a CloudWatch namespace" },
        { "[log]\nformat = xml\n", "text|json" },
        { "[tracing]\nsample_rate = 2\n", "tracing.sample_rate" },
        { "[tracing]\nsample_rate = -0.1\n", "tracing.sample_rate" },
        { "[tracing]\nsample_rate = often\n", "a fraction in 0..1" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        const char *path = s_write_ini (cases [i].ini);
        rp_config_t c;
        char err [512] = "";
        cr_assert_eq (rp_config_load (&c, path, err, sizeof err), -1, "accepted: %s", cases [i].ini);
        cr_assert (strstr (err, cases [i].expect), "for %s expected \"%s\" in: %s",
                   cases [i].ini, cases [i].expect, err);
    }
}

Test (config, curve_keys_come_from_the_file_the_environment_or_key_files)
{
    //  Z85 keys from libzmq's own documentation (rfc.zeromq.org/spec/26)
    const char *server_public = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    const char *server_secret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";
    const char *client_public = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
    const char *client_secret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";
    char *dir = rp_test_tmpdir ("config-keys");
    char secret_file [512], list_file [512];
    snprintf (secret_file, sizeof secret_file, "%s/broker.key", dir);
    snprintf (list_file, sizeof list_file, "%s/clients", dir);
    FILE *file = fopen (secret_file, "w");
    fprintf (file, "%s\n", server_secret);
    fclose (file);
    file = fopen (list_file, "w");
    fprintf (file, "# the workers\n%s\n\n# the gateway\n%s\n", client_public, server_public);
    fclose (file);
    char ini [2048];
    snprintf (ini, sizeof ini, "[broker]\ncurve_secret_key = @%s\ncurve_clients = @%s\n"
              "curve_server_key = %s\ntrust_network = yes\nqueue_max = 5\n",
              secret_file, list_file, server_public);
    const char *path = s_write_ini (ini);
    //  The client's secret from the environment, as an ECS secret carries it
    setenv ("RAPIDPHOTO_BROKER_CURVE_CLIENT_SECRET_KEY", client_secret, 1);
    rp_config_t c;
    char err [512];
    int rc = rp_config_load (&c, path, err, sizeof err);
    unsetenv ("RAPIDPHOTO_BROKER_CURVE_CLIENT_SECRET_KEY");
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_str_eq (c.broker_curve_secret_key, server_secret);
    char both [128];
    snprintf (both, sizeof both, "%s,%s", client_public, server_public);
    cr_assert_str_eq (c.broker_curve_clients, both, "one a line, comments skipped: %s", c.broker_curve_clients);
    cr_assert_str_eq (c.broker_curve_server_key, server_public);
    cr_assert_str_eq (c.broker_curve_client_secret_key, client_secret);
    cr_assert_eq (c.broker_trust_network, 1);
    cr_assert_eq (c.broker_queue_max, 5);

    //  A key that begins with @ is a key, not a file name
    snprintf (ini, sizeof ini, "[broker]\ncurve_server_key = @%.39s\ncurve_client_secret_key = %s\n",
              server_public + 1, client_secret);
    path = s_write_ini (ini);
    cr_assert_eq (rp_config_load (&c, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq (c.broker_curve_server_key [0], '@');
    free (dir);
}

Test (config, missing_file_is_named)
{
    rp_config_t c;
    char err [512];
    cr_assert_eq (rp_config_load (&c, "/nonexistent/rapidphoto.ini", err, sizeof err), -1);
    cr_assert (strstr (err, "/nonexistent/rapidphoto.ini"), "%s", err);
}
