variable "name" {
  description = "rapid-photo-<env>"
  type        = string
}

variable "ecs_dir" {
  description = "deploy/ecs: the services' templates"
  type        = string
}

variable "ecs_vars" {
  description = "The templates' ENV, AWS_REGION, AWS_ACCOUNT_ID, IMAGE_TAG"
  type        = map(string)
}

variable "task_definitions" {
  description = "deploy/ecs/task-definitions/*.json rendered and decoded, by role (api, pipeline)"
  type        = any
}

variable "ecr_repository_name" {
  description = "The image's repository"
  type        = string
}

variable "log_group_names" {
  description = "The containers' awslogs groups"
  type        = list(string)
}

variable "log_retention_days" {
  description = "Log retention, days"
  type        = number
}

variable "secret_parameters" {
  description = "Secret name => the SSM parameter ARN the task definitions read it from"
  type        = map(string)
}

variable "database_url" {
  description = "RAPIDPHOTO_DB_URL"
  type        = string
  sensitive   = true
}

variable "bucket_name" {
  description = "The photo bucket"
  type        = string
}

variable "execution_role_arn" {
  description = "The task execution role"
  type        = string
}

variable "task_role_arns" {
  description = "Task role per role (api, pipeline)"
  type        = map(string)
}

variable "vpc_id" {
  description = "The VPC"
  type        = string
}

variable "public_subnet_ids" {
  description = "The load balancer's subnets"
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "The tasks' subnets"
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "The load balancer's group"
  type        = string
}

variable "task_security_group_ids" {
  description = "Security group per role (api, pipeline)"
  type        = map(string)
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS; empty: HTTP only"
  type        = string
}

variable "health_check_path" {
  description = "The target group's health check path"
  type        = string
}

variable "alb_idle_timeout_s" {
  description = "The load balancer's idle timeout, seconds"
  type        = number
}

variable "api_count" {
  description = "desired, min, max API tasks"
  type        = object({ desired = number, min = number, max = number })
}

variable "pipeline_count" {
  description = "desired, min, max processing tasks"
  type        = object({ desired = number, min = number, max = number })
}

variable "api_cpu_target" {
  description = "API CPU target, percent"
  type        = number
}

variable "api_requests_per_target" {
  description = "API requests per task per minute target"
  type        = number
}

variable "pipeline_cpu_target" {
  description = "Processing CPU target, percent"
  type        = number
}

variable "pipeline_backlog_per_task" {
  description = "Ingest messages waiting per processing task target"
  type        = number
}

variable "ingest_queue_name" {
  description = "The ingest queue, whose backlog scales the processing"
  type        = string
}

variable "metrics_namespace" {
  description = "The engine's EMF namespace (metrics.emf_namespace), whose QueueDepth scales the processing"
  type        = string
}

variable "pipeline_takes_ingest" {
  description = "The pipeline tasks take the ingest queue's S3 notifications (false: the image-processor Lambda function does, image_processor_mode = instead)"
  type        = bool
  default     = true
}
