-- tou_split benchmark (scripts/bench.sh): :calls calls of prepaid.tou_split()
-- from SQL in one backend, over 30-minute intervals spread across a year
-- (every season, day type and holiday of the 'Park TOU' tariff, most
-- intervals straddling a period boundary), against the PL/pgSQL walk of the
-- same tariff tables (bench.tou_split_plpgsql) on a twentieth of the calls.
-- Both must give identical parts. Prints one line:
--   tou_split: N calls/s (1 core); PL/pgSQL baseline M calls/s, ratio Rx; parts identical: t
\set ON_ERROR_STOP 1
\set QUIET 1
SET max_parallel_workers_per_gather = 0;
SELECT tariff_id AS tid FROM prepaid.tariff WHERE name = 'Park TOU' \gset
SELECT greatest(:calls / 20, 100) AS base_calls \gset

-- the intervals, as a table of readings would give them
CREATE TEMP TABLE iv AS
SELECT i, timestamptz '2026-01-01 00:00+08' + (i % 17520) * interval '30 min' + (i % 97) * interval '7 s' AS t_from,
		  timestamptz '2026-01-01 00:30+08' + (i % 17520) * interval '30 min' + (i % 97) * interval '7 s' AS t_to
  FROM generate_series(1, :calls) i;
ANALYZE iv;

-- warm the compiled calendar
SELECT count(*) FROM prepaid.tou_split(:tid, now(), now() + interval '1 day', 1) \gset warm_

SELECT clock_timestamp() AS t0 \gset
SELECT count(*) AS rows, sum(s.kwh) AS total
  FROM iv, LATERAL prepaid.tou_split(:tid, iv.t_from, iv.t_to, 1.234567) s \gset c_
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS c_secs \gset

SELECT clock_timestamp() AS t0 \gset
SELECT count(*) AS rows
  FROM iv, LATERAL bench.tou_split_plpgsql(:tid, iv.t_from, iv.t_to, 1.234567) s
 WHERE iv.i <= :base_calls \gset b_
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS b_secs \gset

-- identical parts on the baseline's calls
SELECT NOT EXISTS (
	SELECT i, s.period, s.kwh
	  FROM generate_series(1, :base_calls) i,
		   LATERAL prepaid.tou_split(:tid,
				timestamptz '2026-01-01 00:00+08' + (i % 17520) * interval '30 min' + (i % 97) * interval '7 s',
				timestamptz '2026-01-01 00:30+08' + (i % 17520) * interval '30 min' + (i % 97) * interval '7 s',
				1.234567) s
	EXCEPT
	SELECT i, s.period, s.kwh
	  FROM generate_series(1, :base_calls) i,
		   LATERAL bench.tou_split_plpgsql(:tid,
				timestamptz '2026-01-01 00:00+08' + (i % 17520) * interval '30 min' + (i % 97) * interval '7 s',
				timestamptz '2026-01-01 00:30+08' + (i % 17520) * interval '30 min' + (i % 97) * interval '7 s',
				1.234567) s) AS same \gset

SELECT format('tou_split: %s calls/s (1 core, %s calls in %s s, parts sum %s = %s x 1.234567); PL/pgSQL baseline %s calls/s, ratio %sx; parts identical: %s [target >= 1,000,000 calls/s]',
			  round(:calls / :c_secs), :calls, round(:c_secs, 3), :c_total, :calls,
			  round(:base_calls / :b_secs), round((:calls / :c_secs) / (:base_calls / :b_secs), 1),
			  :'same');
SELECT CASE WHEN :'same' AND :c_total = :calls * 1.234567 THEN 'tou_split check: ok'
			ELSE 'tou_split check: FAILED' END;
