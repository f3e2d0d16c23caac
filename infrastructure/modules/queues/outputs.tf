output "ingest_queue_arn" {
  description = "The ingest queue"
  value       = aws_sqs_queue.ingest.arn
}

output "ingest_queue_url" {
  description = "The ingest queue's URL (sqs.ingest_queue_url)"
  value       = aws_sqs_queue.ingest.url
}

output "ingest_queue_name" {
  description = "The ingest queue's name"
  value       = aws_sqs_queue.ingest.name
}

output "dead_letter_queue_name" {
  description = "The ingest queue's dead-letter queue"
  value       = aws_sqs_queue.ingest_dlq.name
}

output "dead_letter_queue_url" {
  description = "The dead-letter queue's URL"
  value       = aws_sqs_queue.ingest_dlq.url
}

output "events_queue_arn" {
  description = "The events queue"
  value       = aws_sqs_queue.events.arn
}

output "events_queue_url" {
  description = "The events queue's URL (sqs.events_queue_url)"
  value       = aws_sqs_queue.events.url
}

output "events_queue_name" {
  description = "The events queue's name"
  value       = aws_sqs_queue.events.name
}
