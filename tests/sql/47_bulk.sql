-- Single and bulk meter operations over a filter (F17): one command per
-- meter through prepaid.command_queue, counts returned, clear errors.
BEGIN;
SELECT plan(24);
\ir fixtures/api_park.sql

CREATE FUNCTION pg_temp.pending(p_meter bigint, p_kind text) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM prepaid.command WHERE meter_id = p_meter AND kind = p_kind AND status = 'pending'
$$;

-- a second, flat tariff (shared by every property)
SELECT prepaid.tariff_put(format('{"name": "api-test-flat", "time_zone": "%s", "prices": {"flat": 0.65},
	"schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}', :'tz')::jsonb) AS flat_tid \gset

-- Building A: 50101, 50102, 50105
SELECT results_eq(format($$SELECT * FROM api.meters_set_tariff('{"area_id": 5101}', %s)$$, :flat_tid),
	$$VALUES (3::bigint, 3::bigint, 6::bigint)$$,
	'set tariff on an area: 3 meters, 3 changed, a write_price and a write_tou each');
SELECT results_eq(
	format($$SELECT payload FROM prepaid.command WHERE meter_id = 50101 AND kind = 'write_price' AND status = 'pending'$$),
	format($$VALUES (jsonb_build_object('tariff_id', %s, 'prices', '{"flat": 0.650000}'::jsonb))$$, :flat_tid),
	'the meter is told the prices in force now');
SELECT is((SELECT payload -> 'seasons' -> 0 -> 'day_types' -> 'all' FROM prepaid.command
			WHERE meter_id = 50102 AND kind = 'write_tou' AND status = 'pending'),
	'[{"period": "flat", "end_min": 1440, "start_min": 0}]'::jsonb, 'and the TOU periods of the version in force');
SELECT is((SELECT count(*) FROM prepaid.meter WHERE tariff_id = :flat_tid), 3::bigint, 'the three meters use it');

-- push TOU periods to two meters, twice: the pending command is reused
SELECT results_eq($$SELECT * FROM api.meters_push_tou('{"meter_id": [50101, 50104]}')$$,
	$$VALUES (2::bigint, 0::bigint, 2::bigint)$$, 'TOU periods pushed to two meters');
SELECT results_eq($$SELECT * FROM api.meters_push_tou('{"meter_id": [50101, 50104]}')$$,
	$$VALUES (2::bigint, 0::bigint, 2::bigint)$$, 'again');
SELECT is(pg_temp.pending(50101, 'write_tou') + pg_temp.pending(50104, 'write_tou'), 2::bigint,
	'still one pending write_tou per meter');

-- thresholds: a pending write_threshold carries the meter's newest settings
SELECT results_eq($$SELECT * FROM api.meters_set_alarm_thresholds('{"phase": 3}', 0.90, 1.08)$$,
	$$VALUES (1::bigint, 1::bigint, 1::bigint)$$, 'alarm thresholds on the three-phase meters');
SELECT results_eq($$SELECT * FROM api.meters_set_power_threshold('{"meter_id": 50101}', 12.5)$$,
	$$VALUES (1::bigint, 1::bigint, 1::bigint)$$, 'power threshold of one meter');
SELECT results_eq(
	$$SELECT count(*), max(payload::text)::jsonb FROM prepaid.command
	   WHERE meter_id = 50101 AND kind = 'write_threshold' AND status = 'pending'$$,
	$$VALUES (1::bigint, '{"undervoltage_v": 198.0, "overvoltage_v": 237.6, "power_threshold_kw": 12.5}'::jsonb)$$,
	'one pending command with 220 x 0.90 V, 220 x 1.08 V and 12.5 kW');
SELECT throws_ok($$SELECT * FROM api.meters_set_alarm_thresholds('{"phase": 3}', 1.2)$$, '22023',
	'undervoltage_ratio must be between 0 and 1', 'an undervoltage ratio above 1');
SELECT throws_ok($$SELECT * FROM api.meters_set_power_threshold('{"phase": 3}', -1)$$, '22023', NULL,
	'a negative power threshold');

-- mode: the cut-off prepaid meter 50201 becomes post-paid and is restored
SELECT results_eq($$SELECT * FROM api.meters_set_mode('{"meter_id": 50201}', 'postpaid')$$,
	$$VALUES (1::bigint, 1::bigint, 1::bigint)$$, 'mode set to post-paid');
SELECT results_eq($$SELECT mode, relay_desired FROM prepaid.meter WHERE meter_id = 50201$$,
	$$VALUES ('postpaid'::text, 'closed'::text)$$, 'a post-paid meter is not cut off for its balance');
SELECT is(pg_temp.pending(50201, 'relay_close'), 1::bigint, 'relay_close queued');
-- back to prepaid: the supply decision cuts it off again (balance -5.00)
SELECT results_eq($$SELECT * FROM api.meters_set_mode('{"meter_id": 50201}', 'prepaid')$$,
	$$VALUES (1::bigint, 1::bigint, 0::bigint)$$, 'mode set back to prepaid');
SELECT results_eq($$SELECT relay_desired, pg_temp.pending(50201, 'relay_open') FROM prepaid.meter WHERE meter_id = 50201$$,
	$$VALUES ('open'::text, 1::bigint)$$, 'the supply decision queued the cut-off');

-- keep-power restores it
SELECT results_eq($$SELECT * FROM api.meters_set_keep_power('{"fee_status": "cut_off"}', true)$$,
	$$VALUES (1::bigint, 1::bigint, 1::bigint)$$, 'keep-power on for the cut-off meters');
SELECT results_eq(
	$$SELECT relay_desired, pg_temp.pending(50201, 'keep_power_on'), pg_temp.pending(50201, 'relay_close'),
			 pg_temp.pending(50201, 'relay_open') FROM prepaid.meter WHERE meter_id = 50201$$,
	$$VALUES ('closed'::text, 1::bigint, 1::bigint, 0::bigint)$$,
	'keep_power_on queued; the supply decision closes the relay and supersedes the open');

-- relay by hand
SELECT results_eq($$SELECT * FROM api.meters_relay('{"area_name": "Building B", "online": true}', 'open')$$,
	$$VALUES (1::bigint, 1::bigint, 1::bigint)$$, 'open the online meters of Building B (50104)');
SELECT is(pg_temp.pending(50104, 'relay_open'), 1::bigint, 'relay_open queued for 50104');

-- filter errors
SELECT throws_ok($$SELECT * FROM api.meters_relay('{}', 'open')$$, '22023', 'a filter is required',
	'an empty filter is refused (no accidental "all meters")');
SELECT throws_ok($$SELECT * FROM api.meters_relay('{"colour": "red"}', 'open')$$, '22023',
	'unknown filter field "colour"', 'an unknown filter field');
SELECT throws_ok($$SELECT * FROM api.meters_relay('{"meter_id": 50104}', 'toggle')$$, '22023',
	'unknown relay action "toggle"', 'an unknown action');

SELECT * FROM finish();
ROLLBACK;
