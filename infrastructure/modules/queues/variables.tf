variable "ingest_queue_name" {
  description = "The ingest queue's name (from RAPIDPHOTO_SQS_INGEST_QUEUE_URL)"
  type        = string
}

variable "events_queue_name" {
  description = "The events queue's name (from RAPIDPHOTO_SQS_EVENTS_QUEUE_URL)"
  type        = string
}

variable "visibility_s" {
  description = "The engine's sqs.visibility_s"
  type        = number
  validation {
    condition     = var.visibility_s >= 5 && var.visibility_s <= 43200
    error_message = "visibility_s: 5 to 43200, as engine/config.c allows."
  }
}

variable "max_receive_count" {
  description = "Receives before a message goes to the dead-letter queue"
  type        = number
}

variable "retention_days" {
  description = "Message retention of the ingest and events queues, days"
  type        = number
}

variable "dlq_retention_days" {
  description = "Message retention of the dead-letter queue, days"
  type        = number
  validation {
    condition     = var.dlq_retention_days >= 1 && var.dlq_retention_days <= 14
    error_message = "dlq_retention_days: 1 to 14 (SQS's limit)."
  }
}
