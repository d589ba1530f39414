-- The insert triggers of prepaid.reading (extension/reading_accept.c):
-- each meter's rows of a statement that all follow its meter_latest reading
-- move meter_latest in place (the fast path); every other meter's rows take
-- the SQL path (quarantine, first readings, out-of-order rows). Both paths
-- in one statement, rows in any order, a large batch (the sequential scan
-- of the lookups), a subtransaction rolled back between the row and the
-- statement trigger, inserts into a partition itself, the staged path of
-- the daemon.
BEGIN;
SELECT plan(19);
SET LOCAL timezone = 'UTC';

SELECT prepaid.tariff_put('{"name": "accept-test", "time_zone": "Asia/Shanghai",
	"prices": {"flat": 1}, "schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}') AS tid \gset
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (603, 'accept park', 'Asia/Shanghai');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (603, 6031, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id) VALUES (603, 6031, 6031);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id, mode, opened_at,
						   opening_energy_wh)
SELECT 603, 603000 + i, lpad((603000 + i)::text, 12, '0'), 6031, :tid, 'prepaid',
	   '2025-06-01 00:00+08', 0
  FROM generate_series(1, 1200) i;

-- first readings: no meter_latest row yet (the SQL path)
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a)
SELECT 603, 603000 + i, '2025-06-02 00:00+08', 1000 + i, 220.0 FROM generate_series(1, 1200) i;
SELECT is((SELECT count(*) FROM prepaid.meter_latest WHERE property_id = 603), 1200::bigint,
	'a meter''s first reading makes its meter_latest row');

-- the next readings of every meter, in reverse key order: the fast path over
-- a batch large enough to read meter_latest and the cursors sequentially
ANALYZE prepaid.meter_latest, prepaid.settle_cursor;
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a)
SELECT 603, 603000 + i, '2025-06-02 00:30+08', 2000 + i, 221.0 FROM generate_series(1200, 1, -1) i;
SELECT results_eq(
	$$SELECT count(*), min(read_at), max(read_at), sum(energy_wh - meter_id + 603000) FROM prepaid.meter_latest
	   WHERE property_id = 603$$,
	$$VALUES (1200::bigint, '2025-06-02 00:30+08'::timestamptz, '2025-06-02 00:30+08'::timestamptz, 2400000::numeric)$$,
	'every meter_latest row moved to its meter''s new reading');

-- one statement, both paths: 603001 three rows out of order (fast);
-- 603002 one row after meter_latest and one before it (SQL path: kept,
-- meter_latest the newest); 603003 an unknown meter's row beside a good
-- one; 603004 a row from the future; 603005 a row before the settlement cursor
UPDATE prepaid.settle_cursor SET read_at = '2025-06-02 00:30+08' WHERE meter_id = 603005;
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a) VALUES
	(603, 603001, '2025-06-02 02:00+08', 4001, 224.0),
	(603, 603002, '2025-06-02 01:00+08', 3002, 222.0),
	(603, 603001, '2025-06-02 01:00+08', 3001, 222.0),
	(603, 603002, '2025-06-01 23:00+08', 502, 219.0),
	(603, 603001, '2025-06-02 01:30+08', 3501, 223.0),
	(603, 609999, '2025-06-02 01:00+08', 1, 220.0),
	(603, 603003, '2025-06-02 01:00+08', 3003, 222.0),
	(603, 603004, now() + interval '1 hour', 3004, 222.0),
	(603, 603005, '2025-06-02 00:15+08', 1505, 222.0);
SELECT results_eq(
	$$SELECT meter_id, read_at, energy_wh, voltage_a FROM prepaid.meter_latest
	   WHERE meter_id BETWEEN 603001 AND 603005 ORDER BY 1$$,
	$$VALUES (603001::bigint, '2025-06-02 02:00+08'::timestamptz, 4001::bigint, 224.0::numeric(6,1)),
			 (603002, '2025-06-02 01:00+08', 3002, 222.0),
			 (603003, '2025-06-02 01:00+08', 3003, 222.0),
			 (603004, '2025-06-02 00:30+08', 2004, 221.0),
			 (603005, '2025-06-02 00:30+08', 2005, 221.0)$$,
	'meter_latest: the newest accepted row of each meter, whatever the order of the rows');
SELECT results_eq(
	$$SELECT meter_id, reason FROM prepaid.quarantine WHERE property_id = 603 ORDER BY 1$$,
	$$VALUES (603004::bigint, 'clock_in_future'), (603005, 'before_settlement_cursor'),
			 (609999, 'unknown_meter')$$,
	'the bad rows went to the quarantine, each with its reason');
SELECT is((SELECT count(*) FROM prepaid.reading WHERE property_id = 603 AND read_at > '2025-06-02 00:30+08'),
	5::bigint, 'and the good rows stayed (three of 603001, one of 603002 and of 603003)');
SELECT is((SELECT count(*) FROM prepaid.reading WHERE meter_id = 603002 AND read_at = '2025-06-01 23:00+08'),
	1::bigint, 'a row before meter_latest''s is kept');

-- duplicates are refused: an error, or skipped with ON CONFLICT DO NOTHING
SELECT throws_ok(
	$$INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
	  VALUES (603, 603001, '2025-06-02 02:00+08', 9999)$$,
	'23505', NULL, 'a duplicate reading is refused');
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
VALUES (603, 603001, '2025-06-02 02:00+08', 9999), (603, 603001, '2025-06-02 02:30+08', 4501)
ON CONFLICT DO NOTHING;
SELECT results_eq(
	$$SELECT read_at, energy_wh FROM prepaid.meter_latest WHERE meter_id = 603001$$,
	$$VALUES ('2025-06-02 02:30+08'::timestamptz, 4501::bigint)$$,
	'ON CONFLICT DO NOTHING: the duplicate is skipped, the new row accepted');

