-- The ledger: every balance change is one append-only entry. The account
-- balance is maintained by a statement-level trigger from the inserted
-- entries, so balance = sum(ledger) holds at every commit whatever inserts
-- the entries; the same trigger runs the supply decision (cut-off, restore,
-- low-balance warning) in the same transaction. Entries are never updated
-- (except the invoiced mark) nor deleted.

CREATE TABLE prepaid.ledger (
	property_id       bigint NOT NULL,
	entry_id          bigint GENERATED ALWAYS AS IDENTITY,
	account_id        bigint NOT NULL,
	meter_id          bigint,
	kind              text NOT NULL CHECK (kind IN (
		'recharge_platform', 'recharge_wechat', 'recharge_alipay', 'reversal',
		'refund', 'energy', 'apportionment', 'property_fee', 'capacity_fee')),
	amount            numeric(14,2) NOT NULL,
	kwh               numeric(18,6),
	detail            jsonb,
	channel           text,
	external_id       text,
	reverses_entry_id bigint,
	period_from       timestamptz,
	period_to         timestamptz,
	operator          text,
	note              text,
	created_at        timestamptz NOT NULL DEFAULT now(),
	invoiced_at       timestamptz,
	invoice_no        text,
	-- entry_id first: receipts, reversals and invoices find an entry by its
	-- global id alone, and one index serves them and the key (an energy entry
	-- is written into three indexes, not four: see docs/performance.md)
	PRIMARY KEY (entry_id, property_id),
	CHECK (amount <> 0 OR kind = 'energy'),
	CHECK ((channel IS NULL) = (external_id IS NULL))
);
CREATE INDEX ledger_account ON prepaid.ledger (property_id, account_id, entry_id);
CREATE INDEX ledger_meter ON prepaid.ledger (property_id, meter_id, created_at);
CREATE UNIQUE INDEX ledger_idempotency ON prepaid.ledger (property_id, channel, external_id)
	WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX ledger_reversal_once ON prepaid.ledger (property_id, reverses_entry_id)
	WHERE reverses_entry_id IS NOT NULL;
COMMENT ON TABLE prepaid.ledger IS
	'append-only money journal; amount > 0 credits the account, < 0 debits it';
COMMENT ON COLUMN prepaid.ledger.detail IS
	'for energy entries: {"readings": n, "periods": [{"period", "kwh", "price", "amount"}]}; the interval is period_from .. period_to';

CREATE FUNCTION prepaid._ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE'
	   AND (to_jsonb(NEW) - 'invoiced_at' - 'invoice_no') = (to_jsonb(OLD) - 'invoiced_at' - 'invoice_no')
	   AND OLD.invoiced_at IS NULL THEN
		RETURN NEW;		-- marking an entry invoiced is the only change allowed
	END IF;
	RAISE EXCEPTION 'ledger entries are append-only'
		USING ERRCODE = 'object_not_in_prerequisite_state',
			  DETAIL = format('%s of entry %s was refused.', TG_OP, coalesce(OLD.entry_id::text, '?')),
			  HINT = 'Correct an entry with prepaid.reverse(); only the invoiced mark can be set, once.';
END
$$;
CREATE TRIGGER ledger_no_update BEFORE UPDATE OR DELETE ON prepaid.ledger
	FOR EACH ROW EXECUTE FUNCTION prepaid._ledger_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON prepaid.ledger
	FOR EACH STATEMENT EXECUTE FUNCTION prepaid._ledger_append_only();

-- Direct changes to a balance are refused: only ledger entries move it.
CREATE FUNCTION prepaid._account_balance_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'account balance can only change through ledger entries'
		USING ERRCODE = 'object_not_in_prerequisite_state',
			  HINT = 'Use prepaid.recharge(), prepaid.refund(), prepaid.deduct() or prepaid.reverse().';
END
$$;
CREATE TRIGGER account_balance_guard BEFORE UPDATE OF balance ON prepaid.account
	FOR EACH ROW WHEN (pg_trigger_depth() = 0 AND OLD.balance IS DISTINCT FROM NEW.balance)
	EXECUTE FUNCTION prepaid._account_balance_guard();
CREATE TRIGGER account_balance_guard_insert BEFORE INSERT ON prepaid.account
	FOR EACH ROW WHEN (NEW.balance <> 0)
	EXECUTE FUNCTION prepaid._account_balance_guard();

-- Balance maintenance and supply decision for every inserted batch of entries
-- (extension/ledger_balance.c): the entries' amounts are summed per account
-- and the accounts updated in key order, so two statements that move many
-- balances (a settlement run, a bulk deduction, payments in one transaction
-- of a caller's) queue instead of deadlocking: the only plan is a nested loop
-- over the sorted sums (hash and merge joins are off for this function),
-- which locks and updates each account as it comes, in one pass. Accounts
-- that crossed their warning level or their cut-off go to _supply_decide.
CREATE FUNCTION prepaid._ledger_after_insert() RETURNS trigger
	AS 'MODULE_PATHNAME', 'prepaid_ledger_after_insert' LANGUAGE C
	SET search_path = pg_catalog, prepaid, pg_temp
	SET enable_hashjoin = off SET enable_mergejoin = off;

-- Every account whose balance differs from the sum of its entries, and every
-- entry pointing at no account. Always empty.
CREATE FUNCTION prepaid.verify_ledger()
RETURNS TABLE (property_id bigint, account_id bigint, balance numeric, ledger_sum numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, prepaid, pg_temp AS $$
	SELECT coalesce(a.property_id, l.property_id), coalesce(a.account_id, l.account_id),
		   a.balance, coalesce(l.total, 0)
	  FROM prepaid.account a
	  FULL JOIN (SELECT property_id, account_id, sum(amount) AS total
				   FROM prepaid.ledger GROUP BY 1, 2) l
		ON l.property_id = a.property_id AND l.account_id = a.account_id
	 WHERE a.account_id IS NULL OR a.balance IS DISTINCT FROM coalesce(l.total, 0)
$$;
CREATE TRIGGER ledger_balance AFTER INSERT ON prepaid.ledger
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION prepaid._ledger_after_insert();
