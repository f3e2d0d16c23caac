# One environment's settings; environments/dev.tfvars and prod.tfvars set
# them. Names of things come from deploy/ecs (main.tf), not from here.

variable "environment" {
  description = "The environment's name: rapid-photo-<environment>-cluster, -backend, -db, -dashboard"
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment: 2 to 16 lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "region" {
  description = "The AWS region"
  type        = string
  default     = "us-east-1"
}

variable "image_tag" {
  description = "The image tag of the first task definition revisions; later releases register their own (deploy/ecs/README.md)"
  type        = string
}

# ---- network

variable "vpc_cidr" {
  description = "The VPC's address range: a /16 splits into public and private /20s"
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Availability zones used, 2 or more"
  type        = number
  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count: 2 to 4 (the load balancer and the database need two)."
  }
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per zone (each zone keeps its way out when another fails), or one for all"
  type        = bool
}

variable "broker_remote_workers" {
  description = "Open the pipeline's broker ports (5570, 5571) to a 'broker-clients' security group, for remote `rapidphoto worker`s with CURVE keys; off: no inbound at all"
  type        = bool
  default     = false
}

# ---- database

variable "db_engine_version" {
  description = "PostgreSQL major version (15 or 16); minor versions are upgraded by RDS"
  type        = string
  default     = "16"
  validation {
    condition     = contains(["15", "16"], var.db_engine_version)
    error_message = "db_engine_version: 15 or 16."
  }
}

variable "db_instance_class" {
  description = "The RDS instance class"
  type        = string
}

variable "db_allocated_storage" {
  description = "Initial storage, GiB"
  type        = number
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling, GiB"
  type        = number
}

variable "db_multi_az" {
  description = "A standby in a second zone"
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Automated backups kept, days (1-35)"
  type        = number
  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days: 1 to 35."
  }
}

# ---- storage and queues

variable "web_origins" {
  description = "Origins the web app is served from (the bucket's CORS: GET/HEAD downloads, PUT presigned uploads)"
  type        = list(string)
  validation {
    condition     = alltrue([for o in var.web_origins : can(regex("^https?://[^/]+$", o))])
    error_message = "web_origins: scheme and host only, e.g. https://photos.example.com."
  }
}

variable "uploads_expire_days" {
  description = "Objects under uploads/ (presigned uploads) older than this are deleted: adopted ones are moved away at once, the rest were abandoned"
  type        = number
}

variable "multipart_abort_days" {
  description = "Incomplete multipart uploads are aborted after this many days"
  type        = number
  default     = 1
}

variable "noncurrent_version_days" {
  description = "Deleted or replaced object versions are kept this many days"
  type        = number
}

variable "ingest_max_receive_count" {
  description = "Receives of an S3 notification before it goes to the dead-letter queue"
  type        = number
  default     = 5
}

variable "queue_retention_days" {
  description = "How long the ingest and events queues keep a message, days"
  type        = number
  default     = 4
}

variable "dlq_retention_days" {
  description = "How long the dead-letter queue keeps a message, days (at most 14)"
  type        = number
  default     = 14
}

# ---- compute

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener; empty: HTTP only (not allowed in prod)"
  type        = string
  validation {
    condition     = var.certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn: an ACM certificate ARN, or empty."
  }
  validation {
    condition     = var.environment != "prod" || var.certificate_arn != ""
    error_message = "certificate_arn: prod serves HTTPS only: set the ARN of the certificate for its domain."
  }
}

variable "api_health_check_path" {
  description = "The target group's health check: /healthz (the process answers; ECS replaces a task whose target fails it) or /readyz (database and S3 answer too: an outage of either would make ECS replace every API task)"
  type        = string
  default     = "/healthz"
  validation {
    condition     = contains(["/readyz", "/healthz"], var.api_health_check_path)
    error_message = "api_health_check_path: /readyz or /healthz."
  }
}

variable "alb_idle_timeout_s" {
  description = "Seconds a connection may stay silent (a slow upload between two chunks)"
  type        = number
  default     = 120
}

variable "api_count" {
  description = "The API service's task count: desired at creation, and the autoscaling bounds"
  type        = object({ desired = number, min = number, max = number })
}

variable "pipeline_count" {
  description = "The processing service's task count: desired at creation, and the autoscaling bounds"
  type        = object({ desired = number, min = number, max = number })
}

variable "api_cpu_target" {
  description = "The API's average CPU utilisation autoscaling holds, percent"
  type        = number
}

variable "api_requests_per_target" {
  description = "The API's requests per task per minute autoscaling holds (ALBRequestCountPerTarget)"
  type        = number
}

variable "pipeline_cpu_target" {
  description = "The processing service's average CPU utilisation autoscaling holds, percent"
  type        = number
}

