-- Month-start and daily freezes (F9). At 00:00 local time (the property's
-- time zone) on the 1st of each month, and every midnight, the "freeze" job
-- queues a read of each meter's frozen registers (DL/T 645 previous
-- settlement-day / daily-freeze energies); the ingest daemon stores the
-- replies in prepaid.freeze. A meter whose freeze has not arrived after
-- pg_prepaid.freeze_grace gets one estimated from its readings around the
-- instant (linear interpolation, exact integer arithmetic), marked as such.
-- A month's usage is the difference of two month-start freezes.
-- Slots catch up: a server that was down at midnight processes the missed
-- slot when it comes back; slots are never skipped.

CREATE TABLE prepaid.freeze (
	property_id bigint NOT NULL,
	meter_id    bigint NOT NULL,
	kind        text NOT NULL CHECK (kind IN ('month', 'day')),
	frozen_at   timestamptz NOT NULL,
	energy_wh   bigint NOT NULL CHECK (energy_wh >= 0),
	rate_wh     bigint[],
	estimated   boolean NOT NULL DEFAULT false,
	received_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (property_id, meter_id, kind, frozen_at),
	FOREIGN KEY (property_id, meter_id) REFERENCES prepaid.meter (property_id, meter_id)
		ON DELETE CASCADE
);
COMMENT ON TABLE prepaid.freeze IS
	'frozen register values at local midnight (kind day) or month start (kind month)';

-- Freeze slots of each property already opened (commands queued).
CREATE TABLE prepaid.freeze_slot (
	property_id bigint NOT NULL REFERENCES prepaid.property,
	kind        text NOT NULL CHECK (kind IN ('month', 'day')),
	frozen_at   timestamptz NOT NULL,
	queued_at   timestamptz NOT NULL DEFAULT now(),
	completed_at timestamptz,
	PRIMARY KEY (property_id, kind, frozen_at)
);

CREATE TABLE prepaid.month_usage (
	property_id   bigint NOT NULL,
	meter_id      bigint NOT NULL,
	month         date NOT NULL,       -- first day of the month, local
	from_at       timestamptz NOT NULL,
	to_at         timestamptz NOT NULL,
	energy_wh     bigint NOT NULL,
	period_wh     jsonb,               -- period -> Wh, from the per-rate registers
	estimated     boolean NOT NULL,
	computed_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (property_id, meter_id, month),
	FOREIGN KEY (property_id, meter_id) REFERENCES prepaid.meter (property_id, meter_id)
		ON DELETE CASCADE
);
COMMENT ON TABLE prepaid.month_usage IS
	'a month''s usage per meter: difference of two month-start freezes (estimated when either was)';

-- The freeze slots of a kind for one property between two instants, as
-- instants (local midnights).
CREATE FUNCTION prepaid._freeze_instants(p_kind text, p_tz text, p_from timestamptz,
										 p_to timestamptz)
RETURNS SETOF timestamptz LANGUAGE sql STABLE AS $$
	SELECT d::timestamp AT TIME ZONE p_tz
	  FROM generate_series(
			date_trunc(CASE p_kind WHEN 'month' THEN 'month' ELSE 'day' END, p_from AT TIME ZONE p_tz),
			p_to AT TIME ZONE p_tz,
			CASE p_kind WHEN 'month' THEN interval '1 month' ELSE interval '1 day' END) AS d
	 WHERE d::timestamp AT TIME ZONE p_tz > p_from AND d::timestamp AT TIME ZONE p_tz <= p_to
$$;

-- Linear interpolation of a register at instant t between two readings,
-- exact (floor of the integer quotient).
CREATE FUNCTION prepaid._interpolate_wh(e0 bigint, t0 timestamptz, e1 bigint, t1 timestamptz,
										t timestamptz)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN t1 = t0 THEN e0
				ELSE e0 + floor((e1 - e0)::numeric
								* (extract(epoch FROM t - t0) * 1000000)::numeric
								/ (extract(epoch FROM t1 - t0) * 1000000)::numeric)::bigint END
$$;

