-- The ingest daemon's side of the database (issue 3, F1/F2/F3; contract in
-- docs/ingest.md). prepaid-ingest calls only the SECURITY DEFINER functions
-- below (and creates one temporary staging table per session), so its role
-- needs EXECUTE on them and TEMP on the database, nothing else.
--
-- Exactly once: a daemon names every batch of readings (daemon, batch_no);
-- prepaid.ingest_batch_write() records the batch in prepaid.ingest_batch and
-- inserts its staged rows in the caller's transaction, so a batch sent again
-- after a lost connection or a crash finds its row and inserts nothing.

CREATE TABLE prepaid.ingest_batch (
	daemon       text NOT NULL,
	batch_no     bigint NOT NULL,
	batch_id     bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	rows         integer NOT NULL,
	inserted     integer NOT NULL DEFAULT 0,
	committed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (daemon, batch_no)
);
COMMENT ON TABLE prepaid.ingest_batch IS
	'reading batches committed by ingest daemons (exactly-once marker; reading.batch_id)';

-- Which daemon holds each connected meter: commands are claimed only by it.
CREATE TABLE prepaid.meter_connection (
	property_id  bigint NOT NULL,
	meter_id     bigint NOT NULL,
	daemon       text NOT NULL,
	gateway_id   bigint,
	connected_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (property_id, meter_id),
	UNIQUE (meter_id),
	FOREIGN KEY (property_id, meter_id) REFERENCES prepaid.meter (property_id, meter_id)
		ON DELETE CASCADE
);
CREATE INDEX ON prepaid.meter_connection (daemon);
COMMENT ON TABLE prepaid.meter_connection IS
	'meters connected to an ingest daemon now (directly or behind a gateway)';

