output "execution_role_arn" {
  description = "The task execution role"
  value       = aws_iam_role.execution.arn
}

output "task_role_arns" {
  description = "Each role's task role (api, pipeline)"
  value       = { for k, r in aws_iam_role.task : k => r.arn }
}
