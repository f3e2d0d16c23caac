# The photo bucket (storage.backend = s3): originals and derivatives under
# <prefix>objects/, presigned uploads arriving under <prefix>uploads/,
# operators' bulk imports under <prefix>incoming/<user>/. Versioned,
# encrypted (SSE-S3: the task roles need no KMS grant), never public, TLS
# only. S3 announces every object created under incoming/ and uploads/ on
# the ingest queue.

resource "aws_s3_bucket" "photos" {
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "photos" {
  bucket = aws_s3_bucket.photos.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "photos" {
  bucket                  = aws_s3_bucket.photos.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "photos" {
  bucket = aws_s3_bucket.photos.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "photos" {
  bucket = aws_s3_bucket.photos.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.photos.arn, "${aws_s3_bucket.photos.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "photos" {
  bucket     = aws_s3_bucket.photos.id
  policy     = data.aws_iam_policy_document.tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.photos]
}

# Downloads are 302s to presigned GETs that the web app follows, and
# clients may PUT straight to a presigned URL (POST /api/v1/uploads/presign)
resource "aws_s3_bucket_cors_configuration" "photos" {
  bucket = aws_s3_bucket.photos.id
  cors_rule {
    allowed_origins = var.web_origins
    allowed_methods = ["GET", "HEAD"]
    expose_headers  = ["ETag", "Content-Length"]
    max_age_seconds = 3000
  }
  cors_rule {
    allowed_origins = var.web_origins
    allowed_methods = ["PUT"]
    allowed_headers = ["content-type"]
    expose_headers  = ["ETag"]
    max_age_seconds = 3000
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "photos" {
  bucket     = aws_s3_bucket.photos.id
  depends_on = [aws_s3_bucket_versioning.photos]

  # The engine aborts a multipart upload it gives up on; one it could not
  # (a task killed mid-upload) is reaped here
  rule {
    id     = "abort-incomplete-multipart"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = var.multipart_abort_days
    }
  }

  # A presigned upload is moved into objects/ once adopted; what is left
  # under uploads/ was never completed
  rule {
    id     = "expire-stale-uploads"
    status = "Enabled"
    filter {
      prefix = "${var.prefix}uploads/"
    }
    expiration {
      days = var.uploads_expire_days
    }
  }

  # An upload streamed to S3 while it arrives is sent under streams/ and
  # copied to its address at its last byte, then deleted; what a task
  # killed in between left there is never read again
  rule {
    id     = "expire-stale-streams"
    status = "Enabled"
    filter {
      prefix = "${var.prefix}streams/"
    }
    expiration {
      days = 1
    }
  }

  # Deleted photos' bytes, and replaced versions, kept a while for undo
  rule {
    id     = "expire-noncurrent"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }
}

# ---- S3 event notifications to the ingest queue

data "aws_iam_policy_document" "ingest_from_bucket" {
  statement {
    sid       = "BucketNotifications"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [var.ingest_queue_arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.photos.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_caller_identity" "current" {}

resource "aws_sqs_queue_policy" "ingest" {
  queue_url = var.ingest_queue_url
  policy    = data.aws_iam_policy_document.ingest_from_bucket.json
}

resource "aws_s3_bucket_notification" "photos" {
  bucket = aws_s3_bucket.photos.id

  dynamic "queue" {
    for_each = toset(["incoming/", "uploads/"])
    content {
      id            = "ingest-${trimsuffix(queue.value, "/")}"
      queue_arn     = var.ingest_queue_arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = "${var.prefix}${queue.value}"
    }
  }

  # S3 checks that it may send when the notification is set
  depends_on = [aws_sqs_queue_policy.ingest]
}
