-- Keeping the rollups (91_rollups.sql): the catch-up of pending readings,
-- late and deleted readings, the rebuild of a property, and what is
-- pending.
--
-- Locks: a meter's rollup_cursor row is locked (FOR UPDATE) by whatever
-- changes the meter's rollups -- the catch-up (SKIP LOCKED: it never waits,
-- a locked meter is left for its next run), a late or deleted reading (in
-- the inserting or deleting transaction, meters in key order), a rebuild --
-- and a cursor is read only once it is locked. So a reading that another
-- transaction inserts concurrently is either after the cursor when that
-- transaction locks it (pending: the next catch-up takes it) or at or
-- before it (late: applied by that transaction), never lost: the catch-up
-- rolls up to the meter's meter_latest reading, and a reading appended
-- after meter_latest's waits on meter_latest's row, not on the cursor.

-- The statement that folds the pending readings of the meters $1/$2 into
-- the rollups: those after each meter's cursor up to $3 (the meter's
-- meter_latest reading when its cursor was locked), then moves the cursor to
-- the last of them. Returns the readings rolled up.
CREATE FUNCTION prepaid._rollup_catch_up_sql()
RETURNS text LANGUAGE sql IMMUTABLE AS $f$
	SELECT format($q$
	WITH c AS MATERIALIZED (	-- index probes (a hash join would read every cursor)
		SELECT c.*, u.hi
		  FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS u(p, m, hi)
		 CROSS JOIN LATERAL (
				SELECT c.property_id, c.meter_id, c.read_at, c.energy_wh, c.rate_wh
				  FROM prepaid.rollup_cursor c WHERE c.property_id = u.p AND c.meter_id = u.m
				OFFSET 0) c),
	k AS MATERIALIZED (%1$s),
	nr AS MATERIALIZED (	-- the pending readings (an index range per meter)
		SELECT r.* FROM c CROSS JOIN LATERAL (
			SELECT r.* FROM prepaid.reading r
			 WHERE r.property_id = c.property_id AND r.meter_id = c.meter_id
			   AND r.read_at > coalesce(c.read_at, '-infinity') AND r.read_at <= c.hi
			OFFSET 0) r),
	sets AS (	-- one window per meter: the cursor's reading, then the pending ones
		SELECT 1 AS sign, c.property_id, c.meter_id, c.read_at, c.energy_wh, c.rate_wh
		  FROM c WHERE c.read_at IS NOT NULL
		UNION ALL
		SELECT 1, nr.property_id, nr.meter_id, nr.read_at, nr.energy_wh, nr.rate_wh FROM nr),
	%2$s,
	%3$s,
	moved AS (
		UPDATE prepaid.rollup_cursor c
		   SET read_at = x.read_at, energy_wh = x.energy_wh, rate_wh = x.rate_wh, rolled_at = now()
		  FROM (SELECT DISTINCT ON (nr.property_id, nr.meter_id) nr.property_id, nr.meter_id,
					   nr.read_at, nr.energy_wh, nr.rate_wh
				  FROM nr ORDER BY nr.property_id, nr.meter_id, nr.read_at DESC) x
		 WHERE c.property_id = x.property_id AND c.meter_id = x.meter_id)
	SELECT count(*) FROM nr
	$q$, prepaid._rollup_meters_sql('c'), prepaid._rollup_energy_ctes('sets', 'k'),
		 prepaid._rollup_electrical_ctes('nr', 'k', false))
$f$;

