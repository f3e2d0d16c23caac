output "identifier" {
  description = "The instance's identifier"
  value       = aws_db_instance.main.identifier
}

output "address" {
  description = "The instance's host name"
  value       = aws_db_instance.main.address
}

output "url" {
  description = "db.url for the engine: postgresql://user:password@host:port/db, TLS required"
  value       = "postgresql://${local.username}:${random_password.master.result}@${aws_db_instance.main.address}:${aws_db_instance.main.port}/${local.database}?sslmode=require"
  sensitive   = true
}
