-- Money operations (F11, F12): recharge, reversal, refund and deductions.
-- Each validates its arguments, then writes ledger entries; the ledger
-- trigger moves the balance and runs the supply decision in the same
-- transaction. A repeated (channel, external_id) never credits twice.

-- Checks an amount of money given as an argument: positive, at most two
-- decimal places, below a sanity bound.
CREATE FUNCTION prepaid._check_amount(p_amount numeric, p_what text DEFAULT 'amount')
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_amount IS NULL THEN
		RAISE EXCEPTION '% must not be null', p_what USING ERRCODE = 'null_value_not_allowed';
	ELSIF p_amount <= 0 THEN
		RAISE EXCEPTION '% must be positive', p_what
			USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Got %s.', p_amount);
	ELSIF p_amount <> round(p_amount, 2) THEN
		RAISE EXCEPTION '% has more than two decimal places', p_what
			USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Got %s.', p_amount),
				  HINT = 'Amounts are in yuan with at most two decimals (fen).';
	ELSIF p_amount > 1000000 THEN
		RAISE EXCEPTION '% is larger than one million yuan', p_what
			USING ERRCODE = 'numeric_value_out_of_range', DETAIL = format('Got %s.', p_amount);
	END IF;
END
$$;

-- Looks a meter up with its account, or raises no_data_found.
CREATE FUNCTION prepaid._meter_account(p_meter_id bigint,
									   OUT property_id bigint, OUT account_id bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
BEGIN
	SELECT m.property_id, m.account_id INTO property_id, account_id
	  FROM prepaid.meter m WHERE m.meter_id = p_meter_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'meter % does not exist', coalesce(p_meter_id::text, 'NULL')
			USING ERRCODE = 'no_data_found';
	END IF;
END
$$;

-- Credits a meter's account. channel: platform, wechat or alipay.
-- Returns the ledger entry id; a repeated (channel, external_id) returns the
-- first entry and credits nothing more.
CREATE FUNCTION prepaid.recharge(p_meter_id bigint, p_amount numeric, p_channel text,
								 p_external_id text, p_operator text DEFAULT NULL,
								 p_note text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	ma   record;
	v_id bigint;
	prev prepaid.ledger;
BEGIN
	IF p_channel IS NULL OR p_channel NOT IN ('platform', 'wechat', 'alipay') THEN
		RAISE EXCEPTION 'unknown recharge channel "%"', p_channel
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use platform, wechat or alipay.';
	END IF;
	IF p_external_id IS NULL OR length(p_external_id) = 0 THEN
		RAISE EXCEPTION 'external_id is required'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the payment or receipt number; it makes repeats harmless.';
	END IF;
	PERFORM prepaid._check_amount(p_amount);
	ma := prepaid._meter_account(p_meter_id);

	INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, channel,
								external_id, operator, note)
	VALUES (ma.property_id, ma.account_id, p_meter_id, 'recharge_' || p_channel, p_amount,
			p_channel, p_external_id, p_operator, p_note)
	ON CONFLICT (property_id, channel, external_id) WHERE external_id IS NOT NULL DO NOTHING
	RETURNING entry_id INTO v_id;
	IF v_id IS NOT NULL THEN
		RETURN v_id;
	END IF;

	SELECT * INTO prev FROM prepaid.ledger l
	 WHERE l.property_id = ma.property_id AND l.channel = p_channel
	   AND l.external_id = p_external_id;
	IF prev.kind <> 'recharge_' || p_channel OR prev.meter_id IS DISTINCT FROM p_meter_id
	   OR prev.amount <> p_amount THEN
		RAISE EXCEPTION 'external_id % of channel % was already used for another payment',
			p_external_id, p_channel
			USING ERRCODE = 'unique_violation',
				  DETAIL = format('Entry %s: %s of %s to meter %s.', prev.entry_id, prev.kind,
								  prev.amount, prev.meter_id);
	END IF;
	RETURN prev.entry_id;
END
$$;

-- Reverses an entry (冲正): a new entry of the opposite amount. An entry can
-- be reversed once; a reversal cannot be reversed. Returns the new entry id.
CREATE FUNCTION prepaid.reverse(p_entry_id bigint, p_reason text, p_operator text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	e    prepaid.ledger;
	v_id bigint;
BEGIN
	IF p_reason IS NULL OR length(trim(p_reason)) = 0 THEN
		RAISE EXCEPTION 'a reversal needs a reason' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO e FROM prepaid.ledger WHERE entry_id = p_entry_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'ledger entry % does not exist', p_entry_id USING ERRCODE = 'no_data_found';
	END IF;
	IF e.kind = 'reversal' THEN
		RAISE EXCEPTION 'entry % is itself a reversal', p_entry_id
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Write a new entry instead of reversing a reversal.';
	END IF;
	IF e.amount = 0 THEN
		RAISE EXCEPTION 'entry % has no amount to reverse', p_entry_id
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	BEGIN
		INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, kwh,
									reverses_entry_id, operator, note)
		VALUES (e.property_id, e.account_id, e.meter_id, 'reversal', -e.amount,
				-e.kwh, e.entry_id, p_operator, p_reason)
		RETURNING entry_id INTO v_id;
	EXCEPTION WHEN unique_violation THEN
		RAISE EXCEPTION 'entry % was already reversed', p_entry_id
			USING ERRCODE = 'unique_violation';
	END;
	RETURN v_id;
END
$$;

-- Refunds unused balance (退电) of a meter's account: the given amount, or the
-- whole positive balance when p_amount is NULL. Idempotent on
-- (channel, external_id) like recharge.
CREATE FUNCTION prepaid.refund(p_meter_id bigint, p_amount numeric, p_channel text,
							   p_external_id text, p_operator text DEFAULT NULL,
							   p_note text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	ma       record;
	v_amount numeric;
	v_bal    numeric;
	v_id     bigint;
	v_ch     text := 'refund:' || p_channel;
BEGIN
	IF p_channel IS NULL OR p_channel NOT IN ('platform', 'wechat', 'alipay') THEN
		RAISE EXCEPTION 'unknown refund channel "%"', p_channel
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use platform, wechat or alipay.';
	END IF;
	IF p_external_id IS NULL OR length(p_external_id) = 0 THEN
		RAISE EXCEPTION 'external_id is required' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	ma := prepaid._meter_account(p_meter_id);
	SELECT entry_id INTO v_id FROM prepaid.ledger
	 WHERE property_id = ma.property_id AND channel = v_ch
	   AND external_id = p_external_id;
	IF FOUND THEN
		RETURN v_id;
	END IF;
	SELECT balance INTO v_bal FROM prepaid.account
	 WHERE property_id = ma.property_id AND account_id = ma.account_id FOR UPDATE;
	v_amount := coalesce(p_amount, v_bal);
	PERFORM prepaid._check_amount(v_amount, 'refund amount');
	IF v_amount > v_bal THEN
		RAISE EXCEPTION 'refund of % exceeds the balance of %', v_amount, v_bal
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, channel,
								external_id, operator, note)
	VALUES (ma.property_id, ma.account_id, p_meter_id, 'refund', -v_amount, v_ch,
			p_external_id, p_operator, p_note)
	RETURNING entry_id INTO v_id;
	RETURN v_id;
END
$$;

-- A deduction from a meter's account: apportionment, property_fee or
-- capacity_fee, keyed by a reference (e.g. '2026-11') so the same deduction
-- for the same reference is written once. Returns the entry id.
CREATE FUNCTION prepaid.deduct(p_meter_id bigint, p_kind text, p_amount numeric,
							   p_reference text, p_operator text DEFAULT NULL,
							   p_note text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	ma   record;
	v_id bigint;
	v_ch text;
BEGIN
	IF p_kind IS NULL OR p_kind NOT IN ('apportionment', 'property_fee', 'capacity_fee') THEN
		RAISE EXCEPTION 'unknown deduction kind "%"', p_kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use apportionment, property_fee or capacity_fee.';
	END IF;
	IF p_reference IS NULL OR length(p_reference) = 0 THEN
		RAISE EXCEPTION 'a deduction needs a reference' USING ERRCODE = 'invalid_parameter_value',
			HINT = 'For example the billing month, ''2026-11''.';
	END IF;
	PERFORM prepaid._check_amount(p_amount);
	ma := prepaid._meter_account(p_meter_id);
	v_ch := 'deduct:' || p_kind;
	INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, channel,
								external_id, operator, note)
	VALUES (ma.property_id, ma.account_id, p_meter_id, p_kind, -p_amount, v_ch,
			p_meter_id || ':' || p_reference, p_operator, p_note)
	ON CONFLICT (property_id, channel, external_id) WHERE external_id IS NOT NULL DO NOTHING
	RETURNING entry_id INTO v_id;
	IF v_id IS NULL THEN
		SELECT entry_id INTO v_id FROM prepaid.ledger
		 WHERE property_id = ma.property_id AND channel = v_ch
		   AND external_id = p_meter_id || ':' || p_reference;
	END IF;
	RETURN v_id;
END
$$;

-- Apportions a shared amount (公摊) over the prepaid and post-paid meters of
-- an area in proportion to meter.apportion_share. The parts are whole fen
-- and add up exactly to the amount (largest remainder). Returns one row per
-- meter charged; running it again with the same reference charges nothing.
CREATE FUNCTION prepaid.apportion(p_area_id bigint, p_amount numeric, p_reference text,
								  p_operator text DEFAULT NULL)
RETURNS TABLE (meter_id bigint, amount numeric, entry_id bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_total_share numeric;
BEGIN
	PERFORM prepaid._check_amount(p_amount);
	IF NOT EXISTS (SELECT 1 FROM prepaid.area a WHERE a.area_id = p_area_id) THEN
		RAISE EXCEPTION 'area % does not exist', p_area_id USING ERRCODE = 'no_data_found';
	END IF;
	SELECT sum(m.apportion_share) INTO v_total_share
	  FROM prepaid.meter m WHERE m.area_id = p_area_id;
	IF coalesce(v_total_share, 0) = 0 THEN
		RAISE EXCEPTION 'area % has no meters with an apportionment share', p_area_id
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
	WITH raw AS (
		SELECT m.meter_id AS mid,
			   (p_amount * 100 * m.apportion_share / v_total_share) AS exact_fen
		  FROM prepaid.meter m
		 WHERE m.area_id = p_area_id AND m.apportion_share > 0),
	floored AS (
		SELECT mid, floor(exact_fen) AS fen, exact_fen - floor(exact_fen) AS frac FROM raw),
	ranked AS (
		SELECT mid, fen, row_number() OVER (ORDER BY frac DESC, mid) AS rn FROM floored),
	parts AS (
		SELECT mid, (fen + CASE WHEN rn <= (p_amount * 100 - (SELECT sum(fen) FROM floored))
							   THEN 1 ELSE 0 END) / 100 AS amt
		  FROM ranked)
	SELECT p.mid, p.amt,
		   prepaid.deduct(p.mid, 'apportionment', p.amt, p_reference, p_operator,
						  format('area %s apportionment of %s', p_area_id, p_amount))
	  FROM parts p
	 WHERE p.amt > 0
	 ORDER BY p.mid;
END
$$;
