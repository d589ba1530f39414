-- Per-rate register arrays reach the C code in several forms: stored in a
-- table (a 1-byte header, read in place), built in a query (a 4-byte
-- header), with a lower bound other than 1, with a NULL element
-- (incomplete: the total is split by time instead), or empty. Each must be
-- read the same way (extension/registers.c), here through the rollups'
-- interval pricing: 07:00-09:00, +5 kWh in all, T1 (peak) +1 kWh and
-- T2 (valley) +4 kWh; split by time it would be 2.5 + 2.5.
BEGIN;
SELECT plan(5);

-- UTC tariff: valley 00-08 at 0.30, peak 08-24 at 1.00; registers T1 = peak, T2 = valley
\set tariff_name reg-t
\ir fixtures/valley_peak_tariff.sql

CREATE TEMP TABLE regs (k text, prev bigint[], cur bigint[]);
INSERT INTO regs VALUES
	('stored', '{3000000,2000000}', '{3001000,2004000}'),
	('bounds', '[0:1]={3000000,2000000}', '[0:1]={3001000,2004000}'),
	('null', '{3000000,2000000}', '{3001000,NULL}'),
	('empty', '{}', '{}');

CREATE FUNCTION pg_temp.kwh(t bigint, p bigint[], c bigint[]) RETURNS numeric[] LANGUAGE sql AS $$
	SELECT prepaid._interval_kwh(t, 1, 1000000000, '2026-11-10 07:00Z', '2026-11-10 09:00Z', 5000, p, c)
$$;

SELECT is(pg_temp.kwh(:tid, prev, cur), '{0,1,0,4,0}'::numeric[], 'registers stored in a table')
  FROM regs WHERE k = 'stored';
SELECT is(pg_temp.kwh(:tid, '{3000000,2000000}'::bigint[], ARRAY[3001000, 2004000]::bigint[]),
	'{0,1,0,4,0}'::numeric[], 'registers built in the query');
SELECT is(pg_temp.kwh(:tid, prev, cur), '{0,1,0,4,0}'::numeric[], 'registers with a lower bound of 0')
  FROM regs WHERE k = 'bounds';
SELECT is(pg_temp.kwh(:tid, prev, cur), '{0,2.5,0,2.5,0}'::numeric[],
	'a NULL register: the total is split by time')
  FROM regs WHERE k = 'null';
SELECT is(pg_temp.kwh(:tid, prev, cur), '{0,2.5,0,2.5,0}'::numeric[], 'no registers: the total is split by time')
  FROM regs WHERE k = 'empty';

SELECT * FROM finish();
ROLLBACK;
