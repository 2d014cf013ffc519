-- Schema 22 packs the ticket's state and history rows in SQLite (compressed with a dictionary).
-- PostgreSQL keeps them as they are: it compresses large values itself (TOAST), and its rows are
-- not rewritten whole by the pages a commit dirties as SQLite's are. The number is kept the same
-- on both backends.
SELECT 1;
