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
#   the image-processor Lambda function's role (image_processor; its
#     execution role: Lambda, and `rapidphoto lambda` in it, act with it):
#       the engine's S3 actions (the s3 document, as the tasks), SendMessage
#       on the events queue (photo.complete / photo.failed); what the SQS
#       event source mapping does with it on the ingest queue (ReceiveMessage,
#       DeleteMessage of a batch's successes, ChangeMessageVisibility,
#       GetQueueAttributes); its log group; X-Ray (active tracing: Lambda's
#       own daemon sends the segments with this role); the VPC's network
#       interfaces (the actions of AWSLambdaVPCAccessExecutionRole, which
#       take no resource narrower than "*"); kms:Decrypt on the key its
#       environment (the database URL) is encrypted with.
# tools/terraform/check.mjs compares these actions with the engine's code
# (and, for the function, with what Lambda needs for what the lambda
# module configures) and fails on one missing or one more.

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

# ---- the image-processor Lambda function (image_processor)

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

resource "aws_iam_role" "lambda" {
  count              = var.image_processor == null ? 0 : 1
  name               = var.image_processor.role_name
  description        = "The image-processor Lambda function: the event source mapping's and the engine's AWS calls"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "lambda_sqs" {
  # The event source mapping polls with the function's role: receive,
  # delete what the batch did not report failed, and reads the queue's
  # attributes; ChangeMessageVisibility for the records it gives back
  statement {
    sid = "IngestEventSource"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
    ]
    resources = [var.ingest_queue_arn]
  }
  # photo.complete / photo.failed: SendMessageBatch, granted as SendMessage
  statement {
    sid       = "EventsQueue"
    actions   = ["sqs:SendMessage"]
    resources = [var.events_queue_arn]
  }
}

data "aws_iam_policy_document" "lambda_logs" {
  # The group exists (the lambda module makes it, with its retention):
  # no logs:CreateLogGroup
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:${var.image_processor == null ? "" : var.image_processor.log_group_name}:*"]
  }
}

data "aws_iam_policy_document" "lambda_vpc" {
  # AWSLambdaVPCAccessExecutionRole's actions: Lambda makes and removes
  # the function's network interfaces in the private subnets
  statement {
    sid = "VpcNetworkInterfaces"
    actions = [
      "ec2:AssignPrivateIpAddresses",
      "ec2:CreateNetworkInterface",
      "ec2:DeleteNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSubnets",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "lambda_kms" {
  # The function's environment (the database URL) is encrypted with a
  # key of its own: only who may decrypt with it can read the variables
  statement {
    sid       = "EnvironmentKey"
    actions   = ["kms:Decrypt"]
    resources = [var.image_processor == null ? "" : var.image_processor.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "lambda_s3" {
  count  = length(aws_iam_role.lambda)
  name   = "s3"
  role   = aws_iam_role.lambda[0].id
  policy = data.aws_iam_policy_document.s3.json
}

resource "aws_iam_role_policy" "lambda_sqs" {
  count  = length(aws_iam_role.lambda)
  name   = "sqs"
  role   = aws_iam_role.lambda[0].id
  policy = data.aws_iam_policy_document.lambda_sqs.json
}

resource "aws_iam_role_policy" "lambda_logs" {
  count  = length(aws_iam_role.lambda)
  name   = "logs"
  role   = aws_iam_role.lambda[0].id
  policy = data.aws_iam_policy_document.lambda_logs.json
}

resource "aws_iam_role_policy" "lambda_xray" {
  count  = length(aws_iam_role.lambda)
  name   = "xray"
  role   = aws_iam_role.lambda[0].id
  policy = data.aws_iam_policy_document.xray.json
}

resource "aws_iam_role_policy" "lambda_vpc" {
  count  = length(aws_iam_role.lambda)
  name   = "vpc"
  role   = aws_iam_role.lambda[0].id
  policy = data.aws_iam_policy_document.lambda_vpc.json
}

resource "aws_iam_role_policy" "lambda_kms" {
  count  = length(aws_iam_role.lambda)
  name   = "kms"
  role   = aws_iam_role.lambda[0].id
  policy = data.aws_iam_policy_document.lambda_kms.json
}
