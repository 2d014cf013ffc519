-- Every lookup of a ticket's messages names the ticket (the ordering triggers of schema 14, the
-- claim's check for an earlier undelivered message, a ticket's message list), and a ticket has
-- a handful of messages: the index by (ticket, id) finds them, the channel is checked on those
-- few rows. The index by (channel, ticket, id) only repeated it, and cost every message one more
-- index page of its own ticket.
DROP INDEX outbox_channel_ticket;
