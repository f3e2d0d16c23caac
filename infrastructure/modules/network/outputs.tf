output "vpc_id" {
  description = "The VPC"
  value       = aws_vpc.main.id
}

output "public_subnet_ids" {
  description = "Public subnets, one per zone: the load balancer"
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets, one per zone: tasks and database"
  value       = aws_subnet.private[*].id
}

output "alb_security_group_id" {
  description = "The load balancer's group"
  value       = aws_security_group.alb.id
}

output "api_security_group_id" {
  description = "The API tasks' group"
  value       = aws_security_group.api.id
}

output "pipeline_security_group_id" {
  description = "The processing tasks' group"
  value       = aws_security_group.pipeline.id
}

output "database_security_group_id" {
  description = "The database's group"
  value       = aws_security_group.database.id
}

output "broker_clients_security_group_id" {
  description = "The group remote workers join to reach the broker (null unless broker_remote_workers)"
  value       = one(aws_security_group.broker_clients[*].id)
}

output "image_processor_security_group_id" {
  description = "The image-processor Lambda function's group (null unless image_processor)"
  value       = one(aws_security_group.image_processor[*].id)
}
