-- Demand (F10): each meter's average active power per 15-minute window, from
-- the demand the meter reports (DL/T 645 current demand, 02 80 00 04) or,
-- where readings are dense enough to cover the whole window, computed from
-- the energy registers; and each month's maximum demand with its window.
-- The "demand" job recomputes the recent past (idempotent upserts).

CREATE TABLE prepaid.demand (
	property_id  bigint NOT NULL,
	meter_id     bigint NOT NULL,
	window_start timestamptz NOT NULL,
	demand_kw    numeric(12,4) NOT NULL,
	source       text NOT NULL CHECK (source IN ('meter', 'computed')),
	PRIMARY KEY (property_id, meter_id, window_start),
	FOREIGN KEY (property_id, meter_id) REFERENCES prepaid.meter (property_id, meter_id)
		ON DELETE CASCADE
);

CREATE TABLE prepaid.demand_max (
	property_id bigint NOT NULL,
	meter_id    bigint NOT NULL,
	month       date NOT NULL,         -- first day of the month in the property's zone
	max_kw      numeric(12,4) NOT NULL,
	max_at      timestamptz NOT NULL,  -- start of the window
	PRIMARY KEY (property_id, meter_id, month),
	FOREIGN KEY (property_id, meter_id) REFERENCES prepaid.meter (property_id, meter_id)
		ON DELETE CASCADE
);
COMMENT ON TABLE prepaid.demand_max IS 'monthly maximum 15-minute demand: the capacity-charge basis';

CREATE FUNCTION prepaid.demand_run(p_lookback interval DEFAULT '2 hours', p_now timestamptz DEFAULT now())
RETURNS TABLE (windows bigint, maxima bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
DECLARE
	v_from    timestamptz := p_now - p_lookback;
	v_windows bigint;
	v_maxima  bigint;
BEGIN
	WITH r AS (
		SELECT r.property_id, r.meter_id, r.read_at, r.energy_wh, r.demand_kw,
			   (m.pt_ratio::bigint * m.ct_ratio) AS mult, m.register_modulus_wh AS modulus,
			   lag(r.read_at) OVER w AS prev_at, lag(r.energy_wh) OVER w AS prev_wh,
			   date_bin('15 minutes', r.read_at - interval '1 microsecond',
						TIMESTAMPTZ '2000-01-01 00:00+00') AS win
		  FROM prepaid.reading r
		  JOIN prepaid.meter m ON m.property_id = r.property_id AND m.meter_id = r.meter_id
		 WHERE r.read_at > v_from - interval '15 minutes' AND r.read_at <= p_now
		WINDOW w AS (PARTITION BY r.property_id, r.meter_id ORDER BY r.read_at)),
	reported AS (
		SELECT DISTINCT ON (property_id, meter_id, win)
			   property_id, meter_id, win, round(demand_kw * mult, 4) AS kw
		  FROM r WHERE demand_kw IS NOT NULL AND win >= v_from - interval '15 minutes'
		 ORDER BY property_id, meter_id, win, read_at DESC),
	computed AS (
		SELECT property_id, meter_id, win,
			   round(sum(CASE WHEN energy_wh >= prev_wh THEN energy_wh - prev_wh
							  ELSE modulus - prev_wh + energy_wh END * mult)::numeric
					 / 1000 / 0.25, 4) AS kw
		  FROM r
		 WHERE prev_at IS NOT NULL AND prev_at >= win     -- the pair lies inside the window
		 GROUP BY property_id, meter_id, win
		HAVING sum(extract(epoch FROM read_at - prev_at)) = 900),  -- and covers all of it
	d AS (
		SELECT property_id, meter_id, win, kw, 'meter' AS source FROM reported
		UNION ALL
		SELECT c.property_id, c.meter_id, c.win, c.kw, 'computed' FROM computed c
		 WHERE NOT EXISTS (SELECT 1 FROM reported p WHERE p.property_id = c.property_id
							 AND p.meter_id = c.meter_id AND p.win = c.win)),
	up AS (
		INSERT INTO prepaid.demand AS x (property_id, meter_id, window_start, demand_kw, source)
		SELECT property_id, meter_id, win, kw, source FROM d
		ON CONFLICT (property_id, meter_id, window_start) DO UPDATE
		   SET demand_kw = excluded.demand_kw, source = excluded.source
		 WHERE x.demand_kw <> excluded.demand_kw OR x.source <> excluded.source
		RETURNING 1)
	SELECT count(*) INTO v_windows FROM up;

	WITH mx AS (
		SELECT DISTINCT ON (d.property_id, d.meter_id, month)
			   d.property_id, d.meter_id,
			   date_trunc('month', d.window_start AT TIME ZONE p.time_zone)::date AS month,
			   d.demand_kw, d.window_start
		  FROM prepaid.demand d
		  JOIN prepaid.property p ON p.property_id = d.property_id
		 WHERE d.window_start >= v_from - interval '15 minutes'
		 ORDER BY d.property_id, d.meter_id, month, d.demand_kw DESC, d.window_start),
	up AS (
		INSERT INTO prepaid.demand_max AS x (property_id, meter_id, month, max_kw, max_at)
		SELECT property_id, meter_id, month, demand_kw, window_start FROM mx
		ON CONFLICT (property_id, meter_id, month) DO UPDATE
		   SET max_kw = excluded.max_kw, max_at = excluded.max_at
		 WHERE excluded.max_kw > x.max_kw
		RETURNING 1)
	SELECT count(*) INTO v_maxima FROM up;
	RETURN QUERY SELECT v_windows, v_maxima;
END
$$;

INSERT INTO prepaid.job (job_name, command, schedule_interval) VALUES
	('demand', 'SELECT * FROM prepaid.demand_run()', interval '5 minutes');
