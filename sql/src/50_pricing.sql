-- C functions for pricing and settlement (extension/tou_split.c,
-- extension/settle.c), and the triggers that keep compiled tariff calendars
-- in step with the tariff tables.

CREATE FUNCTION prepaid._tariff_invalidate() RETURNS void
	AS 'MODULE_PATHNAME', 'prepaid_tariff_invalidate' LANGUAGE C VOLATILE;

CREATE FUNCTION prepaid._tariff_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM prepaid._tariff_invalidate();
	RETURN NULL;
END
$$;
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['tariff', 'tariff_version', 'tariff_season', 'tariff_day_type',
							 'tariff_holiday', 'tariff_slot', 'tariff_price'] LOOP
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prepaid.%I '
					   'FOR EACH STATEMENT EXECUTE FUNCTION prepaid._tariff_changed()',
					   t || '_changed', t);
	END LOOP;
END
$$;

-- value * 10^-scale, the way the C code makes its numerics (for the tests)
CREATE FUNCTION prepaid._fixed_numeric(value bigint, scale integer) RETURNS numeric
	AS 'MODULE_PATHNAME', 'prepaid_fixed_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION prepaid.tou_split(tariff_id bigint, t_from timestamptz, t_to timestamptz,
								  kwh numeric)
RETURNS TABLE (period text, kwh numeric)
	AS 'MODULE_PATHNAME', 'prepaid_tou_split'
	LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 3;
COMMENT ON FUNCTION prepaid.tou_split(bigint, timestamptz, timestamptz, numeric) IS
	'split energy over an interval by time spent in each TOU period; parts sum exactly to kwh';

CREATE FUNCTION prepaid.tou_price(tariff_id bigint, t timestamptz, period text)
RETURNS numeric
	AS 'MODULE_PATHNAME', 'prepaid_tou_price'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION prepaid.tou_price(bigint, timestamptz, text) IS
	'price (yuan/kWh) of a period at an instant, under the tariff version and season in force';

CREATE FUNCTION prepaid.settle(max_meters integer DEFAULT NULL, batch_size integer DEFAULT NULL,
							   workers integer DEFAULT NULL, OUT meters bigint, OUT readings bigint, OUT entries bigint,
							   OUT kwh numeric, OUT amount numeric, OUT quarantined bigint)
	AS 'MODULE_PATHNAME', 'prepaid_settle'
	LANGUAGE C VOLATILE SET jit = off;
COMMENT ON FUNCTION prepaid.settle(integer, integer, integer) IS
	'price and debit every prepaid meter''s new readings; safe to run twice or concurrently';

-- After a meter is replaced (or its register reset), settlement must start
-- again from the new register value: readings before `at` stay settled,
-- energy is counted from new_energy_wh at `at`.
CREATE FUNCTION prepaid.meter_rebaseline(p_meter_id bigint, p_energy_wh bigint,
										 p_at timestamptz, p_reason text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	c prepaid.settle_cursor;
BEGIN
	IF p_energy_wh IS NULL OR p_energy_wh < 0 THEN
		RAISE EXCEPTION 'new register value must be zero or more' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF coalesce(trim(p_reason), '') = '' THEN
		RAISE EXCEPTION 'a re-baseline needs a reason' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO c FROM prepaid.settle_cursor WHERE meter_id = p_meter_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'meter % does not exist', p_meter_id USING ERRCODE = 'no_data_found';
	END IF;
	IF p_at IS NULL OR p_at <= c.read_at THEN
		RAISE EXCEPTION 'the new baseline must be later than the settled reading at %', c.read_at
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE prepaid.settle_cursor SET read_at = p_at, energy_wh = p_energy_wh, rate_wh = NULL
	 WHERE property_id = c.property_id AND meter_id = p_meter_id;
	PERFORM prepaid.alarm_clear(c.property_id, p_meter_id, 'energy_backwards');
END
$$;
