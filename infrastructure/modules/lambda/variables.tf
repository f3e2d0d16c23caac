variable "name" {
  description = "rapid-photo-<env>: the function is <name>-image-processor"
  type        = string
}

variable "image_uri" {
  description = "The first image (<repository>:<tag>); releases replace it with update-function-code"
  type        = string
}

variable "role_arn" {
  description = "The function's execution role (the iam module)"
  type        = string
}

variable "environment" {
  description = "RAPIDPHOTO_* settings, as the pipeline tasks have them (the database URL is added here)"
  type        = map(string)
}

variable "database_url" {
  description = "db.url (RAPIDPHOTO_DB_URL), encrypted in the function's environment with its own KMS key"
  type        = string
  sensitive   = true
}

variable "subnet_ids" {
  description = "The private subnets: the function's network interfaces"
  type        = list(string)
}

variable "security_group_id" {
  description = "The function's security group (the network module), admitted to the database"
  type        = string
}

variable "log_group_name" {
  description = "/aws/lambda/<function name>"
  type        = string
}

variable "log_retention_days" {
  description = "The log group's retention, days"
  type        = number
}

variable "memory_mb" {
  description = "Memory, MB (CPU grows with it: 1769 MB is one vCPU)"
  type        = number
}

variable "timeout_s" {
  description = "Seconds one invocation (one batch) may take"
  type        = number
}

variable "ephemeral_storage_mb" {
  description = "/tmp, MB (512 to 10240)"
  type        = number
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for (and the most allowed to) the function"
  type        = number
}

variable "ingest_queue_arn" {
  description = "The ingest queue: the event source"
  type        = string
}

variable "queue_visibility_s" {
  description = "The ingest queue's visibility timeout; the function's timeout may not exceed it"
  type        = number
}

variable "batch_size" {
  description = "S3 notifications per invocation, at most"
  type        = number
}

variable "batching_window_s" {
  description = "Seconds the mapping may wait to fill a batch"
  type        = number
}

variable "maximum_concurrency" {
  description = "Concurrent invocations the mapping starts, at most"
  type        = number
}
