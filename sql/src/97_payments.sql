-- Online payments (F13). Each property company has collection (merchant)
-- accounts per channel; each money account is bound to one
-- (account.collection_account_id). A payment order for a meter is routed to
-- the account its money account is bound to and gets an order number, which
-- the app hands to WeChat Pay / Alipay. The channel's notification comes
-- back through api.payment_notify: it is verified (HMAC-SHA256 signature
-- with the collection account's signing key, merchant, amount) and credits
-- the meter once through prepaid.recharge(), keyed by (channel, order
-- number); the ledger trigger then restores power in the same transaction.
-- Every notification is logged with what was done and why, and a repeated,
-- reordered or forged one changes nothing more than the first good one did.
--
-- The signature: the notification is a JSON object; take every top-level
-- field except "sign" whose value is not null or "", as key=value with the
-- value's text (strings unquoted), sort by key, join with "&", and compute
-- lower-case hex HMAC-SHA256 with the signing key. Example in docs/api.md.

CREATE SEQUENCE prepaid.payment_order_seq;

CREATE TABLE prepaid.payment_order (
	property_id           bigint NOT NULL,
	order_no              text NOT NULL UNIQUE,
	meter_id              bigint NOT NULL,
	account_id            bigint NOT NULL,
	collection_account_id bigint NOT NULL,
	channel               text NOT NULL,
	merchant_id           text NOT NULL,
	amount                numeric(12,2) NOT NULL CHECK (amount > 0),
	status                text NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'paid')),
	transaction_id        text,
	entry_id              bigint,
	created_by            text,
	created_at            timestamptz NOT NULL DEFAULT now(),
	paid_at               timestamptz,
	PRIMARY KEY (property_id, order_no),
	FOREIGN KEY (property_id, meter_id) REFERENCES prepaid.meter (property_id, meter_id),
	FOREIGN KEY (property_id, collection_account_id)
		REFERENCES prepaid.collection_account (property_id, collection_account_id),
	CHECK ((status = 'paid') = (entry_id IS NOT NULL))
);
COMMENT ON TABLE prepaid.payment_order IS
	'payment orders, routed to the collection account the meter''s money account is bound to';

CREATE TABLE prepaid.payment_notification (
	notification_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	property_id     bigint,              -- NULL when the order is unknown
	received_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
	order_no        text,
	merchant_id     text,
	transaction_id  text,
	amount          text,
	payload         jsonb,
	status          text NOT NULL CHECK (status IN ('credited', 'duplicate', 'rejected')),
	reason          text NOT NULL,
	detail          text,
	entry_id        bigint
);
CREATE INDEX ON prepaid.payment_notification (property_id, order_no);
COMMENT ON TABLE prepaid.payment_notification IS
	'every payment notification received, with the outcome: credited, duplicate or rejected (reason)';

-- Lower-case hex HMAC-SHA256 of a text with a key, by pgcrypto, looked up
-- where it is installed when called (pgcrypto may be relocated).
CREATE FUNCTION prepaid._hmac_sha256_hex(p_data text, p_key text) RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_schema name;
	v_hex    text;
BEGIN
	SELECT n.nspname INTO v_schema
	  FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
	 WHERE e.extname = 'pgcrypto';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pgcrypto is not installed' USING ERRCODE = 'undefined_function',
			HINT = 'CREATE EXTENSION pgcrypto (CREATE EXTENSION pg_prepaid CASCADE does it).';
	END IF;
	EXECUTE format('SELECT pg_catalog.encode(%I.hmac(pg_catalog.convert_to($1, ''UTF8''), '
				   'pg_catalog.convert_to($2, ''UTF8''), ''sha256''), ''hex'')', v_schema)
	   INTO v_hex USING p_data, p_key;
	RETURN v_hex;
END
$$;

