-- Finance in the api schema (F12, F18): every ledger entry with its kind,
-- searchable; a printable receipt for any entry; the invoiced mark (the only
-- change an entry allows); revenue per day and month by kind and collection
-- account; and the operator's money operations at the desk (platform
-- recharge, refund, reversal), which check the caller's property first.

-- Entries are found by their global id (receipts, reversals, invoices) through
-- the ledger's primary key, (entry_id, property_id).
-- Accounts of a customer (ledger search by customer).
CREATE INDEX account_customer ON prepaid.account (property_id, customer_id);

-- Human names of the ledger kinds, for receipts.
CREATE FUNCTION prepaid._kind_label(p_kind text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE p_kind
		WHEN 'recharge_platform' THEN 'Platform recharge 平台充值'
		WHEN 'recharge_wechat' THEN 'WeChat Pay recharge 微信充值'
		WHEN 'recharge_alipay' THEN 'Alipay recharge 支付宝充值'
		WHEN 'reversal' THEN 'Reversal 冲正'
		WHEN 'refund' THEN 'Refund 退电'
		WHEN 'energy' THEN 'Energy charge 电费'
		WHEN 'apportionment' THEN 'Shared-area apportionment 公摊'
		WHEN 'property_fee' THEN 'Property fee 物业费'
		WHEN 'capacity_fee' THEN 'Capacity charge 容量费'
		ELSE p_kind END
$$;

CREATE VIEW api.ledger WITH (security_invoker = true) AS
SELECT l.property_id, l.entry_id, l.created_at,
	   (l.created_at AT TIME ZONE p.time_zone)::date AS local_date,
	   l.kind, l.amount, l.kwh, l.meter_id, m.address, m.shop_no, l.account_id,
	   a.customer_id, c.name AS customer_name, l.channel, l.external_id,
	   lc.collection_account_id, l.operator, l.note, l.reverses_entry_id,
	   l.period_from, l.period_to, l.invoiced_at IS NOT NULL AS invoiced, l.invoiced_at,
	   l.invoice_no, l.detail
  FROM prepaid.ledger l
  JOIN prepaid.property p ON p.property_id = l.property_id
  JOIN prepaid.account a ON a.property_id = l.property_id AND a.account_id = l.account_id
  LEFT JOIN prepaid.customer c ON c.property_id = a.property_id AND c.customer_id = a.customer_id
  LEFT JOIN prepaid.meter m ON m.property_id = l.property_id AND m.meter_id = l.meter_id
  LEFT JOIN prepaid.ledger_collection lc
	ON lc.property_id = l.property_id AND lc.entry_id = l.entry_id;
COMMENT ON VIEW api.ledger IS 'every ledger entry with kind, meter, customer, collection account and invoice mark';

-- Whether a collection account has a signing key, without reading it (the
-- key column is granted to no api role).
CREATE FUNCTION prepaid._has_signing_key(p_property_id bigint, p_collection_account_id bigint)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT signing_key IS NOT NULL FROM prepaid.collection_account
	 WHERE property_id = p_property_id AND collection_account_id = p_collection_account_id
$$;

CREATE VIEW api.collection_accounts WITH (security_invoker = true) AS
SELECT ca.property_id, ca.collection_account_id, ca.channel, ca.merchant_id, ca.name,
	   prepaid._has_signing_key(ca.property_id, ca.collection_account_id) AS signed
  FROM prepaid.collection_account ca;

CREATE VIEW api.revenue_daily WITH (security_invoker = true) AS
SELECT r.property_id, r.day, r.kind, r.collection_account_id, ca.channel AS collection_channel,
	   ca.name AS collection_account_name, r.entries, r.amount, r.kwh
  FROM (SELECT property_id, day, kind, collection_account_id, sum(entries)::bigint AS entries,
			   sum(amount) AS amount, sum(kwh) AS kwh
		  FROM prepaid.revenue_daily		-- the sum over the writers' slots
		 GROUP BY 1, 2, 3, 4) r
  LEFT JOIN prepaid.collection_account ca
	ON ca.property_id = r.property_id AND ca.collection_account_id = r.collection_account_id;
COMMENT ON VIEW api.revenue_daily IS
	'ledger entries, amount and kWh per local day, kind and collection account';

CREATE VIEW api.revenue_monthly WITH (security_invoker = true) AS
SELECT d.property_id, date_trunc('month', d.day)::date AS month, d.kind, d.collection_account_id,
	   d.collection_channel, d.collection_account_name, sum(d.entries)::bigint AS entries,
	   sum(d.amount) AS amount, sum(d.kwh) AS kwh
  FROM api.revenue_daily d
 GROUP BY 1, 2, 3, 4, 5, 6;

-- A printable plain-text receipt of one entry (row-level security applies:
-- another property's entry does not exist for an operator).
CREATE FUNCTION api.receipt(entry_id bigint) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	e   record;
	w   constant integer := 44;
	out text;
BEGIN
	SELECT l.*, p.name AS property_name, p.time_zone, m.address, m.shop_no,
		   c.name AS customer_name, ca.name AS collection_name, ca.merchant_id
	  INTO e
	  FROM prepaid.ledger l
	  JOIN prepaid.property p ON p.property_id = l.property_id
	  JOIN prepaid.account a ON a.property_id = l.property_id AND a.account_id = l.account_id
	  LEFT JOIN prepaid.customer c ON c.property_id = a.property_id AND c.customer_id = a.customer_id
	  LEFT JOIN prepaid.meter m ON m.property_id = l.property_id AND m.meter_id = l.meter_id
	  LEFT JOIN prepaid.ledger_collection lc
		ON lc.property_id = l.property_id AND lc.entry_id = l.entry_id
	  LEFT JOIN prepaid.collection_account ca
		ON ca.property_id = lc.property_id AND ca.collection_account_id = lc.collection_account_id
	 WHERE l.entry_id = receipt.entry_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'ledger entry % does not exist', receipt.entry_id
			USING ERRCODE = 'no_data_found';
	END IF;
	out := repeat('=', w) || E'\n'
		|| e.property_name || E'\n'
		|| 'Electricity receipt 电费收据' || E'\n'
		|| repeat('-', w) || E'\n'
		|| rpad('Receipt no', 14) || format('%s-%s', e.property_id, e.entry_id) || E'\n'
		|| rpad('Date', 14) || to_char(e.created_at AT TIME ZONE e.time_zone, 'YYYY-MM-DD HH24:MI:SS')
		|| ' ' || e.time_zone || E'\n'
		|| rpad('Customer', 14) || coalesce(e.customer_name, '') || E'\n'
		|| rpad('Account', 14) || e.account_id || E'\n'
		|| CASE WHEN e.meter_id IS NULL THEN ''
				ELSE rpad('Meter', 14) || e.address
					 || coalesce('  shop ' || e.shop_no, '') || E'\n' END
		|| rpad('Type', 14) || prepaid._kind_label(e.kind) || E'\n'
		|| CASE WHEN e.kwh IS NULL THEN ''
				ELSE rpad('Energy', 14) || e.kwh || ' kWh' || E'\n' END
		|| CASE WHEN e.period_from IS NULL THEN ''
				ELSE rpad('Period', 14)
					 || to_char(e.period_from AT TIME ZONE e.time_zone, 'YYYY-MM-DD HH24:MI') || ' - '
					 || to_char(e.period_to AT TIME ZONE e.time_zone, 'YYYY-MM-DD HH24:MI') || E'\n' END
		|| rpad('Amount', 14) || 'CNY ' || e.amount || E'\n'
		|| CASE WHEN e.collection_name IS NULL THEN ''
				ELSE rpad('Paid to', 14) || e.collection_name || ' (' || e.merchant_id || ')' || E'\n' END
		|| CASE WHEN e.external_id IS NULL THEN ''
				ELSE rpad('Reference', 14) || e.external_id || E'\n' END
		|| CASE WHEN e.reverses_entry_id IS NULL THEN ''
				ELSE rpad('Reverses', 14) || format('%s-%s', e.property_id, e.reverses_entry_id) || E'\n' END
		|| CASE WHEN e.operator IS NULL THEN '' ELSE rpad('Operator', 14) || e.operator || E'\n' END
		|| CASE WHEN e.note IS NULL THEN '' ELSE rpad('Note', 14) || e.note || E'\n' END
		|| rpad('Invoiced', 14)
		|| CASE WHEN e.invoiced_at IS NULL THEN 'no'
				ELSE 'yes, ' || e.invoice_no || ' on '
					 || to_char(e.invoiced_at AT TIME ZONE e.time_zone, 'YYYY-MM-DD') END || E'\n'
		|| repeat('=', w) || E'\n';
	RETURN out;
END
$$;

-- Marks entries as invoiced with an invoice number, all or none. Returns
-- the entries marked.
CREATE FUNCTION api.ledger_mark_invoiced(entry_ids bigint[], invoice_no text)
RETURNS TABLE (entry_id bigint, invoiced_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_ids   bigint[] := ARRAY(SELECT DISTINCT x FROM unnest(ledger_mark_invoiced.entry_ids) x
							   WHERE x IS NOT NULL);
	v_no    text := nullif(trim(ledger_mark_invoiced.invoice_no), '');
	v_found bigint[];
	v_done  record;
BEGIN
	IF cardinality(v_ids) = 0 OR v_no IS NULL THEN
		RAISE EXCEPTION 'entry ids and an invoice number are required'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example {"entry_ids": [17, 18], "invoice_no": "INV-2026-0042"}.';
	END IF;
	-- lock the caller's entries; anything else does not exist for this caller
	SELECT array_agg(l.entry_id) INTO v_found
	  FROM (SELECT l.entry_id, l.property_id FROM prepaid.ledger l
			 WHERE l.entry_id = ANY (v_ids) FOR UPDATE) l
	 WHERE prepaid._may_act(l.property_id);
	IF coalesce(cardinality(v_found), 0) < cardinality(v_ids) THEN
		RAISE EXCEPTION 'ledger entry % does not exist',
			(SELECT min(x) FROM unnest(v_ids) x WHERE NOT x = ANY (coalesce(v_found, '{}')))
			USING ERRCODE = 'no_data_found';
	END IF;
	SELECT l.entry_id, l.invoice_no INTO v_done FROM prepaid.ledger l
	 WHERE l.entry_id = ANY (v_ids) AND l.invoiced_at IS NOT NULL ORDER BY l.entry_id LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'entry % is already invoiced', v_done.entry_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('Invoice number %s.', v_done.invoice_no),
				  HINT = 'An entry is invoiced once; nothing was marked.';
	END IF;
	RETURN QUERY
	UPDATE prepaid.ledger l SET invoiced_at = now(), invoice_no = v_no
	 WHERE l.entry_id = ANY (v_ids)
	RETURNING l.entry_id, l.invoiced_at;
END
$$;

-- The property of a meter, or no_data_found when it does not exist or the
-- caller may not act on it (the same answer, so nothing leaks).
CREATE FUNCTION prepaid._meter_for_caller(p_meter_id bigint) RETURNS prepaid.meter
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	m prepaid.meter;
BEGIN
	SELECT * INTO m FROM prepaid.meter WHERE meter_id = p_meter_id;
	IF NOT FOUND OR NOT prepaid._may_act(m.property_id) THEN
		RAISE EXCEPTION 'meter % does not exist', coalesce(p_meter_id::text, 'NULL')
			USING ERRCODE = 'no_data_found';
	END IF;
	RETURN m;
END
$$;

-- A platform (cash) recharge at the desk. Returns the entry and the new balance.
CREATE FUNCTION api.recharge(meter_id bigint, amount numeric, external_id text,
							 note text DEFAULT NULL)
RETURNS TABLE (entry_id bigint, balance numeric)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	m    prepaid.meter := prepaid._meter_for_caller(recharge.meter_id);
	v_id bigint;
BEGIN
	v_id := prepaid.recharge(m.meter_id, recharge.amount, 'platform', recharge.external_id,
							 prepaid._caller_name(), recharge.note);
	RETURN QUERY SELECT v_id, a.balance FROM prepaid.account a
				  WHERE a.property_id = m.property_id AND a.account_id = m.account_id;
END
$$;

-- Refund (退电) through the platform: amount, or the whole positive balance when NULL.
CREATE FUNCTION api.refund(meter_id bigint, amount numeric, external_id text,
						   note text DEFAULT NULL)
RETURNS TABLE (entry_id bigint, balance numeric)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	m    prepaid.meter := prepaid._meter_for_caller(refund.meter_id);
	v_id bigint;
BEGIN
	v_id := prepaid.refund(m.meter_id, refund.amount, 'platform', refund.external_id,
						   prepaid._caller_name(), refund.note);
	RETURN QUERY SELECT v_id, a.balance FROM prepaid.account a
				  WHERE a.property_id = m.property_id AND a.account_id = m.account_id;
END
$$;

-- Reversal (冲正) of an entry with a reason.
CREATE FUNCTION api.reverse(entry_id bigint, reason text)
RETURNS TABLE (reversal_id bigint, balance numeric)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	e    prepaid.ledger;
	v_id bigint;
BEGIN
	SELECT * INTO e FROM prepaid.ledger l WHERE l.entry_id = reverse.entry_id;
	IF NOT FOUND OR NOT prepaid._may_act(e.property_id) THEN
		RAISE EXCEPTION 'ledger entry % does not exist', reverse.entry_id
			USING ERRCODE = 'no_data_found';
	END IF;
	v_id := prepaid.reverse(e.entry_id, reverse.reason, prepaid._caller_name());
	RETURN QUERY SELECT v_id, a.balance FROM prepaid.account a
				  WHERE a.property_id = e.property_id AND a.account_id = e.account_id;
END
$$;

-- Sets a customer's capacity-charge rule from a month on (replacing a rule
-- of the same month). Returns the rule.
CREATE FUNCTION api.capacity_rule_set(customer_id bigint, basis text, price numeric,
									  valid_from date, installed_kva numeric DEFAULT NULL,
									  contract_kw numeric DEFAULT NULL, note text DEFAULT NULL)
RETURNS SETOF prepaid.capacity_rule
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_property bigint;
BEGIN
	SELECT c.property_id INTO v_property FROM prepaid.customer c
	 WHERE c.customer_id = capacity_rule_set.customer_id;
	IF NOT FOUND OR NOT prepaid._may_act(v_property) THEN
		RAISE EXCEPTION 'customer % does not exist', capacity_rule_set.customer_id
			USING ERRCODE = 'no_data_found';
	END IF;
	IF capacity_rule_set.basis IS NULL
	   OR capacity_rule_set.basis NOT IN ('max_demand', 'contract_demand', 'transformer') THEN
		RAISE EXCEPTION 'unknown capacity basis "%"', capacity_rule_set.basis
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use max_demand, contract_demand or transformer.';
	END IF;
	IF capacity_rule_set.price IS NULL OR capacity_rule_set.price < 0 THEN
		RAISE EXCEPTION 'price must be zero or more' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
	INSERT INTO prepaid.capacity_rule AS r (property_id, customer_id, valid_from, basis, price,
										   installed_kva, contract_kw, note)
	VALUES (v_property, capacity_rule_set.customer_id, capacity_rule_set.valid_from,
			capacity_rule_set.basis, capacity_rule_set.price, capacity_rule_set.installed_kva,
			capacity_rule_set.contract_kw, capacity_rule_set.note)
	ON CONFLICT (property_id, customer_id, valid_from) DO UPDATE
	   SET basis = excluded.basis, price = excluded.price, installed_kva = excluded.installed_kva,
		   contract_kw = excluded.contract_kw, note = excluded.note, created_at = now()
	RETURNING r.*;
END
$$;

CREATE VIEW api.capacity_rules WITH (security_invoker = true) AS
SELECT r.property_id, r.customer_id, c.name AS customer_name, r.valid_from, r.basis, r.price,
	   r.installed_kva, r.contract_kw, r.note, r.created_at
  FROM prepaid.capacity_rule r
  JOIN prepaid.customer c ON c.property_id = r.property_id AND c.customer_id = r.customer_id;
