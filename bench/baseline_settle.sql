-- Baselines for the benchmarks (scripts/bench.sh): what settlement and the
-- TOU split look like written the plain way, row at a time in PL/pgSQL.
--
-- bench.settle_plpgsql() does what prepaid.settle() does, one meter and one
-- reading at a time: lock the meter's cursor, loop over its new readings,
-- compute the register deltas (with rollover; a reading whose energy went
-- backwards is quarantined with an alarm), price per-rate register deltas
-- at their period's price or split total-only energy with
-- prepaid.tou_split(), carry the sub-fen remainder, insert one ledger entry
-- per meter (the ledger trigger moves the balance and runs the supply
-- decision) and move the cursor. Same results as prepaid.settle() to the
-- fen, as long as no interval straddles a season or tariff-version change
-- (each period then has one price in the interval), which holds for the
-- benchmark data.
--
-- bench.tou_split_plpgsql() is the TOU split walked in PL/pgSQL over the
-- tariff tables (no DST handling: the benchmark zone has none).

CREATE SCHEMA IF NOT EXISTS bench;

CREATE OR REPLACE FUNCTION bench._register_delta(p_prev bigint, p_cur bigint, p_modulus bigint)
RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_cur >= p_prev THEN
		RETURN p_cur - p_prev;
	END IF;
	IF p_prev > p_modulus / 10 * 9 AND p_cur < p_modulus / 10
	   AND p_modulus - p_prev + p_cur <= p_modulus / 100 THEN
		RETURN p_modulus - p_prev + p_cur;		-- register rollover
	END IF;
	RETURN -1;
END
$$;

CREATE OR REPLACE FUNCTION bench.settle_plpgsql(
	OUT meters bigint, OUT readings bigint, OUT entries bigint,
	OUT kwh numeric, OUT amount numeric, OUT quarantined bigint)
LANGUAGE plpgsql AS $$
DECLARE
	cur      record;
	rd       record;
	sp       record;
	has_at   boolean;
	cur_at   timestamptz;
	cur_e    bigint;
	rr       bigint[];
	moved    boolean;
	nread    integer;
	first_at timestamptz;
	delta    bigint;
	d        bigint;
	use_regs boolean;
	reg_d    bigint[];
	regs     text[];
	p_name   text[];
	p_price  numeric[];
	p_kwh    numeric[];
	p_amt    numeric[];
	ekwh     numeric;
	price    numeric;
	j        integer;
	total    numeric;
	fen      bigint;
	m_kwh    numeric;
	periods  jsonb;
