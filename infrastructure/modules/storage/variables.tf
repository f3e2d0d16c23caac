variable "bucket_name" {
  description = "The bucket (from RAPIDPHOTO_STORAGE_S3_BUCKET)"
  type        = string
}

variable "prefix" {
  description = "storage.s3_prefix: \"\" or a folder ending in /"
  type        = string
  validation {
    condition     = var.prefix == "" || can(regex("^[^/].*/$", var.prefix))
    error_message = "prefix: empty, or a folder that ends with / and does not start with one."
  }
}

variable "web_origins" {
  description = "Origins allowed by CORS"
  type        = list(string)
}

variable "ingest_queue_arn" {
  description = "Where ObjectCreated notifications go"
  type        = string
}

variable "ingest_queue_url" {
  description = "The ingest queue's URL, for its policy"
  type        = string
}

variable "uploads_expire_days" {
  description = "Days after which uploads/ objects are deleted"
  type        = number
}

variable "multipart_abort_days" {
  description = "Days after which incomplete multipart uploads are aborted"
  type        = number
}

variable "noncurrent_days" {
  description = "Days noncurrent versions are kept"
  type        = number
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a bucket that still holds objects"
  type        = bool
}
