# RapidPhotoUpload on AWS: one environment (environments/<env>.tfvars).
#
#   terraform init
#   terraform plan -var-file=environments/dev.tfvars -out=tfplan
#   terraform apply tfplan
#
# The containers' settings have ONE source: deploy/ecs/task-definitions/*.json
# and deploy/ecs/services/*.json, the files deploy/ecs/render.py fills for
# the runbook's releases. Terraform fills the same ${NAME} placeholders with
# templatefile() and takes from the result both what it registers (the
# container definitions as written there, the task's size, the service's
# deployment settings) and the names of everything the containers use: the
# bucket, the queues, the IAM roles, the log group, the ECR repository and
# the SSM parameters the secrets come from. A name changed there changes
# here; nothing is written twice.

# State: kept locally until the S3 backend below is filled in and enabled
# (the bucket and the lock table made once, by hand, per account; then
# `terraform init -migrate-state`).
#
# terraform {
#   backend "s3" {
#     bucket       = "rapid-photo-terraform-state-<account id>"
#     key          = "rapid-photo/<env>/terraform.tfstate"
#     region       = "us-east-1"
#     encrypt      = true
#     use_lockfile = true
#   }
# }

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "RapidPhotoUpload"
      Environment = var.environment
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  name    = "rapid-photo-${var.environment}"
  ecs_dir = "${path.module}/../deploy/ecs"

  # The placeholders of the task definitions (deploy/ecs/README.md); the
  # services' network placeholders are filled in the compute module
  ecs_vars = {
    ENV            = var.environment
    AWS_REGION     = data.aws_region.current.region
    AWS_ACCOUNT_ID = data.aws_caller_identity.current.account_id
    IMAGE_TAG      = var.image_tag
  }
  task_definitions = {
    for role in ["api", "pipeline"] :
    role => jsondecode(templatefile("${local.ecs_dir}/task-definitions/${role}.json", local.ecs_vars))
  }
  containers  = { for role, td in local.task_definitions : role => td.containerDefinitions[0] }
  environment = { for role, c in local.containers : role => { for e in c.environment : e.name => e.value } }

  # What the containers name, read from them
  bucket_name       = local.environment.pipeline["RAPIDPHOTO_STORAGE_S3_BUCKET"]
  s3_prefix         = lookup(local.environment.pipeline, "RAPIDPHOTO_STORAGE_S3_PREFIX", "")
  ingest_queue_name = regex("[^/]+$", local.environment.pipeline["RAPIDPHOTO_SQS_INGEST_QUEUE_URL"])
  events_queue_name = regex("[^/]+$", local.environment.pipeline["RAPIDPHOTO_SQS_EVENTS_QUEUE_URL"])
  # sqs.visibility_s: the engine's default (engine/config.c) unless the
  # pipeline's task definition sets it
  sqs_visibility_s    = tonumber(lookup(local.environment.pipeline, "RAPIDPHOTO_SQS_VISIBILITY_S", "60"))
  # metrics.emf_namespace: where the engine's EMF metrics land, which the
  # dashboard searches (the engine's default unless a task definition sets it)
  metrics_namespace   = lookup(local.environment.pipeline, "RAPIDPHOTO_METRICS_EMF_NAMESPACE", "RapidPhotoUpload")
  execution_role_name = regex("role/(.+)$", local.task_definitions.api.executionRoleArn)[0]
  task_role_names     = { for role, td in local.task_definitions : role => regex("role/(.+)$", td.taskRoleArn)[0] }
  log_group_names     = distinct([for c in values(local.containers) : c.logConfiguration.options["awslogs-group"]])
  ecr_repository_name = regex("\\.amazonaws\\.com/([^:]+):", local.containers.api.image)[0]
  # Secret name (the variable the engine reads) => SSM parameter ARN
  secret_parameters = {
    for s in distinct(flatten([for c in values(local.containers) : c.secrets])) : s.name => s.valueFrom
  }

  # The image-processor Lambda function (image_processor_mode): the
  # pipeline container's RAPIDPHOTO_* settings (bucket, prefix, queues,
  # pools, log level, EMF), less what only a long-running task has (its
  # HTTP listener, the broker's TCP endpoints and drain, the ingest
  # bridge's long poll), with the data folder under /tmp, the only
  # writable place in Lambda; AWS_* are Lambda's own (reserved)
  image_processor          = var.image_processor_mode != "off"
  image_processor_name     = "${local.name}-image-processor"
  image_processor_excluded = ["RAPIDPHOTO_HTTP_LISTEN", "RAPIDPHOTO_BROKER_FRONTEND", "RAPIDPHOTO_BROKER_BACKEND", "RAPIDPHOTO_BROKER_DRAIN_MS", "RAPIDPHOTO_SQS_WAIT_S", "RAPIDPHOTO_DATA_DIR"]
  image_processor_environment = merge(
    { for k, v in local.environment.pipeline : k => v if startswith(k, "RAPIDPHOTO_") && !contains(local.image_processor_excluded, k) },
    { RAPIDPHOTO_DATA_DIR = "/tmp/rapidphoto" },
  )
}

module "network" {
  source = "./modules/network"

  name                  = local.name
  vpc_cidr              = var.vpc_cidr
  availability_zones    = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  nat_gateway_per_az    = var.nat_gateway_per_az
  broker_remote_workers = var.broker_remote_workers
  image_processor       = local.image_processor
}

module "queues" {
  source = "./modules/queues"

  ingest_queue_name  = local.ingest_queue_name
  events_queue_name  = local.events_queue_name
  visibility_s       = local.sqs_visibility_s
  max_receive_count  = var.ingest_max_receive_count
  retention_days     = var.queue_retention_days
  dlq_retention_days = var.dlq_retention_days
}

