/*  engine/aws/sqs.c: an SQS client, JSON protocol (see sqs.h).

    Every action is one POST of a JSON document to "/" of the endpoint, with
    Content-Type application/x-amz-json-1.0 and X-Amz-Target naming the
    action, signed with SigV4 for service "sqs". Errors come back as
    {"__type": "...#QueueDoesNotExist", "message": "..."}.
*/
#include "aws/sqs.h"
#include "aws/common.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_ANSWER_MAX (4 << 20)          //  10 messages of up to 256 KiB each, and room

struct _rp_sqs_t {
    char *endpoint;                     //  "" when each queue URL tells
    char *region;
    char *access_key;
    char *secret_key;
    char *session_token;
    CURL *curl;
};

rp_sqs_t *
rp_sqs_new (const rp_sqs_config_t *config, char *err, size_t errlen)
{
    if (!config->region || !*config->region) {
        snprintf (err, errlen, "SQS needs a region: set AWS_REGION");
        return NULL;
    }
    if (!config->credentials.access_key || !*config->credentials.access_key
    ||  !config->credentials.secret_key || !*config->credentials.secret_key) {
        snprintf (err, errlen, "SQS needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
        return NULL;
    }
    rp_sqs_t *self = (rp_sqs_t *) calloc (1, sizeof (rp_sqs_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->endpoint = strdup (config->endpoint ? config->endpoint : "");
    self->region = strdup (config->region);
    self->access_key = strdup (config->credentials.access_key);
    self->secret_key = strdup (config->credentials.secret_key);
    self->session_token = config->credentials.session_token ? strdup (config->credentials.session_token) : NULL;
    self->curl = curl_easy_init ();
    if (!self->curl || !self->endpoint || !self->region || !self->access_key || !self->secret_key) {
        snprintf (err, errlen, "out of memory");
        rp_sqs_destroy (&self);
    }
    return self;
}

void
rp_sqs_destroy (rp_sqs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rp_sqs_t *self = *self_p;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    free (self->endpoint);
    free (self->region);
    free (self->access_key);
    if (self->secret_key)
        memset (self->secret_key, 0, strlen (self->secret_key));
    free (self->secret_key);
    free (self->session_token);
    free (self);
    *self_p = NULL;
}

//  scheme and authority of the endpoint to use for queue_url.
static int
s_endpoint (rp_sqs_t *self, const char *queue_url, char *scheme, size_t scheme_len, char *authority,
            size_t authority_len, char *err, size_t errlen)
{
    const char *base = *self->endpoint ? self->endpoint : queue_url;
    if (rp_aws_split_url (base, scheme, scheme_len, authority, authority_len)) {
        snprintf (err, errlen, "the SQS queue URL or endpoint \"%.200s\" is not an http(s):// URL", base ? base : "");
        return -1;
    }
    return 0;
}

//  One action: the answer's JSON (caller owns), or NULL with err.
static json_t *
s_call (rp_sqs_t *self, const char *action, const char *queue_url, json_t *request, char *err, size_t errlen)
{
    char scheme [16], authority [256];
    if (s_endpoint (self, queue_url, scheme, sizeof scheme, authority, sizeof authority, err, errlen)) {
        json_decref (request);
        return NULL;
    }
    json_object_set_new (request, "QueueUrl", json_string (queue_url));
    char *body = json_dumps (request, JSON_COMPACT);
    json_decref (request);
    if (!body) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    char sha [65], target [96];
    rp_sigv4_sha256_hex (body, strlen (body), sha);
    snprintf (target, sizeof target, "AmazonSQS.%s", action);
    rp_aws_param_t headers [] = { { "content-type", "application/x-amz-json-1.0" }, { "x-amz-target", target } };
    rp_aws_credentials_t creds = { self->access_key, self->secret_key, self->session_token };
    rp_sigv4_request_t sign = {
        .method = "POST", .host = authority, .path = "/", .headers = headers, .header_count = 2,
        .payload_sha256 = sha, .region = self->region, .service = "sqs", .double_encode = true,
        .when = time (NULL),
    };
    char authorization [RP_SIGV4_AUTH_MAX], amz_date [RP_SIGV4_DATE_MAX];
    if (rp_sigv4_authorization (&sign, &creds, authorization, amz_date, err, errlen)) {
        free (body);
        return NULL;
    }
    char url [300], h_auth [RP_SIGV4_AUTH_MAX + 32], h_date [64], h_target [128], h_token [4096];
    snprintf (url, sizeof url, "%s://%s/", scheme, authority);
    snprintf (h_auth, sizeof h_auth, "Authorization: %s", authorization);
    snprintf (h_date, sizeof h_date, "x-amz-date: %s", amz_date);
    snprintf (h_target, sizeof h_target, "X-Amz-Target: %s", target);
    struct curl_slist *list = curl_slist_append (NULL, "Expect:");
    list = curl_slist_append (list, "Content-Type: application/x-amz-json-1.0");
    list = curl_slist_append (list, h_target);
    list = curl_slist_append (list, h_auth);
    list = curl_slist_append (list, h_date);
    if (self->session_token) {
        snprintf (h_token, sizeof h_token, "x-amz-security-token: %s", self->session_token);
        list = curl_slist_append (list, h_token);
    }
    CURL *curl = self->curl;
    curl_easy_reset (curl);
    rp_aws_body_t answer = { .max = S_ANSWER_MAX };
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, 40L);      //  a 20 s long poll, and room
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen (body));
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, rp_aws_body_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &answer);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (list);
    free (body);
    if (rc != CURLE_OK) {
        snprintf (err, errlen, "cannot reach SQS at %s: %s", authority,
                  answer.too_big ? "the answer is too big" : curl_easy_strerror (rc));
        free (answer.data);
        return NULL;
    }
    json_error_t jerr;
    json_t *json = answer.data && *answer.data ? json_loads (answer.data, 0, &jerr) : json_object ();
    free (answer.data);
    if (status < 200 || status >= 300) {
        const char *type = json_string_value (json_object_get (json, "__type"));
        const char *message = json_string_value (json_object_get (json, "message"));
        if (!message)
            message = json_string_value (json_object_get (json, "Message"));
        const char *hash = type ? strrchr (type, '#') : NULL;
        snprintf (err, errlen, "SQS %s %s: %ld %s%s%s", action, queue_url, status, hash ? hash + 1 : type ? type : "",
                  message ? ": " : "", message ? message : "");
        json_decref (json);
        return NULL;
    }
    if (!json_is_object (json)) {
        snprintf (err, errlen, "SQS %s %s: the answer is not JSON", action, queue_url);
        json_decref (json);
        return NULL;
    }
    return json;
}

