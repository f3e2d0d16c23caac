# The roles the task definitions name (deploy/ecs), and exactly what each
# needs:
#   execution role (ECS itself, starting a task): pull the image from its
#     ECR repository, write the log group, read the SSM parameters the
#     containers' secrets come from
#   task roles (the engine, through AWS_CONTAINER_CREDENTIALS_*): the S3
#     and SQS actions the engine calls (engine/aws/s3.c, engine/aws/sqs.c,
#     actors/bridges), on the bucket and queues it calls them on:
#       api:      the bucket (uploads, downloads' presigned GETs, presigned
#                 PUTs, deletes); the gateway starts no SQS bridge
#       pipeline: the bucket, and the queues (the ingest and events bridges)
#     The engine makes no Secrets Manager or SSM call: its secrets are in
#     its environment.
#     Both task roles: the X-Ray daemon beside the engine (deploy/ecs's
#     xray-daemon container, which takes the task role's credentials)
#     sends the engine's segments with PutTraceSegments and its own
#     counters with PutTelemetryRecords; X-Ray has no resource to name.
# tools/terraform/check.mjs compares these actions with the engine's code
# and fails on one missing or one more.

data "aws_iam_policy_document" "assume_ecs_tasks" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${var.partition}:ecs:${var.region}:${var.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = var.execution_role_name
  description        = "ECS: pull the image, write the logs, read the containers' secrets"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
}

resource "aws_iam_role" "task" {
  for_each           = var.task_role_names
  name               = each.value
  description        = "The engine's ${each.key} tasks: the AWS calls it makes"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
}

# ---- the execution role

data "aws_iam_policy_document" "execution" {
  # Registry login: GetAuthorizationToken takes no resource
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid = "EcrPull"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = ["arn:${var.partition}:ecr:${var.region}:${var.account_id}:repository/${var.ecr_repository_name}"]
  }
  # The groups and their streams (CreateLogStream acts on the group)
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in var.log_group_names : "arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:${g}:*"]
  }
  # SecureStrings under the AWS-managed key (aws/ssm): no kms:Decrypt grant
  statement {
    sid       = "Secrets"
    actions   = ["ssm:GetParameters"]
    resources = var.parameter_arns
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "ecs-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---- the engine: S3 (both roles)

data "aws_iam_policy_document" "s3" {
  # PutObject covers PUT and the multipart upload's Create, UploadPart and
  # Complete; GetObject covers GET and HEAD
  statement {
    sid = "PhotoObjects"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:PutObject",
    ]
    resources = ["${var.bucket_arn}/${var.s3_prefix}*"]
  }
  # HEAD of a key that is not there answers 404 only to a caller that may
  # list the bucket (403 otherwise); the engine relies on that 404 (a
  # readiness probe, storing bytes not yet there)
  statement {
    sid       = "MissingKeysAre404"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }
}

resource "aws_iam_role_policy" "api_s3" {
  name   = "s3"
  role   = aws_iam_role.task["api"].id
  policy = data.aws_iam_policy_document.s3.json
}

resource "aws_iam_role_policy" "pipeline_s3" {
  name   = "s3"
  role   = aws_iam_role.task["pipeline"].id
  policy = data.aws_iam_policy_document.s3.json
}

# ---- the engine: SQS (the processing tasks' bridges)

data "aws_iam_policy_document" "sqs" {
  # The ingest bridge: long-poll, extend while processing, delete when done
  statement {
    sid = "IngestQueue"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:ReceiveMessage",
    ]
    resources = [var.ingest_queue_arn]
  }
  # The events bridge: SendMessageBatch, which IAM grants as SendMessage
  statement {
    sid       = "EventsQueue"
    actions   = ["sqs:SendMessage"]
    resources = [var.events_queue_arn]
  }
}

resource "aws_iam_role_policy" "pipeline_sqs" {
  name   = "sqs"
  role   = aws_iam_role.task["pipeline"].id
  policy = data.aws_iam_policy_document.sqs.json
}

# ---- the X-Ray daemon beside the engine (both roles)

data "aws_iam_policy_document" "xray" {
  # X-Ray's write actions take no resource ARN: "*" is the only form
  statement {
    sid       = "XRayDaemon"
    actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "api_xray" {
  name   = "xray"
  role   = aws_iam_role.task["api"].id
  policy = data.aws_iam_policy_document.xray.json
}

resource "aws_iam_role_policy" "pipeline_xray" {
  name   = "xray"
  role   = aws_iam_role.task["pipeline"].id
  policy = data.aws_iam_policy_document.xray.json
}