variable "pipeline_backlog_per_task" {
  description = "Photos waiting (queued rows and S3 notifications in the ingest queue) per processing task that autoscaling holds"
  type        = number
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention, days (one of CloudWatch's values)"
  type        = number
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

# ---- monitoring

variable "alarm_email" {
  description = "Where alarms are sent (an SNS email subscription, confirmed by its owner)"
  type        = string
}

variable "alarm_5xx_percent" {
  description = "Alarm when more than this percent of the API's responses are 5xx"
  type        = number
}

variable "alarm_p95_latency_s" {
  description = "Alarm when the API's p95 response time exceeds this, seconds"
  type        = number
}

variable "alarm_oldest_message_s" {
  description = "Alarm when the ingest queue's oldest message is older than this, seconds"
  type        = number
}

variable "alarm_cpu_percent" {
  description = "Alarm when a service's average CPU exceeds this, percent"
  type        = number
}

variable "alarm_evaluation_periods" {
  description = "Consecutive 1-minute periods over a threshold before an alarm fires"
  type        = number
  default     = 5
}

# ---- the image processor on Lambda

variable "image_processor_mode" {
  description = "The image-processor Lambda function (rapid-photo-<env>-image-processor, `rapidphoto lambda`) on the ingest queue: off; beside (the pipeline tasks' ingest bridges and the function share the S3 notifications); instead (the function alone takes them: the pipeline tasks start no ingest bridge and scale on the API's queued photos only)"
  type        = string
  default     = "off"
  validation {
    condition     = contains(["off", "beside", "instead"], var.image_processor_mode)
    error_message = "image_processor_mode: off, beside or instead."
  }
}

variable "image_processor_memory_mb" {
  description = "The function's memory, MB; its CPU share grows with it (1769 MB: one vCPU)"
  type        = number
  default     = 2048
  validation {
    condition     = var.image_processor_memory_mb >= 128 && var.image_processor_memory_mb <= 10240
    error_message = "image_processor_memory_mb: 128 to 10240."
  }
}

variable "image_processor_timeout_s" {
  description = "Seconds one invocation (a batch) may take; at most the ingest queue's visibility timeout (sqs.visibility_s)"
  type        = number
  default     = 60
  validation {
    condition     = var.image_processor_timeout_s >= 10 && var.image_processor_timeout_s <= 900
    error_message = "image_processor_timeout_s: 10 to 900."
  }
}

variable "image_processor_ephemeral_storage_mb" {
  description = "/tmp for the function, MB: RAPIDPHOTO_DATA_DIR=/tmp/rapidphoto holds a batch's originals and derivatives"
  type        = number
  default     = 2048
  validation {
    condition     = var.image_processor_ephemeral_storage_mb >= 512 && var.image_processor_ephemeral_storage_mb <= 10240
    error_message = "image_processor_ephemeral_storage_mb: 512 to 10240."
  }
}

variable "image_processor_reserved_concurrency" {
  description = "Concurrent executions reserved for the function, and its ceiling (each holds a database connection)"
  type        = number
  default     = 10
  validation {
    condition     = var.image_processor_reserved_concurrency >= var.image_processor_maximum_concurrency
    error_message = "image_processor_reserved_concurrency: at least image_processor_maximum_concurrency, or the mapping's invocations are throttled and their messages return to the queue."
  }
}

variable "image_processor_batch_size" {
  description = "S3 notifications per invocation, at most (1 to 10000; over 10 needs a batching window)"
  type        = number
  default     = 10
  validation {
    condition     = var.image_processor_batch_size >= 1 && var.image_processor_batch_size <= 10000
    error_message = "image_processor_batch_size: 1 to 10000."
  }
  validation {
    condition     = var.image_processor_batch_size <= 10 || var.image_processor_batching_window_s >= 1
    error_message = "image_processor_batch_size: over 10 needs image_processor_batching_window_s of 1 or more (an SQS rule)."
  }
}

variable "image_processor_batching_window_s" {
  description = "Seconds the event source mapping may wait to fill a batch (0 to 300)"
  type        = number
  default     = 0
  validation {
    condition     = var.image_processor_batching_window_s >= 0 && var.image_processor_batching_window_s <= 300
    error_message = "image_processor_batching_window_s: 0 to 300."
  }
}

variable "image_processor_maximum_concurrency" {
  description = "Concurrent invocations the event source mapping starts, at most (2 to 1000)"
  type        = number
  default     = 5
  validation {
    condition     = var.image_processor_maximum_concurrency >= 2 && var.image_processor_maximum_concurrency <= 1000
    error_message = "image_processor_maximum_concurrency: 2 to 1000."
  }
}
