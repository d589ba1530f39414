-- DL/T 645-2007 codec from SQL: decoding worked frames of shared/dlt645.md
-- (4.1 and 4.2) to jsonb with exact values, every error path with its
-- SQLSTATE and detail, and the encoders reproducing worked frames byte for
-- byte.
BEGIN;
SELECT plan(85);

-- the errdetail of a statement's error (pgTAP checks only the message)
CREATE FUNCTION pg_temp.err_detail(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	d text;
BEGIN
	EXECUTE sql;
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
	RETURN d;
END
$$;

CREATE FUNCTION pg_temp.err_hint(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	h text;
BEGIN
	EXECUTE sql;
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
	RETURN h;
END
$$;

-- ---------------------------------------------------------------- decoding

-- T12: a whole decoded reply
SELECT is(prepaid.dlt645_decode('\x680100000000006891083333343359B35544DC16'),
	'{"address": "000000000001", "control": 145, "function": "read", "function_code": 17,
	  "direction": "reply", "abnormal": false, "follow_up": false, "preamble": 0,
	  "di": "00010000", "di_name": "forward_active_total",
	  "values": {"forward_active_total_kwh": 112280.26}}'::jsonb,
	'T12 decodes to its address, control, function, DI and 112280.26 kWh');
SELECT is((prepaid.dlt645_decode('\x680100000000006891083333343359B35544DC16')
		   -> 'values' ->> 'forward_active_total_kwh'), '112280.26',
	'T12 value text is exact');
SELECT is((prepaid.dlt645_decode('\x680100000000006891083333343359B35544DC16')
		   -> 'values' -> 'forward_active_total_kwh')::numeric * 1000, 112280260.00,
	'T12 value is an exact numeric (Wh)');

-- T2 and T7, T14, 553668: small energies keep their two decimals
SELECT is(prepaid.dlt645_decode('\x680172007200006891083333343333333333E716') ->> 'address',
	'000072007201', 'T2 address as on the nameplate');
SELECT is(prepaid.dlt645_decode('\x680172007200006891083333343333333333E716') -> 'values' ->> 'forward_active_total_kwh',
	'0.00', 'T2 0.00 kWh');
SELECT is(prepaid.dlt645_decode('\x687602024702026891083333343335333333C916') -> 'values' ->> 'forward_active_total_kwh',
	'0.02', 'T7 0.02 kWh');
SELECT is(prepaid.dlt645_decode('\x681401003182216891083333343339333333F116') -> 'values' ->> 'forward_active_total_kwh',
	'0.06', 'T14 0.06 kWh');
SELECT is(prepaid.dlt645_decode('\x6825040302010068910833333433753945338B16'::bytea) -> 'values' ->> 'forward_active_total_kwh',
	'1206.42', '553668.com reply: 1206.42 kWh');

-- T6: four FE, frequency
SELECT is(prepaid.dlt645_decode('\xFEFEFEFE680051441811176891063533B33536834516') - 'function_code',
	'{"address": "171118445100", "control": 145, "function": "read", "direction": "reply",
	  "abnormal": false, "follow_up": false, "preamble": 4, "di": "02800002",
	  "di_name": "frequency", "values": {"frequency_hz": 50.03}}'::jsonb,
	'T6 with 4 FE: 50.03 Hz from 171118445100');

-- T13: a non-BCD address byte is kept raw
SELECT is(prepaid.dlt645_decode('\x6881040007213A68910733353535333333BA16') ->> 'address',
	'3A2107000481', 'T13 address with byte 3A renders as 3A2107000481');
SELECT is(prepaid.dlt645_decode('\x6881040007213A68910733353535333333BA16') -> 'values',
	'{"current_b_a": 0.000}', 'T13 phase B current 0.000 A');

-- T11: meter number
SELECT is(prepaid.dlt645_decode('\x6808020241220068910A353733373B35357455335116') -> 'values',
	'{"meter_number": "002241020208"}', 'T11 meter number 002241020208');

-- T17: vendor DI, raw data kept
SELECT is(prepaid.dlt645_decode('\xFEFEFEFE6866666666666668911F33335033650F9F6B33333333333333338733333343553533933933337538331516') - 'function_code' - 'preamble',
	'{"address": "666666666666", "control": 145, "function": "read", "direction": "reply",
	  "abnormal": false, "follow_up": false, "di": "001D0000", "di_name": null,
	  "data": "32DC6C380000000000000000540000001022020060060000420500"}'::jsonb,
	'T17 vendor DI 00 1D 00 00: no name, value bytes as hex');

