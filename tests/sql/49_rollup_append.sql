-- Appended readings and the catch-up: a meter's new readings leave the
-- rollups alone (meter_latest is current at once); prepaid.rollup_catch_up()
-- folds them in, in batches of any size, across midnights and a month end;
-- a reading at or before the rollup cursor, a quarantined one and deleted
-- ones (the cursor's own, a pending one) keep the rollups exact; the result
-- equals a rebuild from the readings.
BEGIN;
SELECT plan(20);
SET LOCAL timezone = 'UTC';

-- Asia/Shanghai is UTC+8. Tariff: 00-08 valley, 08-24 peak; registers T1 = peak, T2 = valley.
SELECT prepaid.tariff_put('{"name": "append-test", "time_zone": "Asia/Shanghai",
	"registers": ["peak", "valley"], "prices": {"peak": 1, "valley": 0.5},
	"schedule": [{"from": "00:00", "to": "08:00", "period": "valley"},
				 {"from": "08:00", "to": "24:00", "period": "peak"}]}') AS tid \gset
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (602, 'append park', 'Asia/Shanghai');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (602, 6021, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id) VALUES (602, 6021, 6021);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id, ct_ratio, rate_registers,
						   mode) VALUES
	(602, 60201, '000000060201', 6021, :tid, 2, 0, 'postpaid'),
	(602, 60202, '000000060202', 6021, :tid, 1, 2, 'postpaid');

CREATE TEMP TABLE snap (t text, meter_id bigint, k text, a numeric, b numeric, c numeric);
CREATE FUNCTION pg_temp.rollups() RETURNS SETOF snap LANGUAGE sql AS $$
	SELECT 'd', meter_id, day::text, energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_daily
	 WHERE property_id = 602 AND energy_wh <> 0
	UNION ALL
	SELECT 'm', meter_id, month::text, energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_monthly
	 WHERE property_id = 602 AND energy_wh <> 0
	UNION ALL
	SELECT 'h', NULL, hour::text, energy_wh, NULL, NULL FROM prepaid.property_energy_hourly
	 WHERE property_id = 602 AND energy_wh <> 0
	UNION ALL
	SELECT 'e', meter_id, day::text, samples, voltage_a_sum, voltage_a_max FROM prepaid.electrical_daily
	 WHERE property_id = 602
$$;

-- one statement per slot, one row per meter, as the ingest daemon writes them
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a) VALUES
	(602, 60201, '2025-03-30 22:00+08', 1000, NULL, 220.0),
	(602, 60202, '2025-03-30 22:00+08', 5000, '{3000,2000}', 230.0);
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a) VALUES
	(602, 60201, '2025-03-30 23:00+08', 1500, NULL, 221.0),
	(602, 60202, '2025-03-30 23:00+08', 5100, '{3100,2000}', 231.0);
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a) VALUES
	(602, 60201, '2025-03-31 00:00+08', 1600, NULL, 222.0),
	(602, 60202, '2025-03-31 00:00+08', 5150, '{3150,2000}', 232.0);
SELECT is((SELECT count(*) FROM pg_temp.rollups()), 0::bigint,
	'appended readings leave the rollups alone');
SELECT results_eq(
	$$SELECT meter_id, read_at, energy_wh, rate_wh FROM prepaid.meter_latest WHERE property_id = 602 ORDER BY 1$$,
	$$VALUES (60201::bigint, '2025-03-31 00:00+08'::timestamptz, 1600::bigint, NULL::bigint[]),
			 (60202, '2025-03-31 00:00+08', 5150, '{3150,2000}')$$,
	'meter_latest is the newest reading as soon as it is inserted');

-- a catch-up one meter per statement, then the next two slots, then another
SET LOCAL pg_prepaid.rollup_batch_size = 1;
SELECT is(prepaid.rollup_catch_up(), 6::bigint, 'a catch-up in batches of one meter takes the 6 readings');
SELECT results_eq(
	$$SELECT meter_id, read_at FROM prepaid.rollup_cursor WHERE property_id = 602 ORDER BY 1$$,
	$$VALUES (60201::bigint, '2025-03-31 00:00+08'::timestamptz), (60202, '2025-03-31 00:00+08')$$,
	'the cursors moved to the newest readings');
RESET pg_prepaid.rollup_batch_size;
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a) VALUES
	(602, 60201, '2025-03-31 09:00+08', 2600, NULL, 223.0),
	(602, 60202, '2025-03-31 09:00+08', 5450, '{3200,2250}', 233.0);
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a) VALUES
	(602, 60201, '2025-04-01 01:00+08', 3000, NULL, 224.0),
	(602, 60202, '2025-04-01 01:00+08', 5600, '{3300,2300}', 234.0);
SELECT is((SELECT meters_pending FROM prepaid.rollup_status WHERE property_id = 602), 2::bigint,
	'two meters are pending again');
SELECT is(prepaid.rollup_catch_up(602), 4::bigint, 'the next catch-up takes the 4 new readings');

-- 60201 (CT 2): 22-23 500 x 2 = 1000 Wh peak, 23-24 100 x 2 = 200 peak (day 03-30);
--   00-09 1000 x 2 = 2000: 8 h valley, 1 h peak -> 1.777778 / 0.222222 (day 03-31);
--   09-01 400 x 2 = 800: 15 h peak, 1 h valley -> 0.75 / 0.05 (day 04-01).
-- 60202 (registers): 03-30 peak 0.1 + 0.05; 03-31 peak 0.05, valley 0.25; 04-01 peak 0.1, valley 0.05.
SELECT results_eq(
	$$SELECT meter_id, day, energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_daily
	   WHERE property_id = 602 ORDER BY 1, 2$$,
	$$VALUES (60201::bigint, '2025-03-30'::date, 1200::bigint, 1.200000::numeric, 0.000000::numeric),
			 (60201, '2025-03-31', 2000, 0.222222, 1.777778),
			 (60201, '2025-04-01', 800, 0.750000, 0.050000),
			 (60202, '2025-03-30', 150, 0.150000, 0.000000),
			 (60202, '2025-03-31', 300, 0.050000, 0.250000),
			 (60202, '2025-04-01', 150, 0.100000, 0.050000)$$,
	'daily energy across two midnights and a month end');
