-- The history in the order it is written. Keyed by (ticket, n), each action's row (the JSON of
-- its events, ~1–2 KB) went into its own ticket's page: a group commit of 60 actions of 60
-- tickets dirtied 60 pages and split them as they filled — some 40 % of the bytes written per
-- action (WAL and checkpoint). Keyed by a sequence, the rows of one commit share the last pages
-- of the table; a narrow index finds a ticket's rows in order.
CREATE TABLE ticket_events_by_seq (
  seq INTEGER PRIMARY KEY,
  ticket_id INTEGER NOT NULL REFERENCES tickets (id),
  n INTEGER NOT NULL,
  body TEXT NOT NULL
);
INSERT INTO ticket_events_by_seq (ticket_id, n, body) SELECT ticket_id, n, body FROM ticket_events ORDER BY ticket_id, n;
DROP TABLE ticket_events;
ALTER TABLE ticket_events_by_seq RENAME TO ticket_events;
CREATE UNIQUE INDEX ticket_events_ticket ON ticket_events (ticket_id, n);
