-- The "commands" job (F2): sent commands that were not acknowledged in time
-- are retried with exponential backoff up to a limit, then failed with an
-- alarm; failed commands can be re-issued one by one or in bulk; and a
-- reconciler re-queues the relay command of meters whose actual relay state
-- drifted from the desired one (after a cool-off, never next to a pending
-- or sent relay command).

CREATE FUNCTION prepaid.commands_run(p_now timestamptz DEFAULT now())
RETURNS TABLE (retried bigint, failed bigint, requeued bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
DECLARE
	v_timeout  interval := make_interval(secs => prepaid._setting_numeric('pg_prepaid.command_timeout', 60)::float8);
	v_max      integer := prepaid._setting_numeric('pg_prepaid.command_max_attempts', 3)::integer;
	v_cooloff  interval := make_interval(secs => prepaid._setting_numeric('pg_prepaid.reconcile_cooloff', 300)::float8);
	v_retried  bigint;
	v_failed   bigint;
	v_requeued bigint;
BEGIN
	-- timed out: retry with backoff (30 s, 60 s, 120 s ...) while attempts remain
	WITH t AS (
		UPDATE prepaid.command c
		   SET status = 'pending', claimed_by = NULL,
			   not_before = p_now + make_interval(secs => 30 * power(2, c.attempts - 1)),
			   error = format('no reply within %s (attempt %s of %s)', v_timeout, c.attempts, v_max)
		 WHERE c.status = 'sent' AND c.sent_at < p_now - v_timeout AND c.attempts < v_max
		   AND NOT EXISTS (SELECT 1 FROM prepaid.command p
							WHERE p.property_id = c.property_id AND p.meter_id = c.meter_id
							  AND p.kind = c.kind AND p.status = 'pending')
		RETURNING 1)
	SELECT count(*) INTO v_retried FROM t;

	WITH f AS (
		UPDATE prepaid.command c
		   SET status = 'failed', finished_at = p_now,
			   error = format('no reply after %s attempts', c.attempts)
		 WHERE c.status = 'sent' AND c.sent_at < p_now - v_timeout
		RETURNING c.property_id, c.meter_id, c.command_id, c.kind)
	SELECT count(*) INTO v_failed
	  FROM f, LATERAL prepaid.alarm_raise(f.property_id, f.meter_id, 'command_failed',
			   jsonb_build_object('command_id', f.command_id, 'kind', f.kind), 'critical') AS a;

	-- drift: actual relay state known and different from desired
	WITH d AS (
		SELECT m.property_id, m.meter_id,
			   CASE WHEN m.relay_desired = 'open' THEN 'relay_open' ELSE m.restore_command END AS kind
		  FROM prepaid.meter m
		 WHERE m.relay_actual <> 'unknown' AND m.relay_actual <> m.relay_desired
		   AND NOT EXISTS (
				SELECT 1 FROM prepaid.command c
				 WHERE c.property_id = m.property_id AND c.meter_id = m.meter_id
				   AND c.kind IN ('relay_open', 'relay_close', 'relay_permit_close')
				   AND (c.status IN ('pending', 'sent') OR c.finished_at > p_now - v_cooloff
						OR c.created_at > p_now - v_cooloff))),
	q AS (
		INSERT INTO prepaid.command (property_id, meter_id, kind, reason)
		SELECT d.property_id, d.meter_id, d.kind, 'reconcile: actual relay state differs from desired'
		  FROM d
		ON CONFLICT (property_id, meter_id, kind) WHERE status = 'pending' DO NOTHING
		RETURNING 1)
	SELECT count(*) INTO v_requeued FROM q;
	IF v_retried + v_requeued > 0 THEN
		PERFORM pg_notify('prepaid_command', 'retry');
	END IF;
	RETURN QUERY SELECT v_retried, v_failed, v_requeued;
END
$$;

-- Re-issues failed commands as new pending ones: one command by id, or all
-- failed commands matching a filter (property, kind, failed since). A relay
-- command is only re-issued when it still matches the meter's desired state.
-- Returns the new command ids.
CREATE FUNCTION prepaid.command_reissue(p_command_id bigint DEFAULT NULL,
										p_property_id bigint DEFAULT NULL,
										p_kind text DEFAULT NULL,
										p_failed_since timestamptz DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
BEGIN
	IF p_command_id IS NULL AND p_property_id IS NULL AND p_kind IS NULL
	   AND p_failed_since IS NULL THEN
		RAISE EXCEPTION 'give a command id or at least one filter'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For all failed commands of a property: command_reissue(p_property_id => 1).';
	END IF;
	IF p_command_id IS NOT NULL AND NOT EXISTS (
		SELECT 1 FROM prepaid.command WHERE command_id = p_command_id AND status = 'failed') THEN
		RAISE EXCEPTION 'command % does not exist or has not failed', p_command_id
			USING ERRCODE = 'no_data_found';
	END IF;
	RETURN QUERY
	SELECT prepaid.command_queue(c.meter_id, c.kind, c.payload,
								 format('re-issue of command %s', c.command_id))
	  FROM prepaid.command c
	  JOIN prepaid.meter m ON m.property_id = c.property_id AND m.meter_id = c.meter_id
	 WHERE c.status = 'failed'
	   AND (p_command_id IS NULL OR c.command_id = p_command_id)
	   AND (p_property_id IS NULL OR c.property_id = p_property_id)
	   AND (p_kind IS NULL OR c.kind = p_kind)
	   AND (p_failed_since IS NULL OR c.finished_at >= p_failed_since)
	   AND (c.kind NOT IN ('relay_open', 'relay_close', 'relay_permit_close')
			OR (c.kind = 'relay_open') = (m.relay_desired = 'open'))
	   AND NOT EXISTS (SELECT 1 FROM prepaid.command n
						WHERE n.property_id = c.property_id AND n.meter_id = c.meter_id
						  AND n.kind = c.kind AND n.command_id > c.command_id
						  AND n.status <> 'failed')
	 ORDER BY c.command_id;
END
$$;

INSERT INTO prepaid.job (job_name, command, schedule_interval) VALUES
	('commands', 'SELECT * FROM prepaid.commands_run()', interval '30 seconds');
