-- eoms schema 9: the business calendar of the org directory (working weekdays and hours,
-- holidays, make-up working days), kept as the directory's [calendar] table in JSON; one row.
CREATE TABLE calendar (id INTEGER PRIMARY KEY CHECK (id = 1), spec TEXT NOT NULL);
