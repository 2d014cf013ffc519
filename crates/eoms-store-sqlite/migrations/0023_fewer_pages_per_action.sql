-- Two indexes keyed by ticket went: each put a page of its own into every commit for each ticket
-- the commit touched — a group commit of 32 actions wrote ~8 pages (32 KB of WAL) per action, and
-- these two were a quarter of them (docs/BENCHMARKS.md, "Durable writes", ninth round).
--
-- 1. A ticket's history rows are listed in its own row (tickets.event_rows: their rowids in
--    order, comma-separated) instead of found through the index (ticket_id, n). The ticket's row
--    is written by every action anyway; the list costs no page of its own. That a ticket's rows
--    are numbered once each is kept by the ticket's version check, as before.
ALTER TABLE tickets ADD COLUMN event_rows TEXT;
UPDATE tickets SET event_rows = (SELECT group_concat(e.seq, ',' ORDER BY e.n) FROM ticket_events e WHERE e.ticket_id = tickets.id);
DROP INDEX ticket_events_ticket;

-- 2. An outbox message's id is unique per ticket — it is made of the ticket's id, version and the
--    effect's place (`ticket-seq-i`), and notifications made from a message keep its ticket — so
--    one unique index on (ticket, message id) both finds a ticket's messages and refuses a message
--    twice, where a unique index on the id alone and one on (ticket, id) took two pages an insert.
--    A column's UNIQUE cannot be dropped in SQLite: the table is made again, ids and the
--    AUTOINCREMENT counter kept.
CREATE TABLE outbox_by_ticket (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id INTEGER NOT NULL REFERENCES tickets (id),
  channel TEXT NOT NULL,
  kind TEXT NOT NULL,
  message_id TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER,
  blocked INTEGER NOT NULL DEFAULT 0
);
INSERT INTO outbox_by_ticket (id, ticket_id, channel, kind, message_id, payload, status, attempts, next_attempt_at,
                              lease_owner, lease_until, last_error, created_at, delivered_at, blocked)
  SELECT id, ticket_id, channel, kind, message_id, payload, status, attempts, next_attempt_at,
         lease_owner, lease_until, last_error, created_at, delivered_at, blocked FROM outbox ORDER BY id;
-- The counter: the old table's (never below its highest id, purged messages counted) passes to
-- the new one, whose own, from the copy, is dropped; the rename carries it back to `outbox`.
DELETE FROM sqlite_sequence WHERE name = 'outbox_by_ticket';
UPDATE sqlite_sequence SET name = 'outbox_by_ticket' WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_by_ticket RENAME TO outbox;
CREATE UNIQUE INDEX outbox_ticket ON outbox (ticket_id, message_id);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_pending ON outbox (channel, next_attempt_at, id) WHERE status = 'pending' AND blocked = 0;
