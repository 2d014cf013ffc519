-- eoms schema 11: the delivery loops claim a channel's pending messages in due order; this index
-- holds only pending rows, so a claim reads what is waiting, not the channel's whole history
-- (delivered rows outnumber pending ones by far: at 190 k delivered notifications, an idle claim
-- read them all, 0.1 s every few seconds).
CREATE INDEX outbox_pending ON outbox (channel, next_attempt_at, id) WHERE status = 'pending';