-- The freeze job. p_now is the clock to use (tests drive it). Returns one row
-- per action taken.
CREATE FUNCTION prepaid.freeze_run(p_now timestamptz DEFAULT now())
RETURNS TABLE (property_id bigint, kind text, frozen_at timestamptz, action text, meters bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
#variable_conflict use_column
DECLARE
	p      record;
	s      record;
	k      text;
	v_last timestamptz;
	v_n    bigint;
	v_grace interval := make_interval(secs => prepaid._setting_numeric('pg_prepaid.freeze_grace', 21600)::float8);
BEGIN
	FOR p IN SELECT * FROM prepaid.property ORDER BY property_id LOOP
		FOREACH k IN ARRAY ARRAY['month', 'day'] LOOP
			-- 1. open every slot since the last one (first run: from the current slot on)
			SELECT max(fs.frozen_at) INTO v_last FROM prepaid.freeze_slot fs
			 WHERE fs.property_id = p.property_id AND fs.kind = k;
			v_last := coalesce(v_last, (SELECT max(i) FROM prepaid._freeze_instants(k, p.time_zone,
									p_now - CASE k WHEN 'month' THEN interval '32 days' ELSE interval '2 days' END,
									p_now) i) - interval '1 second');
			FOR s IN SELECT i AS at FROM prepaid._freeze_instants(k, p.time_zone, v_last, p_now) i ORDER BY i LOOP
				INSERT INTO prepaid.freeze_slot (property_id, kind, frozen_at) VALUES (p.property_id, k, s.at);
				INSERT INTO prepaid.command (property_id, meter_id, kind, payload, reason)
				SELECT m.property_id, m.meter_id,
					   CASE k WHEN 'month' THEN 'read_frozen' ELSE 'read_daily_frozen' END,
					   jsonb_build_object('freeze', k, 'frozen_at', s.at,
										  'di', CASE k WHEN 'month' THEN '0001FF01' ELSE '05060101' END),
					   format('%s freeze at %s', k, s.at)
				  FROM prepaid.meter m WHERE m.property_id = p.property_id
				ON CONFLICT (property_id, meter_id, kind) WHERE status = 'pending' DO NOTHING;
				GET DIAGNOSTICS v_n = ROW_COUNT;
				PERFORM pg_notify('prepaid_command', 'freeze');
				property_id := p.property_id; kind := k; frozen_at := s.at;
				action := 'queued'; meters := v_n;
				RETURN NEXT;
			END LOOP;

			-- 2. estimate the freezes still missing after the grace period
			FOR s IN SELECT fs.frozen_at AS at FROM prepaid.freeze_slot fs
					  WHERE fs.property_id = p.property_id AND fs.kind = k
						AND fs.completed_at IS NULL AND fs.frozen_at < p_now - v_grace
					  ORDER BY fs.frozen_at LOOP
				INSERT INTO prepaid.freeze (property_id, meter_id, kind, frozen_at, energy_wh, estimated)
				SELECT m.property_id, m.meter_id, k, s.at,
					   prepaid._interpolate_wh(b.energy_wh, b.read_at, a.energy_wh, a.read_at, s.at), true
				  FROM prepaid.meter m
				  CROSS JOIN LATERAL (SELECT r.read_at, r.energy_wh FROM prepaid.reading r
									   WHERE r.property_id = m.property_id AND r.meter_id = m.meter_id
										 AND r.read_at <= s.at ORDER BY r.read_at DESC LIMIT 1) b
				  CROSS JOIN LATERAL (SELECT r.read_at, r.energy_wh FROM prepaid.reading r
									   WHERE r.property_id = m.property_id AND r.meter_id = m.meter_id
										 AND r.read_at >= s.at ORDER BY r.read_at LIMIT 1) a
				 WHERE m.property_id = p.property_id AND a.energy_wh >= b.energy_wh
				   AND NOT EXISTS (SELECT 1 FROM prepaid.freeze f
									WHERE f.property_id = m.property_id AND f.meter_id = m.meter_id
									  AND f.kind = k AND f.frozen_at = s.at)
				ON CONFLICT DO NOTHING;
				GET DIAGNOSTICS v_n = ROW_COUNT;
				IF v_n > 0 THEN
					property_id := p.property_id; kind := k; frozen_at := s.at;
					action := 'estimated'; meters := v_n;
					RETURN NEXT;
				END IF;
				-- complete when every meter has a freeze for the slot
				IF NOT EXISTS (SELECT 1 FROM prepaid.meter m
								WHERE m.property_id = p.property_id
								  AND NOT EXISTS (SELECT 1 FROM prepaid.freeze f
												   WHERE f.property_id = m.property_id
													 AND f.meter_id = m.meter_id
													 AND f.kind = k AND f.frozen_at = s.at)) THEN
					UPDATE prepaid.freeze_slot fs SET completed_at = p_now
					 WHERE fs.property_id = p.property_id AND fs.kind = k AND fs.frozen_at = s.at;
				END IF;
			END LOOP;
		END LOOP;

		-- 3. month usage from consecutive month freezes: every recent month
		-- freeze (the last 100 days) that has no usage ending at it yet, or
		-- only an estimated one; a real usage replaces an estimated one
		INSERT INTO prepaid.month_usage AS mu (property_id, meter_id, month, from_at, to_at, energy_wh,
											   period_wh, estimated)
		SELECT f1.property_id, f1.meter_id, (f0.frozen_at AT TIME ZONE p.time_zone)::date,
			   f0.frozen_at, f1.frozen_at,
			   CASE WHEN f1.energy_wh >= f0.energy_wh THEN f1.energy_wh - f0.energy_wh
					ELSE m.register_modulus_wh - f0.energy_wh + f1.energy_wh END,
			   (SELECT jsonb_object_agg(per, wh) FROM (
					SELECT tv.registers[i] AS per, sum(CASE WHEN f1.rate_wh[i] >= f0.rate_wh[i]
						THEN f1.rate_wh[i] - f0.rate_wh[i]
						ELSE m.register_modulus_wh - f0.rate_wh[i] + f1.rate_wh[i] END) AS wh
					  FROM generate_subscripts(f1.rate_wh, 1) i
					 WHERE i <= cardinality(tv.registers) AND f0.rate_wh[i] IS NOT NULL
					 GROUP BY 1) x),
			   f0.estimated OR f1.estimated
		  FROM prepaid.freeze f1
		  JOIN prepaid.meter m ON m.property_id = f1.property_id AND m.meter_id = f1.meter_id
		  JOIN LATERAL (SELECT * FROM prepaid.freeze f
						 WHERE f.property_id = f1.property_id AND f.meter_id = f1.meter_id
						   AND f.kind = 'month' AND f.frozen_at < f1.frozen_at
						 ORDER BY f.frozen_at DESC LIMIT 1) f0 ON true
		  LEFT JOIN prepaid.tariff_version tv ON tv.tariff_id = m.tariff_id
			   AND f0.frozen_at >= tv.valid_from AND f0.frozen_at < tv.valid_to
		 WHERE f1.property_id = p.property_id AND f1.kind = 'month'
		   AND f1.frozen_at > p_now - interval '100 days'
		   AND NOT EXISTS (SELECT 1 FROM prepaid.month_usage u
							WHERE u.property_id = f1.property_id AND u.meter_id = f1.meter_id
							  AND u.to_at = f1.frozen_at AND NOT u.estimated)
		ON CONFLICT (property_id, meter_id, month) DO UPDATE
		   SET energy_wh = excluded.energy_wh, period_wh = excluded.period_wh,
			   estimated = excluded.estimated, computed_at = now(), to_at = excluded.to_at
		 WHERE mu.estimated AND NOT excluded.estimated;
		GET DIAGNOSTICS v_n = ROW_COUNT;
		IF v_n > 0 THEN
			property_id := p.property_id; kind := 'month'; frozen_at := NULL;
			action := 'month_usage'; meters := v_n;
			RETURN NEXT;
		END IF;
	END LOOP;
END
$$;

INSERT INTO prepaid.job (job_name, command, schedule_interval) VALUES
	('freeze', 'SELECT * FROM prepaid.freeze_run()', interval '5 minutes');
