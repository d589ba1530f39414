-- Benchmark data generator for prepaid.settle() (scripts/bench.sh).
--
-- Builds a realistic park in the current database, all with set-based SQL:
-- three TOU tariffs written through prepaid.tariff_put (seasons, day types,
-- holidays), a property company with collection account, buildings,
-- gateways, one customer and account per meter, and meters of which half
-- report four per-rate registers (T1..T4) and half the total only; 5 % are
-- three-phase CT meters (x20), 0.2 % roll their register over during the
-- day, 0.05 % send one reading with the energy going backwards.
--
-- Readings follow a daily load curve: reading k (0..50) of a meter is taken
-- at local 17:00 + k * 30 min of day D, plus a fixed per-meter polling delay
-- of 0..119 s (so most intervals straddle a tariff boundary, as in the
-- field). Register meters put each interval's energy in the register of the
-- period in force at the middle of the interval, as the meter's own TOU
-- table does. Every value is a closed form of (meter, k), so any range of
-- readings can be generated independently:
--    energy_wh(k) = (base_e + L * F(k)) mod modulus
--    rate_wh[r](k) = (base_r + L * FR[r](k)) mod modulus
-- with L the meter's load (Wh per unit of the curve) and F / FR cumulative
-- sums of the curve over the slots (bench.slot).
--
-- Usage (see scripts/bench.sh):
--    SELECT bench.setup_tariffs();
--    SELECT bench.setup_park('Bench park', 100000, day);  -- warm-up settle included
--    SELECT bench.add_readings(property_id, 2, 2);          -- the new reading(s)

CREATE SCHEMA IF NOT EXISTS bench;

