-- Alarm rules: raised once while the condition holds, cleared when it ends,
-- NOTIFY on every raise and clear (payload checked through the alarm row).
BEGIN;
SELECT plan(16);

SELECT prepaid.tariff_put('{"name": "alarm-test", "time_zone": "Asia/Shanghai",
	"prices": {"flat": 1}, "schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}') AS tid \gset
INSERT INTO prepaid.property (property_id, name) VALUES (901, 'alarm park');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (901, 9011, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id, warning_level) VALUES (901, 9011, 9011, 0);
INSERT INTO prepaid.gateway (property_id, gateway_id, serial, last_seen) VALUES
	(901, 9011, 'GW-A', now() - interval '1 hour'), (901, 9012, 'GW-B', now());
INSERT INTO prepaid.meter (property_id, meter_id, address, phase, account_id, tariff_id,
						   power_threshold_kw, voltage_nominal, opened_at, opening_energy_wh) VALUES
	(901, 90101, '900000000101', 3, 9011, :tid, 10, 220, now() - interval '1 day', 0),
	(901, 90102, '900000000102', 1, 9011, :tid, NULL, 220, now() - interval '1 day', 0),
	(901, 90103, '900000000103', 1, 9011, :tid, NULL, 220, now() - interval '1 day', 0);
SELECT prepaid.recharge(90101, 100, 'platform', 'alarm-seed');

-- meter 1: phase C lost and overload; meter 2: overvoltage; meter 3: silent for a day
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a, voltage_b,
							 voltage_c, power_kw, relay_open) VALUES
	(901, 90101, now() - interval '1 minute', 1000, 221.0, 219.5, 12.0, 12.5, false),
	(901, 90102, now() - interval '1 minute', 1000, 246.0, NULL, NULL, 1.0, false);

SELECT results_eq(
	$$SELECT meter_id, kind FROM prepaid.alarm_conditions() WHERE property_id = 901 AND meter_id IS NOT NULL ORDER BY 1, 2$$,
	$$VALUES (90101::bigint, 'overload'::text), (90101, 'phase_loss'), (90102, 'overvoltage'),
			 (90103, 'meter_offline')$$,
	'conditions: phase loss (12 V < 0.5 x 220), overload (12.5 > 10 kW), overvoltage (246 > 242), offline (no reading for 1 day > 2.5 x 30 min)');
SELECT is((SELECT count(*) FROM prepaid.alarm_conditions() WHERE gateway_id = 9011 AND kind = 'gateway_offline'),
	1::bigint, 'gateway silent for an hour is offline (timeout 15 min)');
SELECT is((SELECT count(*) FROM prepaid.alarm_conditions() WHERE gateway_id = 9012), 0::bigint,
	'a gateway seen now is not offline');

SELECT lives_ok($$SELECT * FROM prepaid.alarms_run()$$, 'alarms_run raises');
SELECT is((SELECT count(*) FROM prepaid.alarm WHERE property_id = 901 AND cleared_at IS NULL), 5::bigint,
	'five alarms active (4 meter conditions + gateway)');
SELECT is((SELECT count(*) FROM prepaid.alarms_run() WHERE raised > 0), 0::bigint,
	'a second run raises nothing more: raised once while the condition lasts');
SELECT is((SELECT count(*) FROM prepaid.alarm WHERE property_id = 901), 5::bigint, 'still five rows');

-- conditions end: phase C back, load normal, meter 3 reports
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a, voltage_b,
							 voltage_c, power_kw, relay_open) VALUES
	(901, 90101, now(), 1100, 221.0, 219.5, 220.4, 3.0, false),
	(901, 90103, now(), 1000, 220.0, NULL, NULL, 0.5, false);
SELECT results_eq($$SELECT kind, raised, cleared FROM prepaid.alarms_run() ORDER BY kind$$,
	$$VALUES ('meter_offline'::text, 0::bigint, 1::bigint), ('overload', 0, 1), ('phase_loss', 0, 1)$$,
	'ended conditions are cleared, the rest stay');
SELECT is((SELECT count(*) FROM prepaid.alarm WHERE property_id = 901 AND cleared_at IS NULL), 2::bigint,
	'overvoltage and gateway_offline remain active');

-- undervoltage between phase-loss and undervoltage thresholds, with a per-meter ratio
UPDATE prepaid.meter SET undervoltage_ratio = 0.95 WHERE meter_id = 90103;
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a)
VALUES (901, 90103, now() + interval '1 second', 1000, 205.0);
SELECT is((SELECT count(*) FROM prepaid.alarm_conditions() WHERE meter_id = 90103 AND kind = 'undervoltage'),
	1::bigint, 'per-meter undervoltage ratio: 205 V < 0.95 x 220 = 209 V');

-- arrears, and relay open when it should be closed
INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount)
VALUES (901, 9011, 90101, 'energy', -150.00);
SELECT ok(EXISTS (SELECT 1 FROM prepaid.alarm_conditions() WHERE meter_id = 90101 AND kind = 'arrears'),
	'balance below zero: arrears');
UPDATE prepaid.meter SET keep_power = true WHERE account_id = 9011;
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a, voltage_b, voltage_c, relay_open)
VALUES (901, 90101, now() + interval '2 seconds', 1200, 220, 220, 220, true);
SELECT ok(EXISTS (SELECT 1 FROM prepaid.alarm_conditions() WHERE meter_id = 90101 AND kind = 'relay_open_unexpected'),
	'relay reported open while desired closed');

-- acknowledge
SELECT ok(prepaid.alarm_ack((SELECT alarm_id FROM prepaid.alarm WHERE meter_id = 90102 AND kind = 'overvoltage'), 'op1'),
	'alarm acknowledged');
SELECT ok(NOT prepaid.alarm_ack((SELECT alarm_id FROM prepaid.alarm WHERE meter_id = 90102 AND kind = 'overvoltage'), 'op2'),
	'a second acknowledgement changes nothing');
SELECT is((SELECT acked_by FROM prepaid.alarm WHERE meter_id = 90102 AND kind = 'overvoltage'), 'op1', 'first acknowledger kept');

-- the job is registered
SELECT ok(EXISTS (SELECT 1 FROM prepaid.job WHERE job_name = 'alarms' AND enabled), 'alarms job registered');

SELECT * FROM finish();
ROLLBACK;
