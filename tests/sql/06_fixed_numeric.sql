-- The numerics the C code builds (money in fen, energy in 1e-6 kWh, prices)
-- are made directly in numeric's stored form (extension/exact.c); each must
-- be the very value, scale and bytes PostgreSQL's own arithmetic makes.
BEGIN;
SELECT plan(4);

CREATE TEMP TABLE cases AS
SELECT v, s
  FROM (SELECT unnest(ARRAY[0, 1, -1, 9, 10, 99, 100, 9999, 10000, 10001, -10000, 12345678,
						   100000000, 1000000000000, -1000000000000, 123456789012345678,
						   9223372036854775807, -9223372036854775807, -9223372036854775808]::bigint[]) AS v
		UNION ALL
		-- every magnitude, both signs, some trailing zeros
		SELECT (sign * floor(random() * 10 ^ k) * 10 ^ z)::bigint
		  FROM generate_series(0, 15) k, generate_series(0, 3) z, (VALUES (1), (-1)) g(sign),
			   generate_series(1, 20) rep) vals,
	   generate_series(0, 16) s;

SELECT is((SELECT count(*) FROM cases WHERE prepaid._fixed_numeric(v, s) <> round(v::numeric / 10::numeric ^ s, s)),
	0::bigint, 'the value is value * 10^-scale');
SELECT is((SELECT count(*) FROM cases WHERE prepaid._fixed_numeric(v, s)::text <> round(v::numeric / 10::numeric ^ s, s)::text),
	0::bigint, 'the display scale is the scale');
SELECT is((SELECT count(*) FROM cases
			WHERE numeric_send(prepaid._fixed_numeric(v, s)) <> numeric_send(round(v::numeric / 10::numeric ^ s, s))
			   OR pg_column_size(prepaid._fixed_numeric(v, s)) <> pg_column_size(round(v::numeric / 10::numeric ^ s, s))),
	0::bigint, 'the stored digits, weight and size are numeric''s own');
SELECT throws_ok('SELECT prepaid._fixed_numeric(1, 17)', '22023', 'scale must be between 0 and 16', 'scale is checked');

SELECT * FROM finish();
ROLLBACK;
