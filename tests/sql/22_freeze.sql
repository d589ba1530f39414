-- Month-start and daily freezes: slots at local midnight, catch-up after
-- downtime, estimates from readings when a meter's freeze never arrives,
-- month usage as the difference of two freezes.
BEGIN;
SELECT plan(12);

SELECT prepaid.tariff_put('{"name": "freeze-test", "time_zone": "Asia/Shanghai",
	"prices": {"sharp": 1, "peak": 1, "flat": 1, "valley": 1},
	"schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}') AS tid \gset
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (903, 'freeze park', 'Asia/Shanghai');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (903, 9031, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id) VALUES (903, 9031, 9031);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id, rate_registers, mode) VALUES
	(903, 90301, '900000000301', 9031, :tid, 4, 'postpaid'),
	(903, 90302, '900000000302', 9031, :tid, 0, 'postpaid');

-- dates lie in the past: readings ahead of the server clock are quarantined
-- first run in the evening of 2025-11-30 (local): opens the current month and day slots
SELECT results_eq(
	$$SELECT kind, frozen_at, action, meters FROM prepaid.freeze_run('2025-11-30 23:00+08') WHERE property_id = 903 ORDER BY 1, 2$$,
	$$VALUES ('day'::text, '2025-11-30 00:00+08'::timestamptz, 'queued'::text, 2::bigint),
			 ('month', '2025-11-01 00:00+08', 'queued', 2)$$,
	'first run opens the current month and day slots');
SELECT is((SELECT count(*) FROM prepaid.command WHERE property_id = 903 AND kind = 'read_frozen'), 2::bigint,
	'a read of the month freeze is queued for each meter');

-- midnight on the 1st, local time (16:00 UTC on the 30th)
SELECT results_eq(
	$$SELECT kind, frozen_at FROM prepaid.freeze_run('2025-12-01 00:00:30+08') WHERE property_id = 903 AND action = 'queued' ORDER BY 1$$,
	$$VALUES ('day'::text, '2025-12-01 00:00+08'::timestamptz), ('month', '2025-12-01 00:00+08')$$,
	'at 00:00 on the 1st (Asia/Shanghai) the month freeze runs');
SELECT is((SELECT count(*) FROM prepaid.freeze_run('2025-12-01 00:05+08') WHERE action = 'queued' AND property_id = 903),
	0::bigint, 'nothing more within the same slot');

-- freezes arrive for meter 1 (both month starts), meter 2 stays silent
INSERT INTO prepaid.freeze (property_id, meter_id, kind, frozen_at, energy_wh, rate_wh) VALUES
	(903, 90301, 'month', '2025-11-01 00:00+08', 100000, '{10000,20000,30000,40000}'),
	(903, 90301, 'month', '2025-12-01 00:00+08', 160000, '{15000,30000,45000,70000}');
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
	(903, 90302, '2025-11-30 23:50+08', 1000), (903, 90302, '2025-12-01 00:20+08', 1300),
	(903, 90302, '2025-10-31 23:30+08', 500), (903, 90302, '2025-11-01 00:30+08', 800);

-- after the grace period (6 h) meter 2 gets estimates: 1000 + 300 x 10/30 = 1100
SELECT lives_ok($$SELECT * FROM prepaid.freeze_run('2025-12-01 07:00+08')$$, 'freeze job after the grace period');
SELECT results_eq(
	$$SELECT energy_wh, estimated FROM prepaid.freeze WHERE meter_id = 90302 AND kind = 'month' ORDER BY frozen_at$$,
	$$VALUES (650::bigint, true), (1100::bigint, true)$$,
	'missing freezes estimated from the readings around midnight (500 + 300 x 30/60 = 650; 1100)');
SELECT is((SELECT estimated FROM prepaid.freeze WHERE meter_id = 90301 AND frozen_at = '2025-12-01 00:00+08' AND kind = 'month'),
	false, 'a freeze from the meter is not estimated');

-- month usage: difference of two freezes, per period from the registers
SELECT results_eq(
	$$SELECT meter_id, month, energy_wh, estimated FROM prepaid.month_usage WHERE property_id = 903 ORDER BY 1$$,
	$$VALUES (90301::bigint, '2025-11-01'::date, 60000::bigint, false), (90302, '2025-11-01', 450, true)$$,
	'November usage = December freeze - November freeze');
SELECT is((SELECT period_wh FROM prepaid.month_usage WHERE meter_id = 90301),
	'{"sharp": 5000, "peak": 10000, "flat": 15000, "valley": 30000}'::jsonb,
	'per TOU period from the per-rate registers (T1..T4 = sharp, peak, flat, valley)');

-- the server was down from 2025-12-01 until 2026-02-03: both missed month slots are caught up
SELECT results_eq(
	$$SELECT frozen_at FROM prepaid.freeze_run('2026-02-03 10:00+08') WHERE property_id = 903 AND kind = 'month' AND action = 'queued' ORDER BY 1$$,
	$$VALUES ('2026-01-01 00:00+08'::timestamptz), ('2026-02-01 00:00+08')$$,
	'missed month freezes are caught up in order, none skipped');
SELECT is((SELECT count(*) FROM prepaid.freeze_slot WHERE property_id = 903 AND kind = 'day'
		   AND frozen_at > '2025-12-01 00:00+08' AND frozen_at <= '2026-02-03 10:00+08'), 64::bigint,
	'every missed daily slot too (64 midnights)');
SELECT ok(EXISTS (SELECT 1 FROM prepaid.job WHERE job_name = 'freeze'), 'freeze job registered');

SELECT * FROM finish();
ROLLBACK;
