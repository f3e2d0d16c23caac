variable "partition" {
  description = "aws, aws-cn, aws-us-gov"
  type        = string
}

variable "region" {
  description = "The region"
  type        = string
}

variable "account_id" {
  description = "The account"
  type        = string
}

variable "execution_role_name" {
  description = "The task definitions' executionRoleArn's name"
  type        = string
}

variable "task_role_names" {
  description = "Each role's (api, pipeline) taskRoleArn's name"
  type        = map(string)
  validation {
    condition     = toset(keys(var.task_role_names)) == toset(["api", "pipeline"])
    error_message = "task_role_names: one for api and one for pipeline."
  }
}

variable "ecr_repository_name" {
  description = "The image's repository"
  type        = string
}

variable "log_group_names" {
  description = "The containers' awslogs groups"
  type        = list(string)
}

variable "parameter_arns" {
  description = "The SSM parameters the containers' secrets come from"
  type        = list(string)
}

variable "bucket_arn" {
  description = "The photo bucket"
  type        = string
}

variable "s3_prefix" {
  description = "storage.s3_prefix: the engine's keys start with it"
  type        = string
}

variable "ingest_queue_arn" {
  description = "The ingest queue"
  type        = string
}

variable "events_queue_arn" {
  description = "The events queue"
  type        = string
}

variable "image_processor" {
  description = "The image-processor Lambda function's role name, log group and environment key; null: no function, no role"
  type = object({
    role_name      = string
    log_group_name = string
    kms_key_arn    = string
  })
  default = null
}
