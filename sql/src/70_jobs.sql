-- Jobs run by the background scheduler (bgw/scheduler.c) when the library is
-- preloaded; every job is also an ordinary SQL command a DBA can run by hand.
-- A job's run and the update of its row happen in one transaction, so no
-- "running" marker can outlive a crash; what is running now is visible in
-- pg_stat_activity (backend_type 'pg_prepaid scheduler').

CREATE TABLE prepaid.job (
	job_name          text PRIMARY KEY,
	command           text NOT NULL,
	schedule_interval interval NOT NULL CHECK (schedule_interval > interval '0'),
	enabled           boolean NOT NULL DEFAULT true,
	next_run          timestamptz NOT NULL DEFAULT now(),
	last_start        timestamptz,
	last_finish       timestamptz,
	last_duration     interval,
	last_status       text CHECK (last_status IN ('success', 'failed')),
	last_error        text,
	run_count         bigint NOT NULL DEFAULT 0,
	fail_count        bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE prepaid.job IS 'scheduled jobs; change schedule_interval or enabled freely';

INSERT INTO prepaid.job (job_name, command, schedule_interval) VALUES
	('settle', 'SELECT * FROM prepaid.settle()', interval '60 seconds'),
	('partitions', 'SELECT prepaid.ensure_partitions(now(), now() + interval ''3 months'')',
	 interval '1 day');

CREATE FUNCTION prepaid._scheduler_wake(pid integer) RETURNS boolean
	AS 'MODULE_PATHNAME', 'prepaid_scheduler_wake' LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION prepaid._scheduler_wake(integer) FROM PUBLIC;

-- The pid of this database's scheduler, or NULL when none runs.
CREATE FUNCTION prepaid.scheduler_pid() RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT pid FROM pg_stat_activity
	 WHERE backend_type = 'pg_prepaid scheduler' AND datname = current_database()
	 ORDER BY backend_start DESC LIMIT 1
$$;

-- Makes a job due now and wakes the scheduler when this transaction commits.
-- Returns false when no scheduler runs (the job then runs at the next start,
-- or by hand: EXECUTE its command).
CREATE FUNCTION prepaid.job_run_now(p_job_name text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_pid integer;
BEGIN
	UPDATE prepaid.job SET next_run = now() WHERE job_name = p_job_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job "%" does not exist', p_job_name USING ERRCODE = 'no_data_found';
	END IF;
	v_pid := prepaid.scheduler_pid();
	RETURN v_pid IS NOT NULL AND prepaid._scheduler_wake(v_pid);
END
$$;

-- Stops this database's scheduler; the postmaster starts it again within
-- seconds. Returns false when none was running.
CREATE FUNCTION prepaid.scheduler_restart() RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT coalesce(pg_terminate_backend(prepaid.scheduler_pid()), false)
$$;

-- A changed interval takes effect from the last run, not after the old one.
CREATE FUNCTION prepaid._job_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.schedule_interval <> OLD.schedule_interval AND NEW.next_run = OLD.next_run THEN
		NEW.next_run := least(OLD.next_run, coalesce(OLD.last_finish, now()) + NEW.schedule_interval);
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER job_interval BEFORE UPDATE ON prepaid.job
	FOR EACH ROW EXECUTE FUNCTION prepaid._job_before_update();

-- A change to the jobs (by a DBA, or by new readings making settle due)
-- wakes the scheduler at commit so a new or re-timed job is seen at once;
-- the scheduler's own updates do not, nor do statements that changed no row.
CREATE FUNCTION prepaid._job_changed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_pid integer;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM changed_rows) THEN
		RETURN NULL;
	END IF;
	v_pid := prepaid.scheduler_pid();
	IF v_pid IS NOT NULL AND v_pid <> pg_backend_pid() THEN
		PERFORM prepaid._scheduler_wake(v_pid);
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER job_inserted AFTER INSERT ON prepaid.job REFERENCING NEW TABLE AS changed_rows
	FOR EACH STATEMENT EXECUTE FUNCTION prepaid._job_changed();
CREATE TRIGGER job_updated AFTER UPDATE ON prepaid.job REFERENCING NEW TABLE AS changed_rows
	FOR EACH STATEMENT EXECUTE FUNCTION prepaid._job_changed();

-- New readings make the settle job due (event-driven settlement, principle
-- 3): the first batch after a settle run moves the job's next_run to now
-- (at most once a second after the last run, so a steady stream of small
-- batches does not settle back to back), and the job_changed trigger wakes
-- the scheduler when the batch commits. Later batches find the job already
-- due and change nothing, so concurrent ingest transactions do not queue on
-- the job row. SECURITY DEFINER: the ingest role may not write prepaid.job.
CREATE FUNCTION prepaid._settle_soon() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
BEGIN
	UPDATE prepaid.job
	   SET next_run = greatest(now(), coalesce(last_finish, now()) + interval '1 second')
	 WHERE job_name = 'settle' AND enabled
	   AND next_run > greatest(now(), coalesce(last_finish, now()) + interval '1 second');
	RETURN NULL;
END
$$;
CREATE TRIGGER reading_settle_soon AFTER INSERT ON prepaid.reading
	FOR EACH STATEMENT EXECUTE FUNCTION prepaid._settle_soon();
