-- eoms schema 7 (PostgreSQL): assurance periods (重保), and the period a ticket fell in.
CREATE TABLE assurance_periods (
  id BIGSERIAL PRIMARY KEY,
  starts_at TIMESTAMPTZ NOT NULL,
  ends_at TIMESTAMPTZ NOT NULL,
  body TEXT NOT NULL
);
ALTER TABLE tickets ADD COLUMN assurance TEXT;
