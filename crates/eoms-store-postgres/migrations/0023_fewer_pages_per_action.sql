-- Schema 23 changes the embedded SQLite layout only: a ticket's history rows listed in its own row
-- and one outbox index per ticket instead of two, so that each action writes fewer pages per
-- group commit (eoms-store-sqlite's migration 0023). PostgreSQL writes its rows to a shared WAL
-- and keeps its indexes as they are; the number is kept equal.
SELECT 1;