int
rp_sqs_receive (rp_sqs_t *self, const char *queue_url, int max, int wait_s, int visibility_s,
                rp_sqs_message_t **messages, size_t *count, char *err, size_t errlen)
{
    *messages = NULL;
    *count = 0;
    if (max < 1 || max > 10 || wait_s < 0 || wait_s > 20 || visibility_s < 0 || visibility_s > 43200) {
        snprintf (err, errlen, "SQS receives 1..10 messages waiting 0..20 s");
        return -1;
    }
    json_t *request = json_pack ("{s:i, s:i, s:[s]}", "MaxNumberOfMessages", max, "WaitTimeSeconds", wait_s,
                                 "AttributeNames", "ApproximateReceiveCount");
    if (visibility_s > 0)
        json_object_set_new (request, "VisibilityTimeout", json_integer (visibility_s));
    json_t *answer = s_call (self, "ReceiveMessage", queue_url, request, err, errlen);
    if (!answer)
        return -1;
    json_t *list = json_object_get (answer, "Messages");
    size_t n = json_is_array (list) ? json_array_size (list) : 0;
    rp_sqs_message_t *out = n ? (rp_sqs_message_t *) calloc (n, sizeof (rp_sqs_message_t)) : NULL;
    size_t kept = 0;
    for (size_t i = 0; i < n && out; i++) {
        json_t *item = json_array_get (list, i);
        const char *id = json_string_value (json_object_get (item, "MessageId"));
        const char *receipt = json_string_value (json_object_get (item, "ReceiptHandle"));
        const char *body = json_string_value (json_object_get (item, "Body"));
        if (!id || !receipt || !body)
            continue;                   //  not a message we can act on
        const char *received = json_string_value (json_object_get (json_object_get (item, "Attributes"),
                                                                   "ApproximateReceiveCount"));
        out [kept].id = strdup (id);
        out [kept].receipt = strdup (receipt);
        out [kept].body = strdup (body);
        out [kept].receive_count = received ? atoi (received) : 1;
        kept++;
    }
    json_decref (answer);
    *messages = out;
    *count = kept;
    return 0;
}

