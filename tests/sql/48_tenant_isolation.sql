-- Tenant isolation (F21), switching role and claims exactly as PostgREST
-- does: an operator of East Park (501) sees and changes only East's
-- meters, accounts, ledger, alarms and reports, through every view and
-- every write function; BI reads only; admin sees all.
BEGIN;
SELECT plan(46);
\ir fixtures/api_park.sql

SELECT entry_id AS west_entry FROM prepaid.ledger WHERE property_id = 502 LIMIT 1 \gset
SELECT alarm_id AS west_alarm FROM prepaid.alarm WHERE property_id = 502 LIMIT 1 \gset
SELECT alarm_id AS east_alarm FROM prepaid.alarm WHERE property_id = 501 AND kind = 'phase_loss' \gset
SELECT prepaid.tariff_put(format('{"name": "west-only", "time_zone": "%s", "property_id": 502, "prices": {"flat": 0.5},
	"schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}', :'tz')::jsonb) AS west_tid \gset
SELECT prepaid.payment_order_create(50201, 5.00) IS NOT NULL;

-- the write functions this suite covers; a new one must be added here
SELECT is(ARRAY(SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
				 WHERE n.nspname = 'api' AND p.prosecdef ORDER BY 1),
	ARRAY['alarm_ack', 'bind_collection_account', 'capacity_rule_set', 'ledger_mark_invoiced',
		  'meters_push_tou', 'meters_relay', 'meters_set_alarm_thresholds', 'meters_set_keep_power',
		  'meters_set_mode', 'meters_set_power_threshold', 'meters_set_tariff', 'payment_notify',
		  'payment_order_create', 'recharge', 'refund', 'reverse'],
	'the SECURITY DEFINER api functions, each tested below');

-- a query over every api view with a property_id: the rows of other properties than 501
SELECT string_agg(format('SELECT %L AS view, count(*) AS n FROM api.%I WHERE property_id <> 501', c.relname, c.relname),
				  ' UNION ALL ' ORDER BY c.relname) AS foreign_rows
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'api' AND c.relkind = 'v'
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'property_id') \gset
SELECT ok((SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = 'api' AND c.relkind = 'v') =
		  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = 'api' AND c.relkind = 'v'
			  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'property_id')),
	'every api view has a property_id column');
SELECT ok((SELECT sum(n) FROM (:foreign_rows) x) > 0, 'as superuser the views show other properties too');
CREATE TEMP TABLE admin_east AS
	SELECT meter_id, fee_status, balance FROM api.meter_monitor WHERE property_id = 501;
GRANT SELECT ON admin_east TO prepaid_operator;

-- the operator of East Park, as PostgREST sets it up
SET LOCAL ROLE prepaid_operator;
SELECT set_config('request.jwt.claims', '{"role": "prepaid_operator", "property_id": "501", "sub": "op-east"}', true);

SELECT is_empty(format('SELECT * FROM (%s) x WHERE n > 0', :'foreign_rows'),
	'no api view shows the operator a row of another property');
SELECT set_eq('SELECT meter_id, fee_status, balance FROM api.meter_monitor', 'SELECT * FROM admin_east',
	'the monitor shows exactly East''s meters');
SELECT results_eq('SELECT property_id, meters FROM api.overview', $$VALUES (501::bigint, 6::bigint)$$,
	'the overview: East only');
SELECT is((SELECT count(*) FROM api.ledger), 3::bigint, 'East''s three ledger entries');
SELECT is((SELECT count(*) FROM api.capacity_report), 2::bigint, 'East''s two customers in the capacity report');
SELECT is((SELECT count(*) FROM api.alarms WHERE property_id = 502), 0::bigint, 'no West alarms');
SELECT is((SELECT count(*) FROM api.collection_accounts), 3::bigint, 'East''s collection accounts');
SELECT is((SELECT count(*) FROM prepaid.ledger WHERE property_id = 502), 0::bigint,
	'row-level security holds on the tables too');