-- requests
SELECT is(prepaid.dlt645_decode('\x68AAAAAAAAAAAA68110433333433AE16') - 'function_code' - 'preamble',
	'{"address": "AAAAAAAAAAAA", "control": 17, "function": "read", "direction": "request",
	  "abnormal": false, "follow_up": false, "di": "00010000", "di_name": "forward_active_total"}'::jsonb,
	'T1 read request to the wildcard address');
SELECT is(prepaid.dlt645_decode('\x680172007200006811043335C3332816') ->> 'di_name',
	'remaining_amount', 'C1 reads 00 90 02 00 remaining amount');
SELECT is(prepaid.dlt645_decode('\x6801720072000068110434343938A316'::bytea) ->> 'di_name',
	'daily_freeze_forward_active_block_prev1', 'C22 reads the last daily freeze block');
SELECT is(prepaid.dlt645_decode('\xFEFEFEFE68AAAAAAAAAAAA681300DF16') ->> 'function',
	'read_address', 'T8 is a read-address request');

-- prepaid values
SELECT is(prepaid.dlt645_decode('\x680172007200006891083335C33378563433E116') -> 'values',
	'{"remaining_amount_yuan": 123.45}', 'C2 remaining amount 123.45 yuan');
SELECT is(prepaid.dlt645_decode('\x680172007200006891083435C333333333337916') -> 'values',
	'{"overdraft_amount_yuan": 0.00}', 'C3 overdraft 0.00 yuan');

-- C12 block: total + T1..T4
SELECT results_eq(
	$$SELECT key, value FROM jsonb_each_text(prepaid.dlt645_decode(
		'\x680172007200006891183332343389674533333334333333353333333633896739335816') -> 'values') ORDER BY key$$,
	$$VALUES ('forward_active_t1_kwh', '100.00'), ('forward_active_t2_kwh', '200.00'),
			 ('forward_active_t3_kwh', '300.00'), ('forward_active_t4_kwh', '634.56'),
			 ('forward_active_total_kwh', '1234.56')$$,
	'C12 block: total 1234.56 and T1..T4');

-- C13: sign bit
SELECT is(prepaid.dlt645_decode('\x68017200720000689107333435356745B37D16') -> 'values',
	'{"current_a_a": -1.234}', 'C13 phase A current -1.234 A');

-- C14: maximum demand and its time
SELECT is(prepaid.dlt645_decode('\x6801720072000068910C333334348967454847534459D416'::bytea) -> 'values',
	'{"max_demand_forward_active_total_kw": 12.3456, "max_demand_forward_active_total_at": "2026-11-20 14:15"}',
	'C14 maximum demand 12.3456 kW at 2026-11-20 14:15');

-- C15: daily freeze time
SELECT is(prepaid.dlt645_decode('\x680172007200006891093433393833335744598116') -> 'values',
	'{"daily_freeze_time": "2026-11-24 00:00"}', 'C15 last daily freeze at 2026-11-24 00:00');

-- C6: status word 3 with bit names
SELECT is(prepaid.dlt645_decode('\x68017200720000689106363833378333DA16') -> 'values',
	'{"status_word_3": 80, "status_word_3_bits": ["relay_open", "relay_command_open"]}',
	'C6 status word 3: 0x0050 = relay open, command open');

-- abnormal replies
SELECT is(prepaid.dlt645_decode('\x6801720072000068D10135BC16') - 'function_code' - 'preamble',
	'{"address": "000072007201", "control": 209, "function": "read", "direction": "reply",
	  "abnormal": true, "follow_up": false, "error": 2, "error_bits": ["no_data"]}'::jsonb,
	'C4 abnormal read reply: SERR 02 no_data');
SELECT is(prepaid.dlt645_decode('\x6801720072000068DC0137C916') -> 'error_bits',
	'["unauthorized"]', 'C10 abnormal control reply: unauthorized');
SELECT is(prepaid.dlt645_decode('\x6801720072000068D40137C116') ->> 'error',
	'4', 'C19 write refused with SERR 04');

