-- Roles, grants and row-level security: what each role may touch, and that
-- the ingest daemon's role can do its job and nothing more.
BEGIN;
SELECT plan(29);

SELECT is(ARRAY(SELECT rolname::text || ':' || rolcanlogin FROM pg_roles
				  WHERE rolname IN ('prepaid_admin', 'prepaid_anon', 'prepaid_bi', 'prepaid_ingest',
									'prepaid_operator', 'prepaid_payment') ORDER BY 1),
	ARRAY['prepaid_admin:false', 'prepaid_anon:false', 'prepaid_bi:false', 'prepaid_ingest:false',
		  'prepaid_operator:false', 'prepaid_payment:false'],
	'the six roles exist and cannot log in');

-- every tenant table (a property_id column) has row-level security, the tariff tables excepted
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	   WHERE n.nspname = 'prepaid' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		 AND c.relname <> 'tariff' AND NOT c.relrowsecurity
		 AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'property_id')$$,
	'row-level security on every table with a property_id');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	   WHERE n.nspname = 'prepaid' AND c.relforcerowsecurity$$,
	'no FORCE: the owner (settlement, triggers, jobs) is not filtered');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	   WHERE n.nspname = 'api' AND c.relkind = 'v'
		 AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)$$,
	'every api view runs with the caller''s rights (security_invoker)');
SELECT is_empty(
	$$SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	   WHERE n.nspname = 'api' AND p.prosecdef
		 AND NOT coalesce('search_path=pg_catalog, prepaid, pg_temp' = ANY (p.proconfig), false)$$,
	'every SECURITY DEFINER api function pins search_path');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	   WHERE n.nspname = 'prepaid' AND c.relispartition
		 AND (has_table_privilege('prepaid_operator', c.oid, 'SELECT')
			  OR has_table_privilege('prepaid_bi', c.oid, 'SELECT')
			  OR has_table_privilege('prepaid_admin', c.oid, 'SELECT'))$$,
	'no role reads a reading partition directly (only through the parent, under row-level security)');
SELECT ok(NOT has_column_privilege('prepaid_operator', 'prepaid.collection_account', 'signing_key', 'SELECT')
		  AND NOT has_column_privilege('prepaid_bi', 'prepaid.collection_account', 'signing_key', 'SELECT')
		  AND NOT has_column_privilege('prepaid_admin', 'prepaid.collection_account', 'signing_key', 'SELECT'),
	'nobody reads the signing keys');
SELECT ok(NOT has_function_privilege('prepaid_bi', 'api.meters_relay(jsonb, text)', 'EXECUTE')
		  AND NOT has_function_privilege('prepaid_bi', 'api.recharge(bigint, numeric, text, text)', 'EXECUTE')
		  AND has_function_privilege('prepaid_bi', 'api.receipt(bigint)', 'EXECUTE'),
	'BI reads, and cannot write');
SELECT ok(has_function_privilege('prepaid_payment', 'api.payment_notify(jsonb)', 'EXECUTE')
		  AND NOT has_function_privilege('prepaid_payment', 'api.recharge(bigint, numeric, text, text)', 'EXECUTE')
		  AND NOT has_schema_privilege('prepaid_payment', 'prepaid', 'USAGE'),
	'the payment role only receives notifications');

\ir fixtures/api_park.sql

-- the anonymous role: nothing
SET LOCAL ROLE prepaid_anon;
SELECT throws_ok($$SELECT * FROM api.overview$$, '42501', NULL, 'anon cannot read the api views');
SELECT throws_ok($$SELECT * FROM api.payment_notify('{}')$$, '42501', NULL, 'anon cannot call the api');
SELECT throws_ok($$SELECT * FROM prepaid.meter$$, '42501', NULL, 'anon cannot read schema prepaid');
RESET ROLE;

-- the ingest daemon
SET LOCAL ROLE prepaid_ingest;
SELECT throws_ok($$SELECT * FROM prepaid.ledger$$, '42501', 'permission denied for table ledger',
	'ingest cannot read the ledger');
SELECT throws_ok($$SELECT balance FROM prepaid.account$$, '42501', NULL, 'ingest cannot read balances');
SELECT throws_ok($$SELECT * FROM api.meter_monitor$$, '42501', NULL, 'ingest has no api access');
SELECT lives_ok($$INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
				  VALUES (501, 50104, now(), 20000) ON CONFLICT DO NOTHING$$,
	'ingest inserts readings (the reading triggers run as their owner)');
SELECT throws_ok($$SELECT * FROM prepaid.reading$$, '42501', NULL, 'but cannot read them back');
SELECT lives_ok($$INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
				  VALUES (501, 99999, now(), 1)$$,
	'a reading for an unknown meter is accepted and quarantined by the trigger');
SELECT lives_ok($$UPDATE prepaid.meter SET relay_actual = 'closed', last_seen = now() WHERE meter_id = 50104$$,
	'ingest updates relay_actual and last_seen');
SELECT throws_ok($$UPDATE prepaid.meter SET mode = 'postpaid' WHERE meter_id = 50104$$, '42501', NULL,
	'ingest cannot change anything else of a meter');
SELECT throws_ok($$SELECT owner_name FROM prepaid.meter$$, '42501', NULL,
	'ingest does not read the owner of a meter');
SELECT lives_ok($$UPDATE prepaid.command SET status = 'sent', sent_at = now(), attempts = attempts + 1,
					claimed_by = 'ingest-1'
				  WHERE command_id IN (SELECT command_id FROM prepaid.command WHERE status = 'pending'
										FOR UPDATE SKIP LOCKED)$$,
	'ingest claims pending commands');
SELECT throws_ok($$UPDATE prepaid.command SET kind = 'relay_close'$$, '42501', NULL,
	'ingest cannot rewrite a command');
SELECT lives_ok($$INSERT INTO prepaid.quarantine (source, reason, address) VALUES ('frame', 'unknown_meter', '999999999999')$$,
	'ingest quarantines frames');
SELECT lives_ok($$UPDATE prepaid.gateway SET online = true, last_seen = now() WHERE serial = 'GW-E2'$$,
	'ingest updates gateway link state');
SELECT lives_ok($$SELECT * FROM prepaid.ingest_meter_map()$$, 'ingest may call the daemon''s entry points');
SET LOCAL ROLE prepaid_operator;
SELECT throws_ok($$SELECT * FROM prepaid.ingest_batch_write('x', 1, 0)$$, '42501', NULL,
	'an operator cannot write readings through the daemon''s entry points');
RESET ROLE;
SELECT results_eq(
	$$SELECT count(*) FILTER (WHERE source = 'reading' AND reason = 'unknown_meter'),
			 count(*) FILTER (WHERE source = 'frame') FROM prepaid.quarantine$$,
	$$VALUES (1::bigint, 1::bigint)$$, 'the unknown meter''s reading and the frame are in the quarantine');
SELECT is((SELECT energy_wh FROM prepaid.meter_latest WHERE meter_id = 50104), 20000::bigint,
	'the ingest role''s reading reached meter_latest');

SELECT * FROM finish();
ROLLBACK;
