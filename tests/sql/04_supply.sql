-- The supply decision: cut-off below -credit_limit queues exactly one relay
-- command, a recharge restores (relay_close or relay_permit_close per meter),
-- keep-power never cuts, newer relay commands supersede older pending ones,
-- low-balance warnings, friendly hours.
BEGIN;
SELECT plan(28);

SELECT prepaid.tariff_put('{"name": "supply-t", "time_zone": "UTC",
	"prices": {"flat": 1.00}, "schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}') AS tid \gset
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (802, 'supply park', 'UTC');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (802, 8021, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id, credit_limit, warning_level) VALUES
	(802, 8021, 8021, 10, 20), (802, 8022, 8021, 0, 5), (802, 8023, 8021, 0, 5);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id, restore_command, keep_power) VALUES
	(802, 80201, '802000000201', 8021, :tid, 'relay_close', false),
	(802, 80202, '802000000202', 8022, :tid, 'relay_permit_close', false),
	(802, 80203, '802000000203', 8023, :tid, 'relay_close', true);

-- 15.00 is below the warning level of 20: one low-balance alarm
SELECT prepaid.recharge(80201, 15, 'wechat', 'wx-1');
SELECT is((SELECT count(*) FROM prepaid.alarm WHERE meter_id = 80201 AND kind = 'low_balance' AND cleared_at IS NULL),
	1::bigint, 'balance 15 < warning level 20: low-balance alarm raised');

-- 20 kWh at 1.00: balance -5, inside the credit of 10: no cut-off
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
	(802, 80201, '2026-11-10 00:00Z', 0), (802, 80201, '2026-11-10 01:00Z', 20000);
SELECT prepaid.settle();
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 8021), -5.00::numeric(14,2), 'balance -5.00');
SELECT is((SELECT count(*) FROM prepaid.command WHERE meter_id = 80201), 0::bigint,
	'in credit (above -credit_limit): no command');
SELECT is((SELECT count(*) FROM prepaid.alarm WHERE meter_id = 80201 AND kind = 'low_balance'), 1::bigint,
	'the warning is raised once while the condition lasts');

-- 6 kWh more: balance -11 < -10: cut off, exactly one relay_open
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES (802, 80201, '2026-11-10 02:00Z', 26000);
SELECT prepaid.settle();
SELECT results_eq($$SELECT kind, status FROM prepaid.command WHERE meter_id = 80201$$,
	$$VALUES ('relay_open'::text, 'pending'::text)$$, 'below the credit limit: one relay_open queued');
SELECT is((SELECT relay_desired FROM prepaid.meter WHERE meter_id = 80201), 'open', 'desired relay state open');
SELECT ok((SELECT payload->>'balance' = '-11.00' FROM prepaid.command WHERE meter_id = 80201),
	'the command records the balance that caused it');
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES (802, 80201, '2026-11-10 03:00Z', 27000);
SELECT prepaid.settle();
SELECT is((SELECT count(*) FROM prepaid.command WHERE meter_id = 80201), 1::bigint,
	'more consumption while cut off: still exactly one command');

-- recharge lifts it above the limit: relay_close, the pending open superseded
SELECT prepaid.recharge(80201, 50, 'alipay', 'ali-1') AS e1 \gset
SELECT results_eq($$SELECT kind, status FROM prepaid.command WHERE meter_id = 80201 ORDER BY command_id$$,
	$$VALUES ('relay_open'::text, 'superseded'::text), ('relay_close', 'pending')$$,
	'recharge restores: relay_close queued, the stale relay_open superseded');
SELECT is((SELECT relay_desired FROM prepaid.meter WHERE meter_id = 80201), 'closed', 'desired relay state closed');
SELECT is((SELECT count(*) FROM prepaid.alarm WHERE meter_id = 80201 AND kind = 'low_balance' AND cleared_at IS NULL),
	0::bigint, 'balance 38 >= 20: the low-balance alarm is cleared');
SELECT is(prepaid.recharge(80201, 50, 'alipay', 'ali-1'), :e1::bigint, 'a repeated recharge returns the first entry');
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 8021), 38.00::numeric(14,2),
	'and credits once: -12 + 50 = 38');

-- permit-close meters are restored with relay_permit_close
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
	(802, 80202, '2026-11-10 00:00Z', 0), (802, 80202, '2026-11-10 01:00Z', 1000);
SELECT prepaid.settle();
SELECT results_eq($$SELECT kind FROM prepaid.command WHERE meter_id = 80202 AND status = 'pending'$$,
	$$VALUES ('relay_open'::text)$$, 'balance -1 with no credit: cut off');
SELECT prepaid.recharge(80202, 10, 'platform', 'cash-1');
SELECT results_eq($$SELECT kind FROM prepaid.command WHERE meter_id = 80202 AND status = 'pending'$$,
	$$VALUES ('relay_permit_close'::text)$$, 'restored with relay_permit_close, as the meter model needs');

