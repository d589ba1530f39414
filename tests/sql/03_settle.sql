-- prepaid.settle(): prices new readings per TOU period (registers when the
-- meter has them, otherwise the total split by time), one ledger entry per
-- meter per run, exact to the fen, idempotent; rollover priced, backwards
-- energy quarantined and never charged. Every expected amount is worked out
-- by hand in the comments.
BEGIN;
SELECT plan(38);

-- UTC tariff: valley 00-08 at 0.30, peak 08-24 at 1.00; registers T1 = peak, T2 = valley
\set tariff_name settle-t
\ir fixtures/valley_peak_tariff.sql
-- flat 0.50, and from 2026-11-10 08:00Z flat 0.80
SELECT prepaid.tariff_put('{"name": "settle-v", "time_zone": "UTC",
	"prices": {"flat": 0.50}, "schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}') AS vid \gset
SELECT prepaid.tariff_put(jsonb_build_object('tariff_id', :vid, 'valid_from', '2026-11-10 08:00Z',
	'prices', '{"flat": 0.80}'::jsonb, 'schedule', '[{"from": "00:00", "to": "24:00", "period": "flat"}]'::jsonb));

INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (801, 'settle park', 'UTC');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (801, 8011, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id, credit_limit, warning_level)
SELECT 801, a, 8011, 0, 0 FROM generate_series(8001, 8010) a;
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id, rate_registers, mode, ct_ratio) VALUES
	(801, 80101, '801000000101', 8001, :tid, 0, 'prepaid', 1),    -- total only
	(801, 80102, '801000000102', 8002, :tid, 2, 'prepaid', 1),    -- T1/T2 registers
	(801, 80103, '801000000103', 8003, :tid, 0, 'prepaid', 1),    -- 1,440 one-minute intervals
	(801, 80104, '801000000104', 8004, :tid, 0, 'prepaid', 1),    -- the same day in one interval
	(801, 80105, '801000000105', 8005, :tid, 0, 'prepaid', 1),    -- register rollover
	(801, 80106, '801000000106', 8006, :tid, 0, 'prepaid', 1),    -- energy backwards
	(801, 80107, '801000000107', 8007, :tid, 0, 'postpaid', 1),   -- post-paid: never settled
	(801, 80108, '801000000108', 8008, :tid, 0, 'prepaid', 20),   -- CT 20
	(801, 80109, '801000000109', 8009, :vid, 0, 'prepaid', 1);    -- price change mid-interval
SELECT prepaid.recharge(m, 100, 'platform', 'seed-' || m) FROM generate_series(80101, 80109) m;

INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh) VALUES
	-- 4 kWh over 07:00-09:00: 2 kWh valley x 0.30 + 2 kWh peak x 1.00 = 2.60
	(801, 80101, '2026-11-10 07:00Z', 1000000, NULL), (801, 80101, '2026-11-10 09:00Z', 1004000, NULL),
	-- registers: T1 (peak) +1 kWh, T2 (valley) +4 kWh = 1.00 + 1.20 = 2.20 (a time split would say 3.25)
	(801, 80102, '2026-11-10 07:00Z', 5000000, '{3000000,2000000}'),
	(801, 80102, '2026-11-10 09:00Z', 5005000, '{3001000,2004000}'),
	-- rollover at 10^9 Wh: 999,999,000 -> 1,000 is +2 kWh = 0.30 + 1.00 = 1.30
	(801, 80105, '2026-11-10 07:00Z', 999999000, NULL), (801, 80105, '2026-11-10 09:00Z', 1000, NULL),
	-- backwards at 08:00; 07:00 -> 09:00 is +2 kWh = 1.30
	(801, 80106, '2026-11-10 07:00Z', 5000000, NULL), (801, 80106, '2026-11-10 08:00Z', 4000000, NULL),
	(801, 80106, '2026-11-10 09:00Z', 5002000, NULL),
	(801, 80107, '2026-11-10 07:00Z', 0, NULL), (801, 80107, '2026-11-10 09:00Z', 9000, NULL),
	-- CT 20: 0.1 kWh on the register is 2 kWh = 1.30
	(801, 80108, '2026-11-10 07:00Z', 0, NULL), (801, 80108, '2026-11-10 09:00Z', 100, NULL),
	-- 07:00-09:00, 2 kWh: 1 kWh at 0.50 (version 1) + 1 kWh at 0.80 (version 2) = 1.30
	(801, 80109, '2026-11-10 07:00Z', 0, NULL), (801, 80109, '2026-11-10 09:00Z', 2000, NULL);

