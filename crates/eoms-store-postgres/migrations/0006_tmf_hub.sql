-- eoms schema 6 (PostgreSQL): TMF621 — each ticket's TMF document, and the hub's listeners.
CREATE TABLE tmf_tickets (
  ticket_id BIGINT PRIMARY KEY REFERENCES tickets (id),
  body JSONB NOT NULL
);
CREATE TABLE tmf_listeners (
  id TEXT PRIMARY KEY,
  callback TEXT NOT NULL,
  query TEXT NOT NULL,
  version TEXT NOT NULL,
  owner TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
