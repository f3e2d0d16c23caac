/*  engine/aws/sqs.c: an SQS client, JSON or query protocol (see sqs.h).

    DESIGN: the actions build their request and read their answer as the
    JSON protocol's documents (the shapes of SQS's API model, in jansson).
    The protocols differ only on the wire, and s_protocol_t holds the
    difference; s_call does all the rest for both (the endpoint, SigV4 for
    service "sqs", the POST, the bounded answer, the error report):

    json    POST "/" of the endpoint, Content-Type application/x-amz-json-1.0,
            X-Amz-Target: AmazonSQS.<Action>, the document as the body.
            Errors: {"__type": "...#QueueDoesNotExist", "message": "..."}.
    query   POST the queue URL's path, Content-Type
            application/x-www-form-urlencoded; charset=utf-8, the body
            Action=<Action>&Version=2012-11-05&QueueUrl=...&<members>,
            percent-encoded ('+' for a space); lists flattened as Name.1,
            Name.2 ...
            Answers are XML, <ActionResponse><ActionResult>...</ActionResult>,
            parsed by libxml2 (which decodes the entities) and turned into
            the JSON shape; errors are <ErrorResponse><Error><Code>
            <Message>, reported as the JSON ones are.
*/
#include "engine/aws/sqs.h"
#include "engine/alloc.h"
#include "engine/aws/common.h"
#include "engine/aws/sqs_private.h"
#include "engine/buf.h"
#include "engine/trace.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_ANSWER_MAX (4 << 20)          //  10 messages of up to 256 KiB each, and room
#define S_FORM_MAX (8 << 20)            //  a query request: a 1 MiB batch percent-encoded (3 bytes a byte), and room
#define S_QUERY_VERSION "2012-11-05"    //  the API version every query request names

//  What differs between the protocols
typedef struct {
    const char *name;                   //  "json", "query": as configured
    const char *content_type;
    const char *format;                 //  what the answers are: "JSON", "XML"
    bool to_queue_path;                 //  POST to the queue URL's path, else to "/"
    bool target;                        //  send X-Amz-Target: AmazonSQS.<Action>
    //  The body for action with request (QueueUrl included): malloc'ed, or
    //  NULL with err. request stays the caller's.
    char *(*encode) (rp_sqs_t *self, const char *action, json_t *request, char *err, size_t errlen);
    //  A non-empty answer as a JSON-shaped document (caller owns), or NULL
    //  with why it could not be read.
    json_t *(*decode) (const char *data, size_t len, char *why, size_t whylen);
} s_protocol_t;

struct _rp_sqs_t {
    const s_protocol_t *protocol;       //  how requests and answers travel
    char *endpoint;                     //  "" when each queue URL tells
    char *region;
    char *access_key;
    char *secret_key;
    char *session_token;
    CURL *curl;
    rp_sqs_cancel_fn *cancel;           //  cuts a long poll short (NULL: never)
    void *cancel_arg;
};

void
rp_sqs_set_cancel (rp_sqs_t *self, rp_sqs_cancel_fn *fn, void *arg)
{
    self->cancel = fn;
    self->cancel_arg = arg;
}

//  CURLOPT_XFERINFOFUNCTION: non-zero aborts the transfer
static int
s_progress (void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
    rp_sqs_t *self = (rp_sqs_t *) arg;
    return self->cancel && self->cancel (self->cancel_arg) ? 1 : 0;
}

//  ---------------------------------------------------------------------------
//  JSON protocol: the documents as they are

static char *
s_json_encode (rp_sqs_t *self, const char *action, json_t *request, char *err, size_t errlen)
{
    (void) self;
    (void) action;
    char *body = json_dumps (request, JSON_COMPACT);
    if (!body)
        snprintf (err, errlen, "out of memory");
    return body;
}

static json_t *
s_json_decode (const char *data, size_t len, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *json = json_loadb (data, len, 0, &jerr);
    if (!json)
        snprintf (why, whylen, "%s", jerr.text);
    return json;
}

//  ---------------------------------------------------------------------------
//  Query protocol: requests form-encoded, answers XML

