#!/usr/bin/env bash
# Daily data forwarding through the scheduler's forward_send job against a
# receiver on 127.0.0.1 that first refuses connections, then answers 500,
# then hangs past the timeout, then accepts: every day arrives exactly once,
# signed; a 4xx is recorded as failed with the response.
set -u
cd "$(dirname "$0")"
PSQL=(psql -qXAt -d postgres -v ON_ERROR_STOP=1)
TMPD=$(mktemp -d)
# a port nobody listens on (the first phase expects connections refused)
for _ in $(seq 1 50); do
	PORT=$((20000 + RANDOM % 12000))
	(echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
done
n=0
fail=0
recv_pid=
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
wait_for() {
	local deadline=$((SECONDS + $1))
	while [ $SECONDS -lt $deadline ]; do
		[ "$("${PSQL[@]}" -c "$2" 2>/dev/null)" = "t" ] && return 0
		sleep 0.3
	done
	return 1
}
cleanup() {
	[ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null
	"${PSQL[@]}" -c "ALTER SYSTEM RESET pg_prepaid.forward_url" -c "ALTER SYSTEM RESET pg_prepaid.forward_secret" \
		-c "ALTER SYSTEM RESET pg_prepaid.forward_timeout" -c "SELECT pg_reload_conf()" \
		-c "DROP EXTENSION IF EXISTS pg_prepaid CASCADE" >/dev/null 2>&1
	rm -rf "$TMPD"
}
trap cleanup EXIT
# send the job round now and wait until it has run
kick() {
	local runs
	runs=$("${PSQL[@]}" -c "SELECT run_count FROM prepaid.job WHERE job_name = 'forward_send'")
	"${PSQL[@]}" -c "UPDATE prepaid.forward_outbox SET next_attempt_at = now() WHERE status = 'pending'" \
		-c "SELECT prepaid.job_run_now('forward_send')" >/dev/null
	wait_for 20 "SELECT run_count > $runs FROM prepaid.job WHERE job_name = 'forward_send'"
}
echo "1..9"

"${PSQL[@]}" -c "DROP EXTENSION IF EXISTS pg_prepaid CASCADE" -c "CREATE EXTENSION pg_prepaid CASCADE" \
	-c "UPDATE prepaid.job SET enabled = false WHERE job_name <> 'forward_send'" >/dev/null
"${PSQL[@]}" -c "ALTER SYSTEM SET pg_prepaid.forward_url = 'http://127.0.0.1:$PORT/energy'" \
	-c "ALTER SYSTEM SET pg_prepaid.forward_secret = 's3cret'" \
	-c "ALTER SYSTEM SET pg_prepaid.forward_timeout = '1500ms'" -c "SELECT pg_reload_conf()" >/dev/null
"${PSQL[@]}" >/dev/null <<'SQL'
SELECT prepaid.tariff_put('{"name": "fwd", "time_zone": "UTC", "prices": {"peak": 1, "valley": 0.5},
	"schedule": [{"from": "00:00", "to": "12:00", "period": "valley"}, {"from": "12:00", "to": "24:00", "period": "peak"}]}');
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (1, 'fwd park', 'UTC');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (1, 1, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id) VALUES (1, 1, 1);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id, mode)
VALUES (1, 1, '000000000001', 1, 1, 'postpaid');
-- 1 kWh every hour for four days up to today's midnight (UTC): 24 kWh a day, 12 valley + 12 peak
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
SELECT 1, 1, t, 1000 * row_number() OVER (ORDER BY t)
  FROM generate_series(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '4 days',
					   date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', interval '1 hour') t;
SET pg_prepaid.forward_time = '00:00';
SELECT count(*) FROM prepaid.forward_prepare(now() - interval '2 days');
SELECT count(*) FROM prepaid.forward_prepare(now());
SQL
days=$("${PSQL[@]}" -c "SELECT count(*) FROM prepaid.forward_outbox")
[ "$days" = 3 ]; ok $? "three finished days in the outbox (got $days)"
"${PSQL[@]}" -c "SET pg_prepaid.forward_time = '00:00'" -c "SELECT count(*) FROM prepaid.forward_prepare(now())" >/dev/null
days=$("${PSQL[@]}" -c "SELECT count(*) FROM prepaid.forward_outbox")
[ "$days" = 3 ]; ok $? "preparing again adds no day twice"

kick
wait_for 5 "SELECT bool_and(status = 'pending' AND attempts = 1 AND last_error IS NOT NULL) FROM prepaid.forward_outbox"
ok $? "connection refused: every day stays pending with the error recorded"

perl http_receiver.pl "$PORT" "$TMPD/received" s3cret 500 hang:4 &
recv_pid=$!
sleep 0.5
for _ in $(seq 1 8); do
	kick
	[ "$("${PSQL[@]}" -c "SELECT bool_and(status = 'delivered') FROM prepaid.forward_outbox")" = t ] && break
done
wait_for 5 "SELECT bool_and(status = 'delivered' AND response_code = 200) FROM prepaid.forward_outbox"
ok $? "after a 500 and a timeout every day is delivered"
ok "$([ "$("${PSQL[@]}" -c "SELECT max(attempts) > 1 FROM prepaid.forward_outbox")" = t ]; echo $?)" \
	"failed attempts were retried"
sleep 4   # let the receiver finish the hung request
keys=$(cut -f1 "$TMPD/received" | sort | uniq -c | awk '{print $1}' | sort -u | tr '\n' ' ')
distinct=$(cut -f1 "$TMPD/received" | sort -u | wc -l)
[ "$distinct" = 3 ] && [ "$keys" = "1 " ]
ok $? "the receiver accepted each day exactly once (distinct $distinct, per-key counts: $keys)"
[ "$(cut -f2 "$TMPD/received" | sort -u | tr -d '\n')" = 1 ]
ok $? "every request carried a valid HMAC-SHA256 signature"
grep -q '"kwh": 24.000000' "$TMPD/received" && grep -q '"peak": 12.000000' "$TMPD/received"
ok $? "the payload has each day's energy: 24 kWh, 12 of them peak"
kill "$recv_pid" 2>/dev/null; wait "$recv_pid" 2>/dev/null

perl http_receiver.pl "$PORT" "$TMPD/received2" s3cret 422 &
recv_pid=$!
sleep 0.5
"${PSQL[@]}" -c "INSERT INTO prepaid.forward_outbox (property_id, day, idempotency_key, payload)
	VALUES (1, current_date - 30, 'test-4xx', '{}')" >/dev/null
kick
wait_for 10 "SELECT status = 'failed' AND response_code = 422 AND response_body = 'unknown property in payload' FROM prepaid.forward_outbox WHERE idempotency_key = 'test-4xx'"
ok $? "a 4xx answer is recorded as failed with the response, not retried"
exit $fail
