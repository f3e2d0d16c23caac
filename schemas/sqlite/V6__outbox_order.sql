-- schemas/sqlite/V6__outbox_order.sql: PostgreSQL's V6 records which
-- transaction wrote each event, so that its outbox publishes in commit
-- order. SQLite commits one writer at a time, and a writer takes the next
-- event id while it holds the write lock: ids are already in commit order,
-- so there is nothing to add. The version is kept in step with PostgreSQL's.

SELECT 1;
