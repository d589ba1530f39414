-- Alarm rules (F14), evaluated set-based by prepaid.alarms_run() (the
-- "alarms" job). Each rule is a condition per meter (or gateway); an alarm
-- is raised once while its condition holds and cleared when it ends; every
-- raise and clear NOTIFYs prepaid_alarm with a JSON payload.
--
-- prepaid.meter_latest (20_reading.sql) keeps each meter's newest reading,
-- maintained by the statement triggers on prepaid.reading, so the rules
-- never scan history.

-- Site defaults of the thresholds (per-meter columns override them).
CREATE FUNCTION prepaid._setting_numeric(p_name text, p_default numeric)
RETURNS numeric LANGUAGE sql STABLE AS $$
	SELECT coalesce(nullif(current_setting(p_name, true), '')::numeric, p_default)
$$;

-- Every alarm condition that holds now, one row per (meter or gateway, kind).
-- One pass over the meters (with their account and latest reading) computes
-- the kinds that hold for each meter; only meters with at least one are
-- expanded into rows with a detail, so the cost is one join of three tables
-- of N rows plus a few comparisons per meter.
CREATE FUNCTION prepaid.alarm_conditions(p_now timestamptz DEFAULT now())
RETURNS TABLE (property_id bigint, meter_id bigint, gateway_id bigint, kind text,
			   severity text, detail jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
	WITH s AS MATERIALIZED (
		SELECT prepaid._setting_numeric('pg_prepaid.undervoltage_ratio', 0.85) AS uv,
			   prepaid._setting_numeric('pg_prepaid.overvoltage_ratio', 1.10) AS ov,
			   prepaid._setting_numeric('pg_prepaid.phase_loss_ratio', 0.50) AS pl,
			   prepaid._setting_numeric('pg_prepaid.offline_factor', 2.5)::float8 AS off_f,
			   make_interval(secs => prepaid._setting_numeric('pg_prepaid.gateway_timeout', 900)::float8) AS gw_to),
	v AS (
		SELECT m.property_id, m.meter_id, m.phase, m.voltage_nominal AS un,
			   coalesce(m.undervoltage_ratio, s.uv) AS uv, coalesce(m.overvoltage_ratio, s.ov) AS ov,
			   s.pl, m.power_threshold_kw, m.relay_desired, m.mode, a.balance, a.warning_level,
			   l.read_at, l.relay_open, l.power_kw, l.voltage_a, l.voltage_b, l.voltage_c,
			   coalesce(l.read_at, m.opened_at, m.created_at) < p_now - m.read_interval * s.off_f AS offline,
			   CASE WHEN m.phase = 3 THEN least(l.voltage_a, l.voltage_b, l.voltage_c)
					ELSE l.voltage_a END AS vmin,
			   CASE WHEN m.phase = 3 THEN greatest(l.voltage_a, l.voltage_b, l.voltage_c)
					ELSE l.voltage_a END AS vmax
		  FROM prepaid.meter m
		 CROSS JOIN s
		  JOIN prepaid.account a ON a.property_id = m.property_id AND a.account_id = m.account_id
		  LEFT JOIN prepaid.meter_latest l ON l.property_id = m.property_id AND l.meter_id = m.meter_id),
	k AS (
		SELECT v.*, array_remove(ARRAY[
				CASE WHEN v.phase = 3 AND v.vmin < v.pl * v.un THEN 'phase_loss' END,
				CASE WHEN v.vmin >= v.pl * v.un AND v.vmin < v.uv * v.un THEN 'undervoltage' END,
				CASE WHEN v.vmax > v.ov * v.un THEN 'overvoltage' END,
				CASE WHEN v.offline THEN 'meter_offline' END,
				CASE WHEN v.mode = 'prepaid' AND v.balance < 0 THEN 'arrears' END,
				CASE WHEN v.mode = 'prepaid' AND v.balance < v.warning_level THEN 'low_balance' END,
				CASE WHEN v.relay_desired = 'closed' AND v.relay_open THEN 'relay_open_unexpected' END,
				CASE WHEN v.power_kw > v.power_threshold_kw THEN 'overload' END], NULL) AS kinds
		  FROM v)
	SELECT k.property_id, k.meter_id, NULL::bigint, x.kind,
		   CASE WHEN x.kind IN ('phase_loss', 'relay_open_unexpected') THEN 'critical' ELSE 'warning' END,
		   CASE x.kind
			   WHEN 'phase_loss' THEN jsonb_build_object('voltage_a', k.voltage_a, 'voltage_b', k.voltage_b,
														 'voltage_c', k.voltage_c)
			   WHEN 'undervoltage' THEN jsonb_build_object('voltage', k.vmin, 'threshold', round(k.uv * k.un, 1))
			   WHEN 'overvoltage' THEN jsonb_build_object('voltage', k.vmax, 'threshold', round(k.ov * k.un, 1))
			   WHEN 'meter_offline' THEN jsonb_build_object('last_reading', k.read_at)
			   WHEN 'arrears' THEN jsonb_build_object('balance', k.balance)
			   WHEN 'low_balance' THEN jsonb_build_object('balance', k.balance, 'warning_level', k.warning_level)
			   WHEN 'relay_open_unexpected' THEN jsonb_build_object('relay_desired', k.relay_desired)
			   WHEN 'overload' THEN jsonb_build_object('power_kw', k.power_kw, 'threshold_kw', k.power_threshold_kw)
		   END
	  FROM k CROSS JOIN LATERAL unnest(k.kinds) AS x(kind)
	 WHERE cardinality(k.kinds) > 0
	UNION ALL
	SELECT g.property_id, NULL, g.gateway_id, 'gateway_offline', 'critical',
		   jsonb_build_object('last_seen', g.last_seen)
	  FROM prepaid.gateway g CROSS JOIN s
	 WHERE g.last_seen IS NOT NULL AND g.last_seen < p_now - s.gw_to
$$;

-- Raises the alarms whose condition holds and clears those whose condition
-- ended, for the kinds alarm_conditions() manages. Returns what changed.
CREATE FUNCTION prepaid.alarms_run(p_now timestamptz DEFAULT now())
RETURNS TABLE (kind text, raised bigint, cleared bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH cond AS MATERIALIZED (SELECT * FROM prepaid.alarm_conditions(p_now)),
	raised AS (
		INSERT INTO prepaid.alarm AS al (property_id, meter_id, gateway_id, kind, severity, detail)
		SELECT c.property_id, c.meter_id, c.gateway_id, c.kind, c.severity, c.detail FROM cond c
		 WHERE NOT EXISTS (SELECT 1 FROM prepaid.alarm a
							WHERE a.cleared_at IS NULL AND a.property_id = c.property_id
							  AND coalesce(a.meter_id, -1) = coalesce(c.meter_id, -1)
							  AND coalesce(a.gateway_id, -1) = coalesce(c.gateway_id, -1)
							  AND a.kind = c.kind)
		ON CONFLICT (property_id, coalesce(meter_id, -1), coalesce(gateway_id, -1), kind)
			WHERE cleared_at IS NULL DO NOTHING
		RETURNING al.alarm_id, al.property_id, al.meter_id, al.gateway_id, al.kind, al.detail),
	cleared AS (
		UPDATE prepaid.alarm al SET cleared_at = p_now
		 WHERE al.cleared_at IS NULL
		   AND al.kind IN ('phase_loss', 'undervoltage', 'overvoltage', 'meter_offline',
						   'arrears', 'low_balance', 'relay_open_unexpected', 'overload',
						   'gateway_offline')
		   AND NOT EXISTS (SELECT 1 FROM cond c
							WHERE c.property_id = al.property_id AND c.kind = al.kind
							  AND coalesce(c.meter_id, -1) = coalesce(al.meter_id, -1)
							  AND coalesce(c.gateway_id, -1) = coalesce(al.gateway_id, -1))
		RETURNING al.alarm_id, al.property_id, al.meter_id, al.gateway_id, al.kind),
	notified AS (
		SELECT r.kind, 'raise' AS ev,
			   pg_notify('prepaid_alarm', json_build_object('event', 'raise', 'alarm_id', r.alarm_id,
					'property_id', r.property_id, 'meter_id', r.meter_id, 'gateway_id', r.gateway_id,
					'kind', r.kind, 'detail', r.detail)::text) AS n
		  FROM raised r
		UNION ALL
		SELECT c.kind, 'clear',
			   pg_notify('prepaid_alarm', json_build_object('event', 'clear', 'alarm_id', c.alarm_id,
					'property_id', c.property_id, 'meter_id', c.meter_id, 'gateway_id', c.gateway_id,
					'kind', c.kind)::text)
		  FROM cleared c)
	SELECT nt.kind, count(*) FILTER (WHERE nt.ev = 'raise'), count(*) FILTER (WHERE nt.ev = 'clear')
	  FROM notified nt GROUP BY nt.kind ORDER BY nt.kind;
END
$$;

INSERT INTO prepaid.job (job_name, command, schedule_interval) VALUES
	('alarms', 'SELECT * FROM prepaid.alarms_run()', interval '60 seconds');
