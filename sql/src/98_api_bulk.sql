-- Single and bulk meter operations (F17, F2) over a filter: set tariff,
-- alarm thresholds, power threshold, mode, keep-power, relay open/close,
-- push TOU periods. A filter is a JSON object whose keys are columns of
-- api.meter_monitor and whose values are a value (equality), an array (any
-- of them) or null (IS NULL): {"area_id": 3, "fee_status": ["low_balance",
-- "in_credit"]}; {"meter_id": 42} is a single meter. Only the caller's
-- meters ever match. Each function changes the meters, queues one command
-- per meter through prepaid.command_queue (a pending command of the same
-- kind is reused and given the newest payload) and returns counts: meters
-- matched, meters changed, commands it queued. Relay commands that the
-- supply decision queues as a consequence (mode, keep-power) are not
-- counted; api.commands shows them.

-- The caller's meters matching a filter.
CREATE FUNCTION prepaid._filter_meters(p_filter jsonb)
RETURNS TABLE (property_id bigint, meter_id bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_where text := '';
	f       record;
	v_type  text;
BEGIN
	IF p_filter IS NULL OR jsonb_typeof(p_filter) <> 'object' OR p_filter = '{}' THEN
		RAISE EXCEPTION 'a filter is required'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Got %s.', coalesce(p_filter::text, 'NULL')),
				  HINT = 'For example {"area_id": 3} or {"meter_id": [1, 2]}; '
						 '{"property_id": 1} for every meter of a property.';
	END IF;
	FOR f IN SELECT * FROM jsonb_each(p_filter) ORDER BY 1 LOOP
		SELECT format_type(a.atttypid, NULL) INTO v_type
		  FROM pg_catalog.pg_attribute a
		 WHERE a.attrelid = 'api.meter_monitor'::regclass AND a.attname = f.key
		   AND a.attnum > 0 AND NOT a.attisdropped;
		IF v_type IS NULL THEN
			RAISE EXCEPTION 'unknown filter field "%"', f.key
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Filter fields are the columns of api.meter_monitor.';
		END IF;
		v_where := v_where || CASE
			WHEN jsonb_typeof(f.value) = 'null' THEN format(' AND v.%I IS NULL', f.key)
			ELSE format(' AND v.%I = ANY (ARRAY(SELECT jsonb_array_elements_text('
						'CASE jsonb_typeof($1->%L) WHEN ''array'' THEN $1->%L '
						'ELSE jsonb_build_array($1->%L) END))::%s[])',
						f.key, f.key, f.key, f.key, v_type) END;
	END LOOP;
	RETURN QUERY EXECUTE
		'SELECT v.property_id, v.meter_id FROM api.meter_monitor v '
		'WHERE ($2 OR v.property_id = ANY ($3))' || v_where
		USING p_filter, prepaid._is_admin(), prepaid._jwt_property_ids();
END
$$;

-- Queues one command per meter (payload per meter) and gives a reused
-- pending command the new payload. Returns the number of commands.
CREATE FUNCTION prepaid._queue_each(p_meter_ids bigint[], p_kind text, p_payloads jsonb[],
									p_reason text)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_ids bigint[];
BEGIN
	SELECT array_agg(prepaid.command_queue(u.m, p_kind, u.p, p_reason) ORDER BY u.m) INTO v_ids
	  FROM unnest(p_meter_ids, p_payloads) u(m, p);
	UPDATE prepaid.command c SET payload = u.p
	  FROM unnest(v_ids, p_payloads) u(id, p)
	 WHERE c.command_id = u.id AND c.status = 'pending' AND c.payload IS DISTINCT FROM u.p;
	RETURN coalesce(cardinality(v_ids), 0);
END
$$;

-- What a meter is told for its tariff: prices in force now (write_price),
-- or the TOU periods of the version in force now (write_tou).
CREATE FUNCTION prepaid._tariff_payload(p_tariff_id bigint, p_kind text) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT CASE p_kind
		WHEN 'write_price' THEN jsonb_build_object('tariff_id', p_tariff_id, 'prices',
			(SELECT jsonb_object_agg(p.period, prepaid.tou_price(p_tariff_id, now(), p.period))
			   FROM unnest(ARRAY['sharp', 'peak', 'flat', 'valley', 'deep']) p(period)
			  WHERE prepaid.tou_price(p_tariff_id, now(), p.period) IS NOT NULL))
		WHEN 'write_tou' THEN (
			SELECT jsonb_build_object('tariff_id', p_tariff_id, 'version_no', tv.version_no,
				'time_zone', t.time_zone, 'registers', to_jsonb(tv.registers),
				'seasons', (SELECT jsonb_agg(jsonb_build_object(
						'name', s.name, 'from', s.from_md, 'to', s.to_md,
						'day_types', (SELECT jsonb_object_agg(d.day_type, (
							SELECT jsonb_agg(jsonb_build_object('start_min', sl.start_min,
									'end_min', sl.end_min, 'period', sl.period) ORDER BY sl.start_min)
							  FROM prepaid.tariff_slot sl
							 WHERE sl.tariff_id = s.tariff_id AND sl.version_no = s.version_no
							   AND sl.season_no = s.season_no AND sl.day_type = d.day_type))
							FROM prepaid.tariff_day_type d
						   WHERE d.tariff_id = s.tariff_id AND d.version_no = s.version_no))
						ORDER BY s.season_no)
					FROM prepaid.tariff_season s
				   WHERE s.tariff_id = tv.tariff_id AND s.version_no = tv.version_no))
			  FROM prepaid.tariff t
			  JOIN prepaid.tariff_version tv ON tv.tariff_id = t.tariff_id
			 WHERE t.tariff_id = p_tariff_id AND now() >= tv.valid_from AND now() < tv.valid_to)
		END
$$;

-- Queues one command of a kind for every meter of a set, the payload from
-- the meter's current settings.
CREATE FUNCTION prepaid._queue_for(p_meter_ids bigint[], p_kind text, p_reason text)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_ids      bigint[];
	v_payloads jsonb[];
BEGIN
	SELECT array_agg(m.meter_id ORDER BY m.meter_id),
		   array_agg(CASE
				WHEN p_kind IN ('write_price', 'write_tou') THEN prepaid._tariff_payload(m.tariff_id, p_kind)
				WHEN p_kind = 'write_threshold' THEN jsonb_build_object(
					'undervoltage_v', round(m.voltage_nominal * m.undervoltage_ratio, 1),
					'overvoltage_v', round(m.voltage_nominal * m.overvoltage_ratio, 1),
					'power_threshold_kw', m.power_threshold_kw)
				END ORDER BY m.meter_id)
	  INTO v_ids, v_payloads
	  FROM prepaid.meter m WHERE m.meter_id = ANY (p_meter_ids);
	IF v_ids IS NULL THEN
		RETURN 0;
	END IF;
	RETURN prepaid._queue_each(v_ids, p_kind, v_payloads, p_reason);
END
$$;

-- Locks the meters a bulk change is about to update, in key order (the lock
-- order of architecture.md): two bulk changes, or one and a settlement's
-- supply decisions, over overlapping meters queue instead of deadlocking.
CREATE FUNCTION prepaid._lock_meters(p_meter_ids bigint[]) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT count(*) FROM (
		SELECT 1 FROM prepaid.meter m WHERE m.meter_id = ANY (p_meter_ids)
		 ORDER BY m.property_id, m.meter_id FOR NO KEY UPDATE) l
$$;

CREATE FUNCTION api.meters_set_tariff(filter jsonb, tariff_id bigint)
RETURNS TABLE (meters bigint, changed bigint, commands bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_ids     bigint[] := ARRAY(SELECT f.meter_id FROM prepaid._filter_meters(filter) f);
	v_owner   bigint;
	v_changed bigint;
	v_bad     bigint;
BEGIN
	SELECT t.property_id INTO v_owner FROM prepaid.tariff t WHERE t.tariff_id = meters_set_tariff.tariff_id;
	IF NOT FOUND OR (v_owner IS NOT NULL AND NOT prepaid._may_act(v_owner)) THEN
		RAISE EXCEPTION 'tariff % does not exist', meters_set_tariff.tariff_id
			USING ERRCODE = 'no_data_found';
	END IF;
	SELECT min(m.meter_id) INTO v_bad FROM prepaid.meter m
	 WHERE m.meter_id = ANY (v_ids) AND m.property_id <> v_owner;
	IF v_bad IS NOT NULL THEN
		RAISE EXCEPTION 'tariff % belongs to another property than meter %', meters_set_tariff.tariff_id, v_bad
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a shared tariff or one of the meter''s own property.';
	END IF;
	PERFORM prepaid._lock_meters(v_ids);
	UPDATE prepaid.meter m SET tariff_id = meters_set_tariff.tariff_id
	 WHERE m.meter_id = ANY (v_ids) AND m.tariff_id <> meters_set_tariff.tariff_id;
	GET DIAGNOSTICS v_changed = ROW_COUNT;
	RETURN QUERY SELECT cardinality(v_ids)::bigint, v_changed,
						prepaid._queue_for(v_ids, 'write_price', 'tariff set')
						+ prepaid._queue_for(v_ids, 'write_tou', 'tariff set');
END
$$;

CREATE FUNCTION api.meters_push_tou(filter jsonb)
RETURNS TABLE (meters bigint, changed bigint, commands bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_ids bigint[] := ARRAY(SELECT f.meter_id FROM prepaid._filter_meters(filter) f);
BEGIN
	RETURN QUERY SELECT cardinality(v_ids)::bigint, 0::bigint,
						prepaid._queue_for(v_ids, 'write_tou', 'TOU periods pushed');
END
$$;

-- NULL leaves a ratio unchanged.
CREATE FUNCTION api.meters_set_alarm_thresholds(filter jsonb, undervoltage_ratio numeric DEFAULT NULL,
												overvoltage_ratio numeric DEFAULT NULL)
RETURNS TABLE (meters bigint, changed bigint, commands bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_ids     bigint[] := ARRAY(SELECT f.meter_id FROM prepaid._filter_meters(filter) f);
	v_under   numeric := meters_set_alarm_thresholds.undervoltage_ratio;
	v_over    numeric := meters_set_alarm_thresholds.overvoltage_ratio;
	v_changed bigint;
BEGIN
	IF v_under IS NULL AND v_over IS NULL THEN
		RAISE EXCEPTION 'give undervoltage_ratio or overvoltage_ratio'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF v_under IS NOT NULL AND (v_under <= 0 OR v_under >= 1) THEN
		RAISE EXCEPTION 'undervoltage_ratio must be between 0 and 1'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Got %s.', v_under),
				  HINT = 'For example 0.85: alarm below 85 % of the nominal voltage.';
	END IF;
	IF v_over IS NOT NULL AND (v_over <= 1 OR v_over >= 2) THEN
		RAISE EXCEPTION 'overvoltage_ratio must be between 1 and 2'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Got %s.', v_over),
				  HINT = 'For example 1.10: alarm above 110 % of the nominal voltage.';
	END IF;
	PERFORM prepaid._lock_meters(v_ids);
	UPDATE prepaid.meter m
	   SET undervoltage_ratio = coalesce(v_under, m.undervoltage_ratio),
		   overvoltage_ratio = coalesce(v_over, m.overvoltage_ratio)
	 WHERE m.meter_id = ANY (v_ids)
	   AND (m.undervoltage_ratio IS DISTINCT FROM coalesce(v_under, m.undervoltage_ratio)
			OR m.overvoltage_ratio IS DISTINCT FROM coalesce(v_over, m.overvoltage_ratio));
	GET DIAGNOSTICS v_changed = ROW_COUNT;
	RETURN QUERY SELECT cardinality(v_ids)::bigint, v_changed,
						prepaid._queue_for(v_ids, 'write_threshold', 'alarm thresholds set');
END
$$;

-- NULL removes the threshold (no overload alarm).
CREATE FUNCTION api.meters_set_power_threshold(filter jsonb, power_threshold_kw numeric)
RETURNS TABLE (meters bigint, changed bigint, commands bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_ids     bigint[] := ARRAY(SELECT f.meter_id FROM prepaid._filter_meters(filter) f);
	v_kw      numeric := meters_set_power_threshold.power_threshold_kw;
	v_changed bigint;
BEGIN
	IF v_kw IS NOT NULL AND (v_kw <= 0 OR v_kw >= 1000000) THEN
		RAISE EXCEPTION 'power threshold must be positive and below 1000000 kW'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Got %s.', v_kw);
	END IF;
	PERFORM prepaid._lock_meters(v_ids);
	UPDATE prepaid.meter m SET power_threshold_kw = v_kw
	 WHERE m.meter_id = ANY (v_ids) AND m.power_threshold_kw IS DISTINCT FROM v_kw;
	GET DIAGNOSTICS v_changed = ROW_COUNT;
	RETURN QUERY SELECT cardinality(v_ids)::bigint, v_changed,
						prepaid._queue_for(v_ids, 'write_threshold', 'power threshold set');
END
$$;

-- prepaid or postpaid. The mode trigger restarts settlement of a meter that
-- becomes prepaid from its latest reading and runs the supply decision; a
-- meter that becomes post-paid is never cut off for its balance, so a
-- cut-off one is restored.
CREATE FUNCTION api.meters_set_mode(filter jsonb, mode text)
RETURNS TABLE (meters bigint, changed bigint, commands bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_ids      bigint[] := ARRAY(SELECT f.meter_id FROM prepaid._filter_meters(filter) f);
	v_changed  bigint;
	v_restore  bigint := 0;
BEGIN
	IF meters_set_mode.mode IS NULL OR meters_set_mode.mode NOT IN ('prepaid', 'postpaid') THEN
		RAISE EXCEPTION 'unknown mode "%"', meters_set_mode.mode
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use prepaid or postpaid.';
	END IF;
	PERFORM prepaid._lock_meters(v_ids);
	UPDATE prepaid.meter m SET mode = meters_set_mode.mode
	 WHERE m.meter_id = ANY (v_ids) AND m.mode <> meters_set_mode.mode;
	GET DIAGNOSTICS v_changed = ROW_COUNT;
	IF meters_set_mode.mode = 'postpaid' THEN
		WITH r AS (
			UPDATE prepaid.meter m SET relay_desired = 'closed'
			 WHERE m.meter_id = ANY (v_ids) AND m.relay_desired = 'open'
			RETURNING m.meter_id, m.restore_command)
		SELECT coalesce(sum(prepaid._queue_each(ARRAY[r.meter_id], r.restore_command,
												 ARRAY[NULL::jsonb], 'post-paid: no cut-off')), 0)
		  INTO v_restore FROM r;
	END IF;
	RETURN QUERY SELECT cardinality(v_ids)::bigint, v_changed, v_restore;
END
$$;

-- Keep-power (保电) on or off: the meter is told, and the supply decision
-- re-runs (a cut-off meter put on keep-power is restored).
CREATE FUNCTION api.meters_set_keep_power(filter jsonb, keep_power boolean)
RETURNS TABLE (meters bigint, changed bigint, commands bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_ids     bigint[] := ARRAY(SELECT f.meter_id FROM prepaid._filter_meters(filter) f);
	v_changed bigint;
BEGIN
	IF meters_set_keep_power.keep_power IS NULL THEN
		RAISE EXCEPTION 'keep_power must be true or false' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM prepaid._lock_meters(v_ids);
	UPDATE prepaid.meter m SET keep_power = meters_set_keep_power.keep_power
	 WHERE m.meter_id = ANY (v_ids) AND m.keep_power <> meters_set_keep_power.keep_power;
	GET DIAGNOSTICS v_changed = ROW_COUNT;
	RETURN QUERY SELECT cardinality(v_ids)::bigint, v_changed,
		prepaid._queue_each(v_ids,
							CASE WHEN meters_set_keep_power.keep_power THEN 'keep_power_on'
								 ELSE 'keep_power_off' END,
							array_fill(NULL::jsonb, ARRAY[cardinality(v_ids)]),
							'keep-power set');
END
$$;

-- Opens or closes the relay by hand. The supply decision still applies at
-- the next balance change; keep-power is the lasting way to keep a meter on.
CREATE FUNCTION api.meters_relay(filter jsonb, action text)
RETURNS TABLE (meters bigint, changed bigint, commands bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_ids      bigint[] := ARRAY(SELECT f.meter_id FROM prepaid._filter_meters(filter) f);
	v_want     text := CASE meters_relay.action WHEN 'open' THEN 'open' WHEN 'close' THEN 'closed' END;
	v_changed  bigint;
	v_commands bigint;
BEGIN
	IF v_want IS NULL THEN
		RAISE EXCEPTION 'unknown relay action "%"', meters_relay.action
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use open or close.';
	END IF;
	PERFORM prepaid._lock_meters(v_ids);
	UPDATE prepaid.meter m SET relay_desired = v_want
	 WHERE m.meter_id = ANY (v_ids) AND m.relay_desired <> v_want;
	GET DIAGNOSTICS v_changed = ROW_COUNT;
	SELECT coalesce(sum(prepaid._queue_each(ARRAY[m.meter_id],
				CASE WHEN v_want = 'open' THEN 'relay_open' ELSE m.restore_command END,
				ARRAY[jsonb_build_object('by', prepaid._caller_name())], 'manual relay ' || meters_relay.action)), 0)
	  INTO v_commands
	  FROM prepaid.meter m WHERE m.meter_id = ANY (v_ids);
	RETURN QUERY SELECT cardinality(v_ids)::bigint, v_changed, v_commands;
END
$$;

-- Acknowledges an alarm of the caller's property.
CREATE FUNCTION api.alarm_ack(alarm_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_property bigint;
BEGIN
	SELECT a.property_id INTO v_property FROM prepaid.alarm a WHERE a.alarm_id = alarm_ack.alarm_id;
	IF NOT FOUND OR NOT prepaid._may_act(v_property) THEN
		RAISE EXCEPTION 'alarm % does not exist', alarm_ack.alarm_id USING ERRCODE = 'no_data_found';
	END IF;
	RETURN prepaid.alarm_ack(alarm_ack.alarm_id, prepaid._caller_name());
END
$$;

CREATE VIEW api.commands WITH (security_invoker = true) AS
SELECT c.property_id, c.command_id, c.meter_id, m.address, c.kind, c.status, c.payload, c.reason,
	   c.created_at, c.not_before, c.sent_at, c.finished_at, c.attempts, c.error, c.reply
  FROM prepaid.command c
  JOIN prepaid.meter m ON m.property_id = c.property_id AND m.meter_id = c.meter_id;