//  Append name=value to a form, value percent-encoded by curl (all but
//  A-Z a-z 0-9 - . _ ~) with '+' for a space, as forms serialize it (and
//  botocore does, so a server that re-serializes the form to check the
//  signature gets our bytes). 0, or -1 past the form's maximum (the form
//  says so: EMSGSIZE) or out of memory.
static int
s_form_add (rp_sqs_t *self, rp_buf_t *form, const char *name, const char *value)
{
    size_t len = strlen (value);
    if (len > S_FORM_MAX || len > (size_t) INT_MAX)
        return rp_buf_append (form, value, len);    //  cannot fit even unescaped: refused, nothing copied
    char *escaped = curl_easy_escape (self->curl, value, (int) len);
    if (!escaped)
        return -1;
    int rc = rp_buf_printf (form, "%s%s=", rp_buf_len (form) ? "&" : "", name);
    const char *rest = escaped;
    for (const char *space = strstr (rest, "%20"); rc == 0 && space; space = strstr (rest, "%20")) {
        rc = rp_buf_append (form, rest, (size_t) (space - rest)) || rp_buf_append (form, "+", 1);
        rest = space + 3;
    }
    if (rc == 0)
        rc = rp_buf_append_str (form, rest);
    curl_free (escaped);
    return rc ? -1 : 0;
}

//  A scalar member's value as the form carries it. Only strings, integers
//  and booleans are scalars our actions send.
static const char *
s_form_scalar (json_t *value, char buffer [32])
{
    if (json_is_integer (value)) {
        snprintf (buffer, 32, "%" JSON_INTEGER_FORMAT, json_integer_value (value));
        return buffer;
    }
    if (json_is_boolean (value))
        return json_is_true (value) ? "true" : "false";
    assert (json_is_string (value));        //  our own requests hold nothing else
    return json_string_value (value);
}

//  The name a list member's entries take in a query request: SQS names
//  them by the singular (AttributeNames: AttributeName.1, AttributeName.2
//  ...), and a batch's Entries <Action>RequestEntry.1.Id ...
static void
s_form_list_name (const char *action, const char *member, char *name, size_t len)
{
    size_t n = strlen (member);
    if (strcmp (member, "Entries") == 0)
        snprintf (name, len, "%sRequestEntry", action);
    else
    if (n > 1 && member [n - 1] == 's')
        snprintf (name, len, "%.*s", (int) n - 1, member);
    else
        snprintf (name, len, "%s", member);
}

static char *
s_query_encode (rp_sqs_t *self, const char *action, json_t *request, char *err, size_t errlen)
{
    rp_buf_t form;
    rp_buf_init (&form, S_FORM_MAX);
    int rc = s_form_add (self, &form, "Action", action);
    if (rc == 0)
        rc = s_form_add (self, &form, "Version", S_QUERY_VERSION);
    const char *member;
    json_t *value;
    json_object_foreach (request, member, value) {
        char scalar [32];
        if (rc)
            break;
        if (!json_is_array (value)) {
            rc = s_form_add (self, &form, member, s_form_scalar (value, scalar));
            continue;
        }
        char list [128];
        s_form_list_name (action, member, list, sizeof list);
        size_t index;
        json_t *entry;
        json_array_foreach (value, index, entry) {
            char name [256];
            if (rc)
                break;
            if (!json_is_object (entry)) {
                snprintf (name, sizeof name, "%s.%zu", list, index + 1);
                rc = s_form_add (self, &form, name, s_form_scalar (entry, scalar));
                continue;
            }
            const char *field;
            json_t *item;
            json_object_foreach (entry, field, item) {
                if (json_is_object (item)) {
                    //  A map (MessageSystemAttributes): <Entry>.1.MessageSystemAttribute.1.Name,
                    //  then .Value.<member> for each member of its value
                    char map [128];
                    s_form_list_name (action, field, map, sizeof map);
                    size_t k = 0;
                    const char *key;
                    json_t *members;
                    json_object_foreach (item, key, members) {
                        k++;
                        snprintf (name, sizeof name, "%s.%zu.%s.%zu.Name", list, index + 1, map, k);
                        if (rc == 0)
                            rc = s_form_add (self, &form, name, key);
                        const char *sub;
                        json_t *leaf;
                        json_object_foreach (members, sub, leaf) {
                            snprintf (name, sizeof name, "%s.%zu.%s.%zu.Value.%s", list, index + 1, map, k, sub);
                            if (rc == 0)
                                rc = s_form_add (self, &form, name, s_form_scalar (leaf, scalar));
                        }
                    }
                    continue;
                }
                snprintf (name, sizeof name, "%s.%zu.%s", list, index + 1, field);
                if (rc == 0)
                    rc = s_form_add (self, &form, name, s_form_scalar (item, scalar));
            }
        }
    }
    char *body = rc ? NULL : rp_buf_take (&form);
    if (!body) {
        if (rp_buf_error (&form) == EMSGSIZE)
            snprintf (err, errlen, "SQS %s: the request is over %d bytes", action, S_FORM_MAX);
        else
            snprintf (err, errlen, "out of memory");
    }
    rp_buf_free (&form);
    return body;
}

