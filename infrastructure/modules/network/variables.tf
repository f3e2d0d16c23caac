variable "name" {
  description = "rapid-photo-<env>: the prefix of every name"
  type        = string
}

variable "vpc_cidr" {
  description = "The VPC's address range"
  type        = string
}

variable "availability_zones" {
  description = "The zones used, two or more"
  type        = list(string)
}

variable "nat_gateway_per_az" {
  description = "A NAT gateway in each zone, or one in the first"
  type        = bool
}

variable "broker_remote_workers" {
  description = "Let a broker-clients group reach the pipeline's broker ports"
  type        = bool
}

variable "image_processor" {
  description = "Make the image-processor Lambda function's security group, admitted to the database"
  type        = bool
}
