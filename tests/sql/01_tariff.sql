-- prepaid.tariff_put(): a whole tariff from one JSON document, validated with
-- errors that name the offending field; versions by validity window.
BEGIN;
SELECT plan(22);

-- a valid two-season tariff with day types and a holiday
SELECT lives_ok($$SELECT prepaid.tariff_put('{
	"name": "t-ok", "time_zone": "Asia/Shanghai",
	"registers": ["sharp", "peak", "flat", "valley"],
	"prices": {"sharp": 1.25, "peak": 1.05, "flat": 0.65, "valley": 0.30},
	"day_types": {"workday": ["mon","tue","wed","thu","fri"], "weekend": ["sat","sun"], "holiday": []},
	"holidays": [{"date": "2026-10-01", "day_type": "holiday"}],
	"seasons": [
	  {"name": "summer", "from": "07-01", "to": "09-30", "prices": {"peak": 1.15},
	   "schedule": {"workday": [{"from": "00:00", "to": "08:00", "period": "valley"},
							   {"from": "08:00", "to": "10:00", "period": "flat"},
							   {"from": "10:00", "to": "11:00", "period": "sharp"},
							   {"from": "11:00", "to": "24:00", "period": "peak"}],
					"weekend": [{"from": "00:00", "to": "24:00", "period": "flat"}],
					"holiday": [{"from": "00:00", "to": "24:00", "period": "valley"}]}},
	  {"name": "standard", "from": "10-01", "to": "06-30",
	   "schedule": {"workday": [{"from": "00:00", "to": "08:00", "period": "valley"},
							   {"from": "08:00", "to": "24:00", "period": "peak"}],
					"weekend": [{"from": "00:00", "to": "24:00", "period": "flat"}],
					"holiday": [{"from": "00:00", "to": "24:00", "period": "valley"}]}}]}')$$,
	'a complete document with seasons, day types and holidays is accepted');
SELECT is((SELECT count(*) FROM prepaid.tariff_slot s JOIN prepaid.tariff t USING (tariff_id)
			WHERE t.name = 't-ok'), 10::bigint, '10 slots stored: summer 4+1+1, standard 2+1+1 (workday, weekend, holiday)');
SELECT is(prepaid.tou_price((SELECT tariff_id FROM prepaid.tariff WHERE name = 't-ok'),
						   '2026-08-03 12:00+08', 'peak'), 1.15, 'season price overrides the top-level one');
SELECT is(prepaid.tou_price((SELECT tariff_id FROM prepaid.tariff WHERE name = 't-ok'),
						   '2026-11-03 12:00+08', 'peak'), 1.05, 'top-level price in the other season');

-- each error names its field
CREATE TEMP TABLE base AS SELECT '{"name": "t-bad", "time_zone": "UTC",
	"prices": {"peak": 1, "valley": 0.3},
	"schedule": [{"from": "00:00", "to": "08:00", "period": "valley"},
				 {"from": "08:00", "to": "24:00", "period": "peak"}]}'::jsonb AS d;

SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) || '{"prices": {"peak": -1, "valley": 0.3}}')$$,
	'%prices.peak: price must not be negative%', 'negative price names prices.peak');
SELECT throws_ok($$SELECT prepaid.tariff_put((SELECT d FROM base) || '{"prices": {"peak": -1, "valley": 0.3}}')$$,
	'22023', NULL, 'negative price: SQLSTATE 22023');
SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) || '{"prices": {"peek": 1, "valley": 0.3}}')$$,
	'%prices.peek: unknown period "peek"%', 'unknown period name in prices');
SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) || '{"schedule": [
	{"from": "00:00", "to": "08:00", "period": "valley"}, {"from": "09:00", "to": "24:00", "period": "peak"}]}')$$,
	'%schedule%[1]%gap before this slot: nothing covers 08:00 to 09:00%', 'a gap names the slot');
SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) || '{"schedule": [
	{"from": "00:00", "to": "08:30", "period": "valley"}, {"from": "08:00", "to": "24:00", "period": "peak"}]}')$$,
	'%schedule%[1]%overlaps%', 'an overlap names the slot');
SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) || '{"schedule": [
	{"from": "00:00", "to": "08:00", "period": "valley"}, {"from": "08:00", "to": "24:00", "period": "shoulder"}]}')$$,
	'%schedule%[1].period: unknown period "shoulder"%', 'unknown period in a slot');
SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) || '{"schedule": [
	{"from": "00:00", "to": "08:00", "period": "valley"}, {"from": "08:00", "to": "23:00", "period": "peak"}]}')$$,
	'%schedule%', 'a day that does not reach 24:00 is refused');
SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) || '{"schedule": [
	{"from": "00:00", "to": "08:00", "period": "valley"}, {"from": "08:00", "to": "24:00", "period": "flat"}]}')$$,
	'%period "flat" is used but has no price%', 'a period without a price is refused');
SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) || '{"time_zone": "Mars/Olympus"}')$$,
	'%time_zone: unknown time zone "Mars/Olympus"%', 'unknown time zone');
SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) || '{"registers": ["peak", "noon"]}')$$,
	'%registers[1]: unknown period "noon"%', 'unknown register period');
SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) - 'schedule' || '{"seasons": [
	{"name": "a", "from": "01-01", "to": "06-30", "schedule": [{"from": "00:00", "to": "24:00", "period": "peak"}]},
	{"name": "b", "from": "06-30", "to": "12-31", "schedule": [{"from": "00:00", "to": "24:00", "period": "peak"}]}]}')$$,
	'%06-30 is also in season%', 'overlapping seasons are refused');
SELECT throws_like($$SELECT prepaid.tariff_put((SELECT d FROM base) - 'schedule' || '{"seasons": [
	{"name": "a", "from": "01-01", "to": "06-29", "schedule": [{"from": "00:00", "to": "24:00", "period": "peak"}]},
	{"name": "b", "from": "07-01", "to": "12-31", "schedule": [{"from": "00:00", "to": "24:00", "period": "peak"}]}]}')$$,
	'%06-30 is in no season%', 'a day in no season is refused');
SELECT throws_like($$SELECT prepaid.tariff_put('[1, 2]')$$, '%the document must be a JSON object%',
	'a non-object document');
SELECT is((SELECT count(*) FROM prepaid.tariff WHERE name = 't-bad'), 0::bigint,
	'no failed document left anything behind');

-- versions: a price change never re-prices history
SELECT prepaid.tariff_put((SELECT d FROM base)) AS tid \gset
SELECT prepaid.tariff_put((SELECT d FROM base) - 'name' || jsonb_build_object('tariff_id', :tid,
	'valid_from', '2026-06-01', 'prices', '{"peak": 2, "valley": 0.5}'::jsonb)) AS tid2 \gset
SELECT is(:tid2::bigint, :tid::bigint, 'a new version keeps the tariff id');
SELECT results_eq(format($$SELECT prepaid.tou_price(%s, '2026-05-31 12:00Z', 'peak'),
								 prepaid.tou_price(%s, '2026-06-01 12:00Z', 'peak')$$, :tid, :tid),
	$$VALUES (1.000000::numeric, 2.000000::numeric)$$, 'old price before, new price from valid_from');
SELECT throws_like(format($$SELECT prepaid.tariff_put((SELECT d FROM base) - 'name' ||
	'{"tariff_id": %s, "valid_from": "2026-03-01"}')$$, :tid),
	'%valid_from: a new version must start after the latest one%', 'versions only move forward');
SELECT throws_like(format($$SELECT prepaid.tariff_put((SELECT d FROM base) - 'name' ||
	'{"tariff_id": %s, "valid_from": "2027-01-01", "time_zone": "Asia/Tokyo"}')$$, :tid),
	'%a new version cannot change the time zone%', 'a version cannot change the zone');

SELECT * FROM finish();
ROLLBACK;
