-- eoms schema 1 (SQLite). Times are UTC milliseconds since the epoch.
CREATE TABLE id_blocks (name TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO id_blocks (name, next) VALUES ('ticket', 1);

CREATE TABLE tickets (
  id INTEGER PRIMARY KEY,
  sheet_no TEXT NOT NULL UNIQUE,
  css_serial_no TEXT,
  process TEXT NOT NULL,
  process_version INTEGER NOT NULL,
  span TEXT NOT NULL,
  status TEXT NOT NULL,
  title TEXT NOT NULL,
  msisdn TEXT,
  complaint_source TEXT,
  category TEXT,
  urgency TEXT,
  customer_level TEXT,
  network_type TEXT,
  satisfaction TEXT,
  province TEXT,
  city TEXT,
  creator TEXT NOT NULL,
  creator_org TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  replied_at INTEGER,
  closed_at INTEGER,
  deadline INTEGER,
  seq INTEGER NOT NULL,
  -- Rows in ticket_events: one per write (a JSON array of that action's events).
  event_count INTEGER NOT NULL,
  -- Hash of the data-scope relations and keywords last written: unchanged ones are not rewritten.
  aux_hash INTEGER NOT NULL,
  state TEXT NOT NULL
);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX tickets_status_created ON tickets (status, created_at);
CREATE INDEX tickets_process_created ON tickets (process, created_at);
CREATE INDEX tickets_msisdn ON tickets (msisdn) WHERE msisdn IS NOT NULL;
CREATE INDEX tickets_css_serial ON tickets (css_serial_no) WHERE css_serial_no IS NOT NULL;
CREATE INDEX tickets_open_deadline ON tickets (deadline) WHERE closed_at IS NULL;

-- The append-only history: one row per action (n = 0, 1, …), the JSON array of its events.
CREATE TABLE ticket_events (
  ticket_id INTEGER NOT NULL REFERENCES tickets (id),
  n INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (ticket_id, n)
) WITHOUT ROWID;

-- One row per action (环节处理记录), for done lists and KPIs.
CREATE TABLE actions (
  ticket_id INTEGER NOT NULL REFERENCES tickets (id),
  seq INTEGER NOT NULL,
  action TEXT NOT NULL,
  code INTEGER,
  actor TEXT NOT NULL,
  actor_org TEXT NOT NULL,
  step TEXT,
  at INTEGER NOT NULL,
  on_time INTEGER,
  PRIMARY KEY (ticket_id, seq)
) WITHOUT ROWID;
CREATE INDEX actions_actor ON actions (actor, at);

-- Live tasks (待办).
CREATE TABLE tasks (
  ticket_id INTEGER NOT NULL REFERENCES tickets (id),
  task_no INTEGER NOT NULL,
  step TEXT NOT NULL,
  sub_order INTEGER NOT NULL,
  grp TEXT,
  assignee TEXT,
  claimed_by TEXT,
  org TEXT NOT NULL,
  side INTEGER NOT NULL,
  opened_at INTEGER NOT NULL,
  accept_deadline INTEGER,
  complete_deadline INTEGER,
  PRIMARY KEY (ticket_id, task_no)
) WITHOUT ROWID;
CREATE INDEX tasks_group_ready ON tasks (grp, opened_at) WHERE claimed_by IS NULL AND assignee IS NULL;
CREATE INDEX tasks_assignee ON tasks (assignee, opened_at) WHERE claimed_by IS NULL;
CREATE INDEX tasks_claimed ON tasks (claimed_by, opened_at);

-- Data scope and "handling department" conditions: every org unit a ticket concerns, with ancestors.
CREATE TABLE ticket_orgs (
  org_id TEXT NOT NULL,
  relation TEXT NOT NULL,
  ticket_id INTEGER NOT NULL REFERENCES tickets (id),
  PRIMARY KEY (org_id, relation, ticket_id)
) WITHOUT ROWID;
CREATE INDEX ticket_orgs_ticket ON ticket_orgs (ticket_id);

CREATE TABLE ticket_users (
  user_id TEXT NOT NULL,
  relation TEXT NOT NULL,
  ticket_id INTEGER NOT NULL REFERENCES tickets (id),
  PRIMARY KEY (user_id, relation, ticket_id)
) WITHOUT ROWID;
CREATE INDEX ticket_users_ticket ON ticket_users (ticket_id);

-- Keyword search over Chinese text: trigram FTS5 (queries of 3+ characters use the index; shorter
-- ones scan the same table with LIKE).
CREATE VIRTUAL TABLE ticket_fts USING fts5 (keywords, tokenize = 'trigram');

CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id INTEGER NOT NULL REFERENCES tickets (id),
  channel TEXT NOT NULL,
  kind TEXT NOT NULL,
  message_id TEXT NOT NULL UNIQUE,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_ticket ON outbox (ticket_id, id);

CREATE TABLE timers (
  ticket_id INTEGER NOT NULL REFERENCES tickets (id),
  task_no INTEGER NOT NULL,
  kind TEXT NOT NULL,
  due_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER,
  PRIMARY KEY (ticket_id, task_no, kind)
) WITHOUT ROWID;
CREATE INDEX timers_due ON timers (due_at);

CREATE TABLE idempotency (
  key TEXT PRIMARY KEY,
  response TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE processes (
  key TEXT NOT NULL,
  version INTEGER NOT NULL,
  source TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (key, version)
) WITHOUT ROWID;

CREATE TABLE org_units (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  name_en TEXT NOT NULL,
  kind TEXT NOT NULL,
  parent TEXT,
  position INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE function_roles (
  key TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  permissions TEXT NOT NULL,
  scope TEXT NOT NULL,
  position INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  org TEXT NOT NULL,
  function_roles TEXT NOT NULL,
  active INTEGER NOT NULL,
  password_hash TEXT,
  position INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sub_roles (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  flow_role TEXT NOT NULL,
  region TEXT,
  dims TEXT NOT NULL,
  leader TEXT,
  is_default INTEGER NOT NULL,
  position INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sub_role_members (
  sub_role TEXT NOT NULL REFERENCES sub_roles (id) ON DELETE CASCADE,
  user_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (sub_role, user_id)
) WITHOUT ROWID;
