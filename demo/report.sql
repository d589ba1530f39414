-- What an operator wants to see after the demo month (make demo prints it):
-- readings and energy, revenue by TOU period, balances, cut-offs and
-- restores, payments, alarms, and the ledger check.
\set ON_ERROR_STOP 1
\pset footer off
\pset null '-'

\echo
\echo '== Readings and energy'
SELECT count(*) AS readings,
	   count(DISTINCT meter_id) AS meters_reporting,
	   min(read_at) AS first_reading, max(read_at) AS last_reading,
	   (SELECT count(*) FROM prepaid.quarantine) AS quarantined
  FROM prepaid.reading;

\echo
\echo '== Revenue by TOU period (prepaid energy charges)'
SELECT p->>'period' AS period,
	   round(sum((p->>'kwh')::numeric), 2) AS kwh,
	   round(sum((p->>'amount')::numeric), 2) AS yuan,
	   round(sum((p->>'amount')::numeric) / nullif(sum((p->>'kwh')::numeric), 0), 4) AS avg_price
  FROM prepaid.ledger l, jsonb_array_elements(l.detail->'periods') p
 WHERE l.kind = 'energy'
 GROUP BY 1 ORDER BY array_position(ARRAY['sharp', 'peak', 'flat', 'valley', 'deep'], p->>'period');
SELECT count(*) AS energy_entries, -sum(amount) AS charged_yuan, sum(kwh) AS charged_kwh
  FROM prepaid.ledger WHERE kind = 'energy';

\echo
\echo '== Money by kind'
SELECT kind, count(*) AS entries, sum(amount) AS yuan FROM prepaid.ledger GROUP BY 1 ORDER BY 1;

\echo
\echo '== Balances by customer kind (prepaid meters)'
SELECT c.kind, count(*) AS accounts,
	   round(avg(a.balance), 2) AS avg_balance, min(a.balance) AS min_balance,
	   count(*) FILTER (WHERE a.balance < a.warning_level) AS below_warning,
	   count(*) FILTER (WHERE a.balance < 0) AS in_credit
  FROM prepaid.account a
  JOIN prepaid.customer c USING (property_id, customer_id)
 WHERE EXISTS (SELECT 1 FROM prepaid.meter m WHERE m.account_id = a.account_id AND m.mode = 'prepaid')
 GROUP BY 1 ORDER BY 1;

\echo
\echo '== Supply: cut-offs and restores'
SELECT count(*) FILTER (WHERE kind = 'relay_open') AS cut_off_commands,
	   count(*) FILTER (WHERE kind = 'relay_open' AND status = 'acknowledged') AS cut_offs_executed,
	   count(*) FILTER (WHERE kind IN ('relay_close', 'relay_permit_close')) AS restore_commands,
	   count(*) FILTER (WHERE kind IN ('relay_close', 'relay_permit_close') AND status = 'acknowledged')
		   AS restores_executed,
	   count(DISTINCT meter_id) FILTER (WHERE kind = 'relay_open') AS meters_ever_cut_off,
	   count(*) FILTER (WHERE status = 'failed') AS failed,
	   count(*) FILTER (WHERE status IN ('pending', 'sent')) AS open_commands
  FROM prepaid.command;
SELECT count(*) FILTER (WHERE relay_desired = 'open') AS cut_off_now,
	   count(*) FILTER (WHERE relay_actual = 'open') AS relay_open_reported,
	   count(*) FILTER (WHERE keep_power) AS keep_power_meters,
	   count(*) FILTER (WHERE mode = 'postpaid') AS postpaid_meters
  FROM prepaid.meter;

\echo
\echo '== Top 5 consumers this month'
SELECT m.shop_no, m.owner_name, sum(l.kwh) AS kwh, -sum(l.amount) AS yuan, a.balance
  FROM prepaid.ledger l
  JOIN prepaid.meter m USING (property_id, meter_id)
  JOIN prepaid.account a ON a.property_id = m.property_id AND a.account_id = m.account_id
 WHERE l.kind = 'energy'
 GROUP BY 1, 2, 5 ORDER BY 3 DESC LIMIT 5;

\echo
\echo '== Alarms'
SELECT kind, count(*) AS raised, count(*) FILTER (WHERE cleared_at IS NULL) AS active
  FROM prepaid.alarm GROUP BY 1 ORDER BY 2 DESC;

\echo
\echo '== Jobs'
SELECT job_name, run_count, fail_count, last_status, round(extract(epoch FROM last_duration)::numeric, 3) AS last_secs
  FROM prepaid.job ORDER BY job_name;

\echo
\echo '== Ledger check (accounts whose balance differs from the sum of their entries)'
SELECT count(*) AS mismatches FROM prepaid.verify_ledger();
