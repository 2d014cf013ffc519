-- eoms schema 12: daily KPI counts kept in each action's transaction (docs/KPIS.md). A ticket
-- contributes one row (its creation day in China time and the dimensions below) plus one per
-- further problem province; `tickets.kpi` keeps what it contributes now, so that an action that
-- changes it moves its counts. `eoms migrate` fills both for the tickets already stored.
CREATE TABLE kpi_daily (
  day INTEGER NOT NULL,
  region TEXT NOT NULL,
  main INTEGER NOT NULL,
  city TEXT NOT NULL,
  category TEXT NOT NULL,
  source TEXT NOT NULL,
  process TEXT NOT NULL,
  span TEXT NOT NULL,
  province TEXT NOT NULL,
  volume INTEGER NOT NULL,
  replied INTEGER NOT NULL,
  on_time INTEGER NOT NULL,
  handling_secs INTEGER NOT NULL,
  solved_known INTEGER NOT NULL,
  solved INTEGER NOT NULL,
  closed INTEGER NOT NULL,
  rated INTEGER NOT NULL,
  satisfied INTEGER NOT NULL,
  repeats INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  returned INTEGER NOT NULL,
  redispatched INTEGER NOT NULL,
  overdue INTEGER NOT NULL,
  PRIMARY KEY (day, region, main, city, category, source, process, span, province)
) WITHOUT ROWID;
ALTER TABLE tickets ADD COLUMN kpi TEXT;
