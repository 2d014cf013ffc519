-- eoms schema 5 (SQLite): per-user preferences (console language, saved queries, …) and the
-- columns the complaint KPIs count by.
CREATE TABLE user_preferences (
  user_id TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (user_id, key)
);

-- KPIs (docs/KPIS.md): whether the handler solved it (1/0, unknown: NULL), events that happened
-- to it as bits (1 rejected, 2 returned, 4 re-dispatched, 8 past its deadline), and how many
-- earlier complaints of the same subscriber fell in the repeat window when it was created.
ALTER TABLE tickets ADD COLUMN solved SMALLINT;
ALTER TABLE tickets ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN repeat_count INTEGER NOT NULL DEFAULT 0;
