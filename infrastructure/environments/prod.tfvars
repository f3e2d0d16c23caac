# prod: a NAT gateway and a task per zone in three zones, a Multi-AZ
# database kept 14 days with deletion protection (main.tf), HTTPS only.
# Set certificate_arn (plan refuses prod without it), web_origins and
# alarm_email for the real domain before the first plan.
environment = "prod"
region      = "us-east-1"
image_tag   = "v1.0.0"

vpc_cidr           = "10.41.0.0/16"
az_count           = 3
nat_gateway_per_az = true

db_engine_version        = "16"
db_instance_class        = "db.m7g.large"
db_allocated_storage     = 100
db_max_allocated_storage = 1000
db_multi_az              = true
db_backup_retention_days = 14

web_origins             = ["https://photos.example.com"]
uploads_expire_days     = 7
multipart_abort_days    = 1
noncurrent_version_days = 30
ingest_max_receive_count = 5

# The ACM certificate for the domain of web_origins
certificate_arn       = ""
api_health_check_path = "/healthz"

api_count                 = { desired = 3, min = 3, max = 12 }
pipeline_count            = { desired = 3, min = 3, max = 20 }
api_cpu_target            = 60
api_requests_per_target   = 2000
pipeline_cpu_target       = 60
pipeline_backlog_per_task = 50

# The image-processor Lambda function (README: "The image processor on Lambda")
image_processor_mode                 = "beside"
image_processor_memory_mb            = 3008
image_processor_timeout_s            = 60
image_processor_ephemeral_storage_mb = 4096
image_processor_reserved_concurrency = 50
image_processor_batch_size           = 10
image_processor_batching_window_s    = 1
image_processor_maximum_concurrency  = 40

log_retention_days        = 90

alarm_email              = "rapid-photo-oncall@example.com"
alarm_5xx_percent        = 1
alarm_p95_latency_s      = 1.5
alarm_oldest_message_s   = 600
alarm_cpu_percent        = 85
alarm_evaluation_periods = 3
