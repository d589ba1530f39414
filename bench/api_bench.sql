-- bench/api_bench.sql: the api reports at scale, against a naive baseline.
--
--   createdb bench && psql -d bench -c 'CREATE EXTENSION pg_prepaid CASCADE'
--   psql -X -d bench -v ON_ERROR_STOP=1 -f bench/api_bench.sql           # 100,000 meters
--   BENCH_SMOKE=1 psql -X -d bench -v ON_ERROR_STOP=1 -f bench/api_bench.sql   # 2,000 meters, < 1 min
--   (or -v smoke=1; -v meters=N overrides the park size)
--
-- Needs a database with pg_prepaid and no data of its own (it refuses
-- otherwise: ledger entries cannot be deleted, so it cannot clean up).
--
-- What it builds (full mode; smoke in brackets):
--   5 [2] property companies, 100,000 [2,000] meters (30 % three-phase with
--   four rate registers and CT 20, 20 % post-paid, 5 % keep-power, 2 % not
--   opened, 1 % silent), one money account each, 80,000 [1,600] customers,
--   100 [10] areas per company, a gateway per 25 meters, a TOU tariff;
--   balances from a recharge and a debit per account (normal, low, in
--   credit, cut off); capacity rules for 10 % of the customers.
--   Raw readings every 30 minutes for every meter from local midnight
--   yesterday until now [the last 24 hours], written slot by slot as the
--   ingest daemon would (one INSERT of all meters per slot, one transaction
--   each): all but the last 4 [2] slots, then folded into the rollups by one
--   prepaid.rollup_catch_up() (the rollups job), the last slots each followed
--   by a catch-up (timed: ingest with rollups).
--   Before the raw window the rollups themselves are generated set-based
--   (a month of meter_energy_daily and its meter_energy_monthly, 400 days of
--   property_energy_hourly), and
--   last month's month_usage and demand_max for every meter: a month of
--   30-minute readings for 100,000 meters is 144 M rows, too slow to write
--   on a 2-core machine (about 40,000 rows/s with the core reading triggers,
--   i.e. an hour), so the bench writes the raw days the overview needs.
--
-- What it prints: the setup steps with their durations, then per figure
--   RESULT|name|seconds|baseline_seconds|ratio|note
-- seconds: median of several runs of the api query (as superuser unless
-- the name says operator: through row-level security with a JWT claim);
-- baseline_seconds: the same report computed the naive way from raw
-- readings and the ledger, over the raw readings that exist (note says how
-- many) — for the monthly reports that is a fraction of a month, and the
-- note gives the month-equivalent estimate.

\set QUIET on
\pset pager off
\pset footer off
\if :{?smoke}
\else
\getenv smoke BENCH_SMOKE
\endif
\if :{?smoke}
\else
\set smoke 0
\endif
SELECT (:'smoke' IN ('1', 'true', 'on', 'yes')) AS is_smoke \gset
\if :{?meters}
\else
SELECT CASE WHEN :'is_smoke' THEN 2000 ELSE 100000 END AS meters \gset
\endif
SELECT CASE WHEN :'is_smoke' THEN 2 ELSE 5 END AS properties,
	   CASE WHEN :'is_smoke' THEN 10 ELSE 100 END AS areas,
	   CASE WHEN :'is_smoke' THEN 2 ELSE 4 END AS live_slots,
	   CASE WHEN :'is_smoke' THEN 3 ELSE 5 END AS runs,
	   CASE WHEN :'is_smoke' THEN 1 ELSE 3 END AS naive_runs \gset

DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM prepaid.property) OR EXISTS (SELECT 1 FROM prepaid.ledger) THEN
		RAISE EXCEPTION 'api_bench needs a database with pg_prepaid and no data'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'createdb bench && psql -d bench -c ''CREATE EXTENSION pg_prepaid CASCADE''';
	END IF;
END
$$;

CREATE SCHEMA bench;
CREATE TABLE bench.config AS
SELECT :meters::integer AS meters, :properties::integer AS properties, :areas::integer AS areas,
	   :live_slots::integer AS live_slots, 'Asia/Shanghai'::text AS tz;
CREATE TABLE bench.step (step text, seconds numeric, note text, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE bench.result (name text PRIMARY KEY, seconds numeric, baseline_seconds numeric, note text);
CREATE TABLE bench.ingest_log (slot timestamptz, rows bigint, seconds numeric, rollups boolean);

-- Median wall time of runs of a query; every column of every row is
-- computed (each row is turned into text, as PostgREST turns it into JSON).
CREATE FUNCTION bench.time_query(p_sql text, p_runs integer) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	ts numeric[] := '{}';
	n  bigint;
BEGIN
	FOR i IN 1 .. p_runs LOOP
		t0 := clock_timestamp();
		EXECUTE format('SELECT count(*) FILTER (WHERE x::text IS NOT NULL) FROM (%s) x', p_sql) INTO n;
		ts := ts || extract(epoch FROM clock_timestamp() - t0)::numeric;
	END LOOP;
	RETURN (SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY x), 4) FROM unnest(ts) x);
