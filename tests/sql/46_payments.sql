-- Payments (F13): orders routed to the meter's collection account; signed
-- notifications verified and credited once; forged, mismatched, replayed
-- and reordered ones change nothing more and say why; every one is logged.
BEGIN;
SELECT plan(25);
\ir fixtures/api_park.sql

-- HMAC-SHA256 through pgcrypto, RFC 4231 test case 2
SELECT is(prepaid._hmac_sha256_hex('what do ya want for nothing?', 'Jefe'),
	'5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843', 'HMAC-SHA256 (RFC 4231 case 2)');
SELECT is(prepaid.payment_sign_string('{"sign": "x", "order_no": "PO1", "amount": "20.00", "merchant_id": "WX",
	"transaction_id": "T", "attach": "", "note": null, "count": 3}'),
	'amount=20.00&count=3&merchant_id=WX&order_no=PO1&transaction_id=T',
	'the signed string: fields but sign, empty and null, as key=value sorted by key, joined by &');

-- 50201 (West Park) is cut off at -5.00; its account is bound to West WeChat Pay (WX-WEST)
SELECT order_no AS o1, channel AS o1_channel, merchant_id AS o1_merchant
  FROM api.payment_order_create(50201, 20.00) \gset
SELECT results_eq(format('SELECT channel, merchant_id, amount, status, collection_account_id FROM prepaid.payment_order WHERE order_no = %L', :'o1'),
	$$VALUES ('wechat'::text, 'WX-WEST'::text, 20.00::numeric, 'created'::text, 5021::bigint)$$,
	'an order is routed to the collection account the meter''s account is bound to');
UPDATE prepaid.account SET collection_account_id = NULL WHERE account_id = 5006;
SELECT throws_ok($$SELECT * FROM api.payment_order_create(50106, 10.00)$$, '55000',
	'meter 50106 is not bound to a collection account', 'no order without a collection account');
SELECT throws_ok($$SELECT * FROM api.payment_order_create(50201, 10.001)$$, '22023', NULL,
	'no order for a fraction of a fen');
SELECT throws_ok($$SELECT * FROM api.payment_order_create(50201, 0)$$, '22023', NULL, 'nor for nothing');

-- a notification as the channel would send it, signed with West's key
SELECT jsonb_build_object('order_no', :'o1', 'merchant_id', 'WX-WEST', 'transaction_id', 'wx-T1',
						  'amount', '20.00', 'status', 'SUCCESS', 'paid_at', '2026-01-01T10:00:00+08:00') AS n1 \gset
CREATE TEMP TABLE notify_result (step text, status text, reason text, entry_id bigint) ON COMMIT DROP;
CREATE FUNCTION pg_temp.send(p_step text, p_doc jsonb, p_key text) RETURNS void LANGUAGE sql AS $$
	INSERT INTO notify_result SELECT p_step, r.status, r.reason, r.entry_id
	  FROM api.payment_notify(p_doc || jsonb_build_object('sign', prepaid.payment_sign(p_doc, p_key))) r
$$;

-- forged and mismatched notifications first: nothing is credited
SELECT pg_temp.send('forged', :'n1', 'not-the-key');
SELECT pg_temp.send('other key', :'n1', 'k-east-wx');
SELECT pg_temp.send('wrong merchant', :'n1'::jsonb || '{"merchant_id": "WX-EAST"}', 'k-west-wx');
SELECT pg_temp.send('wrong amount', :'n1'::jsonb || '{"amount": "200.00"}', 'k-west-wx');
-- signed, then the amount changed on the way
INSERT INTO notify_result SELECT 'tampered', r.status, r.reason, r.entry_id
  FROM api.payment_notify(:'n1'::jsonb || jsonb_build_object('sign', prepaid.payment_sign(:'n1', 'k-west-wx'))
						   || '{"amount": "2000.00"}') r;
SELECT pg_temp.send('not paid', :'n1'::jsonb || '{"status": "FAIL"}', 'k-west-wx');
SELECT pg_temp.send('unknown order', :'n1'::jsonb || '{"order_no": "PO-NOPE"}', 'k-west-wx');
SELECT pg_temp.send('malformed', :'n1'::jsonb - 'transaction_id', 'k-west-wx');
SELECT results_eq($$SELECT step, status, reason FROM notify_result ORDER BY ctid$$,
	$$VALUES ('forged'::text, 'rejected'::text, 'bad_signature'::text),
			 ('other key', 'rejected', 'bad_signature'),
			 ('wrong merchant', 'rejected', 'merchant_mismatch'),
			 ('wrong amount', 'rejected', 'amount_mismatch'),
			 ('tampered', 'rejected', 'bad_signature'),
			 ('not paid', 'rejected', 'not_successful'),
			 ('unknown order', 'rejected', 'unknown_order'),
			 ('malformed', 'rejected', 'malformed')$$,
	'forged, mismatched, unpaid, unknown and malformed notifications are rejected with the reason');
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 5003), -5.00::numeric, 'nothing was credited');
SELECT is((SELECT status FROM prepaid.payment_order WHERE order_no = :'o1'), 'created', 'the order is still open');
SELECT is((SELECT relay_desired FROM prepaid.meter WHERE meter_id = 50201), 'open', 'the meter is still cut off');

