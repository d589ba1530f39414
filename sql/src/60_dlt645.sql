-- DL/T 645-2007 frames from SQL (extension/dlt645_sql.c over codec/dlt645.c):
-- decode a frame to jsonb with exact values, and build the frames the
-- platform sends: reads, relay/alarm/keep-power control, broadcast time sync.
-- Encoded frames start with four FE preamble bytes. Meter clocks run local
-- time, so the encoders take the meter's time zone (default Asia/Shanghai).

CREATE FUNCTION prepaid.dlt645_decode(frame bytea)
RETURNS jsonb
	AS 'MODULE_PATHNAME', 'prepaid_dlt645_decode'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION prepaid.dlt645_decode(bytea) IS
	'decode one DL/T 645-2007 frame (FE preamble allowed) to jsonb: address, control, function, DI, exact values, error bits';

CREATE FUNCTION prepaid.dlt645_encode_read(address text, di text)
RETURNS bytea
	AS 'MODULE_PATHNAME', 'prepaid_dlt645_encode_read'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION prepaid.dlt645_encode_read(text, text) IS
	'read-data request (0x11) for a 12-digit meter address (or AAAAAAAAAAAA) and an 8-hex-digit DI, DI3 first';

CREATE FUNCTION prepaid.dlt645_encode_relay(address text, action text, valid_until timestamptz,
											 password text DEFAULT '02000000',
											 operator_code text DEFAULT '00000000',
											 tz text DEFAULT 'Asia/Shanghai')
RETURNS bytea
	AS 'MODULE_PATHNAME', 'prepaid_dlt645_encode_relay'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION prepaid.dlt645_encode_relay(text, text, timestamptz, text, text, text) IS
	'relay/alarm/keep-power control (0x1C): trip|open, permit_close, close, alarm_on, alarm_off, keep_power_on, keep_power_off; valid_until in the meter''s zone tz';

CREATE FUNCTION prepaid.dlt645_encode_time_sync(t timestamptz, tz text DEFAULT 'Asia/Shanghai')
RETURNS bytea
	AS 'MODULE_PATHNAME', 'prepaid_dlt645_encode_time_sync'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION prepaid.dlt645_encode_time_sync(timestamptz, text) IS
	'broadcast time sync (0x08) to 999999999999 with t as the meter''s local time in zone tz';