SELECT results_eq($$SELECT entries, amount, quarantined FROM prepaid.settle()$$,
	$$VALUES (6::bigint, 10.00::numeric, 1::bigint)$$,
	'first run: 6 entries (80101/02/05/06/08/09), 2.60 + 2.20 + 1.30 x 4 = 10.00, one reading quarantined');
SELECT results_eq($$SELECT meter_id, amount, kwh FROM prepaid.ledger
					 WHERE kind = 'energy' AND property_id = 801 ORDER BY meter_id$$,
	$$VALUES (80101::bigint, -2.60::numeric, 4.000000::numeric), (80102, -2.20, 5.000000),
			 (80105, -1.30, 2.000000), (80106, -1.30, 2.000000), (80108, -1.30, 2.000000),
			 (80109, -1.30, 2.000000)$$,
	'each meter charged its hand-worked amount and energy');
SELECT results_eq($$SELECT p->>'period', (p->>'kwh')::numeric, (p->>'price')::numeric, (p->>'amount')::numeric
					 FROM prepaid.ledger l, jsonb_array_elements(l.detail->'periods') p
					WHERE l.meter_id = 80101 AND l.kind = 'energy' ORDER BY 1$$,
	$$VALUES ('peak'::text, 2.0::numeric, 1.0::numeric, 2.0::numeric), ('valley', 2.0, 0.3, 0.6)$$,
	'the entry carries kWh, price and amount of each period');
SELECT results_eq($$SELECT p->>'period', (p->>'kwh')::numeric FROM prepaid.ledger l,
					 jsonb_array_elements(l.detail->'periods') p
					WHERE l.meter_id = 80102 AND l.kind = 'energy' ORDER BY 1$$,
	$$VALUES ('peak'::text, 1.0::numeric), ('valley', 4.0)$$,
	'registers are priced directly, not split by time');
SELECT results_eq($$SELECT (p->>'price')::numeric, (p->>'kwh')::numeric FROM prepaid.ledger l,
					 jsonb_array_elements(l.detail->'periods') p
					WHERE l.meter_id = 80109 AND l.kind = 'energy' ORDER BY 1$$,
	$$VALUES (0.5::numeric, 1.0::numeric), (0.8, 1.0)$$,
	'a tariff version change inside an interval prices each part at its own price');
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 8001), 97.40::numeric(14,2),
	'balance moved with the entry: 100 - 2.60');
SELECT is((SELECT count(*) FROM prepaid.ledger WHERE meter_id = 80107 AND kind = 'energy'), 0::bigint,
	'post-paid meter: not charged');

-- backwards energy: quarantined with an alarm, never charged
SELECT results_eq($$SELECT source, reason FROM prepaid.quarantine WHERE meter_id = 80106$$,
	$$VALUES ('settlement'::text, 'energy_backwards'::text)$$, 'backwards reading quarantined with its reason');
SELECT is((SELECT count(*) FROM prepaid.reading WHERE meter_id = 80106 AND read_at = '2026-11-10 08:00Z'),
	0::bigint, 'and no longer among the readings');
SELECT ok(EXISTS (SELECT 1 FROM prepaid.alarm WHERE meter_id = 80106 AND kind = 'energy_backwards'
				   AND severity = 'critical' AND cleared_at IS NULL), 'with a critical alarm');

