-- Schema 19 rewrites SQLite's outbox ordering triggers so that they test the channel without a
-- list of constants (SQLite builds a temporary B-tree for each run of such a test). PostgreSQL
-- compares against a short list in place: its triggers stay as they are; nothing changes here
-- but this note.
COMMENT ON FUNCTION outbox_wait_behind() IS 'A new message on an ordered channel waits behind an undelivered earlier one of its ticket (schema 14).';
