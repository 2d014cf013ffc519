-- eoms schema 3 (PostgreSQL): the CSS interface.
-- Per-province configuration (credentials, field and code mappings, outbound endpoint).
CREATE TABLE css_provinces (
  province TEXT PRIMARY KEY,
  body JSONB NOT NULL,
  position INTEGER NOT NULL
);

-- Every inbound call, raw, before it is processed; one per (province, method, serial no., call time).
CREATE TABLE css_inbound (
  id BIGSERIAL PRIMARY KEY,
  province TEXT NOT NULL,
  method TEXT NOT NULL,
  serial_no TEXT NOT NULL,
  call_time TEXT NOT NULL,
  raw TEXT NOT NULL,
  received_at TIMESTAMPTZ NOT NULL,
  result TEXT,
  UNIQUE (province, method, serial_no, call_time)
);

CREATE INDEX outbox_channel_ticket ON outbox (channel, ticket_id, id);