SELECT is((SELECT count(*) FROM prepaid.reading WHERE meter_id = 50201), 0::bigint, 'and on readings');
SELECT throws_ok($$SELECT signing_key FROM prepaid.collection_account$$, '42501', NULL,
	'the signing keys are out of reach');
SELECT throws_ok($$INSERT INTO prepaid.ledger (property_id, account_id, kind, amount) VALUES (501, 5001, 'recharge_platform', 1)$$,
	'42501', NULL, 'no direct writes to the ledger');
SELECT throws_ok($$UPDATE prepaid.meter SET keep_power = true WHERE meter_id = 50101$$, '42501', NULL,
	'no direct writes to meters');

-- every read function on West's objects
SELECT throws_ok(format('SELECT api.receipt(%s)', :west_entry), 'P0002', NULL, 'receipt of a West entry: does not exist');
SELECT throws_ok($$SELECT * FROM api.electrical_hourly(50201, now() - interval '1 day', now())$$, 'P0002', NULL,
	'hourly values of a West meter: does not exist');
-- every write function on West's objects
SELECT throws_ok(format('SELECT * FROM api.ledger_mark_invoiced(ARRAY[%s]::bigint[], %L)', :west_entry, 'X-1'),
	'P0002', NULL, 'ledger_mark_invoiced');
SELECT throws_ok($$SELECT * FROM api.recharge(50201, 10, 'x-1')$$, 'P0002', 'meter 50201 does not exist', 'recharge');
SELECT throws_ok($$SELECT * FROM api.refund(50201, 1, 'x-2')$$, 'P0002', 'meter 50201 does not exist', 'refund');
SELECT throws_ok(format($$SELECT * FROM api.reverse(%s, 'x')$$, :west_entry), 'P0002', NULL, 'reverse');
SELECT throws_ok($$SELECT * FROM api.capacity_rule_set(5003, 'max_demand', 1, '2026-01-01')$$, 'P0002',
	'customer 5003 does not exist', 'capacity_rule_set');
SELECT throws_ok($$SELECT * FROM api.payment_order_create(50201, 10)$$, 'P0002', 'meter 50201 does not exist',
	'payment_order_create');
SELECT throws_ok($$SELECT api.bind_collection_account(5003, 5021)$$, 'P0002', 'account 5003 does not exist',
	'bind_collection_account: West''s account');
SELECT throws_ok($$SELECT api.bind_collection_account(5001, 5021)$$, 'P0002', 'collection account 5021 does not exist',
	'bind_collection_account: to West''s collection account');
SELECT throws_ok(format('SELECT api.alarm_ack(%s)', :west_alarm), 'P0002', NULL, 'alarm_ack');
SELECT throws_ok(format($$SELECT * FROM api.meters_set_tariff('{"meter_id": 50101}', %s)$$, :west_tid), 'P0002',
	NULL, 'meters_set_tariff: West''s own tariff does not exist for East');
SELECT results_eq(
	$$SELECT meters FROM api.meters_push_tou('{"meter_id": 50201}')
	  UNION ALL SELECT meters FROM api.meters_set_alarm_thresholds('{"meter_id": 50201}', 0.8)
	  UNION ALL SELECT meters FROM api.meters_set_power_threshold('{"meter_id": 50201}', 5)
	  UNION ALL SELECT meters FROM api.meters_set_mode('{"meter_id": 50201}', 'postpaid')
	  UNION ALL SELECT meters FROM api.meters_set_keep_power('{"property_id": 502}', true)
	  UNION ALL SELECT meters FROM api.meters_relay('{"area_id": 5201}', 'close')
	  UNION ALL SELECT meters FROM api.meters_set_tariff('{"meter_id": 50201}', (SELECT tariff_id FROM prepaid.tariff WHERE name = 'api-test-tou'))$$,
	$$VALUES (0::bigint), (0), (0), (0), (0), (0), (0)$$,
	'every bulk operation matches no West meter, whatever the filter');
SELECT throws_ok($$SELECT * FROM api.payment_notify('{}')$$, '42501', NULL,
	'payment notifications are not for operators');

