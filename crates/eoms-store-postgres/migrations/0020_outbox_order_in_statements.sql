-- Schema 20 moves SQLite's outbox ordering from triggers into the statements that queue and
-- deliver messages (a statement that fires a trigger costs SQLite a statement journal: a copy of
-- every page it changes). PostgreSQL has no such cost: its triggers of schema 14 stay; nothing
-- changes here but this note.
COMMENT ON FUNCTION outbox_next_in_line() IS 'When a message is delivered, the oldest undelivered message of its ticket on an ordered channel is next (schema 14).';