END
$$;
GRANT USAGE ON SCHEMA bench TO prepaid_operator;
GRANT EXECUTE ON FUNCTION bench.time_query(text, integer) TO prepaid_operator;

\echo 'api_bench: building the park'
\timing on
-- tariff: valley 00-08, flat 08-10, sharp 10-11, flat 11-12, peak 12-18, flat 18-22, valley 22-24
SELECT prepaid.tariff_put('{"name": "bench TOU", "time_zone": "Asia/Shanghai",
	"registers": ["sharp", "peak", "flat", "valley"],
	"prices": {"sharp": 1.25, "peak": 1.05, "flat": 0.65, "valley": 0.30},
	"schedule": [{"from": "00:00", "to": "08:00", "period": "valley"},
				 {"from": "08:00", "to": "10:00", "period": "flat"},
				 {"from": "10:00", "to": "11:00", "period": "sharp"},
				 {"from": "11:00", "to": "12:00", "period": "flat"},
				 {"from": "12:00", "to": "18:00", "period": "peak"},
				 {"from": "18:00", "to": "22:00", "period": "flat"},
				 {"from": "22:00", "to": "24:00", "period": "valley"}]}') AS tid \gset

-- the TOU period of a local hour, and a load profile per customer kind
CREATE FUNCTION bench.period(h integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN h < 8 OR h >= 22 THEN 4 WHEN h = 10 THEN 1 WHEN h >= 12 AND h < 18 THEN 2 ELSE 3 END
$$;   -- register index: 1 sharp, 2 peak, 3 flat, 4 valley
CREATE FUNCTION bench.profile(kind integer, h integer) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE kind
		WHEN 0 THEN CASE WHEN h BETWEEN 8 AND 18 THEN 1.6 WHEN h BETWEEN 6 AND 21 THEN 0.8 ELSE 0.3 END  -- company
		ELSE CASE WHEN h BETWEEN 18 AND 23 THEN 2.0 WHEN h BETWEEN 7 AND 17 THEN 0.4 ELSE 0.7 END END    -- dormitory
$$;
CREATE FUNCTION bench.noise(a bigint, b bigint) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
	SELECT 0.8 + (abs(hashint8(a * 1000003 + b)) % 401) / 1000.0
$$;

INSERT INTO prepaid.property (property_id, name, time_zone)
SELECT p, 'Bench Park ' || p, tz FROM bench.config, generate_series(1, properties) p;
INSERT INTO prepaid.collection_account (property_id, collection_account_id, channel, merchant_id, name, signing_key)
SELECT p, p * 10 + c, (ARRAY['platform', 'wechat', 'alipay'])[c], format('M%s-%s', p, c),
	   format('Park %s %s', p, (ARRAY['cash', 'WeChat Pay', 'Alipay'])[c]), md5(p::text || c)
  FROM bench.config, generate_series(1, properties) p, generate_series(1, 3) c;
INSERT INTO prepaid.area (property_id, area_id, name, kind)
SELECT p, p * 1000 + a, format('Building %s-%s', p, a), CASE WHEN a % 3 = 0 THEN 'dormitory' ELSE 'office' END
  FROM bench.config, generate_series(1, properties) p, generate_series(1, areas) a;
-- meter i belongs to property 1 + (i - 1) / (meters / properties), area by i, gateway per 25 meters
CREATE TABLE bench.m AS
SELECT i AS meter_id, least(properties, 1 + (i - 1) / (meters / properties)) AS property_id, c.areas,
	   CASE WHEN i % 5 = 0 THEN i - 1 ELSE i END AS customer_id,
	   i % 10 < 3 AS three_phase, (i % 7 IN (0, 3)) AS dorm
  FROM bench.config c, generate_series(1, meters) i;
ALTER TABLE bench.m ADD PRIMARY KEY (meter_id);
-- gateway g serves meters 25 (g - 1) + 1 .. 25 g, in the property of its first meter
INSERT INTO prepaid.gateway (property_id, gateway_id, serial, area_id, last_seen, online)
SELECT property_id, (meter_id - 1) / 25 + 1, 'GW-' || ((meter_id - 1) / 25 + 1),
	   property_id * 1000 + 1 + ((meter_id - 1) / 25) % areas,
	   CASE WHEN ((meter_id - 1) / 25) % 50 = 7 THEN now() - interval '2 hours' ELSE now() END, true
  FROM bench.m WHERE meter_id % 25 = 1;
INSERT INTO prepaid.customer (property_id, customer_id, name, kind)
SELECT property_id, customer_id, 'Customer ' || customer_id, CASE WHEN dorm THEN 'dormitory' ELSE 'company' END
  FROM bench.m WHERE meter_id % 5 <> 0;
INSERT INTO prepaid.account (property_id, account_id, customer_id, collection_account_id, credit_limit, warning_level)
SELECT property_id, meter_id, customer_id, property_id * 10 + CASE WHEN meter_id % 10 < 5 THEN 2 WHEN meter_id % 10 < 8 THEN 3 ELSE 1 END,
	   20, 20
  FROM bench.m;
INSERT INTO prepaid.meter (property_id, meter_id, address, phase, ct_ratio, gateway_id, area_id, shop_no, owner_name,
						   account_id, mode, keep_power, tariff_id, rate_registers, read_interval, power_threshold_kw,
						   opened_at, opening_energy_wh, relay_actual)
SELECT property_id, meter_id, lpad(meter_id::text, 12, '0'), CASE WHEN three_phase THEN 3 ELSE 1 END,
	   CASE WHEN three_phase THEN 20 ELSE 1 END, (meter_id - 1) / 25 + 1,
	   property_id * 1000 + 1 + meter_id % areas, format('%s-%s', meter_id % areas, meter_id), 'Owner ' || customer_id,
	   meter_id, CASE WHEN meter_id % 5 = 2 THEN 'postpaid' ELSE 'prepaid' END, meter_id % 20 = 7, :tid,
	   CASE WHEN three_phase THEN 4 ELSE 0 END, '30 minutes',
	   CASE WHEN three_phase THEN 60 ELSE 8 END,
	   CASE WHEN meter_id % 50 = 11 THEN NULL ELSE now() - interval '1 year' END,
	   CASE WHEN meter_id % 50 = 11 THEN NULL ELSE 0 END,
	   CASE WHEN meter_id % 100 = 41 THEN 'unknown' ELSE 'closed' END
  FROM bench.m;

-- money: a recharge of 200 each, then a debit: 185 (low balance), 210 (in credit), 230 (cut off), else 50
INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, channel, external_id)
SELECT property_id, meter_id, meter_id, 'recharge_wechat', 200, 'wechat', 'seed-' || meter_id FROM bench.m;
INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, kwh)
SELECT property_id, meter_id, meter_id, 'energy',
	   -CASE WHEN meter_id % 10 = 1 THEN 185 WHEN meter_id % 40 = 3 THEN 210 WHEN meter_id % 40 = 23 THEN 230 ELSE 50 END,
	   100
  FROM bench.m;
