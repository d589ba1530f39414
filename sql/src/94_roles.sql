-- Roles, the api schema, and who is calling (F21).
--
-- PostgREST connects as an authenticator role, verifies the JWT, switches to
-- the role its "role" claim names (SET LOCAL ROLE) and puts the claims into
-- request.jwt.claims. Our roles (cluster-wide, NOLOGIN, created once):
--   prepaid_admin     every property; reads everything, calls every api function
--   prepaid_operator  the property (or properties) of its property_id claim
--   prepaid_bi        read-only: the api views of its property_id claim
--   prepaid_payment   only api.payment_notify (payment callbacks, signed)
--   prepaid_ingest    the ingest daemon: insert readings and quarantine rows,
--                     read and update commands, update meter relay_actual /
--                     last_seen and gateway link state; nothing else
--   prepaid_anon      PostgREST's anonymous role: nothing at all
-- Grants and row-level security are set up last (99_rls.sql), over every
-- table that exists by then.

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['prepaid_admin', 'prepaid_operator', 'prepaid_bi', 'prepaid_payment',
							 'prepaid_ingest', 'prepaid_anon'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END
$$;

CREATE SCHEMA api;
COMMENT ON SCHEMA api IS 'PostgREST API of pg_prepaid: report views and checked write functions';

-- The property ids of the caller's claim property_id: a number, a numeric
-- string or an array of them; none when the claim is absent.
CREATE FUNCTION prepaid._jwt_property_ids() RETURNS bigint[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
DECLARE
	v_claim jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb -> 'property_id';
BEGIN
	IF v_claim IS NULL OR v_claim = 'null' THEN
		RETURN '{}';
	END IF;
	RETURN ARRAY(SELECT (x #>> '{}')::bigint
				   FROM jsonb_array_elements(CASE jsonb_typeof(v_claim) WHEN 'array' THEN v_claim
											 ELSE jsonb_build_array(v_claim) END) x);
EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
	RAISE EXCEPTION 'invalid property_id claim'
		USING ERRCODE = 'invalid_authorization_specification',
			  DETAIL = format('Got %s.', v_claim),
			  HINT = 'The claim is a property id, or an array of them.';
END
$$;

-- The role the caller acts as. Inside a SECURITY DEFINER function
-- current_user is the owner, but the role set by SET ROLE (what PostgREST
-- does) is still the "role" setting; without SET ROLE it is the login role.
CREATE FUNCTION prepaid._caller() RETURNS name
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN current_setting('role') <> 'none' THEN current_setting('role')::name
				ELSE session_user END
$$;

-- Does the caller see every property (superuser or prepaid_admin)?
CREATE FUNCTION prepaid._is_admin() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = prepaid._caller()), false)
		   OR pg_catalog.pg_has_role(prepaid._caller(), 'prepaid_admin', 'MEMBER')
$$;

-- May the caller act on rows of this property? What every SECURITY DEFINER
-- api function asks before touching a row (they run as the owner, whom
-- row-level security does not restrict).
CREATE FUNCTION prepaid._may_act(p_property_id bigint) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT p_property_id IS NOT NULL
		   AND (prepaid._is_admin() OR p_property_id = ANY (prepaid._jwt_property_ids()))
$$;

-- The name written as "operator" of ledger entries made through the api:
-- the JWT subject (or email), else the role.
CREATE FUNCTION prepaid._caller_name() RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
					nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email',
					prepaid._caller())
$$;

-- The daemon's inserts fire these triggers; they run as their owner so
-- that prepaid_ingest needs no rights on the tables they maintain
-- (settle_cursor, meter_latest, the rollups, quarantine moves). The C
-- insert triggers (extension/reading_accept.c) write meter_latest directly,
-- without permission checks, and call _reading_accept_rest for the rest.
ALTER FUNCTION prepaid._reading_accept_rest(bigint[], bigint[], timestamptz[]) SECURITY DEFINER;
ALTER FUNCTION prepaid._reading_latest_delete() SECURITY DEFINER;
ALTER FUNCTION prepaid._reading_rollup_delete() SECURITY DEFINER;
