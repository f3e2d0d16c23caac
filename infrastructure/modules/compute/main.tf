# The engine on ECS Fargate: the image's repository, the cluster, the log
# groups, the containers' secrets, the two task definitions and services
# (api: `rapidphoto gateway` behind the load balancer; pipeline:
# `rapidphoto pipeline`, the processing), the load balancer and the
# services' autoscaling.
#
# Task definitions and services come from deploy/ecs: the container
# definitions are registered exactly as the templates say (jsonencode of
# their containerDefinitions), and so are the task's size and the
# services' deployment settings. What Terraform adds is what the templates
# leave to it: the subnets (all of the private ones), the security groups,
# the target group. Releases register new revisions with deploy/ecs's
# runbook; the services ignore task_definition and desired_count here, so
# an apply never undoes a release or an autoscaling decision.

locals {
  counts = { api = var.api_count, pipeline = var.pipeline_count }

  # The services' templates, their network placeholders filled with marks:
  # Terraform takes the settings from them and puts its own subnets,
  # groups and target group in (known at plan time, every zone's subnet)
  services = {
    for role in keys(var.task_definitions) :
    role => jsondecode(templatefile("${var.ecs_dir}/services/${role}.json", merge(var.ecs_vars, {
      PRIVATE_SUBNET_1        = "terraform:private_subnet_ids"
      PRIVATE_SUBNET_2        = "terraform:private_subnet_ids"
      API_SECURITY_GROUP      = "terraform:api"
      PIPELINE_SECURITY_GROUP = "terraform:pipeline"
      API_TARGET_GROUP_ARN    = "terraform:target_group"
    })))
  }
  cluster_name = local.services.api.cluster
  api_lb       = local.services.api.loadBalancers[0]

  environment = {
    for role, td in var.task_definitions :
    role => { for e in td.containerDefinitions[0].environment : e.name => e.value }
  }

  # The containers' secrets: those Terraform makes, and those an operator
  # puts in after the first apply (CURVE keys: `rapidphoto keygen`)
  generated_secrets = {
    RAPIDPHOTO_DB_URL          = var.database_url
    RAPIDPHOTO_AUTH_JWT_SECRET = random_password.jwt_secret.result
  }
  operator_secrets = ["RAPIDPHOTO_BROKER_CURVE_SECRET_KEY", "RAPIDPHOTO_BROKER_CURVE_CLIENTS"]

  # image_processor_mode = instead: the image-processor Lambda function
  # alone takes the S3 notifications, so the pipeline container is
  # registered without the ingest queue's URL (its ingest bridge is not
  # started; its events bridge still is)
  # (every container's environment listed again, filtered or not: one
  # shape whatever the mode, no conditional between differing tuples)
  container_definitions = {
    for role, td in var.task_definitions :
    role => [
      for c in td.containerDefinitions : merge(c, {
        environment = [
          for e in try(c.environment, []) : e
          if !(role == "pipeline" && !var.pipeline_takes_ingest && e.name == "RAPIDPHOTO_SQS_INGEST_QUEUE_URL")
        ]
      })
    ]
  }
  parameter_names  = { for k, arn in var.secret_parameters : k => regex(":parameter(/.+)$", arn)[0] }
}

# ---- image, cluster, logs

resource "aws_ecr_repository" "backend" {
  name                 = var.ecr_repository_name
  image_tag_mutability = "MUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "AES256"
  }
}

# Release tags (v1.2.3) are kept, the newest 30; untagged layers go after a week
resource "aws_ecr_lifecycle_policy" "backend" {
  repository = aws_ecr_repository.backend.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "untagged images after 7 days"
        selection    = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 7 }
        action       = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "the newest 30 release tags"
        selection    = { tagStatus = "tagged", tagPrefixList = ["v"], countType = "imageCountMoreThan", countNumber = 30 }
        action       = { type = "expire" }
      },
    ]
  })
}