-- Folds the pending readings of every meter (or of one property) into the
-- rollups, meters in key order, pg_prepaid.rollup_batch_size meters per
-- statement. Meters whose cursor another transaction holds are left for the
-- next run; a property none of whose meters was left is marked caught up as
-- of the start of the run (prepaid.rollup_state). Returns the readings
-- rolled up. Run by the "rollups" job.
CREATE FUNCTION prepaid.rollup_catch_up(p_property_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
DECLARE
	v_start   timestamptz := clock_timestamp();
	v_batch   integer := coalesce(nullif(current_setting('pg_prepaid.rollup_batch_size', true), ''),
								  '20000')::integer;
	v_lp      bigint := -1;
	v_lm      bigint := -1;
	v_p       bigint[];
	v_m       bigint[];
	v_hi      timestamptz[];
	v_cp      bigint[];
	v_cm      bigint[];
	v_chi     timestamptz[];
	v_n       integer;
	v_total   bigint := 0;
	v_rolled  bigint;
	v_skipped bigint[] := '{}';
	v_sql     text := prepaid._rollup_catch_up_sql();
BEGIN
	LOOP
		-- the next meters with pending readings (a merge of two key orders)
		SELECT count(*), array_agg(x.property_id), array_agg(x.meter_id), array_agg(x.hi)
		  INTO v_n, v_cp, v_cm, v_chi
		  FROM (SELECT l.property_id, l.meter_id, l.read_at AS hi
				  FROM prepaid.meter_latest l
				  JOIN prepaid.rollup_cursor c ON c.property_id = l.property_id AND c.meter_id = l.meter_id
				 WHERE (l.property_id, l.meter_id) > (v_lp, v_lm)
				   AND (p_property_id IS NULL OR l.property_id = p_property_id)
				   AND l.read_at > coalesce(c.read_at, '-infinity')
				 ORDER BY l.property_id, l.meter_id LIMIT v_batch) x;
		EXIT WHEN v_n = 0;
		v_lp := v_cp[v_n];
		v_lm := v_cm[v_n];
		-- their cursors, locked; those another transaction holds are left
		SELECT array_agg(x.p), array_agg(x.m), array_agg(x.hi) INTO v_p, v_m, v_hi
		  FROM (SELECT u.p, u.m, u.hi
				  FROM unnest(v_cp, v_cm, v_chi) AS u(p, m, hi)
				  JOIN prepaid.rollup_cursor c ON c.property_id = u.p AND c.meter_id = u.m
				 ORDER BY u.p, u.m
				   FOR UPDATE OF c SKIP LOCKED) x;
		IF coalesce(cardinality(v_p), 0) < v_n THEN
			v_skipped := v_skipped || ARRAY(
				SELECT DISTINCT u.p FROM unnest(v_cp, v_cm) AS u(p, m)
				 WHERE (u.p, u.m) NOT IN (SELECT * FROM unnest(v_p, v_m)));
		END IF;
		IF v_p IS NOT NULL THEN
			EXECUTE v_sql INTO v_rolled USING v_p, v_m, v_hi;
			v_total := v_total + v_rolled;
		END IF;
		EXIT WHEN v_n < v_batch;
	END LOOP;
	INSERT INTO prepaid.rollup_state AS s (property_id, caught_up_at)
	SELECT p.property_id, v_start FROM prepaid.property p
	 WHERE (p_property_id IS NULL OR p.property_id = p_property_id)
	   AND p.property_id <> ALL (v_skipped)
	ON CONFLICT (property_id) DO UPDATE SET caught_up_at = excluded.caught_up_at
	 WHERE s.caught_up_at < excluded.caught_up_at;
	RETURN v_total;
END
$$;
COMMENT ON FUNCTION prepaid.rollup_catch_up(bigint) IS
	'fold the pending readings of every meter (or of one property) into the rollups; returns the readings rolled up';

INSERT INTO prepaid.job (job_name, command, schedule_interval) VALUES
	('rollups', 'SELECT prepaid.rollup_catch_up()', interval '30 seconds');

-- The statement that applies a change at or before the meters' rollup
-- cursors (whose rows the caller has locked) to the rollups: the intervals
-- of each changed meter's window (the reading before its first change up to
-- its cursor) as they are now, minus as they were before. p_changes is a
-- relation of the changed rows with the columns of prepaid.reading (a
-- trigger's transition table, or a subquery); inserted rows are stored
-- already, deleted ones (p_deleted) are gone. Samples: inserted ones are
-- added; the days of deleted ones are recomputed from their readings up to
-- the cursor (and dropped when none is left).
CREATE FUNCTION prepaid._rollup_change_sql(p_changes text, p_deleted boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $f$
	SELECT format($q$
	WITH ch AS MATERIALIZED (	-- the changed rows at or before their meter's cursor
		SELECT r.*, c.read_at AS cap
		  FROM %1$s r
		  JOIN prepaid.rollup_cursor c ON c.property_id = r.property_id AND c.meter_id = r.meter_id
		 WHERE r.read_at <= c.read_at),
	w AS MATERIALIZED (
		SELECT ch.property_id, ch.meter_id, min(ch.read_at) AS lo, max(ch.cap) AS cap
		  FROM ch GROUP BY 1, 2),
	k AS MATERIALIZED (%3$s),
	cur AS MATERIALIZED (	-- the window now
		SELECT w.property_id, w.meter_id, r.read_at, r.energy_wh, r.rate_wh
		  FROM w CROSS JOIN LATERAL (
				SELECT r.read_at, r.energy_wh, r.rate_wh FROM prepaid.reading r
				 WHERE r.property_id = w.property_id AND r.meter_id = w.meter_id AND r.read_at < w.lo
				 ORDER BY r.read_at DESC LIMIT 1) r
		UNION ALL
		SELECT w.property_id, w.meter_id, r.read_at, r.energy_wh, r.rate_wh
		  FROM w JOIN prepaid.reading r
			ON r.property_id = w.property_id AND r.meter_id = w.meter_id
		   AND r.read_at >= w.lo AND r.read_at <= w.cap),
	sets AS (	-- +1: the window now; -1: the window before the change
		SELECT 1 AS sign, cur.* FROM cur
		UNION ALL
		SELECT -1, cur.* FROM cur
		 WHERE %2$s OR NOT EXISTS (SELECT 1 FROM ch WHERE ch.property_id = cur.property_id
									 AND ch.meter_id = cur.meter_id AND ch.read_at = cur.read_at)
		UNION ALL
		SELECT -1, ch.property_id, ch.meter_id, ch.read_at, ch.energy_wh, ch.rate_wh FROM ch
		 WHERE %2$s),
	%4$s,
	x_days AS MATERIALIZED (	-- deleted: the touched days, from their readings up to the cursor
		SELECT DISTINCT ch.property_id, ch.meter_id, k.time_zone, ch.cap,
			   (ch.read_at AT TIME ZONE k.time_zone)::date AS day
		  FROM ch JOIN k ON k.property_id = ch.property_id AND k.meter_id = ch.meter_id
		 WHERE %2$s),
	x_src AS (
		SELECT ch.* FROM ch WHERE NOT %2$s
		UNION ALL
		SELECT r.*, d.cap FROM x_days d JOIN prepaid.reading r
			ON r.property_id = d.property_id AND r.meter_id = d.meter_id
		   AND r.read_at >= (d.day::timestamp AT TIME ZONE d.time_zone)
		   AND r.read_at < ((d.day + 1)::timestamp AT TIME ZONE d.time_zone)
		   AND r.read_at <= d.cap),
	%5$s,
	x_gone AS (
		DELETE FROM prepaid.electrical_daily x USING x_days d
		 WHERE x.property_id = d.property_id AND x.meter_id = d.meter_id AND x.day = d.day
		   AND NOT EXISTS (SELECT 1 FROM x_agg a WHERE a.property_id = d.property_id
							  AND a.meter_id = d.meter_id AND a.day = d.day))
	SELECT count(*) FROM ch
	$q$, p_changes, p_deleted::text, prepaid._rollup_meters_sql('w'),
		 prepaid._rollup_energy_ctes('sets', 'k'),
		 prepaid._rollup_electrical_ctes('x_src', 'k', p_deleted))
$f$;

-- Locks the rollup cursors of the meters $1/$2 (in key order).
CREATE FUNCTION prepaid._rollup_lock(p_property_ids bigint[], p_meter_ids bigint[])
RETURNS void LANGUAGE sql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT count(*) FROM (
		SELECT 1 FROM prepaid.rollup_cursor c
		 WHERE (c.property_id, c.meter_id) IN (SELECT * FROM unnest(p_property_ids, p_meter_ids))
		 ORDER BY c.property_id, c.meter_id
		   FOR UPDATE OF c) x
$$;

-- Inserted readings that take the SQL path (20_reading.sql): those at or
-- before their meter's rollup cursor are applied to the rollups now; the
-- others are pending. Called before the classification, so a row that is
-- then quarantined is taken out again by the delete trigger.
CREATE FUNCTION prepaid._rollup_insert(p_property_ids bigint[], p_meter_ids bigint[],
									   p_read_ats timestamptz[])
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
BEGIN
	PERFORM prepaid._rollup_lock(p_property_ids, p_meter_ids);
	IF EXISTS (SELECT 1 FROM unnest(p_property_ids, p_meter_ids, p_read_ats) AS u(p, m, t)
				 JOIN prepaid.rollup_cursor c ON c.property_id = u.p AND c.meter_id = u.m
				WHERE u.t <= c.read_at) THEN
		EXECUTE prepaid._rollup_change_sql(
			'(SELECT r.* FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS u(p, m, t) '
			'JOIN prepaid.reading r ON r.property_id = u.p AND r.meter_id = u.m AND r.read_at = u.t)',
			false) USING p_property_ids, p_meter_ids, p_read_ats;
	END IF;
END
$$;

-- Deleted readings: those at or before their meter's rollup cursor are
-- taken out of the rollups; a deleted cursor reading hands the cursor to
-- the meter's newest reading before it.
CREATE FUNCTION prepaid._reading_rollup_delete() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp SET jit = off AS $$
DECLARE
	v_p bigint[];
	v_m bigint[];
BEGIN
	SELECT array_agg(o.property_id), array_agg(o.meter_id) INTO v_p, v_m
	  FROM (SELECT DISTINCT o.property_id, o.meter_id FROM old_rows o) o;
	IF v_p IS NULL THEN
		RETURN NULL;
	END IF;
	PERFORM prepaid._rollup_lock(v_p, v_m);
	IF NOT EXISTS (SELECT 1 FROM old_rows o
					 JOIN prepaid.rollup_cursor c ON c.property_id = o.property_id AND c.meter_id = o.meter_id
					WHERE o.read_at <= c.read_at) THEN
		RETURN NULL;
	END IF;
	EXECUTE prepaid._rollup_change_sql('old_rows', true);
	UPDATE prepaid.rollup_cursor c
	   SET read_at = r.read_at, energy_wh = r.energy_wh, rate_wh = r.rate_wh, rolled_at = now()
	  FROM old_rows o
	  LEFT JOIN LATERAL (
			SELECT r.read_at, r.energy_wh, r.rate_wh FROM prepaid.reading r
			 WHERE r.property_id = o.property_id AND r.meter_id = o.meter_id AND r.read_at < o.read_at
			 ORDER BY r.read_at DESC LIMIT 1) r ON true
	 WHERE c.property_id = o.property_id AND c.meter_id = o.meter_id AND c.read_at = o.read_at;
	RETURN NULL;
END
$$;
CREATE TRIGGER reading_rollup_delete AFTER DELETE ON prepaid.reading
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION prepaid._reading_rollup_delete();

-- Recomputes the rollups of one property from its stored readings, from the
-- local day p_from on (all history when NULL): after a PT/CT correction, a
-- tariff's registers fixed, an UPDATE of readings, or readings loaded with
-- the triggers disabled. Pending readings are caught up first. Blocks
-- inserts of readings until the calling transaction ends. Returns the
-- number of readings rolled up from p_from on.
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
	v_chunk constant integer := 20000;
BEGIN
	SELECT time_zone INTO v_tz FROM prepaid.property WHERE property_id = p_property_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'property % does not exist', p_property_id USING ERRCODE = 'no_data_found';
	END IF;
	v_start := coalesce(p_from::timestamp AT TIME ZONE v_tz, '-infinity');
	-- readings must not change meanwhile: inserts wait until this transaction
	-- ends (and so does another rebuild); a running catch-up finishes first
	LOCK TABLE prepaid.reading IN SHARE ROW EXCLUSIVE MODE;
	PERFORM count(*) FROM (SELECT 1 FROM prepaid.rollup_cursor c WHERE c.property_id = p_property_id
							ORDER BY c.meter_id FOR UPDATE) x;
	-- meter_latest is each meter's newest stored reading again (loads with
	-- the triggers disabled, or updated readings, may have left it behind)
	DELETE FROM prepaid.meter_latest l
	 WHERE l.property_id = p_property_id
	   AND NOT EXISTS (SELECT 1 FROM prepaid.reading r
						WHERE r.property_id = l.property_id AND r.meter_id = l.meter_id);
	EXECUTE prepaid._meter_latest_upsert_sql($r$
		SELECT r.* FROM prepaid.meter m
		 CROSS JOIN LATERAL (
				SELECT r.* FROM prepaid.reading r
				 WHERE r.property_id = m.property_id AND r.meter_id = m.meter_id
				 ORDER BY r.read_at DESC LIMIT 1) r
		 WHERE m.property_id = $1$r$, false) USING p_property_id;
	-- a cursor past the newest reading (readings deleted with the triggers
	-- disabled) goes back to it
	UPDATE prepaid.rollup_cursor c
	   SET read_at = l.read_at, energy_wh = l.energy_wh, rate_wh = l.rate_wh
	  FROM prepaid.meter_latest l
	 WHERE c.property_id = p_property_id AND l.property_id = c.property_id
	   AND l.meter_id = c.meter_id AND c.read_at > l.read_at;
	UPDATE prepaid.rollup_cursor c SET read_at = NULL, energy_wh = NULL, rate_wh = NULL
	 WHERE c.property_id = p_property_id AND c.read_at IS NOT NULL
	   AND NOT EXISTS (SELECT 1 FROM prepaid.meter_latest l
						WHERE l.property_id = c.property_id AND l.meter_id = c.meter_id);
	-- every cursor moves to its meter's newest reading
	PERFORM prepaid.rollup_catch_up(p_property_id);
	DELETE FROM prepaid.property_energy_hourly WHERE property_id = p_property_id AND hour >= v_start;
	DELETE FROM prepaid.meter_energy_daily
	 WHERE property_id = p_property_id AND day >= coalesce(p_from, '-infinity');
	DELETE FROM prepaid.electrical_daily
	 WHERE property_id = p_property_id AND day >= coalesce(p_from, '-infinity');
	LOOP	-- many meters per statement: intervals ending after the start, samples from it on
		SELECT max(meter_id) INTO v_hi FROM (
			SELECT meter_id FROM prepaid.meter WHERE property_id = p_property_id AND meter_id > v_lo
			 ORDER BY meter_id LIMIT v_chunk) x;
		EXIT WHEN v_hi IS NULL;
		EXECUTE format($q$
		WITH c AS MATERIALIZED (
			SELECT c.property_id, c.meter_id, c.read_at AS cap FROM prepaid.rollup_cursor c
			 WHERE c.property_id = $1 AND c.meter_id > $2 AND c.meter_id <= $3
			   AND c.read_at IS NOT NULL),
		k AS MATERIALIZED (%1$s),
		nr AS MATERIALIZED (	-- the samples from the start on
			SELECT r.* FROM c JOIN prepaid.reading r
				ON r.property_id = c.property_id AND r.meter_id = c.meter_id
			   AND r.read_at >= $4 AND r.read_at <= c.cap),
		sets AS (	-- the intervals ending after the start
			SELECT 1 AS sign, c.property_id, c.meter_id, r.read_at, r.energy_wh, r.rate_wh
			  FROM c CROSS JOIN LATERAL (
					SELECT r.read_at, r.energy_wh, r.rate_wh FROM prepaid.reading r
					 WHERE r.property_id = c.property_id AND r.meter_id = c.meter_id
					   AND r.read_at <= $4
					 ORDER BY r.read_at DESC LIMIT 1) r
			UNION ALL
			SELECT 1, nr.property_id, nr.meter_id, nr.read_at, nr.energy_wh, nr.rate_wh FROM nr
			 WHERE nr.read_at > $4),
		%2$s,
		%3$s
		SELECT count(*) FROM nr
		$q$, prepaid._rollup_meters_sql('c'), prepaid._rollup_energy_ctes('sets', 'k'),
			 prepaid._rollup_electrical_ctes('nr', 'k', false))
		INTO v_n USING p_property_id, v_lo, v_hi, v_start;
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

-- What is pending, per property: meters with readings after their rollup
-- cursor, the oldest such cursor (the rollups are complete up to it), and
-- when the property was last caught up. One pass over the property's
-- meters.
CREATE VIEW prepaid.rollup_status WITH (security_invoker = true) AS
SELECT p.property_id, s.caught_up_at,
	   count(l.meter_id) FILTER (WHERE l.read_at > coalesce(c.read_at, '-infinity')) AS meters_pending,
	   min(coalesce(c.read_at, '-infinity')) FILTER (WHERE l.read_at > coalesce(c.read_at, '-infinity'))
		   AS pending_after,
	   max(l.read_at) AS newest_reading_at
  FROM prepaid.property p
  LEFT JOIN prepaid.rollup_state s ON s.property_id = p.property_id
  LEFT JOIN prepaid.rollup_cursor c ON c.property_id = p.property_id
  LEFT JOIN prepaid.meter_latest l ON l.property_id = c.property_id AND l.meter_id = c.meter_id
 GROUP BY p.property_id, s.caught_up_at;
COMMENT ON VIEW prepaid.rollup_status IS
	'per property: meters with readings not yet in the rollups, the oldest rollup cursor among them, the last complete catch-up';
