-- The overview (F16) and the meter monitor (F17) on the api park fixture,
-- against numbers worked out by hand (see fixtures/api_park.sql).
BEGIN;
SELECT plan(25);
\ir fixtures/api_park.sql

-- East Park, by meter:
--   50101 prepaid, opened, read 13:00 today (interval 1 day: online), relay closed, balance 15 < 20: low balance
--   50102 post-paid, last read yesterday (30 min interval: offline), closed
--   50103 prepaid, NOT opened, keep-power, no reading, created a day ago: offline, relay unknown, -30 >= -50: in credit
--   50104 prepaid, read 02:00 today (interval 1 day: online), relay open, balance 100: normal
--   50105, 50106 post-paid, last read in 2025 / never: offline, closed
-- Active alarms: meter_offline (50102), phase_loss (50101, critical), and low_balance raised by the supply
-- decision for 50101 (15 < 20) and 50103 (-30 < 20) = 4, 1 critical.
SELECT results_eq(
	$$SELECT meters, not_opened, online, offline, relay_closed, relay_open, relay_unknown, keep_power,
			 prepaid, postpaid, low_balance, in_credit, cut_off, gateways, gateways_offline,
			 alarms_active, alarms_critical
		FROM api.overview WHERE property_id = 501$$,
	$$VALUES (6::bigint, 1::bigint, 2::bigint, 4::bigint, 4::bigint, 1::bigint, 1::bigint, 1::bigint,
			  3::bigint, 3::bigint, 1::bigint, 1::bigint, 0::bigint, 2::bigint, 1::bigint, 4::bigint, 1::bigint)$$,
	'East Park: meter counts by state, gateways, alarms');
-- today (local, it is 14:xx): 0h 1 kWh (50104 yesterday 10:00 -> 01:00), 1h 2 kWh (50104), 8h 10 kWh and
-- 12h 5 kWh (50101, CT 10): 18 kWh. Yesterday: 9h 1 kWh (50104), 23h 10 kWh (50101, ends at midnight): 11.
-- Same day last week, hours 0-14: 4h 12 kWh (19h 1 kWh is later in the day). Last year, hours 0-14: 5h 0.9.
-- Growth: (18 - 12) / 12 = +50.0 %; (18 - 0.9) / 0.9 = +1900.0 %.
SELECT results_eq(
	$$SELECT today_kwh, yesterday_kwh, last_week_same_period_kwh, last_year_same_period_kwh,
			 growth_week_pct, growth_year_pct FROM api.overview WHERE property_id = 501$$,
	$$VALUES (18.000::numeric, 11.000::numeric, 12.000::numeric, 0.900::numeric, 50.0::numeric, 1900.0::numeric)$$,
	'East Park: today, yesterday, same period last week and last year, growth');
SELECT is((SELECT hourly_today_kwh FROM api.overview WHERE property_id = 501),
	ARRAY[1.000, 2.000, 0, 0, 0, 0, 0, 0, 10.000, 0, 0, 0, 5.000, 0, 0,
		  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL]::numeric[],
	'hourly energy today; hours still to come are NULL');
SELECT results_eq(
	$$SELECT hour_of_day, today_kwh, yesterday_kwh, last_week_kwh, last_year_kwh FROM api.overview_hourly
	   WHERE property_id = 501 AND hour_of_day IN (4, 5, 9, 19, 23) ORDER BY 1$$,
	$$VALUES (4, 0.000::numeric, 0.000::numeric, 12.000::numeric, 0.000::numeric),
			 (5, 0.000, 0.000, 0.000, 0.900), (9, 0.000, 1.000, 0.000, 0.000),
			 (19, NULL, 0.000, 1.000, 0.000), (23, NULL, 10.000, 0.000, 0.000)$$,
	'overview_hourly: today, yesterday, last week and last year by local hour');
-- West Park: 50201 prepaid, -5 < -0 (no credit): cut off; alarms arrears + low_balance
SELECT results_eq(
	$$SELECT meters, cut_off, offline, alarms_active, today_kwh, growth_week_pct FROM api.overview WHERE property_id = 502$$,
	$$VALUES (1::bigint, 1::bigint, 1::bigint, 2::bigint, 0.000::numeric, NULL::numeric)$$,
	'West Park: cut off, no energy, no growth figure without a base');

-- the meter monitor
SELECT results_eq(
	$$SELECT meter_id, fee_status, online, opened, balance, total_kwh, area_name, customer_name
		FROM api.meter_monitor ORDER BY meter_id$$,
	$$VALUES (50101::bigint, 'low_balance'::text, true, true, 15.00::numeric, 1015.000::numeric, 'Building A'::text, 'Acme Co'::text),
			 (50102, 'low_balance', false, true, 0.00, 14.000, 'Building A', 'Acme Co'),
			 (50103, 'in_credit', false, false, -30.00, NULL, 'Building B', 'Dorm 3'),
			 (50104, 'normal', true, true, 100.00, 19.000, 'Building B', 'Dorm 3'),
			 (50105, 'low_balance', false, true, 0.00, 10.000, 'Building A', 'Acme Co'),
			 (50106, 'low_balance', false, true, 0.00, NULL, 'Building B', 'Dorm 3'),
			 (50201, 'cut_off', false, true, -5.00, NULL, 'West Hall', 'West Co')$$,
	'one row per meter: fee status of its account (0.00 < 20.00 is low), online, balance, total energy (register x PT x CT), area, owner');