-- the genuine notification credits once and restores power in the same transaction
SELECT pg_temp.send('genuine', :'n1', 'k-west-wx');
SELECT results_eq($$SELECT status, reason FROM notify_result WHERE step = 'genuine'$$,
	$$VALUES ('credited'::text, 'ok'::text)$$, 'the genuine notification is credited');
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 5003), 15.00::numeric, '-5.00 + 20.00 = 15.00');
SELECT results_eq(
	format($$SELECT kind, amount, channel, external_id, operator FROM prepaid.ledger
			  WHERE entry_id = (SELECT entry_id FROM notify_result WHERE step = 'genuine')$$),
	format($$VALUES ('recharge_wechat'::text, 20.00::numeric, 'wechat'::text, %L::text, 'payment:wechat'::text)$$, :'o1'),
	'through prepaid.recharge, keyed by (channel, order number)');
SELECT results_eq(
	$$SELECT relay_desired, (SELECT kind FROM prepaid.command c WHERE c.meter_id = 50201 AND c.status = 'pending'
							  AND c.kind LIKE 'relay%') FROM prepaid.meter WHERE meter_id = 50201$$,
	$$VALUES ('closed'::text, 'relay_close'::text)$$,
	'the credit restored supply: relay_close queued, the pending relay_open superseded');
SELECT results_eq(format('SELECT status, transaction_id FROM prepaid.payment_order WHERE order_no = %L', :'o1'),
	$$VALUES ('paid'::text, 'wx-T1'::text)$$, 'the order is paid by that transaction');
SELECT is((SELECT collection_account_id FROM api.ledger
			WHERE entry_id = (SELECT entry_id FROM notify_result WHERE step = 'genuine')), 5021::bigint,
	'revenue goes to the order''s collection account');

-- replays
SELECT pg_temp.send('replay', :'n1', 'k-west-wx');
SELECT pg_temp.send('replay again', :'n1', 'k-west-wx');
SELECT pg_temp.send('second payment', :'n1'::jsonb || '{"transaction_id": "wx-T2"}', 'k-west-wx');
SELECT results_eq(
	$$SELECT step, status, reason, entry_id = (SELECT entry_id FROM notify_result WHERE step = 'genuine')
		FROM notify_result WHERE step IN ('replay', 'replay again', 'second payment') ORDER BY ctid$$,
	$$VALUES ('replay'::text, 'duplicate'::text, 'already_credited'::text, true),
			 ('replay again', 'duplicate', 'already_credited', true),
			 ('second payment', 'rejected', 'order_already_paid', NULL)$$,
	'a replay is a duplicate of the first credit; another payment of a paid order is rejected');
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 5003), 15.00::numeric, 'still 15.00');
SELECT is((SELECT count(*) FROM prepaid.ledger WHERE account_id = 5003 AND kind LIKE 'recharge%'), 1::bigint,
	'one credit in the ledger');

-- reordered: two orders of East (50104, bound to East WeChat Pay), notified B, A, B
SELECT order_no AS oa FROM api.payment_order_create(50104, 12.34) \gset
SELECT order_no AS ob FROM api.payment_order_create(50104, 7.00) \gset
SELECT pg_temp.send('B', jsonb_build_object('order_no', :'ob', 'merchant_id', 'WX-EAST', 'transaction_id', 'e-B',
											'amount', '7'), 'k-east-wx');
SELECT pg_temp.send('A', jsonb_build_object('order_no', :'oa', 'merchant_id', 'WX-EAST', 'transaction_id', 'e-A',
											'amount', '12.34'), 'k-east-wx');
SELECT pg_temp.send('B again', jsonb_build_object('order_no', :'ob', 'merchant_id', 'WX-EAST', 'transaction_id', 'e-B',
												  'amount', '7'), 'k-east-wx');
SELECT results_eq($$SELECT step, status FROM notify_result WHERE step IN ('A', 'B', 'B again') ORDER BY ctid$$,
	$$VALUES ('B'::text, 'credited'::text), ('A', 'credited'), ('B again', 'duplicate')$$,
	'out of order: each order credits once ("7" is the order''s 7.00)');
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 5005), 119.34::numeric, '100 + 12.34 + 7.00');

-- the log
SELECT results_eq(
	$$SELECT status, count(*) FROM prepaid.payment_notification GROUP BY 1 ORDER BY 1$$,
	$$VALUES ('credited'::text, 3::bigint), ('duplicate', 3), ('rejected', 9)$$,
	'every notification is logged: 3 credited, 3 duplicates, 9 rejected');
SELECT is((SELECT property_id FROM prepaid.payment_notification WHERE reason = 'unknown_order'), NULL::bigint,
	'one for an unknown order belongs to no property');

-- the channel's callback arrives as the payment role
SELECT order_no AS oc FROM api.payment_order_create(50104, 1.00) \gset
SELECT d || jsonb_build_object('sign', prepaid.payment_sign(d, 'k-east-wx')) AS nc
  FROM (SELECT jsonb_build_object('order_no', :'oc', 'merchant_id', 'WX-EAST', 'transaction_id', 'e-C',
								  'amount', '1.00') AS d) x \gset
SET LOCAL ROLE prepaid_payment;
SELECT results_eq(format('SELECT status FROM api.payment_notify(%L)', :'nc'),
	$$VALUES ('credited'::text)$$, 'the payment role delivers a notification');
SELECT throws_ok($$SELECT * FROM api.payment_order_create(50104, 1.00)$$, '42501', NULL,
	'and can do nothing else');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
