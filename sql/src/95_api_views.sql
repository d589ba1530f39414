-- Report views of the api schema (F15, F16, F17, F19), read by PostgREST and
-- BI tools. Every view is security_invoker: it runs with the caller's
-- rights, so row-level security on the prepaid tables (99_rls.sql) limits an
-- operator to its property everywhere, with one rule per table rather than
-- a filter repeated in each view. Plain columns, so PostgREST filters
-- (?area_id=eq.3&fee_status=eq.low_balance) become WHERE clauses.
-- Energy in kWh and electrical values on the primary side (PT/CT applied).
-- No view reads raw readings except electrical_history (one meter, a range).

-- The TOU period in force for a tariff at an instant.
CREATE FUNCTION prepaid._tariff_period_at(p_tariff_id bigint, p_at timestamptz)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE COST 1000 AS $$
	SELECT s.period FROM prepaid.tou_split(p_tariff_id, p_at, p_at + interval '1 second', 1) s
	 ORDER BY s.kwh DESC, s.period LIMIT 1
$$;

-- Active alarms are listed newest first; bills and capacity reports are read by month.
CREATE INDEX alarm_recent ON prepaid.alarm (raised_at DESC) WHERE cleared_at IS NULL;
CREATE INDEX month_usage_month ON prepaid.month_usage (month);
CREATE INDEX demand_max_month ON prepaid.demand_max (month);

-- The money status of an account, kept with the balance (a stored generated
-- column: computed on every balance change, indexed only where it is not
-- "normal", so "all cut-off meters" is an index scan; balance changes that
-- keep the class stay HOT updates, as the index does not cover balance).
ALTER TABLE prepaid.account ADD COLUMN fee_class text GENERATED ALWAYS AS (
	CASE WHEN balance < -credit_limit THEN 'cut_off'
		 WHEN balance < 0 THEN 'in_credit'
		 WHEN balance < warning_level THEN 'low_balance'
		 ELSE 'normal' END) STORED;
COMMENT ON COLUMN prepaid.account.fee_class IS
	'normal, low_balance (below the warning level), in_credit (below 0 down to -credit_limit), cut_off (below -credit_limit)';
CREATE INDEX account_fee_class ON prepaid.account (property_id, fee_class) WHERE fee_class <> 'normal';

-- F17: one row per meter.
CREATE VIEW api.meter_monitor WITH (security_invoker = true) AS
SELECT m.property_id, m.meter_id, m.address, m.shop_no, m.owner_name,
	   m.area_id, ar.name AS area_name, m.gateway_id,
	   a.customer_id, c.name AS customer_name, m.account_id, a.collection_account_id,
	   m.phase, m.pt_ratio, m.ct_ratio, m.mode, m.keep_power, m.relay_desired, m.relay_actual,
	   m.opened_at IS NOT NULL AS opened,
	   coalesce(l.read_at, m.opened_at, m.created_at)
		   >= now() - m.read_interval * (SELECT prepaid._setting_numeric('pg_prepaid.offline_factor', 2.5))
		   AS online,
	   a.balance, a.credit_limit, a.warning_level, a.fee_class AS fee_status,
	   l.energy_wh * m.pt_ratio::bigint * m.ct_ratio * 0.001 AS total_kwh,
	   l.power_kw * m.pt_ratio * m.ct_ratio AS power_kw,
	   l.read_at AS last_reading_at, m.last_seen,
	   greatest(l.read_at, m.last_seen) AS last_update,
	   m.tariff_id, t.name AS tariff_name,
	   prepaid._tariff_period_at(m.tariff_id, now()) AS current_period,
	   prepaid.tou_price(m.tariff_id, now(), prepaid._tariff_period_at(m.tariff_id, now()))
		   AS current_price,
	   m.power_threshold_kw, m.undervoltage_ratio, m.overvoltage_ratio, m.read_interval,
	   m.rate_registers, m.model, m.opened_at, m.created_at
  FROM prepaid.meter m
  JOIN prepaid.account a ON a.property_id = m.property_id AND a.account_id = m.account_id
  LEFT JOIN prepaid.customer c ON c.property_id = a.property_id AND c.customer_id = a.customer_id
  LEFT JOIN prepaid.area ar ON ar.property_id = m.property_id AND ar.area_id = m.area_id
  LEFT JOIN prepaid.meter_latest l ON l.property_id = m.property_id AND l.meter_id = m.meter_id
  LEFT JOIN prepaid.tariff t ON t.tariff_id = m.tariff_id;
COMMENT ON VIEW api.meter_monitor IS
	'every meter with owner, area, balance, fee status, energy, last update, current price, relay and mode';

CREATE VIEW api.offline_meters WITH (security_invoker = true) AS
SELECT * FROM api.meter_monitor WHERE NOT online;

CREATE VIEW api.gateway_status WITH (security_invoker = true) AS
SELECT g.property_id, g.gateway_id, g.serial, g.model, g.area_id, ar.name AS area_name,
	   g.last_seen,
	   coalesce(g.last_seen >= now() - make_interval(secs =>
					(SELECT prepaid._setting_numeric('pg_prepaid.gateway_timeout', 900))::float8), false)
		   AS online,
	   (SELECT count(*) FROM prepaid.meter m
		 WHERE m.property_id = g.property_id AND m.gateway_id = g.gateway_id) AS meters
  FROM prepaid.gateway g
  LEFT JOIN prepaid.area ar ON ar.property_id = g.property_id AND ar.area_id = g.area_id;

CREATE VIEW api.offline_gateways WITH (security_invoker = true) AS
SELECT * FROM api.gateway_status WHERE NOT online;

