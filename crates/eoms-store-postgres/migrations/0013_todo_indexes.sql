-- eoms schema 13: the to-do list reads each of a user's three task sets (claimed by them, assigned
-- to them, ready in their groups) from a covering index in deadline order; the count and the
-- choice of a page no longer read task or ticket rows.
DROP INDEX tasks_group_ready;
DROP INDEX tasks_assignee;
DROP INDEX tasks_claimed;
CREATE INDEX tasks_group_ready ON tasks (grp, complete_deadline, opened_at) INCLUDE (ticket_id, task_no)
  WHERE claimed_by IS NULL AND assignee IS NULL;
CREATE INDEX tasks_assignee ON tasks (assignee, complete_deadline, opened_at) INCLUDE (ticket_id, task_no)
  WHERE claimed_by IS NULL;
CREATE INDEX tasks_claimed ON tasks (claimed_by, complete_deadline, opened_at) INCLUDE (ticket_id, task_no);
