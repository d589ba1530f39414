-- Baselines for the job benchmarks (bench/run_jobs.sh): the alarm rules and
-- the month-usage computation written the plain way, one meter at a time in
-- PL/pgSQL, doing what prepaid.alarms_run() and the month-usage step of
-- prepaid.freeze_run() do set-based. They write into the same tables so the
-- benchmark can check that both give the same result.

CREATE SCHEMA IF NOT EXISTS bench;

-- One meter at a time: read its latest reading and settings, evaluate each
-- rule, raise what holds (prepaid.alarm_raise dedupes) and clear what ended.
CREATE OR REPLACE FUNCTION bench.alarms_plpgsql(p_now timestamptz DEFAULT now())
RETURNS TABLE (raised bigint, cleared bigint) LANGUAGE plpgsql AS $$
DECLARE
	m     record;
	l     record;
	bal   numeric;
	warn  numeric;
	un    numeric;
	vmin  numeric;
	vmax  numeric;
	kinds text[];
	k     text;
	r     bigint := 0;
	c     bigint := 0;
BEGIN
	FOR m IN SELECT * FROM prepaid.meter ORDER BY property_id, meter_id LOOP
		kinds := '{}';
		SELECT * INTO l FROM prepaid.meter_latest x
		 WHERE x.property_id = m.property_id AND x.meter_id = m.meter_id;
		SELECT a.balance, a.warning_level INTO bal, warn FROM prepaid.account a
		 WHERE a.property_id = m.property_id AND a.account_id = m.account_id;
		un := m.voltage_nominal;
		IF l.read_at IS NOT NULL THEN
			vmin := least(l.voltage_a, CASE WHEN m.phase = 3 THEN l.voltage_b END,
						  CASE WHEN m.phase = 3 THEN l.voltage_c END);
			vmax := greatest(l.voltage_a, CASE WHEN m.phase = 3 THEN l.voltage_b END,
							 CASE WHEN m.phase = 3 THEN l.voltage_c END);
			IF m.phase = 3 AND vmin < 0.50 * un THEN
				kinds := kinds || 'phase_loss'::text;
			ELSIF vmin < coalesce(m.undervoltage_ratio, 0.85) * un THEN
				kinds := kinds || 'undervoltage'::text;
			END IF;
			IF vmax > coalesce(m.overvoltage_ratio, 1.10) * un THEN
				kinds := kinds || 'overvoltage'::text;
			END IF;
			IF l.relay_open AND m.relay_desired = 'closed' THEN
				kinds := kinds || 'relay_open_unexpected'::text;
			END IF;
			IF l.power_kw > m.power_threshold_kw THEN
				kinds := kinds || 'overload'::text;
			END IF;
		END IF;
		IF coalesce(l.read_at, m.opened_at, m.created_at) < p_now - m.read_interval * 2.5 THEN
			kinds := kinds || 'meter_offline'::text;
		END IF;
		IF m.mode = 'prepaid' AND bal < 0 THEN
			kinds := kinds || 'arrears'::text;
		END IF;
		IF m.mode = 'prepaid' AND bal < warn THEN
			kinds := kinds || 'low_balance'::text;
		END IF;
		FOREACH k IN ARRAY kinds LOOP
			IF prepaid.alarm_raise(m.property_id, m.meter_id, k) IS NOT NULL THEN
				r := r + 1;
			END IF;
		END LOOP;
		FOR k IN SELECT a.kind FROM prepaid.alarm a
				  WHERE a.property_id = m.property_id AND a.meter_id = m.meter_id
					AND a.cleared_at IS NULL AND NOT (a.kind = ANY (kinds))
					AND a.kind IN ('phase_loss', 'undervoltage', 'overvoltage', 'meter_offline',
								   'arrears', 'low_balance', 'relay_open_unexpected', 'overload') LOOP
			PERFORM prepaid.alarm_clear(m.property_id, m.meter_id, k);
			c := c + 1;
		END LOOP;
	END LOOP;
	RETURN QUERY SELECT r, c;
END
$$;

-- One meter at a time: find its two month-start freezes around p_month and
-- write the month's usage (total and per period from the registers).
CREATE OR REPLACE FUNCTION bench.month_usage_plpgsql(p_from timestamptz, p_to timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	m    record;
	f0   prepaid.freeze;
	f1   prepaid.freeze;
	regs text[];
	per  jsonb;
	d    bigint;
	n    bigint := 0;
BEGIN
	FOR m IN SELECT * FROM prepaid.meter ORDER BY property_id, meter_id LOOP
		SELECT * INTO f0 FROM prepaid.freeze f
		 WHERE f.property_id = m.property_id AND f.meter_id = m.meter_id AND f.kind = 'month'
		   AND f.frozen_at = p_from;
		SELECT * INTO f1 FROM prepaid.freeze f
		 WHERE f.property_id = m.property_id AND f.meter_id = m.meter_id AND f.kind = 'month'
		   AND f.frozen_at = p_to;
		CONTINUE WHEN f0.meter_id IS NULL OR f1.meter_id IS NULL;
		SELECT registers INTO regs FROM prepaid.tariff_version v
		 WHERE v.tariff_id = m.tariff_id AND p_from >= v.valid_from AND p_from < v.valid_to;
		per := '{}';
		IF f0.rate_wh IS NOT NULL AND f1.rate_wh IS NOT NULL THEN
			FOR i IN 1 .. least(cardinality(f1.rate_wh), cardinality(regs)) LOOP
				d := CASE WHEN f1.rate_wh[i] >= f0.rate_wh[i] THEN f1.rate_wh[i] - f0.rate_wh[i]
						  ELSE m.register_modulus_wh - f0.rate_wh[i] + f1.rate_wh[i] END;
				per := jsonb_set(per, ARRAY[regs[i]], to_jsonb(coalesce((per->>regs[i])::bigint, 0) + d));
			END LOOP;
		END IF;
		INSERT INTO prepaid.month_usage (property_id, meter_id, month, from_at, to_at, energy_wh,
										 period_wh, estimated)
		VALUES (m.property_id, m.meter_id,
				(p_from AT TIME ZONE (SELECT time_zone FROM prepaid.property p
									   WHERE p.property_id = m.property_id))::date,
				p_from, p_to,
				CASE WHEN f1.energy_wh >= f0.energy_wh THEN f1.energy_wh - f0.energy_wh
					 ELSE m.register_modulus_wh - f0.energy_wh + f1.energy_wh END,
				nullif(per, '{}'), f0.estimated OR f1.estimated);
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
