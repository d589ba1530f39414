-- The demo park (make demo): a high-tech industrial park run by three
-- property companies, 5,407 prepaid and post-paid meters (single-phase
-- dormitories and offices, three-phase factories behind current
-- transformers), 224 LoRa-to-4G gateways carrying 24 meters each and 31
-- meters with their own 4G modem, one customer and account per unit,
-- WeChat / Alipay / cash collection accounts, and the park's
-- sharp/peak/flat/valley tariff with a summer season, written through
-- prepaid.tariff_put. Opening balances are drawn so that some tenants run
-- out during the simulated month. Everything is set-based and
-- deterministic (no random()): the same park every time.
\set ON_ERROR_STOP 1

SELECT prepaid.tariff_put($doc${
  "name": "Park TOU 2026", "time_zone": "Asia/Shanghai",
  "registers": ["sharp", "peak", "flat", "valley"],
  "prices": {"sharp": 1.2500, "peak": 1.0500, "flat": 0.6500, "valley": 0.3000},
  "day_types": {"workday": ["mon", "tue", "wed", "thu", "fri"], "weekend": ["sat", "sun"], "holiday": []},
  "holidays": [{"date": "2026-10-01", "day_type": "holiday"}, {"date": "2026-10-02", "day_type": "holiday"},
			   {"date": "2026-10-03", "day_type": "holiday"}, {"date": "2027-01-01", "day_type": "holiday"}],
  "seasons": [
	{"name": "summer", "from": "07-01", "to": "09-30", "prices": {"peak": 1.1500, "sharp": 1.3800},
	 "schedule": {
	   "workday": [{"from": "00:00", "to": "08:00", "period": "valley"},
				   {"from": "08:00", "to": "10:00", "period": "flat"},
				   {"from": "10:00", "to": "11:00", "period": "sharp"},
				   {"from": "11:00", "to": "17:00", "period": "peak"},
				   {"from": "17:00", "to": "22:00", "period": "flat"},
				   {"from": "22:00", "to": "24:00", "period": "valley"}],
	   "weekend": [{"from": "00:00", "to": "08:00", "period": "valley"},
				   {"from": "08:00", "to": "24:00", "period": "flat"}],
	   "holiday": [{"from": "00:00", "to": "24:00", "period": "valley"}]}},
	{"name": "standard", "from": "10-01", "to": "06-30",
	 "schedule": {
	   "workday": [{"from": "00:00", "to": "08:00", "period": "valley"},
				   {"from": "08:00", "to": "11:00", "period": "peak"},
				   {"from": "11:00", "to": "13:00", "period": "flat"},
				   {"from": "13:00", "to": "18:00", "period": "peak"},
				   {"from": "18:00", "to": "20:00", "period": "sharp"},
				   {"from": "20:00", "to": "22:00", "period": "flat"},
				   {"from": "22:00", "to": "24:00", "period": "valley"}],
	   "weekend": [{"from": "00:00", "to": "08:00", "period": "valley"},
				   {"from": "08:00", "to": "24:00", "period": "flat"}],
	   "holiday": [{"from": "00:00", "to": "24:00", "period": "valley"}]}}]
}$doc$::jsonb) AS tariff_id \gset

-- three property companies; friendly hours: no cut-offs at night
INSERT INTO prepaid.property (property_id, name, time_zone, no_cutoff_from, no_cutoff_to) VALUES
	(1, 'Park East Property Management', 'Asia/Shanghai', '22:00', '07:00'),
	(2, 'Hi-Tech Industrial Services', 'Asia/Shanghai', NULL, NULL),
	(3, 'Riverside Dormitory Management', 'Asia/Shanghai', '22:00', '07:00');
INSERT INTO prepaid.collection_account (property_id, collection_account_id, channel, merchant_id, name, signing_key)
SELECT p, p * 10 + c, ch, format('mch-%s-%s', p, ch), format('%s %s', n, ch), md5(format('demo-key-%s-%s', p, ch))
  FROM (VALUES (1, 'Park East'), (2, 'Hi-Tech'), (3, 'Riverside')) pr(p, n),
	   (VALUES (1, 'wechat'), (2, 'alipay'), (3, 'platform')) cc(c, ch);

-- units: (property, first unit, last unit, kind, gateways, first gateway,
-- units with their own 4G modem at the end of the block); unit numbers are
-- global 1..5407, 224 gateways in all
CREATE TEMP TABLE demo_block (property_id int, lo int, hi int, kind text, ngw int, gw0 int, direct int);
INSERT INTO demo_block VALUES
	(1,    1, 1200, 'office',    50,   0,  0),
	(1, 1201, 2400, 'dormitory', 50,  50,  0),
	(2, 2401, 3500, 'factory',   45, 100, 31),
	(2, 3501, 4400, 'office',    38, 145,  0),
	(3, 4401, 5407, 'dormitory', 41, 183,  0);
CREATE TEMP TABLE demo_unit AS
SELECT b.property_id, u, b.kind, b.lo, b.lo / 10 + (u - b.lo) / 120 + 1 AS area_id,
	   CASE WHEN u <= b.hi - b.direct
			THEN b.gw0 + (u - b.lo) * b.ngw / (b.hi - b.lo + 1 - b.direct) + 1 END AS gateway_id
  FROM demo_block b, generate_series(b.lo, b.hi) u;

-- areas: a building per 120 units of a block
INSERT INTO prepaid.area (property_id, area_id, name, kind)
SELECT DISTINCT property_id, area_id, format('%s building %s', initcap(kind), area_id), kind FROM demo_unit;

INSERT INTO prepaid.gateway (property_id, gateway_id, serial, area_id, model)
SELECT DISTINCT ON (gateway_id) property_id, gateway_id, format('GSM500-LORA-%s', lpad(gateway_id::text, 4, '0')),
	   area_id, 'GSM500-Lora'
  FROM demo_unit WHERE gateway_id IS NOT NULL ORDER BY gateway_id, u;

