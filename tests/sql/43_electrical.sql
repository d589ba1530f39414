-- Electrical parameters (F15): latest values, history, hourly and daily
-- values, on the primary side (PT and CT applied), and daily energy.
BEGIN;
SELECT plan(12);
\ir fixtures/api_park.sql

-- 50101 is three-phase with CT 10 (PT 1). Its readings today, secondary side:
--   09:00  V 230.0/229.0/228.0  I 3/2/1 A  P 2.5 kW (0.9/0.8/0.8)  Q 0.3 kvar  PF 0.910
--   13:00  V 220.0/221.0/219.0  I 5/6/7 A  P 3.5 kW (1.1/1.2/1.2)  Q 0.5 kvar  PF 0.950
SELECT results_eq(
	$$SELECT voltage_a, voltage_b, voltage_c, current_a, current_b, current_c, power_kw, power_a_kw,
			 power_b_kw, power_c_kw, reactive_kvar, power_factor, frequency_hz
		FROM api.electrical_latest WHERE meter_id = 50101$$,
	$$VALUES (220.0::numeric, 221.0::numeric, 219.0::numeric, 50.000::numeric, 60.000::numeric, 70.000::numeric,
			  35.0000::numeric, 11.0000::numeric, 12.0000::numeric, 12.0000::numeric, 5.0000::numeric,
			  0.950::numeric, 50.00::numeric)$$,
	'latest values: currents and powers x CT 10, voltages x PT 1');
SELECT is((SELECT read_at FROM api.electrical_latest WHERE meter_id = 50101),
	(:'today'::date + time '13:00') AT TIME ZONE :'tz', 'of the newest reading');

SELECT results_eq(
	format($$SELECT voltage_a, current_a, power_kw, energy_kwh FROM api.electrical_history
			  WHERE meter_id = 50101 AND read_at >= %L ORDER BY read_at$$, :'today'::timestamp AT TIME ZONE :'tz'),
	$$VALUES (NULL::numeric, NULL::numeric, NULL::numeric, 1000.000::numeric),
			 (230.0, 30.000, 25.0000, 1010.000), (220.0, 50.000, 35.0000, 1015.000)$$,
	'history of one meter over a range, with the register as primary kWh');

-- daily: averages over the 2 readings that have values (the 00:00 one has none)
SELECT results_eq(
	format($$SELECT samples, voltage_a_avg, voltage_a_min, voltage_a_max, voltage_b_avg, voltage_c_avg,
			 current_a_avg, current_c_max, power_kw_avg, power_kw_max, power_a_kw_avg,
			 reactive_kvar_avg, power_factor_avg, power_factor_min
		FROM api.electrical_daily WHERE meter_id = 50101 AND day = %L$$, :'today'),
	$$VALUES (3, 225.00::numeric, 220.0::numeric, 230.0::numeric, 225.00::numeric, 223.50::numeric,
			  40.000::numeric, 70.000::numeric, 30.0000::numeric, 35.0000::numeric, 10.0000::numeric,
			  4.0000::numeric, 0.930::numeric, 0.910::numeric)$$,
	'daily: (230+220)/2, (229+221)/2, (228+219)/2 V; (3+5)/2 x 10 A; (2.5+3.5)/2 x 10 kW; PF (0.91+0.95)/2');

-- hourly from 00:00 today: samples per hour of the instant, energy per hour the interval ends in
SELECT results_eq(
	format($$SELECT extract(hour FROM hour AT TIME ZONE %L)::integer, samples, voltage_a_avg, current_a_avg,
			 power_kw_avg, energy_kwh
		FROM api.electrical_hourly(50101, %L, %L)$$, :'tz',
		:'today'::timestamp AT TIME ZONE :'tz', (:'today'::date + time '14:00') AT TIME ZONE :'tz'),
	$$VALUES (0, 1::bigint, NULL::numeric, NULL::numeric, NULL::numeric, 0.000::numeric),
			 (8, 0, NULL, NULL, NULL, 10.000), (9, 1, 230.00, 30.000, 25.0000, 0.000),
			 (12, 0, NULL, NULL, NULL, 5.000), (13, 1, 220.00, 50.000, 35.0000, 0.000)$$,
	'hourly values: 00:00 reading has no values; 10 kWh ends in 8h, 5 kWh in 12h');
SELECT throws_ok($$SELECT * FROM api.electrical_hourly(50101, now() - interval '100 days', now())$$,
	'22023', 'invalid range for hourly values', 'more than 93 days of hourly values is refused');
SELECT throws_ok($$SELECT * FROM api.electrical_hourly(50101, now(), now() - interval '1 day')$$,
	'22023', 'invalid range for hourly values', 'an inverted range is refused');
SELECT throws_ok($$SELECT * FROM api.electrical_hourly(424242, now() - interval '1 day', now())$$,
	'P0002', 'meter 424242 does not exist', 'unknown meter');

-- the ratios are applied when read: a 10 kV meter behind PT 100
UPDATE prepaid.meter SET pt_ratio = 100 WHERE meter_id = 50101;
SELECT results_eq(
	$$SELECT voltage_a, current_a, power_kw, reactive_kvar FROM api.electrical_latest WHERE meter_id = 50101$$,
	$$VALUES (22000.0::numeric, 50.000::numeric, 3500.0000::numeric, 500.0000::numeric)$$,
	'PT 100 x CT 10: 220 V -> 22000 V, 3.5 kW -> 3500 kW');
SELECT is((SELECT voltage_a_avg FROM api.electrical_daily WHERE meter_id = 50101 AND day = :'today'),
	22500.00::numeric, 'daily averages too');

-- daily energy per TOU period: registers of 50101 (CT 10) today: sharp +100, peak +400, flat +300, valley +700 Wh
SELECT results_eq(
	format($$SELECT energy_kwh, sharp_kwh, peak_kwh, flat_kwh, valley_kwh FROM api.energy_daily
			  WHERE meter_id = 50101 AND day = %L$$, :'today'),
	$$VALUES (15.000::numeric, 1.000000::numeric, 4.000000::numeric, 3.000000::numeric, 7.000000::numeric)$$,
	'daily energy per period from the rate registers');
-- 50105 (no registers) on 2025-11-10: 07:00-09:00 4 kWh = 2 valley + 2 flat; 09:00-13:00 6 kWh over
-- flat 1 h, sharp 1 h, flat 1 h, peak 1 h = 1.5 each
SELECT results_eq(
	$$SELECT energy_kwh, sharp_kwh, peak_kwh, flat_kwh, valley_kwh FROM api.energy_daily
	   WHERE meter_id = 50105 AND day = '2025-11-10'$$,
	$$VALUES (10.000::numeric, 1.500000::numeric, 1.500000::numeric, 5.000000::numeric, 2.000000::numeric)$$,
	'daily energy per period split over the tariff calendar');

SELECT * FROM finish();
ROLLBACK;
