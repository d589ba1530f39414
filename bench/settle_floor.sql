-- The floor under a settlement run (scripts/bench.sh): the bare writes any
-- settlement of the same readings must make, in plain SQL, with nothing else.
-- One session of `parts` running at once, settling the accounts with
--   account_id / 64 % parts = part
-- (the way prepaid.settle(workers => parts) splits them):
--   psql -v part=K -v parts=N -f bench/settle_floor.sql
-- In one transaction, rolled back: read every new reading of those meters,
-- insert one energy entry per meter (a detail of the real shape), move each
-- account's balance and each meter's cursor. No pricing, no triggers (so no
-- supply decisions, alarms or revenue rollup), no locking of the cursors.
-- prepaid.settle() cannot be faster than this without writing less; the
-- benchmark prints its time as a multiple of the floor.
-- Prints one line: FLOOR|start_epoch|end_epoch|meters|readings
\set ON_ERROR_STOP 1
\set QUIET 1
SET max_parallel_workers_per_gather = 0;
SET session_replication_role = replica;	-- no triggers (superuser)

BEGIN;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
CREATE TEMP TABLE floor_meter ON COMMIT DROP AS
SELECT c.property_id, c.meter_id, m.account_id, max(r.read_at) AS read_at,
	   max(r.energy_wh) AS energy_wh, count(r.*) AS readings
  FROM prepaid.settle_cursor c
  JOIN prepaid.meter m ON m.property_id = c.property_id AND m.meter_id = c.meter_id
  JOIN prepaid.reading r ON r.property_id = c.property_id AND r.meter_id = c.meter_id
   AND r.read_at > coalesce(c.read_at, '-infinity')
 WHERE m.mode = 'prepaid' AND m.account_id / 64 % :parts = :part
 GROUP BY 1, 2, 3;
INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, kwh, detail,
							period_from, period_to)
SELECT property_id, account_id, meter_id, 'energy', -1.45, 2.604,
	   '{"periods": [{"kwh": 2.604000, "price": 0.558300, "amount": 1.453813, "period": "flat"}], "readings": 1}',
	   read_at - interval '30 minutes', read_at
  FROM floor_meter;
UPDATE prepaid.account a SET balance = a.balance - 1.45
  FROM floor_meter f WHERE a.property_id = f.property_id AND a.account_id = f.account_id;
UPDATE prepaid.settle_cursor c SET read_at = f.read_at, energy_wh = f.energy_wh,
	   settled_at = now()
  FROM floor_meter f WHERE c.property_id = f.property_id AND c.meter_id = f.meter_id;
SELECT extract(epoch FROM clock_timestamp()) AS t1 \gset
SELECT count(*) AS meters, coalesce(sum(readings), 0) AS readings FROM floor_meter \gset
ROLLBACK;
SELECT concat_ws('|', 'FLOOR', :t0, :t1, :meters, :readings);
