output "alb_dns_name" {
  description = "The load balancer's DNS name: point the domain (a CNAME or alias) here"
  value       = module.compute.alb_dns_name
}

output "api_url" {
  description = "The API's base URL through the load balancer"
  value       = "${module.compute.https ? "https" : "http"}://${module.compute.alb_dns_name}/api/v1"
}

output "cluster_name" {
  description = "The ECS cluster"
  value       = module.compute.cluster_name
}

output "service_names" {
  description = "The ECS services (api, pipeline)"
  value       = module.compute.service_names
}

output "ecr_repository_url" {
  description = "Push the image here (deploy/ecs/README.md, step 1)"
  value       = module.compute.ecr_repository_url
}

output "bucket_name" {
  description = "The photo bucket"
  value       = module.storage.bucket_name
}

output "ingest_queue_url" {
  description = "S3 notifications (sqs.ingest_queue_url)"
  value       = module.queues.ingest_queue_url
}

output "dead_letter_queue_url" {
  description = "Notifications the engine could not take in"
  value       = module.queues.dead_letter_queue_url
}

output "events_queue_url" {
  description = "photo.complete / photo.failed (sqs.events_queue_url)"
  value       = module.queues.events_queue_url
}

output "database_address" {
  description = "The PostgreSQL host (the full URL is in the db-url SSM parameter)"
  value       = module.database.address
}

output "dashboard_name" {
  description = "The runbook's dashboard"
  value       = module.monitoring.dashboard_name
}

output "dashboard_url" {
  description = "The dashboard in the CloudWatch console"
  value       = module.monitoring.dashboard_url
}

output "alarm_topic_arn" {
  description = "Alarms go here (and to alarm_email once confirmed)"
  value       = module.monitoring.alarm_topic_arn
}

output "operator_parameter_names" {
  description = "SSM parameters to set after the first apply: the broker's CURVE keys (README: Infrastructure)"
  value       = module.compute.operator_parameter_names
}

output "image_processor_function_name" {
  description = "The image-processor Lambda function (null when image_processor_mode is off): the runbook's --function-name"
  value       = one(module.image_processor[*].function_name)
}

output "image_processor_alias_arn" {
  description = "Its alias prod, which the ingest queue's event source mapping invokes (null when off)"
  value       = one(module.image_processor[*].alias_arn)
}
