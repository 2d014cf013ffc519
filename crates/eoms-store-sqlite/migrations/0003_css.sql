-- eoms schema 3 (SQLite): the CSS interface.
-- Per-province configuration (credentials, field and code mappings, outbound endpoint).
CREATE TABLE css_provinces (
  province TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  position INTEGER NOT NULL
) WITHOUT ROWID;

-- Every inbound call, raw, before it is processed; one per (province, method, serial no., call time).
CREATE TABLE css_inbound (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  province TEXT NOT NULL,
  method TEXT NOT NULL,
  serial_no TEXT NOT NULL,
  call_time TEXT NOT NULL,
  raw TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  result TEXT,
  UNIQUE (province, method, serial_no, call_time)
);

CREATE INDEX outbox_channel_ticket ON outbox (channel, ticket_id, id);