-- idempotent: a second run charges nothing
SELECT results_eq($$SELECT meters, entries, amount FROM prepaid.settle()$$,
	$$VALUES (0::bigint, 0::bigint, 0.00::numeric)$$, 'second run: nothing to settle');
SELECT is((SELECT count(*) FROM prepaid.ledger WHERE property_id = 801 AND kind = 'energy'), 6::bigint,
	'still six energy entries');

-- several new readings: one entry per meter per run
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
	(801, 80101, '2026-11-10 10:00Z', 1005000), (801, 80101, '2026-11-10 11:00Z', 1006000);
SELECT results_eq($$SELECT meters, readings, entries, amount FROM prepaid.settle()$$,
	$$VALUES (1::bigint, 2::bigint, 1::bigint, 2.00::numeric)$$, 'two readings, one entry of 2 x 1 kWh peak');
SELECT results_eq($$SELECT (detail->>'readings')::int, period_from, period_to FROM prepaid.ledger
					 WHERE meter_id = 80101 AND kind = 'energy' ORDER BY entry_id DESC LIMIT 1$$,
	$$VALUES (2, '2026-11-10 09:00Z'::timestamptz, '2026-11-10 11:00Z'::timestamptz)$$,
	'the entry covers 09:00 to 11:00');

-- bad readings: quarantined by the reading trigger with the reason, nothing else changes
SELECT balance AS bal_before FROM prepaid.account WHERE account_id = 8001 \gset
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
	(801, 99999, '2026-11-10 12:00Z', 100),                 -- unknown meter
	(801, 80101, now() + interval '1 day', 2000000),        -- clock far in the future
	(801, 80101, '2026-11-10 10:30Z', 1005500);             -- older than the settled cursor
SELECT results_eq($$SELECT meter_id, reason FROM prepaid.quarantine WHERE source = 'reading'
					 AND property_id = 801 ORDER BY reason$$,
	$$VALUES (80101::bigint, 'before_settlement_cursor'::text), (80101, 'clock_in_future'), (99999, 'unknown_meter')$$,
	'unknown meter, future clock and out-of-order reading quarantined with reasons');
SELECT ok((SELECT bool_and(detail IS NOT NULL AND reading IS NOT NULL) FROM prepaid.quarantine
			WHERE source = 'reading' AND property_id = 801), 'each with a detail and the full row');
SELECT is((SELECT count(*) FROM prepaid.reading WHERE property_id = 801 AND
			(meter_id = 99999 OR read_at > now() OR read_at = '2026-11-10 10:30Z')), 0::bigint,
	'none of them stays among the readings');
SELECT throws_ok($$INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
				   VALUES (801, 80101, '2026-11-10 11:00Z', 1006000)$$, '23505', NULL,
	'a duplicate reading is refused (unique_violation)');
SELECT throws_ok($$INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
				   VALUES (801, 80101, '2026-11-10 12:00Z', -5)$$, '23514', NULL,
	'negative energy is refused (check_violation)');
SELECT is((SELECT count(*) FROM prepaid.settle() WHERE entries > 0), 0::bigint, 'nothing new to charge');
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 8001), :'bal_before'::numeric,
	'the balance did not move');

-- a replaced meter: re-baselined, then charged from the new register value
SELECT throws_ok($$SELECT prepaid.meter_rebaseline(80106, 0, '2026-11-10 08:30Z', 'meter replaced')$$,
	'22023', NULL, 'a re-baseline must be after the settled reading');
SELECT throws_ok($$SELECT prepaid.meter_rebaseline(80106, 0, '2026-11-10 10:00Z', ' ')$$,
	'22023', 'a re-baseline needs a reason', 'a re-baseline needs a reason');
