-- eoms schema 5 (PostgreSQL): per-user preferences (console language, saved queries, …).
CREATE TABLE user_preferences (
  user_id TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (user_id, key)
);