INSERT INTO prepaid.capacity_rule (property_id, customer_id, valid_from, basis, price, installed_kva, contract_kw)
SELECT property_id, customer_id, '2020-01-01', (ARRAY['max_demand', 'contract_demand', 'transformer'])[1 + customer_id % 3],
	   CASE customer_id % 3 WHEN 2 THEN 23 ELSE 32 END, 400, 200
  FROM bench.m WHERE meter_id % 10 = 3;
INSERT INTO bench.step (step, seconds, note)
SELECT 'park', NULL, format('%s properties, %s meters, %s customers, %s gateways',
	(SELECT count(*) FROM prepaid.property), (SELECT count(*) FROM prepaid.meter),
	(SELECT count(*) FROM prepaid.customer), (SELECT count(*) FROM prepaid.gateway));

-- the raw window: from local midnight yesterday [the last 24 h] to the last half hour
SELECT CASE WHEN :'is_smoke'
			THEN date_bin('30 minutes', now() - interval '24 hours', '2000-01-01')
			ELSE ((now() AT TIME ZONE 'Asia/Shanghai')::date - 1)::timestamp AT TIME ZONE 'Asia/Shanghai' END AS raw_from,
	   date_bin('30 minutes', now() - interval '1 minute', '2000-01-01') AS raw_to \gset
