#!/usr/bin/env bash
# Several daemons against one database: each claims only the commands of the
# meters connected to it (prepaid.meter_connection, FOR UPDATE SKIP
# LOCKED); a daemon killed while a command is in flight hands it back when
# it starts again, and re-sends it only after reading the relay state.
set -u
cd "$(dirname "$0")"
source ./ingest_lib.sh
echo "1..6"
setup_db prepaid_ing43 10 0 0 0
PA=$(free_tcp_port)
PB=$(free_tcp_port)
common=(--time-scale 60 --poll energy --batch-delay 100 --command-poll 500 --request-timeout 1000)
start_daemon dA "$PA" "${common[@]}"
start_daemon dB "$PB" "${common[@]}"
for i in 1 2 3; do perl "$CLIENT" meter "$PA" 00000000000$i 120 & PIDS[a$i]=$!; done
for i in 4 5 6; do perl "$CLIENT" meter "$PB" 00000000000$i 120 & PIDS[b$i]=$!; done
wait_for 30 "SELECT count(*) FILTER (WHERE daemon = 'dA') = 3 AND count(*) FILTER (WHERE daemon = 'dB') = 3
	FROM prepaid.meter_connection"
ok $? "meters 1-3 are held by dA, 4-6 by dB"

q -c "SELECT prepaid.command_queue(i, 'relay_open') FROM generate_series(1, 6) i" >/dev/null
wait_for 20 "SELECT count(*) = 6 FROM prepaid.command WHERE status = 'acknowledged'"
ok $? "all six relay commands are acknowledged"
got=$(q -c "SELECT string_agg(meter_id || ':' || claimed_by, ' ' ORDER BY meter_id) FROM prepaid.command")
[ "$got" = "1:dA 2:dA 3:dA 4:dB 5:dB 6:dB" ]
ok $? "each daemon claimed only its own meters' commands ($got)"

# meter 7 on dA does not answer commands: the command stays 'sent' when dA dies
perl "$CLIENT" mute "$PA" 000000000007 120 &
PIDS[mute]=$!
wait_for 20 "SELECT daemon = 'dA' FROM prepaid.meter_connection WHERE meter_id = 7"
q -c "SELECT prepaid.command_queue(7, 'relay_open')" >/dev/null
wait_for 10 "SELECT status = 'sent' AND claimed_by = 'dA' FROM prepaid.command WHERE meter_id = 7"
stop dA KILL
stop mute
start_daemon dA "$PA" "${common[@]}"
wait_for 20 "SELECT status = 'pending' AND attempts = 1 AND error LIKE 'daemon restarted%'
	FROM prepaid.command WHERE meter_id = 7"
ok $? "dA restarted: the command it had in flight is back in the queue"
perl "$CLIENT" meter "$PA" 000000000007 120 &
PIDS[m7]=$!
wait_for 20 "SELECT status = 'acknowledged' AND attempts = 2 AND claimed_by = 'dA' AND (reply->>'relay_open')::boolean
	FROM prepaid.command WHERE meter_id = 7"
ok $? "when the meter is back, dA re-claims it and it is acknowledged on the second attempt"
grep -q "frames_out" "$WORK/dA.log"
stop dA TERM && stop dB TERM
ok $? "both daemons stop cleanly"
exit $fail
