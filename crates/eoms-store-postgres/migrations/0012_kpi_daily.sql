-- eoms schema 12: daily KPI counts kept in each action's transaction (docs/KPIS.md). A ticket
-- contributes one row (its creation day in China time and the dimensions below) plus one per
-- further problem province; `tickets.kpi` keeps what it contributes now, so that an action that
-- changes it moves its counts. `eoms migrate` fills both for the tickets already stored.
CREATE TABLE kpi_daily (
  day BIGINT NOT NULL,
  region TEXT NOT NULL,
  main SMALLINT NOT NULL,
  city TEXT NOT NULL,
  category TEXT NOT NULL,
  source TEXT NOT NULL,
  process TEXT NOT NULL,
  span TEXT NOT NULL,
  province TEXT NOT NULL,
  volume BIGINT NOT NULL,
  replied BIGINT NOT NULL,
  on_time BIGINT NOT NULL,
  handling_secs BIGINT NOT NULL,
  solved_known BIGINT NOT NULL,
  solved BIGINT NOT NULL,
  closed BIGINT NOT NULL,
  rated BIGINT NOT NULL,
  satisfied BIGINT NOT NULL,
  repeats BIGINT NOT NULL,
  rejected BIGINT NOT NULL,
  returned BIGINT NOT NULL,
  redispatched BIGINT NOT NULL,
  overdue BIGINT NOT NULL,
  PRIMARY KEY (day, region, main, city, category, source, process, span, province)
);
ALTER TABLE tickets ADD COLUMN kpi TEXT;
