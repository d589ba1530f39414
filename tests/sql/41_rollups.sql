-- Rollups: energy per property and local hour, per meter and local day
-- (total and per TOU period), daily electrical values. New readings wait
-- for prepaid.rollup_catch_up(); late (out-of-order), quarantined and
-- deleted readings at or before the rollup cursor change the rollups in
-- their own statement; exact throughout, and equal to a rebuild.
BEGIN;
SELECT plan(21);
SET LOCAL timezone = 'UTC';

-- Asia/Shanghai is UTC+8. Tariff: 00-08 valley, 08-24 peak; registers T1 = peak, T2 = valley.
SELECT prepaid.tariff_put('{"name": "rollup-test", "time_zone": "Asia/Shanghai",
	"registers": ["peak", "valley"], "prices": {"peak": 1, "valley": 0.5},
	"schedule": [{"from": "00:00", "to": "08:00", "period": "valley"},
				 {"from": "08:00", "to": "24:00", "period": "peak"}]}') AS tid \gset
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (601, 'rollup park', 'Asia/Shanghai');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (601, 6011, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id) VALUES (601, 6011, 6011);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id, ct_ratio, rate_registers,
						   register_modulus_wh, mode, opened_at, opening_energy_wh) VALUES
	(601, 60101, '000000060101', 6011, :tid, 2, 0, 1000000000, 'prepaid', '2025-03-09 00:00+08', 0),
	(601, 60102, '000000060102', 6011, :tid, 1, 2, 1000000000, 'postpaid', NULL, NULL),
	(601, 60103, '000000060103', 6011, :tid, 1, 0, 1000000, 'postpaid', NULL, NULL);

-- one batch, as the ingest daemon writes it
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a) VALUES
	(601, 60101, '2025-03-10 07:30+08', 1000, NULL, 220.0),
	(601, 60101, '2025-03-10 08:30+08', 2000, NULL, 230.0),
	(601, 60101, '2025-03-11 00:00+08', 2500, NULL, 210.0),
	(601, 60102, '2025-03-10 06:00+08', 10000, '{4000,6000}', NULL),
	(601, 60102, '2025-03-10 10:00+08', 11000, '{4600,6400}', NULL),
	(601, 60103, '2025-03-10 01:00+08', 999500, NULL, NULL),
	(601, 60103, '2025-03-10 02:00+08', 300, NULL, NULL),
	(601, 60103, '2025-03-10 03:00+08', 200, NULL, NULL);

SELECT is((SELECT count(*) FROM prepaid.meter_energy_daily WHERE property_id = 601)
		  + (SELECT count(*) FROM prepaid.electrical_daily WHERE property_id = 601)
		  + (SELECT count(*) FROM prepaid.property_energy_hourly WHERE property_id = 601),
	0::bigint, 'new readings are pending: the insert leaves the rollups alone');
SELECT results_eq(
	$$SELECT meters_pending, pending_after, newest_reading_at FROM prepaid.rollup_status WHERE property_id = 601$$,
	$$VALUES (3::bigint, '-infinity'::timestamptz, '2025-03-11 00:00+08'::timestamptz)$$,
	'rollup_status: three meters with pending readings, none rolled up yet');
SELECT is(prepaid.rollup_catch_up(601), 8::bigint, 'the catch-up folds the 8 readings into the rollups');

-- 60101 (CT 2): 07:30-08:30 1000 Wh x 2 = 2000 Wh, half valley half peak -> 1.0 + 1.0 kWh;
--   08:30-24:00 500 x 2 = 1000 Wh, all peak, ends at midnight so it counts on the 10th (23h).
-- 60102: registers say peak +600, valley +400 (a time split would say 0.5 / 0.5).
-- 60103: 999500 -> 300 is a rollover at 10^6 Wh: 1000000 - 999500 + 300 = 800 Wh (valley);
--   300 -> 200 goes backwards without a rollover: 0.
SELECT results_eq(
	$$SELECT meter_id, day, energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_daily
	   WHERE property_id = 601 ORDER BY 1, 2$$,
	$$VALUES (60101::bigint, '2025-03-10'::date, 3000::bigint, 2.000000::numeric, 1.000000::numeric),
			 (60102, '2025-03-10', 1000, 0.600000, 0.400000),
			 (60103, '2025-03-10', 800, 0.000000, 0.800000)$$,
	'daily energy per meter and TOU period: time split, registers, rollover, backwards step');
