-- The commands job: timeouts retried with backoff then failed with an alarm,
-- re-issue of failed commands, and the relay reconciler.
BEGIN;
SELECT plan(12);

SELECT prepaid.tariff_put('{"name": "cmd-test", "time_zone": "UTC",
	"prices": {"flat": 1}, "schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}') AS tid \gset
INSERT INTO prepaid.property (property_id, name) VALUES (902, 'cmd park');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (902, 9021, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id, warning_level) VALUES (902, 9021, 9021, 0);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id) VALUES
	(902, 90201, '900000000201', 9021, :tid), (902, 90202, '900000000202', 9021, :tid);

-- a command sent 2 minutes ago, no reply (timeout 60 s)
SELECT prepaid.command_queue(90201, 'time_sync') AS c1 \gset
UPDATE prepaid.command SET status = 'sent', sent_at = now() - interval '2 minutes', attempts = 1
 WHERE command_id = :c1;
SELECT results_eq($$SELECT retried, failed FROM prepaid.commands_run()$$,
	$$VALUES (1::bigint, 0::bigint)$$, 'timed-out command is retried');
SELECT is((SELECT status FROM prepaid.command WHERE command_id = :c1), 'pending', 'back to pending');
SELECT ok((SELECT not_before >= now() + interval '29 seconds' FROM prepaid.command WHERE command_id = :c1),
	'with a backoff delay');

-- last attempt times out: failed plus alarm
UPDATE prepaid.command SET status = 'sent', sent_at = now() - interval '2 minutes', attempts = 3
 WHERE command_id = :c1;
SELECT results_eq($$SELECT retried, failed FROM prepaid.commands_run()$$,
	$$VALUES (0::bigint, 1::bigint)$$, 'after the last attempt it fails');
SELECT is((SELECT status FROM prepaid.command WHERE command_id = :c1), 'failed', 'status failed');
SELECT ok(EXISTS (SELECT 1 FROM prepaid.alarm WHERE meter_id = 90201 AND kind = 'command_failed'
				  AND cleared_at IS NULL), 'command_failed alarm raised');

-- re-issue
SELECT throws_ok($$SELECT prepaid.command_reissue()$$, '22023', 'give a command id or at least one filter',
	'bulk re-issue needs a filter');
SELECT throws_ok($$SELECT prepaid.command_reissue(-5)$$, 'P0002', NULL, 'unknown command id');
SELECT is((SELECT count(*) FROM prepaid.command_reissue(p_property_id => 902)), 1::bigint,
	'failed command re-issued in bulk');
SELECT is((SELECT count(*) FROM prepaid.command WHERE meter_id = 90201 AND kind = 'time_sync' AND status = 'pending'),
	1::bigint, 'as one new pending command');

-- reconciler: meter 2 is desired closed but reports open, no relay command for it
UPDATE prepaid.meter SET relay_actual = 'open' WHERE meter_id = 90202;
SELECT results_eq($$SELECT requeued FROM prepaid.commands_run()$$, $$VALUES (1::bigint)$$,
	'drifted relay re-queued');
SELECT results_eq($$SELECT requeued FROM prepaid.commands_run()$$, $$VALUES (0::bigint)$$,
	'not again while a relay command is pending');

SELECT * FROM finish();
ROLLBACK;
