-- eoms schema 15: the full-text entry and the data-scope relations are rewritten apart.
-- `aux_hash` used to cover both a ticket's relations (org units and people it concerns) and its
-- keywords, so an action that only moved a task to another owner rewrote the ticket's full-text
-- entry too — every trigram of its texts. `aux_hash` now covers the relations only, and
-- `keywords_hash` the keywords. Rows written before this version hold the old combined hash and
-- keywords_hash 0: their next write sees both as changed and rewrites both, once.
ALTER TABLE tickets ADD COLUMN keywords_hash BIGINT NOT NULL DEFAULT 0;
