-- Post-paid bills (F8, F19) and the capacity-charge report (F10, F19), worked
-- out by hand on the api park fixture. November 2025, prices at the start of
-- the month: sharp 1.20, peak 1.00, flat 0.70, valley 0.30.
BEGIN;
SELECT plan(19);
\ir fixtures/api_park.sql

-- 50102: freezes with registers, 60000 Wh x CT 2 = 120 kWh: sharp 5000, peak 10000, flat 15000,
--   valley 30000 Wh x 2 -> 10, 20, 30, 60 kWh -> 12.00 + 20.00 + 21.00 + 18.00 = 71.00
-- 50105: no registers; 10001 Wh split like its November readings (sharp 1.5, peak 1.5, flat 5,
--   valley 2 of 10 kWh): 1500.15, 1500.15, 5000.5, 2000.2 -> floors 10000 Wh, the 1 Wh left goes to
--   the largest fraction (flat): 1.500, 1.500, 5.001, 2.000 kWh -> 1.80 + 1.50 + 3.50 + 0.60 = 7.40
-- 50106: no registers, no readings: 24 kWh spread evenly over the calendar, whose day is valley
--   10 h, flat 7 h, sharp 1 h, peak 6 h -> 10, 7, 1, 6 kWh -> 3.00 + 4.90 + 1.20 + 6.00 = 15.10
SELECT results_eq(
	$$SELECT meter_id, item, quantity, price, amount, method FROM api.postpaid_bill_line
	   WHERE month = '2025-11-01' AND item <> 'capacity' ORDER BY meter_id, line_no$$,
	$$VALUES (50102::bigint, 'sharp'::text, 10.000::numeric, 1.200000::numeric, 12.00::numeric, 'registers'::text),
			 (50102, 'peak', 20.000, 1.000000, 20.00, 'registers'),
			 (50102, 'flat', 30.000, 0.700000, 21.00, 'registers'),
			 (50102, 'valley', 60.000, 0.300000, 18.00, 'registers'),
			 (50105, 'sharp', 1.500, 1.200000, 1.80, 'readings'),
			 (50105, 'peak', 1.500, 1.000000, 1.50, 'readings'),
			 (50105, 'flat', 5.001, 0.700000, 3.50, 'readings'),
			 (50105, 'valley', 2.000, 0.300000, 0.60, 'readings'),
			 (50106, 'sharp', 1.000, 1.200000, 1.20, 'uniform'),
			 (50106, 'peak', 6.000, 1.000000, 6.00, 'uniform'),
			 (50106, 'flat', 7.000, 0.700000, 4.90, 'uniform'),
			 (50106, 'valley', 10.000, 0.300000, 3.00, 'uniform')$$,
	'energy lines per TOU period: from registers, from the readings'' split, evenly');
SELECT is_empty(
	$$SELECT 1 FROM api.postpaid_bill_line WHERE item <> 'capacity' AND amount <> round(quantity * price, 2)$$,
	'every energy line: quantity x price = amount, to the fen');
SELECT is_empty(
	$$SELECT 1 FROM api.postpaid_bill_line l JOIN prepaid.month_usage u USING (property_id, meter_id, month)
	   JOIN prepaid.meter m USING (property_id, meter_id)
	  WHERE l.item <> 'capacity'
	  GROUP BY property_id, meter_id, month, u.energy_wh, m.pt_ratio, m.ct_ratio
	 HAVING sum(l.quantity) <> u.energy_wh * m.pt_ratio * m.ct_ratio * 0.001
		AND bool_and(l.method <> 'registers')$$,
	'split bills: the period kWh add up exactly to the month''s energy');

-- capacity: Acme (5001) is billed on maximum demand at 30/kW: 12.5 (50101) + 7.5 (50102) = 20 kW -> 600.00,
-- shared 12.5 : 7.5 : 0 -> 375.00, 225.00 and 0.00 for 50105 (no demand)
SELECT results_eq(
	$$SELECT meter_id, month, estimated, energy_kwh, split_method, energy_amount, capacity_basis,
			 capacity_amount, amount_due FROM api.postpaid_bill ORDER BY meter_id$$,
	$$VALUES (50102::bigint, '2025-11-01'::date, false, 120.000::numeric, 'registers'::text, 71.00::numeric,
			  'max_demand'::text, 225.00::numeric, 296.00::numeric),
			 (50105, '2025-11-01', true, 10.001, 'readings', 7.40, 'max_demand', 0.00, 7.40),
			 (50106, '2025-11-01', false, 24.000, 'uniform', 15.10, 'contract_demand', 0.00, 15.10)$$,
	'bills: energy, amount, capacity share, amount due; the estimated month usage is marked');
SELECT results_eq(
	$$SELECT sharp_kwh, sharp_price, sharp_amount, peak_kwh, peak_amount, flat_kwh, flat_amount,
			 valley_kwh, valley_amount, deep_kwh FROM api.postpaid_bill WHERE meter_id = 50102$$,
	$$VALUES (10.000::numeric, 1.200000::numeric, 12.00::numeric, 20.000::numeric, 20.00::numeric,
			  30.000::numeric, 21.00::numeric, 60.000::numeric, 18.00::numeric, NULL::numeric)$$,
	'a bill''s columns per period');