-- control, time sync, write, address replies
SELECT is(prepaid.dlt645_decode('\x68017200720000681C1035333333333333334E333333455844599C16') - 'function_code' - 'preamble',
	'{"address": "000072007201", "control": 28, "function": "control", "direction": "request",
	  "abnormal": false, "follow_up": false, "password": "02000000", "operator_code": "00000000",
	  "action": "permit_close", "n1": 27, "n2": 0, "valid_until": "2026-11-25 12:00:00"}'::jsonb,
	'C7 permit close, PA 02, valid until 2026-11-25 12:00:00');
SELECT is(prepaid.dlt645_decode('\x68111111111111681C1033333333333333334D3357744845384B5516') ->> 'valid_until',
	'2018-05-12 15:41:24', 'T18 trip valid until 2018-05-12 15:41:24');
SELECT is(prepaid.dlt645_decode('\x68111111111111689C00D216') ->> 'function',
	'control', 'T19 normal control reply');
SELECT is(prepaid.dlt645_decode('\x689999999999996808063863545744595716') ->> 'time',
	'2026-11-24 21:30:05', 'C11 broadcast time sync 2026-11-24 21:30:05');
SELECT is(prepaid.dlt645_decode('\x68017200720000681410344333373533333333333333338333337016') -> 'values',
	'{"alarm_amount_1_yuan": 50.00}', 'C17 writes alarm amount 1 = 50.00 yuan');
SELECT is(prepaid.dlt645_decode('\x68017200720000681410344333373533333333333333338333337016') ->> 'password',
	'02000000', 'C17 with password level 02');
SELECT is(prepaid.dlt645_decode('\x6801720072000068141034433337CB33333333333333DE0022341E16') - 'function_code' - 'preamble' - 'control',
	'{"address": "000072007201", "function": "write", "direction": "request", "abnormal": false,
	  "follow_up": false, "di": "04001001", "di_name": "alarm_amount_1", "password": "98000000",
	  "operator_code": "00000000", "data": "ABCDEF01"}'::jsonb,
	'a write at level 98 carries ciphertext: shown as data, not decoded');
SELECT is(prepaid.dlt645_decode('\x6801720072000068930634A533A533336516') ->> 'meter_address',
	'000072007201', 'C16 read-address reply carries 000072007201');
SELECT is(prepaid.dlt645_decode('\x680100000000006893063433333333339D16') ->> 'meter_address',
	'000000000001', 'T9 read-address reply carries 000000000001');
SELECT is(prepaid.dlt645_decode('\x680172007200006894004916') ->> 'direction',
	'reply', 'C18 write acknowledged');

-- ---------------------------------------------------------------- errors

SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x680172007200006891083333343333333333E816')$$,
	'XX001', 'invalid DL/T 645 frame: checksum mismatch', 'T2 with checksum E8: data_corrupted');
SELECT is(pg_temp.err_detail($$SELECT prepaid.dlt645_decode('\x680172007200006891083333343333333333E816')$$),
	'Byte 18 is E8; the sum of bytes 0..17 is E7.', '... the detail names the byte and the sum');
SELECT is(pg_temp.err_detail($$SELECT prepaid.dlt645_decode('\xFEFE680172007200006891083333343333333333E816')$$),
	'Byte 20 is E8; the sum of bytes 2..19 is E7.', '... offsets count the FE bytes');
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x')$$,
	'22P03', 'invalid DL/T 645 frame: frame is empty', 'an empty frame');
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\xFEFEFEFE')$$,
	'22P03', 'invalid DL/T 645 frame: frame is empty', 'only a preamble');
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x12680172')$$,
	'22P03', 'invalid DL/T 645 frame: missing start byte', 'no 68 first');
SELECT is(pg_temp.err_detail($$SELECT prepaid.dlt645_decode('\xFE12680172')$$),
	'Byte 1 is 12; a frame starts with 68 after any FE preamble bytes.', '... detail');
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x6801720072000068910833333433')$$,
	'22P03', 'invalid DL/T 645 frame: frame is truncated', 'a truncated frame');
SELECT is(pg_temp.err_detail($$SELECT prepaid.dlt645_decode('\x6801720072000068910833333433')$$),
	'The frame starting at byte 0 needs 20 bytes (L = 8) but only 14 are present.', '... detail');
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x6801720072000067910833333433')$$,
	'22P03', 'invalid DL/T 645 frame: missing second start byte', 'no 68 at byte 7');
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x68017200720000689C005117')$$,
	'22P03', 'invalid DL/T 645 frame: missing end byte', 'end byte 17');