CREATE VIEW api.alarms WITH (security_invoker = true) AS
SELECT al.property_id, al.alarm_id, al.kind, al.severity, al.meter_id, m.address, m.shop_no,
	   m.area_id, al.gateway_id, al.detail, al.raised_at, al.cleared_at, al.acked_at, al.acked_by,
	   al.cleared_at IS NULL AS active
  FROM prepaid.alarm al
  LEFT JOIN prepaid.meter m ON m.property_id = al.property_id AND m.meter_id = al.meter_id;

-- F16: energy per local hour of today, yesterday, the same day last week and
-- last year (today's hours still to come are NULL).
CREATE VIEW api.overview_hourly WITH (security_invoker = true) AS
WITH d AS (
	SELECT p.property_id, p.time_zone, (now() AT TIME ZONE p.time_zone)::date AS today,
		   extract(hour FROM now() AT TIME ZONE p.time_zone)::integer AS current_hour
	  FROM prepaid.property p),
days AS MATERIALIZED (	-- the four local days as instants
	SELECT d.property_id, d.time_zone, x.tag, x.day::timestamp AT TIME ZONE d.time_zone AS lo,
		   (x.day + 1)::timestamp AT TIME ZONE d.time_zone AS hi
	  FROM d CROSS JOIN LATERAL (VALUES ('today', d.today), ('yesterday', d.today - 1),
										('last_week', d.today - 7),
										('last_year', (d.today - interval '1 year')::date)) x(tag, day)),
e AS (
	SELECT days.property_id, days.tag,
		   extract(hour FROM e.hour AT TIME ZONE days.time_zone)::integer AS hour_of_day,
		   sum(e.energy_wh) AS wh
	  FROM days
	  JOIN prepaid.property_energy_hourly e ON e.property_id = days.property_id
	   AND e.hour >= days.lo AND e.hour < days.hi
	 GROUP BY 1, 2, 3)
SELECT d.property_id, d.today AS local_date, h.hour_of_day, d.current_hour,
	   CASE WHEN h.hour_of_day <= d.current_hour
			THEN coalesce(sum(e.wh) FILTER (WHERE e.tag = 'today'), 0) * 0.001 END AS today_kwh,
	   coalesce(sum(e.wh) FILTER (WHERE e.tag = 'yesterday'), 0) * 0.001 AS yesterday_kwh,
	   coalesce(sum(e.wh) FILTER (WHERE e.tag = 'last_week'), 0) * 0.001 AS last_week_kwh,
	   coalesce(sum(e.wh) FILTER (WHERE e.tag = 'last_year'), 0) * 0.001 AS last_year_kwh
  FROM d
 CROSS JOIN generate_series(0, 23) h(hour_of_day)
  LEFT JOIN e ON e.property_id = d.property_id AND e.hour_of_day = h.hour_of_day
 GROUP BY d.property_id, d.today, h.hour_of_day, d.current_hour;

-- F16: meter counts by state per property, counted from api.meter_monitor
-- by prepaid.overview_refresh() (the "overview" job, every minute): a
-- dashboard over 10^5 or more meters cannot count them on every request.
-- Fee statuses are counted for prepaid meters (post-paid ones are never
-- cut off for their balance).
CREATE TABLE prepaid.meter_state_count (
	property_id    bigint PRIMARY KEY REFERENCES prepaid.property ON DELETE CASCADE,
	counted_at     timestamptz NOT NULL,
	meters         bigint NOT NULL,
	not_opened     bigint NOT NULL,
	online         bigint NOT NULL,
	offline        bigint NOT NULL,
	relay_closed   bigint NOT NULL,
	relay_open     bigint NOT NULL,
	relay_unknown  bigint NOT NULL,
	keep_power     bigint NOT NULL,
	prepaid        bigint NOT NULL,
	postpaid       bigint NOT NULL,
	low_balance    bigint NOT NULL,
	in_credit      bigint NOT NULL,
	cut_off        bigint NOT NULL
);
COMMENT ON TABLE prepaid.meter_state_count IS
	'meter counts by state per property as of counted_at (prepaid.overview_refresh, job "overview")';

CREATE FUNCTION prepaid.overview_refresh(p_property_id bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_n bigint;
BEGIN
	INSERT INTO prepaid.meter_state_count AS x
	SELECT p.property_id, now(), coalesce(c.meters, 0), coalesce(c.not_opened, 0),
		   coalesce(c.online, 0), coalesce(c.offline, 0), coalesce(c.relay_closed, 0),
		   coalesce(c.relay_open, 0), coalesce(c.relay_unknown, 0), coalesce(c.keep_power, 0),
		   coalesce(c.prepaid, 0), coalesce(c.postpaid, 0), coalesce(c.low_balance, 0),
		   coalesce(c.in_credit, 0), coalesce(c.cut_off, 0)
	  FROM prepaid.property p
	  LEFT JOIN (
		   SELECT mm.property_id, count(*) AS meters,
				  count(*) FILTER (WHERE NOT mm.opened) AS not_opened,
				  count(*) FILTER (WHERE mm.online) AS online,
				  count(*) FILTER (WHERE NOT mm.online) AS offline,
				  count(*) FILTER (WHERE mm.relay_actual = 'closed') AS relay_closed,
				  count(*) FILTER (WHERE mm.relay_actual = 'open') AS relay_open,
				  count(*) FILTER (WHERE mm.relay_actual = 'unknown') AS relay_unknown,
				  count(*) FILTER (WHERE mm.keep_power) AS keep_power,
				  count(*) FILTER (WHERE mm.mode = 'prepaid') AS prepaid,
				  count(*) FILTER (WHERE mm.mode = 'postpaid') AS postpaid,
				  count(*) FILTER (WHERE mm.mode = 'prepaid' AND mm.fee_status = 'low_balance') AS low_balance,
				  count(*) FILTER (WHERE mm.mode = 'prepaid' AND mm.fee_status = 'in_credit') AS in_credit,
				  count(*) FILTER (WHERE mm.mode = 'prepaid' AND mm.fee_status = 'cut_off') AS cut_off
			 FROM api.meter_monitor mm
			WHERE p_property_id IS NULL OR mm.property_id = p_property_id
			GROUP BY mm.property_id) c ON c.property_id = p.property_id
	 WHERE p_property_id IS NULL OR p.property_id = p_property_id
	ON CONFLICT (property_id) DO UPDATE
	   SET counted_at = excluded.counted_at, meters = excluded.meters,
		   not_opened = excluded.not_opened, online = excluded.online, offline = excluded.offline,
		   relay_closed = excluded.relay_closed, relay_open = excluded.relay_open,
		   relay_unknown = excluded.relay_unknown, keep_power = excluded.keep_power,
		   prepaid = excluded.prepaid, postpaid = excluded.postpaid,
		   low_balance = excluded.low_balance, in_credit = excluded.in_credit,
		   cut_off = excluded.cut_off;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END
$$;
COMMENT ON FUNCTION prepaid.overview_refresh(bigint) IS
	'count the meters of every property (or one) by state into meter_state_count';

INSERT INTO prepaid.job (job_name, command, schedule_interval) VALUES
	('overview', 'SELECT prepaid.overview_refresh()', interval '60 seconds');

-- F16: one row per property company. Alarms are live; energy comes from
-- the rollups, complete for every reading committed before energy_as_of
-- (the last catch-up of the "rollups" job, 91_rollups_apply.sql); meter
-- counts are those of meter_state_count (counts_at says when).
CREATE VIEW api.overview WITH (security_invoker = true) AS
WITH gw AS (
	SELECT property_id, count(*) AS gateways, count(*) FILTER (WHERE NOT online) AS gateways_offline
	  FROM api.gateway_status GROUP BY 1),
al AS (
	SELECT property_id, count(*) AS alarms_active,
		   count(*) FILTER (WHERE severity = 'critical') AS alarms_critical,
		   max(raised_at) AS newest_alarm_at
	  FROM prepaid.alarm WHERE cleared_at IS NULL GROUP BY 1),
hr AS (
	SELECT property_id, local_date, max(current_hour) AS current_hour,
		   sum(today_kwh) AS today_kwh, sum(yesterday_kwh) AS yesterday_kwh,
		   sum(last_week_kwh) FILTER (WHERE hour_of_day <= current_hour) AS last_week_same_period_kwh,
		   sum(last_year_kwh) FILTER (WHERE hour_of_day <= current_hour) AS last_year_same_period_kwh,
		   array_agg(today_kwh ORDER BY hour_of_day) AS hourly_today_kwh,
		   array_agg(yesterday_kwh ORDER BY hour_of_day) AS hourly_yesterday_kwh
	  FROM api.overview_hourly GROUP BY 1, 2)
SELECT p.property_id, p.name AS property_name, p.time_zone, hr.local_date, mc.counted_at AS counts_at,
	   rs.caught_up_at AS energy_as_of,
	   coalesce(mc.meters, 0) AS meters, coalesce(mc.not_opened, 0) AS not_opened,
	   coalesce(mc.online, 0) AS online, coalesce(mc.offline, 0) AS offline,
	   coalesce(mc.relay_closed, 0) AS relay_closed, coalesce(mc.relay_open, 0) AS relay_open,
	   coalesce(mc.relay_unknown, 0) AS relay_unknown, coalesce(mc.keep_power, 0) AS keep_power,
	   coalesce(mc.prepaid, 0) AS prepaid, coalesce(mc.postpaid, 0) AS postpaid,
	   coalesce(mc.low_balance, 0) AS low_balance, coalesce(mc.in_credit, 0) AS in_credit,
	   coalesce(mc.cut_off, 0) AS cut_off,
	   coalesce(gw.gateways, 0) AS gateways, coalesce(gw.gateways_offline, 0) AS gateways_offline,
	   coalesce(al.alarms_active, 0) AS alarms_active,
	   coalesce(al.alarms_critical, 0) AS alarms_critical, al.newest_alarm_at,
	   hr.today_kwh, hr.yesterday_kwh, hr.last_week_same_period_kwh, hr.last_year_same_period_kwh,
	   CASE WHEN hr.last_week_same_period_kwh > 0
			THEN round((hr.today_kwh - hr.last_week_same_period_kwh) * 100
					   / hr.last_week_same_period_kwh, 1) END AS growth_week_pct,
	   CASE WHEN hr.last_year_same_period_kwh > 0
			THEN round((hr.today_kwh - hr.last_year_same_period_kwh) * 100
					   / hr.last_year_same_period_kwh, 1) END AS growth_year_pct,
	   hr.hourly_today_kwh, hr.hourly_yesterday_kwh
  FROM prepaid.property p
  LEFT JOIN prepaid.meter_state_count mc ON mc.property_id = p.property_id
  LEFT JOIN prepaid.rollup_state rs ON rs.property_id = p.property_id
  LEFT JOIN gw ON gw.property_id = p.property_id
  LEFT JOIN al ON al.property_id = p.property_id
  LEFT JOIN hr ON hr.property_id = p.property_id;
COMMENT ON VIEW api.overview IS
	'per property: meter counts by state, energy today and yesterday (as of energy_as_of), growth, alarms, gateways';

-- How fresh the rollups are (energy, bills' TOU split, electrical_daily):
-- per property, the meters with readings not rolled up yet, the oldest
-- rollup cursor among them and the last complete catch-up. Reads every
-- meter of the property: for a status page, not for every request.
CREATE VIEW api.rollup_status WITH (security_invoker = true) AS
SELECT s.property_id, s.caught_up_at, s.meters_pending, s.pending_after, s.newest_reading_at
  FROM prepaid.rollup_status s;
COMMENT ON VIEW api.rollup_status IS
	'per property: meters with readings not yet in the rollups, since when, and the last complete catch-up';

-- F15: the newest values of each meter.
CREATE VIEW api.electrical_latest WITH (security_invoker = true) AS
SELECT m.property_id, m.meter_id, m.address, m.shop_no, m.area_id, m.phase, m.pt_ratio,
	   m.ct_ratio, l.read_at,
	   l.voltage_a * m.pt_ratio AS voltage_a, l.voltage_b * m.pt_ratio AS voltage_b,
	   l.voltage_c * m.pt_ratio AS voltage_c,
	   l.current_a * m.ct_ratio AS current_a, l.current_b * m.ct_ratio AS current_b,
	   l.current_c * m.ct_ratio AS current_c,
	   l.power_kw * m.pt_ratio * m.ct_ratio AS power_kw,
	   r.power_a_kw * m.pt_ratio * m.ct_ratio AS power_a_kw,
	   r.power_b_kw * m.pt_ratio * m.ct_ratio AS power_b_kw,
	   r.power_c_kw * m.pt_ratio * m.ct_ratio AS power_c_kw,
	   r.reactive_kvar * m.pt_ratio * m.ct_ratio AS reactive_kvar,
	   l.power_factor, r.frequency_hz, l.demand_kw * m.pt_ratio * m.ct_ratio AS demand_kw
  FROM prepaid.meter m
  JOIN prepaid.meter_latest l ON l.property_id = m.property_id AND l.meter_id = m.meter_id
  LEFT JOIN prepaid.reading r
	ON r.property_id = l.property_id AND r.meter_id = l.meter_id AND r.read_at = l.read_at;

-- F15: every reading, for one meter and a time range (filter meter_id and read_at).
CREATE VIEW api.electrical_history WITH (security_invoker = true) AS
SELECT r.property_id, r.meter_id, r.read_at,
	   r.voltage_a * m.pt_ratio AS voltage_a, r.voltage_b * m.pt_ratio AS voltage_b,
	   r.voltage_c * m.pt_ratio AS voltage_c,
	   r.current_a * m.ct_ratio AS current_a, r.current_b * m.ct_ratio AS current_b,
	   r.current_c * m.ct_ratio AS current_c,
	   r.power_kw * m.pt_ratio * m.ct_ratio AS power_kw,
	   r.power_a_kw * m.pt_ratio * m.ct_ratio AS power_a_kw,
	   r.power_b_kw * m.pt_ratio * m.ct_ratio AS power_b_kw,
	   r.power_c_kw * m.pt_ratio * m.ct_ratio AS power_c_kw,
	   r.reactive_kvar * m.pt_ratio * m.ct_ratio AS reactive_kvar,
	   r.power_factor, r.frequency_hz,
	   r.energy_wh * m.pt_ratio::bigint * m.ct_ratio * 0.001 AS energy_kwh
  FROM prepaid.reading r
  JOIN prepaid.meter m ON m.property_id = r.property_id AND m.meter_id = r.meter_id;

-- F15: per local day, from the daily rollup.
CREATE VIEW api.electrical_daily WITH (security_invoker = true) AS
SELECT e.property_id, e.meter_id, e.day, e.samples, e.first_at, e.last_at,
	   round(e.voltage_a_sum / nullif(e.n_voltage, 0) * m.pt_ratio, 2) AS voltage_a_avg,
	   round(e.voltage_b_sum / nullif(e.n_voltage, 0) * m.pt_ratio, 2) AS voltage_b_avg,
	   round(e.voltage_c_sum / nullif(e.n_voltage, 0) * m.pt_ratio, 2) AS voltage_c_avg,
	   e.voltage_a_min * m.pt_ratio AS voltage_a_min, e.voltage_a_max * m.pt_ratio AS voltage_a_max,
	   e.voltage_b_min * m.pt_ratio AS voltage_b_min, e.voltage_b_max * m.pt_ratio AS voltage_b_max,
	   e.voltage_c_min * m.pt_ratio AS voltage_c_min, e.voltage_c_max * m.pt_ratio AS voltage_c_max,
	   round(e.current_a_sum / nullif(e.n_current, 0) * m.ct_ratio, 3) AS current_a_avg,
	   round(e.current_b_sum / nullif(e.n_current, 0) * m.ct_ratio, 3) AS current_b_avg,
	   round(e.current_c_sum / nullif(e.n_current, 0) * m.ct_ratio, 3) AS current_c_avg,
	   e.current_a_max * m.ct_ratio AS current_a_max, e.current_b_max * m.ct_ratio AS current_b_max,
	   e.current_c_max * m.ct_ratio AS current_c_max,
	   round(e.power_sum / nullif(e.n_power, 0) * m.pt_ratio * m.ct_ratio, 4) AS power_kw_avg,
	   e.power_max * m.pt_ratio * m.ct_ratio AS power_kw_max,
	   round(e.power_a_sum / nullif(e.n_power, 0) * m.pt_ratio * m.ct_ratio, 4) AS power_a_kw_avg,
	   round(e.power_b_sum / nullif(e.n_power, 0) * m.pt_ratio * m.ct_ratio, 4) AS power_b_kw_avg,
	   round(e.power_c_sum / nullif(e.n_power, 0) * m.pt_ratio * m.ct_ratio, 4) AS power_c_kw_avg,
	   round(e.reactive_sum / nullif(e.n_reactive, 0) * m.pt_ratio * m.ct_ratio, 4)
		   AS reactive_kvar_avg,
	   round(e.pf_sum / nullif(e.n_pf, 0), 3) AS power_factor_avg, e.pf_min AS power_factor_min
  FROM prepaid.electrical_daily e
  JOIN prepaid.meter m ON m.property_id = e.property_id AND m.meter_id = e.meter_id;

-- F15: per local hour of one meter over a range (at most 93 days), from its
-- readings: averages, extremes and the readings taken in the hour, and the
-- energy of the intervals ending in it; use api.electrical_daily for
-- longer ranges.
CREATE FUNCTION api.electrical_hourly(meter_id bigint, t_from timestamptz, t_to timestamptz)
RETURNS TABLE (hour timestamptz, samples bigint, voltage_a_avg numeric, voltage_b_avg numeric,
			   voltage_c_avg numeric, voltage_min numeric, voltage_max numeric,
			   current_a_avg numeric, current_b_avg numeric, current_c_avg numeric,
			   current_max numeric, power_kw_avg numeric, power_kw_max numeric,
			   reactive_kvar_avg numeric, power_factor_avg numeric, energy_kwh numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_meter prepaid.meter;
	v_tz    text;
BEGIN
	IF t_from IS NULL OR t_to IS NULL OR t_to <= t_from OR t_to - t_from > interval '93 days' THEN
		RAISE EXCEPTION 'invalid range for hourly values'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('From %s to %s.', t_from, t_to),
				  HINT = 'Give a range of at most 93 days; use api.electrical_daily for longer ones.';
	END IF;
	SELECT m.* INTO v_meter FROM prepaid.meter m WHERE m.meter_id = electrical_hourly.meter_id;
	IF NOT FOUND THEN	-- also when row-level security hides it
		RAISE EXCEPTION 'meter % does not exist', electrical_hourly.meter_id
			USING ERRCODE = 'no_data_found';
	END IF;
	SELECT p.time_zone INTO v_tz FROM prepaid.property p WHERE p.property_id = v_meter.property_id;
	RETURN QUERY
	WITH r AS (	-- the readings of the range and the one before it
		SELECT x.*, date_trunc('hour', x.read_at, v_tz) AS h,
			   date_trunc('hour', x.read_at - interval '1 microsecond', v_tz) AS eh,
			   prepaid._register_delta(lag(x.energy_wh) OVER (ORDER BY x.read_at), x.energy_wh,
									   v_meter.register_modulus_wh) AS d_wh
		  FROM (SELECT * FROM prepaid.reading r
				 WHERE r.property_id = v_meter.property_id AND r.meter_id = v_meter.meter_id
				   AND r.read_at >= t_from AND r.read_at < t_to
				UNION ALL
				(SELECT * FROM prepaid.reading r
				  WHERE r.property_id = v_meter.property_id AND r.meter_id = v_meter.meter_id
					AND r.read_at < t_from
				  ORDER BY r.read_at DESC LIMIT 1)) x),
	energy AS (	-- intervals ending in the hour
		SELECT r.eh, sum(r.d_wh) AS wh FROM r
		 WHERE r.read_at > t_from AND r.d_wh IS NOT NULL GROUP BY r.eh),
	samples AS (	-- readings taken in the hour
		SELECT r.h, count(*) AS n,
			   avg(r.voltage_a) AS va, avg(r.voltage_b) AS vb, avg(r.voltage_c) AS vc,
			   least(min(r.voltage_a), min(r.voltage_b), min(r.voltage_c)) AS vmin,
			   greatest(max(r.voltage_a), max(r.voltage_b), max(r.voltage_c)) AS vmax,
			   avg(r.current_a) AS ia, avg(r.current_b) AS ib, avg(r.current_c) AS ic,
			   greatest(max(r.current_a), max(r.current_b), max(r.current_c)) AS imax,
			   avg(r.power_kw) AS p, max(r.power_kw) AS pmax, avg(r.reactive_kvar) AS q,
			   avg(r.power_factor) AS pf
		  FROM r WHERE r.read_at >= t_from GROUP BY r.h)
	SELECT coalesce(s.h, e.eh), coalesce(s.n, 0), round(s.va * v_meter.pt_ratio, 2),
		   round(s.vb * v_meter.pt_ratio, 2), round(s.vc * v_meter.pt_ratio, 2),
		   s.vmin * v_meter.pt_ratio, s.vmax * v_meter.pt_ratio,
		   round(s.ia * v_meter.ct_ratio, 3), round(s.ib * v_meter.ct_ratio, 3),
		   round(s.ic * v_meter.ct_ratio, 3), s.imax * v_meter.ct_ratio,
		   round(s.p * v_meter.pt_ratio * v_meter.ct_ratio, 4),
		   s.pmax * v_meter.pt_ratio * v_meter.ct_ratio,
		   round(s.q * v_meter.pt_ratio * v_meter.ct_ratio, 4), round(s.pf, 3),
		   coalesce(e.wh, 0) * v_meter.pt_ratio::bigint * v_meter.ct_ratio * 0.001
	  FROM samples s FULL JOIN energy e ON e.eh = s.h
	 ORDER BY 1;
END
$$;

-- Energy per meter and local day, total and per TOU period.
CREATE VIEW api.energy_daily WITH (security_invoker = true) AS
SELECT d.property_id, d.meter_id, d.day, d.energy_wh * 0.001 AS energy_kwh,
	   d.sharp_kwh, d.peak_kwh, d.flat_kwh, d.valley_kwh, d.deep_kwh
  FROM prepaid.meter_energy_daily d;

-- F10, F19: per meter and month, the maximum 15-minute demand with its time,
-- the rule of the meter's customer in force that month, the customer's
-- charge, and this meter's share of it (in proportion to its maximum
-- demand, in whole fen adding up to the charge; all on the lowest meter when
-- no meter has a demand). A customer's billed demand is the sum of its
-- meters' maxima (each meter is a metering point). Months are those with a
-- maximum demand or a month usage.
CREATE VIEW api.capacity_meter WITH (security_invoker = true) AS
WITH k AS NOT MATERIALIZED (	-- meter months: with a maximum demand, or only a month usage
	SELECT d.property_id, d.meter_id, d.month, d.max_kw, d.max_at FROM prepaid.demand_max d
	UNION ALL
	SELECT u.property_id, u.meter_id, u.month, NULL, NULL FROM prepaid.month_usage u
	 WHERE NOT EXISTS (SELECT 1 FROM prepaid.demand_max d WHERE d.property_id = u.property_id
						  AND d.meter_id = u.meter_id AND d.month = u.month)),
rule AS NOT MATERIALIZED (	-- each rule with the month its successor starts
	SELECT r.*, lead(r.valid_from) OVER (PARTITION BY r.property_id, r.customer_id
										ORDER BY r.valid_from) AS valid_to
	  FROM prepaid.capacity_rule r),
c AS NOT MATERIALIZED (
	SELECT k.*, a.customer_id, r.basis, r.price, r.installed_kva, r.contract_kw,
		   sum(k.max_kw) OVER w AS customer_kw,
		   row_number() OVER (PARTITION BY k.property_id, a.customer_id, k.month
							  ORDER BY k.meter_id) AS meter_rank
	  FROM k
	  JOIN prepaid.meter m ON m.property_id = k.property_id AND m.meter_id = k.meter_id
	  JOIN prepaid.account a ON a.property_id = m.property_id AND a.account_id = m.account_id
	  LEFT JOIN rule r ON r.property_id = a.property_id AND r.customer_id = a.customer_id
		   AND r.valid_from <= k.month AND (r.valid_to IS NULL OR k.month < r.valid_to)
	WINDOW w AS (PARTITION BY k.property_id, a.customer_id, k.month)),
q AS NOT MATERIALIZED (	-- the customer's billed quantity, excess and charge
	SELECT c.*,
		   CASE c.basis WHEN 'max_demand' THEN coalesce(c.customer_kw, 0)
						WHEN 'contract_demand' THEN c.contract_kw
						WHEN 'transformer' THEN c.installed_kva END AS billed_quantity,
		   CASE WHEN c.basis = 'contract_demand'
				THEN greatest(coalesce(c.customer_kw, 0) - 1.05 * c.contract_kw, 0) END AS excess_kw
	  FROM c),
ch AS NOT MATERIALIZED (
	SELECT q.*,
		   round(q.billed_quantity * q.price + coalesce(q.excess_kw, 0) * q.price * 2, 2) AS charge
	  FROM q),
s AS NOT MATERIALIZED (	-- this meter's exact share in fen
	SELECT ch.*,
		   CASE WHEN coalesce(ch.customer_kw, 0) > 0
				THEN ch.charge * 100 * coalesce(ch.max_kw, 0) / ch.customer_kw
				WHEN ch.meter_rank = 1 THEN ch.charge * 100 ELSE 0 END AS share_fen
	  FROM ch),
f AS NOT MATERIALIZED (
	SELECT s.*, floor(s.share_fen) AS fen,
		   round(s.charge * 100) - sum(floor(s.share_fen)) OVER w AS left_fen,
		   row_number() OVER (PARTITION BY s.property_id, s.customer_id, s.month
							  ORDER BY s.share_fen - floor(s.share_fen) DESC, s.meter_id) AS frac_rank
	  FROM s
	WINDOW w AS (PARTITION BY s.property_id, s.customer_id, s.month))
SELECT f.property_id, f.meter_id, f.customer_id, f.month, f.max_kw, f.max_at, f.customer_kw,
	   f.basis, f.price, f.installed_kva, f.contract_kw, f.billed_quantity, f.excess_kw,
	   f.charge AS customer_charge,
	   round((f.fen + CASE WHEN f.frac_rank <= f.left_fen THEN 1 ELSE 0 END) / 100, 2) AS amount
  FROM f;

-- F10, F19: per customer and month.
CREATE VIEW api.capacity_report WITH (security_invoker = true) AS
SELECT cm.property_id, cm.customer_id, cu.name AS customer_name, cm.month,
	   count(*) AS meters, max(cm.customer_kw) AS demand_kw, max(cm.max_kw) AS max_meter_kw,
	   (array_agg(cm.max_at ORDER BY cm.max_kw DESC NULLS LAST, cm.max_at))[1] AS max_at,
	   max(cm.basis) AS basis, max(cm.price) AS price, max(cm.installed_kva) AS installed_kva,
	   max(cm.contract_kw) AS contract_kw, max(cm.billed_quantity) AS billed_quantity,
	   max(cm.excess_kw) AS excess_kw,
	   CASE WHEN max(cm.basis) = 'transformer' THEN 'kVA' WHEN max(cm.basis) IS NOT NULL THEN 'kW'
	   END AS unit,
	   sum(cm.amount) AS amount
  FROM api.capacity_meter cm
  JOIN prepaid.customer cu ON cu.property_id = cm.property_id AND cu.customer_id = cm.customer_id
 GROUP BY cm.property_id, cm.customer_id, cu.name, cm.month;

-- F8, F19: one row per post-paid meter and month. The month's energy is the
-- difference of two month-start freezes (prepaid.month_usage; estimated
-- when either freeze was), x PT x CT. Per TOU period it comes from the
-- per-rate registers of the freezes when the meter has them ("registers");
-- otherwise the total is split in whole Wh in proportion to the month's
-- per-period energy of the readings ("readings", meter_energy_monthly), or,
-- without readings, over the tariff calendar as if the load were even
-- ("uniform"); the split is by largest remainder (ties: sharp, peak, flat,
-- valley, deep), so the periods add up exactly to the month's energy.
-- Prices are those of the meter's tariff version and season in force at the
-- start of the month; each period's amount is rounded to the fen; the
-- capacity line is the meter's share of its customer's capacity charge
-- (api.capacity_meter); amount_due is the sum of the lines. One row per
-- bill all the way (no line rows), and no materialized CTE, so filters on
-- month, property_id and meter_id reach the tables.
CREATE VIEW api.postpaid_bill WITH (security_invoker = true) AS
WITH u AS NOT MATERIALIZED (
	SELECT mu.property_id, mu.meter_id, mu.month, mu.from_at, mu.to_at, mu.estimated, mu.energy_wh,
		   nullif(mu.period_wh, '{}') AS period_wh, m.address, m.shop_no, m.owner_name, m.account_id,
		   m.tariff_id, m.pt_ratio::bigint * m.ct_ratio AS mult
	  FROM prepaid.month_usage mu
	  JOIN prepaid.meter m ON m.property_id = mu.property_id AND m.meter_id = mu.meter_id
	 WHERE m.mode = 'postpaid'),
w AS NOT MATERIALIZED (	-- the weights of the periods for a split
	SELECT u.*, u.energy_wh * u.mult AS total_wh,
		   CASE WHEN u.period_wh IS NOT NULL THEN 'registers'
				WHEN mo.sharp_kwh + mo.peak_kwh + mo.flat_kwh + mo.valley_kwh + mo.deep_kwh > 0 THEN 'readings'
				ELSE 'uniform' END AS method,
		   coalesce(mo.sharp_kwh, un.sharp, 0) AS ws, coalesce(mo.peak_kwh, un.peak, 0) AS wp,
		   coalesce(mo.flat_kwh, un.flat, 0) AS wf, coalesce(mo.valley_kwh, un.valley, 0) AS wv,
		   coalesce(mo.deep_kwh, un.deep, 0) AS wd
	  FROM u
	  LEFT JOIN prepaid.meter_energy_monthly mo
		ON mo.property_id = u.property_id AND mo.meter_id = u.meter_id AND mo.month = u.month
	   AND u.period_wh IS NULL
	   AND mo.sharp_kwh + mo.peak_kwh + mo.flat_kwh + mo.valley_kwh + mo.deep_kwh > 0
	  LEFT JOIN LATERAL (	-- the parts of 1000 kWh add up to exactly 1000
		   SELECT sum(s.kwh) FILTER (WHERE s.period = 'sharp') AS sharp,
				  sum(s.kwh) FILTER (WHERE s.period = 'peak') AS peak,
				  sum(s.kwh) FILTER (WHERE s.period = 'flat') AS flat,
				  sum(s.kwh) FILTER (WHERE s.period = 'valley') AS valley,
				  sum(s.kwh) FILTER (WHERE s.period = 'deep') AS deep
			 FROM prepaid.tou_split(u.tariff_id, u.from_at, u.to_at, 1000) s
			WHERE u.period_wh IS NULL AND mo.meter_id IS NULL) un ON true),
e AS NOT MATERIALIZED (	-- Wh per period: from the registers, or by largest remainder:
						-- the floors, plus one for the left_wh periods with the
						-- largest fractions (a period's rank = the periods ahead of it).
						-- OFFSET 0 keeps each step computed once per bill.
	SELECT w.*, x.sharp_wh, x.peak_wh, x.flat_wh, x.valley_wh, x.deep_wh
	  FROM w
	 CROSS JOIN LATERAL (
		   SELECT w.total_wh * w.ws / nullif(w.ws + w.wp + w.wf + w.wv + w.wd, 0) AS qs,
				  w.total_wh * w.wp / nullif(w.ws + w.wp + w.wf + w.wv + w.wd, 0) AS qp,
				  w.total_wh * w.wf / nullif(w.ws + w.wp + w.wf + w.wv + w.wd, 0) AS qf,
				  w.total_wh * w.wv / nullif(w.ws + w.wp + w.wf + w.wv + w.wd, 0) AS qv,
				  w.total_wh * w.wd / nullif(w.ws + w.wp + w.wf + w.wv + w.wd, 0) AS qd
			OFFSET 0) q
	 CROSS JOIN LATERAL (
		   SELECT floor(q.qs) AS fs, floor(q.qp) AS fp, floor(q.qf) AS ff, floor(q.qv) AS fv,
				  floor(q.qd) AS fd, q.qs - floor(q.qs) AS rs, q.qp - floor(q.qp) AS rp,
				  q.qf - floor(q.qf) AS rf, q.qv - floor(q.qv) AS rv, q.qd - floor(q.qd) AS rd
			OFFSET 0) f
	 CROSS JOIN LATERAL (
		   SELECT w.total_wh - (f.fs + f.fp + f.ff + f.fv + f.fd) AS left_wh OFFSET 0) l
	 CROSS JOIN LATERAL (
		   SELECT CASE WHEN w.method = 'registers' THEN (w.period_wh ->> 'sharp')::bigint * w.mult
					   WHEN w.ws > 0 THEN f.fs + ((f.rp > f.rs)::int + (f.rf > f.rs)::int
						   + (f.rv > f.rs)::int + (f.rd > f.rs)::int < l.left_wh)::int END AS sharp_wh,
				  CASE WHEN w.method = 'registers' THEN (w.period_wh ->> 'peak')::bigint * w.mult
					   WHEN w.wp > 0 THEN f.fp + ((f.rs >= f.rp)::int + (f.rf > f.rp)::int
						   + (f.rv > f.rp)::int + (f.rd > f.rp)::int < l.left_wh)::int END AS peak_wh,
				  CASE WHEN w.method = 'registers' THEN (w.period_wh ->> 'flat')::bigint * w.mult
					   WHEN w.wf > 0 THEN f.ff + ((f.rs >= f.rf)::int + (f.rp >= f.rf)::int
						   + (f.rv > f.rf)::int + (f.rd > f.rf)::int < l.left_wh)::int END AS flat_wh,
				  CASE WHEN w.method = 'registers' THEN (w.period_wh ->> 'valley')::bigint * w.mult
					   WHEN w.wv > 0 THEN f.fv + ((f.rs >= f.rv)::int + (f.rp >= f.rv)::int
						   + (f.rf >= f.rv)::int + (f.rd > f.rv)::int < l.left_wh)::int END AS valley_wh,
				  CASE WHEN w.method = 'registers' THEN (w.period_wh ->> 'deep')::bigint * w.mult
					   WHEN w.wd > 0 THEN f.fd + ((f.rs >= f.rd)::int + (f.rp >= f.rd)::int
						   + (f.rf >= f.rd)::int + (f.rv >= f.rd)::int < l.left_wh)::int END AS deep_wh
			OFFSET 0) x),
price AS NOT MATERIALIZED (
	SELECT t.tariff_id, t.from_at,
		   prepaid.tou_price(t.tariff_id, t.from_at, 'sharp') AS sharp,
		   prepaid.tou_price(t.tariff_id, t.from_at, 'peak') AS peak,
		   prepaid.tou_price(t.tariff_id, t.from_at, 'flat') AS flat,
		   prepaid.tou_price(t.tariff_id, t.from_at, 'valley') AS valley,
		   prepaid.tou_price(t.tariff_id, t.from_at, 'deep') AS deep
	  FROM (SELECT DISTINCT u.tariff_id, u.from_at FROM u) t),
b AS NOT MATERIALIZED (
	SELECT e.*, pr.sharp AS sharp_price, pr.peak AS peak_price, pr.flat AS flat_price,
		   pr.valley AS valley_price, pr.deep AS deep_price, am.*
	  FROM e
	  LEFT JOIN price pr ON pr.tariff_id = e.tariff_id AND pr.from_at = e.from_at
	 CROSS JOIN LATERAL (
		   SELECT round(e.sharp_wh * 0.001 * pr.sharp, 2) AS sharp_amount,
				  round(e.peak_wh * 0.001 * pr.peak, 2) AS peak_amount,
				  round(e.flat_wh * 0.001 * pr.flat, 2) AS flat_amount,
				  round(e.valley_wh * 0.001 * pr.valley, 2) AS valley_amount,
				  round(e.deep_wh * 0.001 * pr.deep, 2) AS deep_amount
			OFFSET 0) am)
SELECT b.property_id, b.meter_id, b.address, b.shop_no, b.owner_name, a.customer_id,
	   c.name AS customer_name, b.account_id, b.month, b.from_at, b.to_at, b.estimated, b.tariff_id,
	   b.total_wh * 0.001 AS energy_kwh, b.method AS split_method,
	   b.sharp_wh * 0.001 AS sharp_kwh, b.sharp_price, b.sharp_amount,
	   b.peak_wh * 0.001 AS peak_kwh, b.peak_price, b.peak_amount,
	   b.flat_wh * 0.001 AS flat_kwh, b.flat_price, b.flat_amount,
	   b.valley_wh * 0.001 AS valley_kwh, b.valley_price, b.valley_amount,
	   b.deep_wh * 0.001 AS deep_kwh, b.deep_price, b.deep_amount,
	   coalesce(b.sharp_amount, 0) + coalesce(b.peak_amount, 0) + coalesce(b.flat_amount, 0)
		   + coalesce(b.valley_amount, 0) + coalesce(b.deep_amount, 0) AS energy_amount,
	   cm.basis AS capacity_basis, cm.billed_quantity AS capacity_quantity,
	   CASE WHEN cm.basis = 'transformer' THEN 'kVA' WHEN cm.basis IS NOT NULL THEN 'kW' END
		   AS capacity_unit,
	   cm.price AS capacity_price, coalesce(cm.amount, 0) AS capacity_amount,
	   coalesce(b.sharp_amount, 0) + coalesce(b.peak_amount, 0) + coalesce(b.flat_amount, 0)
		   + coalesce(b.valley_amount, 0) + coalesce(b.deep_amount, 0) + coalesce(cm.amount, 0)
		   AS amount_due
  FROM b
  JOIN prepaid.account a ON a.property_id = b.property_id AND a.account_id = b.account_id
  LEFT JOIN prepaid.customer c ON c.property_id = a.property_id AND c.customer_id = a.customer_id
  LEFT JOIN api.capacity_meter cm
	ON cm.property_id = b.property_id AND cm.meter_id = b.meter_id AND cm.month = b.month
   AND cm.basis IS NOT NULL;
COMMENT ON VIEW api.postpaid_bill IS
	'monthly bill of each post-paid meter: kWh, price and amount per TOU period, capacity charge, amount due';

-- F8, F19: the same bills as lines: 1-5 the TOU periods with energy, 6 the
-- capacity charge (quantity: the customer's billed kW or kVA; amount: this
-- meter's share). method: registers / readings / uniform, or the capacity basis.
CREATE VIEW api.postpaid_bill_line WITH (security_invoker = true) AS
SELECT b.property_id, b.meter_id, b.month, x.line_no, x.item, x.quantity, x.unit, x.price, x.amount,
	   b.estimated, x.method
  FROM api.postpaid_bill b
 CROSS JOIN LATERAL (VALUES
		(1, 'sharp', b.sharp_kwh, 'kWh', b.sharp_price, b.sharp_amount, b.split_method),
		(2, 'peak', b.peak_kwh, 'kWh', b.peak_price, b.peak_amount, b.split_method),
		(3, 'flat', b.flat_kwh, 'kWh', b.flat_price, b.flat_amount, b.split_method),
		(4, 'valley', b.valley_kwh, 'kWh', b.valley_price, b.valley_amount, b.split_method),
		(5, 'deep', b.deep_kwh, 'kWh', b.deep_price, b.deep_amount, b.split_method),
		(6, 'capacity', b.capacity_quantity, b.capacity_unit, b.capacity_price, b.capacity_amount,
		 b.capacity_basis)) x(line_no, item, quantity, unit, price, amount, method)
 WHERE x.quantity IS NOT NULL;
COMMENT ON VIEW api.postpaid_bill_line IS
	'lines of post-paid bills: kWh per TOU period with price and amount, and the capacity charge';
