/*  tests/test_aws_credentials.c: where the AWS bridges get credentials
    (engine/aws/credentials.c): the environment, and the ECS container
    credentials endpoint (here a real HTTP server, python3 -m http.server,
    serving the JSON ECS serves) with refresh before expiry.
*/
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "engine/aws/credentials.h"
#include "tests/support/http.h"
#include "tests/support/testdata.h"

static void
s_clear_env (void)
{
    const char *names [] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                             "AWS_CONTAINER_AUTHORIZATION_TOKEN" };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++)
        unsetenv (names [i]);
}

Test (aws_credentials, from_the_environment)
{
    s_clear_env ();
    char err [512] = "";
    cr_assert_null (rp_aws_provider_new (err, sizeof err));
    cr_assert_not_null (strstr (err, "AWS_ACCESS_KEY_ID"), "%s", err);
    cr_assert_not_null (strstr (err, "ECS"), "%s", err);
    setenv ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    cr_assert_null (rp_aws_provider_new (err, sizeof err));
    cr_assert_not_null (strstr (err, "AWS_SECRET_ACCESS_KEY"), "%s", err);
    setenv ("AWS_SECRET_ACCESS_KEY", "secret", 1);
    setenv ("AWS_SESSION_TOKEN", "token", 1);
    rp_aws_provider_t *provider = rp_aws_provider_new (err, sizeof err);
    cr_assert_not_null (provider, "%s", err);
    cr_assert_str_eq (rp_aws_provider_source (provider), "environment");
    rp_aws_keys_t keys;
    cr_assert_eq (rp_aws_credentials_get (provider, &keys, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (keys.access_key, "AKIDEXAMPLE");
    cr_assert_str_eq (keys.secret_key, "secret");
    cr_assert_str_eq (keys.session_token, "token");
    cr_assert_eq (keys.expires, 0);
    rp_aws_provider_destroy (&provider);
}

//  The endpoint's answer, as ECS gives it.
static void
s_write_answer (const char *dir, const char *key, time_t expires)
{
    char path [512], when [32];
    snprintf (path, sizeof path, "%s/creds", dir);
    struct tm tm;
    gmtime_r (&expires, &tm);
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file);
    fprintf (file, "{\"RoleArn\":\"arn:aws:iam::123456789012:role/rapidphoto\",\"AccessKeyId\":\"%s\","
                   "\"SecretAccessKey\":\"secret-%s\",\"Token\":\"token-%s\",\"Expiration\":\"%s\"}",
             key, key, key, when);
    fclose (file);
}

static pid_t
s_serve (const char *dir, int port)
{
    pid_t pid = fork ();
    cr_assert_geq (pid, 0);
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        FILE *out = freopen ("/dev/null", "w", stdout);
        out = freopen ("/dev/null", "w", stderr);
        (void) out;
        char number [16];
        snprintf (number, sizeof number, "%d", port);
        execlp ("python3", "python3", "-m", "http.server", number, "--bind", "127.0.0.1", "--directory", dir, NULL);
        _exit (127);
    }
    char url [128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", port);
    for (int i = 0; i < 100; i++) {
        long status = rp_test_http_status (url);
        if (status >= 200 && status < 400)
            break;
        usleep (100 * 1000);
    }
    return pid;
}

Test (aws_credentials, from_the_container_endpoint_refreshed_before_expiry, .timeout = 60)
{
    s_clear_env ();
    char *dir = rp_test_tmpdir ("ecs-creds");
    int port = rp_test_free_port ();
    //  Credentials that expire in two minutes: inside the five-minute margin
    s_write_answer (dir, "FIRST", time (NULL) + 120);
    pid_t server = s_serve (dir, port);
    char uri [128], err [512] = "";
    snprintf (uri, sizeof uri, "http://127.0.0.1:%d/creds", port);
    setenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    setenv ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer task-token", 1);
    rp_aws_provider_t *provider = rp_aws_provider_new (err, sizeof err);
    cr_assert_not_null (provider, "%s", err);
    cr_assert_not_null (strstr (rp_aws_provider_source (provider), uri));

    //  The next get refreshes them
    s_write_answer (dir, "SECOND", time (NULL) + 3600);
    rp_aws_keys_t keys;
    cr_assert_eq (rp_aws_credentials_get (provider, &keys, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (keys.access_key, "SECOND");
    cr_assert_str_eq (keys.secret_key, "secret-SECOND");
    cr_assert_str_eq (keys.session_token, "token-SECOND");
    cr_assert_gt (keys.expires, time (NULL) + 3000);
    //  ...and then keeps them while they are good
    s_write_answer (dir, "THIRD", time (NULL) + 3600);
    cr_assert_eq (rp_aws_credentials_get (provider, &keys, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (keys.access_key, "SECOND");
    rp_aws_provider_destroy (&provider);

    //  The endpoint gone: credentials still valid are kept; expired ones are an error
    s_write_answer (dir, "FOURTH", time (NULL) + 120);
    provider = rp_aws_provider_new (err, sizeof err);
    cr_assert_not_null (provider, "%s", err);
    kill (server, SIGTERM);
    rp_test_wait (server, 5000);
    cr_assert_eq (rp_aws_credentials_get (provider, &keys, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq (keys.access_key, "FOURTH");
    rp_aws_provider_destroy (&provider);

    //  Unusable answers are refused with the reason
    server = s_serve (dir, port);
    char path [512];
    snprintf (path, sizeof path, "%s/creds", dir);
    FILE *file = fopen (path, "w");
    fputs ("{\"AccessKeyId\":\"X\"}", file);
    fclose (file);
    cr_assert_null (rp_aws_provider_new (err, sizeof err));
    cr_assert_not_null (strstr (err, "SecretAccessKey"), "%s", err);
    file = fopen (path, "w");
    fputs ("<html>not json</html>", file);
    fclose (file);
    cr_assert_null (rp_aws_provider_new (err, sizeof err));
    cr_assert_not_null (strstr (err, "did not answer JSON"), "%s", err);
    snprintf (uri, sizeof uri, "http://127.0.0.1:%d/missing", port);
    setenv ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    cr_assert_null (rp_aws_provider_new (err, sizeof err));
    cr_assert_not_null (strstr (err, "answered 404"), "%s", err);
    kill (server, SIGTERM);
    rp_test_wait (server, 5000);
    free (dir);
}
