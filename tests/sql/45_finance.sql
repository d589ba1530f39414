-- Finance (F12, F18): the ledger search view, receipts, the invoiced mark,
-- revenue by day, month, kind and collection account, and the desk's money
-- operations.
BEGIN;
SELECT plan(20);
\ir fixtures/api_park.sql
SELECT set_config('request.jwt.claims', '{"role": "prepaid_admin", "sub": "alice"}', true);

-- fixture entries: cash 15.00 to 50101 at the desk (account bound to WeChat 5011, so the cash goes to
-- the property's platform account 5013), WeChat 100.00 to 50104 (bound to 5011), two energy charges
SELECT results_eq(
	format($$SELECT entry_id, kind, amount, meter_id, customer_name, collection_account_id, operator, invoiced
			  FROM api.ledger WHERE property_id = 501 AND local_date = %L ORDER BY entry_id$$, :'today'),
	format($$VALUES (%s::bigint, 'recharge_platform'::text, 15.00::numeric, 50101::bigint, 'Acme Co'::text,
					 5013::bigint, 'desk-1'::text, false),
					(%s, 'recharge_wechat', 100.00, 50104, 'Dorm 3', 5011, NULL, false),
					(%s, 'energy', -30.00, 50103, 'Dorm 3', NULL, NULL, false)$$,
		   :e_cash, :e_wx, :e_wx + 1),
	'every entry with kind, meter, customer, collection account, operator, invoice mark');
SELECT results_eq($$SELECT count(*) FROM api.ledger WHERE customer_id = 5002$$, $$VALUES (2::bigint)$$,
	'search by customer');
SELECT results_eq($$SELECT kind FROM api.ledger WHERE operator = 'desk-1'$$, $$VALUES ('recharge_platform'::text)$$,
	'search by operator');
SELECT results_eq($$SELECT meter_id FROM api.ledger WHERE kind IN ('recharge_wechat', 'recharge_alipay')$$,
	$$VALUES (50104::bigint)$$, 'search by kind');

-- receipt
SELECT is(api.receipt(:e_cash),
	format(E'============================================\n'
		   'East Park\n'
		   'Electricity receipt 电费收据\n'
		   '--------------------------------------------\n'
		   'Receipt no    501-%s\n'
		   'Date          %s %s\n'
		   'Customer      Acme Co\n'
		   'Account       5001\n'
		   'Meter         000000050101  shop A-101\n'
		   'Type          Platform recharge 平台充值\n'
		   'Amount        CNY 15.00\n'
		   'Paid to       East cash desk (CASH-EAST)\n'
		   'Reference     cash-1\n'
		   'Operator      desk-1\n'
		   'Invoiced      no\n'
		   '============================================\n',
		   :e_cash, to_char(now() AT TIME ZONE :'tz', 'YYYY-MM-DD HH24:MI:SS'), :'tz'),
	'a printable receipt');
SELECT matches(api.receipt(:e_wx + 1), E'Type          Energy charge 电费\nEnergy        40.000000 kWh\nAmount        CNY -30.00\n',
	'an energy charge''s receipt shows its kWh');
SELECT throws_ok(format('SELECT api.receipt(%s)', :e_wx + 1000), 'P0002', NULL, 'receipt of an unknown entry');

-- invoiced: once, all or none
SELECT results_eq(format('SELECT entry_id FROM api.ledger_mark_invoiced(ARRAY[%s]::bigint[], %L)', :e_cash, 'INV-0001'),
	format('VALUES (%s::bigint)', :e_cash), 'an entry is marked invoiced');
SELECT results_eq(format('SELECT invoiced, invoice_no FROM api.ledger WHERE entry_id = %s', :e_cash),
	$$VALUES (true, 'INV-0001'::text)$$, 'the ledger view shows the mark');
SELECT matches(api.receipt(:e_cash), 'Invoiced      yes, INV-0001 on ', 'and the receipt');
SELECT throws_ok(format('SELECT * FROM api.ledger_mark_invoiced(ARRAY[%s, %s]::bigint[], %L)', :e_wx, :e_cash, 'INV-0002'),
	'55000', format('entry %s is already invoiced', :e_cash), 'an entry is invoiced only once');
SELECT is((SELECT invoice_no FROM prepaid.ledger WHERE entry_id = :e_wx), NULL,
	'and the other entry of that call was not marked either');
SELECT throws_ok(format('SELECT * FROM api.ledger_mark_invoiced(ARRAY[%s]::bigint[], %L)', :e_wx, ' '),
	'22023', 'entry ids and an invoice number are required', 'an invoice number is required');
SELECT throws_ok(format('UPDATE prepaid.ledger SET amount = 1 WHERE entry_id = %s', :e_wx),
	'55000', 'ledger entries are append-only', 'nothing but the mark can change');

-- revenue today: cash 15.00 (5013), WeChat 100.00 (5011), energy -30.00 (West: -5.00)
SELECT results_eq(
	format($$SELECT property_id, kind, collection_account_id, collection_channel, entries, amount
			  FROM api.revenue_daily WHERE day = %L ORDER BY 1, 2$$, :'today'),
	$$VALUES (501::bigint, 'energy'::text, NULL::bigint, NULL::text, 1::bigint, -30.00::numeric),
			 (501, 'recharge_platform', 5013, 'platform', 1, 15.00),
			 (501, 'recharge_wechat', 5011, 'wechat', 1, 100.00),
			 (502, 'energy', NULL, NULL, 1, -5.00)$$,
	'daily revenue by kind and collection account');

-- the desk: recharge 10.00 to 50101, refund 30.00 of 50104, reverse the WeChat 100.00 of 50104
SELECT results_eq($$SELECT balance FROM api.recharge(50101, 10.00, 'desk-2', 'paid in cash')$$,
	$$VALUES (25.00::numeric)$$, 'a desk recharge: 15 + 10 = 25');
SELECT results_eq($$SELECT balance FROM api.refund(50104, 30.00, 'refund-1')$$, $$VALUES (70.00::numeric)$$,
	'a refund: 100 - 30 = 70');
SELECT results_eq(format($$SELECT balance FROM api.reverse(%s, 'paid to the wrong meter')$$, :e_wx),
	$$VALUES (-30.00::numeric)$$, 'a reversal: 70 - 100 = -30');
SELECT results_eq(
	$$SELECT kind, amount, collection_account_id, operator FROM api.ledger
	   WHERE entry_id > (SELECT max(entry_id) - 3 FROM prepaid.ledger) ORDER BY entry_id$$,
	$$VALUES ('recharge_platform'::text, 10.00::numeric, 5013::bigint, 'alice'::text),
			 ('refund', -30.00, 5013, 'alice'), ('reversal', -100.00, 5011, 'alice')$$,
	'the operator is the JWT subject; the reversal stays on the reversed entry''s account');
SELECT results_eq(
	format($$SELECT kind, collection_account_id, entries, amount FROM api.revenue_monthly
			  WHERE property_id = 501 AND month = date_trunc('month', %L::date) ORDER BY 1, 2$$, :'today'),
	$$VALUES ('energy'::text, NULL::bigint, 1::bigint, -30.00::numeric), ('recharge_platform', 5013, 2, 25.00),
			 ('recharge_wechat', 5011, 1, 100.00), ('refund', 5013, 1, -30.00), ('reversal', 5011, 1, -100.00)$$,
	'monthly revenue by kind and collection account');

SELECT * FROM finish();
ROLLBACK;