BEGIN
	meters := 0; readings := 0; entries := 0; kwh := 0; amount := 0; quarantined := 0;
	FOR cur IN
		SELECT sc.property_id, sc.meter_id, sc.read_at, sc.energy_wh, sc.rate_wh, sc.carry_pico,
			   m.account_id, m.tariff_id, m.pt_ratio::bigint * m.ct_ratio AS mult,
			   m.register_modulus_wh AS modulus
		  FROM prepaid.settle_cursor sc
		  JOIN prepaid.meter m ON m.property_id = sc.property_id AND m.meter_id = sc.meter_id
		 WHERE m.mode = 'prepaid'
		   AND EXISTS (SELECT 1 FROM prepaid.reading x
						WHERE x.property_id = sc.property_id AND x.meter_id = sc.meter_id
						  AND x.read_at > coalesce(sc.read_at, '-infinity'))
		 ORDER BY sc.property_id, sc.meter_id
		 FOR UPDATE OF sc
	LOOP
		has_at := cur.read_at IS NOT NULL AND cur.energy_wh IS NOT NULL;
		cur_at := cur.read_at;
		cur_e := cur.energy_wh;
		rr := cur.rate_wh;
		moved := false;
		nread := 0;
		first_at := NULL;
		p_name := '{}'; p_price := '{}'; p_kwh := '{}'; p_amt := '{}';

		FOR rd IN
			SELECT x.read_at, x.energy_wh, x.rate_wh FROM prepaid.reading x
			 WHERE x.property_id = cur.property_id AND x.meter_id = cur.meter_id
			   AND x.read_at > coalesce(cur.read_at, '-infinity')
			 ORDER BY x.read_at
		LOOP
			IF NOT has_at THEN			-- baseline reading: nothing to price
				has_at := true;
				cur_at := rd.read_at; cur_e := rd.energy_wh; rr := rd.rate_wh;
				moved := true;
				first_at := rd.read_at;
				CONTINUE;
			END IF;
			delta := bench._register_delta(cur_e, rd.energy_wh, cur.modulus);
			IF delta < 0 THEN
				WITH moved_r AS (
					DELETE FROM prepaid.reading x
					 WHERE x.property_id = cur.property_id AND x.meter_id = cur.meter_id
					   AND x.read_at = rd.read_at
					RETURNING to_jsonb(x) AS row_json)
				INSERT INTO prepaid.quarantine (property_id, meter_id, read_at, source, reason,
												detail, reading)
				SELECT cur.property_id, cur.meter_id, rd.read_at, 'settlement', 'energy_backwards',
					   format('energy went from %s Wh at %s to %s Wh (register went backwards); '
							  'not a register rollover', cur_e, cur_at, rd.energy_wh), row_json
				  FROM moved_r;
				PERFORM prepaid.alarm_raise(cur.property_id, cur.meter_id, 'energy_backwards',
					jsonb_build_object('read_at', rd.read_at), 'critical');
				quarantined := quarantined + 1;
				CONTINUE;
			END IF;

			-- per-rate registers when both readings have the same complete set
			use_regs := rr IS NOT NULL AND rd.rate_wh IS NOT NULL
						AND cardinality(rr) > 0 AND cardinality(rr) = cardinality(rd.rate_wh)
						AND array_position(rr, NULL) IS NULL
						AND array_position(rd.rate_wh, NULL) IS NULL;
			IF use_regs THEN
				reg_d := '{}';
				FOR j IN 1 .. cardinality(rr) LOOP
					d := bench._register_delta(rr[j], rd.rate_wh[j], cur.modulus);
					IF d < 0 THEN
						use_regs := false;
						EXIT;
					END IF;
					reg_d := reg_d || d;
				END LOOP;
			END IF;
			IF NOT moved THEN
				first_at := cur_at;
			END IF;

			IF use_regs THEN
				SELECT v.registers INTO regs FROM prepaid.tariff_version v
				 WHERE v.tariff_id = cur.tariff_id
				   AND v.valid_from <= rd.read_at - interval '1 microsecond'
				   AND v.valid_to > rd.read_at - interval '1 microsecond';
				FOR j IN 1 .. cardinality(reg_d) LOOP
					CONTINUE WHEN reg_d[j] = 0;
					ekwh := reg_d[j] * cur.mult * 0.001;
					price := prepaid.tou_price(cur.tariff_id, rd.read_at - interval '1 microsecond',
											   regs[j]);
					-- (the tariff maps every register in the benchmark data)
					p_name := p_name || regs[j];
					p_price := p_price || price;
					p_kwh := p_kwh || ekwh;
					p_amt := p_amt || (ekwh * price);
				END LOOP;
			ELSIF delta > 0 THEN
				FOR sp IN
					SELECT x.period, x.kwh
					  FROM prepaid.tou_split(cur.tariff_id, cur_at, rd.read_at,
											 delta * cur.mult * 0.001) x
				LOOP
					CONTINUE WHEN sp.kwh = 0;
					price := prepaid.tou_price(cur.tariff_id, rd.read_at - interval '1 microsecond',
											   sp.period);
					p_name := p_name || sp.period;
					p_price := p_price || price;
					p_kwh := p_kwh || sp.kwh;
					p_amt := p_amt || (sp.kwh * price);
				END LOOP;
			END IF;
			cur_at := rd.read_at; cur_e := rd.energy_wh; rr := rd.rate_wh;
			moved := true;
			nread := nread + 1;
		END LOOP;

		CONTINUE WHEN NOT moved;

		-- the amount: exact sum plus the carried remainder, charged in whole fen
		total := cur.carry_pico * 0.000000000001;	-- exact
		m_kwh := 0;
		periods := '[]';
		FOR j IN 1 .. coalesce(cardinality(p_amt), 0) LOOP
			total := total + p_amt[j];
			m_kwh := m_kwh + p_kwh[j];
		END LOOP;
		SELECT coalesce(jsonb_agg(jsonb_build_object('period', g.period, 'kwh', g.kwh,
													 'price', g.price, 'amount', g.amt)), '[]')
		  INTO periods
		  FROM (SELECT n AS period, pr AS price, sum(k) AS kwh, trunc(sum(a), 6) AS amt
				  FROM unnest(p_name, p_price, p_kwh, p_amt) u(n, pr, k, a)
				 GROUP BY n, pr ORDER BY min(a)) g;
		fen := floor(total * 100);
		meters := meters + 1;
		readings := readings + nread;
		IF m_kwh > 0 OR fen > 0 THEN
			INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, kwh,
										detail, period_from, period_to)
			VALUES (cur.property_id, cur.account_id, cur.meter_id, 'energy', -fen * 0.01, m_kwh,
					jsonb_build_object('from', first_at, 'to', cur_at, 'readings', nread,
									   'periods', periods),
					first_at, cur_at);
			entries := entries + 1;
			kwh := kwh + m_kwh;
			amount := amount + fen * 0.01;
		END IF;
		UPDATE prepaid.settle_cursor
		   SET read_at = cur_at, energy_wh = cur_e, rate_wh = rr,
			   carry_pico = ((total * 100 - fen) * 1e10)::bigint, settled_at = now()
		 WHERE property_id = cur.property_id AND meter_id = cur.meter_id;
	END LOOP;
