-- eoms schema 7 (SQLite): assurance periods (重保), and the period a ticket fell in.
CREATE TABLE assurance_periods (
  id INTEGER PRIMARY KEY,
  starts_at INTEGER NOT NULL,
  ends_at INTEGER NOT NULL,
  body TEXT NOT NULL
);
ALTER TABLE tickets ADD COLUMN assurance TEXT;