module "storage" {
  source = "./modules/storage"

  bucket_name          = local.bucket_name
  prefix               = local.s3_prefix
  web_origins          = var.web_origins
  ingest_queue_arn     = module.queues.ingest_queue_arn
  ingest_queue_url     = module.queues.ingest_queue_url
  uploads_expire_days  = var.uploads_expire_days
  multipart_abort_days = var.multipart_abort_days
  noncurrent_days      = var.noncurrent_version_days
  force_destroy        = var.environment != "prod"
}

module "database" {
  source = "./modules/database"

  identifier            = "${local.name}-db"
  subnet_ids            = module.network.private_subnet_ids
  security_group_id     = module.network.database_security_group_id
  engine_version        = var.db_engine_version
  instance_class        = var.db_instance_class
  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  multi_az              = var.db_multi_az
  backup_retention_days = var.db_backup_retention_days
  deletion_protection   = var.environment == "prod"
}

module "iam" {
  source = "./modules/iam"

  partition           = data.aws_partition.current.partition
  region              = data.aws_region.current.region
  account_id          = data.aws_caller_identity.current.account_id
  execution_role_name = local.execution_role_name
  task_role_names     = local.task_role_names
  ecr_repository_name = local.ecr_repository_name
  log_group_names     = local.log_group_names
  parameter_arns      = values(local.secret_parameters)
  bucket_arn          = module.storage.bucket_arn
  s3_prefix           = local.s3_prefix
  ingest_queue_arn    = module.queues.ingest_queue_arn
  events_queue_arn    = module.queues.events_queue_arn
  image_processor = local.image_processor ? {
    role_name      = "${local.image_processor_name}-role"
    log_group_name = "/aws/lambda/${local.image_processor_name}"
    kms_key_arn    = module.image_processor[0].kms_key_arn
  } : null
}

module "compute" {
  source = "./modules/compute"

  name                  = local.name
  ecs_dir               = local.ecs_dir
  ecs_vars              = local.ecs_vars
  task_definitions      = local.task_definitions
  ecr_repository_name   = local.ecr_repository_name
  log_group_names       = local.log_group_names
  log_retention_days    = var.log_retention_days
  secret_parameters     = local.secret_parameters
  database_url          = module.database.url
  bucket_name           = module.storage.bucket_name
  execution_role_arn    = module.iam.execution_role_arn
  task_role_arns        = module.iam.task_role_arns
  vpc_id                = module.network.vpc_id
  public_subnet_ids     = module.network.public_subnet_ids
  private_subnet_ids    = module.network.private_subnet_ids
  alb_security_group_id = module.network.alb_security_group_id
  task_security_group_ids = {
    api      = module.network.api_security_group_id
    pipeline = module.network.pipeline_security_group_id
  }
  certificate_arn           = var.certificate_arn
  health_check_path         = var.api_health_check_path
  alb_idle_timeout_s        = var.alb_idle_timeout_s
  api_count                 = var.api_count
  pipeline_count            = var.pipeline_count
  api_cpu_target            = var.api_cpu_target
  api_requests_per_target   = var.api_requests_per_target
  pipeline_cpu_target       = var.pipeline_cpu_target
  pipeline_backlog_per_task = var.pipeline_backlog_per_task
  ingest_queue_name         = module.queues.ingest_queue_name
  metrics_namespace         = local.metrics_namespace
  pipeline_takes_ingest     = var.image_processor_mode != "instead"
}

# The image processor on Lambda: beside the pipeline service (both take
# from the ingest queue) or instead of it for S3 notifications (the
# pipeline tasks then start no ingest bridge and scale on the API's queued
# photos only: the compute module, pipeline_takes_ingest)
module "image_processor" {
  source = "./modules/lambda"
  count  = local.image_processor ? 1 : 0

  name                 = local.name
  image_uri            = "${module.compute.ecr_repository_url}:${var.image_tag}"
  role_arn             = module.iam.image_processor_role_arn
  environment          = local.image_processor_environment
  database_url         = module.database.url
  subnet_ids           = module.network.private_subnet_ids
  security_group_id    = module.network.image_processor_security_group_id
  log_group_name       = "/aws/lambda/${local.image_processor_name}"
  log_retention_days   = var.log_retention_days
  memory_mb            = var.image_processor_memory_mb
  timeout_s            = var.image_processor_timeout_s
  ephemeral_storage_mb = var.image_processor_ephemeral_storage_mb
  reserved_concurrency = var.image_processor_reserved_concurrency
  ingest_queue_arn     = module.queues.ingest_queue_arn
  queue_visibility_s   = local.sqs_visibility_s
  batch_size           = var.image_processor_batch_size
  batching_window_s    = var.image_processor_batching_window_s
  maximum_concurrency  = var.image_processor_maximum_concurrency
}

module "monitoring" {
  source = "./modules/monitoring"

  name                      = local.name
  region                    = data.aws_region.current.region
  metrics_namespace         = local.metrics_namespace
  alb_arn_suffix            = module.compute.alb_arn_suffix
  target_group_arn_suffix   = module.compute.target_group_arn_suffix
  cluster_name              = module.compute.cluster_name
  service_names             = module.compute.service_names
  ingest_queue_name         = module.queues.ingest_queue_name
  dead_letter_queue_name    = module.queues.dead_letter_queue_name
  events_queue_name         = module.queues.events_queue_name
  database_identifier       = module.database.identifier
  alarm_email               = var.alarm_email
  alarm_5xx_percent         = var.alarm_5xx_percent
  alarm_p95_latency_s       = var.alarm_p95_latency_s
  alarm_oldest_message_s    = var.alarm_oldest_message_s
  alarm_cpu_percent         = var.alarm_cpu_percent
  alarm_evaluation_periods  = var.alarm_evaluation_periods
}
