# dev: one NAT gateway, a small single-zone database, few tasks, short
# retention. terraform plan -var-file=environments/dev.tfvars -out=tfplan
environment = "dev"
region      = "us-east-1"
image_tag   = "v1.0.0"

vpc_cidr           = "10.40.0.0/16"
az_count           = 2
nat_gateway_per_az = false

db_engine_version        = "16"
db_instance_class        = "db.t4g.micro"
db_allocated_storage     = 20
db_max_allocated_storage = 50
db_multi_az              = false
db_backup_retention_days = 3

web_origins             = ["http://localhost:8080"]
uploads_expire_days     = 2
multipart_abort_days    = 1
noncurrent_version_days = 7
ingest_max_receive_count = 5

# dev: HTTP on port 80 only, no certificate
certificate_arn       = ""
api_health_check_path = "/healthz"

api_count                 = { desired = 1, min = 1, max = 2 }
pipeline_count            = { desired = 1, min = 1, max = 2 }
api_cpu_target            = 60
api_requests_per_target   = 1000
pipeline_cpu_target       = 70
pipeline_backlog_per_task = 100

# The image-processor Lambda function (README: "The image processor on Lambda")
image_processor_mode                 = "instead"
image_processor_memory_mb            = 2048
image_processor_timeout_s            = 60
image_processor_ephemeral_storage_mb = 2048
image_processor_reserved_concurrency = 4
image_processor_batch_size           = 10
image_processor_batching_window_s    = 0
image_processor_maximum_concurrency  = 2

log_retention_days        = 7

alarm_email              = "rapid-photo-dev-alarms@example.com"
alarm_5xx_percent        = 5
alarm_p95_latency_s      = 3
alarm_oldest_message_s   = 900
alarm_cpu_percent        = 90
alarm_evaluation_periods = 5
