-- Rollups that reports read instead of raw readings (F15, F16, F19). A month
-- of 30-minute readings of 100,000 meters is 144 M rows; the overview, the
-- bills and the electrical history must never scan them. Kept incrementally
-- by statement-level triggers on prepaid.reading, in the transaction that
-- inserts (or deletes) the readings:
--
--   property_energy_hourly  energy per property and local hour (the overview)
--   meter_energy_daily      energy per meter and local day, total and per TOU
--                           period (daily reports)
--   meter_energy_monthly    the same per local month (bills of meters without
--                           rate registers)
--   electrical_daily        per meter and local day: sums, counts, minima and
--                           maxima of voltage, current, power, reactive power
--                           and power factor (secondary side; the api views
--                           apply PT/CT)
--
-- Energy: the energy of a reading interval (previous reading, reading] counts
-- in the local hour and day in which the interval ends (as daily_energy()
-- and the forwarding do), on the primary side (register delta x PT x CT, with
-- the ratios in force when it was rolled up), split over TOU periods by the
-- per-rate registers when both readings have them, otherwise by
-- prepaid.tou_split(). A register that goes backwards without a rollover
-- counts 0, as settlement charges nothing for it.
--
-- Incremental rule for energy: for each meter touched by a statement, take
-- the window from the stored reading before the first changed one on; the
-- rollups change by (intervals of the window after the change) - (intervals
-- before it), and intervals that did not change cancel out. Appending a
-- reading is one interval (the common case, recognised from meter_latest,
-- which the reading_latest trigger moves only after this one); a reading
-- inserted between two others, or a deleted one, re-splits the surrounding
-- interval exactly. Readings of one meter are written by one session at a
-- time (the ingest daemon owns a meter's connection): two transactions
-- appending to the same meter concurrently would each see the window
-- without the other's rows. Electrical samples are
-- additive on insert (a reading counts on the local day of its instant); a
-- delete recomputes the days it touched.
--
-- Triggers on prepaid.reading fire in name order: reading_aggregate runs
-- before reading_classify, so a row the classifier then moves to the
-- quarantine is added and removed again by the delete trigger (net zero).

CREATE TABLE prepaid.property_energy_hourly (
	property_id bigint NOT NULL REFERENCES prepaid.property ON DELETE CASCADE,
	hour        timestamptz NOT NULL,  -- start of the local hour (property time zone)
	energy_wh   bigint NOT NULL,
	PRIMARY KEY (property_id, hour)
);
COMMENT ON TABLE prepaid.property_energy_hourly IS
	'energy (primary side, Wh) of all meters of a property per local hour; the overview reads it';

CREATE TABLE prepaid.meter_energy_daily (
	property_id bigint NOT NULL,
	meter_id    bigint NOT NULL,
	day         date NOT NULL,         -- local day (property time zone) in which the intervals end
	energy_wh   bigint NOT NULL,       -- primary side
	sharp_kwh   numeric(18,6) NOT NULL DEFAULT 0,
	peak_kwh    numeric(18,6) NOT NULL DEFAULT 0,
	flat_kwh    numeric(18,6) NOT NULL DEFAULT 0,
	valley_kwh  numeric(18,6) NOT NULL DEFAULT 0,
	deep_kwh    numeric(18,6) NOT NULL DEFAULT 0,
	PRIMARY KEY (property_id, meter_id, day),
	FOREIGN KEY (property_id, meter_id) REFERENCES prepaid.meter (property_id, meter_id)
		ON DELETE CASCADE
) WITH (fillfactor = 70);	-- a day's row is updated with every reading: room for HOT updates
COMMENT ON TABLE prepaid.meter_energy_daily IS
	'energy of a meter per local day, total (Wh) and per TOU period (kWh), primary side';

CREATE TABLE prepaid.meter_energy_monthly (
	property_id bigint NOT NULL,
	meter_id    bigint NOT NULL,
	month       date NOT NULL,         -- first day of the local month in which the intervals end
	energy_wh   bigint NOT NULL,       -- primary side
	sharp_kwh   numeric(18,6) NOT NULL DEFAULT 0,
	peak_kwh    numeric(18,6) NOT NULL DEFAULT 0,
	flat_kwh    numeric(18,6) NOT NULL DEFAULT 0,
	valley_kwh  numeric(18,6) NOT NULL DEFAULT 0,
	deep_kwh    numeric(18,6) NOT NULL DEFAULT 0,
	PRIMARY KEY (property_id, meter_id, month),
	FOREIGN KEY (property_id, meter_id) REFERENCES prepaid.meter (property_id, meter_id)
		ON DELETE CASCADE
) WITH (fillfactor = 70);
COMMENT ON TABLE prepaid.meter_energy_monthly IS
	'energy of a meter per local month, total (Wh) and per TOU period (kWh), primary side: the sum of its days';

CREATE TABLE prepaid.electrical_daily (
	property_id   bigint NOT NULL,
	meter_id      bigint NOT NULL,
	day           date NOT NULL,       -- local day of the reading instants
	first_at      timestamptz NOT NULL,
	last_at       timestamptz NOT NULL,
	samples       integer NOT NULL,    -- readings
	n_voltage     integer NOT NULL,    -- readings with voltages (the block is read at once)
	voltage_a_sum numeric, voltage_b_sum numeric, voltage_c_sum numeric,
	voltage_a_min numeric(6,1), voltage_a_max numeric(6,1),
	voltage_b_min numeric(6,1), voltage_b_max numeric(6,1),
	voltage_c_min numeric(6,1), voltage_c_max numeric(6,1),
	n_current     integer NOT NULL,
	current_a_sum numeric, current_b_sum numeric, current_c_sum numeric,
	current_a_max numeric(8,3), current_b_max numeric(8,3), current_c_max numeric(8,3),
	n_power       integer NOT NULL,
	power_sum     numeric, power_max numeric(10,4),
	power_a_sum   numeric, power_b_sum numeric, power_c_sum numeric,
	n_reactive    integer NOT NULL,
	reactive_sum  numeric,
	n_pf          integer NOT NULL,
	pf_sum        numeric, pf_min numeric(4,3),
	PRIMARY KEY (property_id, meter_id, day),
	FOREIGN KEY (property_id, meter_id) REFERENCES prepaid.meter (property_id, meter_id)
		ON DELETE CASCADE
) WITH (fillfactor = 70);
COMMENT ON TABLE prepaid.electrical_daily IS
	'electrical parameters of a meter per local day as sums, counts, minima and maxima (secondary side)';

-- Register delta in Wh with the rollover rule of settlement (extension/settle.c):
-- a step backwards is a rollover only from the top 10 % of the register to
-- its bottom 10 % by at most 1 % of the modulus; any other backwards step is 0.
CREATE FUNCTION prepaid._register_delta(p_prev bigint, p_cur bigint, p_modulus bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN p_cur >= p_prev THEN p_cur - p_prev
				WHEN p_prev > p_modulus / 10 * 9 AND p_cur < p_modulus / 10
					 AND p_modulus - p_prev + p_cur <= p_modulus / 100
					THEN p_modulus - p_prev + p_cur
				ELSE 0 END
$$;

-- The energy of one interval per TOU period, kWh on the primary side, as
-- numeric[5] (sharp, peak, flat, valley, deep): from the per-rate registers
-- when both readings have the same number of them (mapped to periods by the
-- tariff version in force at the interval's end), otherwise the total split
-- over the tariff calendar (C, extension/tou_split.c).
CREATE FUNCTION prepaid._interval_kwh(p_tariff_id bigint, p_mult bigint, p_modulus bigint,
									  p_from timestamptz, p_to timestamptz, p_wh bigint,
									  p_prev_rate bigint[], p_rate bigint[])
RETURNS numeric[]
	AS 'MODULE_PATHNAME', 'prepaid_interval_kwh'
	LANGUAGE C STABLE PARALLEL SAFE;

-- The statement that applies a change of readings to the energy rollups:
-- the intervals of each touched meter's window after the change minus those
-- before it. p_source is a relation of changed rows with the columns of
-- prepaid.reading (a trigger's transition table, or a subquery); for an
-- insert they are already stored, for a delete (p_deleted) already gone.
-- Built as text and run with EXECUTE so that it is planned with the real
-- size of the batch (a transition table knows its row count).
CREATE FUNCTION prepaid._energy_sql(p_source text, p_deleted boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $f$
	SELECT format($q$
	WITH ch AS MATERIALIZED (
		SELECT c.property_id, c.meter_id, c.read_at, c.energy_wh, c.rate_wh FROM %1$s c),
	k AS MATERIALIZED (	-- per meter; reorder: stored readings after the first change exist
		SELECT ch.property_id, ch.meter_id, min(ch.read_at) AS lo, m.tariff_id,
			   m.pt_ratio::bigint * m.ct_ratio AS mult, m.register_modulus_wh AS modulus, p.time_zone,
			   %2$s OR coalesce(max(l.read_at) >= min(ch.read_at), false) AS reorder
		  FROM ch
		  JOIN prepaid.meter m ON m.property_id = ch.property_id AND m.meter_id = ch.meter_id
		  JOIN prepaid.property p ON p.property_id = ch.property_id
		  LEFT JOIN prepaid.meter_latest l ON l.property_id = ch.property_id AND l.meter_id = ch.meter_id
		 GROUP BY ch.property_id, ch.meter_id, m.tariff_id, m.pt_ratio, m.ct_ratio,
				  m.register_modulus_wh, p.time_zone),
	stored AS MATERIALIZED (	-- the window as it is now: the reading before the first change on
		SELECT k.property_id, k.meter_id, r.read_at, r.energy_wh, r.rate_wh, k.reorder
		  FROM k CROSS JOIN LATERAL (
				SELECT r.read_at, r.energy_wh, r.rate_wh FROM prepaid.reading r
				 WHERE k.reorder
				   AND r.property_id = k.property_id AND r.meter_id = k.meter_id AND r.read_at < k.lo
				 ORDER BY r.read_at DESC LIMIT 1) r
		UNION ALL	-- appended: that reading is meter_latest's
		SELECT k.property_id, k.meter_id, l.read_at, l.energy_wh, l.rate_wh, false
		  FROM k JOIN prepaid.meter_latest l ON l.property_id = k.property_id AND l.meter_id = k.meter_id
		 WHERE NOT k.reorder
		UNION ALL	-- appended: the new rows are all there is after it
		SELECT ch.*, false FROM ch
		  JOIN k ON k.property_id = ch.property_id AND k.meter_id = ch.meter_id
		 WHERE NOT k.reorder
		UNION ALL
		SELECT k.property_id, k.meter_id, r.read_at, r.energy_wh, r.rate_wh, true
		  FROM k JOIN prepaid.reading r
			ON r.property_id = k.property_id AND r.meter_id = k.meter_id AND r.read_at >= k.lo
		 WHERE k.reorder),
	sets AS (	-- +1: the window now; -1: the window before the change (only a
				-- reading when appended, so no interval)
		SELECT 1 AS sign, s.property_id, s.meter_id, s.read_at, s.energy_wh, s.rate_wh FROM stored s
		UNION ALL
		SELECT -1, s.property_id, s.meter_id, s.read_at, s.energy_wh, s.rate_wh FROM stored s
		 WHERE s.reorder AND (%2$s OR NOT EXISTS (
				SELECT 1 FROM ch WHERE ch.property_id = s.property_id
				   AND ch.meter_id = s.meter_id AND ch.read_at = s.read_at))
		UNION ALL
		SELECT -1, ch.* FROM ch WHERE %2$s),
	iv AS (
		SELECT s.sign, s.property_id, s.meter_id, s.read_at, s.energy_wh, s.rate_wh,
			   lag(s.read_at) OVER o AS prev_at, lag(s.energy_wh) OVER o AS prev_wh,
			   lag(s.rate_wh) OVER o AS prev_rate
		  FROM sets s
		WINDOW o AS (PARTITION BY s.sign, s.property_id, s.meter_id ORDER BY s.read_at)),
	e AS MATERIALIZED (
		SELECT iv.sign, iv.property_id, iv.meter_id, w.tariff_id, w.mult, w.modulus,
			   iv.prev_at, iv.read_at, iv.prev_rate, iv.rate_wh,
			   prepaid._register_delta(iv.prev_wh, iv.energy_wh, w.modulus) AS d_wh,
			   ((iv.read_at - interval '1 microsecond') AT TIME ZONE w.time_zone)::date AS day,
			   date_trunc('hour', iv.read_at - interval '1 microsecond', w.time_zone) AS hour
		  FROM iv JOIN k w ON w.property_id = iv.property_id AND w.meter_id = iv.meter_id
		 WHERE iv.prev_at IS NOT NULL),
	parts AS MATERIALIZED (	-- one row per interval: its energy, and its kWh per period (one call)
		SELECT e.property_id, e.meter_id, e.day, e.sign * e.d_wh * e.mult AS wh, e.sign AS sign,
			   CASE WHEN e.d_wh > 0 THEN prepaid._interval_kwh(e.tariff_id, e.mult, e.modulus,
					e.prev_at, e.read_at, e.d_wh, e.prev_rate, e.rate_wh) END AS k
		  FROM e),
	per_day AS (
		SELECT property_id, meter_id, day, sum(wh) AS wh,
			   coalesce(sum(sign * k[1]), 0) AS sharp, coalesce(sum(sign * k[2]), 0) AS peak,
			   coalesce(sum(sign * k[3]), 0) AS flat, coalesce(sum(sign * k[4]), 0) AS valley,
			   coalesce(sum(sign * k[5]), 0) AS deep
		  FROM parts GROUP BY 1, 2, 3),
	daily AS (
		INSERT INTO prepaid.meter_energy_daily AS x (property_id, meter_id, day, energy_wh,
			sharp_kwh, peak_kwh, flat_kwh, valley_kwh, deep_kwh)
		SELECT * FROM per_day
		 WHERE wh <> 0 OR sharp <> 0 OR peak <> 0 OR flat <> 0 OR valley <> 0 OR deep <> 0
		 ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE
		   SET energy_wh = x.energy_wh + excluded.energy_wh,
			   sharp_kwh = x.sharp_kwh + excluded.sharp_kwh,
			   peak_kwh = x.peak_kwh + excluded.peak_kwh,
			   flat_kwh = x.flat_kwh + excluded.flat_kwh,
			   valley_kwh = x.valley_kwh + excluded.valley_kwh,
			   deep_kwh = x.deep_kwh + excluded.deep_kwh),
	monthly AS (
		INSERT INTO prepaid.meter_energy_monthly AS x (property_id, meter_id, month, energy_wh,
			sharp_kwh, peak_kwh, flat_kwh, valley_kwh, deep_kwh)
		SELECT property_id, meter_id, date_trunc('month', day)::date, sum(wh), sum(sharp),
			   sum(peak), sum(flat), sum(valley), sum(deep)
		  FROM per_day
		 WHERE wh <> 0 OR sharp <> 0 OR peak <> 0 OR flat <> 0 OR valley <> 0 OR deep <> 0
		 GROUP BY 1, 2, 3
		 ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, month) DO UPDATE
		   SET energy_wh = x.energy_wh + excluded.energy_wh,
			   sharp_kwh = x.sharp_kwh + excluded.sharp_kwh,
			   peak_kwh = x.peak_kwh + excluded.peak_kwh,
			   flat_kwh = x.flat_kwh + excluded.flat_kwh,
			   valley_kwh = x.valley_kwh + excluded.valley_kwh,
			   deep_kwh = x.deep_kwh + excluded.deep_kwh)
	INSERT INTO prepaid.property_energy_hourly AS x (property_id, hour, energy_wh)
	SELECT property_id, hour, sum(sign * d_wh * mult) FROM e
	 GROUP BY 1, 2
	HAVING sum(sign * d_wh * mult) <> 0
	 ORDER BY 1, 2
	ON CONFLICT (property_id, hour) DO UPDATE SET energy_wh = x.energy_wh + excluded.energy_wh
	$q$, p_source, p_deleted::text)
$f$;

-- The statement that applies a change of readings to electrical_daily:
-- inserted samples are added; for deleted ones the touched days are
-- recomputed from the stored readings (and dropped when none is left).
CREATE FUNCTION prepaid._electrical_sql(p_source text, p_deleted boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $f$
	SELECT format($q$
	WITH k AS MATERIALIZED (	-- touched meter days, for a recompute
		SELECT DISTINCT c.property_id, c.meter_id, p.time_zone,
			   (c.read_at AT TIME ZONE p.time_zone)::date AS day
		  FROM %1$s c JOIN prepaid.property p ON p.property_id = c.property_id
		 WHERE %2$s),
	src AS (
		SELECT c.* FROM %1$s c WHERE NOT %2$s
		UNION ALL
		SELECT r.* FROM k JOIN prepaid.reading r
			ON r.property_id = k.property_id AND r.meter_id = k.meter_id
		   AND r.read_at >= (k.day::timestamp AT TIME ZONE k.time_zone)
		   AND r.read_at < ((k.day + 1)::timestamp AT TIME ZONE k.time_zone)),
	agg AS MATERIALIZED (
		SELECT s.property_id, s.meter_id, (s.read_at AT TIME ZONE p.time_zone)::date AS day,
			   min(s.read_at) AS first_at, max(s.read_at) AS last_at, count(*) AS samples,
			   count(s.voltage_a) AS n_voltage, sum(s.voltage_a) AS va_sum, sum(s.voltage_b) AS vb_sum,
			   sum(s.voltage_c) AS vc_sum, min(s.voltage_a) AS va_min, max(s.voltage_a) AS va_max,
			   min(s.voltage_b) AS vb_min, max(s.voltage_b) AS vb_max,
			   min(s.voltage_c) AS vc_min, max(s.voltage_c) AS vc_max,
			   count(s.current_a) AS n_current, sum(s.current_a) AS ia_sum,
			   sum(s.current_b) AS ib_sum, sum(s.current_c) AS ic_sum, max(s.current_a) AS ia_max,
			   max(s.current_b) AS ib_max, max(s.current_c) AS ic_max,
			   count(s.power_kw) AS n_power, sum(s.power_kw) AS p_sum, max(s.power_kw) AS p_max,
			   sum(s.power_a_kw) AS pa_sum, sum(s.power_b_kw) AS pb_sum, sum(s.power_c_kw) AS pc_sum,
			   count(s.reactive_kvar) AS n_reactive, sum(s.reactive_kvar) AS q_sum,
			   count(s.power_factor) AS n_pf, sum(s.power_factor) AS pf_sum,
			   min(s.power_factor) AS pf_min
		  FROM src s
		  JOIN prepaid.meter m ON m.property_id = s.property_id AND m.meter_id = s.meter_id
		  JOIN prepaid.property p ON p.property_id = s.property_id
		 GROUP BY 1, 2, 3),
	up AS (
		INSERT INTO prepaid.electrical_daily AS x (property_id, meter_id, day, first_at, last_at,
			samples, n_voltage, voltage_a_sum, voltage_b_sum, voltage_c_sum, voltage_a_min,
			voltage_a_max, voltage_b_min, voltage_b_max, voltage_c_min, voltage_c_max, n_current,
			current_a_sum, current_b_sum, current_c_sum, current_a_max, current_b_max,
			current_c_max, n_power, power_sum, power_max, power_a_sum, power_b_sum, power_c_sum,
			n_reactive, reactive_sum, n_pf, pf_sum, pf_min)
		SELECT * FROM agg ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE SET %3$s)
	DELETE FROM prepaid.electrical_daily x
	 USING k
	 WHERE x.property_id = k.property_id AND x.meter_id = k.meter_id AND x.day = k.day
	   AND NOT EXISTS (SELECT 1 FROM agg a WHERE a.property_id = k.property_id
						  AND a.meter_id = k.meter_id AND a.day = k.day)
	$q$, p_source, p_deleted::text,
	CASE WHEN p_deleted THEN	-- recomputed days replace the stored ones
		'first_at = excluded.first_at, last_at = excluded.last_at, samples = excluded.samples, '
		'n_voltage = excluded.n_voltage, voltage_a_sum = excluded.voltage_a_sum, '
		'voltage_b_sum = excluded.voltage_b_sum, voltage_c_sum = excluded.voltage_c_sum, '
		'voltage_a_min = excluded.voltage_a_min, voltage_a_max = excluded.voltage_a_max, '
		'voltage_b_min = excluded.voltage_b_min, voltage_b_max = excluded.voltage_b_max, '
		'voltage_c_min = excluded.voltage_c_min, voltage_c_max = excluded.voltage_c_max, '
		'n_current = excluded.n_current, current_a_sum = excluded.current_a_sum, '
		'current_b_sum = excluded.current_b_sum, current_c_sum = excluded.current_c_sum, '
		'current_a_max = excluded.current_a_max, current_b_max = excluded.current_b_max, '
		'current_c_max = excluded.current_c_max, n_power = excluded.n_power, '
		'power_sum = excluded.power_sum, power_max = excluded.power_max, '
		'power_a_sum = excluded.power_a_sum, power_b_sum = excluded.power_b_sum, '
		'power_c_sum = excluded.power_c_sum, n_reactive = excluded.n_reactive, '
		'reactive_sum = excluded.reactive_sum, n_pf = excluded.n_pf, pf_sum = excluded.pf_sum, '
		'pf_min = excluded.pf_min'
	ELSE	-- inserted samples are added
		'first_at = least(x.first_at, excluded.first_at), '
		'last_at = greatest(x.last_at, excluded.last_at), samples = x.samples + excluded.samples, '
		'n_voltage = x.n_voltage + excluded.n_voltage, '
		'voltage_a_sum = prepaid._add(x.voltage_a_sum, excluded.voltage_a_sum), '
		'voltage_b_sum = prepaid._add(x.voltage_b_sum, excluded.voltage_b_sum), '
		'voltage_c_sum = prepaid._add(x.voltage_c_sum, excluded.voltage_c_sum), '
		'voltage_a_min = least(x.voltage_a_min, excluded.voltage_a_min), '
		'voltage_a_max = greatest(x.voltage_a_max, excluded.voltage_a_max), '
		'voltage_b_min = least(x.voltage_b_min, excluded.voltage_b_min), '
		'voltage_b_max = greatest(x.voltage_b_max, excluded.voltage_b_max), '
		'voltage_c_min = least(x.voltage_c_min, excluded.voltage_c_min), '
		'voltage_c_max = greatest(x.voltage_c_max, excluded.voltage_c_max), '
		'n_current = x.n_current + excluded.n_current, '
		'current_a_sum = prepaid._add(x.current_a_sum, excluded.current_a_sum), '
		'current_b_sum = prepaid._add(x.current_b_sum, excluded.current_b_sum), '
		'current_c_sum = prepaid._add(x.current_c_sum, excluded.current_c_sum), '
		'current_a_max = greatest(x.current_a_max, excluded.current_a_max), '
		'current_b_max = greatest(x.current_b_max, excluded.current_b_max), '
		'current_c_max = greatest(x.current_c_max, excluded.current_c_max), '
		'n_power = x.n_power + excluded.n_power, '
		'power_sum = prepaid._add(x.power_sum, excluded.power_sum), '
		'power_max = greatest(x.power_max, excluded.power_max), '
		'power_a_sum = prepaid._add(x.power_a_sum, excluded.power_a_sum), '
		'power_b_sum = prepaid._add(x.power_b_sum, excluded.power_b_sum), '
		'power_c_sum = prepaid._add(x.power_c_sum, excluded.power_c_sum), '
		'n_reactive = x.n_reactive + excluded.n_reactive, '
		'reactive_sum = prepaid._add(x.reactive_sum, excluded.reactive_sum), '
		'n_pf = x.n_pf + excluded.n_pf, pf_sum = prepaid._add(x.pf_sum, excluded.pf_sum), '
		'pf_min = least(x.pf_min, excluded.pf_min)'
	END)
$f$;

-- NULL-tolerant sum of two partial sums (NULL + NULL is NULL).
CREATE FUNCTION prepaid._add(a numeric, b numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE a + b END
$$;

-- Transition tables are visible only to statements of the trigger function
-- itself, so the statements run here. JIT compilation of these large
-- statements costs more than it saves (seconds per batch), so it is off.
--
-- The common case has a statement of its own: a meter with one row in the
-- batch, later than its meter_latest reading (which the classify trigger
-- moves only after this one), appends one interval whose predecessor is
-- meter_latest's reading, and one electrical sample. One pass over the
-- batch (index probes of meter and meter_latest per row, never the reading
-- table) computes each interval once and adds it to the daily, monthly and
-- hourly rows, and adds each sample to its day; no aggregation, since each
-- meter has one row. The meters of every other row (several rows of a
-- meter, a reading before the meter's newest, a meter's first reading) go
-- through the general statements above, which handle any change.
CREATE FUNCTION prepaid._reading_rollup_insert() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
DECLARE
	v_p bigint[];
	v_m bigint[];
	v_src constant text := '(SELECT n.* FROM new_rows n JOIN unnest($1::bigint[], $2::bigint[]) AS s(p, m)'
						   ' ON n.property_id = s.p AND n.meter_id = s.m)';
BEGIN
	WITH c AS MATERIALIZED (	-- each row with its meter and that meter's newest stored reading
		SELECT n.property_id, n.meter_id, n.read_at, n.energy_wh, n.rate_wh, n.voltage_a,
			   n.voltage_b, n.voltage_c, n.current_a, n.current_b, n.current_c, n.power_kw,
			   n.power_a_kw, n.power_b_kw, n.power_c_kw, n.reactive_kvar, n.power_factor,
			   x.tariff_id, x.mult, x.modulus, x.prev_at, x.prev_wh, x.prev_rate
		  FROM new_rows n
		 CROSS JOIN LATERAL (	-- index probes (a hash join would read the whole park)
				SELECT m.tariff_id, m.pt_ratio::bigint * m.ct_ratio AS mult,
					   m.register_modulus_wh AS modulus, l.read_at AS prev_at,
					   l.energy_wh AS prev_wh, l.rate_wh AS prev_rate
				  FROM prepaid.meter m
				  LEFT JOIN prepaid.meter_latest l
					ON l.property_id = m.property_id AND l.meter_id = m.meter_id
				 WHERE m.property_id = n.property_id AND m.meter_id = n.meter_id
				OFFSET 0) x),
	many AS (
		SELECT c.property_id, c.meter_id FROM c GROUP BY 1, 2 HAVING count(*) > 1),
	f AS MATERIALIZED (	-- the appended rows
		SELECT c.*, p.time_zone, prepaid._register_delta(c.prev_wh, c.energy_wh, c.modulus) AS d_wh
		  FROM c JOIN prepaid.property p ON p.property_id = c.property_id
		 WHERE c.read_at > c.prev_at
		   AND NOT EXISTS (SELECT 1 FROM many
							WHERE many.property_id = c.property_id AND many.meter_id = c.meter_id)),
	e AS MATERIALIZED (	-- their intervals with energy: local day and hour, kWh per period
		SELECT f.property_id, f.meter_id, f.d_wh * f.mult AS wh,
			   ((f.read_at - interval '1 microsecond') AT TIME ZONE f.time_zone)::date AS day,
			   date_trunc('hour', f.read_at - interval '1 microsecond', f.time_zone) AS hour,
			   prepaid._interval_kwh(f.tariff_id, f.mult, f.modulus, f.prev_at, f.read_at, f.d_wh,
									 f.prev_rate, f.rate_wh) AS k
		  FROM f WHERE f.d_wh > 0),
	daily AS (
		INSERT INTO prepaid.meter_energy_daily AS x (property_id, meter_id, day, energy_wh,
			sharp_kwh, peak_kwh, flat_kwh, valley_kwh, deep_kwh)
		SELECT e.property_id, e.meter_id, e.day, e.wh, e.k[1], e.k[2], e.k[3], e.k[4], e.k[5]
		  FROM e ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE
		   SET energy_wh = x.energy_wh + excluded.energy_wh,
			   sharp_kwh = x.sharp_kwh + excluded.sharp_kwh,
			   peak_kwh = x.peak_kwh + excluded.peak_kwh,
			   flat_kwh = x.flat_kwh + excluded.flat_kwh,
			   valley_kwh = x.valley_kwh + excluded.valley_kwh,
			   deep_kwh = x.deep_kwh + excluded.deep_kwh),
	monthly AS (
		INSERT INTO prepaid.meter_energy_monthly AS x (property_id, meter_id, month, energy_wh,
			sharp_kwh, peak_kwh, flat_kwh, valley_kwh, deep_kwh)
		SELECT e.property_id, e.meter_id, date_trunc('month', e.day)::date, e.wh, e.k[1], e.k[2],
			   e.k[3], e.k[4], e.k[5]
		  FROM e ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, month) DO UPDATE
		   SET energy_wh = x.energy_wh + excluded.energy_wh,
			   sharp_kwh = x.sharp_kwh + excluded.sharp_kwh,
			   peak_kwh = x.peak_kwh + excluded.peak_kwh,
			   flat_kwh = x.flat_kwh + excluded.flat_kwh,
			   valley_kwh = x.valley_kwh + excluded.valley_kwh,
			   deep_kwh = x.deep_kwh + excluded.deep_kwh),
	hourly AS (
		INSERT INTO prepaid.property_energy_hourly AS x (property_id, hour, energy_wh)
		SELECT e.property_id, e.hour, sum(e.wh) FROM e GROUP BY 1, 2 ORDER BY 1, 2
		ON CONFLICT (property_id, hour) DO UPDATE SET energy_wh = x.energy_wh + excluded.energy_wh),
	electrical AS (	-- one sample per meter: its values are the day's partial sums
		INSERT INTO prepaid.electrical_daily AS x (property_id, meter_id, day, first_at, last_at,
			samples, n_voltage, voltage_a_sum, voltage_b_sum, voltage_c_sum, voltage_a_min,
			voltage_a_max, voltage_b_min, voltage_b_max, voltage_c_min, voltage_c_max, n_current,
			current_a_sum, current_b_sum, current_c_sum, current_a_max, current_b_max,
			current_c_max, n_power, power_sum, power_max, power_a_sum, power_b_sum, power_c_sum,
			n_reactive, reactive_sum, n_pf, pf_sum, pf_min)
		SELECT f.property_id, f.meter_id, (f.read_at AT TIME ZONE f.time_zone)::date, f.read_at,
			   f.read_at, 1, (f.voltage_a IS NOT NULL)::int, f.voltage_a, f.voltage_b, f.voltage_c,
			   f.voltage_a, f.voltage_a, f.voltage_b, f.voltage_b, f.voltage_c, f.voltage_c,
			   (f.current_a IS NOT NULL)::int, f.current_a, f.current_b, f.current_c, f.current_a,
			   f.current_b, f.current_c, (f.power_kw IS NOT NULL)::int, f.power_kw, f.power_kw,
			   f.power_a_kw, f.power_b_kw, f.power_c_kw, (f.reactive_kvar IS NOT NULL)::int,
			   f.reactive_kvar, (f.power_factor IS NOT NULL)::int, f.power_factor, f.power_factor
		  FROM f ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE SET
		   first_at = least(x.first_at, excluded.first_at),
		   last_at = greatest(x.last_at, excluded.last_at), samples = x.samples + 1,
		   n_voltage = x.n_voltage + excluded.n_voltage,
		   voltage_a_sum = prepaid._add(x.voltage_a_sum, excluded.voltage_a_sum),
		   voltage_b_sum = prepaid._add(x.voltage_b_sum, excluded.voltage_b_sum),
		   voltage_c_sum = prepaid._add(x.voltage_c_sum, excluded.voltage_c_sum),
		   voltage_a_min = least(x.voltage_a_min, excluded.voltage_a_min),
		   voltage_a_max = greatest(x.voltage_a_max, excluded.voltage_a_max),
		   voltage_b_min = least(x.voltage_b_min, excluded.voltage_b_min),
		   voltage_b_max = greatest(x.voltage_b_max, excluded.voltage_b_max),
		   voltage_c_min = least(x.voltage_c_min, excluded.voltage_c_min),
		   voltage_c_max = greatest(x.voltage_c_max, excluded.voltage_c_max),
		   n_current = x.n_current + excluded.n_current,
		   current_a_sum = prepaid._add(x.current_a_sum, excluded.current_a_sum),
		   current_b_sum = prepaid._add(x.current_b_sum, excluded.current_b_sum),
		   current_c_sum = prepaid._add(x.current_c_sum, excluded.current_c_sum),
		   current_a_max = greatest(x.current_a_max, excluded.current_a_max),
		   current_b_max = greatest(x.current_b_max, excluded.current_b_max),
		   current_c_max = greatest(x.current_c_max, excluded.current_c_max),
		   n_power = x.n_power + excluded.n_power,
		   power_sum = prepaid._add(x.power_sum, excluded.power_sum),
		   power_max = greatest(x.power_max, excluded.power_max),
		   power_a_sum = prepaid._add(x.power_a_sum, excluded.power_a_sum),
		   power_b_sum = prepaid._add(x.power_b_sum, excluded.power_b_sum),
		   power_c_sum = prepaid._add(x.power_c_sum, excluded.power_c_sum),
		   n_reactive = x.n_reactive + excluded.n_reactive,
		   reactive_sum = prepaid._add(x.reactive_sum, excluded.reactive_sum),
		   n_pf = x.n_pf + excluded.n_pf, pf_sum = prepaid._add(x.pf_sum, excluded.pf_sum),
		   pf_min = least(x.pf_min, excluded.pf_min))
	SELECT array_agg(s.property_id), array_agg(s.meter_id) INTO v_p, v_m
	  FROM (SELECT c.property_id, c.meter_id FROM c WHERE NOT coalesce(c.read_at > c.prev_at, false)
			UNION SELECT many.property_id, many.meter_id FROM many) s;
	IF v_p IS NOT NULL THEN	-- the other meters' rows
		EXECUTE prepaid._energy_sql(v_src, false) USING v_p, v_m;
		EXECUTE prepaid._electrical_sql(v_src, false) USING v_p, v_m;
	END IF;
	RETURN NULL;
END
$$;

CREATE FUNCTION prepaid._reading_rollup_delete() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM old_rows) THEN
		EXECUTE prepaid._energy_sql('old_rows', true);
		EXECUTE prepaid._electrical_sql('old_rows', true);
	END IF;
	RETURN NULL;
END
$$;

-- "aggregate" sorts before "classify": see the header.
CREATE TRIGGER reading_aggregate AFTER INSERT ON prepaid.reading
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION prepaid._reading_rollup_insert();
CREATE TRIGGER reading_aggregate_delete AFTER DELETE ON prepaid.reading
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION prepaid._reading_rollup_delete();

-- Recomputes the rollups of one property from its stored readings, from the
-- local day p_from on (all history when NULL): after a PT/CT correction, a
-- tariff's registers fixed, or readings loaded with the triggers disabled.
-- Blocks inserts of readings until the calling transaction ends. Returns
-- the number of readings rolled up.
CREATE FUNCTION prepaid.rollup_rebuild(p_property_id bigint, p_from date DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
DECLARE
	v_tz    text;
	v_start timestamptz;
	v_lo    bigint := -1;
	v_hi    bigint;
	v_total bigint := 0;
	v_n     bigint;
	v_src   text;
	v_chunk constant integer := 2000;
BEGIN
	SELECT time_zone INTO v_tz FROM prepaid.property WHERE property_id = p_property_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'property % does not exist', p_property_id USING ERRCODE = 'no_data_found';
	END IF;
	v_start := coalesce(p_from::timestamp AT TIME ZONE v_tz, '-infinity');
	-- readings must not change meanwhile: inserts wait until this transaction
	-- ends (and so does another rebuild)
	LOCK TABLE prepaid.reading IN SHARE ROW EXCLUSIVE MODE;
	-- appended readings take their predecessor from meter_latest: make it
	-- each meter's newest stored reading again (loads with the triggers
	-- disabled, or updated readings, may have left it behind)
	WITH newest AS MATERIALIZED (
		SELECT m.property_id, m.meter_id, r.*
		  FROM prepaid.meter m
		  LEFT JOIN LATERAL (
				SELECT r.read_at AS r_at, r.energy_wh, r.rate_wh, r.voltage_a, r.voltage_b,
					   r.voltage_c, r.current_a, r.current_b, r.current_c, r.power_kw,
					   r.power_factor, r.demand_kw, r.relay_open, r.received_at
				  FROM prepaid.reading r
				 WHERE r.property_id = m.property_id AND r.meter_id = m.meter_id
				 ORDER BY r.read_at DESC LIMIT 1) r ON true
		 WHERE m.property_id = p_property_id),
	dropped AS (
		DELETE FROM prepaid.meter_latest l USING newest n
		 WHERE l.property_id = n.property_id AND l.meter_id = n.meter_id AND n.r_at IS NULL)
	INSERT INTO prepaid.meter_latest AS l (property_id, meter_id, read_at, energy_wh, rate_wh,
		voltage_a, voltage_b, voltage_c, current_a, current_b, current_c, power_kw,
		power_factor, demand_kw, relay_open, received_at)
	SELECT n.property_id, n.meter_id, n.r_at, n.energy_wh, n.rate_wh, n.voltage_a, n.voltage_b,
		   n.voltage_c, n.current_a, n.current_b, n.current_c, n.power_kw, n.power_factor,
		   n.demand_kw, n.relay_open, n.received_at
	  FROM newest n WHERE n.r_at IS NOT NULL
	ON CONFLICT (property_id, meter_id) DO UPDATE
	   SET read_at = excluded.read_at, energy_wh = excluded.energy_wh, rate_wh = excluded.rate_wh,
		   voltage_a = excluded.voltage_a, voltage_b = excluded.voltage_b,
		   voltage_c = excluded.voltage_c, current_a = excluded.current_a,
		   current_b = excluded.current_b, current_c = excluded.current_c,
		   power_kw = excluded.power_kw, power_factor = excluded.power_factor,
		   demand_kw = excluded.demand_kw, relay_open = excluded.relay_open,
		   received_at = excluded.received_at
	 WHERE (l.read_at, l.energy_wh, l.rate_wh) IS DISTINCT FROM
		   (excluded.read_at, excluded.energy_wh, excluded.rate_wh);
	DELETE FROM prepaid.property_energy_hourly WHERE property_id = p_property_id AND hour >= v_start;
	DELETE FROM prepaid.meter_energy_daily
	 WHERE property_id = p_property_id AND day >= coalesce(p_from, '-infinity');
	DELETE FROM prepaid.electrical_daily
	 WHERE property_id = p_property_id AND day >= coalesce(p_from, '-infinity');
	LOOP	-- a few thousand meters per statement
		SELECT max(meter_id) INTO v_hi FROM (
			SELECT meter_id FROM prepaid.meter WHERE property_id = p_property_id AND meter_id > v_lo
			 ORDER BY meter_id LIMIT v_chunk) x;
		EXIT WHEN v_hi IS NULL;
		-- energy: intervals ending after the start; samples: instants from the start on
		v_src := format('(SELECT * FROM prepaid.reading WHERE property_id = %s AND meter_id > %s '
						'AND meter_id <= %s AND read_at %%s %L)', p_property_id, v_lo, v_hi, v_start);
		EXECUTE prepaid._energy_sql(format(v_src, '>'), false);
		EXECUTE prepaid._electrical_sql(format(v_src, '>='), false);
		EXECUTE format('SELECT count(*) FROM %s s', format(v_src, '>=')) INTO v_n;
		v_total := v_total + v_n;
		v_lo := v_hi;
	END LOOP;
	-- the months from p_from's on are the sums of their days
	DELETE FROM prepaid.meter_energy_monthly
	 WHERE property_id = p_property_id AND month >= coalesce(date_trunc('month', p_from)::date, '-infinity');
	INSERT INTO prepaid.meter_energy_monthly (property_id, meter_id, month, energy_wh, sharp_kwh,
											  peak_kwh, flat_kwh, valley_kwh, deep_kwh)
	SELECT property_id, meter_id, date_trunc('month', day)::date, sum(energy_wh), sum(sharp_kwh),
		   sum(peak_kwh), sum(flat_kwh), sum(valley_kwh), sum(deep_kwh)
	  FROM prepaid.meter_energy_daily
	 WHERE property_id = p_property_id
	   AND day >= coalesce(date_trunc('month', p_from)::date, '-infinity')
	 GROUP BY 1, 2, 3;
	RETURN v_total;
END
$$;
COMMENT ON FUNCTION prepaid.rollup_rebuild(bigint, date) IS
	'recompute the energy and electrical rollups of a property from its readings, from a local day on';
