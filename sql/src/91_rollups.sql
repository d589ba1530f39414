-- Rollups that reports read instead of raw readings (F15, F16, F19). A month
-- of 30-minute readings of 100,000 meters is 144 M rows; the overview, the
-- bills and the electrical history must never scan them:
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
-- counts 0, as settlement charges nothing for it. Electrical samples count
-- on the local day of the reading's instant.
--
-- Asynchronous and exact (91_rollups_apply.sql): each meter has a rollup
-- cursor (prepaid.rollup_cursor: a reading, with its registers). The rollups
-- hold exactly the intervals ending at or before the cursor and the samples
-- at or before it; the readings after it are pending. Inserting a reading
-- after the cursor -- the common case, a meter's new reading -- does not
-- touch the rollups at all (the insert triggers, extension/reading_accept.c,
-- only move meter_latest); prepaid.rollup_catch_up() (the "rollups" job)
-- folds the pending readings of many meters into the rollups in big
-- set-based statements and moves the cursors. A change at or before a
-- cursor -- a late reading, a deleted one -- is applied to the rollups in
-- the changing transaction, as the difference of the intervals of the
-- meter's window after and before the change, so the rollups stay exact for
-- what they cover. prepaid.rollup_status says, per property, what is pending.
--
-- Every reading at or before its meter's cursor is in the rollups; the
-- cursor is never after the meter's newest reading (meter_latest), so a
-- reading appended after meter_latest's is always pending.

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
) WITH (fillfactor = 70);	-- today's rows are updated by every catch-up: room for HOT
							-- updates (50 would make all of them HOT, about 10 % faster
							-- catch-ups, for twice the space of a year of days)
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
) WITH (fillfactor = 50);	-- a month's row is updated by every catch-up: all updates HOT
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

-- How far each meter's readings are rolled up (see the header); read_at
-- NULL: none yet. A row per meter, made with the meter.
CREATE TABLE prepaid.rollup_cursor (
	property_id bigint NOT NULL,
	meter_id    bigint NOT NULL,
	read_at     timestamptz,
	energy_wh   bigint,
	rate_wh     bigint[],
	rolled_at   timestamptz,           -- when the cursor last moved
	PRIMARY KEY (property_id, meter_id),
	FOREIGN KEY (property_id, meter_id) REFERENCES prepaid.meter (property_id, meter_id)
		ON DELETE CASCADE
) WITH (fillfactor = 50);	-- moved by every catch-up: room for HOT updates
COMMENT ON TABLE prepaid.rollup_cursor IS
	'the reading up to which a meter''s readings are in the rollups; later ones are pending';

-- When each property's rollups were last complete: every reading committed
-- before caught_up_at is in them (prepaid.rollup_catch_up).
CREATE TABLE prepaid.rollup_state (
	property_id  bigint PRIMARY KEY REFERENCES prepaid.property ON DELETE CASCADE,
	caught_up_at timestamptz NOT NULL
);
COMMENT ON TABLE prepaid.rollup_state IS
	'per property: every reading committed before caught_up_at is in the rollups';

CREATE FUNCTION prepaid._meter_rollup_cursor() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
BEGIN
	INSERT INTO prepaid.rollup_cursor (property_id, meter_id)
	SELECT n.property_id, n.meter_id FROM new_rows n;
	RETURN NULL;
END
$$;
CREATE TRIGGER meter_rollup_cursor AFTER INSERT ON prepaid.meter
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION prepaid._meter_rollup_cursor();

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

