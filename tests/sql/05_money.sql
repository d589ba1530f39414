-- Money operations: recharge (idempotent on channel + external id), reversal,
-- refund, deductions and apportionment; bad arguments raise clear errors and
-- change nothing; the ledger is append-only and balance = sum(ledger).
BEGIN;
SELECT plan(40);

SELECT prepaid.tariff_put('{"name": "money-t", "time_zone": "UTC",
	"prices": {"flat": 1.00}, "schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}') AS tid \gset
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (804, 'money park', 'UTC');
INSERT INTO prepaid.area (property_id, area_id, name) VALUES (804, 8041, 'block A'), (804, 8042, 'empty');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (804, 8041, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id, credit_limit, warning_level)
SELECT 804, a, 8041, 0, 0 FROM generate_series(8041, 8043) a;
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id, area_id, apportion_share) VALUES
	(804, 80401, '804000000401', 8041, :tid, 8041, 1),
	(804, 80402, '804000000402', 8042, :tid, 8041, 1),
	(804, 80403, '804000000403', 8043, :tid, 8041, 1);

-- recharge
SELECT prepaid.recharge(80401, 100.00, 'wechat', 'wx-001', 'op1') AS r1 \gset
SELECT results_eq($$SELECT kind, amount, channel, external_id, operator FROM prepaid.ledger WHERE meter_id = 80401$$,
	$$VALUES ('recharge_wechat'::text, 100.00::numeric, 'wechat'::text, 'wx-001'::text, 'op1'::text)$$,
	'a WeChat recharge is one ledger entry');
SELECT is(prepaid.recharge(80401, 100.00, 'wechat', 'wx-001'), :r1::bigint, 'repeated: the first entry is returned');
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 8041), 100.00::numeric(14,2), 'credited once');
SELECT throws_ok($$SELECT prepaid.recharge(80401, 90.00, 'wechat', 'wx-001')$$, '23505', NULL,
	'the same external id with another amount is refused');
SELECT throws_ok($$SELECT prepaid.recharge(80401, 0, 'wechat', 'wx-002')$$, '22023', 'amount must be positive', 'zero');
SELECT throws_ok($$SELECT prepaid.recharge(80401, -5, 'wechat', 'wx-002')$$, '22023', 'amount must be positive', 'negative');
SELECT throws_ok($$SELECT prepaid.recharge(80401, 1.005, 'wechat', 'wx-002')$$, '22023',
	'amount has more than two decimal places', 'over-precise');
SELECT throws_ok($$SELECT prepaid.recharge(80401, 2000000, 'wechat', 'wx-002')$$, '22003', NULL, 'absurdly large');
SELECT throws_ok($$SELECT prepaid.recharge(80401, NULL, 'wechat', 'wx-002')$$, '22004', NULL, 'null amount');
SELECT throws_ok($$SELECT prepaid.recharge(999999, 10, 'wechat', 'wx-002')$$, 'P0002', 'meter 999999 does not exist',
	'unknown meter');
SELECT throws_ok($$SELECT prepaid.recharge(80401, 10, 'paypal', 'pp-1')$$, '22023', 'unknown recharge channel "paypal"',
	'unknown channel');
SELECT throws_ok($$SELECT prepaid.recharge(80401, 10, 'wechat', '')$$, '22023', 'external_id is required',
	'no external id');
SELECT is((SELECT count(*) FROM prepaid.ledger WHERE property_id = 804), 1::bigint, 'the refused calls wrote nothing');

-- reversal
SELECT prepaid.recharge(80402, 30.00, 'platform', 'cash-9') AS r2 \gset
SELECT prepaid.reverse(:r2, 'keyed in on the wrong meter', 'op2') AS rev \gset
SELECT results_eq(format('SELECT kind, amount, reverses_entry_id FROM prepaid.ledger WHERE entry_id = %s', :rev),
	format('VALUES (%L::text, -30.00::numeric, %s::bigint)', 'reversal', :r2), 'reversal: the opposite amount, linked');
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 8042), 0.00::numeric(14,2), 'balance back to 0');
SELECT throws_ok(format('SELECT prepaid.reverse(%s, %L)', :r2, 'again'), '23505', NULL, 'an entry is reversed once');
SELECT throws_ok(format('SELECT prepaid.reverse(%s, %L)', :rev, 'undo'), '22023', NULL, 'a reversal is not reversed');
SELECT throws_ok($$SELECT prepaid.reverse(-1, 'x')$$, 'P0002', NULL, 'unknown entry');
SELECT throws_ok(format('SELECT prepaid.reverse(%s, %L)', :r1, ''), '22023', 'a reversal needs a reason', 'no reason');

