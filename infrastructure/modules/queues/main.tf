# The engine's two queues (names from the pipeline's task definition):
#   ingest: S3's ObjectCreated notifications for incoming/ and uploads/
#           (the storage module adds the policy letting the bucket send),
#           long-polled by every pipeline task's ingest bridge; a message
#           that keeps failing goes to the dead-letter queue after
#           max_receive_count receives
#   events: photo.complete and photo.failed, sent by the events bridge
# The visibility timeout is the engine's sqs.visibility_s: the bridge
# extends a message it is working on by that much every half of it.
# Encrypted with SQS-managed keys: no KMS key for the bucket's
# notifications or the tasks' roles to be granted.

resource "aws_sqs_queue" "ingest_dlq" {
  name                      = "${var.ingest_queue_name}-dlq"
  message_retention_seconds = var.dlq_retention_days * 86400
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "ingest" {
  name                       = var.ingest_queue_name
  visibility_timeout_seconds = var.visibility_s
  message_retention_seconds  = var.retention_days * 86400
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.ingest_dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

# Only the ingest queue may send its failures here
resource "aws_sqs_queue_redrive_allow_policy" "ingest_dlq" {
  queue_url = aws_sqs_queue.ingest_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.ingest.arn]
  })
}

resource "aws_sqs_queue" "events" {
  name                       = var.events_queue_name
  visibility_timeout_seconds = var.visibility_s
  message_retention_seconds  = var.retention_days * 86400
  sqs_managed_sse_enabled    = true
}