SELECT (:'raw_from'::timestamptz AT TIME ZONE 'Asia/Shanghai')::date AS raw_day,
	   (date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') - interval '1 month')::date AS last_month \gset

-- generated rollups before the raw window
\echo 'api_bench: generating rollups before the raw window'
INSERT INTO prepaid.property_energy_hourly (property_id, hour, energy_wh)
SELECT p.property_id, h,
	   (p.n * 900 * bench.profile(0, extract(hour FROM h AT TIME ZONE 'Asia/Shanghai')::integer)
		* bench.noise(p.property_id, extract(epoch FROM h)::bigint / 3600))::bigint
  FROM (SELECT property_id, count(*) AS n FROM bench.m GROUP BY 1) p
 CROSS JOIN generate_series(date_trunc('hour', :'raw_from'::timestamptz - interval '400 days'),
							:'raw_from'::timestamptz - interval '1 hour', interval '1 hour') h;
INSERT INTO prepaid.meter_energy_daily (property_id, meter_id, day, energy_wh, sharp_kwh, peak_kwh, flat_kwh, valley_kwh)
SELECT m.property_id, m.meter_id, d::date, e.wh, e.wh * 0.001 / 24, e.wh * 0.001 * 6 / 24,
	   e.wh * 0.001 * 7 / 24, e.wh * 0.001 * 10 / 24
  FROM bench.m m
 CROSS JOIN generate_series(:'last_month'::date, :'raw_day'::date - 1, interval '1 day') d
 CROSS JOIN LATERAL (SELECT (CASE WHEN m.three_phase THEN 240000 ELSE 21600 END
							 * bench.noise(m.meter_id, d::date - DATE '2000-01-01'))::bigint AS wh) e;
INSERT INTO prepaid.meter_energy_monthly (property_id, meter_id, month, energy_wh, sharp_kwh, peak_kwh, flat_kwh, valley_kwh)
SELECT property_id, meter_id, date_trunc('month', day)::date, sum(energy_wh), sum(sharp_kwh), sum(peak_kwh),
	   sum(flat_kwh), sum(valley_kwh)
  FROM prepaid.meter_energy_daily GROUP BY 1, 2, 3;
-- last month: month usage from the month-start freezes and the monthly maximum demand
INSERT INTO prepaid.month_usage (property_id, meter_id, month, from_at, to_at, energy_wh, period_wh, estimated)
SELECT m.property_id, m.meter_id, :'last_month'::date,
	   :'last_month'::timestamp AT TIME ZONE 'Asia/Shanghai',
	   (:'last_month'::date + interval '1 month')::timestamp AT TIME ZONE 'Asia/Shanghai',
	   e.wh,
	   CASE WHEN m.three_phase THEN jsonb_build_object('sharp', e.wh / 24, 'peak', e.wh * 6 / 24, 'flat', e.wh * 7 / 24,
													   'valley', e.wh - e.wh / 24 - e.wh * 6 / 24 - e.wh * 7 / 24) END,
	   m.meter_id % 50 = 17
  FROM bench.m m
 CROSS JOIN LATERAL (SELECT (CASE WHEN m.three_phase THEN 360000 ELSE 648000 END * bench.noise(m.meter_id, 7))::bigint AS wh) e;
INSERT INTO prepaid.demand_max (property_id, meter_id, month, max_kw, max_at)
SELECT m.property_id, m.meter_id, :'last_month'::date,
	   round(CASE WHEN m.three_phase THEN 40 ELSE 4 END * bench.noise(m.meter_id, 11), 4),
	   (:'last_month'::timestamp + (m.meter_id % 27) * interval '1 day' + interval '10 hours'
		+ (m.meter_id % 4) * interval '15 minutes') AT TIME ZONE 'Asia/Shanghai'
  FROM bench.m m;

-- raw readings, slot by slot. A meter's register at a slot is its start value
-- plus its base power times the cumulative load profile of its customer kind
-- (with a per-slot noise of the kind), per TOU period for the rate registers:
-- closed form, so each slot is one INSERT ... SELECT, as the daemon's batch.
CREATE TABLE bench.cum AS
WITH s AS (
	SELECT t, row_number() OVER (ORDER BY t) - 1 AS i,
		   extract(hour FROM (t - interval '1 microsecond') AT TIME ZONE 'Asia/Shanghai')::integer AS h
	  FROM generate_series(:'raw_from'::timestamptz, :'raw_to'::timestamptz, interval '30 minutes') t),
inc AS (
	SELECT k.kind, s.t, s.i, bench.period(s.h) AS p,
		   CASE WHEN s.i = 0 THEN 0 ELSE bench.profile(k.kind, s.h) * bench.noise(k.kind, s.i) END AS inc,
		   bench.profile(k.kind, extract(hour FROM s.t AT TIME ZONE 'Asia/Shanghai')::integer) AS load
	  FROM s CROSS JOIN (VALUES (0), (1)) k(kind))
SELECT kind, t, load, sum(inc) OVER w AS c,
	   ARRAY[sum(inc) FILTER (WHERE p = 1) OVER w, sum(inc) FILTER (WHERE p = 2) OVER w,
			 sum(inc) FILTER (WHERE p = 3) OVER w, sum(inc) FILTER (WHERE p = 4) OVER w] AS cr
  FROM inc WINDOW w AS (PARTITION BY kind ORDER BY i);
ALTER TABLE bench.cum ADD PRIMARY KEY (kind, t);
UPDATE bench.cum SET cr = ARRAY[coalesce(cr[1], 0), coalesce(cr[2], 0), coalesce(cr[3], 0), coalesce(cr[4], 0)];
CREATE TABLE bench.base AS   -- Wh per half hour at profile 1, secondary side; start registers
SELECT m.meter_id, m.property_id, m.three_phase, CASE WHEN m.dorm THEN 1 ELSE 0 END AS kind,
	   CASE WHEN m.three_phase THEN 20 ELSE 1 END AS ct,
	   CASE WHEN m.three_phase THEN 10000 ELSE 900 END * bench.noise(m.meter_id, 1) / 2
		   / CASE WHEN m.three_phase THEN 20 ELSE 1 END AS wh,
	   (m.meter_id * 997 % 50000)::bigint * 1000 AS start
  FROM bench.m m WHERE m.meter_id % 50 <> 11;   -- not-opened meters send nothing
ALTER TABLE bench.base ADD PRIMARY KEY (meter_id);

CREATE PROCEDURE bench.ingest(p_from timestamptz, p_to timestamptz, p_rollups boolean)
LANGUAGE plpgsql AS $$
DECLARE
	s  timestamptz := p_from;
	t0 timestamptz;
	n  bigint;
BEGIN
	WHILE s <= p_to LOOP
		t0 := clock_timestamp();
		INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a, voltage_b,
									 voltage_c, current_a, current_b, current_c, power_kw, power_a_kw, power_b_kw,
									 power_c_kw, reactive_kvar, power_factor, frequency_hz, demand_kw, relay_open)
		SELECT b.property_id, b.meter_id, s, b.start + floor(b.wh * c.c)::bigint,
			   CASE WHEN b.three_phase THEN ARRAY[floor(b.wh * c.cr[1]), floor(b.wh * c.cr[2]), floor(b.wh * c.cr[3]),
												  b.start + floor(b.wh * c.cr[4])]::bigint[] END,
			   v.va, CASE WHEN b.three_phase THEN v.va + 1.2 END, CASE WHEN b.three_phase THEN v.va - 0.8 END,
			   round(p.kw * 1000 / v.va / CASE WHEN b.three_phase THEN 3 ELSE 1 END, 3),
			   CASE WHEN b.three_phase THEN round(p.kw * 1000 / v.va / 3, 3) END,
			   CASE WHEN b.three_phase THEN round(p.kw * 1000 / v.va / 3, 3) END,
			   round(p.kw, 4), CASE WHEN b.three_phase THEN round(p.kw / 3, 4) END,
			   CASE WHEN b.three_phase THEN round(p.kw / 3, 4) END,
			   CASE WHEN b.three_phase THEN round(p.kw / 3, 4) END,
			   round(p.kw * 0.3, 4), 0.95, 50.00,
			   CASE WHEN b.three_phase THEN round(p.kw * 1.1, 4) END, false
		  FROM bench.base b
		  JOIN bench.cum c ON c.kind = b.kind AND c.t = s
		 CROSS JOIN LATERAL (SELECT round(215 + (abs(hashint8(b.meter_id + extract(epoch FROM s)::bigint)) % 100) / 10.0, 1) AS va) v
		 CROSS JOIN LATERAL (SELECT b.wh * 2 * c.load / 1000 AS kw) p
		 WHERE NOT (b.meter_id % 100 = 13 AND s > p_to - interval '3 hours');   -- 1 % fall silent
		GET DIAGNOSTICS n = ROW_COUNT;
		IF p_rollups THEN	-- the slot's readings into the rollups at once
			PERFORM prepaid.rollup_catch_up();
		END IF;
		INSERT INTO bench.ingest_log VALUES (s, n, extract(epoch FROM clock_timestamp() - t0), p_rollups);
		COMMIT;
		s := s + interval '30 minutes';
	END LOOP;
