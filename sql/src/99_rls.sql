-- Row-level security and grants (F21). Runs last, over every table that
-- exists by now.
--
-- Every table of schema prepaid with a property_id column (except the
-- shared tariff tables, which are reference data) gets row-level security
-- with two policies:
--   admin_all  prepaid_admin sees and changes every row
--   tenant     prepaid_operator and prepaid_bi see the rows of the
--              properties in their JWT claim property_id
-- plus, on the tables the ingest daemon writes, a policy for
-- prepaid_ingest. Table owners (the extension's superuser: settlement, the
-- triggers, the scheduler's jobs, every SECURITY DEFINER function) are not
-- subject to row-level security (no FORCE), so the core runs as before.
-- The api views are security_invoker, so these policies filter every view
-- for the caller; the SECURITY DEFINER api functions check the claim
-- themselves (prepaid._may_act) before touching a row.

DO $$
DECLARE
	t regclass;
BEGIN
	FOR t IN
		SELECT c.oid::regclass
		  FROM pg_catalog.pg_class c
		  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'prepaid' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		   AND c.relname <> 'tariff'
		   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
						WHERE a.attrelid = c.oid AND a.attname = 'property_id' AND NOT a.attisdropped)
		 ORDER BY c.relname
	LOOP
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('CREATE POLICY admin_all ON %s TO prepaid_admin USING (true) WITH CHECK (true)', t);
		EXECUTE format('CREATE POLICY tenant ON %s TO prepaid_operator, prepaid_bi '
					   'USING (property_id = ANY ((SELECT prepaid._jwt_property_ids())::bigint[]))', t);
	END LOOP;
END
$$;

-- The ingest daemon: all meters (it serves every property).
CREATE POLICY ingest ON prepaid.reading TO prepaid_ingest WITH CHECK (true);
CREATE POLICY ingest ON prepaid.quarantine TO prepaid_ingest WITH CHECK (true);
CREATE POLICY ingest ON prepaid.command TO prepaid_ingest USING (true) WITH CHECK (true);
CREATE POLICY ingest ON prepaid.meter TO prepaid_ingest USING (true) WITH CHECK (true);
CREATE POLICY ingest ON prepaid.gateway TO prepaid_ingest USING (true) WITH CHECK (true);

GRANT USAGE ON SCHEMA prepaid TO prepaid_admin, prepaid_operator, prepaid_bi, prepaid_ingest;
GRANT USAGE ON SCHEMA api TO prepaid_admin, prepaid_operator, prepaid_bi, prepaid_payment;

-- Admin reads every table (not the reading partitions: through the parent only).
DO $$
DECLARE
	t regclass;
BEGIN
	FOR t IN
		SELECT c.oid::regclass
		  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'prepaid' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
	LOOP
		EXECUTE format('GRANT SELECT ON %s TO prepaid_admin', t);
	END LOOP;
END
$$;

-- Operators and BI read what the api views read (row-level security keeps
-- them to their property), never the signing keys.
GRANT SELECT ON prepaid.property, prepaid.property_holiday, prepaid.area, prepaid.gateway,
	prepaid.customer, prepaid.account, prepaid.meter, prepaid.meter_latest, prepaid.reading,
	prepaid.ledger, prepaid.ledger_collection, prepaid.revenue_daily, prepaid.command,
	prepaid.alarm, prepaid.freeze, prepaid.month_usage, prepaid.demand, prepaid.demand_max,
	prepaid.property_energy_hourly, prepaid.meter_energy_daily, prepaid.meter_energy_monthly,
	prepaid.electrical_daily, prepaid.rollup_cursor, prepaid.rollup_state, prepaid.rollup_status,
	prepaid.meter_state_count,
	prepaid.capacity_rule, prepaid.payment_order, prepaid.payment_notification,
	prepaid.tariff, prepaid.tariff_version, prepaid.tariff_season, prepaid.tariff_day_type,
	prepaid.tariff_holiday, prepaid.tariff_slot, prepaid.tariff_price
	TO prepaid_operator, prepaid_bi;
