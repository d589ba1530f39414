-- Capacity (demand) charge rules (F10, F19), kept as data: one rule per
-- customer and starting month, in force until the customer's next rule.
--   max_demand       the month's maximum 15-minute demand x price (yuan/kW)
--   contract_demand  the contracted demand x price; demand above 105 % of the
--                    contract is charged at double price on the excess; a
--                    contract may not be below 40 % of the installed capacity
--   transformer      the installed transformer capacity x price (yuan/kVA)
-- The reports (api.capacity_report, api.capacity_meter) apply them.

CREATE TABLE prepaid.capacity_rule (
	property_id   bigint NOT NULL,
	customer_id   bigint NOT NULL,
	valid_from    date NOT NULL,         -- first month the rule applies to (day 1)
	basis         text NOT NULL CHECK (basis IN ('max_demand', 'contract_demand', 'transformer')),
	price         numeric(10,4) NOT NULL CHECK (price >= 0),
	installed_kva numeric(10,1) CHECK (installed_kva > 0),
	contract_kw   numeric(10,1) CHECK (contract_kw > 0),
	note          text,
	created_at    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (property_id, customer_id, valid_from),
	FOREIGN KEY (property_id, customer_id) REFERENCES prepaid.customer (property_id, customer_id)
);
COMMENT ON TABLE prepaid.capacity_rule IS
	'capacity-charge rule per customer from a month on: max_demand, contract_demand or transformer';
COMMENT ON COLUMN prepaid.capacity_rule.price IS
	'yuan per kW (demand bases) or per kVA (transformer) and month';

CREATE FUNCTION prepaid._capacity_rule_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.valid_from <> date_trunc('month', NEW.valid_from)::date THEN
		RAISE EXCEPTION 'a capacity rule starts on the first day of a month'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Got %s.', NEW.valid_from),
				  HINT = format('Use %s.', date_trunc('month', NEW.valid_from)::date);
	END IF;
	IF NEW.basis = 'contract_demand' AND (NEW.contract_kw IS NULL OR NEW.installed_kva IS NULL) THEN
		RAISE EXCEPTION 'a contract-demand rule needs contract_kw and installed_kva'
			USING ERRCODE = 'not_null_violation',
				  HINT = 'The contract is checked against the installed capacity.';
	END IF;
	IF NEW.basis = 'transformer' AND NEW.installed_kva IS NULL THEN
		RAISE EXCEPTION 'a transformer-capacity rule needs installed_kva'
			USING ERRCODE = 'not_null_violation';
	END IF;
	IF NEW.basis = 'contract_demand' AND NEW.contract_kw < 0.4 * NEW.installed_kva THEN
		RAISE EXCEPTION 'contracted demand must be at least 40%% of the installed capacity'
			USING ERRCODE = 'check_violation',
				  DETAIL = format('Contract %s kW is below 40%% of %s kVA (%s kW).',
								  NEW.contract_kw, NEW.installed_kva, 0.4 * NEW.installed_kva),
				  HINT = format('Contract at least %s kW, or bill by transformer capacity.',
								0.4 * NEW.installed_kva);
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER capacity_rule_check BEFORE INSERT OR UPDATE ON prepaid.capacity_rule
	FOR EACH ROW EXECUTE FUNCTION prepaid._capacity_rule_check();
