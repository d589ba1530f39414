-- prepaid.tou_split(): energy split in proportion to the time spent in each
-- period, in the tariff's zone, across midnight, season changes, tariff
-- versions and DST transitions; the parts add up exactly to the input.
BEGIN;
SELECT plan(18);

-- Shanghai: valley 00-08, peak 08-22, flat 22-24
SELECT prepaid.tariff_put('{"name": "split-sh", "time_zone": "Asia/Shanghai",
	"prices": {"valley": 0.3, "peak": 1, "flat": 0.6},
	"schedule": [{"from": "00:00", "to": "08:00", "period": "valley"},
				 {"from": "08:00", "to": "22:00", "period": "peak"},
				 {"from": "22:00", "to": "24:00", "period": "flat"}]}') AS sh \gset

-- 23:00 to 09:00 next day = 10 h: flat 23-24 (1 h), valley 00-08 (8 h), peak 08-09 (1 h)
SELECT results_eq(format($$SELECT period, kwh FROM prepaid.tou_split(%s, '2026-11-24 23:00+08',
		'2026-11-25 09:00+08', 10) ORDER BY period$$, :sh),
	$$VALUES ('flat'::text, 1.000000::numeric), ('peak', 1.000000), ('valley', 8.000000)$$,
	'across midnight: 1 h flat, 8 h valley, 1 h peak of 10 kWh');
SELECT results_eq(format($$SELECT (s).period, (s).kwh FROM (SELECT prepaid.tou_split(%s, '2026-11-24 23:00+08',
		'2026-11-25 09:00+08', 10) AS s) x ORDER BY 1$$, :sh),
	$$VALUES ('flat'::text, 1.000000::numeric), ('peak', 1.000000), ('valley', 8.000000)$$,
	'the same rows when called in a select list (one row per call)');
-- 21:30 to 22:45: peak 30 min, flat 45 min of 1 kWh -> 0.4 / 0.6
SELECT results_eq(format($$SELECT period, kwh FROM prepaid.tou_split(%s, '2026-11-24 21:30+08',
		'2026-11-24 22:45+08', 1) ORDER BY period$$, :sh),
	$$VALUES ('flat'::text, 0.600000::numeric), ('peak', 0.400000)$$,
	'a boundary inside the interval: 30/75 and 45/75 of the energy');
-- the interval is read in the tariff's zone, whatever the session's zone
SET LOCAL timezone = 'America/New_York';
SELECT results_eq(format($$SELECT period, kwh FROM prepaid.tou_split(%s, '2026-11-24 23:00+08',
		'2026-11-25 09:00+08', 10) ORDER BY period$$, :sh),
	$$VALUES ('flat'::text, 1.000000::numeric), ('peak', 1.000000), ('valley', 8.000000)$$,
	'the session time zone does not matter');
RESET timezone;

-- thirds: 8 h each of peak, flat, valley; 1 kWh = 3 x 0.333333 + 1 unit to the first largest remainder
SELECT prepaid.tariff_put('{"name": "split-thirds", "time_zone": "UTC",
	"prices": {"valley": 0.3, "peak": 1, "flat": 0.6},
	"schedule": [{"from": "00:00", "to": "08:00", "period": "valley"},
				 {"from": "08:00", "to": "16:00", "period": "peak"},
				 {"from": "16:00", "to": "24:00", "period": "flat"}]}') AS th \gset
SELECT results_eq(format($$SELECT period, kwh FROM prepaid.tou_split(%s, '2026-11-24 00:00Z',
		'2026-11-25 00:00Z', 1) ORDER BY period$$, :th),
	$$VALUES ('flat'::text, 0.333333::numeric), ('peak', 0.333334), ('valley', 0.333333)$$,
	'thirds: parts in whole 1e-6 kWh, the leftover unit to one part');
SELECT is((SELECT sum(s.kwh) FROM generate_series(1, 500) i,
			LATERAL prepaid.tou_split(:th, timestamptz '2026-01-01 00:00Z' + i * interval '97 min 13 s',
				timestamptz '2026-01-01 00:00Z' + i * interval '97 min 13 s' + (i % 37 + 1) * interval '23 min 7 s',
				(i * 0.001237)::numeric(12,6)) s),
		  (SELECT sum((i * 0.001237)::numeric(12,6)) FROM generate_series(1, 500) i),
		  '500 odd intervals: the parts always add up exactly to the input');

-- season change at local midnight 10-01: summer all peak, standard all valley
SELECT prepaid.tariff_put('{"name": "split-season", "time_zone": "UTC",
	"prices": {"valley": 0.3, "peak": 1},
	"seasons": [{"name": "summer", "from": "07-01", "to": "09-30",
				 "schedule": [{"from": "00:00", "to": "24:00", "period": "peak"}]},
				{"name": "standard", "from": "10-01", "to": "06-30",
				 "schedule": [{"from": "00:00", "to": "24:00", "period": "valley"}]}]}') AS se \gset