-- rows of a subtransaction that failed after the row trigger ran are forgotten
CREATE FUNCTION pg_temp.fail_on_666() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.energy_wh = 666 THEN
		RAISE EXCEPTION 'test failure';
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER zz_fail AFTER INSERT ON prepaid.reading FOR EACH ROW EXECUTE FUNCTION pg_temp.fail_on_666();
SAVEPOINT s;
SELECT throws_ok(
	$$INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
		(603, 603010, '2025-06-02 03:00+08', 5010), (603, 603011, '2025-06-02 03:00+08', 666)$$,
	'P0001', 'test failure', 'a later row trigger fails the statement');
ROLLBACK TO SAVEPOINT s;
DROP TRIGGER zz_fail ON prepaid.reading;
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
VALUES (603, 603012, '2025-06-02 03:00+08', 5012);
SELECT results_eq(
	$$SELECT meter_id, read_at FROM prepaid.meter_latest WHERE meter_id IN (603010, 603011, 603012) ORDER BY 1$$,
	$$VALUES (603010::bigint, '2025-06-02 00:30+08'::timestamptz), (603011, '2025-06-02 00:30+08'),
			 (603012, '2025-06-02 03:00+08')$$,
	'the rolled-back rows moved nothing; the next statement''s row did');

-- straight into a partition: its own statement trigger accepts the rows
INSERT INTO prepaid.reading_default (property_id, meter_id, read_at, energy_wh)
VALUES (603, 603020, '2000-01-01 00:00+00', 1);
SELECT results_eq(
	$$SELECT read_at FROM prepaid.meter_latest WHERE meter_id = 603020$$,
	$$VALUES ('2025-06-02 00:30+08'::timestamptz)$$,
	'a row inserted into a partition is classified too (an old row: meter_latest stays)');
SELECT is((SELECT count(*) FROM prepaid.reading WHERE meter_id = 603020 AND read_at = '2000-01-01 00:00+00'),
	0::bigint, 'and it went to the quarantine (before the settlement cursor)');
SELECT is(
	(SELECT count(*) FROM pg_inherits i
	  WHERE i.inhparent = 'prepaid.reading'::regclass
		AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = i.inhrelid AND t.tgname = 'reading_accept')),
	0::bigint, 'every partition has the reading_accept statement trigger');
SELECT is(prepaid.ensure_partitions(now() + interval '5 months', now() + interval '5 months'), 1,
	'a new partition');
SELECT is(
	(SELECT count(*) FROM pg_inherits i JOIN pg_trigger t ON t.tgrelid = i.inhrelid
	  WHERE i.inhparent = 'prepaid.reading'::regclass AND t.tgname IN ('reading_accept', 'reading_accept_row')
		AND i.inhrelid = ('prepaid.' || prepaid._reading_partition_name(now() + interval '5 months'))::regclass),
	2::bigint, 'has both insert triggers');

-- the daemon's staged path: COPY into a temporary table, then ingest_batch_write
CREATE TEMP TABLE ingest_stage (LIKE prepaid.reading INCLUDING DEFAULTS);
ALTER TABLE ingest_stage ALTER COLUMN meter_time TYPE timestamp;
INSERT INTO ingest_stage (property_id, meter_id, read_at, energy_wh, voltage_a)
SELECT 603, 603000 + i, '2025-06-02 04:00+08', 6000 + i, 230.0 FROM generate_series(100, 199) i;
SELECT results_eq($$SELECT inserted, duplicate FROM prepaid.ingest_batch_write('test', 1, 100)$$,
	$$VALUES (100::bigint, false)$$, 'a staged batch of 100 readings');
SELECT results_eq(
	$$SELECT count(*), min(read_at) FROM prepaid.meter_latest WHERE meter_id BETWEEN 603100 AND 603199$$,
	$$VALUES (100::bigint, '2025-06-02 04:00+08'::timestamptz)$$,
	'its meters'' meter_latest rows moved');

-- a batch with a row stored already and a row twice: those are skipped
TRUNCATE ingest_stage;
INSERT INTO ingest_stage (property_id, meter_id, read_at, energy_wh, voltage_a) VALUES
	(603, 603100, '2025-06-02 04:00+08', 6100, 230.0),		-- stored by batch 1
	(603, 603200, '2025-06-02 04:00+08', 6200, 230.0),
	(603, 603200, '2025-06-02 04:00+08', 6200, 230.0),		-- twice
	(603, 603201, '2025-06-02 04:00+08', 6201, 230.0);
SELECT results_eq($$SELECT inserted, duplicate FROM prepaid.ingest_batch_write('test', 2, 4)$$,
	$$VALUES (2::bigint, false)$$, 'a batch with a stored and a doubled row: the two new readings');
SELECT results_eq(
	$$SELECT meter_id, read_at, energy_wh FROM prepaid.meter_latest WHERE meter_id IN (603100, 603200, 603201) ORDER BY 1$$,
	$$VALUES (603100::bigint, '2025-06-02 04:00+08'::timestamptz, 6100::bigint),
			 (603200, '2025-06-02 04:00+08', 6200), (603201, '2025-06-02 04:00+08', 6201)$$,
	'and meter_latest has them once');

SELECT * FROM finish();
ROLLBACK;