-- local hours: 60101 08h 2000 + 23h 1000; 60102 09h 1000; 60103 01h 800 (02h is 0, not stored)
SELECT results_eq(
	$$SELECT hour, energy_wh FROM prepaid.property_energy_hourly WHERE property_id = 601 ORDER BY 1$$,
	$$VALUES ('2025-03-10 01:00+08'::timestamptz, 800::bigint), ('2025-03-10 08:00+08', 2000),
			 ('2025-03-10 09:00+08', 1000), ('2025-03-10 23:00+08', 1000)$$,
	'energy per property and local hour; an interval counts in the hour it ends');
SELECT results_eq(
	$$SELECT meter_id, month, energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_monthly
	   WHERE property_id = 601 ORDER BY 1$$,
	$$VALUES (60101::bigint, '2025-03-01'::date, 3000::bigint, 2.000000::numeric, 1.000000::numeric),
			 (60102, '2025-03-01', 1000, 0.600000, 0.400000),
			 (60103, '2025-03-01', 800, 0.000000, 0.800000)$$,
	'monthly energy: the sum of the days');
SELECT results_eq(
	$$SELECT day, samples, n_voltage, voltage_a_sum, voltage_a_min, voltage_a_max FROM prepaid.electrical_daily
	   WHERE meter_id = 60101 ORDER BY 1$$,
	$$VALUES ('2025-03-10'::date, 2, 2, 450.0::numeric, 220.0::numeric, 230.0::numeric),
			 ('2025-03-11', 1, 1, 210.0, 210.0, 210.0)$$,
	'electrical samples per local day of their instant');

SELECT results_eq(
	$$SELECT meter_id, read_at, energy_wh FROM prepaid.rollup_cursor WHERE property_id = 601 ORDER BY 1$$,
	$$VALUES (60101::bigint, '2025-03-11 00:00+08'::timestamptz, 2500::bigint),
			 (60102, '2025-03-10 10:00+08', 11000), (60103, '2025-03-10 03:00+08', 200)$$,
	'each rollup cursor is its meter''s newest reading');
SELECT is((SELECT meters_pending FROM prepaid.rollup_status WHERE property_id = 601), 0::bigint,
	'nothing is pending');

-- a late reading inside 08:30-24:00 splits that interval: 200 x 2 = 400 Wh ends 16h, 300 x 2 = 600 Wh ends 23h
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a)
VALUES (601, 60101, '2025-03-10 16:00+08', 2200, 225.0);
SELECT results_eq(
	$$SELECT hour, energy_wh FROM prepaid.property_energy_hourly
	   WHERE property_id = 601 AND hour >= '2025-03-10 08:00+08' AND energy_wh <> 0 ORDER BY 1$$,
	$$VALUES ('2025-03-10 08:00+08'::timestamptz, 2000::bigint), ('2025-03-10 09:00+08', 1000),
			 ('2025-03-10 15:00+08', 400), ('2025-03-10 23:00+08', 600)$$,
	'an out-of-order reading re-splits the interval around it');
SELECT results_eq(
	$$SELECT energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_daily WHERE meter_id = 60101$$,
	$$VALUES (3000::bigint, 2.000000::numeric, 1.000000::numeric)$$,
	'the day''s total and periods are unchanged by the split');
SELECT results_eq(
	$$SELECT samples, voltage_a_sum, voltage_a_max FROM prepaid.electrical_daily
	   WHERE meter_id = 60101 AND day = '2025-03-10'$$,
	$$VALUES (3, 675.0::numeric, 230.0::numeric)$$, 'its sample is added (220 + 230 + 225)');

-- a reading before the settlement cursor is quarantined by the classifier: no trace in the rollups
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a)
VALUES (601, 60101, '2025-03-01 12:00+08', 500, 100.0);
SELECT is((SELECT count(*) FROM prepaid.quarantine WHERE meter_id = 60101 AND reason = 'before_settlement_cursor'),
	1::bigint, 'the early reading went to the quarantine');
SELECT results_eq(
	$$SELECT day, energy_wh FROM prepaid.meter_energy_daily WHERE meter_id = 60101
	  UNION ALL SELECT day, samples FROM prepaid.electrical_daily WHERE meter_id = 60101 ORDER BY 1, 2$$,
	$$VALUES ('2025-03-10'::date, 3::bigint), ('2025-03-10', 3000), ('2025-03-11', 1)$$,
	'and it left nothing in the rollups');

