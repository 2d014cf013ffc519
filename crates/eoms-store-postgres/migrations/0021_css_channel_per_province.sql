-- Schema 21: the messages to CSS move from one `css` channel to one channel per province
-- (`css:{province}`, the province the message names and is routed to), so each province's
-- delivery is its own — its claims, its order, its circuit: a province whose CSS is down or slow
-- holds up no other. A ticket's messages all name its province, so they stay in one channel, in
-- order, and the `blocked` marks (per ticket and channel) stay right; the ordering triggers fire
-- on insert and on delivery, not here.
UPDATE outbox SET channel = 'css:' || COALESCE(payload::jsonb #>> '{ticket,province}', '') WHERE channel = 'css';