SELECT is(pg_temp.err_detail($$SELECT prepaid.dlt645_decode('\x68017200720000689C005117')$$),
	'Byte 11 is 17; the end byte after the checksum must be 16.', '... detail');
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x68017200720000689C0051160000')$$,
	'22P03', 'invalid DL/T 645 frame: trailing bytes after the frame', 'two frames or junk after one');
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x6867452301000068110244E9E016')$$,
	'22P03', 'invalid DL/T 645 frame: data length does not fit the function',
	'4.3 "1997" frame: a read with a 2-byte DI');
SELECT is(pg_temp.err_detail($$SELECT prepaid.dlt645_decode('\x6867452301000068110244E9E016')$$),
	'The data length L (byte 9) is 2; a request frame needs at least 4 data bytes.', '... detail');
-- a reply whose energy bytes are not BCD (C2 with 78 -> 6D: plain 3A)
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x68017200720000689108333334336D5634334516')$$,
	'22P03', 'invalid DL/T 645 frame: invalid BCD digits', 'a non-BCD value byte');
SELECT is(pg_temp.err_detail($$SELECT prepaid.dlt645_decode('\x68017200720000689108333334336D5634334516')$$),
	'Byte 14 holds 3A after removing the 0x33 offset, which is not two BCD digits.', '... detail');
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x6801720072000068910733333433333333B316')$$,
	'22P03', 'invalid DL/T 645 frame: value length does not fit the data identifier',
	'3 value bytes for a 4-byte DI');
-- C7 valid until month 13
SELECT throws_ok($$SELECT prepaid.dlt645_decode('\x68017200720000681C1035333333333333334E333333455846599E16')$$,
	'22P03', 'invalid DL/T 645 frame: invalid date or time', 'a control frame valid until month 13');
SELECT is(pg_temp.err_detail($$SELECT prepaid.dlt645_decode('\x68017200720000681C1035333333333333334E333333455846599E16')$$),
	'Byte 24 holds month 13, which is out of range.', '... detail');

-- ---------------------------------------------------------------- encoders

SELECT is(prepaid.dlt645_encode_read('AAAAAAAAAAAA', '00010000'),
	'\xFEFEFEFE68AAAAAAAAAAAA68110433333433AE16'::bytea, 'read: T1 with four FE');
SELECT is(prepaid.dlt645_encode_read('002241020208', '04000402'),
	'\xFEFEFEFE68080202412200681104353733372A16'::bytea, 'read: T10 byte for byte');
SELECT is(prepaid.dlt645_encode_read('000072007201', '0001ff00'),
	'\xFEFEFEFE68017200720000681104333234339616'::bytea, 'read: C20 (lower-case DI accepted)');
SELECT is(prepaid.dlt645_encode_read('000072007201', '00900200'),
	'\xFEFEFEFE680172007200006811043335C3332816'::bytea, 'read: C1 remaining amount');
SELECT is(prepaid.dlt645_encode_relay('000072007201', 'permit_close', '2026-11-25 12:00:00+08'),
	'\xFEFEFEFE68017200720000681C1035333333333333334E333333455844599C16'::bytea,
	'relay: C7 permit close valid until 2026-11-25 12:00:00 Asia/Shanghai');
SELECT is(prepaid.dlt645_encode_relay('000072007201', 'trip', '2026-11-25 12:00:00+08'),
	'\xFEFEFEFE68017200720000681C1035333333333333334D333333455844599B16'::bytea, 'relay: C8 trip');
SELECT is(prepaid.dlt645_encode_relay('000072007201', 'open', '2026-11-25 04:00:00+00'),
	'\xFEFEFEFE68017200720000681C1035333333333333334D333333455844599B16'::bytea,
	'relay: open is trip; the instant is rendered in Asia/Shanghai');
SELECT is(prepaid.dlt645_encode_relay('111111111111', 'trip', '2018-05-12 15:41:24+08', '00000000'),
	'\xFEFEFEFE68111111111111681C1033333333333333334D3357744845384B5516'::bytea,
	'relay: T18 (PA 00) byte for byte');
SELECT is(prepaid.dlt645_encode_relay('000072007201', 'permit_close', '2026-11-25 12:00:00.75+08'),
	prepaid.dlt645_encode_relay('000072007201', 'permit_close', '2026-11-25 12:00:00+08'),
	'relay: fractions of a second are dropped');
