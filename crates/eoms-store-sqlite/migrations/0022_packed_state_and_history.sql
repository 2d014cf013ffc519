-- From schema 22 a ticket's state (tickets.state) and its history rows (ticket_events.body) are
-- written as BLOBs: a format byte and the JSON compressed by zstd with eoms' dictionary
-- (src/packed.rs). Values written before stay TEXT and are read as they are; a ticket's state is
-- packed at its next write. Nothing to change in the tables (a column's TEXT affinity leaves
-- BLOBs as they are); the version bump keeps binaries that cannot read packed values off a
-- database that has them.
SELECT 1;
