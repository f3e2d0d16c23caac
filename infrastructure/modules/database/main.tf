# PostgreSQL on RDS, in the private subnets, encrypted, backed up. The
# engine reads one setting, db.url (RAPIDPHOTO_DB_URL): the full URL with
# a generated password is this module's output, and the compute module
# keeps it in the SSM parameter the task definitions name.

locals {
  username = "rapidphoto"
  database = "rapidphoto"
}

# URL-safe: it goes into postgresql://user:password@host/...
resource "random_password" "master" {
  length  = 40
  special = false
}

resource "aws_db_subnet_group" "main" {
  name       = var.identifier
  subnet_ids = var.subnet_ids
}

resource "aws_db_instance" "main" {
  identifier     = var.identifier
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  db_name  = local.database
  username = local.username
  password = random_password.master.result
  port     = 5432

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true

  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [var.security_group_id]
  publicly_accessible    = false
  multi_az               = var.multi_az

  backup_retention_period    = var.backup_retention_days
  backup_window              = "03:00-04:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  auto_minor_version_upgrade = true
  copy_tags_to_snapshot      = true
  deletion_protection        = var.deletion_protection
  # Without deletion protection (dev) a destroy takes no final snapshot
  skip_final_snapshot       = !var.deletion_protection
  final_snapshot_identifier = var.deletion_protection ? "${var.identifier}-final" : null

  enabled_cloudwatch_logs_exports = ["postgresql"]
}