END
$$;

\echo 'api_bench: raw readings, then prepaid.rollup_catch_up()'
SELECT :'raw_to'::timestamptz - :live_slots * interval '30 minutes' AS bulk_to \gset
CALL bench.ingest(:'raw_from', :'bulk_to', false);
ANALYZE prepaid.reading;   -- as autovacuum would have by now
SELECT clock_timestamp() AS t0 \gset
SELECT prepaid.rollup_catch_up() AS rebuilt \gset
INSERT INTO bench.step VALUES ('rollup_catch_up', round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1),
	format('%s readings rolled up by prepaid.rollup_catch_up()', :rebuilt));
\echo 'api_bench: the last slots, each followed by a catch-up'
CALL bench.ingest(:'bulk_to'::timestamptz + interval '30 minutes', :'raw_to', true);
INSERT INTO bench.step
SELECT 'ingest_' || CASE WHEN rollups THEN 'and_catch_up' ELSE 'insert_only' END,
	   round(sum(seconds) / sum(rows) * 100000, 2), format('seconds per 100,000 readings (%s slots of %s readings)', count(*), max(rows))
  FROM bench.ingest_log GROUP BY rollups;
SELECT count(*) AS alarm_kinds FROM prepaid.alarms_run() \gset
SELECT prepaid.overview_refresh() AS counted \gset
VACUUM ANALYZE;
\timing off

