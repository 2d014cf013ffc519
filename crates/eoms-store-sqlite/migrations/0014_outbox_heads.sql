-- eoms schema 14: on an ordered channel (CSS, TMF, notify) only the oldest undelivered message of
-- a ticket may be sent. Claims used to find those by reading every due pending row and probing
-- for an earlier one; during a CSS outage every message behind a failing one stays due, so each
-- claim read the whole backlog (8,448 rows after 15 s of load: a fifth of the writer's time).
-- `blocked` marks a message that waits behind an earlier undelivered one; the pending index holds
-- only unblocked rows, so a claim reads just the messages it may send.
ALTER TABLE outbox ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;

UPDATE outbox SET blocked = 1
WHERE status <> 'delivered' AND channel NOT IN ('email', 'sms', 'webhook')
  AND EXISTS (SELECT 1 FROM outbox p WHERE p.channel = outbox.channel AND p.ticket_id = outbox.ticket_id
                AND p.id < outbox.id AND p.status <> 'delivered');

DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (channel, next_attempt_at, id) WHERE status = 'pending' AND blocked = 0;

-- Kept by the database itself, so that no writer can forget it: a new message waits if an earlier
-- one of its ticket is undelivered (pending or dead) ...
CREATE TRIGGER outbox_wait_behind AFTER INSERT ON outbox
WHEN NEW.channel NOT IN ('email', 'sms', 'webhook')
  AND EXISTS (SELECT 1 FROM outbox p WHERE p.channel = NEW.channel AND p.ticket_id = NEW.ticket_id
                AND p.id < NEW.id AND p.status <> 'delivered')
BEGIN
  UPDATE outbox SET blocked = 1 WHERE id = NEW.id;
END;

-- ... and when one is delivered, the oldest undelivered message of its ticket is next.
CREATE TRIGGER outbox_next_in_line AFTER UPDATE OF status ON outbox
WHEN NEW.status = 'delivered' AND OLD.status <> 'delivered' AND NEW.channel NOT IN ('email', 'sms', 'webhook')
BEGIN
  UPDATE outbox SET blocked = 0
  WHERE id = (SELECT MIN(p.id) FROM outbox p WHERE p.channel = NEW.channel AND p.ticket_id = NEW.ticket_id
                AND p.status <> 'delivered')
    AND blocked = 1;
END;