SELECT results_eq(format($$SELECT period, kwh FROM prepaid.tou_split(%s, '2026-09-30 18:00Z',
		'2026-10-01 06:00Z', 12) ORDER BY period$$, :se),
	$$VALUES ('peak'::text, 6.000000::numeric), ('valley', 6.000000)$$,
	'season change: 6 h of summer peak, 6 h of standard valley');

-- tariff version change: v1 all flat, v2 from 2026-06-01 all valley
SELECT prepaid.tariff_put('{"name": "split-version", "time_zone": "UTC",
	"prices": {"flat": 0.5}, "schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}') AS ve \gset
SELECT results_eq(format($$SELECT period, kwh FROM prepaid.tou_split(%s, '2027-05-31 20:00Z',
		'2027-06-01 04:00Z', 8) ORDER BY period$$, :ve),
	$$VALUES ('flat'::text, 8.000000::numeric)$$, 'one version: all flat (the calendar is now cached)');
SELECT prepaid.tariff_put(jsonb_build_object('tariff_id', :ve, 'valid_from', '2027-06-01',
	'prices', '{"valley": 0.2}'::jsonb, 'schedule', '[{"from": "00:00", "to": "24:00", "period": "valley"}]'::jsonb));
SELECT results_eq(format($$SELECT period, kwh FROM prepaid.tou_split(%s, '2027-05-31 20:00Z',
		'2027-06-01 04:00Z', 8) ORDER BY period$$, :ve),
	$$VALUES ('flat'::text, 4.000000::numeric), ('valley', 4.000000)$$,
	'a new version is seen at once in the same session and splits at its start');

-- DST, Europe/Berlin: valley 00-06, peak 06-24
SELECT prepaid.tariff_put('{"name": "split-berlin", "time_zone": "Europe/Berlin",
	"prices": {"valley": 0.3, "peak": 1},
	"schedule": [{"from": "00:00", "to": "06:00", "period": "valley"},
				 {"from": "06:00", "to": "24:00", "period": "peak"}]}') AS be \gset
-- 2026-03-29 spring forward: local 00:00 CET .. 12:00 CEST is 11 real hours, valley 5 of them
SELECT results_eq(format($$SELECT period, kwh FROM prepaid.tou_split(%s, '2026-03-29 00:00+01',
		'2026-03-29 12:00+02', 11) ORDER BY period$$, :be),
	$$VALUES ('peak'::text, 6.000000::numeric), ('valley', 5.000000)$$,
	'spring forward: the night is one hour shorter (5 h valley, 6 h peak)');
-- 2026-10-25 fall back: local 00:00 CEST .. 12:00 CET is 13 real hours, valley 7 of them
SELECT results_eq(format($$SELECT period, kwh FROM prepaid.tou_split(%s, '2026-10-25 00:00+02',
		'2026-10-25 12:00+01', 13) ORDER BY period$$, :be),
	$$VALUES ('peak'::text, 6.000000::numeric), ('valley', 7.000000)$$,
	'fall back: the night is one hour longer (7 h valley, 6 h peak)');
-- a summer-time interval is in CEST: 05:00..07:00 local = 03:00..05:00 UTC
SELECT results_eq(format($$SELECT period, kwh FROM prepaid.tou_split(%s, '2026-07-01 03:00Z',
		'2026-07-01 05:00Z', 2) ORDER BY period$$, :be),
	$$VALUES ('peak'::text, 1.000000::numeric), ('valley', 1.000000)$$,
	'summer time: the 06:00 boundary is 04:00 UTC');

-- bad arguments: clear errors, nothing else
SELECT throws_ok(format($$SELECT * FROM prepaid.tou_split(%s, '2026-11-25 10:00Z', '2026-11-25 09:00Z', 1)$$, :sh),
	'22023', 't_to must be later than t_from', 'an interval that ends before it starts');
SELECT throws_ok(format($$SELECT * FROM prepaid.tou_split(%s, '2026-11-25 09:00Z', '2026-11-25 10:00Z', -1)$$, :sh),
	'22023', 'kwh must not be negative', 'negative energy');
SELECT throws_ok(format($$SELECT * FROM prepaid.tou_split(%s, '2026-11-25 09:00Z', '2026-11-25 10:00Z', 1.0000001)$$, :sh),
	'22023', 'kwh has more than 6 decimal places', 'energy finer than 1e-6 kWh');
SELECT throws_ok(format($$SELECT * FROM prepaid.tou_split(%s, '-infinity', '2026-11-25 10:00Z', 1)$$, :sh),
	'22023', 'interval bounds must be finite', 'infinite bound');
SELECT throws_ok($$SELECT * FROM prepaid.tou_split(-42, '2026-11-25 09:00Z', '2026-11-25 10:00Z', 1)$$,
	'P0002', 'tariff -42 does not exist', 'unknown tariff');
SELECT lives_ok(format($$SELECT * FROM prepaid.tou_split(%s, '2000-01-01 00:00Z', '2000-01-02 00:00Z', 8)$$, :ve),
	'the first version (no valid_from) covers all history');

SELECT * FROM finish();
ROLLBACK;
