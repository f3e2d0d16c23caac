variable "name" {
  description = "rapid-photo-<env>"
  type        = string
}

variable "region" {
  description = "The region the widgets read"
  type        = string
}

variable "metrics_namespace" {
  description = "The engine's EMF namespace"
  type        = string
}

variable "alb_arn_suffix" {
  description = "The load balancer (CloudWatch's LoadBalancer dimension)"
  type        = string
}

variable "target_group_arn_suffix" {
  description = "The API's target group (CloudWatch's TargetGroup dimension)"
  type        = string
}

variable "cluster_name" {
  description = "The ECS cluster"
  type        = string
}

variable "service_names" {
  description = "ECS service per role (api, pipeline)"
  type        = map(string)
}

variable "ingest_queue_name" {
  description = "The ingest queue"
  type        = string
}

variable "dead_letter_queue_name" {
  description = "Its dead-letter queue"
  type        = string
}

variable "events_queue_name" {
  description = "The events queue"
  type        = string
}

variable "database_identifier" {
  description = "The RDS instance"
  type        = string
}

variable "alarm_email" {
  description = "Where alarms go"
  type        = string
}

variable "alarm_5xx_percent" {
  description = "5xx rate threshold, percent"
  type        = number
}

variable "alarm_p95_latency_s" {
  description = "p95 latency threshold, seconds"
  type        = number
}

variable "alarm_oldest_message_s" {
  description = "Oldest ingest message threshold, seconds"
  type        = number
}

variable "alarm_cpu_percent" {
  description = "Service CPU threshold, percent"
  type        = number
}

variable "alarm_evaluation_periods" {
  description = "Minutes over a threshold before alarming"
  type        = number
}