GRANT SELECT (property_id, collection_account_id, channel, merchant_id, name)
	ON prepaid.collection_account TO prepaid_operator, prepaid_bi;
REVOKE SELECT ON prepaid.collection_account FROM prepaid_admin;
GRANT SELECT (property_id, collection_account_id, channel, merchant_id, name)
	ON prepaid.collection_account TO prepaid_admin;

-- The ingest daemon: exactly what it does, nothing else (no ledger, no money).
GRANT INSERT ON prepaid.reading TO prepaid_ingest;
GRANT INSERT ON prepaid.quarantine TO prepaid_ingest;
GRANT USAGE ON SEQUENCE prepaid.quarantine_quarantine_id_seq TO prepaid_ingest;
GRANT SELECT, UPDATE (status, sent_at, finished_at, attempts, claimed_by, error, reply)
	ON prepaid.command TO prepaid_ingest;
GRANT SELECT (property_id, meter_id, address, phase, pt_ratio, ct_ratio, gateway_id, relay_desired,
			  relay_actual, restore_command, rate_registers, register_modulus_wh, read_interval,
			  model, protocol, last_seen),
	  UPDATE (relay_actual, last_seen)
	ON prepaid.meter TO prepaid_ingest;
GRANT SELECT (property_id, gateway_id, serial, model, online, last_seen),
	  UPDATE (online, last_seen)
	ON prepaid.gateway TO prepaid_ingest;
-- and the daemon's own bookkeeping tables, when the ingest fragment made them
DO $$
DECLARE
	t regclass;
BEGIN
	FOREACH t IN ARRAY ARRAY[to_regclass('prepaid.ingest_batch'), to_regclass('prepaid.meter_connection')]
	LOOP
		CONTINUE WHEN t IS NULL;
		EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO prepaid_ingest', t);
		IF (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = t) THEN
			EXECUTE format('CREATE POLICY ingest ON %s TO prepaid_ingest USING (true) WITH CHECK (true)', t);
		END IF;
	END LOOP;
END
$$;

-- api: views for the readers; functions only for whom they are meant.
GRANT SELECT ON ALL TABLES IN SCHEMA api TO prepaid_admin, prepaid_operator, prepaid_bi;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA api FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.electrical_hourly(bigint, timestamptz, timestamptz),
	api.receipt(bigint)
	TO prepaid_admin, prepaid_operator, prepaid_bi;
GRANT EXECUTE ON FUNCTION api.ledger_mark_invoiced(bigint[], text),
	api.recharge(bigint, numeric, text, text), api.refund(bigint, numeric, text, text),
	api.reverse(bigint, text),
	api.capacity_rule_set(bigint, text, numeric, date, numeric, numeric, text),
	api.payment_order_create(bigint, numeric), api.bind_collection_account(bigint, bigint),
	api.meters_set_tariff(jsonb, bigint), api.meters_push_tou(jsonb),
	api.meters_set_alarm_thresholds(jsonb, numeric, numeric),
	api.meters_set_power_threshold(jsonb, numeric), api.meters_set_mode(jsonb, text),
	api.meters_set_keep_power(jsonb, boolean), api.meters_relay(jsonb, text),
	api.alarm_ack(bigint)
	TO prepaid_admin, prepaid_operator;
GRANT EXECUTE ON FUNCTION api.payment_notify(jsonb) TO prepaid_admin, prepaid_payment;

-- The ingest daemon's SECURITY DEFINER entry points (62_ingest.sql) are for
-- the ingest role (and admins) only: no one else writes readings or claims
-- commands through them. The daemon also needs TEMPORARY on the database
-- (its COPY staging table), which a DBA grants: GRANT TEMPORARY ON DATABASE
-- ... TO prepaid_ingest.
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
			  WHERE p.pronamespace = 'prepaid'::regnamespace AND p.proname LIKE 'ingest\_%' LOOP
		EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO prepaid_ingest, prepaid_admin', f);
	END LOOP;
END
$$;