resource "aws_ecs_cluster" "main" {
  name = local.cluster_name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "tasks" {
  for_each          = toset(var.log_group_names)
  name              = each.value
  retention_in_days = var.log_retention_days
}

# ---- the containers' secrets (SSM SecureString, the AWS-managed key)

resource "random_password" "jwt_secret" {
  length  = 64
  special = false
}

# Every secret not set by an operator is generated (a name missing from
# generated_secrets stops the plan: the task definitions' precondition
# says which); for_each takes only names, never the secret values
resource "aws_ssm_parameter" "generated" {
  for_each    = { for k, name in local.parameter_names : k => name if !contains(local.operator_secrets, k) }
  name        = each.value
  description = "${each.key} for the ${var.name} tasks (made by Terraform)"
  type        = "SecureString"
  value       = local.generated_secrets[each.key]
}

resource "aws_ssm_parameter" "operator" {
  for_each    = { for k, name in local.parameter_names : k => name if contains(local.operator_secrets, k) }
  name        = each.value
  description = "${each.key} for the ${var.name} tasks: set it with aws ssm put-parameter --overwrite (README: Infrastructure)"
  type        = "SecureString"
  # Not a key: the pipeline refuses to start, naming the setting, until
  # the real one is put in (Terraform leaves the value alone afterwards)
  value = "unset: run rapidphoto keygen and put the key here"
  lifecycle {
    ignore_changes = [value]
  }
}

# ---- task definitions

resource "aws_ecs_task_definition" "main" {
  for_each                 = var.task_definitions
  family                   = each.value.family
  container_definitions    = jsonencode(local.container_definitions[each.key])
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  network_mode             = each.value.networkMode
  requires_compatibilities = each.value.requiresCompatibilities
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arns[each.key]
  tags                     = { for t in each.value.tags : t.key => t.value }

  runtime_platform {
    operating_system_family = each.value.runtimePlatform.operatingSystemFamily
    cpu_architecture        = each.value.runtimePlatform.cpuArchitecture
  }

  dynamic "ephemeral_storage" {
    for_each = try([each.value.ephemeralStorage.sizeInGiB], [])
    content {
      size_in_gib = ephemeral_storage.value
    }
  }

  lifecycle {
    precondition {
      condition     = each.value.executionRoleArn == var.execution_role_arn && each.value.taskRoleArn == var.task_role_arns[each.key]
      error_message = "deploy/ecs/task-definitions/${each.key}.json names IAM roles other than those Terraform made."
    }
    precondition {
      condition     = lookup(local.environment[each.key], "RAPIDPHOTO_STORAGE_S3_BUCKET", var.bucket_name) == var.bucket_name
      error_message = "deploy/ecs/task-definitions/${each.key}.json names a bucket other than ${var.bucket_name}."
    }
    precondition {
      condition     = alltrue([for s in each.value.containerDefinitions[0].secrets : contains(concat(keys(local.generated_secrets), local.operator_secrets), s.name)])
      error_message = "deploy/ecs/task-definitions/${each.key}.json has a secret Terraform does not know how to fill (compute module, generated_secrets or operator_secrets)."
    }
  }
}

# ---- the load balancer

resource "aws_lb" "main" {
  name                       = "${var.name}-alb"
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [var.alb_security_group_id]
  subnets                    = var.public_subnet_ids
  idle_timeout               = var.alb_idle_timeout_s
  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "api" {
  name        = "${var.name}-api"
  port        = local.api_lb.containerPort
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id
  # Requests in progress finish before the task gets SIGTERM
  deregistration_delay = "30"

  health_check {
    path                = var.health_check_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  count             = var.certificate_arn == "" ? 0 : 1
  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

# Port 80 redirects to HTTPS; without a certificate (dev) it serves
resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.main.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = var.certificate_arn == "" ? "forward" : "redirect"
    target_group_arn = var.certificate_arn == "" ? aws_lb_target_group.api.arn : null

    dynamic "redirect" {
      for_each = var.certificate_arn == "" ? [] : ["https"]
      content {
        protocol    = "HTTPS"
        port        = "443"
        status_code = "HTTP_301"
      }
    }
  }
}

# ---- services

resource "aws_ecs_service" "main" {
  for_each         = local.services
  name             = each.value.serviceName
  cluster          = aws_ecs_cluster.main.arn
  task_definition  = aws_ecs_task_definition.main[each.key].arn
  desired_count    = local.counts[each.key].desired
  launch_type      = each.value.launchType
  platform_version = each.value.platformVersion

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.task_security_group_ids[each.key]]
    assign_public_ip = each.value.networkConfiguration.awsvpcConfiguration.assignPublicIp == "ENABLED"
  }

  dynamic "load_balancer" {
    for_each = try(each.value.loadBalancers, [])
    content {
      target_group_arn = aws_lb_target_group.api.arn
      container_name   = load_balancer.value.containerName
      container_port   = load_balancer.value.containerPort
    }
  }

  health_check_grace_period_seconds  = try(each.value.healthCheckGracePeriodSeconds, null)
  deployment_maximum_percent         = each.value.deploymentConfiguration.maximumPercent
  deployment_minimum_healthy_percent = each.value.deploymentConfiguration.minimumHealthyPercent

  deployment_circuit_breaker {
    enable   = each.value.deploymentConfiguration.deploymentCircuitBreaker.enable
    rollback = each.value.deploymentConfiguration.deploymentCircuitBreaker.rollback
  }

  deployment_controller {
    type = each.value.deploymentController.type
  }

  enable_ecs_managed_tags = each.value.enableECSManagedTags
  propagate_tags          = each.value.propagateTags
  enable_execute_command  = each.value.enableExecuteCommand
  tags                    = { for t in each.value.tags : t.key => t.value }

  lifecycle {
    # Releases (new revisions) and autoscaling own these after creation
    ignore_changes = [task_definition, desired_count]
    precondition {
      condition     = each.value.cluster == local.cluster_name && each.value.taskDefinition == aws_ecs_task_definition.main[each.key].family
      error_message = "deploy/ecs/services/${each.key}.json names another cluster or task family."
    }
  }

  # The target group must belong to a load balancer before a service uses it
  depends_on = [aws_lb_listener.http, aws_lb_listener.https]
}