SELECT results_eq(
	$$SELECT current_period, current_price, power_kw, last_reading_at = last_update
		FROM api.meter_monitor WHERE meter_id = 50101$$,
	$$VALUES ('peak'::text, 1.000000::numeric, 35.0000::numeric, true)$$,
	'current TOU period and price (14:xx is peak), power with CT applied, last update');
SELECT results_eq(
	$$SELECT relay_desired, relay_actual FROM api.meter_monitor WHERE meter_id = 50201$$,
	$$VALUES ('open'::text, 'closed'::text)$$,
	'the cut-off meter is wanted open while its relay still reports closed');
SELECT results_eq(
	$$SELECT meter_id FROM api.meter_monitor
	   WHERE area_id = 5102 AND mode = 'prepaid' AND fee_status IN ('normal', 'low_balance') ORDER BY 1$$,
	$$VALUES (50104::bigint)$$,
	'filter by area, mode and fee status (PostgREST: ?area_id=eq.5102&mode=eq.prepaid&fee_status=in.(...))');
SELECT results_eq(
	$$SELECT meter_id FROM api.meter_monitor WHERE shop_no LIKE 'A-%' AND keep_power = false
	   AND relay_actual = 'closed' ORDER BY meter_id LIMIT 2$$,
	$$VALUES (50101::bigint), (50102::bigint)$$,
	'filter by meter fields, one page');
SELECT results_eq($$SELECT meter_id FROM api.offline_meters ORDER BY 1$$,
	$$VALUES (50102::bigint), (50103), (50105), (50106), (50201)$$, 'offline meters');

-- fee status boundaries: in credit down to exactly -credit_limit, cut off below; normal from the warning level
INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount) VALUES (501, 5002, 50103, 'energy', -20.00);
SELECT is((SELECT fee_status FROM api.meter_monitor WHERE meter_id = 50103), 'in_credit',
	'balance -50.00 with a credit limit of 50.00 is still in credit');
INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount) VALUES (501, 5002, 50103, 'energy', -0.01);
SELECT is((SELECT fee_status FROM api.meter_monitor WHERE meter_id = 50103), 'cut_off', '-50.01 is cut off');
SELECT results_eq($$SELECT in_credit, cut_off, counts_at <= now() FROM api.overview WHERE property_id = 501$$,
	$$VALUES (1::bigint, 0::bigint, true)$$, 'the overview''s counts are those of the last count');
SELECT is(prepaid.overview_refresh(501), 1::bigint, 'counting again (what the overview job does every minute)');
SELECT results_eq($$SELECT in_credit, cut_off FROM api.overview WHERE property_id = 501$$,
	$$VALUES (0::bigint, 1::bigint)$$, 'now 50103 counts as cut off');
SELECT prepaid.recharge(50101, 5.00, 'platform', 'cash-2');
SELECT is((SELECT fee_status FROM api.meter_monitor WHERE meter_id = 50101), 'normal',
	'15 + 5 = 20, the warning level itself, is normal');

-- gateways and alarms
SELECT results_eq(
	$$SELECT serial, online, meters FROM api.gateway_status ORDER BY serial$$,
	$$VALUES ('GW-E1'::text, true, 3::bigint), ('GW-E2', false, 3), ('GW-W1', true, 1)$$,
	'gateways: online when seen within 15 minutes; meters behind each');
SELECT results_eq($$SELECT serial FROM api.offline_gateways$$, $$VALUES ('GW-E2'::text)$$, 'offline gateways');
SELECT results_eq(
	$$SELECT kind, meter_id FROM api.alarms WHERE property_id = 501 AND active
	   AND kind <> 'low_balance' ORDER BY raised_at DESC$$,
	$$VALUES ('phase_loss'::text, 50101::bigint), ('meter_offline', 50102)$$,
	'active alarms, newest first; the cleared one is not active');

-- freshness: the energy is that of the last catch-up (the fixture ran one)
SELECT ok((SELECT energy_as_of >= now() AND energy_as_of <= clock_timestamp()
			 FROM api.overview WHERE property_id = 501),
	'energy_as_of: the start of the last catch-up');
-- a new reading of 50104 at 02:30 (+500 Wh): the monitor has it at once,
-- the energy figures after the next catch-up
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
VALUES (501, 50104, (:'today'::date + time '02:30') AT TIME ZONE :'tz', 19500);
SELECT is((SELECT total_kwh FROM api.meter_monitor WHERE meter_id = 50104), 19.500::numeric,
	'the monitor shows the new reading as soon as it is committed');
SELECT results_eq(
	format($$SELECT meters_pending, pending_after FROM api.rollup_status WHERE property_id = 501$$),
	format($$VALUES (1::bigint, %L::timestamptz)$$, (:'today'::date + time '02:00') AT TIME ZONE :'tz'),
	'rollup_status: one meter pending, rolled up to its 02:00 reading');
SELECT is((SELECT today_kwh FROM api.overview WHERE property_id = 501), 18.000::numeric,
	'the overview''s energy is unchanged until the catch-up');
SELECT prepaid.rollup_catch_up();
SELECT results_eq(
	$$SELECT today_kwh, hourly_today_kwh[3], energy_as_of <= clock_timestamp()
		FROM api.overview WHERE property_id = 501$$,
	$$VALUES (18.500::numeric, 0.500::numeric, true)$$,
	'after it: +0.5 kWh in hour 2, energy_as_of moved on');

SELECT * FROM finish();
ROLLBACK;
