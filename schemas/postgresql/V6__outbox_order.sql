-- schemas/postgresql/V6__outbox_order.sql: events published in the order
-- their transactions ended, never past one still open.
--
-- An event's id is taken when it is inserted, not when its transaction
-- commits, so a transaction that commits late can hold a lower id than
-- events already visible and published: a publisher moving an id cursor
-- past it skips it for good (V4 waited 5 s and hoped). Each event now
-- records the transaction that wrote it. Every transaction older than the
-- oldest one still running (pg_snapshot_xmin) has ended, so events below it
-- are final, and publishing in (tx, id) order never passes one still to
-- come. outbox.last_tx is where a publisher got to in that order.
--
-- Expand only (schemas/README.md): events.tx fills itself by its default,
-- whichever release writes the row; rows from before this migration keep
-- NULL (all committed: the ALTER waited for them) and come first.
-- last_event_id is still kept up to date for releases that read only it.

ALTER TABLE events ADD COLUMN tx xid8;
ALTER TABLE events ALTER COLUMN tx SET DEFAULT pg_current_xact_id ();
ALTER TABLE outbox ADD COLUMN last_tx xid8;
CREATE INDEX events_outbox ON events (tx, id) WHERE status IN ('complete', 'failed');
