-- eoms schema 14: on an ordered channel (CSS, TMF, notify) only the oldest undelivered message of
-- a ticket may be sent. Claims used to find those by reading every due pending row and probing
-- for an earlier one; during a CSS outage every message behind a failing one stays due, so each
-- claim read the whole backlog. `blocked` marks a message that waits behind an earlier
-- undelivered one; the pending index holds only unblocked rows, so a claim reads just the
-- messages it may send.
ALTER TABLE outbox ADD COLUMN blocked BOOLEAN NOT NULL DEFAULT FALSE;

UPDATE outbox SET blocked = TRUE
WHERE status <> 'delivered' AND channel NOT IN ('email', 'sms', 'webhook')
  AND EXISTS (SELECT 1 FROM outbox p WHERE p.channel = outbox.channel AND p.ticket_id = outbox.ticket_id
                AND p.id < outbox.id AND p.status <> 'delivered');

DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (channel, next_attempt_at, id) WHERE status = 'pending' AND NOT blocked;

-- Kept by the database itself, so that no writer can forget it. A new message waits if an earlier
-- one of its ticket is undelivered (pending or dead). The earlier rows are locked: a delivery
-- committing at the same moment either finishes first (and the row is then not counted) or waits
-- for this insert to commit, and then sees the new row when it looks for the next in line.
CREATE FUNCTION outbox_wait_behind() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.channel NOT IN ('email', 'sms', 'webhook') THEN
    PERFORM 1 FROM outbox p WHERE p.channel = NEW.channel AND p.ticket_id = NEW.ticket_id
      AND p.id < NEW.id AND p.status <> 'delivered' FOR UPDATE;
    NEW.blocked := FOUND;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER outbox_wait_behind BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_wait_behind();

-- When a message is delivered, the oldest undelivered message of its ticket is next.
CREATE FUNCTION outbox_next_in_line() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE outbox SET blocked = FALSE
  WHERE id = (SELECT MIN(p.id) FROM outbox p WHERE p.channel = NEW.channel AND p.ticket_id = NEW.ticket_id
                AND p.status <> 'delivered')
    AND blocked;
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_next_in_line AFTER UPDATE OF status ON outbox FOR EACH ROW
  WHEN (NEW.status = 'delivered' AND OLD.status <> 'delivered' AND NEW.channel NOT IN ('email', 'sms', 'webhook'))
  EXECUTE FUNCTION outbox_next_in_line();