-- NULL-tolerant sum of two partial sums (NULL + NULL is NULL).
CREATE FUNCTION prepaid._add(a numeric, b numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE a + b END
$$;

-- The statements that change the rollups are built as text from the pieces
-- below and run with EXECUTE, so that each is planned with the real size of
-- its batch and of the tables (a plan cached in a long-lived session from
-- when the tables were empty would scan them whole for every row).

-- The energy part of a rollup statement: CTEs that add signed windows of
-- readings to the energy rollups. p_sets names a relation of rows (sign,
-- property_id, meter_id, read_at, energy_wh, rate_wh): per (sign, meter),
-- consecutive rows are intervals, each counted with its sign (the first
-- row of a window is only a predecessor). p_meters names a relation with
-- each meter's property_id, meter_id, tariff_id, mult (PT x CT), modulus
-- and time_zone.
CREATE FUNCTION prepaid._rollup_energy_ctes(p_sets text, p_meters text)
RETURNS text LANGUAGE sql IMMUTABLE AS $f$
	SELECT format($q$
	iv AS (
		SELECT s.sign, s.property_id, s.meter_id, s.read_at, s.energy_wh, s.rate_wh,
			   lag(s.read_at) OVER o AS prev_at, lag(s.energy_wh) OVER o AS prev_wh,
			   lag(s.rate_wh) OVER o AS prev_rate
		  FROM %1$s s
		WINDOW o AS (PARTITION BY s.sign, s.property_id, s.meter_id ORDER BY s.read_at)),
	e AS MATERIALIZED (
		SELECT iv.sign, iv.property_id, iv.meter_id, w.tariff_id, w.mult, w.modulus,
			   iv.prev_at, iv.read_at, iv.prev_rate, iv.rate_wh,
			   prepaid._register_delta(iv.prev_wh, iv.energy_wh, w.modulus) AS d_wh,
			   ((iv.read_at - interval '1 microsecond') AT TIME ZONE w.time_zone)::date AS day,
			   date_trunc('hour', iv.read_at - interval '1 microsecond', w.time_zone) AS hour
		  FROM iv JOIN %2$s w ON w.property_id = iv.property_id AND w.meter_id = iv.meter_id
		 WHERE iv.prev_at IS NOT NULL),
	parts AS MATERIALIZED (	-- one row per interval: its energy, and its kWh per period (one call)
		SELECT e.property_id, e.meter_id, e.day, e.sign * e.d_wh * e.mult AS wh, e.sign AS sign,
			   CASE WHEN e.d_wh > 0 THEN prepaid._interval_kwh(e.tariff_id, e.mult, e.modulus,
					e.prev_at, e.read_at, e.d_wh, e.prev_rate, e.rate_wh) END AS k
		  FROM e),
	per_day AS MATERIALIZED (
		SELECT property_id, meter_id, day, sum(wh) AS wh,
			   coalesce(sum(sign * k[1]), 0) AS sharp, coalesce(sum(sign * k[2]), 0) AS peak,
			   coalesce(sum(sign * k[3]), 0) AS flat, coalesce(sum(sign * k[4]), 0) AS valley,
			   coalesce(sum(sign * k[5]), 0) AS deep
		  FROM parts GROUP BY 1, 2, 3
		HAVING sum(wh) <> 0 OR coalesce(sum(sign * k[1]), 0) <> 0
			OR coalesce(sum(sign * k[2]), 0) <> 0 OR coalesce(sum(sign * k[3]), 0) <> 0
			OR coalesce(sum(sign * k[4]), 0) <> 0 OR coalesce(sum(sign * k[5]), 0) <> 0),
	e_daily AS (
		INSERT INTO prepaid.meter_energy_daily AS x (property_id, meter_id, day, energy_wh,
			sharp_kwh, peak_kwh, flat_kwh, valley_kwh, deep_kwh)
		SELECT * FROM per_day ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE
		   SET energy_wh = x.energy_wh + excluded.energy_wh,
			   sharp_kwh = x.sharp_kwh + excluded.sharp_kwh,
			   peak_kwh = x.peak_kwh + excluded.peak_kwh,
			   flat_kwh = x.flat_kwh + excluded.flat_kwh,
			   valley_kwh = x.valley_kwh + excluded.valley_kwh,
			   deep_kwh = x.deep_kwh + excluded.deep_kwh),
	e_monthly AS (
		INSERT INTO prepaid.meter_energy_monthly AS x (property_id, meter_id, month, energy_wh,
			sharp_kwh, peak_kwh, flat_kwh, valley_kwh, deep_kwh)
		SELECT property_id, meter_id, date_trunc('month', day)::date, sum(wh), sum(sharp),
			   sum(peak), sum(flat), sum(valley), sum(deep)
		  FROM per_day GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, month) DO UPDATE
		   SET energy_wh = x.energy_wh + excluded.energy_wh,
			   sharp_kwh = x.sharp_kwh + excluded.sharp_kwh,
			   peak_kwh = x.peak_kwh + excluded.peak_kwh,
			   flat_kwh = x.flat_kwh + excluded.flat_kwh,
			   valley_kwh = x.valley_kwh + excluded.valley_kwh,
			   deep_kwh = x.deep_kwh + excluded.deep_kwh),
	e_hourly AS (
		INSERT INTO prepaid.property_energy_hourly AS x (property_id, hour, energy_wh)
		SELECT property_id, hour, sum(sign * d_wh * mult) FROM e
		 GROUP BY 1, 2
		HAVING sum(sign * d_wh * mult) <> 0
		 ORDER BY 1, 2
		ON CONFLICT (property_id, hour) DO UPDATE SET energy_wh = x.energy_wh + excluded.energy_wh)
	$q$, p_sets, p_meters)