-- the figures
SELECT count(*) AS raw_readings, min(read_at) AS raw_min FROM prepaid.reading \gset
SELECT :raw_readings::numeric / (:meters * 1440) AS raw_share \gset
SELECT property_id AS some_area_property, area_id AS some_area FROM prepaid.area ORDER BY area_id OFFSET 3 LIMIT 1 \gset
\echo 'api_bench: timing'

-- F16 overview
SELECT bench.time_query('SELECT * FROM api.overview', :runs) AS t \gset
SELECT bench.time_query($q$
	WITH latest AS (   -- newest reading of each meter, from the readings
		SELECT m.property_id, m.meter_id, m.opened_at, m.created_at, m.read_interval, m.relay_actual, m.keep_power,
			   m.mode, m.account_id, l.read_at
		  FROM prepaid.meter m
		  LEFT JOIN LATERAL (SELECT r.read_at FROM prepaid.reading r WHERE r.property_id = m.property_id
								AND r.meter_id = m.meter_id ORDER BY r.read_at DESC LIMIT 1) l ON true),
	bal AS (SELECT property_id, account_id, sum(amount) AS balance FROM prepaid.ledger GROUP BY 1, 2),
	e AS (             -- energy per local hour from consecutive readings
		SELECT r.property_id, date_trunc('hour', r.read_at - interval '1 microsecond', p.time_zone) AS h,
			   (r.energy_wh - lag(r.energy_wh) OVER (PARTITION BY r.property_id, r.meter_id ORDER BY r.read_at))
			   * m.pt_ratio * m.ct_ratio AS wh
		  FROM prepaid.reading r JOIN prepaid.meter m USING (property_id, meter_id)
		  JOIN prepaid.property p USING (property_id)
		 WHERE r.read_at >= ((now() AT TIME ZONE p.time_zone)::date - 1)::timestamp AT TIME ZONE p.time_zone),
	eh AS (SELECT property_id, sum(wh) FILTER (WHERE h >= date_trunc('day', now(), 'Asia/Shanghai')) AS today,
				  sum(wh) FILTER (WHERE h < date_trunc('day', now(), 'Asia/Shanghai')) AS yesterday FROM e GROUP BY 1)
	SELECT l.property_id, count(*), count(*) FILTER (WHERE l.opened_at IS NULL),
		   count(*) FILTER (WHERE coalesce(l.read_at, l.opened_at, l.created_at) < now() - l.read_interval * 2.5),
		   count(*) FILTER (WHERE l.relay_actual = 'open'), count(*) FILTER (WHERE l.keep_power),
		   count(*) FILTER (WHERE l.mode = 'prepaid'), count(*) FILTER (WHERE b.balance < 0),
		   max(eh.today), max(eh.yesterday)
	  FROM latest l JOIN bal b USING (property_id, account_id) LEFT JOIN eh USING (property_id)
	 GROUP BY l.property_id$q$, :naive_runs) AS b \gset
INSERT INTO bench.result VALUES ('overview', :t, :b,
	format('all %s properties; baseline: counts from the newest reading of each meter and sum(ledger), energy today and yesterday from %s raw readings', :properties, :raw_readings));
SELECT bench.time_query('SELECT prepaid.overview_refresh()', :runs) AS t \gset
INSERT INTO bench.result VALUES ('overview_refresh', :t, NULL,
	format('the overview job (every minute): counting the %s meters by state', :meters));