END
$$;

-- The TOU split in PL/pgSQL over the tariff tables: walk [t_from, t_to)
-- slot by slot in the tariff's local time, add up the seconds per period,
-- split kwh in proportion (largest remainder, to 1e-6 kWh).
CREATE OR REPLACE FUNCTION bench.tou_split_plpgsql(p_tariff bigint, t_from timestamptz,
												   t_to timestamptz, p_kwh numeric)
RETURNS TABLE (period text, kwh numeric) LANGUAGE plpgsql STABLE AS $$
DECLARE
	tz      text;
	t       timestamptz := t_from;
	loc     timestamp;
	v_no    integer;
	v_to    timestamptz;
	s_no    integer;
	dtype   text;
	md      integer;
	minute  integer;
	per     text;
	end_min integer;
	seg_end timestamptz;
	names   text[] := ARRAY['sharp', 'peak', 'flat', 'valley', 'deep'];
	usec    numeric[] := ARRAY[0, 0, 0, 0, 0];
	wsum    numeric;
	units   bigint := (p_kwh * 1000000)::bigint;
	parts   bigint[] := ARRAY[0, 0, 0, 0, 0];
	rem     numeric[] := ARRAY[-1, -1, -1, -1, -1];
	given   bigint := 0;
	best    integer;
	i       integer;
BEGIN
	SELECT x.time_zone INTO tz FROM prepaid.tariff x WHERE x.tariff_id = p_tariff;
	WHILE t < t_to LOOP
		SELECT v.version_no, v.valid_to INTO v_no, v_to FROM prepaid.tariff_version v
		 WHERE v.tariff_id = p_tariff AND v.valid_from <= t AND v.valid_to > t;
		loc := t AT TIME ZONE tz;
		md := extract(month FROM loc)::int * 100 + extract(day FROM loc)::int;
		minute := extract(hour FROM loc)::int * 60 + extract(minute FROM loc)::int;
		SELECT s.season_no INTO s_no FROM prepaid.tariff_season s
		 WHERE s.tariff_id = p_tariff AND s.version_no = v_no
		   AND CASE WHEN s.from_md <= s.to_md THEN md BETWEEN s.from_md AND s.to_md
					ELSE md >= s.from_md OR md <= s.to_md END;
		SELECT h.day_type INTO dtype FROM prepaid.tariff_holiday h
		 WHERE h.tariff_id = p_tariff AND h.version_no = v_no AND h.day = loc::date;
		IF dtype IS NULL THEN
			SELECT d.day_type INTO dtype FROM prepaid.tariff_day_type d
			 WHERE d.tariff_id = p_tariff AND d.version_no = v_no
			   AND extract(isodow FROM loc)::int = ANY (d.weekdays);
		END IF;
		SELECT sl.period, sl.end_min INTO per, end_min FROM prepaid.tariff_slot sl
		 WHERE sl.tariff_id = p_tariff AND sl.version_no = v_no AND sl.season_no = s_no
		   AND sl.day_type = dtype AND sl.start_min <= minute AND sl.end_min > minute;
		seg_end := least((date_trunc('day', loc) + make_interval(mins => end_min)) AT TIME ZONE tz,
						 v_to, t_to);
		i := array_position(names, per);
		usec[i] := usec[i] + extract(epoch FROM seg_end - t) * 1000000;
		t := seg_end;
		dtype := NULL;
	END LOOP;
	wsum := usec[1] + usec[2] + usec[3] + usec[4] + usec[5];
	FOR i IN 1 .. 5 LOOP
		IF usec[i] > 0 THEN
			parts[i] := floor(units * usec[i] / wsum);
			rem[i] := trunc(mod(units * usec[i], wsum) * 1000000 / wsum);
			given := given + parts[i];
		END IF;
	END LOOP;
	WHILE given < units LOOP
		best := NULL;
		FOR i IN 1 .. 5 LOOP
			IF usec[i] > 0 AND (best IS NULL OR rem[i] > rem[best]) THEN
				best := i;
			END IF;
		END LOOP;
		parts[best] := parts[best] + 1;
		rem[best] := -1;
		given := given + 1;
	END LOOP;
	FOR i IN 1 .. 5 LOOP
		IF usec[i] > 0 THEN
			period := names[i];
			kwh := parts[i] * 0.000001;
			RETURN NEXT;
		END IF;
	END LOOP;
END
$$;
