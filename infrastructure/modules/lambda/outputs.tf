output "function_name" {
  description = "The function (the runbook's --function-name)"
  value       = aws_lambda_function.processor.function_name
}

output "alias_arn" {
  description = "The alias prod, which the event source mapping invokes"
  value       = aws_lambda_alias.prod.arn
}

output "event_source_mapping_uuid" {
  description = "The ingest queue's event source mapping"
  value       = aws_lambda_event_source_mapping.ingest.uuid
}

output "log_group_name" {
  description = "The function's log group"
  value       = aws_cloudwatch_log_group.function.name
}

output "kms_key_arn" {
  description = "The key its environment is encrypted with"
  value       = aws_kms_key.environment.arn
}
