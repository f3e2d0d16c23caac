# What the runbook watches: the dashboard rapid-photo-<env>-dashboard, and
# alarms to an SNS topic (email).
#
# The engine's own metrics come from its CloudWatch Embedded Metric Format
# lines (metrics.emf = on: JSON lines on stdout, which the awslogs driver
# hands to CloudWatch Logs, which extracts them), namespace
# var.metrics_namespace, names UploadCount, UploadBytes, AckLatency,
# ProcessingLatency, Failures, QueueDepth, JobsInFlight, Workers. Their
# widgets SEARCH by namespace and name, so they show whatever dimensions the
# engine gives them.

locals {
  alb      = { LoadBalancer = var.alb_arn_suffix }
  alb_tg   = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffix }
  services = var.service_names

  # One widget: a title, a position, metrics or expressions
  engine_metric = { for m, stat in {
    UploadCount       = "Sum"
    UploadBytes       = "Sum"
    Failures          = "Sum"
    QueueDepth        = "Maximum"
    JobsInFlight      = "Maximum"
    Workers           = "Minimum"
    AckLatency        = "p95"
    ProcessingLatency = "p95"
    } : m => "SEARCH('Namespace=\"${var.metrics_namespace}\" MetricName=\"${m}\"', '${stat}', 60)"
  }

  widgets = [
    # ---- the load balancer
    {
      type = "metric", x = 0, y = 0, width = 8, height = 6
      properties = {
        title  = "Requests (ALB)", region = var.region, stat = "Sum", period = 60, view = "timeSeries"
        metrics = [
          ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix],
          ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", var.alb_arn_suffix],
          ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", var.alb_arn_suffix],
        ]
      }
    },
    {
      type = "metric", x = 8, y = 0, width = 8, height = 6
      properties = {
        title  = "Target response time p50 / p95 / p99 (s)", region = var.region, period = 60, view = "timeSeries"
        metrics = [for p in ["p50", "p95", "p99"] :
          ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = p, label = p }]
        ]
      }
    },
    {
      type = "metric", x = 16, y = 0, width = 8, height = 6
      properties = {
        title  = "Healthy / unhealthy API targets", region = var.region, stat = "Minimum", period = 60, view = "timeSeries"
        metrics = [
          ["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", var.target_group_arn_suffix, "LoadBalancer", var.alb_arn_suffix],
          ["AWS/ApplicationELB", "UnHealthyHostCount", "TargetGroup", var.target_group_arn_suffix, "LoadBalancer", var.alb_arn_suffix],
        ]
      }
    },
    # ---- ECS
    {
      type = "metric", x = 0, y = 6, width = 8, height = 6
      properties = {
        title  = "CPU (%)", region = var.region, stat = "Average", period = 60, view = "timeSeries"
        metrics = [for role, svc in local.services :
          ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", svc, { label = role }]
        ]
      }
    },
    {
      type = "metric", x = 8, y = 6, width = 8, height = 6
      properties = {
        title  = "Memory (%)", region = var.region, stat = "Average", period = 60, view = "timeSeries"
        metrics = [for role, svc in local.services :
          ["AWS/ECS", "MemoryUtilization", "ClusterName", var.cluster_name, "ServiceName", svc, { label = role }]
        ]
      }
    },
    {
      type = "metric", x = 16, y = 6, width = 8, height = 6
      properties = {
        title  = "Tasks running / desired", region = var.region, stat = "Average", period = 60, view = "timeSeries"
        metrics = flatten([for role, svc in local.services : [
          ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.cluster_name, "ServiceName", svc, { label = "${role} running" }],
          ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", var.cluster_name, "ServiceName", svc, { label = "${role} desired" }],
        ]])
      }
    },
    # ---- SQS
    {
      type = "metric", x = 0, y = 12, width = 8, height = 6
      properties = {
        title  = "Queue depth (messages visible)", region = var.region, stat = "Maximum", period = 60, view = "timeSeries"
        metrics = [for q in [var.ingest_queue_name, var.events_queue_name] :
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]
        ]
      }
    },
    {
      type = "metric", x = 8, y = 12, width = 8, height = 6
      properties = {
        title  = "Oldest message age (s)", region = var.region, stat = "Maximum", period = 60, view = "timeSeries"
        metrics = [for q in [var.ingest_queue_name, var.events_queue_name] :
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", q]
        ]
      }
    },
    {
      type = "metric", x = 16, y = 12, width = 8, height = 6
      properties = {
        title  = "Dead-letter messages", region = var.region, stat = "Maximum", period = 60, view = "timeSeries"
        metrics = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dead_letter_queue_name]]
      }
    },
    # ---- the engine (EMF)
    {
      type = "metric", x = 0, y = 18, width = 8, height = 6
      properties = {
        title  = "Uploads and failures (engine)", region = var.region, period = 60, view = "timeSeries"
        metrics = [for m in ["UploadCount", "Failures"] : [{ expression = local.engine_metric[m], id = lower(m), label = m }]]
      }
    },
    {
      type = "metric", x = 8, y = 18, width = 8, height = 6
      properties = {
        title  = "Acknowledgement and processing latency p95 (engine, ms)", region = var.region, period = 60, view = "timeSeries"
        metrics = [for m in ["AckLatency", "ProcessingLatency"] : [{ expression = local.engine_metric[m], id = lower(m), label = m }]]
      }
    },
    {
      type = "metric", x = 16, y = 18, width = 8, height = 6
      properties = {
        title  = "Queue depth, jobs in flight, workers (engine)", region = var.region, period = 60, view = "timeSeries"
        metrics = [for m in ["QueueDepth", "JobsInFlight", "Workers"] : [{ expression = local.engine_metric[m], id = lower(m), label = m }]]
      }
    },
    {
      type = "metric", x = 0, y = 24, width = 8, height = 6
      properties = {
        title  = "Bytes uploaded (engine)", region = var.region, period = 60, view = "timeSeries"
        metrics = [[{ expression = local.engine_metric.UploadBytes, id = "uploadbytes", label = "UploadBytes" }]]
      }
    },
    # ---- the database
    {
      type = "metric", x = 8, y = 24, width = 16, height = 6
      properties = {
        title  = "Database: CPU (%), connections", region = var.region, stat = "Average", period = 60, view = "timeSeries"
        metrics = [
          ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", var.database_identifier],
          ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", var.database_identifier, { yAxis = "right" }],
        ]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = "${var.name}-dashboard"
  dashboard_body = jsonencode({ widgets = local.widgets })
}

resource "aws_sns_topic" "alarms" {
  name = "${var.name}-alarms"
}

resource "aws_sns_topic_subscription" "email" {
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# ---- alarms

resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${var.name}-api-5xx-rate"
  alarm_description   = "More than ${var.alarm_5xx_percent}% of the API's responses are 5xx"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_5xx_percent
  evaluation_periods  = var.alarm_evaluation_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    label       = "5xx %"
    return_data = true
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = local.alb
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = local.alb
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "api_p95_latency" {
  alarm_name          = "${var.name}-api-p95-latency"
  alarm_description   = "The API's p95 response time is over ${var.alarm_p95_latency_s} s"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = local.alb_tg
  extended_statistic  = "p95"
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_p95_latency_s
  evaluation_periods  = var.alarm_evaluation_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# One metric over a threshold: the dead-letter queue not empty, the oldest
# ingest message too old, a service's CPU too high (autoscaling at its
# maximum?). Every entry has the same attributes, dimensions a map of
# strings, so for_each takes them as one map.
locals {
  single_metric_alarms = merge({
    ingest-dead-letters = {
      description = "S3 notifications the engine could not take in are in ${var.dead_letter_queue_name}"
      namespace   = "AWS/SQS", metric = "ApproximateNumberOfMessagesVisible", statistic = "Maximum"
      dimensions  = tomap({ QueueName = var.dead_letter_queue_name })
      threshold   = 0, periods = 1, missing = "notBreaching"
    }
    ingest-oldest-message = {
      description = "An S3 notification has waited over ${var.alarm_oldest_message_s} s in ${var.ingest_queue_name}"
      namespace   = "AWS/SQS", metric = "ApproximateAgeOfOldestMessage", statistic = "Maximum"
      dimensions  = tomap({ QueueName = var.ingest_queue_name })
      threshold   = var.alarm_oldest_message_s, periods = var.alarm_evaluation_periods, missing = "notBreaching"
    }
    }, { for role, svc in local.services : "${role}-cpu" => {
      description = "The ${role} service's CPU is over ${var.alarm_cpu_percent}% (autoscaling at its maximum?)"
      namespace   = "AWS/ECS", metric = "CPUUtilization", statistic = "Average"
      dimensions  = tomap({ ClusterName = var.cluster_name, ServiceName = svc })
      threshold   = var.alarm_cpu_percent, periods = var.alarm_evaluation_periods, missing = "missing"
  } })
}

resource "aws_cloudwatch_metric_alarm" "single" {
  for_each            = local.single_metric_alarms
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  evaluation_periods  = each.value.periods
  treat_missing_data  = each.value.missing
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