SELECT lives_ok($$SELECT prepaid.meter_rebaseline(80106, 0, '2026-11-10 10:00Z', 'meter replaced')$$,
	're-baseline at 10:00 from 0 Wh');
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
VALUES (801, 80106, '2026-11-10 11:00Z', 1000);
SELECT results_eq($$SELECT amount FROM prepaid.settle()$$, $$VALUES (1.00::numeric)$$,
	'after the re-baseline: 1 kWh peak = 1.00');
SELECT ok(NOT EXISTS (SELECT 1 FROM prepaid.alarm WHERE meter_id = 80106 AND kind = 'energy_backwards'
					   AND cleared_at IS NULL), 'the backwards alarm is cleared');

-- exactness: 7 Wh a minute for a day (480 min valley, 960 min peak)
--   3.36 kWh x 0.30 + 6.72 kWh x 1.00 = 1.008 + 6.72 = 7.728 -> 7.72 charged, 0.008 carried
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
	(801, 80103, '2026-11-11 00:00Z', 0), (801, 80104, '2026-11-11 00:00Z', 0),
	(801, 80104, '2026-11-12 00:00Z', 10080);
SELECT results_eq($$SELECT entries, amount FROM prepaid.settle()$$, $$VALUES (1::bigint, 7.72::numeric)$$,
	'one interval of a day: 7.72');
DO $$
BEGIN
	FOR i IN 1 .. 1440 LOOP
		INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
		VALUES (801, 80103, timestamptz '2026-11-11 00:00Z' + i * interval '1 minute', 7 * i);
		PERFORM prepaid.settle();
	END LOOP;
END
$$;
SELECT is((SELECT count(*) FROM prepaid.ledger WHERE meter_id = 80103 AND kind = 'energy'), 1440::bigint,
	'1,440 runs wrote 1,440 entries');
SELECT is((SELECT sum(amount) FROM prepaid.ledger WHERE meter_id = 80103),
		  (SELECT sum(amount) FROM prepaid.ledger WHERE meter_id = 80104),
	'1,440 one-minute charges add up to the one-interval charge, to the fen');
SELECT is((SELECT sum(amount) FROM prepaid.ledger WHERE meter_id = 80103 AND kind = 'energy'), -7.72::numeric,
	'both -7.72');
SELECT results_eq($$SELECT meter_id, carry_pico FROM prepaid.settle_cursor WHERE meter_id IN (80103, 80104) ORDER BY 1$$,
	$$VALUES (80103::bigint, 8000000000::bigint), (80104, 8000000000)$$,
	'and both carry the same 0.008 yuan not yet charged');
SELECT is((SELECT sum(kwh) FROM prepaid.ledger WHERE meter_id = 80103 AND kind = 'energy'), 10.080000::numeric,
	'energy of the 1,440 entries adds up to 10.08 kWh');

-- bad arguments
SELECT throws_ok($$SELECT * FROM prepaid.settle(0)$$, '22023', 'max_meters must be positive', 'max_meters 0');
SELECT throws_ok($$SELECT * FROM prepaid.settle(NULL, -1)$$, '22023', 'batch_size must be positive', 'batch_size -1');

-- batches: max_meters and a small batch settle everything exactly once
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
SELECT 801, m, '2026-11-12 01:00Z', e FROM (VALUES (80101, 1007000), (80102, 5006000), (80105, 2000),
	(80108, 150), (80109, 3000)) v(m, e);
SELECT results_eq($$SELECT meters FROM prepaid.settle(max_meters => 2, batch_size => 1)$$,
	$$VALUES (2::bigint)$$, 'max_meters => 2 settles two meters');
SELECT results_eq($$SELECT meters FROM prepaid.settle(batch_size => 1)$$,
	$$VALUES (3::bigint)$$, 'the rest in batches of one');
SELECT is((SELECT count(*) FROM prepaid.settle() WHERE meters > 0), 0::bigint, 'and nothing is left');

SELECT is_empty($$SELECT * FROM prepaid.verify_ledger()$$, 'verify_ledger(): every balance equals the sum of its entries');

SELECT * FROM finish();
ROLLBACK;
