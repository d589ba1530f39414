-- A park for the ingest tests (tests/tap/4x_ingest*.t) and bench/run_ingest.sh:
-- psql -v meters=N -v gateways=G -v per_gateway=K -v prepaid=P -f ingest_fleet.sql
-- Property 1 (Asia/Shanghai), one TOU tariff with registers T1..T4, N meters
-- with addresses 000000000001.. (every 4th reports four rate registers), the
-- last G*K of them behind G gateways (serials GW0001..), the first P
-- prepaid with a small balance, the rest post-paid. Partitions cover 3
-- months back so accelerated time may start in the past.
\set ON_ERROR_STOP 1
SELECT prepaid.ensure_partitions(now() - interval '3 months', now() + interval '2 months');
SELECT prepaid.tariff_put('{"name": "ingest", "time_zone": "Asia/Shanghai",
	"registers": ["sharp", "peak", "flat", "valley"],
	"prices": {"sharp": 1.2, "peak": 1, "flat": 0.7, "valley": 0.4},
	"schedule": [{"from": "00:00", "to": "08:00", "period": "valley"},
				 {"from": "08:00", "to": "10:00", "period": "sharp"},
				 {"from": "10:00", "to": "18:00", "period": "peak"},
				 {"from": "18:00", "to": "24:00", "period": "flat"}]}') AS tariff \gset
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (1, 'ingest park', 'Asia/Shanghai');
INSERT INTO prepaid.customer (property_id, customer_id, name, kind)
SELECT 1, i, 'tenant ' || i, (ARRAY['company', 'dormitory', 'office', 'factory'])[1 + i % 4]
  FROM generate_series(1, :meters) i;
INSERT INTO prepaid.account (property_id, account_id, customer_id, credit_limit, warning_level)
SELECT 1, i, i, 0, 1 FROM generate_series(1, :meters) i;
INSERT INTO prepaid.gateway (property_id, gateway_id, serial)
SELECT 1, g, 'GW' || lpad(g::text, 4, '0') FROM generate_series(1, :gateways) g;
INSERT INTO prepaid.meter (property_id, meter_id, address, phase, account_id, tariff_id, mode,
						   rate_registers, gateway_id, opened_at, opening_energy_wh)
SELECT 1, i, lpad(i::text, 12, '0'), CASE WHEN i % 5 = 0 THEN 3 ELSE 1 END, i, :tariff,
	   CASE WHEN i <= :prepaid THEN 'prepaid' ELSE 'postpaid' END,
	   CASE WHEN i % 4 = 0 THEN 4 ELSE 0 END,
	   CASE WHEN i > :meters - :gateways * :per_gateway
			THEN 1 + (i - (:meters - :gateways * :per_gateway) - 1) / :per_gateway END,
	   NULL, NULL
  FROM generate_series(1, :meters) i;
SELECT count(*) AS meters FROM prepaid.meter;