SELECT is((SELECT sum(amount_due) FROM api.postpaid_bill WHERE month = '2025-11-01'), 318.50::numeric,
	'sum over meters: 296.00 + 7.40 + 15.10 = 318.50');
SELECT is((SELECT sum(amount) FROM api.postpaid_bill_line WHERE month = '2025-11-01'),
	(SELECT sum(amount_due) FROM api.postpaid_bill WHERE month = '2025-11-01'),
	'the bills are the sum of their lines');
SELECT is((SELECT count(*) FROM api.postpaid_bill WHERE meter_id IN (50101, 50103, 50104, 50201)), 0::bigint,
	'prepaid meters get no post-paid bill');

-- capacity report
-- Dorm 3 (5002): contract 200 kW of 400 kVA at 40/kW; demand 215 kW > 105 % x 200 = 210 -> excess 5 kW
--   at double price: 200 x 40 + 5 x 40 x 2 = 8400.00
-- West Co (5003): transformer 630 kVA x 25 = 15750.00
SELECT results_eq(
	$$SELECT customer_id, meters, demand_kw, max_meter_kw, basis, billed_quantity, excess_kw, unit, amount
		FROM api.capacity_report WHERE month = '2025-11-01' ORDER BY customer_id$$,
	$$VALUES (5001::bigint, 3::bigint, 20.0000::numeric, 12.5000::numeric, 'max_demand'::text, 20.0000::numeric,
			  NULL::numeric, 'kW'::text, 600.00::numeric),
			 (5002, 2, 215.0000, 215.0000, 'contract_demand', 200.0, 5.0000, 'kW', 8400.00),
			 (5003, 1, 100.0000, 100.0000, 'transformer', 630.0, NULL, 'kVA', 15750.00)$$,
	'capacity charge per customer under its rule');
SELECT is((SELECT max_at FROM api.capacity_report WHERE customer_id = 5001 AND month = '2025-11-01'),
	'2025-11-12 10:15'::timestamp AT TIME ZONE :'tz', 'with the time of the maximum');
SELECT results_eq(
	$$SELECT meter_id, max_kw, amount FROM api.capacity_meter WHERE month = '2025-11-01' ORDER BY meter_id$$,
	$$VALUES (50101::bigint, 12.5000::numeric, 375.00::numeric), (50102, 7.5000, 225.00), (50103, 215.0000, 8400.00),
			 (50105, NULL, 0.00), (50106, NULL, 0.00), (50201, 100.0000, 15750.00)$$,
	'per meter: its maximum demand and its share of the charge');

-- December: a new rule for Acme (33.3333/kW) and 1 kW on each of its three meters:
-- 3 x 33.3333 = 99.9999 -> 100.00, shared in whole fen: 33.34 (lowest meter id takes the last fen), 33.33, 33.33
INSERT INTO prepaid.demand_max (property_id, meter_id, month, max_kw, max_at) VALUES
	(501, 50101, '2025-12-01', 1, '2025-12-02 10:00+08'), (501, 50102, '2025-12-01', 1, '2025-12-03 10:00+08'),
	(501, 50105, '2025-12-01', 1, '2025-12-04 10:00+08');
SELECT lives_ok($$SELECT api.capacity_rule_set(5001, 'max_demand', 33.3333, '2025-12-01')$$,
	'a new rule from December');
SELECT results_eq(
	$$SELECT meter_id, price, amount FROM api.capacity_meter WHERE month = '2025-12-01' ORDER BY meter_id$$,
	$$VALUES (50101::bigint, 33.3333::numeric, 33.34::numeric), (50102, 33.3333, 33.33), (50105, 33.3333, 33.33)$$,
	'the rule in force that month; shares in whole fen adding up to 100.00');
SELECT is((SELECT price FROM api.capacity_report WHERE customer_id = 5001 AND month = '2025-11-01'), 30.0000::numeric,
	'November keeps the rule that was in force then');

-- rule errors
SELECT throws_ok($$SELECT api.capacity_rule_set(5002, 'contract_demand', 40, '2026-01-01', 400, 150)$$,
	'23514', 'contracted demand must be at least 40% of the installed capacity',
	'a contract below 40 % of the installed capacity (150 < 0.4 x 400 = 160 kW) is refused');
SELECT lives_ok($$SELECT api.capacity_rule_set(5002, 'contract_demand', 40, '2026-01-01', 400, 160)$$,
	'exactly 40 % is allowed');
SELECT throws_ok($$SELECT api.capacity_rule_set(5002, 'contract_demand', 40, '2026-02-01', NULL, 200)$$,
	'23502', 'a contract-demand rule needs contract_kw and installed_kva', 'a contract needs the installed capacity');
SELECT throws_ok($$SELECT api.capacity_rule_set(5002, 'transformer', 25, '2026-02-15', 400)$$,
	'22023', 'a capacity rule starts on the first day of a month', 'rules start on the 1st');
SELECT throws_ok($$SELECT api.capacity_rule_set(5002, 'by_area', 25, '2026-02-01', 400)$$,
	'22023', 'unknown capacity basis "by_area"', 'unknown basis');

SELECT * FROM finish();
ROLLBACK;
