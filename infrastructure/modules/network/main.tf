# The network: a VPC over two or more zones, public subnets (the load
# balancer, the NAT gateways) and private ones (tasks, database), and the
# security groups that say who talks to whom:
#
#   internet --80/443--> alb --8080--> api tasks --5432--> database
#                                      pipeline tasks --5432--^
#                       image-processor function --5432--^ (image_processor)
#   api, pipeline --443--> AWS APIs (S3 through its gateway endpoint,
#                          the rest through NAT)
#
# The pipeline tasks take no inbound connection: their broker listens on
# 127.0.0.1 (deploy/ecs/README.md). With broker_remote_workers its ports
# 5570 (producers) and 5571 (workers) admit the broker-clients group only.
# With image_processor, the image-processor Lambda function's network
# interfaces (in the private subnets) get a group of their own: no
# inbound, out on 443 (AWS APIs) and 5432 to the database, which admits it.

locals {
  zones    = length(var.availability_zones)
  nat_zones = var.nat_gateway_per_az ? local.zones : 1
}

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = var.name }
}

# /20s: public ones first, private ones after them
resource "aws_subnet" "public" {
  count                   = local.zones
  vpc_id                  = aws_vpc.main.id
  availability_zone       = var.availability_zones[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  map_public_ip_on_launch = false
  tags                    = { Name = "${var.name}-public-${var.availability_zones[count.index]}", Tier = "public" }
}

resource "aws_subnet" "private" {
  count             = local.zones
  vpc_id            = aws_vpc.main.id
  availability_zone = var.availability_zones[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, 8 + count.index)
  tags              = { Name = "${var.name}-private-${var.availability_zones[count.index]}", Tier = "private" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "${var.name}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main.id
}

resource "aws_route_table_association" "public" {
  count          = local.zones
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  count  = local.nat_zones
  domain = "vpc"
  tags   = { Name = "${var.name}-nat-${count.index}" }
}

resource "aws_nat_gateway" "main" {
  count         = local.nat_zones
  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = { Name = "${var.name}-nat-${count.index}" }
  depends_on    = [aws_internet_gateway.main]
}

# One private route table per zone, each through its zone's NAT gateway
# (or the only one)
resource "aws_route_table" "private" {
  count  = local.zones
  vpc_id = aws_vpc.main.id
  tags   = { Name = "${var.name}-private-${var.availability_zones[count.index]}" }
}

resource "aws_route" "private_nat" {
  count                  = local.zones
  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.main[var.nat_gateway_per_az ? count.index : 0].id
}

resource "aws_route_table_association" "private" {
  count          = local.zones
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# S3 traffic (every photo's bytes, both ways) stays off the NAT gateways:
# a gateway endpoint costs nothing per byte
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${aws_vpc.main.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id
  tags              = { Name = "${var.name}-s3" }
}

# ---- security groups

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "The load balancer: HTTP and HTTPS from anywhere, to the API tasks"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-alb" }
}

resource "aws_security_group" "api" {
  name        = "${var.name}-api"
  description = "The API tasks: 8080 from the load balancer only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-api" }
}

resource "aws_security_group" "pipeline" {
  name        = "${var.name}-pipeline"
  description = "The processing tasks: no inbound (the broker on loopback) unless broker_remote_workers"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-pipeline" }
}

resource "aws_security_group" "database" {
  name        = "${var.name}-db"
  description = "PostgreSQL: 5432 from the API and processing tasks only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-db" }
}

resource "aws_security_group" "image_processor" {
  count       = var.image_processor ? 1 : 0
  name        = "${var.name}-image-processor"
  description = "The image-processor Lambda function: no inbound; out to AWS APIs and the database"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-image-processor" }
}

resource "aws_security_group" "broker_clients" {
  count       = var.broker_remote_workers ? 1 : 0
  name        = "${var.name}-broker-clients"
  description = "Remote workers and producers allowed to reach the pipeline's broker (CURVE keys still required)"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-broker-clients" }
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each          = toset(["80", "443"])
  security_group_id = aws_security_group.alb.id
  description       = "clients"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.key)
  to_port           = tonumber(each.key)
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "alb_to_api" {
  security_group_id            = aws_security_group.alb.id
  description                  = "the API tasks"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.api.id
}

resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.api.id
  description                  = "the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "database" {
  for_each = {
    api      = aws_security_group.api.id
    pipeline = aws_security_group.pipeline.id
  }
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "database_image_processor" {
  count                        = var.image_processor ? 1 : 0
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the image-processor Lambda function"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.image_processor[0].id
}

resource "aws_vpc_security_group_ingress_rule" "broker" {
  for_each                     = var.broker_remote_workers ? toset(["5570", "5571"]) : toset([])
  security_group_id            = aws_security_group.pipeline.id
  description                  = "the broker (${each.key == "5570" ? "producers" : "workers"}), CURVE"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.key)
  to_port                      = tonumber(each.key)
  referenced_security_group_id = aws_security_group.broker_clients[0].id
}

# Outbound from the tasks: HTTPS to AWS (S3, SQS, SSM, ECR, CloudWatch
# Logs) and PostgreSQL to the database; nothing else
resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  for_each          = { api = aws_security_group.api.id, pipeline = aws_security_group.pipeline.id }
  security_group_id = each.value
  description       = "AWS APIs over HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_database" {
  for_each                     = { api = aws_security_group.api.id, pipeline = aws_security_group.pipeline.id }
  security_group_id            = each.value
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

# The function, the same way out as the tasks
resource "aws_vpc_security_group_egress_rule" "image_processor_https" {
  count             = var.image_processor ? 1 : 0
  security_group_id = aws_security_group.image_processor[0].id
  description       = "AWS APIs over HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "image_processor_database" {
  count                        = var.image_processor ? 1 : 0
  security_group_id            = aws_security_group.image_processor[0].id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_egress_rule" "broker_clients" {
  for_each                     = var.broker_remote_workers ? toset(["5570", "5571"]) : toset([])
  security_group_id            = aws_security_group.broker_clients[0].id
  description                  = "the pipeline's broker"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.key)
  to_port                      = tonumber(each.key)
  referenced_security_group_id = aws_security_group.pipeline.id
}
