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
-- before it), and intervals that did not change cancel out. A reading
-- inserted between two others, or a deleted one, re-splits the surrounding
-- interval exactly. Electrical samples are additive on insert (a reading
-- counts on the local day of its instant); a delete recomputes the days it
-- touched. Readings of one meter are written by one session at a time (the
-- ingest daemon owns a meter's connection): two transactions appending to
-- the same meter concurrently would each see the window without the other's
-- rows.
--
-- Appending (the common case: a meter's one row of a batch, later than its
-- newest stored reading) is one interval whose predecessor is the meter's
-- prepaid.meter_latest row, and one sample. It writes one row per reading:
-- the meter's meter_latest row, which also holds the meter's open day, the
-- energy of its intervals ending on day e_day and its samples of day x_day
-- that are not in the daily tables yet (each day row would otherwise be
-- rewritten with every reading). When a meter's interval ends on another
-- day, the open day moves into the tables (once per meter and day). So the
-- daily and monthly relations are views: the stored rows (*_store) plus the
-- open days, and they are exact at every moment:
--   meter_energy_daily    = meter_energy_daily_store   + meter_latest e_day
--   meter_energy_monthly  = meter_energy_monthly_store + meter_latest e_day
--   electrical_daily      = electrical_daily_store     + meter_latest x_day
-- A store never has a row of a meter's open day: an open day that ends
-- moves into the stores; an append that opens a day whose samples are
-- stored takes them out of the store, one whose energy is stored (after a
-- change of that day went through the stores) adds to the store instead
-- until the next day. The monthly store is the sum of the daily store. Every other change first
-- moves the open days of the meters it touches into the stores
-- (prepaid._rollup_flush) and then works on the stores alone.
--
-- Triggers on prepaid.reading fire in name order: reading_aggregate runs
-- before reading_classify, so a row the classifier then moves to the
-- quarantine is added and removed again by the delete trigger (net zero);
-- reading_classify keeps meter_latest for the rows the append statement did
-- not take.

CREATE TABLE prepaid.property_energy_hourly (
	property_id bigint NOT NULL REFERENCES prepaid.property ON DELETE CASCADE,
	hour        timestamptz NOT NULL,  -- start of the local hour (property time zone)
	energy_wh   bigint NOT NULL,
	PRIMARY KEY (property_id, hour)
);
COMMENT ON TABLE prepaid.property_energy_hourly IS
	'energy (primary side, Wh) of all meters of a property per local hour; the overview reads it';

CREATE TABLE prepaid.meter_energy_daily_store (
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
COMMENT ON TABLE prepaid.meter_energy_daily_store IS
	'energy of a meter per local day, total (Wh) and per TOU period (kWh), primary side, but its open day (see meter_energy_daily)';

CREATE TABLE prepaid.meter_energy_monthly_store (
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
COMMENT ON TABLE prepaid.meter_energy_monthly_store IS
	'energy of a meter per local month, total (Wh) and per TOU period (kWh), primary side: the sum of its stored days';

CREATE TABLE prepaid.electrical_daily_store (
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
COMMENT ON TABLE prepaid.electrical_daily_store IS
	'electrical parameters of a meter per local day as sums, counts, minima and maxima (secondary side), but its open day (see electrical_daily)';

-- The open day of each meter (see the header): energy of the intervals
-- ending on local day e_day, samples of local day x_day; NULL when none.
ALTER TABLE prepaid.meter_latest
	ADD COLUMN e_day date,
	ADD COLUMN e_energy_wh bigint,
	ADD COLUMN e_sharp_kwh numeric(18,6),
	ADD COLUMN e_peak_kwh numeric(18,6),
	ADD COLUMN e_flat_kwh numeric(18,6),
	ADD COLUMN e_valley_kwh numeric(18,6),
	ADD COLUMN e_deep_kwh numeric(18,6),
	ADD COLUMN x_day date,
	ADD COLUMN x_first_at timestamptz,
	ADD COLUMN x_last_at timestamptz,
	ADD COLUMN x_samples integer,
	ADD COLUMN x_n_voltage integer,
	ADD COLUMN x_voltage_a_sum numeric,
	ADD COLUMN x_voltage_b_sum numeric,
	ADD COLUMN x_voltage_c_sum numeric,
	ADD COLUMN x_voltage_a_min numeric(6,1),
	ADD COLUMN x_voltage_a_max numeric(6,1),
	ADD COLUMN x_voltage_b_min numeric(6,1),
	ADD COLUMN x_voltage_b_max numeric(6,1),
	ADD COLUMN x_voltage_c_min numeric(6,1),
	ADD COLUMN x_voltage_c_max numeric(6,1),
	ADD COLUMN x_n_current integer,
	ADD COLUMN x_current_a_sum numeric,
	ADD COLUMN x_current_b_sum numeric,
	ADD COLUMN x_current_c_sum numeric,
	ADD COLUMN x_current_a_max numeric(8,3),
	ADD COLUMN x_current_b_max numeric(8,3),
	ADD COLUMN x_current_c_max numeric(8,3),
	ADD COLUMN x_n_power integer,
	ADD COLUMN x_power_sum numeric,
	ADD COLUMN x_power_max numeric(10,4),
	ADD COLUMN x_power_a_sum numeric,
	ADD COLUMN x_power_b_sum numeric,
	ADD COLUMN x_power_c_sum numeric,
	ADD COLUMN x_n_reactive integer,
	ADD COLUMN x_reactive_sum numeric,
	ADD COLUMN x_n_pf integer,
	ADD COLUMN x_pf_sum numeric,
	ADD COLUMN x_pf_min numeric(4,3);

CREATE VIEW prepaid.meter_energy_daily WITH (security_invoker = true) AS
SELECT s.property_id, s.meter_id, s.day, s.energy_wh, s.sharp_kwh, s.peak_kwh, s.flat_kwh,
	   s.valley_kwh, s.deep_kwh
  FROM prepaid.meter_energy_daily_store s
UNION ALL
SELECT l.property_id, l.meter_id, l.e_day, l.e_energy_wh, l.e_sharp_kwh, l.e_peak_kwh, l.e_flat_kwh,
	   l.e_valley_kwh, l.e_deep_kwh
  FROM prepaid.meter_latest l WHERE l.e_day IS NOT NULL;
COMMENT ON VIEW prepaid.meter_energy_daily IS
	'energy of a meter per local day, total (Wh) and per TOU period (kWh), primary side';

CREATE VIEW prepaid.meter_energy_monthly WITH (security_invoker = true) AS
SELECT s.property_id, s.meter_id, s.month, s.energy_wh + coalesce(l.e_energy_wh, 0) AS energy_wh,
	   s.sharp_kwh + coalesce(l.e_sharp_kwh, 0) AS sharp_kwh,
	   s.peak_kwh + coalesce(l.e_peak_kwh, 0) AS peak_kwh,
	   s.flat_kwh + coalesce(l.e_flat_kwh, 0) AS flat_kwh,
	   s.valley_kwh + coalesce(l.e_valley_kwh, 0) AS valley_kwh,
	   s.deep_kwh + coalesce(l.e_deep_kwh, 0) AS deep_kwh
  FROM prepaid.meter_energy_monthly_store s
  LEFT JOIN prepaid.meter_latest l
	ON l.property_id = s.property_id AND l.meter_id = s.meter_id
   AND date_trunc('month', l.e_day)::date = s.month
UNION ALL
SELECT l.property_id, l.meter_id, date_trunc('month', l.e_day)::date, l.e_energy_wh, l.e_sharp_kwh,
	   l.e_peak_kwh, l.e_flat_kwh, l.e_valley_kwh, l.e_deep_kwh
  FROM prepaid.meter_latest l
 WHERE l.e_day IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM prepaid.meter_energy_monthly_store s
					WHERE s.property_id = l.property_id AND s.meter_id = l.meter_id
					  AND s.month = date_trunc('month', l.e_day)::date);
COMMENT ON VIEW prepaid.meter_energy_monthly IS
	'energy of a meter per local month, total (Wh) and per TOU period (kWh), primary side: the sum of its days';

CREATE VIEW prepaid.electrical_daily WITH (security_invoker = true) AS
SELECT s.property_id, s.meter_id, s.day,
	   first_at, last_at, samples, n_voltage, voltage_a_sum, voltage_b_sum, voltage_c_sum,
	   voltage_a_min, voltage_a_max, voltage_b_min, voltage_b_max, voltage_c_min, voltage_c_max,
	   n_current, current_a_sum, current_b_sum, current_c_sum, current_a_max, current_b_max,
	   current_c_max, n_power, power_sum, power_max, power_a_sum, power_b_sum, power_c_sum,
	   n_reactive, reactive_sum, n_pf, pf_sum, pf_min
  FROM prepaid.electrical_daily_store s
UNION ALL
SELECT l.property_id, l.meter_id, l.x_day,
	   l.x_first_at, l.x_last_at, l.x_samples, l.x_n_voltage, l.x_voltage_a_sum, l.x_voltage_b_sum,
	   l.x_voltage_c_sum, l.x_voltage_a_min, l.x_voltage_a_max, l.x_voltage_b_min,
	   l.x_voltage_b_max, l.x_voltage_c_min, l.x_voltage_c_max, l.x_n_current, l.x_current_a_sum,
	   l.x_current_b_sum, l.x_current_c_sum, l.x_current_a_max, l.x_current_b_max,
	   l.x_current_c_max, l.x_n_power, l.x_power_sum, l.x_power_max, l.x_power_a_sum,
	   l.x_power_b_sum, l.x_power_c_sum, l.x_n_reactive, l.x_reactive_sum, l.x_n_pf, l.x_pf_sum,
	   l.x_pf_min
  FROM prepaid.meter_latest l WHERE l.x_day IS NOT NULL;
COMMENT ON VIEW prepaid.electrical_daily IS
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
-- before it (to the stores: the meters' open days were moved there first). p_source is a relation of changed rows with the columns of
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
		INSERT INTO prepaid.meter_energy_daily_store AS x (property_id, meter_id, day, energy_wh,
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
		INSERT INTO prepaid.meter_energy_monthly_store AS x (property_id, meter_id, month, energy_wh,
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

-- The ON CONFLICT ... DO UPDATE SET list that adds a day's electrical samples
-- (alias x: the stored row) to a stored day: the flush, the append trigger
-- and the recompute of inserted rows share it.
CREATE FUNCTION prepaid._electrical_add_sql()
RETURNS text LANGUAGE sql IMMUTABLE AS $f$
	SELECT 'first_at = least(x.first_at, excluded.first_at), '
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
		   'pf_min = least(x.pf_min, excluded.pf_min)'::text
$f$;

-- The statement that applies a change of readings to electrical_daily_store:
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
		INSERT INTO prepaid.electrical_daily_store AS x (property_id, meter_id, day, first_at, last_at,
			samples, n_voltage, voltage_a_sum, voltage_b_sum, voltage_c_sum, voltage_a_min,
			voltage_a_max, voltage_b_min, voltage_b_max, voltage_c_min, voltage_c_max, n_current,
			current_a_sum, current_b_sum, current_c_sum, current_a_max, current_b_max,
			current_c_max, n_power, power_sum, power_max, power_a_sum, power_b_sum, power_c_sum,
			n_reactive, reactive_sum, n_pf, pf_sum, pf_min)
		SELECT * FROM agg ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE SET %3$s)
	DELETE FROM prepaid.electrical_daily_store x
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
	ELSE prepaid._electrical_add_sql()	-- inserted samples are added
	END)
$f$;

-- NULL-tolerant sum of two partial sums (NULL + NULL is NULL).
CREATE FUNCTION prepaid._add(a numeric, b numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE a + b END
$$;

-- Moves the open days of these meters into the stores (see the header).
CREATE FUNCTION prepaid._rollup_flush(p_property_ids bigint[], p_meter_ids bigint[])
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
BEGIN
	EXECUTE format($q$
	WITH l AS MATERIALIZED (
		SELECT l.*
		  FROM unnest($1::bigint[], $2::bigint[]) AS s(p, m)
		  JOIN prepaid.meter_latest l ON l.property_id = s.p AND l.meter_id = s.m
		 WHERE l.e_day IS NOT NULL OR l.x_day IS NOT NULL),
	daily AS (
		INSERT INTO prepaid.meter_energy_daily_store AS x (property_id, meter_id, day, energy_wh,
			sharp_kwh, peak_kwh, flat_kwh, valley_kwh, deep_kwh)
		SELECT l.property_id, l.meter_id, l.e_day, l.e_energy_wh, l.e_sharp_kwh, l.e_peak_kwh,
			   l.e_flat_kwh, l.e_valley_kwh, l.e_deep_kwh
		  FROM l WHERE l.e_day IS NOT NULL ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE
		   SET energy_wh = x.energy_wh + excluded.energy_wh,
			   sharp_kwh = x.sharp_kwh + excluded.sharp_kwh,
			   peak_kwh = x.peak_kwh + excluded.peak_kwh,
			   flat_kwh = x.flat_kwh + excluded.flat_kwh,
			   valley_kwh = x.valley_kwh + excluded.valley_kwh,
			   deep_kwh = x.deep_kwh + excluded.deep_kwh),
	monthly AS (
		INSERT INTO prepaid.meter_energy_monthly_store AS x (property_id, meter_id, month, energy_wh,
			sharp_kwh, peak_kwh, flat_kwh, valley_kwh, deep_kwh)
		SELECT l.property_id, l.meter_id, date_trunc('month', l.e_day)::date, l.e_energy_wh,
			   l.e_sharp_kwh, l.e_peak_kwh, l.e_flat_kwh, l.e_valley_kwh, l.e_deep_kwh
		  FROM l WHERE l.e_day IS NOT NULL ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, month) DO UPDATE
		   SET energy_wh = x.energy_wh + excluded.energy_wh,
			   sharp_kwh = x.sharp_kwh + excluded.sharp_kwh,
			   peak_kwh = x.peak_kwh + excluded.peak_kwh,
			   flat_kwh = x.flat_kwh + excluded.flat_kwh,
			   valley_kwh = x.valley_kwh + excluded.valley_kwh,
			   deep_kwh = x.deep_kwh + excluded.deep_kwh),
	electrical AS (
		INSERT INTO prepaid.electrical_daily_store AS x (property_id, meter_id, day,
			first_at, last_at, samples, n_voltage, voltage_a_sum, voltage_b_sum, voltage_c_sum,
			voltage_a_min, voltage_a_max, voltage_b_min, voltage_b_max, voltage_c_min, voltage_c_max,
			n_current, current_a_sum, current_b_sum, current_c_sum, current_a_max, current_b_max,
			current_c_max, n_power, power_sum, power_max, power_a_sum, power_b_sum, power_c_sum,
			n_reactive, reactive_sum, n_pf, pf_sum, pf_min)
		SELECT l.property_id, l.meter_id, l.x_day,
		   l.x_first_at, l.x_last_at, l.x_samples, l.x_n_voltage, l.x_voltage_a_sum,
		   l.x_voltage_b_sum, l.x_voltage_c_sum, l.x_voltage_a_min, l.x_voltage_a_max,
		   l.x_voltage_b_min, l.x_voltage_b_max, l.x_voltage_c_min, l.x_voltage_c_max, l.x_n_current,
		   l.x_current_a_sum, l.x_current_b_sum, l.x_current_c_sum, l.x_current_a_max,
		   l.x_current_b_max, l.x_current_c_max, l.x_n_power, l.x_power_sum, l.x_power_max,
		   l.x_power_a_sum, l.x_power_b_sum, l.x_power_c_sum, l.x_n_reactive, l.x_reactive_sum,
		   l.x_n_pf, l.x_pf_sum, l.x_pf_min
		  FROM l WHERE l.x_day IS NOT NULL ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE SET %1$s)
	UPDATE prepaid.meter_latest m
	   SET e_day = NULL, e_energy_wh = NULL, e_sharp_kwh = NULL, e_peak_kwh = NULL,
		   e_flat_kwh = NULL, e_valley_kwh = NULL, e_deep_kwh = NULL, x_day = NULL,
		   x_first_at = NULL, x_last_at = NULL, x_samples = NULL, x_n_voltage = NULL,
		   x_voltage_a_sum = NULL, x_voltage_b_sum = NULL, x_voltage_c_sum = NULL,
		   x_voltage_a_min = NULL, x_voltage_a_max = NULL, x_voltage_b_min = NULL,
		   x_voltage_b_max = NULL, x_voltage_c_min = NULL, x_voltage_c_max = NULL, x_n_current = NULL,
		   x_current_a_sum = NULL, x_current_b_sum = NULL, x_current_c_sum = NULL,
		   x_current_a_max = NULL, x_current_b_max = NULL, x_current_c_max = NULL, x_n_power = NULL,
		   x_power_sum = NULL, x_power_max = NULL, x_power_a_sum = NULL, x_power_b_sum = NULL,
		   x_power_c_sum = NULL, x_n_reactive = NULL, x_reactive_sum = NULL, x_n_pf = NULL,
		   x_pf_sum = NULL, x_pf_min = NULL
	  FROM l
	 WHERE m.property_id = l.property_id AND m.meter_id = l.meter_id
	$q$, prepaid._electrical_add_sql()) USING p_property_ids, p_meter_ids;
END
$$;

-- Transition tables are visible only to statements of the trigger function
-- itself, so the statements run here. JIT compilation of these large
-- statements costs more than it saves (seconds per batch), so it is off.
--
-- The append statement: a meter with one row in the batch, later than its
-- meter_latest reading (which the classify trigger would move only after
-- this one), appends one interval whose predecessor is meter_latest's
-- reading, and one sample. One pass over the batch (index probes of meter
-- and meter_latest per row, never the reading table) computes each interval
-- once, adds it to the meter's open day, or moves the open day into the
-- stores when the interval ends on another day, and makes the row the
-- meter's meter_latest reading: one write per reading, plus the hourly rows
-- of the batch. The meters of every other row (several rows of a meter, a
-- reading before the meter's newest, a meter's first reading) have their
-- open days moved into the stores and go through the general statements
-- above, which handle any change.
CREATE FUNCTION prepaid._reading_rollup_insert() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
DECLARE
	v_p bigint[];
	v_m bigint[];
	v_src constant text := '(SELECT n.* FROM new_rows n JOIN unnest($1::bigint[], $2::bigint[]) AS s(p, m)'
						   ' ON n.property_id = s.p AND n.meter_id = s.m)';
BEGIN
	-- One-shot: planned anew for every batch (EXECUTE), with the batch's size
	-- and the tables' current sizes. A plan cached in a long-lived session
	-- (the daemon's writer) from when meter_latest and the stores were empty
	-- would scan them whole for every row once they have grown.
	EXECUTE format($q$
	WITH c AS MATERIALIZED (	-- each row with its meter and the meter's meter_latest row
		SELECT n.property_id, n.meter_id, n.read_at, n.energy_wh, n.rate_wh, n.voltage_a,
			   n.voltage_b, n.voltage_c, n.current_a, n.current_b, n.current_c, n.power_kw,
			   n.power_a_kw, n.power_b_kw, n.power_c_kw, n.reactive_kvar, n.power_factor,
			   n.demand_kw, n.relay_open, n.received_at, x.*
		  FROM new_rows n
		 CROSS JOIN LATERAL (	-- index probes (a hash join would read the whole park)
				SELECT m.tariff_id, m.pt_ratio::bigint * m.ct_ratio AS mult,
					   m.register_modulus_wh AS modulus, l.read_at AS prev_at,
					   l.energy_wh AS prev_wh, l.rate_wh AS prev_rate, l.e_day, l.e_energy_wh,
					   l.e_sharp_kwh, l.e_peak_kwh, l.e_flat_kwh, l.e_valley_kwh, l.e_deep_kwh,
					   l.x_day,
					   l.x_first_at, l.x_last_at, l.x_samples, l.x_n_voltage, l.x_voltage_a_sum,
					   l.x_voltage_b_sum, l.x_voltage_c_sum, l.x_voltage_a_min, l.x_voltage_a_max,
					   l.x_voltage_b_min, l.x_voltage_b_max, l.x_voltage_c_min, l.x_voltage_c_max, l.x_n_current,
					   l.x_current_a_sum, l.x_current_b_sum, l.x_current_c_sum, l.x_current_a_max,
					   l.x_current_b_max, l.x_current_c_max, l.x_n_power, l.x_power_sum, l.x_power_max,
					   l.x_power_a_sum, l.x_power_b_sum, l.x_power_c_sum, l.x_n_reactive, l.x_reactive_sum,
					   l.x_n_pf, l.x_pf_sum, l.x_pf_min
				  FROM prepaid.meter m
				  LEFT JOIN prepaid.meter_latest l
					ON l.property_id = m.property_id AND l.meter_id = m.meter_id
				 WHERE m.property_id = n.property_id AND m.meter_id = n.meter_id
				OFFSET 0) x),
	many AS (
		SELECT c.property_id, c.meter_id FROM c GROUP BY 1, 2 HAVING count(*) > 1),
	a AS MATERIALIZED (	-- the appended rows: their interval's energy and days
		SELECT c.*, p.time_zone, d.d_wh,
			   ((c.read_at - interval '1 microsecond') AT TIME ZONE p.time_zone)::date AS day,
			   (c.read_at AT TIME ZONE p.time_zone)::date AS x_day_new,
			   date_trunc('hour', c.read_at - interval '1 microsecond', p.time_zone) AS hour
		  FROM c JOIN prepaid.property p ON p.property_id = c.property_id
		 CROSS JOIN LATERAL (
				SELECT prepaid._register_delta(c.prev_wh, c.energy_wh, c.modulus) AS d_wh) d
		 WHERE c.read_at > c.prev_at
		   AND NOT EXISTS (SELECT 1 FROM many
							WHERE many.property_id = c.property_id AND many.meter_id = c.meter_id)),
	f AS MATERIALIZED (	-- what each appended row does to the open day (e_new, x_new: the
						-- day moves; e_direct: the new day's energy is stored already)
		SELECT a.*, a.d_wh * a.mult AS wh,
			   CASE WHEN a.d_wh > 0 THEN prepaid._interval_kwh(a.tariff_id, a.mult, a.modulus,
					a.prev_at, a.read_at, a.d_wh, a.prev_rate, a.rate_wh) END AS k,
			   a.d_wh > 0 AND a.e_day IS DISTINCT FROM a.day AS e_new,
			   CASE WHEN a.d_wh > 0 AND a.e_day IS DISTINCT FROM a.day
					THEN EXISTS (SELECT 1 FROM prepaid.meter_energy_daily_store s
								  WHERE s.property_id = a.property_id AND s.meter_id = a.meter_id
									AND s.day = a.day)
					ELSE false END AS e_direct,
			   a.x_day IS DISTINCT FROM a.x_day_new AS x_new
		  FROM a),
	e_moved AS MATERIALIZED (	-- energy for the stores: open days that end, new days stored already
		SELECT f.property_id, f.meter_id, f.e_day AS day, f.e_energy_wh AS wh, f.e_sharp_kwh AS sharp,
			   f.e_peak_kwh AS peak, f.e_flat_kwh AS flat, f.e_valley_kwh AS valley,
			   f.e_deep_kwh AS deep
		  FROM f WHERE f.e_new AND f.e_day IS NOT NULL
		UNION ALL
		SELECT f.property_id, f.meter_id, f.day, f.wh, f.k[1], f.k[2], f.k[3], f.k[4], f.k[5]
		  FROM f WHERE f.e_direct),
	daily AS (
		INSERT INTO prepaid.meter_energy_daily_store AS x (property_id, meter_id, day, energy_wh,
			sharp_kwh, peak_kwh, flat_kwh, valley_kwh, deep_kwh)
		SELECT * FROM e_moved ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE
		   SET energy_wh = x.energy_wh + excluded.energy_wh,
			   sharp_kwh = x.sharp_kwh + excluded.sharp_kwh,
			   peak_kwh = x.peak_kwh + excluded.peak_kwh,
			   flat_kwh = x.flat_kwh + excluded.flat_kwh,
			   valley_kwh = x.valley_kwh + excluded.valley_kwh,
			   deep_kwh = x.deep_kwh + excluded.deep_kwh),
	monthly AS (
		INSERT INTO prepaid.meter_energy_monthly_store AS x (property_id, meter_id, month, energy_wh,
			sharp_kwh, peak_kwh, flat_kwh, valley_kwh, deep_kwh)
		SELECT e.property_id, e.meter_id, date_trunc('month', e.day)::date, sum(e.wh), sum(e.sharp),
			   sum(e.peak), sum(e.flat), sum(e.valley), sum(e.deep)
		  FROM e_moved e GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, month) DO UPDATE
		   SET energy_wh = x.energy_wh + excluded.energy_wh,
			   sharp_kwh = x.sharp_kwh + excluded.sharp_kwh,
			   peak_kwh = x.peak_kwh + excluded.peak_kwh,
			   flat_kwh = x.flat_kwh + excluded.flat_kwh,
			   valley_kwh = x.valley_kwh + excluded.valley_kwh,
			   deep_kwh = x.deep_kwh + excluded.deep_kwh),
	hourly AS (
		INSERT INTO prepaid.property_energy_hourly AS x (property_id, hour, energy_wh)
		SELECT f.property_id, f.hour, sum(f.wh) FROM f WHERE f.wh > 0 GROUP BY 1, 2 ORDER BY 1, 2
		ON CONFLICT (property_id, hour) DO UPDATE SET energy_wh = x.energy_wh + excluded.energy_wh),
	electrical AS (	-- the samples of open days that end go to the store
		INSERT INTO prepaid.electrical_daily_store AS x (property_id, meter_id, day,
			first_at, last_at, samples, n_voltage, voltage_a_sum, voltage_b_sum, voltage_c_sum,
			voltage_a_min, voltage_a_max, voltage_b_min, voltage_b_max, voltage_c_min, voltage_c_max,
			n_current, current_a_sum, current_b_sum, current_c_sum, current_a_max, current_b_max,
			current_c_max, n_power, power_sum, power_max, power_a_sum, power_b_sum, power_c_sum,
			n_reactive, reactive_sum, n_pf, pf_sum, pf_min)
		SELECT f.property_id, f.meter_id, f.x_day,
		   f.x_first_at, f.x_last_at, f.x_samples, f.x_n_voltage, f.x_voltage_a_sum,
		   f.x_voltage_b_sum, f.x_voltage_c_sum, f.x_voltage_a_min, f.x_voltage_a_max,
		   f.x_voltage_b_min, f.x_voltage_b_max, f.x_voltage_c_min, f.x_voltage_c_max, f.x_n_current,
		   f.x_current_a_sum, f.x_current_b_sum, f.x_current_c_sum, f.x_current_a_max,
		   f.x_current_b_max, f.x_current_c_max, f.x_n_power, f.x_power_sum, f.x_power_max,
		   f.x_power_a_sum, f.x_power_b_sum, f.x_power_c_sum, f.x_n_reactive, f.x_reactive_sum,
		   f.x_n_pf, f.x_pf_sum, f.x_pf_min
		  FROM f WHERE f.x_new AND f.x_day IS NOT NULL
		 ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE SET %1$s),
	pulled AS (	-- a new open day stored already comes out of the store
		DELETE FROM prepaid.electrical_daily_store s USING f
		 WHERE f.x_new AND s.property_id = f.property_id AND s.meter_id = f.meter_id
		   AND s.day = f.x_day_new
		RETURNING s.*),
	latest AS (	-- the new reading, and the open day with it
		UPDATE prepaid.meter_latest l
		   SET read_at = f.read_at, energy_wh = f.energy_wh, rate_wh = f.rate_wh,
			   voltage_a = f.voltage_a, voltage_b = f.voltage_b, voltage_c = f.voltage_c,
			   current_a = f.current_a, current_b = f.current_b, current_c = f.current_c,
			   power_kw = f.power_kw, power_factor = f.power_factor, demand_kw = f.demand_kw,
			   relay_open = f.relay_open, received_at = f.received_at,
			   e_day = CASE WHEN NOT f.e_new THEN l.e_day WHEN f.e_direct THEN NULL ELSE f.day END,
			   e_energy_wh = CASE WHEN f.wh = 0 THEN l.e_energy_wh WHEN NOT f.e_new THEN l.e_energy_wh + f.wh
								  WHEN f.e_direct THEN NULL ELSE f.wh END,
			   e_sharp_kwh = CASE WHEN f.wh = 0 THEN l.e_sharp_kwh WHEN NOT f.e_new THEN l.e_sharp_kwh + f.k[1]
								  WHEN f.e_direct THEN NULL ELSE f.k[1] END,
			   e_peak_kwh = CASE WHEN f.wh = 0 THEN l.e_peak_kwh WHEN NOT f.e_new THEN l.e_peak_kwh + f.k[2]
								 WHEN f.e_direct THEN NULL ELSE f.k[2] END,
			   e_flat_kwh = CASE WHEN f.wh = 0 THEN l.e_flat_kwh WHEN NOT f.e_new THEN l.e_flat_kwh + f.k[3]
								 WHEN f.e_direct THEN NULL ELSE f.k[3] END,
			   e_valley_kwh = CASE WHEN f.wh = 0 THEN l.e_valley_kwh WHEN NOT f.e_new THEN l.e_valley_kwh + f.k[4]
								   WHEN f.e_direct THEN NULL ELSE f.k[4] END,
			   e_deep_kwh = CASE WHEN f.wh = 0 THEN l.e_deep_kwh WHEN NOT f.e_new THEN l.e_deep_kwh + f.k[5]
								 WHEN f.e_direct THEN NULL ELSE f.k[5] END,
			   x_day = CASE WHEN NOT f.x_new THEN l.x_day ELSE f.x_day_new END,
			   x_first_at = CASE WHEN NOT f.x_new THEN least(l.x_first_at, f.read_at)
						WHEN p.day IS NOT NULL THEN least(p.first_at, f.read_at) ELSE f.read_at END,
			   x_last_at = CASE WHEN NOT f.x_new THEN greatest(l.x_last_at, f.read_at)
						WHEN p.day IS NOT NULL THEN greatest(p.last_at, f.read_at) ELSE f.read_at END,
			   x_samples = CASE WHEN NOT f.x_new THEN l.x_samples + 1
						WHEN p.day IS NOT NULL THEN p.samples + 1 ELSE 1 END,
			   x_n_voltage = CASE WHEN NOT f.x_new THEN l.x_n_voltage + (f.voltage_a IS NOT NULL)::int
						WHEN p.day IS NOT NULL THEN p.n_voltage + (f.voltage_a IS NOT NULL)::int ELSE (f.voltage_a IS NOT NULL)::int END,
			   x_voltage_a_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_voltage_a_sum, f.voltage_a)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.voltage_a_sum, f.voltage_a) ELSE f.voltage_a END,
			   x_voltage_b_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_voltage_b_sum, f.voltage_b)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.voltage_b_sum, f.voltage_b) ELSE f.voltage_b END,
			   x_voltage_c_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_voltage_c_sum, f.voltage_c)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.voltage_c_sum, f.voltage_c) ELSE f.voltage_c END,
			   x_voltage_a_min = CASE WHEN NOT f.x_new THEN least(l.x_voltage_a_min, f.voltage_a)
						WHEN p.day IS NOT NULL THEN least(p.voltage_a_min, f.voltage_a) ELSE f.voltage_a END,
			   x_voltage_a_max = CASE WHEN NOT f.x_new THEN greatest(l.x_voltage_a_max, f.voltage_a)
						WHEN p.day IS NOT NULL THEN greatest(p.voltage_a_max, f.voltage_a) ELSE f.voltage_a END,
			   x_voltage_b_min = CASE WHEN NOT f.x_new THEN least(l.x_voltage_b_min, f.voltage_b)
						WHEN p.day IS NOT NULL THEN least(p.voltage_b_min, f.voltage_b) ELSE f.voltage_b END,
			   x_voltage_b_max = CASE WHEN NOT f.x_new THEN greatest(l.x_voltage_b_max, f.voltage_b)
						WHEN p.day IS NOT NULL THEN greatest(p.voltage_b_max, f.voltage_b) ELSE f.voltage_b END,
			   x_voltage_c_min = CASE WHEN NOT f.x_new THEN least(l.x_voltage_c_min, f.voltage_c)
						WHEN p.day IS NOT NULL THEN least(p.voltage_c_min, f.voltage_c) ELSE f.voltage_c END,
			   x_voltage_c_max = CASE WHEN NOT f.x_new THEN greatest(l.x_voltage_c_max, f.voltage_c)
						WHEN p.day IS NOT NULL THEN greatest(p.voltage_c_max, f.voltage_c) ELSE f.voltage_c END,
			   x_n_current = CASE WHEN NOT f.x_new THEN l.x_n_current + (f.current_a IS NOT NULL)::int
						WHEN p.day IS NOT NULL THEN p.n_current + (f.current_a IS NOT NULL)::int ELSE (f.current_a IS NOT NULL)::int END,
			   x_current_a_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_current_a_sum, f.current_a)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.current_a_sum, f.current_a) ELSE f.current_a END,
			   x_current_b_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_current_b_sum, f.current_b)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.current_b_sum, f.current_b) ELSE f.current_b END,
			   x_current_c_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_current_c_sum, f.current_c)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.current_c_sum, f.current_c) ELSE f.current_c END,
			   x_current_a_max = CASE WHEN NOT f.x_new THEN greatest(l.x_current_a_max, f.current_a)
						WHEN p.day IS NOT NULL THEN greatest(p.current_a_max, f.current_a) ELSE f.current_a END,
			   x_current_b_max = CASE WHEN NOT f.x_new THEN greatest(l.x_current_b_max, f.current_b)
						WHEN p.day IS NOT NULL THEN greatest(p.current_b_max, f.current_b) ELSE f.current_b END,
			   x_current_c_max = CASE WHEN NOT f.x_new THEN greatest(l.x_current_c_max, f.current_c)
						WHEN p.day IS NOT NULL THEN greatest(p.current_c_max, f.current_c) ELSE f.current_c END,
			   x_n_power = CASE WHEN NOT f.x_new THEN l.x_n_power + (f.power_kw IS NOT NULL)::int
						WHEN p.day IS NOT NULL THEN p.n_power + (f.power_kw IS NOT NULL)::int ELSE (f.power_kw IS NOT NULL)::int END,
			   x_power_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_power_sum, f.power_kw)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.power_sum, f.power_kw) ELSE f.power_kw END,
			   x_power_max = CASE WHEN NOT f.x_new THEN greatest(l.x_power_max, f.power_kw)
						WHEN p.day IS NOT NULL THEN greatest(p.power_max, f.power_kw) ELSE f.power_kw END,
			   x_power_a_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_power_a_sum, f.power_a_kw)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.power_a_sum, f.power_a_kw) ELSE f.power_a_kw END,
			   x_power_b_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_power_b_sum, f.power_b_kw)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.power_b_sum, f.power_b_kw) ELSE f.power_b_kw END,
			   x_power_c_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_power_c_sum, f.power_c_kw)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.power_c_sum, f.power_c_kw) ELSE f.power_c_kw END,
			   x_n_reactive = CASE WHEN NOT f.x_new THEN l.x_n_reactive + (f.reactive_kvar IS NOT NULL)::int
						WHEN p.day IS NOT NULL THEN p.n_reactive + (f.reactive_kvar IS NOT NULL)::int ELSE (f.reactive_kvar IS NOT NULL)::int END,
			   x_reactive_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_reactive_sum, f.reactive_kvar)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.reactive_sum, f.reactive_kvar) ELSE f.reactive_kvar END,
			   x_n_pf = CASE WHEN NOT f.x_new THEN l.x_n_pf + (f.power_factor IS NOT NULL)::int
						WHEN p.day IS NOT NULL THEN p.n_pf + (f.power_factor IS NOT NULL)::int ELSE (f.power_factor IS NOT NULL)::int END,
			   x_pf_sum = CASE WHEN NOT f.x_new THEN prepaid._add(l.x_pf_sum, f.power_factor)
						WHEN p.day IS NOT NULL THEN prepaid._add(p.pf_sum, f.power_factor) ELSE f.power_factor END,
			   x_pf_min = CASE WHEN NOT f.x_new THEN least(l.x_pf_min, f.power_factor)
						WHEN p.day IS NOT NULL THEN least(p.pf_min, f.power_factor) ELSE f.power_factor END
		  FROM f
		 -- the row "pulled" deletes, read from the store itself (the statement's
		 -- snapshot still has it): an index probe per row, where a join with
		 -- the pulled CTE was a nested loop of two CTEs the planner cannot size
		 LEFT JOIN prepaid.electrical_daily_store p
			ON f.x_new AND p.property_id = f.property_id AND p.meter_id = f.meter_id
		   AND p.day = f.x_day_new
		 WHERE l.property_id = f.property_id AND l.meter_id = f.meter_id)
	SELECT array_agg(s.property_id), array_agg(s.meter_id)
	  FROM (SELECT c.property_id, c.meter_id FROM c WHERE NOT coalesce(c.read_at > c.prev_at, false)
			UNION SELECT many.property_id, many.meter_id FROM many) s
	$q$, prepaid._electrical_add_sql()) INTO v_p, v_m;
	IF v_p IS NOT NULL THEN	-- the other meters' rows
		PERFORM prepaid._rollup_flush(v_p, v_m);
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
		PERFORM prepaid._rollup_flush(array_agg(o.property_id), array_agg(o.meter_id))
		   FROM (SELECT DISTINCT o.property_id, o.meter_id FROM old_rows o) o;
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
	-- the open days go to the stores, which are then recomputed
	PERFORM prepaid._rollup_flush(array_agg(l.property_id), array_agg(l.meter_id))
	   FROM prepaid.meter_latest l
	  WHERE l.property_id = p_property_id AND (l.e_day IS NOT NULL OR l.x_day IS NOT NULL);
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
	DELETE FROM prepaid.meter_energy_daily_store
	 WHERE property_id = p_property_id AND day >= coalesce(p_from, '-infinity');
	DELETE FROM prepaid.electrical_daily_store
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
	DELETE FROM prepaid.meter_energy_monthly_store
	 WHERE property_id = p_property_id AND month >= coalesce(date_trunc('month', p_from)::date, '-infinity');
	INSERT INTO prepaid.meter_energy_monthly_store (property_id, meter_id, month, energy_wh, sharp_kwh,
											  peak_kwh, flat_kwh, valley_kwh, deep_kwh)
	SELECT property_id, meter_id, date_trunc('month', day)::date, sum(energy_wh), sum(sharp_kwh),
		   sum(peak_kwh), sum(flat_kwh), sum(valley_kwh), sum(deep_kwh)
	  FROM prepaid.meter_energy_daily_store
	 WHERE property_id = p_property_id
	   AND day >= coalesce(date_trunc('month', p_from)::date, '-infinity')
	 GROUP BY 1, 2, 3;
	RETURN v_total;
END
$$;
COMMENT ON FUNCTION prepaid.rollup_rebuild(bigint, date) IS
	'recompute the energy and electrical rollups of a property from its readings, from a local day on';