-- The string a notification's signature covers (see the header).
CREATE FUNCTION prepaid.payment_sign_string(p_notification jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT coalesce(string_agg(f.key || '=' || (f.value #>> '{}'), '&' ORDER BY f.key COLLATE "C"), '')
	  FROM jsonb_each(p_notification) f
	 WHERE f.key <> 'sign' AND jsonb_typeof(f.value) <> 'null' AND f.value <> '""'
$$;
COMMENT ON FUNCTION prepaid.payment_sign_string(jsonb) IS
	'the canonical key=value&... string that a payment notification''s HMAC-SHA256 signature covers';

-- Signs a notification with a key: the sign field a channel would add.
CREATE FUNCTION prepaid.payment_sign(p_notification jsonb, p_key text) RETURNS text
LANGUAGE sql STABLE STRICT AS $$
	SELECT prepaid._hmac_sha256_hex(prepaid.payment_sign_string(p_notification), p_key)
$$;
COMMENT ON FUNCTION prepaid.payment_sign(jsonb, text) IS
	'lower-case hex HMAC-SHA256 of a notification''s sign string (what the channel puts in "sign")';

-- Creates a payment order for a meter, routed to the collection account its
-- money account is bound to.
CREATE FUNCTION prepaid.payment_order_create(p_meter_id bigint, p_amount numeric,
											 p_created_by text DEFAULT NULL)
RETURNS prepaid.payment_order LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	ma  record;
	ca  prepaid.collection_account;
	o   prepaid.payment_order;
BEGIN
	PERFORM prepaid._check_amount(p_amount);
	ma := prepaid._meter_account(p_meter_id);
	SELECT c.* INTO ca
	  FROM prepaid.account a
	  JOIN prepaid.collection_account c
		ON c.property_id = a.property_id AND c.collection_account_id = a.collection_account_id
	 WHERE a.property_id = ma.property_id AND a.account_id = ma.account_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'meter % is not bound to a collection account', p_meter_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('Account %s has no collection account.', ma.account_id),
				  HINT = 'Bind the account with api.bind_collection_account().';
	END IF;
	INSERT INTO prepaid.payment_order (property_id, order_no, meter_id, account_id,
									   collection_account_id, channel, merchant_id, amount,
									   created_by)
	VALUES (ma.property_id,
			'PO' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')
				 || lpad(nextval('prepaid.payment_order_seq')::text, 10, '0'),
			p_meter_id, ma.account_id, ca.collection_account_id, ca.channel, ca.merchant_id,
			p_amount, p_created_by)
	RETURNING * INTO o;
	RETURN o;
END
$$;

-- Verifies a payment notification and credits its order once. Never raises
-- for a bad notification: it is logged and the outcome returned.
CREATE FUNCTION prepaid.payment_notify(p_notification jsonb,
									   OUT status text, OUT reason text, OUT order_no text,
									   OUT entry_id bigint, OUT notification_id bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	n        jsonb := p_notification;
	o        prepaid.payment_order;
	ca       prepaid.collection_account;
	v_amount numeric;
	v_detail text;
BEGIN
	order_no := n ->> 'order_no';
	status := 'rejected';
	IF n IS NULL OR jsonb_typeof(n) <> 'object' THEN
		reason := 'malformed'; v_detail := 'the notification is not a JSON object';
	ELSIF coalesce(n ->> 'order_no', '') = '' OR coalesce(n ->> 'transaction_id', '') = ''
		  OR coalesce(n ->> 'amount', '') = '' OR coalesce(n ->> 'sign', '') = '' THEN
		reason := 'malformed';
		v_detail := 'order_no, transaction_id, amount and sign are required';
	ELSE
		SELECT * INTO o FROM prepaid.payment_order po WHERE po.order_no = n ->> 'order_no'
		   FOR UPDATE;
		IF NOT FOUND THEN
			reason := 'unknown_order';
		ELSE
			SELECT * INTO ca FROM prepaid.collection_account c
			 WHERE c.property_id = o.property_id
			   AND c.collection_account_id = o.collection_account_id;
			BEGIN
				v_amount := (n ->> 'amount')::numeric;
			EXCEPTION WHEN invalid_text_representation THEN
				v_amount := NULL;
			END;
			IF ca.signing_key IS NULL THEN
				reason := 'no_signing_key';
				v_detail := format('collection account %s has no signing key', ca.collection_account_id);
			ELSIF lower(n ->> 'sign') <> prepaid.payment_sign(n, ca.signing_key) THEN
				reason := 'bad_signature';
			ELSIF (n ->> 'merchant_id') IS DISTINCT FROM ca.merchant_id THEN
				reason := 'merchant_mismatch';
				v_detail := format('merchant %s, the order''s account is %s', n ->> 'merchant_id',
								   ca.merchant_id);
			ELSIF v_amount IS DISTINCT FROM o.amount THEN
				reason := 'amount_mismatch';
				v_detail := format('amount %s, the order is for %s', n ->> 'amount', o.amount);
			ELSIF coalesce(upper(n ->> 'status'), 'SUCCESS') <> 'SUCCESS' THEN
				reason := 'not_successful';
				v_detail := format('status %s', n ->> 'status');
			ELSIF o.status = 'paid' AND o.transaction_id = n ->> 'transaction_id' THEN
				status := 'duplicate'; reason := 'already_credited'; entry_id := o.entry_id;
			ELSIF o.status = 'paid' THEN
				reason := 'order_already_paid';
				v_detail := format('paid by transaction %s; this one needs a refund by the channel',
								   o.transaction_id);
			ELSE
				entry_id := prepaid.recharge(o.meter_id, o.amount, o.channel, o.order_no,
											 'payment:' || o.channel,
											 'transaction ' || (n ->> 'transaction_id'));
				UPDATE prepaid.payment_order po
				   SET status = 'paid', transaction_id = n ->> 'transaction_id',
					   entry_id = payment_notify.entry_id, paid_at = now()
				 WHERE po.property_id = o.property_id AND po.order_no = o.order_no;
				status := 'credited'; reason := 'ok';
			END IF;
		END IF;
	END IF;
	INSERT INTO prepaid.payment_notification (property_id, order_no, merchant_id, transaction_id,
											  amount, payload, status, reason, detail, entry_id)
	VALUES (o.property_id, left(n ->> 'order_no', 200), left(n ->> 'merchant_id', 200),
			left(n ->> 'transaction_id', 200), left(n ->> 'amount', 100), n, status, reason,
			v_detail, entry_id)
	RETURNING payment_notification.notification_id INTO notification_id;
END
$$;

-- api: orders and notifications

CREATE FUNCTION api.payment_order_create(meter_id bigint, amount numeric)
RETURNS SETOF prepaid.payment_order
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	m prepaid.meter := prepaid._meter_for_caller(payment_order_create.meter_id);
BEGIN
	RETURN NEXT prepaid.payment_order_create(m.meter_id, payment_order_create.amount,
											 prepaid._caller_name());
END
$$;

-- The channel's callback: the whole request body is the notification.
CREATE FUNCTION api.payment_notify(jsonb)
RETURNS TABLE (status text, reason text, order_no text, entry_id bigint, notification_id bigint)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT * FROM prepaid.payment_notify($1)
$$;

-- Binds a money account to one of its property's collection accounts.
CREATE FUNCTION api.bind_collection_account(account_id bigint, collection_account_id bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, prepaid, pg_temp AS $$
#variable_conflict use_column
DECLARE
	v_property bigint;
BEGIN
	SELECT a.property_id INTO v_property FROM prepaid.account a
	 WHERE a.account_id = bind_collection_account.account_id;
	IF NOT FOUND OR NOT prepaid._may_act(v_property) THEN
		RAISE EXCEPTION 'account % does not exist', bind_collection_account.account_id
			USING ERRCODE = 'no_data_found';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM prepaid.collection_account c
					WHERE c.property_id = v_property
					  AND c.collection_account_id = bind_collection_account.collection_account_id) THEN
		RAISE EXCEPTION 'collection account % does not exist',
			bind_collection_account.collection_account_id
			USING ERRCODE = 'no_data_found',
				  HINT = 'A money account is bound to a collection account of its own property.';
	END IF;
	UPDATE prepaid.account a SET collection_account_id = bind_collection_account.collection_account_id
	 WHERE a.property_id = v_property AND a.account_id = bind_collection_account.account_id;
	RETURN true;
END
$$;

CREATE VIEW api.payment_orders WITH (security_invoker = true) AS
SELECT o.property_id, o.order_no, o.meter_id, o.account_id, o.collection_account_id, o.channel,
	   o.merchant_id, o.amount, o.status, o.transaction_id, o.entry_id, o.created_by,
	   o.created_at, o.paid_at
  FROM prepaid.payment_order o;

CREATE VIEW api.payment_notifications WITH (security_invoker = true) AS
SELECT n.property_id, n.notification_id, n.received_at, n.order_no, n.merchant_id,
	   n.transaction_id, n.amount, n.status, n.reason, n.detail, n.entry_id
  FROM prepaid.payment_notification n;