-- the operator's own meters work
SELECT results_eq($$SELECT meters FROM api.meters_relay('{"property_id": [501, 502], "mode": "prepaid"}', 'close')$$,
	$$VALUES (3::bigint)$$, 'a filter over both properties matches East''s 3 prepaid meters only');
SELECT results_eq($$SELECT balance FROM api.recharge(50101, 5, 'op-1')$$, $$VALUES (20.00::numeric)$$,
	'recharge of an own meter');
SELECT ok(api.alarm_ack(:east_alarm), 'acknowledge an own alarm');
RESET ROLE;

-- nothing of West changed
SELECT results_eq(
	$$SELECT balance, m.mode, m.keep_power, m.power_threshold_kw, m.undervoltage_ratio, m.relay_desired
		FROM prepaid.meter m JOIN prepaid.account a USING (property_id, account_id) WHERE meter_id = 50201$$,
	$$VALUES (-5.00::numeric, 'prepaid'::text, false, NULL::numeric, NULL::numeric, 'open'::text)$$,
	'West''s meter and account are untouched');
SELECT is((SELECT count(*) FROM prepaid.command WHERE meter_id = 50201 AND kind <> 'relay_open'), 0::bigint,
	'no command was queued for West');
SELECT is((SELECT count(*) FROM prepaid.capacity_rule WHERE customer_id = 5003), 1::bigint, 'no rule was added for West');
SELECT is((SELECT acked_by FROM prepaid.alarm WHERE alarm_id = :east_alarm), 'op-east', 'the ack is signed by the JWT subject');

-- claims: none, West, both, garbage
SET LOCAL ROLE prepaid_operator;
SELECT set_config('request.jwt.claims', '{"role": "prepaid_operator"}', true);
SELECT is((SELECT count(*) FROM api.meter_monitor), 0::bigint, 'without a property claim: nothing');
SELECT results_eq($$SELECT meters FROM api.meters_relay('{"mode": "prepaid"}', 'open')$$, $$VALUES (0::bigint)$$,
	'and no meter to act on');
SELECT set_config('request.jwt.claims', '{"role": "prepaid_operator", "property_id": 502}', true);
SELECT results_eq($$SELECT DISTINCT property_id FROM api.meter_monitor$$, $$VALUES (502::bigint)$$,
	'a West token sees West');
SELECT set_config('request.jwt.claims', '{"role": "prepaid_operator", "property_id": [501, 502]}', true);
SELECT is((SELECT count(*) FROM api.meter_monitor), 7::bigint, 'a token for both properties sees both');
SELECT set_config('request.jwt.claims', '{"role": "prepaid_operator", "property_id": "east"}', true);
SELECT throws_ok($$SELECT count(*) FROM api.meter_monitor$$, '28000', 'invalid property_id claim',
	'a malformed claim is an error, not a wildcard');
RESET ROLE;

-- BI: reads its property, writes nothing
SET LOCAL ROLE prepaid_bi;
SELECT set_config('request.jwt.claims', '{"role": "prepaid_bi", "property_id": "502"}', true);
SELECT results_eq($$SELECT customer_id, amount FROM api.capacity_report$$, $$VALUES (5003::bigint, 15750.00::numeric)$$,
	'BI reads West''s reports');
SELECT throws_ok($$SELECT * FROM api.meters_relay('{"meter_id": 50201}', 'close')$$, '42501', NULL,
	'BI cannot operate meters');
SELECT throws_ok($$SELECT * FROM api.recharge(50201, 10, 'bi-1')$$, '42501', NULL, 'BI cannot move money');
RESET ROLE;

-- admin: everything
SET LOCAL ROLE prepaid_admin;
SELECT set_config('request.jwt.claims', '{"role": "prepaid_admin", "sub": "root"}', true);
SELECT is((SELECT count(*) FROM api.meter_monitor), 7::bigint, 'admin sees every meter');
SELECT results_eq($$SELECT meters FROM api.meters_set_power_threshold('{"property_id": [501, 502]}', 50)$$,
	$$VALUES (7::bigint)$$, 'and acts on every property');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