INSERT INTO prepaid.customer (property_id, customer_id, name, kind, phone)
SELECT b.property_id, u,
	   CASE b.kind WHEN 'dormitory' THEN format('Dormitory room %s-%s', (u - b.lo) / 40 + 1, lpad(((u - b.lo) % 40 + 1)::text, 2, '0'))
				   WHEN 'office' THEN format('Office tenant %s', u)
				   ELSE format('Factory unit %s', u) END,
	   b.kind, '139' || lpad((u * 7919 % 100000000)::text, 8, '0')
  FROM demo_block b, generate_series(b.lo, b.hi) u;

-- accounts: credit 0 for dormitories, 50 for offices, 500 for factories;
-- bound to WeChat, Alipay or cash collection by unit number
INSERT INTO prepaid.account (property_id, account_id, customer_id, collection_account_id, credit_limit, warning_level)
SELECT b.property_id, u, u, b.property_id * 10 + 1 + u % 3,
	   CASE b.kind WHEN 'dormitory' THEN 0 WHEN 'office' THEN 50 ELSE 500 END,
	   CASE b.kind WHEN 'dormitory' THEN 10 WHEN 'office' THEN 50 ELSE 1000 END
  FROM demo_block b, generate_series(b.lo, b.hi) u;

-- meters: addresses 0000260xxxxx as on the nameplate; factories three-phase
-- with CT 20..100 and T1..T4 registers, offices with registers, dormitories
-- total only; one factory in twelve is post-paid, a few units keep power
INSERT INTO prepaid.meter (property_id, meter_id, address, phase, pt_ratio, ct_ratio, gateway_id, area_id,
						   shop_no, owner_name, account_id, mode, keep_power, tariff_id, rate_registers,
						   model, restore_command, voltage_nominal, power_threshold_kw, opened_at)
SELECT du.property_id, du.u, '000026' || lpad(du.u::text, 6, '0'),
	   CASE WHEN du.kind = 'factory' THEN 3 ELSE 1 END, 1,
	   CASE WHEN du.kind = 'factory' THEN (ARRAY[20, 40, 60, 100])[du.u % 4 + 1] ELSE 1 END,
	   du.gateway_id, du.area_id,
	   format('%s-%s', upper(left(du.kind, 1)), du.u), c.name, du.u,
	   CASE WHEN du.kind = 'factory' AND du.u % 12 = 0 THEN 'postpaid' ELSE 'prepaid' END,
	   du.u % 500 = 77,
	   :tariff_id,
	   CASE WHEN du.kind = 'dormitory' THEN 0 ELSE 4 END,
	   CASE WHEN du.gateway_id IS NULL THEN 'DTSY1352-4G' WHEN du.kind = 'factory' THEN 'DTSY1352-LoRa'
			ELSE 'DDSY1352-LoRa' END,
	   CASE WHEN du.kind = 'dormitory' THEN 'relay_permit_close' ELSE 'relay_close' END,
	   220.0,
	   CASE du.kind WHEN 'dormitory' THEN 4 WHEN 'office' THEN 15 END,
	   now() - interval '45 days'
  FROM demo_unit du
  JOIN prepaid.customer c ON c.property_id = du.property_id AND c.customer_id = du.u
 ORDER BY du.u;

-- opening recharges: most tenants have enough for the month, about one in
-- six (less for factories) will run out and need to pay again
INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, amount, channel, external_id, operator, note)
SELECT m.property_id, m.account_id, m.meter_id, 'recharge_' || ch, amt, ch, format('open-%s', m.meter_id),
	   'demo', 'opening balance'
  FROM prepaid.meter m
  JOIN demo_unit b ON b.u = m.meter_id
 CROSS JOIN LATERAL (SELECT (ARRAY['wechat', 'alipay', 'platform'])[m.meter_id % 3 + 1] AS ch,
	   CASE b.kind
		   WHEN 'dormitory' THEN CASE WHEN m.meter_id % 6 = 0 THEN 20 ELSE 150 + m.meter_id % 7 * 25 END
		   WHEN 'office' THEN CASE WHEN m.meter_id % 6 = 0 THEN 120 ELSE 800 + m.meter_id % 9 * 100 END
		   ELSE CASE WHEN m.meter_id % 10 = 0 THEN 3000 ELSE 40000 + m.meter_id % 11 * 5000 END END AS amt) x
 WHERE m.mode = 'prepaid';

-- explicit ids were given: move the identity sequences past them
DO $$
DECLARE
	t text;
	c text;
BEGIN
	FOR t, c IN VALUES ('property', 'property_id'), ('collection_account', 'collection_account_id'),
					   ('area', 'area_id'), ('gateway', 'gateway_id'), ('customer', 'customer_id'),
					   ('account', 'account_id'), ('meter', 'meter_id') LOOP
		EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, %L), (SELECT max(%I) FROM prepaid.%I))',
					   'prepaid.' || t, c, c, t);
	END LOOP;
END
$$;
ANALYZE;
SELECT format('park: %s property companies, %s gateways, %s meters (%s three-phase, %s post-paid, %s keep-power), %s customers',
			  (SELECT count(*) FROM prepaid.property), (SELECT count(*) FROM prepaid.gateway),
			  (SELECT count(*) FROM prepaid.meter), (SELECT count(*) FROM prepaid.meter WHERE phase = 3),
			  (SELECT count(*) FROM prepaid.meter WHERE mode = 'postpaid'),
			  (SELECT count(*) FROM prepaid.meter WHERE keep_power),
			  (SELECT count(*) FROM prepaid.customer)) AS summary;