-- deleting the 08:30 reading (as settlement does with a bad one) joins 07:30-16:00:
-- 1200 x 2 = 2400 Wh ending 16h; 0.5 h valley of 8.5 h: 2.4 x 0.5 / 8.5 = 0.141176, peak 2.258824
DELETE FROM prepaid.reading WHERE meter_id = 60101 AND read_at = '2025-03-10 08:30+08';
SELECT results_eq(
	$$SELECT energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_daily WHERE meter_id = 60101$$,
	$$VALUES (3000::bigint, 2.858824::numeric, 0.141176::numeric)$$,
	'a deleted reading: 2400 + 600 Wh; peak 2.258824 + 0.6, valley 0.141176');
SELECT results_eq(
	$$SELECT energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_monthly WHERE meter_id = 60101$$,
	$$VALUES (3000::bigint, 2.858824::numeric, 0.141176::numeric)$$, 'and the month follows');
SELECT results_eq(
	$$SELECT hour, energy_wh FROM prepaid.property_energy_hourly
	   WHERE property_id = 601 AND hour >= '2025-03-10 08:00+08' ORDER BY 1$$,
	$$VALUES ('2025-03-10 08:00+08'::timestamptz, 0::bigint), ('2025-03-10 09:00+08', 1000),
			 ('2025-03-10 15:00+08', 2400), ('2025-03-10 23:00+08', 600)$$,
	'the hour of the deleted reading''s interval drops to 0');
SELECT results_eq(
	$$SELECT samples, voltage_a_sum, voltage_a_min, voltage_a_max FROM prepaid.electrical_daily
	   WHERE meter_id = 60101 AND day = '2025-03-10'$$,
	$$VALUES (2, 445.0::numeric, 220.0::numeric, 225.0::numeric)$$,
	'the day''s electrical values are recomputed without it (220, 225)');

-- a rebuild from the readings gives the same rollups
CREATE TEMP TABLE before_rebuild AS
	SELECT 'd' AS t, meter_id, day::text AS k, energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_daily
	 WHERE property_id = 601 AND energy_wh <> 0
	UNION ALL
	SELECT 'h', NULL, hour::text, energy_wh, NULL, NULL FROM prepaid.property_energy_hourly
	 WHERE property_id = 601 AND energy_wh <> 0
	UNION ALL
	SELECT 'm', meter_id, month::text, energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_monthly
	 WHERE property_id = 601 AND energy_wh <> 0
	UNION ALL
	SELECT 'e', meter_id, day::text, samples, voltage_a_sum, voltage_a_max FROM prepaid.electrical_daily
	 WHERE property_id = 601;
-- a new reading, then the rebuild: it catches up first
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a)
VALUES (601, 60103, '2025-03-10 04:00+08', 400, NULL);
INSERT INTO before_rebuild VALUES ('d', 60103, '2025-03-10', 1000, 0.000000, 1.000000),
	('h', NULL, '2025-03-09 19:00:00+00', 200, NULL, NULL);	-- 03:00+08 as text in UTC
UPDATE before_rebuild SET energy_wh = energy_wh + 200, valley_kwh = valley_kwh + 0.2
 WHERE t = 'm' AND meter_id = 60103;
UPDATE before_rebuild SET energy_wh = energy_wh + 1 WHERE t = 'e' AND meter_id = 60103;
DELETE FROM before_rebuild WHERE t = 'd' AND meter_id = 60103 AND energy_wh = 800;
SELECT is(prepaid.rollup_rebuild(601), 9::bigint, 'rebuild rolls up the 9 stored readings');
SELECT set_eq(
	$$SELECT 'd' AS t, meter_id, day::text AS k, energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_daily
	   WHERE property_id = 601 AND energy_wh <> 0
	  UNION ALL
	  SELECT 'h', NULL, hour::text, energy_wh, NULL, NULL FROM prepaid.property_energy_hourly
	   WHERE property_id = 601 AND energy_wh <> 0
	  UNION ALL
	  SELECT 'm', meter_id, month::text, energy_wh, peak_kwh, valley_kwh FROM prepaid.meter_energy_monthly
	   WHERE property_id = 601 AND energy_wh <> 0
	  UNION ALL
	  SELECT 'e', meter_id, day::text, samples, voltage_a_sum, voltage_a_max FROM prepaid.electrical_daily
	   WHERE property_id = 601$$,
	$$SELECT * FROM before_rebuild$$,
	'incremental rollups equal a rebuild from the readings');
SELECT throws_ok($$SELECT prepaid.rollup_rebuild(999999)$$, 'P0002', 'property 999999 does not exist',
	'rebuild of an unknown property');

SELECT * FROM finish();
ROLLBACK;