SELECT results_eq(
	$$SELECT meter_id, month, energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_monthly
	   WHERE property_id = 602 ORDER BY 1, 2$$,
	$$VALUES (60201::bigint, '2025-03-01'::date, 3200::bigint, 1.422222::numeric, 1.777778::numeric),
			 (60201, '2025-04-01', 800, 0.750000, 0.050000),
			 (60202, '2025-03-01', 450, 0.200000, 0.250000),
			 (60202, '2025-04-01', 150, 0.100000, 0.050000)$$,
	'monthly energy: the sum of the days');
SELECT results_eq(
	$$SELECT day, samples, n_voltage, voltage_a_sum, voltage_a_min, voltage_a_max FROM prepaid.electrical_daily
	   WHERE meter_id = 60201 ORDER BY 1$$,
	$$VALUES ('2025-03-30'::date, 2, 2, 441.0::numeric, 220.0::numeric, 221.0::numeric),
			 ('2025-03-31', 2, 2, 445.0, 222.0, 223.0), ('2025-04-01', 1, 1, 224.0, 224.0, 224.0)$$,
	'electrical samples per local day of their instant (the midnight reading''s is the next day''s)');
SELECT results_eq(
	$$SELECT hour, energy_wh FROM prepaid.property_energy_hourly WHERE property_id = 602 ORDER BY 1$$,
	$$VALUES ('2025-03-30 22:00+08'::timestamptz, 1100::bigint), ('2025-03-30 23:00+08', 250),
			 ('2025-03-31 08:00+08', 2300), ('2025-04-01 00:00+08', 950)$$,
	'energy per property and local hour');

-- a late reading, before the cursor: applied by its own insert
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a)
VALUES (602, 60201, '2025-04-01 00:30+08', 2900, 230.0);
SELECT results_eq(
	$$SELECT energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_daily
	   WHERE meter_id = 60201 AND day = '2025-04-01'$$,
	$$VALUES (800::bigint, 0.580645::numeric, 0.219355::numeric)$$,
	'a late reading re-splits its interval at once');
-- a reading from the future is quarantined
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a)
VALUES (602, 60202, now() + interval '1 day', 9000, 240.0);
SELECT is((SELECT count(*) FROM prepaid.quarantine WHERE meter_id = 60202 AND reason = 'clock_in_future'),
	1::bigint, 'the reading from the future went to the quarantine');
SELECT is((SELECT read_at FROM prepaid.meter_latest WHERE meter_id = 60202), '2025-04-01 01:00+08'::timestamptz,
	'and meter_latest is the newest accepted reading again');
-- a pending reading deleted: nothing to undo
INSERT INTO snap SELECT * FROM pg_temp.rollups();
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a)
VALUES (602, 60202, '2025-04-01 03:00+08', 5650, '{3300,2350}', 236.0);
DELETE FROM prepaid.reading WHERE meter_id = 60202 AND read_at = '2025-04-01 03:00+08';
SELECT set_eq($$SELECT * FROM pg_temp.rollups()$$, $$SELECT * FROM snap$$,
	'a pending reading inserted and deleted leaves the rollups as they were');
-- the cursor's own reading deleted: the cursor goes back to the reading before
DELETE FROM prepaid.reading WHERE meter_id = 60201 AND read_at = '2025-04-01 01:00+08';
SELECT results_eq(
	$$SELECT l.read_at, l.energy_wh, c.read_at, c.energy_wh FROM prepaid.meter_latest l
	   JOIN prepaid.rollup_cursor c USING (property_id, meter_id) WHERE meter_id = 60201$$,
	$$VALUES ('2025-04-01 00:30+08'::timestamptz, 2900::bigint, '2025-04-01 00:30+08'::timestamptz, 2900::bigint)$$,
	'deleting the newest reading hands meter_latest and the rollup cursor to the one before');
SELECT results_eq(
	$$SELECT energy_wh, valley_kwh FROM prepaid.meter_energy_daily WHERE meter_id = 60201 AND day = '2025-04-01'$$,
	$$VALUES (600::bigint, 0.019355::numeric)$$,
	'and its interval is taken out (00:30-01:00: 100 x 2 Wh valley are gone)');
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a) VALUES
	(602, 60201, '2025-04-01 02:00+08', 3100, NULL, 225.0),
	(602, 60202, '2025-04-01 02:00+08', 5700, '{3300,2400}', 235.0);
SELECT is(prepaid.rollup_catch_up(), 2::bigint, 'the catch-up takes the two new readings');
SELECT results_eq(
	$$SELECT energy_wh, valley_kwh FROM prepaid.meter_energy_daily WHERE meter_id = 60201 AND day = '2025-04-01'$$,
	$$VALUES (1000::bigint, 0.419355::numeric)$$,
	'the next reading follows the one before the deleted one (00:30-02:00: 200 x 2 Wh valley)');

DELETE FROM snap;
INSERT INTO snap SELECT * FROM pg_temp.rollups();
SELECT is(prepaid.rollup_rebuild(602), 12::bigint, 'rebuild rolls up the 12 stored readings');
SELECT set_eq($$SELECT * FROM pg_temp.rollups()$$, $$SELECT * FROM snap$$,
	'the rollups kept along the way equal a rebuild from the readings');

SELECT * FROM finish();
ROLLBACK;
