-- Schema 16 stores SQLite's history in the order it is written (a sequence key and an index by
-- ticket). PostgreSQL keeps a table's rows in a heap, in the order they are inserted, and finds a
-- ticket's rows by the primary key's index already: nothing changes here but this note.
COMMENT ON TABLE ticket_events IS 'The append-only history: one row per action (n = 0, 1, ...), the JSON array of its events; rows in write order (heap).';