-- Tariffs: the documented park tariff (summer/standard, holidays), an
-- industrial one with four seasons and a sharp evening peak, and a flat
-- dormitory one with a night valley.
CREATE OR REPLACE FUNCTION bench.setup_tariffs()
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM prepaid.tariff_put($j${
	  "name": "Park TOU", "time_zone": "Asia/Shanghai",
	  "registers": ["sharp", "peak", "flat", "valley"],
	  "prices": {"sharp": 1.25, "peak": 1.05, "flat": 0.65, "valley": 0.30},
	  "day_types": {"workday": ["mon","tue","wed","thu","fri"], "weekend": ["sat","sun"], "holiday": []},
	  "holidays": [{"date": "2026-10-01", "day_type": "holiday"}, {"date": "2026-10-02", "day_type": "holiday"},
				   {"date": "2027-01-01", "day_type": "holiday"}, {"date": "2027-02-17", "day_type": "holiday"}],
	  "seasons": [
		{"name": "summer", "from": "07-01", "to": "09-30", "prices": {"peak": 1.15},
		 "schedule": {
		   "workday": [{"from": "00:00", "to": "08:00", "period": "valley"},
					   {"from": "08:00", "to": "10:00", "period": "flat"},
					   {"from": "10:00", "to": "11:00", "period": "sharp"},
					   {"from": "11:00", "to": "17:00", "period": "peak"},
					   {"from": "17:00", "to": "22:00", "period": "flat"},
					   {"from": "22:00", "to": "24:00", "period": "valley"}],
		   "weekend": [{"from": "00:00", "to": "08:00", "period": "valley"},
					   {"from": "08:00", "to": "24:00", "period": "flat"}],
		   "holiday": [{"from": "00:00", "to": "24:00", "period": "valley"}]}},
		{"name": "standard", "from": "10-01", "to": "06-30",
		 "schedule": {
		   "workday": [{"from": "00:00", "to": "08:00", "period": "valley"},
					   {"from": "08:00", "to": "18:00", "period": "peak"},
					   {"from": "18:00", "to": "19:00", "period": "sharp"},
					   {"from": "19:00", "to": "24:00", "period": "flat"}],
		   "weekend": [{"from": "00:00", "to": "08:00", "period": "valley"},
					   {"from": "08:00", "to": "24:00", "period": "flat"}],
		   "holiday": [{"from": "00:00", "to": "24:00", "period": "valley"}]}}]
	}$j$::jsonb);

	PERFORM prepaid.tariff_put($j${
	  "name": "Industrial TOU", "time_zone": "Asia/Shanghai",
	  "registers": ["sharp", "peak", "flat", "valley"],
	  "prices": {"sharp": 1.182311, "peak": 0.985259, "flat": 0.591155, "valley": 0.236462},
	  "seasons": [
		{"name": "winter", "from": "12-01", "to": "02-29",
		 "schedule": [{"from": "00:00", "to": "07:00", "period": "valley"},
					  {"from": "07:00", "to": "10:00", "period": "flat"},
					  {"from": "10:00", "to": "15:00", "period": "peak"},
					  {"from": "15:00", "to": "17:30", "period": "flat"},
					  {"from": "17:30", "to": "19:30", "period": "sharp"},
					  {"from": "19:30", "to": "22:00", "period": "peak"},
					  {"from": "22:00", "to": "24:00", "period": "valley"}]},
		{"name": "spring", "from": "03-01", "to": "06-30",
		 "schedule": [{"from": "00:00", "to": "08:00", "period": "valley"},
					  {"from": "08:00", "to": "12:00", "period": "peak"},
					  {"from": "12:00", "to": "18:00", "period": "flat"},
					  {"from": "18:00", "to": "22:00", "period": "peak"},
					  {"from": "22:00", "to": "24:00", "period": "valley"}]},
		{"name": "summer", "from": "07-01", "to": "09-30", "prices": {"sharp": 1.379362, "peak": 1.083785},
		 "schedule": [{"from": "00:00", "to": "08:00", "period": "valley"},
					  {"from": "08:00", "to": "11:00", "period": "flat"},
					  {"from": "11:00", "to": "13:00", "period": "sharp"},
					  {"from": "13:00", "to": "22:00", "period": "peak"},
					  {"from": "22:00", "to": "24:00", "period": "valley"}]},
		{"name": "autumn", "from": "10-01", "to": "11-30",
		 "schedule": [{"from": "00:00", "to": "06:30", "period": "valley"},
					  {"from": "06:30", "to": "09:00", "period": "flat"},
					  {"from": "09:00", "to": "12:00", "period": "peak"},
					  {"from": "12:00", "to": "17:00", "period": "flat"},
					  {"from": "17:00", "to": "21:00", "period": "peak"},
					  {"from": "21:00", "to": "23:00", "period": "flat"},
					  {"from": "23:00", "to": "24:00", "period": "valley"}]}]
	}$j$::jsonb);

	PERFORM prepaid.tariff_put($j${
	  "name": "Dormitory", "time_zone": "Asia/Shanghai",
	  "registers": ["flat", "valley"],
	  "prices": {"flat": 0.5583, "valley": 0.3583},
	  "schedule": [{"from": "00:00", "to": "08:00", "period": "valley"},
				   {"from": "08:00", "to": "22:00", "period": "flat"},
				   {"from": "22:00", "to": "24:00", "period": "valley"}]
	}$j$::jsonb);
END
$$;