SET ROLE prepaid_operator;
SELECT set_config('request.jwt.claims', '{"role": "prepaid_operator", "property_id": "1"}', false);
SELECT bench.time_query('SELECT * FROM api.overview', :runs) AS t \gset
SELECT bench.time_query($$SELECT * FROM api.meter_monitor WHERE area_id = $$ || :some_area || $$ AND fee_status IN ('normal', 'low_balance') ORDER BY meter_id LIMIT 50$$, :runs) AS t2 \gset
SELECT bench.time_query($$SELECT * FROM api.meter_monitor WHERE fee_status = 'cut_off' ORDER BY meter_id LIMIT 50 OFFSET 50$$, :runs) AS t3 \gset
RESET ROLE;
SELECT set_config('request.jwt.claims', '', false);
INSERT INTO bench.result VALUES ('overview_operator', :t, NULL, 'one property, through row-level security');
INSERT INTO bench.result VALUES ('monitor_page_area_operator', :t2, NULL, 'area + fee status filter, first page of 50, as operator');
INSERT INTO bench.result VALUES ('monitor_page_status_operator', :t3, NULL, 'fee_status=cut_off, second page of 50, as operator');

-- F17 meter monitor, one page with a filter
SELECT bench.time_query($$SELECT * FROM api.meter_monitor WHERE area_id = $$ || :some_area || $$ AND fee_status IN ('normal', 'low_balance') ORDER BY meter_id LIMIT 50$$, :runs) AS t \gset
SELECT bench.time_query($q$
	WITH bal AS (SELECT property_id, account_id, sum(amount) AS balance FROM prepaid.ledger GROUP BY 1, 2)
	SELECT m.meter_id, m.address, m.shop_no, b.balance, a.credit_limit,
		   CASE WHEN m.mode = 'postpaid' THEN 'postpaid' WHEN b.balance < -a.credit_limit THEN 'cut_off'
				WHEN b.balance < 0 THEN 'in_credit' WHEN b.balance < a.warning_level THEN 'low_balance'
				ELSE 'normal' END AS fee_status, l.read_at, l.energy_wh
	  FROM prepaid.meter m
	  JOIN prepaid.account a ON a.property_id = m.property_id AND a.account_id = m.account_id
	  JOIN bal b ON b.property_id = a.property_id AND b.account_id = a.account_id
	  LEFT JOIN LATERAL (SELECT r.read_at, r.energy_wh FROM prepaid.reading r WHERE r.property_id = m.property_id
							AND r.meter_id = m.meter_id ORDER BY r.read_at DESC LIMIT 1) l ON true
	 WHERE m.area_id = $q$ || :some_area || $q$
	   AND CASE WHEN m.mode = 'postpaid' THEN 'postpaid' WHEN b.balance < -a.credit_limit THEN 'cut_off'
				WHEN b.balance < 0 THEN 'in_credit' WHEN b.balance < a.warning_level THEN 'low_balance'
				ELSE 'normal' END IN ('normal', 'low_balance')
	 ORDER BY m.meter_id LIMIT 50$q$, :naive_runs) AS b \gset
INSERT INTO bench.result VALUES ('monitor_page', :t, :b,
	'area + fee status filter, first page of 50; baseline: balance = sum(ledger), newest reading from the readings');
SELECT bench.time_query($$SELECT * FROM api.meter_monitor WHERE fee_status = 'cut_off' AND online ORDER BY meter_id LIMIT 50 OFFSET 50$$, :runs) AS t \gset
INSERT INTO bench.result VALUES ('monitor_page_status', :t, NULL, 'fee_status=cut_off and online, second page of 50, all properties');

-- F8/F19 post-paid bills of last month, all post-paid meters
SELECT count(*) AS bills FROM api.postpaid_bill WHERE month = :'last_month' \gset
SELECT bench.time_query(format('SELECT * FROM api.postpaid_bill WHERE month = %L', :'last_month'), :runs) AS t \gset
SELECT bench.time_query($q$
	WITH iv AS (   -- every reading interval of the post-paid meters
		SELECT r.property_id, r.meter_id, m.tariff_id, m.pt_ratio * m.ct_ratio AS mult,
			   lag(r.read_at) OVER w AS t0, r.read_at AS t1,
			   r.energy_wh - lag(r.energy_wh) OVER w AS wh
		  FROM prepaid.reading r JOIN prepaid.meter m USING (property_id, meter_id)
		 WHERE m.mode = 'postpaid'
		WINDOW w AS (PARTITION BY r.property_id, r.meter_id ORDER BY r.read_at)),
	per AS (
		SELECT iv.property_id, iv.meter_id, iv.tariff_id, s.period, sum(s.kwh) AS kwh, min(iv.t0) AS t0
		  FROM iv CROSS JOIN LATERAL prepaid.tou_split(iv.tariff_id, iv.t0, iv.t1, iv.wh * iv.mult * 0.001) s
		 WHERE iv.t0 IS NOT NULL
		 GROUP BY 1, 2, 3, 4)
	SELECT property_id, meter_id, sum(round(kwh * prepaid.tou_price(tariff_id, t0, period), 2)), sum(kwh)
	  FROM per GROUP BY 1, 2$q$, :naive_runs) AS b \gset
