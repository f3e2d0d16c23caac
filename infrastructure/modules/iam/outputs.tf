output "execution_role_arn" {
  description = "The task execution role"
  value       = aws_iam_role.execution.arn
}

output "task_role_arns" {
  description = "Each role's task role (api, pipeline)"
  value       = { for k, r in aws_iam_role.task : k => r.arn }
}

output "image_processor_role_arn" {
  description = "The image-processor Lambda function's role (null without the function), once its policies are in place: Lambda refuses a VPC function whose role may not make network interfaces"
  value       = one(aws_iam_role.lambda[*].arn)
  depends_on  = [aws_iam_role_policy.lambda_s3, aws_iam_role_policy.lambda_sqs, aws_iam_role_policy.lambda_logs, aws_iam_role_policy.lambda_xray, aws_iam_role_policy.lambda_vpc, aws_iam_role_policy.lambda_kms]
}