CREATE TABLE prepaid.ingest_stats (
	daemon     text PRIMARY KEY,
	pid        integer,
	started_at timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now(),
	stats      jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE prepaid.ingest_stats IS
	'counters of each ingest daemon, refreshed every few seconds (docs/ingest.md)';

-- Called once when a daemon process starts: forgets the connections of its
-- previous incarnation, hands the commands it had sent but not finished back
-- to the queue (attempts kept, so relay commands are read back before they
-- are sent again), and returns the last batch number it committed.
CREATE FUNCTION prepaid.ingest_start(p_daemon text, p_pid integer)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
BEGIN
	DELETE FROM prepaid.meter_connection WHERE daemon = p_daemon;
	UPDATE prepaid.command c SET status = 'pending', claimed_by = NULL, not_before = now(),
		   error = 'daemon restarted while the command was in flight'
	 WHERE c.status = 'sent' AND c.claimed_by = p_daemon
	   AND NOT EXISTS (SELECT 1 FROM prepaid.command p
						WHERE p.property_id = c.property_id AND p.meter_id = c.meter_id
						  AND p.kind = c.kind AND p.status = 'pending');
	INSERT INTO prepaid.ingest_stats (daemon, pid, started_at, updated_at)
	VALUES (p_daemon, p_pid, now(), now())
	ON CONFLICT (daemon) DO UPDATE SET pid = excluded.pid, started_at = excluded.started_at,
		   updated_at = excluded.updated_at, stats = '{}';
	RETURN coalesce((SELECT max(batch_no) FROM prepaid.ingest_batch WHERE daemon = p_daemon), 0);
END
$$;

-- Meters and gateways as the daemon needs them.
CREATE FUNCTION prepaid.ingest_meter_map()
RETURNS TABLE (meter_id bigint, property_id bigint, address text, gateway_id bigint,
			   read_interval_s bigint, rate_registers smallint, phase smallint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT m.meter_id, m.property_id, m.address, m.gateway_id,
		   greatest(1, extract(epoch FROM m.read_interval))::bigint, m.rate_registers, m.phase
	  FROM prepaid.meter m ORDER BY m.meter_id
$$;

CREATE FUNCTION prepaid.ingest_gateway_map()
RETURNS TABLE (gateway_id bigint, property_id bigint, serial text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT g.gateway_id, g.property_id, g.serial FROM prepaid.gateway g ORDER BY g.gateway_id
$$;

-- Commits a staged batch: the caller has COPYed its rows into the temporary
-- table ingest_stage (meter_time as the meter's local clock, without zone)
-- in the current transaction. Returns the batch id and the rows inserted, or
-- duplicate = true when (daemon, batch_no) was committed before (then
-- nothing is inserted). Rows already present (same meter and read_at) are
-- skipped; the reading triggers quarantine implausible ones as usual.
CREATE FUNCTION prepaid.ingest_batch_write(p_daemon text, p_batch_no bigint, p_rows integer)
RETURNS TABLE (batch_id bigint, inserted bigint, duplicate boolean)
LANGUAGE plpgsql SECURITY DEFINER
-- custom plans for every statement of the batch and its triggers: the
-- daemon's session lives for weeks while the tables grow from empty
SET search_path = pg_catalog, prepaid, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
	v_id     bigint;
	v_n      bigint;
	v_insert constant text := $q$
	INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh,
		voltage_a, voltage_b, voltage_c, current_a, current_b, current_c, power_kw,
		power_a_kw, power_b_kw, power_c_kw, power_factor, frequency_hz, demand_kw,
		status_words, relay_open, meter_time, batch_id)
	SELECT s.property_id, s.meter_id, s.read_at, s.energy_wh, s.rate_wh,
		   s.voltage_a, s.voltage_b, s.voltage_c, s.current_a, s.current_b, s.current_c,
		   s.power_kw, s.power_a_kw, s.power_b_kw, s.power_c_kw, s.power_factor,
		   s.frequency_hz, s.demand_kw, s.status_words, s.relay_open,
		   s.meter_time AT TIME ZONE coalesce(p.time_zone, 'UTC'), $1
	  FROM pg_temp.ingest_stage s
	  LEFT JOIN prepaid.property p ON p.property_id = s.property_id$q$;
BEGIN
	INSERT INTO prepaid.ingest_batch (daemon, batch_no, rows)
	VALUES (p_daemon, p_batch_no, p_rows)
	ON CONFLICT (daemon, batch_no) DO NOTHING
	RETURNING ingest_batch.batch_id INTO v_id;
	IF v_id IS NULL THEN
		RETURN QUERY SELECT b.batch_id, 0::bigint, true FROM prepaid.ingest_batch b
					  WHERE b.daemon = p_daemon AND b.batch_no = p_batch_no;
		RETURN;
	END IF;
	-- a plain INSERT (a third cheaper than one with ON CONFLICT); only when a
	-- row is stored already (a reading sent again) or twice in the batch,
	-- the batch is inserted again skipping those
	BEGIN
		EXECUTE v_insert USING v_id;
		GET DIAGNOSTICS v_n = ROW_COUNT;
	EXCEPTION WHEN unique_violation THEN
		EXECUTE v_insert || ' ON CONFLICT DO NOTHING' USING v_id;
		GET DIAGNOSTICS v_n = ROW_COUNT;
	END;
	UPDATE prepaid.ingest_batch b SET inserted = v_n WHERE b.batch_id = v_id;
	PERFORM pg_notify('prepaid_reading', p_daemon);
	RETURN QUERY SELECT v_id, v_n, false;
END
$$;

-- Connection state, liveness and gateway link state, batched by the daemon
-- (arrays of meter_id / gateway_id). last_seen is written at most once a
-- minute per meter so that idle heartbeats cost nothing.
CREATE FUNCTION prepaid.ingest_presence(p_daemon text, p_connected bigint[],
										p_disconnected bigint[], p_seen bigint[],
										p_gw_online bigint[], p_gw_offline bigint[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
BEGIN
	IF cardinality(p_disconnected) > 0 THEN
		DELETE FROM prepaid.meter_connection mc
		 WHERE mc.meter_id = ANY (p_disconnected) AND mc.daemon = p_daemon;
	END IF;
	IF cardinality(p_connected) > 0 THEN
		INSERT INTO prepaid.meter_connection AS mc (property_id, meter_id, daemon, gateway_id)
		SELECT m.property_id, m.meter_id, p_daemon, m.gateway_id
		  FROM prepaid.meter m WHERE m.meter_id = ANY (p_connected)
		ON CONFLICT (property_id, meter_id) DO UPDATE
		   SET daemon = excluded.daemon, gateway_id = excluded.gateway_id,
			   connected_at = now();
	END IF;
	IF cardinality(p_seen) > 0 THEN
		WITH lk AS MATERIALIZED (	-- in key order (see _ledger_after_insert)
			SELECT m.property_id, m.meter_id FROM prepaid.meter m
			 WHERE m.meter_id = ANY (p_seen)
			   AND (m.last_seen IS NULL OR m.last_seen < now() - interval '1 minute')
			 ORDER BY m.property_id, m.meter_id
			   FOR NO KEY UPDATE OF m)
		UPDATE prepaid.meter m SET last_seen = now()
		  FROM lk WHERE m.property_id = lk.property_id AND m.meter_id = lk.meter_id;
	END IF;
	IF cardinality(p_gw_online) > 0 THEN
		UPDATE prepaid.gateway g SET online = true, last_seen = now()
		 WHERE g.gateway_id = ANY (p_gw_online)
		   AND (NOT g.online OR g.last_seen IS NULL OR g.last_seen < now() - interval '1 minute');
	END IF;
	IF cardinality(p_gw_offline) > 0 THEN
		UPDATE prepaid.gateway g SET online = false
		 WHERE g.gateway_id = ANY (p_gw_offline) AND g.online;
	END IF;
END
$$;

-- Claims the due pending commands of the meters this daemon holds, marks
-- them sent and returns what the daemon needs to encode them: the DI of
-- reads/writes (from the payload or the kind), the value to write, the
-- property's UTC offset (meters keep local time) and the creation time.
CREATE FUNCTION prepaid.ingest_claim_commands(p_daemon text, p_limit integer DEFAULT 1000)
RETURNS TABLE (command_id bigint, property_id bigint, meter_id bigint, kind text,
			   attempts integer, di text, value text, tz_offset_s integer,
			   created_us bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
BEGIN
	RETURN QUERY
	WITH due AS (
		SELECT c.property_id, c.command_id
		  FROM prepaid.command c
		  JOIN prepaid.meter_connection mc
			ON mc.property_id = c.property_id AND mc.meter_id = c.meter_id
		 WHERE c.status = 'pending' AND c.not_before <= now() AND mc.daemon = p_daemon
		 ORDER BY c.command_id
		 LIMIT p_limit
		   FOR UPDATE OF c SKIP LOCKED),
	claimed AS (
		UPDATE prepaid.command c
		   SET status = 'sent', attempts = c.attempts + 1, sent_at = now(),
			   claimed_by = p_daemon
		  FROM due
		 WHERE c.property_id = due.property_id AND c.command_id = due.command_id
		RETURNING c.*)
	SELECT cl.command_id, cl.property_id, cl.meter_id, cl.kind, cl.attempts,
		   CASE
			 WHEN cl.kind = 'read_frozen' THEN coalesce(cl.payload->>'di', '0001FF01')
			 WHEN cl.kind = 'read_daily_frozen' THEN coalesce(cl.payload->>'di', '05060101')
			 WHEN cl.kind = 'write_price' THEN coalesce(cl.payload->>'di',
				 '040501' || lpad(coalesce(cl.payload->>'tariff', '1'), 2, '0'))
			 WHEN cl.kind = 'write_threshold' THEN coalesce(cl.payload->>'di',
				 CASE cl.payload->>'threshold'
					  WHEN 'alarm_amount_1' THEN '04001001'
					  WHEN 'alarm_amount_2' THEN '04001002'
					  WHEN 'overdraft_amount' THEN '04001003'
					  WHEN 'hoarding_amount' THEN '04001004'
					  WHEN 'close_permit_amount' THEN '04001005'
					  WHEN 'alarm_energy_1' THEN '04000F01'
					  WHEN 'alarm_energy_2' THEN '04000F02' END)
			 ELSE cl.payload->>'di' END,
		   coalesce(cl.payload->>'value', cl.payload->>'price'),
		   extract(epoch FROM (now() AT TIME ZONE coalesce(p.time_zone, 'UTC'))
							  - (now() AT TIME ZONE 'UTC'))::integer,
		   (extract(epoch FROM cl.created_at) * 1000000)::bigint
	  FROM claimed cl
	  LEFT JOIN prepaid.property p ON p.property_id = cl.property_id
	 ORDER BY cl.command_id;
END
$$;

-- The rows of a results array (see ingest_command_results).
CREATE FUNCTION prepaid._ingest_results(p_results jsonb)
RETURNS TABLE (command_id bigint, status text, reply jsonb, error text, relay_actual text)
LANGUAGE sql IMMUTABLE AS $$
	SELECT r.command_id, r.status, r.reply, r.error, r.relay_actual
	  FROM jsonb_to_recordset(p_results)
		   AS r(command_id bigint, status text, reply jsonb, error text, relay_actual text)
$$;

-- Records the outcome of commands, set-based: a JSON array of objects
-- {command_id, status: acknowledged | failed | retry, reply, error,
--  relay_actual: open | closed}. 'retry' hands a command back to the queue
-- with backoff while attempts remain (pg_prepaid.command_max_attempts),
-- else fails it. An acknowledged read_frozen / read_daily_frozen stores its
-- reply (energy_wh, rate_wh) in prepaid.freeze. Returns the commands updated.
CREATE FUNCTION prepaid.ingest_command_results(p_daemon text, p_results jsonb)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_max integer := prepaid._setting_numeric('pg_prepaid.command_max_attempts', 3)::integer;
	v_n   integer;
BEGIN
	-- meters locked in key order first, like every statement that changes
	-- many meters (see _ledger_after_insert)
	WITH lk AS MATERIALIZED (
		SELECT m.property_id, m.meter_id, r.relay_actual
		  FROM prepaid.meter m
		  JOIN prepaid.command c ON m.property_id = c.property_id AND m.meter_id = c.meter_id
		  JOIN prepaid._ingest_results(p_results) r ON c.command_id = r.command_id
		 WHERE r.relay_actual IN ('open', 'closed') AND m.relay_actual <> r.relay_actual
		 ORDER BY m.property_id, m.meter_id
		   FOR NO KEY UPDATE OF m)
	UPDATE prepaid.meter m SET relay_actual = lk.relay_actual
	  FROM lk
	 WHERE m.property_id = lk.property_id AND m.meter_id = lk.meter_id
	   AND m.relay_actual <> lk.relay_actual;

	INSERT INTO prepaid.freeze AS f (property_id, meter_id, kind, frozen_at, energy_wh, rate_wh)
	SELECT c.property_id, c.meter_id, coalesce(c.payload->>'freeze',
			   CASE c.kind WHEN 'read_frozen' THEN 'month' ELSE 'day' END),
		   (c.payload->>'frozen_at')::timestamptz, (r.reply->>'energy_wh')::bigint,
		   CASE WHEN jsonb_typeof(r.reply->'rate_wh') = 'array'
					 AND jsonb_array_length(r.reply->'rate_wh') > 0
				THEN ARRAY(SELECT jsonb_array_elements_text(r.reply->'rate_wh')::bigint) END
	  FROM prepaid._ingest_results(p_results) r
	  JOIN prepaid.command c ON c.command_id = r.command_id
	 WHERE r.status = 'acknowledged' AND c.kind IN ('read_frozen', 'read_daily_frozen')
	   AND c.payload ? 'frozen_at' AND r.reply ? 'energy_wh'
	ON CONFLICT (property_id, meter_id, kind, frozen_at) DO UPDATE
	   SET energy_wh = excluded.energy_wh, rate_wh = excluded.rate_wh, estimated = false,
		   received_at = now()
	 WHERE f.estimated;

	WITH u AS (
		UPDATE prepaid.command c
		   SET status = CASE WHEN r.status = 'retry' AND c.attempts < v_max THEN 'pending'
							 WHEN r.status = 'retry' THEN 'failed' ELSE r.status END,
			   not_before = CASE WHEN r.status = 'retry'
								 THEN now() + make_interval(secs => 30 * power(2, c.attempts - 1))
								 ELSE c.not_before END,
			   claimed_by = CASE WHEN r.status = 'retry' THEN NULL ELSE c.claimed_by END,
			   finished_at = CASE WHEN r.status = 'retry' AND c.attempts < v_max THEN NULL
								  ELSE now() END,
			   reply = coalesce(r.reply, c.reply),
			   error = r.error
		  FROM prepaid._ingest_results(p_results) r
		 WHERE c.command_id = r.command_id
		   AND r.status IN ('acknowledged', 'failed', 'retry')
		   AND ((c.status = 'sent' AND c.claimed_by = p_daemon)
				OR (r.status = 'acknowledged' AND c.status = 'pending' AND c.claimed_by IS NULL))
		   AND NOT (r.status = 'retry' AND c.attempts < v_max AND EXISTS (
				SELECT 1 FROM prepaid.command p
				 WHERE p.property_id = c.property_id AND p.meter_id = c.meter_id
				   AND p.kind = c.kind AND p.status = 'pending'
				   AND p.command_id <> c.command_id))
		RETURNING c.property_id, c.meter_id, c.command_id, c.kind, c.status)
	SELECT count(*) INTO v_n
	  FROM u LEFT JOIN LATERAL (
		SELECT prepaid.alarm_raise(u.property_id, u.meter_id, 'command_failed',
				   jsonb_build_object('command_id', u.command_id, 'kind', u.kind), 'critical')
		 WHERE u.status = 'failed') a ON true;
	RETURN v_n;
END
$$;

-- Frames the daemon rejected (unknown meter or gateway, bad frames): a JSON
-- array of {address, meter_id, property_id, reason, detail, frame (hex)}.
CREATE FUNCTION prepaid.ingest_quarantine(p_daemon text, p_items jsonb)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_n integer;
BEGIN
	INSERT INTO prepaid.quarantine (property_id, meter_id, address, source, reason, detail, frame)
	SELECT i.property_id, i.meter_id, i.address, 'frame', i.reason,
		   format('%s (daemon %s)', i.detail, p_daemon), decode(i.frame, 'hex')
	  FROM jsonb_to_recordset(p_items)
		   AS i(property_id bigint, meter_id bigint, address text, reason text, detail text,
				frame text);
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END
$$;

-- The daemon's counters (docs/ingest.md lists them).
CREATE FUNCTION prepaid.ingest_report(p_daemon text, p_pid integer, p_stats jsonb)
RETURNS void LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	INSERT INTO prepaid.ingest_stats (daemon, pid, started_at, updated_at, stats)
	VALUES (p_daemon, p_pid, now(), now(), p_stats)
	ON CONFLICT (daemon) DO UPDATE
	   SET pid = excluded.pid, updated_at = excluded.updated_at, stats = excluded.stats
$$;

-- Batch markers are only needed while a daemon's spool may still replay
-- them: keep a week, and always each daemon's newest (its numbering). The
-- daemon calls it hourly.
CREATE FUNCTION prepaid.ingest_prune(p_keep interval DEFAULT interval '7 days')
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_n bigint;
BEGIN
	DELETE FROM prepaid.ingest_batch b
	 WHERE b.committed_at < now() - p_keep
	   AND b.batch_no < (SELECT max(x.batch_no) FROM prepaid.ingest_batch x WHERE x.daemon = b.daemon);
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END
$$;