INSERT INTO bench.result VALUES ('postpaid_bills', :t, :b,
	format('%s bills of %s (20 %% of the meters post-paid); baseline: TOU split of every raw reading interval, %s readings = %s %% of a month, month-equivalent %s s',
		   :bills, :'last_month', :raw_readings, round(:raw_share * 100, 1), round(:b / :raw_share, 1)));
BEGIN;
ALTER TABLE prepaid.meter DISABLE TRIGGER USER;
UPDATE prepaid.meter SET mode = 'postpaid';
SELECT bench.time_query(format('SELECT * FROM api.postpaid_bill WHERE month = %L', :'last_month'), :runs) AS t \gset
ROLLBACK;
INSERT INTO bench.result VALUES ('postpaid_bills_all_meters', :t, NULL,
	format('every one of the %s meters post-paid (a transaction, rolled back)', :meters));

-- F10/F19 capacity report of last month
SELECT bench.time_query(format('SELECT * FROM api.capacity_report WHERE month = %L', :'last_month'), :runs) AS t \gset
SELECT bench.time_query($q$
	WITH d AS (   -- 15-minute demand per meter from the readings
		SELECT r.property_id, r.meter_id, max(r.demand_kw * m.pt_ratio * m.ct_ratio) AS max_kw
		  FROM prepaid.reading r JOIN prepaid.meter m USING (property_id, meter_id)
		 GROUP BY 1, 2),
	c AS (SELECT a.property_id, a.customer_id, sum(d.max_kw) AS kw
			FROM d JOIN prepaid.meter m USING (property_id, meter_id)
			JOIN prepaid.account a ON a.property_id = m.property_id AND a.account_id = m.account_id
		   GROUP BY 1, 2)
	SELECT c.*, r.basis, CASE r.basis WHEN 'max_demand' THEN c.kw * r.price WHEN 'transformer' THEN r.installed_kva * r.price
		   ELSE r.contract_kw * r.price + greatest(c.kw - 1.05 * r.contract_kw, 0) * 2 * r.price END
	  FROM c LEFT JOIN prepaid.capacity_rule r ON r.property_id = c.property_id AND r.customer_id = c.customer_id$q$, :naive_runs) AS b \gset
INSERT INTO bench.result VALUES ('capacity_report', :t, :b,
	format('every customer, %s; baseline: maximum demand from %s raw readings (%s %% of a month), month-equivalent %s s',
		   :'last_month', :raw_readings, round(:raw_share * 100, 1), round(:b / :raw_share, 1)));

-- a few more reads an operator console makes
SELECT meter_id AS one_meter FROM prepaid.meter WHERE phase = 3 ORDER BY meter_id OFFSET 10 LIMIT 1 \gset
SELECT bench.time_query(format('SELECT * FROM api.electrical_daily WHERE meter_id = %s AND day >= %L', :one_meter, :'raw_day'), :runs) AS t \gset
INSERT INTO bench.result VALUES ('electrical_daily_one_meter', :t, NULL, 'daily values of one meter from the rollup');
SELECT bench.time_query(format('SELECT * FROM api.electrical_hourly(%s, %L, now())', :one_meter, :'raw_from'), :runs) AS t \gset
INSERT INTO bench.result VALUES ('electrical_hourly_one_meter', :t, NULL, 'hourly values of one meter over the raw window');
SELECT bench.time_query(format('SELECT * FROM api.revenue_monthly WHERE month = %L', date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai')::date), :runs) AS t \gset
SELECT bench.time_query(format($q$SELECT property_id, kind, sum(amount) FROM prepaid.ledger
	WHERE created_at >= %L GROUP BY 1, 2$q$, date_trunc('month', now(), 'Asia/Shanghai')), :naive_runs) AS b \gset
INSERT INTO bench.result VALUES ('revenue_monthly', :t, :b, 'this month by kind and collection account; baseline: sum over the ledger');

\echo
SELECT format('STEP|%s|%s|%s', step, coalesce(seconds::text, ''), note) FROM bench.step ORDER BY at \g (tuples_only=on format=unaligned)
SELECT format('RESULT|%s|%s|%s|%s|%s', name, seconds, coalesce(baseline_seconds::text, ''),
			  coalesce(round(baseline_seconds / nullif(seconds, 0), 1)::text, ''), note)
  FROM bench.result ORDER BY name \g (tuples_only=on format=unaligned)