$f$;

-- The electrical part of a rollup statement: CTEs that aggregate the
-- readings of relation p_samples (columns of prepaid.reading) per meter and
-- local day and add them to electrical_daily (p_replace false), or replace
-- the days they cover with them (p_replace true: days recomputed from all
-- their readings). p_meters as above (time_zone).
CREATE FUNCTION prepaid._rollup_electrical_ctes(p_samples text, p_meters text, p_replace boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $f$
	SELECT format($q$
	x_agg AS MATERIALIZED (
		SELECT s.property_id, s.meter_id, (s.read_at AT TIME ZONE w.time_zone)::date AS day,
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
		  FROM %1$s s JOIN %2$s w ON w.property_id = s.property_id AND w.meter_id = s.meter_id
		 GROUP BY 1, 2, 3),
	x_up AS (
		INSERT INTO prepaid.electrical_daily AS x (property_id, meter_id, day, first_at, last_at,
			samples, n_voltage, voltage_a_sum, voltage_b_sum, voltage_c_sum, voltage_a_min,
			voltage_a_max, voltage_b_min, voltage_b_max, voltage_c_min, voltage_c_max, n_current,
			current_a_sum, current_b_sum, current_c_sum, current_a_max, current_b_max,
			current_c_max, n_power, power_sum, power_max, power_a_sum, power_b_sum, power_c_sum,
			n_reactive, reactive_sum, n_pf, pf_sum, pf_min)
		SELECT * FROM x_agg ORDER BY 1, 2, 3
		ON CONFLICT (property_id, meter_id, day) DO UPDATE SET %3$s)
	$q$, p_samples, p_meters,
	CASE WHEN p_replace THEN
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
	ELSE
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

-- The meter information the pieces above need, for the meters of relation
-- p_keys (columns property_id, meter_id): a SELECT list to use in a CTE.
CREATE FUNCTION prepaid._rollup_meters_sql(p_keys text)
RETURNS text LANGUAGE sql IMMUTABLE AS $f$
	SELECT format($q$
		SELECT m.property_id, m.meter_id, m.tariff_id, m.pt_ratio::bigint * m.ct_ratio AS mult,
			   m.register_modulus_wh AS modulus, p.time_zone
		  FROM %1$s k
		  JOIN prepaid.meter m ON m.property_id = k.property_id AND m.meter_id = k.meter_id
		  JOIN prepaid.property p ON p.property_id = m.property_id$q$, p_keys)
$f$;
