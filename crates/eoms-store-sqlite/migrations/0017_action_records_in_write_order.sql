-- The action records (环节处理记录) in the order they are written, as the history since schema 16.
-- Keyed by (ticket, seq), each action's record went into its own ticket's page: with group
-- commit one page per action, 5 of the 37 KB written per action (WAL and checkpoint). eoms reads
-- them by actor (the index below) and never by ticket — a ticket's own history is
-- ticket_events — so a batch's records now share the table's last pages. That a ticket's
-- records are numbered once each is kept by the ticket's version check, as for its history.
CREATE TABLE actions_in_write_order (
  ticket_id INTEGER NOT NULL REFERENCES tickets (id),
  seq INTEGER NOT NULL,
  action TEXT NOT NULL,
  code INTEGER,
  actor TEXT NOT NULL,
  actor_org TEXT NOT NULL,
  step TEXT,
  at INTEGER NOT NULL,
  on_time INTEGER
);
INSERT INTO actions_in_write_order (ticket_id, seq, action, code, actor, actor_org, step, at, on_time)
  SELECT ticket_id, seq, action, code, actor, actor_org, step, at, on_time FROM actions ORDER BY at, ticket_id, seq;
DROP TABLE actions;
ALTER TABLE actions_in_write_order RENAME TO actions;
CREATE INDEX actions_actor ON actions (actor, at);
