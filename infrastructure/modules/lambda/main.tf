# The image processor as a Lambda function, `${name}-image-processor`
# (rapid-photo-<env>-image-processor): the same image as the ECS tasks,
# run as `rapidphoto lambda` (a custom runtime on the Lambda Runtime API),
# fed by an SQS event source mapping on the ingest queue (the S3
# notifications for incoming/ and uploads/), beside or instead of the
# pipeline service's ingest bridge (var.mode in the root: README, "The
# image processor on Lambda").
#
#   ingest queue --(event source mapping, batches)--> alias prod --> version N
#       `rapidphoto lambda`: rows into PostgreSQL (VPC: the private subnets,
#       its own security group, admitted to the database), derivatives into
#       S3, photo.complete / photo.failed onto the events queue, and
#       {"batchItemFailures": [...]} back: only the failed records return
#       to the queue (ReportBatchItemFailures)
#
# Lambda refuses a function whose image is not in ECR yet, and the
# repository is made by the same apply (the compute module): in a new
# account the image is pushed between a first apply with the mode off and
# the one that turns the function on (README).
#
# Releases are the runbook's (docs/runbook.md, "Lambda"): update-function-
# code with the new image tag, publish-version, update-alias prod; a
# rollback moves the alias back. Terraform makes the function with the
# first image and version 1 and then leaves the code and the alias's
# version alone (ignore_changes), as the ECS services leave their task
# definition to releases: an apply undoes neither a release nor a rollback.
#
# The database URL: Lambda has no `secrets` as ECS has (valueFrom an SSM
# parameter, resolved when a task starts), and the engine makes no SSM or
# Secrets Manager call. So Terraform puts the URL (the same value it puts
# in the tasks' SSM parameter) into the function's environment, encrypted
# at rest with a KMS key made for this function alone: only principals
# allowed kms:Decrypt on it (the function's role; the account's
# administrators through IAM) can read the variables back, and CloudTrail
# records each use. The price: the URL is in the Terraform state (it
# already is, for the SSM parameter), and a new password needs an apply
# and a published version (README).

locals {
  function_name = "${var.name}-image-processor"
}

resource "aws_kms_key" "environment" {
  description             = "The environment (database URL) of ${local.function_name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "environment" {
  name          = "alias/${local.function_name}"
  target_key_id = aws_kms_key.environment.key_id
}

resource "aws_cloudwatch_log_group" "function" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "processor" {
  function_name = local.function_name
  description   = "rapidphoto lambda: S3 notifications of the ingest queue in, photos processed"
  role          = var.role_arn
  package_type  = "Image"
  image_uri     = var.image_uri
  architectures = ["x86_64"]
  memory_size   = var.memory_mb
  timeout       = var.timeout_s
  # Its share of the account's concurrency, reserved and capped: the
  # database's connections stay bounded
  reserved_concurrent_executions = var.reserved_concurrency
  # Version 1 at creation; later versions are the runbook's publish-version
  publish     = true
  kms_key_arn = aws_kms_key.environment.arn

  image_config {
    command = ["lambda"]
  }

  environment {
    variables = merge(var.environment, { RAPIDPHOTO_DB_URL = var.database_url })
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [var.security_group_id]
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  # /tmp holds RAPIDPHOTO_DATA_DIR (the originals and derivatives of a batch)
  ephemeral_storage {
    size = var.ephemeral_storage_mb
  }

  # role_arn waits for the role's policies (the iam module's output): a VPC
  # function is created only by a role that may make network interfaces
  lifecycle {
    # Releases own the code (update-function-code, docs/runbook.md)
    ignore_changes = [image_uri]
    precondition {
      condition     = var.timeout_s <= var.queue_visibility_s
      error_message = "image_processor_timeout_s must not exceed the ingest queue's visibility timeout (sqs.visibility_s, ${var.queue_visibility_s} s): Lambda refuses the event source mapping otherwise."
    }
  }

}

resource "aws_lambda_alias" "prod" {
  name             = "prod"
  description      = "What the ingest queue's event source mapping invokes; moved by releases and rollbacks"
  function_name    = aws_lambda_function.processor.function_name
  function_version = aws_lambda_function.processor.version

  lifecycle {
    # Releases and rollbacks move it (update-alias, docs/runbook.md)
    ignore_changes = [function_version]
  }
}

resource "aws_lambda_event_source_mapping" "ingest" {
  event_source_arn = var.ingest_queue_arn
  function_name    = aws_lambda_alias.prod.arn
  enabled          = true
  # `rapidphoto lambda` answers {"batchItemFailures": [...]}: without this
  # Lambda ignores the answer and deletes the whole batch, failures too
  function_response_types            = ["ReportBatchItemFailures"]
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.batching_window_s

  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }
}
