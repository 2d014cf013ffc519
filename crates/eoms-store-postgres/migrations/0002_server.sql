-- eoms schema 2 (PostgreSQL): what the server keeps besides tickets.
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until TIMESTAMPTZ;

-- Sessions and API tokens, by the SHA-256 of the token (the token itself is never stored).
CREATE TABLE credentials (
  token_hash TEXT PRIMARY KEY,
  id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  last_seen_at TIMESTAMPTZ NOT NULL,
  expires_at TIMESTAMPTZ
);
CREATE INDEX credentials_user ON credentials (user_id, created_at);

CREATE TABLE audit_log (
  id BIGSERIAL PRIMARY KEY,
  at TIMESTAMPTZ NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail JSONB NOT NULL
);

CREATE TABLE attachments (
  id BIGSERIAL PRIMARY KEY,
  ticket_id BIGINT NOT NULL REFERENCES tickets (id),
  sha256 TEXT NOT NULL,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size BIGINT NOT NULL,
  uploaded_by TEXT NOT NULL,
  uploaded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX attachments_ticket ON attachments (ticket_id, id);

CREATE TABLE dictionaries (
  key TEXT PRIMARY KEY,
  body JSONB NOT NULL,
  position INTEGER NOT NULL
);