-- keep-power never cuts
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
	(802, 80203, '2026-11-10 00:00Z', 0), (802, 80203, '2026-11-10 01:00Z', 100000);
SELECT prepaid.settle();
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 8023), -100.00::numeric(14,2), 'balance -100');
SELECT is((SELECT count(*) FROM prepaid.command WHERE meter_id = 80203), 0::bigint, 'keep-power: no cut-off');
SELECT is((SELECT relay_desired FROM prepaid.meter WHERE meter_id = 80203), 'closed', 'desired state stays closed');
UPDATE prepaid.meter SET keep_power = false WHERE meter_id = 80203;
SELECT results_eq($$SELECT kind FROM prepaid.command WHERE meter_id = 80203 AND status = 'pending'$$,
	$$VALUES ('relay_open'::text)$$, 'keep-power switched off while in arrears: cut off at once');
-- raising the credit limit above the debt restores
UPDATE prepaid.account SET credit_limit = 150 WHERE account_id = 8023;
SELECT results_eq($$SELECT kind, status FROM prepaid.command WHERE meter_id = 80203 ORDER BY command_id$$,
	$$VALUES ('relay_open'::text, 'superseded'::text), ('relay_close', 'pending')$$,
	'a credit limit raised above the debt restores');

-- the queue: one pending command per kind, newer relay commands supersede
SELECT is(prepaid.command_queue(80201, 'time_sync'), prepaid.command_queue(80201, 'time_sync'),
	'a second pending command of the same kind is the first one');
SELECT prepaid.command_queue(80202, 'relay_open', NULL, 'operator');
SELECT is((SELECT status FROM prepaid.command WHERE meter_id = 80202 AND kind = 'relay_permit_close'), 'superseded',
	'a newer relay_open supersedes the pending relay_permit_close');
SELECT throws_ok($$SELECT prepaid.command_queue(424242, 'relay_open')$$, 'P0002', NULL, 'unknown meter');

-- friendly hours: no cut-off 22:00-07:00 and at weekends
INSERT INTO prepaid.property (property_id, name, time_zone, no_cutoff_from, no_cutoff_to, no_cutoff_weekend)
VALUES (803, 'friendly park', 'UTC', '22:00', '07:00', true);
SELECT results_eq($$SELECT prepaid.cutoff_allowed_at(803, '2026-11-10 23:30Z'),
						   prepaid.cutoff_allowed_at(803, '2026-11-10 12:00Z'),
						   prepaid.cutoff_allowed_at(803, '2026-11-14 12:00Z')$$,
	$$VALUES ('2026-11-11 07:00Z'::timestamptz, '2026-11-10 12:00Z'::timestamptz, '2026-11-16 07:00Z'::timestamptz)$$,
	'night waits until 07:00; daytime now; Saturday noon waits until Monday 07:00');
-- a cut-off decided inside the window is queued to run when it ends
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (803, 8031, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id, credit_limit, warning_level) VALUES (803, 8031, 8031, 0, 0);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id) VALUES (803, 80301, '803000000301', 8031, :tid);
UPDATE prepaid.property SET no_cutoff_weekend = false,
	no_cutoff_from = ((now() AT TIME ZONE 'UTC') - interval '1 hour')::time(0),
	no_cutoff_to = ((now() AT TIME ZONE 'UTC') + interval '1 hour')::time(0)
 WHERE property_id = 803;
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
	(803, 80301, '2026-11-10 00:00Z', 0), (803, 80301, '2026-11-10 01:00Z', 1000);
SELECT prepaid.settle();
SELECT ok((SELECT not_before BETWEEN now() + interval '58 minutes' AND now() + interval '61 minutes'
			 FROM prepaid.command WHERE meter_id = 80301 AND kind = 'relay_open'),
	'cut-off inside friendly hours: not_before is the end of the window');

-- the site time zone: default from pg_prepaid.time_zone, unknown zones refused
SET LOCAL pg_prepaid.time_zone = 'Europe/Berlin';
INSERT INTO prepaid.property (property_id, name) VALUES (804, 'berlin site');
SELECT is((SELECT time_zone FROM prepaid.property WHERE property_id = 804), 'Europe/Berlin',
	'a new property takes pg_prepaid.time_zone');
SELECT throws_ok($$INSERT INTO prepaid.property (name, time_zone) VALUES ('mars site', 'Mars/Olympus')$$,
	'22023', 'unknown time zone "Mars/Olympus"', 'an unknown time zone is refused');

SELECT is_empty($$SELECT * FROM prepaid.verify_ledger()$$, 'verify_ledger() is empty');

SELECT * FROM finish();
ROLLBACK;
