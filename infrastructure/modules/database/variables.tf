variable "identifier" {
  description = "The instance's name: rapid-photo-<env>-db"
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets in two or more zones"
  type        = list(string)
}

variable "security_group_id" {
  description = "The database's security group"
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major version"
  type        = string
}

variable "instance_class" {
  description = "RDS instance class"
  type        = string
}

variable "allocated_storage" {
  description = "Initial storage, GiB"
  type        = number
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling, GiB"
  type        = number
}

variable "multi_az" {
  description = "A standby in another zone"
  type        = bool
}

variable "backup_retention_days" {
  description = "Automated backups kept, days"
  type        = number
}

variable "deletion_protection" {
  description = "Refuse deletion (and take a final snapshot)"
  type        = bool
}