//  An element's first child element named name (local name: SQS's answers
//  carry a default namespace), or NULL.
static xmlNode *
s_xml_child (const xmlNode *element, const char *name)
{
    for (xmlNode *child = element ? element->children : NULL; child; child = child->next)
        if (child->type == XML_ELEMENT_NODE && strcmp ((const char *) child->name, name) == 0)
            return child;
    return NULL;
}

//  An element's text as a JSON string, entities decoded ("" when empty);
//  NULL when there is no element.
static json_t *
s_xml_text (const xmlNode *element)
{
    if (!element)
        return NULL;
    xmlChar *text = xmlNodeGetContent (element);
    json_t *string = json_string (text ? (const char *) text : "");
    xmlFree (text);
    return string;
}

//  True when an element's name ends with suffix
static bool
s_xml_name_ends (const xmlNode *element, const char *suffix)
{
    size_t len = strlen ((const char *) element->name), n = strlen (suffix);
    return len >= n && strcmp ((const char *) element->name + len - n, suffix) == 0;
}

//  The repeated elements of a query answer that are the JSON shape's lists
//  and maps (SQS's flattened members), by parent: the ones our actions read.
static const struct {
    const char *parent;
    const char *element;
    const char *member;                 //  the JSON protocol's name
    bool map;                           //  entries of <Name> and <Value>
} s_flattened [] = {
    { "ReceiveMessageResult",   "Message",                     "Messages",   false },
    { "Message",                "Attribute",                   "Attributes", true },
    { "SendMessageBatchResult", "SendMessageBatchResultEntry", "Successful", false },
    { "SendMessageBatchResult", "BatchResultErrorEntry",       "Failed",     false },
};

//  An element as JSON: its text when it holds no elements, else an object
//  of its children (by s_flattened for lists and maps; any other repeated
//  name keeps its last).
static json_t *
s_xml_json (const xmlNode *element)
{
    bool leaf = true;
    for (xmlNode *child = element->children; child && leaf; child = child->next)
        leaf = child->type != XML_ELEMENT_NODE;
    if (leaf)
        return s_xml_text (element);
    json_t *object = json_object ();
    for (xmlNode *child = element->children; child; child = child->next) {
        if (child->type != XML_ELEMENT_NODE)
            continue;
        const char *name = (const char *) child->name;
        size_t i = 0, n = sizeof s_flattened / sizeof s_flattened [0];
        while (i < n && (strcmp (s_flattened [i].parent, (const char *) element->name) != 0
                     ||  strcmp (s_flattened [i].element, name) != 0))
            i++;
        if (i == n) {
            json_object_set_new (object, name, s_xml_json (child));
            continue;
        }
        json_t *into = json_object_get (object, s_flattened [i].member);
        if (!into) {
            into = s_flattened [i].map ? json_object () : json_array ();
            json_object_set_new (object, s_flattened [i].member, into);
        }
        if (!s_flattened [i].map)
            json_array_append_new (into, s_xml_json (child));
        else {
            json_t *key = s_xml_text (s_xml_child (child, "Name"));
            json_t *entry = s_xml_text (s_xml_child (child, "Value"));
            if (key && entry)
                json_object_set (into, json_string_value (key), entry);
            json_decref (key);
            json_decref (entry);
        }
    }
    return object;
}

json_t *
rp_sqs_query_decode (const char *data, size_t len, char *why, size_t whylen)
{
    //  No network, no external entities; errors are returned, not printed
    xmlDoc *doc = xmlReadMemory (data, (int) len, "answer.xml", NULL,
                                 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *error = xmlGetLastError ();
        const char *message = error && error->message ? error->message : "unreadable";
        snprintf (why, whylen, "line %d: %.*s", error ? error->line : 0,
                  (int) strcspn (message, "\n"), message);
        return NULL;
    }
    xmlNode *root = xmlDocGetRootElement (doc);
    json_t *json = NULL;
    if (root && strcmp ((const char *) root->name, "ErrorResponse") == 0) {
        //  SQS answers <ErrorResponse><Error>; some servers nest it in <Errors>
        xmlNode *error = s_xml_child (root, "Error");
        if (!error)
            error = s_xml_child (s_xml_child (root, "Errors"), "Error");
        json = json_pack ("{s:o?, s:o?}", "__type", s_xml_text (s_xml_child (error, "Code")),
                          "message", s_xml_text (s_xml_child (error, "Message")));
    }
    else
    if (root) {
        //  <ActionResponse><ActionResult>: absent when the action answers nothing
        xmlNode *result = root->children;
        while (result && (result->type != XML_ELEMENT_NODE || !s_xml_name_ends (result, "Result")))
            result = result->next;
        json = result ? s_xml_json (result) : json_object ();
        if (!json_is_object (json)) {
            json_decref (json);
            json = json_object ();      //  an empty <ActionResult/>
        }
    }
    xmlFreeDoc (doc);
    if (!json)
        snprintf (why, whylen, "no document");
    return json;
}

