-- eoms schema 20: the `blocked` marks of schema 14 are kept by the two statements that change
-- them — queuing a message and marking one delivered (`write::insert_outbox`,
-- `write::outbox_delivered`) — instead of by triggers. A statement that fires a trigger may write
-- several rows, so SQLite gives it a statement journal: before it first changes a page, the page
-- is copied, so that a failure half-way can be undone. Queuing a message touched five pages (the
-- table and its four indexes); the copies and the trigger's own work were a tenth of an action's
-- instructions. The single-row statements that replace the triggers need no journal; the rule
-- they keep is the same (a new message on an ordered channel waits while an earlier one of its
-- ticket is undelivered; a delivery releases the oldest undelivered one), and the upgrade test
-- checks every message's mark after new writes and deliveries.
DROP TRIGGER outbox_wait_behind;
DROP TRIGGER outbox_next_in_line;