void
rp_sqs_messages_free (rp_sqs_message_t **messages, size_t count)
{
    if (!messages || !*messages)
        return;
    for (size_t i = 0; i < count; i++) {
        free ((*messages) [i].id);
        free ((*messages) [i].receipt);
        free ((*messages) [i].body);
    }
    free (*messages);
    *messages = NULL;
}

int
rp_sqs_delete (rp_sqs_t *self, const char *queue_url, const char *receipt, char *err, size_t errlen)
{
    json_t *answer = s_call (self, "DeleteMessage", queue_url,
                             json_pack ("{s:s}", "ReceiptHandle", receipt), err, errlen);
    json_decref (answer);
    return answer ? 0 : -1;
}

int
rp_sqs_change_visibility (rp_sqs_t *self, const char *queue_url, const char *receipt, int timeout_s,
                          char *err, size_t errlen)
{
    if (timeout_s < 0 || timeout_s > 43200) {
        snprintf (err, errlen, "a visibility timeout is 0..43200 s");
        return -1;
    }
    json_t *answer = s_call (self, "ChangeMessageVisibility", queue_url,
                             json_pack ("{s:s, s:i}", "ReceiptHandle", receipt, "VisibilityTimeout", timeout_s),
                             err, errlen);
    json_decref (answer);
    return answer ? 0 : -1;
}

int
rp_sqs_send (rp_sqs_t *self, const char *queue_url, const char *body, char message_id [128],
             char *err, size_t errlen)
{
    json_t *answer = s_call (self, "SendMessage", queue_url, json_pack ("{s:s}", "MessageBody", body),
                             err, errlen);
    if (!answer)
        return -1;
    if (message_id) {
        const char *id = json_string_value (json_object_get (answer, "MessageId"));
        snprintf (message_id, 128, "%s", id ? id : "");
    }
    json_decref (answer);
    return 0;
}

int
rp_sqs_send_batch (rp_sqs_t *self, const char *queue_url, const char *const *bodies, size_t count,
                   size_t *failed, char *err, size_t errlen)
{
    *failed = 0;
    if (count < 1 || count > 10) {
        snprintf (err, errlen, "an SQS batch holds 1..10 messages");
        return -1;
    }
    json_t *entries = json_array ();
    for (size_t i = 0; i < count; i++) {
        char id [16];
        snprintf (id, sizeof id, "m%zu", i);
        json_array_append_new (entries, json_pack ("{s:s, s:s}", "Id", id, "MessageBody", bodies [i]));
    }
    json_t *answer = s_call (self, "SendMessageBatch", queue_url, json_pack ("{s:o}", "Entries", entries),
                             err, errlen);
    if (!answer)
        return -1;
    json_t *refused = json_object_get (answer, "Failed");
    *failed = json_is_array (refused) ? json_array_size (refused) : 0;
    if (*failed) {
        json_t *first = json_array_get (refused, 0);
        snprintf (err, errlen, "SQS SendMessageBatch %s: %zu of %zu refused, e.g. %s", queue_url, *failed, count,
                  json_string_value (json_object_get (first, "Message")) ? json_string_value (json_object_get (first, "Message"))
                  : "no reason given");
    }
    json_decref (answer);
    return 0;
}
