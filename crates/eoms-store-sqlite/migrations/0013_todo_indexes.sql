-- eoms schema 13: the to-do list reads each of a user's three task sets (claimed by them, assigned
-- to them, ready in their groups) from its own index in deadline order (the expression the list
-- sorts by), so a page is a merge of three index walks that stops after the page, and the count
-- reads index entries only. The NULL conditions are index columns so that SQLite can use them
-- as equalities and keep the order.
DROP INDEX tasks_group_ready;
DROP INDEX tasks_assignee;
DROP INDEX tasks_claimed;
CREATE INDEX tasks_claimed ON tasks (claimed_by, COALESCE(complete_deadline, opened_at));
CREATE INDEX tasks_assignee ON tasks (assignee, claimed_by, COALESCE(complete_deadline, opened_at))
  WHERE claimed_by IS NULL;
CREATE INDEX tasks_group_ready ON tasks (grp, claimed_by, assignee, COALESCE(complete_deadline, opened_at))
  WHERE claimed_by IS NULL AND assignee IS NULL;
