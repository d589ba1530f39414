-- One settlement benchmark run (scripts/bench.sh), in psql:
--   psql -v label=NAME -f bench/settle_bench.sql
-- on a database whose meters have new readings waiting. First the PL/pgSQL
-- baseline settles them in a transaction that is rolled back (and the dead
-- rows vacuumed away), then prepaid.settle() settles the same readings for
-- real and commits. Both runs are digested (entries, amounts, kWh, every
-- entry, every cursor, every balance, cut-offs); the last line printed is
--   RESULT|label|c_secs|b_secs|meters|readings|entries|kwh|amount|quarantined|cutoffs|match
-- where match is 'ok' or the list of what differs.
\set ON_ERROR_STOP 1
\set QUIET 1
SET max_parallel_workers_per_gather = 0;	-- settle() runs in one backend

SELECT coalesce(max(entry_id), 0) AS before FROM prepaid.ledger \gset

-- the baseline, rolled back
BEGIN;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT * FROM bench.settle_plpgsql() \gset b_
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS b_secs \gset
SELECT * FROM bench.digest(:before) \gset bd_
ROLLBACK;
VACUUM ANALYZE prepaid.ledger, prepaid.settle_cursor, prepaid.account, prepaid.meter,
	prepaid.command, prepaid.alarm, prepaid.quarantine;

-- prepaid.settle(), committed (autocommit: the commit is in the time)
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT * FROM prepaid.settle() \gset c_
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS c_secs \gset
SELECT * FROM bench.digest(:before) \gset cd_

SELECT concat_ws('|', 'RESULT', :'label', round(:c_secs, 4), round(:b_secs, 4),
		:c_meters, :c_readings, :c_entries, :c_kwh, :c_amount, :c_quarantined, :cd_cutoffs,
		coalesce(nullif(concat_ws(' ',
			CASE WHEN :c_meters <> :b_meters THEN 'meters' END,
			CASE WHEN :c_readings <> :b_readings THEN 'readings' END,
			CASE WHEN :c_entries <> :b_entries OR :cd_entries <> :bd_entries THEN 'entries' END,
			CASE WHEN :c_amount <> :b_amount OR :cd_amount <> :bd_amount
					  OR :cd_amount <> -:c_amount THEN 'amount' END,
			CASE WHEN :c_kwh <> :b_kwh OR :cd_kwh <> :bd_kwh THEN 'kwh' END,
			CASE WHEN :c_quarantined <> :b_quarantined THEN 'quarantined' END,
			CASE WHEN :'cd_entry_md5' <> :'bd_entry_md5' THEN 'entry_detail' END,
			CASE WHEN :'cd_cursor_md5' <> :'bd_cursor_md5' THEN 'cursors' END,
			CASE WHEN :'cd_balance_md5' <> :'bd_balance_md5' THEN 'balances' END,
			CASE WHEN :cd_cutoffs <> :bd_cutoffs THEN 'cutoffs' END,
			CASE WHEN :'cd_ledger_ok' <> 't' OR :'bd_ledger_ok' <> 't' THEN 'verify_ledger' END,
			CASE WHEN :c_entries = 0 THEN 'nothing_settled' END), ''), 'ok'));