-- Local start of the benchmark day (17:00 of day D in Asia/Shanghai) is
-- slot 0; reading k is taken at slot k (+ the meter's polling delay).
CREATE TABLE IF NOT EXISTS bench.slot (
	tariff_id bigint NOT NULL,
	k         integer NOT NULL,
	at        timestamptz NOT NULL,	-- nominal reading time
	f         integer NOT NULL,		-- load of the interval ending here, curve units
	reg       integer,				-- register (1-based) the interval's energy goes to
	cum       bigint NOT NULL,		-- F(k)
	cum_r     bigint[] NOT NULL,	-- FR[1..4](k)
	PRIMARY KEY (tariff_id, k)
);

CREATE OR REPLACE FUNCTION bench.build_slots(p_day date)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := (p_day + time '17:00') AT TIME ZONE 'Asia/Shanghai';
BEGIN
	DELETE FROM bench.slot;
	INSERT INTO bench.slot (tariff_id, k, at, f, reg, cum, cum_r)
	WITH s AS (
		SELECT t.tariff_id, k, t0 + k * interval '30 min' AS at,
			   -- daily load curve by local hour of the interval (0 for slot 0)
			   CASE WHEN k = 0 THEN 0
					ELSE (ARRAY[2,2,2,2,2,2,3,5,7,8,8,8,7,8,8,8,7,7,9,10,10,8,5,3])
						 [extract(hour FROM (t0 + (k - 0.5) * interval '30 min')
										   AT TIME ZONE 'Asia/Shanghai')::int + 1] END AS f,
			   CASE WHEN k = 0 THEN NULL ELSE
				 array_position(v.registers,
					(SELECT x.period FROM prepaid.tou_split(t.tariff_id,
						t0 + (k - 0.5) * interval '30 min' - interval '1 s',
						t0 + (k - 0.5) * interval '30 min' + interval '1 s', 1) x
					 ORDER BY x.kwh DESC LIMIT 1)) END AS reg
		  FROM prepaid.tariff t
		  JOIN prepaid.tariff_version v ON v.tariff_id = t.tariff_id
		 CROSS JOIN generate_series(0, 50) k
		 WHERE t.name IN ('Park TOU', 'Industrial TOU', 'Dormitory'))
	SELECT tariff_id, k, at, f, reg,
		   sum(f) OVER w,
		   ARRAY[sum(f) FILTER (WHERE reg = 1) OVER w, sum(f) FILTER (WHERE reg = 2) OVER w,
				 sum(f) FILTER (WHERE reg = 3) OVER w, sum(f) FILTER (WHERE reg = 4) OVER w]
	  FROM s
	WINDOW w AS (PARTITION BY tariff_id ORDER BY k);
	UPDATE bench.slot SET cum_r = ARRAY[coalesce(cum_r[1], 0), coalesce(cum_r[2], 0),
										coalesce(cum_r[3], 0), coalesce(cum_r[4], 0)];
END
$$;

-- Per-meter parameters of the generator.
CREATE TABLE IF NOT EXISTS bench.meter_param (
	property_id bigint NOT NULL,
	meter_id    bigint NOT NULL,
	i           integer NOT NULL,		-- meter number in its park
	tariff_id   bigint NOT NULL,
	regs        integer NOT NULL,		-- 0 or 4
	load_wh     bigint NOT NULL,		-- L
	delay       interval NOT NULL,		-- polling delay after the slot
	base_e      bigint NOT NULL,
	base_r      bigint[] NOT NULL,
	modulus     bigint NOT NULL,
	PRIMARY KEY (property_id, meter_id)
);

-- Inserts readings k_from .. k_to of every meter of a property, one INSERT
-- per polling cycle (as the ingest daemon does).
CREATE OR REPLACE FUNCTION bench.add_readings(p_property bigint, k_from integer, k_to integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint := 0;
	c bigint;
BEGIN
	FOR kk IN k_from .. k_to LOOP
		INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh,
									 voltage_a, current_a, power_kw, power_factor, frequency_hz,
									 relay_open, meter_time)
		SELECT p.property_id, p.meter_id, s.at + p.delay,
			   CASE WHEN p.i % 2000 = 13 AND kk = 20	-- a glitch: energy backwards
					THEN greatest((p.base_e + p.load_wh * s.cum) % p.modulus - 100000, 0)
					ELSE (p.base_e + p.load_wh * s.cum) % p.modulus END,
			   CASE WHEN p.regs = 4 THEN
				   ARRAY[(p.base_r[1] + p.load_wh * s.cum_r[1]) % p.modulus,
						 (p.base_r[2] + p.load_wh * s.cum_r[2]) % p.modulus,
						 (p.base_r[3] + p.load_wh * s.cum_r[3]) % p.modulus,
						 (p.base_r[4] + p.load_wh * s.cum_r[4]) % p.modulus] END,
			   220.0 + (p.i % 17) - 8,
			   round(p.load_wh * s.f * 2 / 220.0, 3),
			   round(p.load_wh * s.f * 2 / 1000.0, 4),
			   0.950,
			   50.00,
			   false,
			   s.at + p.delay - interval '3 s'
		  FROM bench.meter_param p
		  JOIN bench.slot s ON s.tariff_id = p.tariff_id AND s.k = kk
		 WHERE p.property_id = p_property
		 ORDER BY p.meter_id;
		GET DIAGNOSTICS c = ROW_COUNT;
		n := n + c;
	END LOOP;
	RETURN n;
END
$$;

-- Creates a park of p_meters meters in a new property company, with
-- readings 0 and 1 settled (so every cursor sits on reading 1 with its
-- registers and a sub-fen carry), and balances set so that some meters
-- are cut off by the next reading. Returns the property_id.
CREATE OR REPLACE FUNCTION bench.setup_park(p_name text, p_meters integer, p_day date)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_prop bigint;
	v_coll bigint;
	v_park bigint := (SELECT tariff_id FROM prepaid.tariff WHERE name = 'Park TOU');
	v_ind  bigint := (SELECT tariff_id FROM prepaid.tariff WHERE name = 'Industrial TOU');
	v_dorm bigint := (SELECT tariff_id FROM prepaid.tariff WHERE name = 'Dormitory');
	v_pno  bigint;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM bench.slot) THEN
		PERFORM bench.build_slots(p_day);
	END IF;
	INSERT INTO prepaid.property (name, no_cutoff_from, no_cutoff_to)
	VALUES (p_name, '22:00', '07:00') RETURNING property_id INTO v_prop;
	v_pno := (SELECT count(*) FROM prepaid.property);
	INSERT INTO prepaid.collection_account (property_id, channel, merchant_id, name)
	VALUES (v_prop, 'wechat', 'mch' || v_prop, p_name || ' wechat')
	RETURNING collection_account_id INTO v_coll;
	INSERT INTO prepaid.area (property_id, name)
	SELECT v_prop, 'building ' || b FROM generate_series(1, 20) b;
	INSERT INTO prepaid.gateway (property_id, serial, area_id)
	SELECT v_prop, 'gw-' || v_prop || '-' || g,
		   (SELECT min(area_id) FROM prepaid.area WHERE property_id = v_prop) + g % 20
	  FROM generate_series(0, (p_meters - 1) / 24) g;

	INSERT INTO prepaid.customer (property_id, name, kind, phone)
	SELECT v_prop, 'shop ' || i, CASE WHEN i % 10 >= 8 THEN 'dormitory' ELSE 'company' END,
		   '138' || lpad(i::text, 8, '0')
	  FROM generate_series(1, p_meters) i;
	INSERT INTO prepaid.account (property_id, customer_id, collection_account_id, credit_limit,
								 warning_level)
	SELECT v_prop, c.customer_id, v_coll,
		   CASE WHEN split_part(c.name, ' ', 2)::int * 37 % 100 = 2 THEN 10 ELSE 0 END, 20
	  FROM prepaid.customer c WHERE c.property_id = v_prop ORDER BY c.customer_id;
	ANALYZE prepaid.customer, prepaid.account;	-- fresh statistics for the joins below

	INSERT INTO prepaid.meter (property_id, address, phase, pt_ratio, ct_ratio, gateway_id,
							   area_id, shop_no, owner_name, account_id, keep_power, tariff_id,
							   rate_registers, model)
	SELECT v_prop, lpad((v_pno * 10000000 + i)::text, 12, '0'),
		   CASE WHEN i % 20 = 19 THEN 3 ELSE 1 END, 1,
		   CASE WHEN i % 20 = 19 THEN 20 ELSE 1 END,
		   (SELECT min(gateway_id) FROM prepaid.gateway WHERE property_id = v_prop) + (i - 1) / 24,
		   (SELECT min(area_id) FROM prepaid.area WHERE property_id = v_prop) + i % 20,
		   i::text, c.name, a.account_id,
		   (i * 37 % 100 = 0 AND i % 4 = 0),
		   CASE WHEN i % 10 < 6 THEN v_park WHEN i % 10 < 8 THEN v_ind ELSE v_dorm END,
		   CASE WHEN i % 10 < 4 OR i % 10 = 6 THEN 4 ELSE 0 END,
		   CASE WHEN i % 20 = 19 THEN 'DTSY1352' ELSE 'DDSY1352' END
	  FROM generate_series(1, p_meters) i
	  JOIN prepaid.customer c ON c.property_id = v_prop AND c.name = 'shop ' || i
	  JOIN prepaid.account a ON a.property_id = v_prop AND a.customer_id = c.customer_id
	 ORDER BY i;

	INSERT INTO bench.meter_param (property_id, meter_id, i, tariff_id, regs, load_wh, delay,
								   base_e, base_r, modulus)
	SELECT m.property_id, m.meter_id, m.shop_no::int, m.tariff_id, m.rate_registers,
		   50 + (m.shop_no::bigint * 7919) % 451,
		   make_interval(secs => (m.shop_no::bigint * 104729) % 120),
		   CASE WHEN m.shop_no::int % 500 = 7	-- rolls over near the middle of the day
				THEN m.register_modulus_wh - (50 + (m.shop_no::bigint * 7919) % 451) * s.cum
				ELSE 10000000 + (m.shop_no::bigint * 7793) % 90000000 END,
		   ARRAY[1000000 + m.shop_no::int % 1000 * 1000, 20000000 + m.shop_no::int % 7000 * 1000,
				 30000000 + m.shop_no::int % 3000 * 1000, 40000000 + m.shop_no::int % 5000 * 1000],
		   m.register_modulus_wh
	  FROM prepaid.meter m
	  JOIN bench.slot s ON s.tariff_id = m.tariff_id AND s.k = 25
	 WHERE m.property_id = v_prop;
	ANALYZE prepaid.meter, prepaid.settle_cursor, bench.meter_param;

	-- opening recharges: 100 .. 2000 yuan, through the ledger (set-based)
	INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, channel,
								external_id, operator)
	SELECT m.property_id, m.account_id, m.meter_id,
		   CASE WHEN m.shop_no::int % 3 = 0 THEN 'recharge_wechat' ELSE 'recharge_platform' END,
		   100 + (m.shop_no::int * 131) % 1900,
		   CASE WHEN m.shop_no::int % 3 = 0 THEN 'wechat' ELSE 'platform' END,
		   'open-' || m.meter_id, 'bench'
	  FROM prepaid.meter m WHERE m.property_id = v_prop;

	-- warm-up: a baseline reading and one priced interval, settled
	PERFORM bench.add_readings(v_prop, 0, 1);
	PERFORM prepaid.settle();

	-- bring some balances down (property fees): 2 % just above the cut-off
	-- (credit limit 0 or 10; a quarter of the first class keeps power),
	-- 7 % below the warning level
	INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, operator, note)
	SELECT m.property_id, m.account_id, m.meter_id, 'property_fee',
		   CASE WHEN m.shop_no::int * 37 % 100 < 2 THEN 0.20
				WHEN m.shop_no::int * 37 % 100 = 2 THEN -9.80
				ELSE 5 + m.shop_no::int % 15 END - a.balance,
		   'bench', 'property fee'
	  FROM prepaid.meter m
	  JOIN prepaid.account a ON a.property_id = m.property_id AND a.account_id = m.account_id
	 WHERE m.property_id = v_prop AND m.shop_no::int * 37 % 100 < 10;
	RETURN v_prop;
