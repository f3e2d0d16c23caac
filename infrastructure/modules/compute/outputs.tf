output "alb_dns_name" {
  description = "The load balancer's DNS name (point the domain here)"
  value       = aws_lb.main.dns_name
}

output "alb_arn_suffix" {
  description = "The load balancer, as CloudWatch names it"
  value       = aws_lb.main.arn_suffix
}

output "target_group_arn_suffix" {
  description = "The API's target group, as CloudWatch names it"
  value       = aws_lb_target_group.api.arn_suffix
}

output "https" {
  description = "Whether the load balancer serves HTTPS"
  value       = length(aws_lb_listener.https) > 0
}

output "cluster_name" {
  description = "The ECS cluster"
  value       = aws_ecs_cluster.main.name
}

output "service_names" {
  description = "ECS service per role (api, pipeline)"
  value       = { for k, s in aws_ecs_service.main : k => s.name }
}

output "ecr_repository_url" {
  description = "Where the image is pushed"
  value       = aws_ecr_repository.backend.repository_url
}

output "operator_parameter_names" {
  description = "SSM parameters to set by hand after the first apply (CURVE keys)"
  value       = [for p in aws_ssm_parameter.operator : p.name]
}
