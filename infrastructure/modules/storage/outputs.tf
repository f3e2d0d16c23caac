output "bucket_name" {
  description = "The bucket"
  value       = aws_s3_bucket.photos.bucket
}

output "bucket_arn" {
  description = "The bucket's ARN"
  value       = aws_s3_bucket.photos.arn
}
