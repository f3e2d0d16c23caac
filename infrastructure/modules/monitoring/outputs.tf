output "dashboard_name" {
  description = "The dashboard the runbook watches"
  value       = aws_cloudwatch_dashboard.main.dashboard_name
}

output "dashboard_url" {
  description = "The dashboard in the console"
  value       = "https://${var.region}.console.aws.amazon.com/cloudwatch/home?region=${var.region}#dashboards:name=${aws_cloudwatch_dashboard.main.dashboard_name}"
}

output "alarm_topic_arn" {
  description = "The alarms' SNS topic"
  value       = aws_sns_topic.alarms.arn
}
