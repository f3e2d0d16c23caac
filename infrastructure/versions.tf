# The Terraform and provider versions this configuration is written for.
# tools/terraform/provider-schema.json holds the schema of exactly these
# provider versions (tools/terraform/extract-schema.mjs); the offline check
# (tools/terraform/check.mjs) refuses a constraint that does not admit them.
terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.25.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7.2"
    }
  }
}