# ---- autoscaling
#
# api: on CPU and on requests per task (ALBRequestCountPerTarget): uploads
#   are long requests, so CPU (hashing, TLS to S3) catches what the request
#   count does not.
# pipeline: on CPU, which a backlog of any kind saturates (uploads through
#   the API wait as queued rows in PostgreSQL, which no AWS metric sees),
#   and on the ingest queue's backlog per task: S3 notifications waiting
#   (ApproximateNumberOfMessagesVisible, published by SQS itself) divided
#   plus the photos waiting as queued rows (the engine's own QueueDepth,
#   from its EMF metrics: dimension Service=pipeline, the Maximum over the
#   tasks, which all count the same rows), divided by the running tasks
#   (Container Insights). The task definitions turn metrics.emf on
#   (tests/deploy/check_ecs.py fails one that does not). With
#   image_processor_mode = instead the S3 notifications are the Lambda
#   function's (its event source mapping scales on them by itself): the
#   backlog is the queued rows alone, so the two never scale on the same
#   messages.
# Target tracking scales out on whichever asks for more and in only when
# all agree.

resource "aws_appautoscaling_target" "service" {
  for_each           = aws_ecs_service.main
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${each.value.name}"
  min_capacity       = local.counts[each.key].min
  max_capacity       = local.counts[each.key].max
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each           = aws_appautoscaling_target.service
  name               = "${var.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = each.value.service_namespace
  scalable_dimension = each.value.scalable_dimension
  resource_id        = each.value.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = each.key == "api" ? var.api_cpu_target : var.pipeline_cpu_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "api_requests" {
  name               = "${var.name}-api-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service["api"].service_namespace
  scalable_dimension = aws_appautoscaling_target.service["api"].scalable_dimension
  resource_id        = aws_appautoscaling_target.service["api"].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.api_requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.main.arn_suffix}/${aws_lb_target_group.api.arn_suffix}"
    }
  }
}

resource "aws_appautoscaling_policy" "pipeline_backlog" {
  name               = "${var.name}-pipeline-backlog"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service["pipeline"].service_namespace
  scalable_dimension = aws_appautoscaling_target.service["pipeline"].scalable_dimension
  resource_id        = aws_appautoscaling_target.service["pipeline"].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.pipeline_backlog_per_task
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    customized_metric_specification {
      dynamic "metrics" {
        for_each = var.pipeline_takes_ingest ? ["visible"] : []
        content {
          id          = metrics.value
          return_data = false
          metric_stat {
            stat = "Sum"
            metric {
              namespace   = "AWS/SQS"
              metric_name = "ApproximateNumberOfMessagesVisible"
              dimensions {
                name  = "QueueName"
                value = var.ingest_queue_name
              }
            }
          }
        }
      }
      metrics {
        id          = "queued"
        return_data = false
        metric_stat {
          stat = "Maximum"
          metric {
            namespace   = var.metrics_namespace
            metric_name = "QueueDepth"
            dimensions {
              name  = "Service"
              value = "pipeline"
            }
          }
        }
      }
      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.main.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.main["pipeline"].name
            }
          }
        }
      }
      metrics {
        id          = "backlog_per_task"
        label       = "photos and ingest messages waiting per running task"
        expression  = var.pipeline_takes_ingest ? "(visible + queued) / IF(tasks < 1, 1, tasks)" : "queued / IF(tasks < 1, 1, tasks)"
        return_data = true
      }
    }
  }
}