END
$$;

-- Digest of what a settlement run wrote, for comparing two runs.
CREATE OR REPLACE FUNCTION bench.digest(p_after bigint,
	OUT entries bigint, OUT amount numeric, OUT kwh numeric, OUT cutoffs bigint,
	OUT entry_md5 text, OUT cursor_md5 text, OUT balance_md5 text, OUT ledger_ok boolean)
LANGUAGE plpgsql AS $$
BEGIN
	SELECT count(*), coalesce(sum(l.amount), 0), coalesce(sum(l.kwh), 0),
		   md5(coalesce(string_agg(concat_ws(':', l.meter_id, l.amount, l.kwh, l.period_from,
											 l.period_to), ',' ORDER BY l.meter_id), ''))
	  INTO entries, amount, kwh, entry_md5
	  FROM prepaid.ledger l WHERE l.kind = 'energy' AND l.entry_id > p_after;
	SELECT md5(string_agg(concat_ws(':', c.meter_id, c.read_at, c.energy_wh, c.rate_wh,
									c.carry_pico), ',' ORDER BY c.property_id, c.meter_id))
	  INTO cursor_md5 FROM prepaid.settle_cursor c;
	SELECT md5(string_agg(concat_ws(':', a.account_id, a.balance), ','
						  ORDER BY a.property_id, a.account_id))
	  INTO balance_md5 FROM prepaid.account a;
	SELECT count(*) INTO cutoffs FROM prepaid.meter WHERE relay_desired = 'open';
	ledger_ok := NOT EXISTS (SELECT 1 FROM prepaid.verify_ledger());
END
$$;
