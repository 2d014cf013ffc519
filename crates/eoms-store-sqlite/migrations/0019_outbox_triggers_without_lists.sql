-- eoms schema 19: the ordering triggers of schema 14 tested the channel with `NOT IN ('email',
-- 'sms', 'webhook')`. SQLite evaluates a list of more than two constants by building a temporary
-- B-tree of it, once per run of the statement: for a trigger, once per message queued or
-- delivered, a tenth of the cost of queuing the message. The same test written as three
-- comparisons builds nothing.
DROP TRIGGER outbox_wait_behind;
CREATE TRIGGER outbox_wait_behind AFTER INSERT ON outbox
WHEN NEW.channel <> 'email' AND NEW.channel <> 'sms' AND NEW.channel <> 'webhook'
  AND EXISTS (SELECT 1 FROM outbox p WHERE p.channel = NEW.channel AND p.ticket_id = NEW.ticket_id
                AND p.id < NEW.id AND p.status <> 'delivered')
BEGIN
  UPDATE outbox SET blocked = 1 WHERE id = NEW.id;
END;

DROP TRIGGER outbox_next_in_line;
CREATE TRIGGER outbox_next_in_line AFTER UPDATE OF status ON outbox
WHEN NEW.status = 'delivered' AND OLD.status <> 'delivered'
  AND NEW.channel <> 'email' AND NEW.channel <> 'sms' AND NEW.channel <> 'webhook'
BEGIN
  UPDATE outbox SET blocked = 0
  WHERE id = (SELECT MIN(p.id) FROM outbox p WHERE p.channel = NEW.channel AND p.ticket_id = NEW.ticket_id
                AND p.status <> 'delivered')
    AND blocked = 1;
END;