-- refund
SELECT throws_ok($$SELECT prepaid.refund(80401, 150, 'wechat', 'rf-1')$$, '22023', NULL, 'refund above the balance');
SELECT prepaid.refund(80401, 40, 'wechat', 'rf-1') AS rf1 \gset
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 8041), 60.00::numeric(14,2), 'refund of 40: 60 left');
SELECT is(prepaid.refund(80401, 40, 'wechat', 'rf-1'), :rf1::bigint, 'a repeated refund refunds once');
SELECT prepaid.refund(80401, NULL, 'wechat', 'rf-2');
SELECT is((SELECT balance FROM prepaid.account WHERE account_id = 8041), 0.00::numeric(14,2),
	'refund with no amount: the whole balance');
SELECT throws_ok($$SELECT prepaid.refund(80401, NULL, 'wechat', 'rf-3')$$, '22023', NULL,
	'nothing left to refund');

-- deductions and apportionment
SELECT prepaid.deduct(80403, 'property_fee', 25.00, '2026-11') AS d1 \gset
SELECT is(prepaid.deduct(80403, 'property_fee', 25.00, '2026-11'), :d1::bigint, 'a deduction is written once per reference');
SELECT throws_ok($$SELECT prepaid.deduct(80403, 'parking', 5, '2026-11')$$, '22023', 'unknown deduction kind "parking"',
	'unknown deduction kind');
-- 100.00 over three equal shares: 33.34 + 33.33 + 33.33 (largest remainder, lowest id first)
SELECT results_eq($$SELECT meter_id, amount FROM prepaid.apportion(8041, 100.00, '2026-11') ORDER BY 1$$,
	$$VALUES (80401::bigint, 33.34::numeric), (80402, 33.33), (80403, 33.33)$$,
	'apportionment: whole fen adding up exactly to 100.00');
SELECT is((SELECT sum(amount) FROM prepaid.ledger WHERE kind = 'apportionment' AND property_id = 804), -100.00::numeric,
	'the ledger has exactly -100.00 of apportionment');
SELECT is((SELECT count(*) FROM prepaid.apportion(8041, 100.00, '2026-11') a
			JOIN prepaid.ledger l ON l.entry_id = a.entry_id), 3::bigint, 'running it again returns the same entries');
SELECT is((SELECT sum(amount) FROM prepaid.ledger WHERE kind = 'apportionment' AND property_id = 804), -100.00::numeric,
	'and charges nothing more');
SELECT throws_ok($$SELECT * FROM prepaid.apportion(8042, 10, '2026-11')$$, '22023', NULL, 'an area without meters');

-- append-only ledger, balance only through entries
SELECT throws_ok(format('UPDATE prepaid.ledger SET amount = 1000 WHERE entry_id = %s', :r1), '55000', NULL,
	'an entry cannot be changed');
SELECT throws_ok(format('DELETE FROM prepaid.ledger WHERE entry_id = %s', :r1), '55000', NULL, 'nor deleted');
SELECT throws_ok($$UPDATE prepaid.account SET balance = 1000000 WHERE account_id = 8041$$, '55000', NULL,
	'a balance cannot be set directly');
SELECT lives_ok(format('UPDATE prepaid.ledger SET invoiced_at = now(), invoice_no = %L WHERE entry_id = %s', 'INV-1', :r1),
	'marking an entry invoiced is allowed');

SELECT throws_ok(format('UPDATE prepaid.ledger SET invoice_no = %L WHERE entry_id = %s', 'INV-2', :r1), '55000', NULL,
	'and only once');

-- entries written directly (as a privileged job could) must name existing accounts
SELECT throws_ok($$INSERT INTO prepaid.ledger (property_id, account_id, kind, amount)
	VALUES (804, 8041, 'property_fee', -1.00), (804, 99999, 'property_fee', -1.00)$$,
	'23503', 'ledger entry for an unknown account', 'an entry for an unknown account is refused');
SELECT is((SELECT count(*) FROM prepaid.ledger WHERE account_id IN (8041, 99999) AND kind = 'property_fee' AND amount = -1.00),
	0::bigint, 'and the whole statement with it');
SELECT is_empty($$SELECT * FROM prepaid.verify_ledger()$$, 'verify_ledger() is empty after all of it');
-- the check can fail: force a balance past the guard (as only a superuser could)
ALTER TABLE prepaid.account DISABLE TRIGGER account_balance_guard;
UPDATE prepaid.account SET balance = balance + 0.01 WHERE account_id = 8041;
SELECT results_eq($$SELECT property_id, account_id, balance, ledger_sum FROM prepaid.verify_ledger()$$,
	$$VALUES (804::bigint, 8041::bigint, -33.33::numeric, -33.34::numeric)$$,
	'a balance that differs from its entries is reported (-33.34 + 0.01)');

SELECT * FROM finish();
ROLLBACK;