static const s_protocol_t s_json = {
    .name = "json", .content_type = "application/x-amz-json-1.0", .format = "JSON",
    .to_queue_path = false, .target = true, .encode = s_json_encode, .decode = s_json_decode,
};
static const s_protocol_t s_query = {
    .name = "query", .content_type = "application/x-www-form-urlencoded; charset=utf-8", .format = "XML",
    .to_queue_path = true, .target = false, .encode = s_query_encode, .decode = rp_sqs_query_decode,
};

//  ---------------------------------------------------------------------------

rp_sqs_t *
rp_sqs_new (const rp_sqs_config_t *config, char *err, size_t errlen)
{
    const s_protocol_t *protocol = NULL;
    if (!config->protocol || !*config->protocol || strcmp (config->protocol, s_json.name) == 0)
        protocol = &s_json;
    else
    if (strcmp (config->protocol, s_query.name) == 0)
        protocol = &s_query;
    else {
        snprintf (err, errlen, "unknown SQS protocol \"%.40s\": use json or query", config->protocol);
        return NULL;
    }
    if (!config->region || !*config->region) {
        snprintf (err, errlen, "SQS needs a region: set AWS_REGION");
        return NULL;
    }
    if (!config->credentials.access_key || !*config->credentials.access_key
    ||  !config->credentials.secret_key || !*config->credentials.secret_key) {
        snprintf (err, errlen, "SQS needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
        return NULL;
    }
    //  libxml2's global set-up, before any parse; it takes its own global
    //  lock and runs once, so any thread may make a client
    if (protocol == &s_query)
        xmlInitParser ();
    rp_sqs_t *self = (rp_sqs_t *) rp_alloc (sizeof (rp_sqs_t));
    self->protocol = protocol;
    self->endpoint = rp_strdup (config->endpoint ? config->endpoint : "");
    self->region = rp_strdup (config->region);
    self->access_key = rp_strdup (config->credentials.access_key);
    self->secret_key = rp_strdup (config->credentials.secret_key);
    self->session_token = rp_strdup (config->credentials.session_token);
    self->curl = curl_easy_init ();
    if (!self->curl) {
        snprintf (err, errlen, "cannot start curl (out of memory)");
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

//  Where to POST for queue_url: the endpoint's scheme and authority, and
//  the path: "/" (JSON), or the queue URL's own path (query).
static int
s_endpoint (rp_sqs_t *self, const char *queue_url, char *scheme, size_t scheme_len, char *authority,
            size_t authority_len, char *path, size_t path_len, char *err, size_t errlen)
{
    const char *base = *self->endpoint ? self->endpoint : queue_url;
    if (rp_aws_split_url (base, scheme, scheme_len, authority, authority_len)) {
        snprintf (err, errlen, "the SQS queue URL or endpoint \"%.200s\" is not an http(s):// URL", base ? base : "");
        return -1;
    }
    snprintf (path, path_len, "/");
    if (self->protocol->to_queue_path) {
        const char *sep = queue_url ? strstr (queue_url, "://") : NULL;
        const char *start = sep ? sep + 3 + strcspn (sep + 3, "/") : "";
        int len = (int) strcspn (start, "?#");
        if (!sep || len == 0 || snprintf (path, path_len, "%.*s", len, start) >= (int) path_len) {
            snprintf (err, errlen, "the SQS queue URL \"%.200s\" has no path or too long a one",
                      queue_url ? queue_url : "");
            return -1;
        }
    }
    return 0;
}

//  One action: the answer as a JSON-shaped document (caller owns), or NULL
//  with err. Takes request (the action's members, QueueUrl added here).
static json_t *s_call_once (rp_sqs_t *self, const char *action, const char *queue_url, json_t *request,
                            char *err, size_t errlen);

//  A call, and its "SQS" subsegment when traced
static json_t *
s_call (rp_sqs_t *self, const char *action, const char *queue_url, json_t *request, char *err, size_t errlen)
{
    if (!rp_trace_active ())
        return s_call_once (self, action, queue_url, request, err, errlen);
    double start = rp_trace_now ();
    json_t *answer = s_call_once (self, action, queue_url, request, err, errlen);
    rp_trace_subsegment ("SQS", "aws", action, start, rp_trace_now (), answer ? 0 : -1,
                         json_pack ("{s:{s:s}}", "aws", "queue_url", queue_url));
    return answer;
}

static json_t *
s_call_once (rp_sqs_t *self, const char *action, const char *queue_url, json_t *request, char *err, size_t errlen)
{
    const s_protocol_t *protocol = self->protocol;
    char scheme [16], authority [256], path [512];
    if (s_endpoint (self, queue_url, scheme, sizeof scheme, authority, sizeof authority, path, sizeof path,
                    err, errlen)) {
        json_decref (request);
        return NULL;
    }
    json_object_set_new (request, "QueueUrl", json_string (queue_url));
    char *body = protocol->encode (self, action, request, err, errlen);
    json_decref (request);
    if (!body)
        return NULL;
    char sha [65], target [96];
    rp_sigv4_sha256_hex (body, strlen (body), sha);
    snprintf (target, sizeof target, "AmazonSQS.%s", action);
    rp_aws_param_t headers [] = { { "content-type", protocol->content_type }, { "x-amz-target", target } };
    rp_aws_credentials_t creds = { self->access_key, self->secret_key, self->session_token };
    rp_sigv4_request_t sign = {
        .method = "POST", .host = authority, .path = path, .headers = headers,
        .header_count = protocol->target ? 2 : 1, .payload_sha256 = sha, .region = self->region,
        .service = "sqs", .double_encode = true, .when = time (NULL),
    };
    char authorization [RP_SIGV4_AUTH_MAX], amz_date [RP_SIGV4_DATE_MAX];
    if (rp_sigv4_authorization (&sign, &creds, authorization, amz_date, err, errlen)) {
        free (body);
        return NULL;
    }
    char url [800], h_auth [RP_SIGV4_AUTH_MAX + 32], h_date [64], h_type [96], h_target [128], h_token [4096];
    snprintf (url, sizeof url, "%s://%s%s", scheme, authority, path);
    snprintf (h_auth, sizeof h_auth, "Authorization: %s", authorization);
    snprintf (h_date, sizeof h_date, "x-amz-date: %s", amz_date);
    snprintf (h_type, sizeof h_type, "Content-Type: %s", protocol->content_type);
    snprintf (h_target, sizeof h_target, "X-Amz-Target: %s", target);
    struct curl_slist *list = curl_slist_append (NULL, "Expect:");
    list = curl_slist_append (list, h_type);
    if (protocol->target)
        list = curl_slist_append (list, h_target);
    list = curl_slist_append (list, h_auth);
    list = curl_slist_append (list, h_date);
    if (self->session_token) {
        snprintf (h_token, sizeof h_token, "x-amz-security-token: %s", self->session_token);
        list = curl_slist_append (list, h_token);
    }
    CURL *curl = self->curl;
    curl_easy_reset (curl);
    rp_buf_t answer;
    rp_buf_init (&answer, S_ANSWER_MAX);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, 40L);      //  a 20 s long poll, and room
    if (rp_aws_ca_bundle ())
        curl_easy_setopt (curl, CURLOPT_CAINFO, rp_aws_ca_bundle ());
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen (body));
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, rp_buf_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt (curl, CURLOPT_NOPROGRESS, self->cancel ? 0L : 1L);
    curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, s_progress);
    curl_easy_setopt (curl, CURLOPT_XFERINFODATA, self);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all (list);
    free (body);
    if (rc != CURLE_OK) {
        snprintf (err, errlen, "cannot reach SQS at %s: %s", authority,
                  rp_buf_error (&answer) == EMSGSIZE ? "the answer is too big"
                  : rp_buf_error (&answer) ? strerror (rp_buf_error (&answer))
                  : rc == CURLE_ABORTED_BY_CALLBACK ? "cancelled (stopping)" : curl_easy_strerror (rc));
        rp_buf_free (&answer);
        return NULL;
    }
    char why [256] = "";
    json_t *json = rp_buf_len (&answer) ? protocol->decode (rp_buf_data (&answer), rp_buf_len (&answer), why, sizeof why)
                                        : json_object ();
    if (status < 200 || status >= 300) {
        const char *type = json_string_value (json_object_get (json, "__type"));
        const char *message = json_string_value (json_object_get (json, "message"));
        if (!message)
            message = json_string_value (json_object_get (json, "Message"));
        const char *hash = type ? strrchr (type, '#') : NULL;
        if (json)
            snprintf (err, errlen, "SQS %s %s: %ld %s%s%s", action, queue_url, status,
                      hash ? hash + 1 : type ? type : "", message ? ": " : "", message ? message : "");
        else                            //  not SQS's own answer (a proxy's?): show its start
            snprintf (err, errlen, "SQS %s %s: %ld and an answer that is not %s: %.160s", action, queue_url,
                      status, protocol->format, rp_buf_data (&answer));
        rp_buf_free (&answer);
        json_decref (json);
        return NULL;
    }
    rp_buf_free (&answer);
    if (!json_is_object (json)) {
        snprintf (err, errlen, "SQS %s %s: the answer is not %s%s%s", action, queue_url, protocol->format,
                  *why ? ": " : "", why);
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
    json_t *request = json_pack ("{s:i, s:i, s:[s, s]}", "MaxNumberOfMessages", max, "WaitTimeSeconds", wait_s,
                                 "AttributeNames", "ApproximateReceiveCount", "AWSTraceHeader");
    if (visibility_s > 0)
        json_object_set_new (request, "VisibilityTimeout", json_integer (visibility_s));
    json_t *answer = s_call (self, "ReceiveMessage", queue_url, request, err, errlen);
    if (!answer)
        return -1;
    int rc = rp_sqs_receive_read (answer, queue_url, messages, count, err, errlen);
    json_decref (answer);
    return rc;
}

//  ApproximateReceiveCount as SQS writes it, a whole number from 1; the
//  first receive (1) when it is absent or anything else, INT_MAX past it.
static int
s_receive_count (const char *text)
{
    if (!text)
        return 1;
    char *end = NULL;
    long long value = strtoll (text, &end, 10);         //  out of range: LLONG_MIN or _MAX
    if (end == text || *end || value < 1)
        return 1;
    return value > INT_MAX ? INT_MAX : (int) value;
}

int
rp_sqs_receive_read (json_t *answer, const char *queue_url, rp_sqs_message_t **messages,
                     size_t *count, char *err, size_t errlen)
{
    *messages = NULL;
    *count = 0;
    json_t *list = json_object_get (answer, "Messages");
    size_t n = json_is_array (list) ? json_array_size (list) : 0;
    //  n is SQS's (at most max, in an answer of at most S_ANSWER_MAX)
    rp_sqs_message_t *out = n ? (rp_sqs_message_t *) calloc (n, sizeof (rp_sqs_message_t)) : NULL;
    if (n && !out) {
        snprintf (err, errlen, "SQS ReceiveMessage %s: out of memory for %zu messages", queue_url, n);
        return -1;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get (list, i);
        const char *id = json_string_value (json_object_get (item, "MessageId"));
        const char *receipt = json_string_value (json_object_get (item, "ReceiptHandle"));
        const char *body = json_string_value (json_object_get (item, "Body"));
        if (!id || !receipt || !body)
            continue;                   //  not a message we can act on
        const char *received = json_string_value (json_object_get (json_object_get (item, "Attributes"),
                                                                   "ApproximateReceiveCount"));
        out [kept].id = rp_strdup (id);
        out [kept].receipt = rp_strdup (receipt);
        out [kept].body = rp_strdup (body);
        out [kept].receive_count = s_receive_count (received);
        const char *trace = json_string_value (json_object_get (json_object_get (item, "Attributes"),
                                                                "AWSTraceHeader"));
        out [kept].trace_header = trace ? rp_strdup (trace) : NULL;
        kept++;
    }
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
        free ((*messages) [i].trace_header);
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
                   const char *trace_header, size_t *failed, char *err, size_t errlen)
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
        json_t *entry = json_pack ("{s:s, s:s}", "Id", id, "MessageBody", bodies [i]);
        if (trace_header && *trace_header)
            json_object_set_new (entry, "MessageSystemAttributes",
                                 json_pack ("{s:{s:s, s:s}}", "AWSTraceHeader", "DataType", "String",
                                            "StringValue", trace_header));
        json_array_append_new (entries, entry);
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
