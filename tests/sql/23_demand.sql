-- 15-minute demand from meter-reported values or dense energy readings, and
-- the monthly maximum with its time.
BEGIN;
SELECT plan(7);

SELECT prepaid.tariff_put('{"name": "demand-test", "time_zone": "UTC",
	"prices": {"flat": 1}, "schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}') AS tid \gset
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (904, 'demand park', 'UTC');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (904, 9041, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id) VALUES (904, 9041, 9041);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id, ct_ratio, mode) VALUES
	(904, 90401, '900000000401', 9041, :tid, 1, 'postpaid'),
	(904, 90402, '900000000402', 9041, :tid, 10, 'postpaid'),
	(904, 90403, '900000000403', 9041, :tid, 1, 'postpaid');

-- meter 1: readings every 5 minutes; window 10:00-10:15 gets 250+250+500 Wh = 1 kWh in 15 min = 4 kW;
-- window 10:15-10:30 only half covered: no computed demand
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
	(904, 90401, '2025-06-02 10:00+00', 10000), (904, 90401, '2025-06-02 10:05+00', 10250),
	(904, 90401, '2025-06-02 10:10+00', 10500), (904, 90401, '2025-06-02 10:15+00', 11000),
	(904, 90401, '2025-06-02 10:20+00', 11100);
-- meter 2 (CT 10) reports its demand: 0.35 kW secondary at 11:15 = 3.5 kW, and 0.5 at 11:30 = 5 kW
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, demand_kw) VALUES
	(904, 90402, '2025-06-02 11:15+00', 500, 0.35), (904, 90402, '2025-06-02 11:30+00', 600, 0.5);
-- meter 3: readings every 30 minutes are not dense enough
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES
	(904, 90403, '2025-06-02 10:00+00', 0), (904, 90403, '2025-06-02 10:30+00', 900);

SELECT lives_ok($$SELECT * FROM prepaid.demand_run('1 day', '2025-06-02 12:00+00')$$, 'demand job runs');
SELECT results_eq(
	$$SELECT meter_id, window_start, demand_kw, source FROM prepaid.demand WHERE property_id = 904 ORDER BY 1, 2$$,
	$$VALUES (90401::bigint, '2025-06-02 10:00+00'::timestamptz, 4.0000::numeric, 'computed'::text),
			 (90402, '2025-06-02 11:00+00', 3.5000, 'meter'),
			 (90402, '2025-06-02 11:15+00', 5.0000, 'meter')$$,
	'computed where readings cover the window, meter-reported with CT applied, nothing from sparse readings');
SELECT results_eq(
	$$SELECT meter_id, month, max_kw, max_at FROM prepaid.demand_max WHERE property_id = 904 ORDER BY 1$$,
	$$VALUES (90401::bigint, '2025-06-01'::date, 4.0000::numeric, '2025-06-02 10:00+00'::timestamptz),
			 (90402, '2025-06-01', 5.0000, '2025-06-02 11:15+00')$$,
	'monthly maximum demand with its window');
SELECT results_eq($$SELECT windows FROM prepaid.demand_run('1 day', '2025-06-02 12:00+00')$$,
	$$VALUES (0::bigint)$$, 'a second run changes nothing');

-- a higher demand later in the month replaces the maximum; a lower one does not
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, demand_kw) VALUES
	(904, 90402, '2025-06-20 09:15+00', 700, 0.9), (904, 90402, '2025-06-21 09:15+00', 800, 0.1);
SELECT lives_ok($$SELECT * FROM prepaid.demand_run('30 days', '2025-06-22 00:00+00')$$, 'later run');
SELECT results_eq($$SELECT max_kw, max_at FROM prepaid.demand_max WHERE meter_id = 90402$$,
	$$VALUES (9.0000::numeric, '2025-06-20 09:00+00'::timestamptz)$$, 'new maximum and its time');
SELECT ok(EXISTS (SELECT 1 FROM prepaid.job WHERE job_name = 'demand'), 'demand job registered');

SELECT * FROM finish();
ROLLBACK;
