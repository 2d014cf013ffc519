-- Schema 17 stores SQLite's action records in the order they are written. PostgreSQL keeps a
-- table's rows in a heap, in insertion order, already: nothing changes here but this note.
COMMENT ON TABLE actions IS 'One row per action (环节处理记录); rows in write order (heap).';
