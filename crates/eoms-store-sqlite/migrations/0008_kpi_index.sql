-- eoms schema 8: a covering index for the KPIs (docs/KPIS.md): a statistic over a period reads
-- this index instead of the ticket rows (each carries its state; the index is a tenth as wide).
CREATE INDEX tickets_kpi ON tickets (created_at, province, city, complaint_source, category, process, span, status,
  replied_at, deadline, solved, flags, repeat_count, satisfaction);