SET LOCAL timezone = 'America/New_York';
SELECT is(prepaid.dlt645_encode_relay('000072007201', 'permit_close', '2026-11-25 12:00:00+08'),
	'\xFEFEFEFE68017200720000681C1035333333333333334E333333455844599C16'::bytea,
	'relay: the session time zone does not matter');
SELECT is(prepaid.dlt645_decode(prepaid.dlt645_encode_relay('000072007201', 'keep_power_on',
		'2026-11-25 12:00:00+00', '04123456', '0000ABCD', 'UTC')) - 'function_code' - 'preamble' - 'control',
	'{"address": "000072007201", "function": "control", "direction": "request",
	  "abnormal": false, "follow_up": false, "password": "04123456", "operator_code": "0000ABCD",
	  "action": "keep_power_on", "n1": 58, "n2": 0, "valid_until": "2026-11-25 12:00:00"}'::jsonb,
	'relay: keep_power_on with password, operator code and zone UTC round-trips');
RESET timezone;
SELECT is(prepaid.dlt645_encode_time_sync('2026-11-24 21:30:05+08'),
	'\xFEFEFEFE689999999999996808063863545744595716'::bytea, 'time sync: C11 byte for byte');
SELECT is(prepaid.dlt645_encode_time_sync('2026-11-24 13:30:05+00', 'UTC') ,
	'\xFEFEFEFE689999999999996808063863465744594916'::bytea, 'time sync in another zone');

SELECT throws_ok($$SELECT prepaid.dlt645_encode_read('00007200720', '00010000')$$,
	'22023', 'invalid meter address "00007200720"', 'an 11-digit address');
SELECT is(pg_temp.err_hint($$SELECT prepaid.dlt645_encode_read('00007200720', '00010000')$$),
	'Write the 12 digits of the nameplate, e.g. 000072007201, or AAAAAAAAAAAA for whichever meter answers on the line.',
	'... with a hint');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_read('0000720072AB', '00010000')$$,
	'22023', 'invalid meter address "0000720072AB"', 'letters in an address');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_read('999999999999', '00010000')$$,
	'22023', '999999999999 is the broadcast address', 'a read cannot be broadcast');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_read('000072007201', '00 01 00 00')$$,
	'22023', 'invalid data identifier "00 01 00 00"', 'a DI with spaces');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_relay('AAAAAAAAAAAA', 'trip', now())$$,
	'22023', 'a control command needs the meter''s own address', 'no relay command to the wildcard');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_relay('000072007201', 'explode', now())$$,
	'22023', 'unknown relay action "explode"', 'an unknown action');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_relay('000072007201', 'trip', now(), '0200000')$$,
	'22023', 'invalid password "0200000"', 'a 7-digit password');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_relay('000072007201', 'trip', now(), '02000000', 'xyz')$$,
	'22023', 'invalid operator code "xyz"', 'a bad operator code');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_relay('000072007201', 'trip', now(), '98000000')$$,
	'0A000', 'password level 98 needs the meter''s security module', 'ESAM levels are refused');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_relay('000072007201', 'trip', '2100-01-01 00:00+08')$$,
	'22008', 'valid_until must lie in the years 2000 to 2099', 'a deadline past the meter''s century');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_relay('000072007201', 'trip', 'infinity')$$,
	'22023', 'valid_until must be finite', 'an infinite deadline');
SELECT throws_ok($$SELECT prepaid.dlt645_encode_time_sync(now(), 'Mars/Olympus')$$,
	'22023', NULL, 'an unknown time zone');

-- ---------------------------------------------------------------- catalog

SELECT results_eq(
	$$SELECT p.proname::text COLLATE "default", p.provolatile::text, p.proisstrict, p.proparallel::text
	    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	   WHERE n.nspname = 'prepaid' AND p.proname LIKE 'dlt645%' ORDER BY 1$$,
	$$VALUES ('dlt645_decode', 'i', true, 's'), ('dlt645_encode_read', 'i', true, 's'),
			 ('dlt645_encode_relay', 'i', true, 's'), ('dlt645_encode_time_sync', 'i', true, 's')$$,
	'all four are IMMUTABLE STRICT PARALLEL SAFE');
SELECT ok(prepaid.dlt645_decode(NULL) IS NULL AND prepaid.dlt645_encode_read(NULL, '00010000') IS NULL,
	'NULL in, NULL out');

SELECT * FROM finish();
ROLLBACK;
