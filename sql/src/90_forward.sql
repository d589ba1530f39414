-- Data forwarding (F20): every day each meter's energy of the previous local
-- day (total and per TOU period) is pushed to the park's integrated platform
-- as JSON over HTTP(S) POST, through an outbox. forward_prepare() (SQL job)
-- writes one outbox row per property and day, catching up missed days;
-- the forward_send job (C, bgw/forward.c) posts due rows outside any
-- transaction with an Idempotency-Key and an HMAC-SHA256 signature,
-- retries failures (refused, timeout, 5xx) with backoff and records 4xx as
-- failed with the response. A day is never lost or duplicated: its row is
-- keyed by (property, day) and its key is stable across retries.
--
-- The energy of a reading interval counts on the local day in which the
-- interval ends, so every interval is forwarded exactly once.

CREATE TABLE prepaid.forward_outbox (
	property_id     bigint NOT NULL REFERENCES prepaid.property,
	day             date NOT NULL,
	idempotency_key text NOT NULL UNIQUE,
	payload         jsonb NOT NULL,
	status          text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'delivered', 'failed')),
	attempts        integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	last_attempt_at timestamptz,
	delivered_at    timestamptz,
	response_code   integer,
	response_body   text,
	last_error      text,
	created_at      timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (property_id, day)
);
CREATE INDEX forward_due ON prepaid.forward_outbox (next_attempt_at) WHERE status = 'pending';

-- Each meter's energy on one local day: total and per period, in kWh.
CREATE FUNCTION prepaid.daily_energy(p_property_id bigint, p_day date)
RETURNS TABLE (meter_id bigint, address text, kwh numeric, periods jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
	WITH p AS (SELECT time_zone FROM prepaid.property WHERE property_id = p_property_id),
	pairs AS (
		SELECT m.meter_id, m.address, m.tariff_id, (m.pt_ratio::bigint * m.ct_ratio) AS mult,
			   pr.read_at AS prev_at, r.read_at,
			   CASE WHEN r.energy_wh >= pr.energy_wh THEN r.energy_wh - pr.energy_wh
					ELSE m.register_modulus_wh - pr.energy_wh + r.energy_wh END AS d_wh,
			   r.rate_wh, pr.rate_wh AS prev_rate, m.register_modulus_wh AS modulus
		  FROM p
		  JOIN prepaid.meter m ON m.property_id = p_property_id
		  JOIN prepaid.reading r ON r.property_id = m.property_id AND r.meter_id = m.meter_id
			   AND r.read_at > (p_day::timestamp AT TIME ZONE p.time_zone)
			   AND r.read_at <= ((p_day + 1)::timestamp AT TIME ZONE p.time_zone)
		  CROSS JOIN LATERAL (
			   SELECT x.read_at, x.energy_wh, x.rate_wh FROM prepaid.reading x
				WHERE x.property_id = r.property_id AND x.meter_id = r.meter_id
				  AND x.read_at < r.read_at
				ORDER BY x.read_at DESC LIMIT 1) pr),
	parts AS (
		SELECT q.meter_id, s.period, s.kwh * q.mult AS kwh
		  FROM pairs q
		 CROSS JOIN LATERAL prepaid.tou_split(q.tariff_id, q.prev_at, q.read_at, q.d_wh / 1000.0) s
		 WHERE q.rate_wh IS NULL OR q.prev_rate IS NULL
			OR cardinality(q.rate_wh) <> cardinality(q.prev_rate)
		UNION ALL
		SELECT q.meter_id, tv.registers[i],
			   (CASE WHEN q.rate_wh[i] >= q.prev_rate[i] THEN q.rate_wh[i] - q.prev_rate[i]
					 ELSE q.modulus - q.prev_rate[i] + q.rate_wh[i] END) * q.mult / 1000.0
		  FROM pairs q
		  JOIN prepaid.tariff_version tv ON tv.tariff_id = q.tariff_id
			   AND q.read_at > tv.valid_from AND q.read_at <= tv.valid_to
		 CROSS JOIN LATERAL generate_subscripts(q.rate_wh, 1) i
		 WHERE cardinality(q.rate_wh) = cardinality(q.prev_rate) AND i <= cardinality(tv.registers)),
	per AS (
		SELECT meter_id, period, sum(kwh) AS kwh FROM parts GROUP BY 1, 2)
	SELECT t.meter_id, t.address, t.kwh, coalesce(
			   (SELECT jsonb_object_agg(per.period, per.kwh ORDER BY per.period)
				  FROM per WHERE per.meter_id = t.meter_id), '{}')
	  FROM (SELECT meter_id, address, round(sum(d_wh * mult) / 1000.0, 6) AS kwh
			  FROM pairs GROUP BY 1, 2) t
	 ORDER BY t.meter_id
$$;

-- Writes the outbox rows of every finished local day since the last one
-- (from yesterday on, the first time), once pg_prepaid.forward_time has
-- passed on the following day. Returns the days written.
CREATE FUNCTION prepaid.forward_prepare(p_now timestamptz DEFAULT now())
RETURNS TABLE (property_id bigint, day date, meters bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
#variable_conflict use_column
DECLARE
	p       record;
	d       date;
	v_last  date;
	v_local timestamp;
	v_time  time := coalesce(nullif(current_setting('pg_prepaid.forward_time', true), ''), '01:00')::time;
	v_doc   jsonb;
BEGIN
	FOR p IN SELECT * FROM prepaid.property ORDER BY property_id LOOP
		v_local := p_now AT TIME ZONE p.time_zone;
		SELECT max(o.day) INTO v_last FROM prepaid.forward_outbox o WHERE o.property_id = p.property_id;
		d := coalesce(v_last + 1, v_local::date - 1);
		WHILE (d + 1) + v_time <= v_local LOOP
			SELECT jsonb_build_object(
					   'property_id', p.property_id, 'property', p.name, 'day', d,
					   'time_zone', p.time_zone, 'unit', 'kWh',
					   'meters', coalesce(jsonb_agg(jsonb_build_object(
						   'meter_id', e.meter_id, 'address', e.address, 'kwh', e.kwh,
						   'periods', e.periods) ORDER BY e.meter_id), '[]'))
			  INTO v_doc
			  FROM prepaid.daily_energy(p.property_id, d) e;
			INSERT INTO prepaid.forward_outbox (property_id, day, idempotency_key, payload)
			VALUES (p.property_id, d, format('pg_prepaid-%s-%s', p.property_id, d), v_doc);
			property_id := p.property_id; day := d; meters := jsonb_array_length(v_doc->'meters');
			RETURN NEXT;
			d := d + 1;
		END LOOP;
	END LOOP;
END
$$;

INSERT INTO prepaid.job (job_name, command, schedule_interval) VALUES
	('forward_prepare', 'SELECT * FROM prepaid.forward_prepare()', interval '15 minutes'),
	('forward_send', 'internal:forward_send', interval '1 minute');
