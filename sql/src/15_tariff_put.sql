-- prepaid.tariff_put(doc jsonb): creates a tariff, or a new version of one,
-- from one JSON document, after validating all of it. Errors name the
-- offending field (e.g. "seasons[0].schedule.workday[2].to"). The document
-- format is described with a complete example in docs/tariffs.md.

CREATE FUNCTION prepaid._tariff_fail(p_path text, p_msg text, p_detail text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_detail IS NULL THEN
		RAISE EXCEPTION 'invalid tariff document: %: %', p_path, p_msg
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'See docs/tariffs.md for the document format.';
	END IF;
	RAISE EXCEPTION 'invalid tariff document: %: %', p_path, p_msg
		USING ERRCODE = 'invalid_parameter_value', DETAIL = p_detail,
			  HINT = 'See docs/tariffs.md for the document format.';
END
$$;

-- "HH:MM" (00:00 .. 24:00) to minutes after midnight.
CREATE FUNCTION prepaid._tariff_minute(p_value jsonb, p_path text)
RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	s text;
BEGIN
	IF p_value IS NULL OR jsonb_typeof(p_value) <> 'string' THEN
		PERFORM prepaid._tariff_fail(p_path, 'expected a time of day "HH:MM"');
	END IF;
	s := p_value #>> '{}';
	IF s = '24:00' THEN
		RETURN 1440;
	END IF;
	IF s !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' THEN
		PERFORM prepaid._tariff_fail(p_path, format('"%s" is not a time of day "HH:MM"', s));
	END IF;
	RETURN split_part(s, ':', 1)::integer * 60 + split_part(s, ':', 2)::integer;
END
$$;

-- "MM-DD" to month * 100 + day, checked against a leap year.
CREATE FUNCTION prepaid._tariff_month_day(p_value jsonb, p_path text)
RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	s text;
BEGIN
	IF p_value IS NULL OR jsonb_typeof(p_value) <> 'string' THEN
		PERFORM prepaid._tariff_fail(p_path, 'expected a month and day "MM-DD"');
	END IF;
	s := p_value #>> '{}';
	IF s !~ '^[0-9]{2}-[0-9]{2}$' OR to_char(to_date('2024-' || s, 'YYYY-MM-DD'), 'MM-DD') <> s THEN
		PERFORM prepaid._tariff_fail(p_path, format('"%s" is not a day of the year "MM-DD"', s));
	END IF;
	RETURN split_part(s, '-', 1)::integer * 100 + split_part(s, '-', 2)::integer;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
	PERFORM prepaid._tariff_fail(p_path, format('"%s" is not a day of the year "MM-DD"', s));
END
$$;

-- Validates a prices object; returns it as period -> numeric text.
CREATE FUNCTION prepaid._tariff_prices(p_prices jsonb, p_path text)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	k text;
	v jsonb;
	n numeric;
BEGIN
	IF p_prices IS NULL THEN
		RETURN '{}';
	END IF;
	IF jsonb_typeof(p_prices) <> 'object' THEN
		PERFORM prepaid._tariff_fail(p_path, 'expected an object of period: price');
	END IF;
	FOR k, v IN SELECT * FROM jsonb_each(p_prices) LOOP
		IF k NOT IN ('sharp', 'peak', 'flat', 'valley', 'deep') THEN
			PERFORM prepaid._tariff_fail(p_path || '.' || k, format('unknown period "%s"', k),
				'Periods are sharp, peak, flat, valley and deep.');
		END IF;
		IF jsonb_typeof(v) NOT IN ('number', 'string') THEN
			PERFORM prepaid._tariff_fail(p_path || '.' || k, 'price must be a number');
		END IF;
		BEGIN
			n := (v #>> '{}')::numeric;
		EXCEPTION WHEN invalid_text_representation THEN
			PERFORM prepaid._tariff_fail(p_path || '.' || k, 'price must be a number');
		END;
		IF n < 0 THEN
			PERFORM prepaid._tariff_fail(p_path || '.' || k, 'price must not be negative',
				format('Got %s.', n));
		END IF;
		IF n <> round(n, 6) OR n >= 10000 THEN
			PERFORM prepaid._tariff_fail(p_path || '.' || k,
				'price must be below 10000 with at most 6 decimal places', format('Got %s.', n));
		END IF;
	END LOOP;
	RETURN p_prices;
END
$$;

CREATE FUNCTION prepaid.tariff_put(doc jsonb)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	t_id        bigint;
	t_row       prepaid.tariff;
	v_no        integer;
	v_from      timestamptz;
	v_last_from timestamptz;
	tz          text;
	regs        text[];
	base_prices jsonb;
	day_types   jsonb;
	seasons     jsonb;
	wd_names    text[] := ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
	wd_owner    text[] := ARRAY[NULL, NULL, NULL, NULL, NULL, NULL, NULL]::text[];
	dt_name     text;
	dt_days     jsonb;
	dt_no       integer := 0;
	wd          jsonb;
	wd_i        integer;
	cover       text[] := array_fill(NULL::text, ARRAY[1232]);
	s           jsonb;
	s_i         integer;
	s_name      text;
	s_from      integer;
	s_to        integer;
	d           date;
	sched       jsonb;
	slots       jsonb;
	slot        jsonb;
	sl_i        integer;
	sl_from     integer;
	sl_to       integer;
	prev_to     integer;
	per         text;
	used        text[];
	prices      jsonb;
	path        text;
	h           jsonb;
	h_i         integer;
	h_day       date;
	cnt         integer;
BEGIN
	IF doc IS NULL OR jsonb_typeof(doc) <> 'object' THEN
		PERFORM prepaid._tariff_fail('$', 'the document must be a JSON object');
	END IF;

	-- which tariff
	IF doc ? 'tariff_id' THEN
		SELECT * INTO t_row FROM prepaid.tariff WHERE tariff_id = (doc->>'tariff_id')::bigint;
		IF NOT FOUND THEN
			PERFORM prepaid._tariff_fail('tariff_id', format('tariff %s does not exist', doc->>'tariff_id'));
		END IF;
		tz := coalesce(doc->>'time_zone', t_row.time_zone);
		IF tz <> t_row.time_zone THEN
			PERFORM prepaid._tariff_fail('time_zone', 'a new version cannot change the time zone',
				format('The tariff uses %s.', t_row.time_zone));
		END IF;
	ELSE
		IF coalesce(doc->>'name', '') = '' THEN
			PERFORM prepaid._tariff_fail('name', 'a new tariff needs a name',
				'To add a version to an existing tariff, give its tariff_id.');
		END IF;
		IF EXISTS (SELECT 1 FROM prepaid.tariff WHERE name = doc->>'name') THEN
			PERFORM prepaid._tariff_fail('name', format('a tariff named "%s" already exists', doc->>'name'),
				'To add a version to it, give its tariff_id.');
		END IF;
		tz := doc->>'time_zone';
		IF tz IS NULL THEN
			PERFORM prepaid._tariff_fail('time_zone', 'a new tariff needs a time zone',
				'For example "Asia/Shanghai".');
		END IF;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = tz) THEN
		PERFORM prepaid._tariff_fail('time_zone', format('unknown time zone "%s"', tz));
	END IF;

	-- validity
	IF t_row.tariff_id IS NOT NULL THEN
		SELECT max(version_no), max(valid_from) INTO v_no, v_last_from
		  FROM prepaid.tariff_version WHERE tariff_id = t_row.tariff_id;
	END IF;
	IF doc ? 'valid_from' THEN
		BEGIN
			IF doc->>'valid_from' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
				v_from := ((doc->>'valid_from')::date)::timestamp AT TIME ZONE tz;
			ELSE
				v_from := (doc->>'valid_from')::timestamptz;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			PERFORM prepaid._tariff_fail('valid_from',
				format('"%s" is not a date or timestamp', doc->>'valid_from'));
		END;
	ELSIF v_no IS NULL THEN
		v_from := '-infinity';
	ELSE
		PERFORM prepaid._tariff_fail('valid_from', 'a new version needs valid_from');
	END IF;
	IF v_last_from IS NOT NULL AND v_from <= v_last_from THEN
		PERFORM prepaid._tariff_fail('valid_from', 'a new version must start after the latest one',
			format('The latest version starts at %s.', v_last_from));
	END IF;
	IF t_row.tariff_id IS NOT NULL AND EXISTS (
		SELECT 1 FROM prepaid.meter m
		  JOIN prepaid.settle_cursor c ON c.property_id = m.property_id AND c.meter_id = m.meter_id
		 WHERE m.tariff_id = t_row.tariff_id AND c.read_at > v_from) THEN
		PERFORM prepaid._tariff_fail('valid_from', 'the version would re-price settled readings',
			'Some meters on this tariff are already settled past valid_from; start the version later.');
	END IF;

	-- registers and prices
	IF doc ? 'registers' THEN
		IF jsonb_typeof(doc->'registers') <> 'array' OR jsonb_array_length(doc->'registers') NOT BETWEEN 1 AND 8 THEN
			PERFORM prepaid._tariff_fail('registers', 'expected an array of 1 to 8 period names');
		END IF;
		SELECT array_agg(x ORDER BY o) INTO regs FROM jsonb_array_elements_text(doc->'registers') WITH ORDINALITY AS r(x, o);
		FOR sl_i IN 1 .. array_length(regs, 1) LOOP
			IF regs[sl_i] NOT IN ('sharp', 'peak', 'flat', 'valley', 'deep') THEN
				PERFORM prepaid._tariff_fail(format('registers[%s]', sl_i - 1), format('unknown period "%s"', regs[sl_i]));
			END IF;
		END LOOP;
	ELSE
		regs := ARRAY['sharp', 'peak', 'flat', 'valley'];
	END IF;
	base_prices := prepaid._tariff_prices(doc->'prices', 'prices');

	-- day types
	day_types := coalesce(doc->'day_types', '{"all": ["mon","tue","wed","thu","fri","sat","sun"]}');
	IF jsonb_typeof(day_types) <> 'object' OR day_types = '{}' THEN
		PERFORM prepaid._tariff_fail('day_types', 'expected an object of day type: [weekdays]');
	END IF;
	FOR dt_name, dt_days IN SELECT * FROM jsonb_each(day_types) LOOP
		IF jsonb_typeof(dt_days) <> 'array' THEN
			PERFORM prepaid._tariff_fail('day_types.' || dt_name, 'expected an array of weekdays (mon .. sun)');
		END IF;
		FOR wd IN SELECT * FROM jsonb_array_elements(dt_days) LOOP
			wd_i := array_position(wd_names, lower(wd #>> '{}'));
			IF wd_i IS NULL THEN
				PERFORM prepaid._tariff_fail('day_types.' || dt_name, format('unknown weekday %s', wd),
					'Weekdays are mon, tue, wed, thu, fri, sat, sun.');
			END IF;
			IF wd_owner[wd_i] IS NOT NULL THEN
				PERFORM prepaid._tariff_fail('day_types.' || dt_name,
					format('weekday %s is also in day type "%s"', wd_names[wd_i], wd_owner[wd_i]));
			END IF;
			wd_owner[wd_i] := dt_name;
		END LOOP;
	END LOOP;
	FOR wd_i IN 1 .. 7 LOOP
		IF wd_owner[wd_i] IS NULL THEN
			PERFORM prepaid._tariff_fail('day_types', format('weekday %s has no day type', wd_names[wd_i]));
		END IF;
	END LOOP;

	-- holidays
	IF doc ? 'holidays' AND jsonb_typeof(doc->'holidays') <> 'array' THEN
		PERFORM prepaid._tariff_fail('holidays', 'expected an array of {"date", "day_type"}');
	END IF;
	h_i := 0;
	FOR h IN SELECT * FROM jsonb_array_elements(coalesce(doc->'holidays', '[]')) LOOP
		path := format('holidays[%s]', h_i);
		BEGIN
			h_day := (h->>'date')::date;
		EXCEPTION WHEN OTHERS THEN
			PERFORM prepaid._tariff_fail(path || '.date', format('"%s" is not a date', h->>'date'));
		END;
		IF h_day IS NULL THEN
			PERFORM prepaid._tariff_fail(path || '.date', 'a holiday needs a date');
		END IF;
		IF NOT day_types ? coalesce(h->>'day_type', '') THEN
			PERFORM prepaid._tariff_fail(path || '.day_type', format('unknown day type "%s"', h->>'day_type'));
		END IF;
		h_i := h_i + 1;
	END LOOP;
	IF (SELECT count(*) <> count(DISTINCT x->>'date') FROM jsonb_array_elements(coalesce(doc->'holidays', '[]')) x) THEN
		PERFORM prepaid._tariff_fail('holidays', 'a date is listed twice');
	END IF;

	-- seasons
	IF doc ? 'seasons' THEN
		seasons := doc->'seasons';
		IF jsonb_typeof(seasons) <> 'array' OR jsonb_array_length(seasons) = 0 THEN
			PERFORM prepaid._tariff_fail('seasons', 'expected a non-empty array of seasons');
		END IF;
		IF doc ? 'schedule' THEN
			PERFORM prepaid._tariff_fail('schedule', 'give either seasons or a top-level schedule, not both');
		END IF;
	ELSE
		IF NOT doc ? 'schedule' THEN
			PERFORM prepaid._tariff_fail('schedule', 'a tariff needs a schedule (or seasons with schedules)');
		END IF;
		seasons := jsonb_build_array(jsonb_build_object('name', 'all year', 'from', '01-01', 'to', '12-31',
														 'schedule', doc->'schedule'));
	END IF;

	-- everything validated below is written as we go; an error rolls it all back
	IF t_row.tariff_id IS NULL THEN
		INSERT INTO prepaid.tariff (name, time_zone, property_id)
		VALUES (doc->>'name', tz, (doc->>'property_id')::bigint)
		RETURNING * INTO t_row;
		v_no := 0;
	ELSE
		UPDATE prepaid.tariff_version SET valid_to = v_from
		 WHERE tariff_id = t_row.tariff_id AND version_no = v_no;
		UPDATE prepaid.tariff SET revision = revision + 1 WHERE tariff_id = t_row.tariff_id;
	END IF;
	t_id := t_row.tariff_id;
	v_no := v_no + 1;
	INSERT INTO prepaid.tariff_version (tariff_id, version_no, valid_from, registers, doc)
	VALUES (t_id, v_no, v_from, regs, doc);
	FOR dt_name, dt_days IN SELECT * FROM jsonb_each(day_types) LOOP
		INSERT INTO prepaid.tariff_day_type (tariff_id, version_no, day_type, day_type_no, weekdays)
		SELECT t_id, v_no, dt_name, dt_no,
			   coalesce(array_agg(array_position(wd_names, lower(x)) ORDER BY 1), '{}')
		  FROM jsonb_array_elements_text(dt_days) x;
		dt_no := dt_no + 1;
	END LOOP;
	INSERT INTO prepaid.tariff_holiday (tariff_id, version_no, day, day_type)
	SELECT t_id, v_no, (x->>'date')::date, x->>'day_type'
	  FROM jsonb_array_elements(coalesce(doc->'holidays', '[]')) x;

	s_i := 0;
	FOR s IN SELECT * FROM jsonb_array_elements(seasons) LOOP
		path := format('seasons[%s]', s_i);
		IF jsonb_typeof(s) <> 'object' THEN
			PERFORM prepaid._tariff_fail(path, 'expected an object');
		END IF;
		s_name := coalesce(s->>'name', format('season %s', s_i + 1));
		s_from := prepaid._tariff_month_day(s->'from', path || '.from');
		s_to := prepaid._tariff_month_day(s->'to', path || '.to');
		-- mark the days of a leap year this season covers
		d := make_date(2024, s_from / 100, s_from % 100);
		LOOP
			cnt := extract(month FROM d)::integer * 100 + extract(day FROM d)::integer;
			IF cover[cnt] IS NOT NULL THEN
				PERFORM prepaid._tariff_fail(path, format('%s is also in season "%s"', to_char(d, 'MM-DD'), cover[cnt]));
			END IF;
			cover[cnt] := s_name;
			EXIT WHEN cnt = s_to;
			d := d + 1;
			IF d = '2025-01-01' THEN
				d := '2024-01-01';
			END IF;
		END LOOP;
		INSERT INTO prepaid.tariff_season (tariff_id, version_no, season_no, name, from_md, to_md)
		VALUES (t_id, v_no, s_i, s_name, s_from, s_to);

		prices := base_prices || prepaid._tariff_prices(s->'prices', path || '.prices');
		sched := s->'schedule';
		IF sched IS NULL OR jsonb_typeof(sched) NOT IN ('array', 'object') THEN
			PERFORM prepaid._tariff_fail(path || '.schedule',
				'expected an array of slots, or an object of day type: [slots]');
		END IF;
		IF jsonb_typeof(sched) = 'object' THEN
			FOR dt_name IN SELECT jsonb_object_keys(sched) LOOP
				IF NOT day_types ? dt_name THEN
					PERFORM prepaid._tariff_fail(path || '.schedule.' || dt_name, format('unknown day type "%s"', dt_name));
				END IF;
			END LOOP;
		END IF;
		used := '{}';
		FOR dt_name IN SELECT jsonb_object_keys(day_types) LOOP
			IF jsonb_typeof(sched) = 'array' THEN
				slots := sched;
			ELSE
				slots := sched->dt_name;
				IF slots IS NULL THEN
					PERFORM prepaid._tariff_fail(path || '.schedule', format('no schedule for day type "%s"', dt_name));
				END IF;
			END IF;
			IF jsonb_typeof(slots) <> 'array' OR jsonb_array_length(slots) = 0 THEN
				PERFORM prepaid._tariff_fail(path || '.schedule.' || dt_name, 'expected a non-empty array of slots');
			END IF;
			prev_to := 0;
			sl_i := 0;
			FOR slot IN SELECT x FROM jsonb_array_elements(slots) x
						 ORDER BY prepaid._tariff_minute(x->'from', path || '.schedule.' || dt_name || '[].from') LOOP
				path := format('seasons[%s].schedule.%s[%s]', s_i, dt_name, sl_i);
				sl_from := prepaid._tariff_minute(slot->'from', path || '.from');
				sl_to := prepaid._tariff_minute(slot->'to', path || '.to');
				per := slot->>'period';
				IF per IS NULL OR per NOT IN ('sharp', 'peak', 'flat', 'valley', 'deep') THEN
					PERFORM prepaid._tariff_fail(path || '.period', format('unknown period "%s"', per),
						'Periods are sharp, peak, flat, valley and deep.');
				END IF;
				IF sl_to <= sl_from THEN
					PERFORM prepaid._tariff_fail(path, format('slot ends (%s) before it starts (%s)', slot->>'to', slot->>'from'));
				END IF;
				IF sl_from > prev_to THEN
					PERFORM prepaid._tariff_fail(path, format('gap before this slot: nothing covers %s to %s',
						to_char(make_interval(mins => prev_to), 'HH24:MI'), slot->>'from'));
				ELSIF sl_from < prev_to THEN
					PERFORM prepaid._tariff_fail(path, format('slot overlaps the previous one (which ends at %s)',
						to_char(make_interval(mins => prev_to), 'HH24:MI')));
				END IF;
				INSERT INTO prepaid.tariff_slot (tariff_id, version_no, season_no, day_type, start_min, end_min, period)
				VALUES (t_id, v_no, s_i, dt_name, sl_from, sl_to, per);
				used := used || per;
				prev_to := sl_to;
				sl_i := sl_i + 1;
			END LOOP;
			IF prev_to <> 1440 THEN
				PERFORM prepaid._tariff_fail(format('seasons[%s].schedule.%s', s_i, dt_name),
					format('gap at the end of the day: nothing covers %s to 24:00',
						   to_char(make_interval(mins => prev_to), 'HH24:MI')));
			END IF;
		END LOOP;
		path := format('seasons[%s]', s_i);
		FOR per IN SELECT DISTINCT x FROM unnest(used || CASE WHEN doc ? 'registers' THEN regs ELSE '{}' END) x LOOP
			IF NOT prices ? per THEN
				PERFORM prepaid._tariff_fail(path || '.prices', format('period "%s" is used but has no price', per));
			END IF;
		END LOOP;
		INSERT INTO prepaid.tariff_price (tariff_id, version_no, season_no, period, price)
		SELECT t_id, v_no, s_i, k, (v #>> '{}')::numeric FROM jsonb_each(prices) AS p(k, v);
		s_i := s_i + 1;
	END LOOP;
	FOR cnt IN SELECT generate_series(1, 366) LOOP
		d := DATE '2024-01-01' + (cnt - 1);
		IF cover[extract(month FROM d)::integer * 100 + extract(day FROM d)::integer] IS NULL THEN
			PERFORM prepaid._tariff_fail('seasons', format('%s is in no season', to_char(d, 'MM-DD')));
		END IF;
	END LOOP;

	PERFORM prepaid._tariff_invalidate();
	RETURN t_id;
END
$$;
COMMENT ON FUNCTION prepaid.tariff_put(jsonb) IS
	'create a tariff or a new version of it from a JSON document (docs/tariffs.md)';
