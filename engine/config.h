/*  engine/config.h: the engine's settings, read once at start-up.

    Sources, later ones winning: built-in defaults, the INI file given with
    --config, then environment variables RAPIDPHOTO_<SECTION>_<KEY>. An
    unknown key or a bad value stops start-up with a message that names it;
    a retired key is ignored with a warning.
    After loading, the struct is plain data: actors get a copy and never
    share it.
*/
#ifndef RP_CONFIG_H
#define RP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_DERIVATIVES_MAX 8
#define RP_STR_MAX 512
//  broker.curve_clients holds up to 99 keys (40 characters and a comma each)
#define RP_CURVE_CLIENTS_MAX 4096

//  One derivative the resize actor makes: "<format> <quality> <W>x<H>",
//  e.g. "webp 80 256x256". The image is fitted inside W x H, never enlarged.
typedef struct {
    char name [32];             //  thumbnail, preview, or any other name
    char format [8];            //  webp, jpeg, png or avif
    int quality;                //  1..100
    int width;                  //  bounding box
    int height;
} rp_derivative_t;

typedef struct {
    //  [http]
    char http_listen [RP_STR_MAX];          //  host:port the gateway listens on
    int64_t http_max_connections;           //  open connections in all
    int64_t http_max_connections_per_address;  //  from one client address; 0: no limit
    int64_t http_max_streams;               //  open event streams in all (< max_connections)
    int64_t http_max_streams_per_user;      //  open event streams of one user
    char http_trusted_proxies [RP_STR_MAX]; //  addresses whose X-Forwarded-For is believed
    //  [data]
    char data_dir [RP_STR_MAX];             //  where local state lives
    //  [db]
    char db_url [RP_STR_MAX];               //  sqlite:<path> or postgresql://...
    //  [storage]
    char storage_backend [16];              //  disk or s3
    char storage_s3_bucket [RP_STR_MAX];
    char storage_s3_prefix [RP_STR_MAX];
    int storage_s3_stream;                  //  uploads of 8 MiB and more go to S3 while they arrive
    //  [auth]
    char auth_jwt_secret [RP_STR_MAX];      //  empty: generated into data.dir; else >= 32 bytes
    int64_t auth_token_ttl;                 //  seconds
    int auth_login_failures;                //  failed logins per (address, user name) a minute
    int auth_login_failures_per_user;       //  ... per user name, from anywhere
    int auth_login_failures_per_address;    //  ... per client address (IPv6: its /64)
    int auth_password_checks;               //  password checks at once; 0 = cores
    //  [metrics]
    char metrics_token [RP_STR_MAX];        //  set: /metrics wants it as a Bearer token
    int metrics_emf;                        //  1: CloudWatch EMF documents on stdout (engine/emf.h)
    char metrics_emf_namespace [256];       //  their CloudWatch namespace
    int64_t metrics_emf_interval_s;         //  one batch of documents per this many seconds
    //  [limits]
    int64_t limits_max_upload_bytes;
    int64_t limits_max_request_bytes;       //  one multipart upload's body, all its files
    int64_t limits_max_pixels;
    int limits_fail_on;                     //  VipsFailOn value (0 none .. 3 warning)
    //  [pools]: worker threads per job kind
    int pools_resize;
    int pools_exif;
    int pools_vips_concurrency;             //  libvips threads per job; 0 = auto
    int pools_nice;                         //  workers' niceness over the HTTP threads' (0 = none)
    //  [broker]
    char broker_frontend [RP_STR_MAX];      //  tcp endpoint producers use (broker role)
    char broker_backend [RP_STR_MAX];       //  tcp endpoint workers use (broker role)
    int64_t broker_heartbeat_ms;            //  heartbeat interval, both ways
    int broker_liveness;                    //  heartbeats missed before a peer is dead
    int64_t broker_job_timeout_ms;          //  a job running longer is sent again
    int broker_max_attempts;                //  tries before a lost job fails
    int64_t broker_drain_ms;                //  how long shutdown waits for work in flight
    int64_t broker_queue_max;               //  jobs waiting per kind; a SUBMIT past it fails at once
    int64_t broker_queue_expiry_ms;         //  a kind with no worker fails its jobs after this; 0 = job_timeout_ms
    //  [broker] CURVE (engine/link.h): Z85 keys, "" when unset; a setting
    //  may name a file ("@/path") that holds them
    char broker_curve_secret_key [48];      //  the broker's secret key: its ports require CURVE
    char broker_curve_clients [RP_CURVE_CLIENTS_MAX];  //  public keys allowed in, comma-separated
    char broker_curve_server_key [48];      //  clients: the broker's public key
    char broker_curve_client_secret_key [48];  //  clients: our secret key
    int broker_trust_network;               //  1: tcp beyond loopback without CURVE is allowed
    //  [pipeline]: the photo state machine
    int pipeline_max_attempts;              //  processing tries before a photo fails
    int64_t pipeline_retry_base_ms;         //  backoff: base * 2^(attempt-1)
    int pipeline_in_flight;                 //  photos processed at once; 0 = auto
    //  [uploads]: resumable (tus) uploads
    int64_t uploads_tus_expire_s;           //  an unfinished upload is kept this long
    int64_t uploads_tus_lock_s;             //  a silent request's hold on an upload lapses after this
    int64_t uploads_max_open_per_user;      //  unfinished resumable and presigned uploads of a user
    //  [storage] housekeeping
    int64_t storage_orphan_grace_s;         //  temp files and unreferenced bytes older than this go
    //  [scrub]: the background bit-rot check on serve and pipeline
    int64_t scrub_rate_mb_s;                //  originals re-read at most this fast; 0 = off
    int64_t scrub_recheck_s;                //  an address is checked again this long after its last check
    //  [derivatives]
    rp_derivative_t derivatives [RP_DERIVATIVES_MAX];
    int derivative_count;
    //  [sqs]
    char sqs_ingest_queue_url [RP_STR_MAX];
    char sqs_events_queue_url [RP_STR_MAX];
    char sqs_protocol [8];                  //  json or query
    int64_t sqs_visibility_s;               //  how long a received ingest message stays hidden
    int64_t sqs_wait_s;                     //  long poll (0..20 s)
    //  [shutdown]: SIGTERM drains (engine/drain.h), then stops
    int64_t shutdown_timeout_s;             //  the process is gone within this (ECS: under stopTimeout)
    //  [lambda]: `rapidphoto lambda` (app/cmd_lambda.c)
    int64_t lambda_deadline_margin_ms;      //  stop waiting this long before an invocation's deadline
    //  [log]
    int log_level;
    int log_output;                         //  rp_log_output_t: stderr or stdout
    int log_format;                         //  rp_log_format_t: text or json
    //  [tracing]: X-Ray (engine/trace.h); segments go to AWS_XRAY_DAEMON_ADDRESS
    double tracing_sample_rate;             //  the share of new traces sampled (0..1)
} rp_config_t;

//  Fill `config` with the built-in defaults.
void rp_config_defaults (rp_config_t *config);

//  Load defaults, then `path` (may be NULL), then the environment. On error
//  returns -1 and writes one line naming the file, key or variable to `err`;
//  `config` is then undefined.
int rp_config_load (rp_config_t *config, const char *path, char *err, size_t errlen);

//  Set one key ("section.key") from text, validating it; 0 or -1 with err.
//  A retired key (pools.store) changes nothing: 0, with a warning logged.
int rp_config_set (rp_config_t *config, const char *section, const char *key,
                   const char *value, char *err, size_t errlen);

//  Parse a derivative spec "webp 80 256x256" into `d` (name untouched).
int rp_derivative_parse (rp_derivative_t *d, const char *spec, char *err, size_t errlen);

//  A derivative format's file name extension ("jpg" for jpeg) and media
//  type; NULL for an unknown format.
const char *rp_derivative_ext (const char *format, const char **mime);

#endif
