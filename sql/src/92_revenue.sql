-- Finance rollups (F12, F18). Settlement writes about one ledger entry per
-- meter per reading interval (millions a day on a large site), so revenue
-- reports read prepaid.revenue_daily, kept by a statement-level trigger on
-- the (append-only) ledger: entries, amount and kWh per property, local day,
-- kind and collection account. Additive, so exact at every commit.
--
-- The collection account of an entry is fixed when it is written, in
-- prepaid.ledger_collection: for a recharge paid through a payment order,
-- the order's account; for any other recharge or a refund, the account the
-- money account is bound to when its channel is the entry's (platform cash
-- at the desk, wechat, alipay), else the property's first account of that
-- channel, else the bound one; a reversal inherits the account of the entry
-- it reverses. Entries that move no money through a merchant account
-- (energy, deductions) have none.

CREATE TABLE prepaid.ledger_collection (
	property_id           bigint NOT NULL,
	entry_id              bigint NOT NULL,
	collection_account_id bigint NOT NULL,
	PRIMARY KEY (property_id, entry_id),
	FOREIGN KEY (property_id, collection_account_id)
		REFERENCES prepaid.collection_account (property_id, collection_account_id)
);
COMMENT ON TABLE prepaid.ledger_collection IS
	'collection (merchant) account of each recharge, refund and reversal, fixed when written';

CREATE TABLE prepaid.revenue_daily (
	property_id           bigint NOT NULL REFERENCES prepaid.property,
	day                   date NOT NULL,     -- local day of the entries (property time zone)
	kind                  text NOT NULL,
	collection_account_id bigint,
	entries               bigint NOT NULL,
	amount                numeric(16,2) NOT NULL,
	kwh                   numeric(20,6) NOT NULL,
	-- concurrent writers (settlement's workers, payments) add to different
	-- rows of the same day, so one does not wait for the other's commit:
	-- the totals are the sum over the slots (api.revenue_daily sums them)
	slot                  smallint NOT NULL DEFAULT 0,
	UNIQUE NULLS NOT DISTINCT (property_id, day, kind, collection_account_id, slot)
);
COMMENT ON TABLE prepaid.revenue_daily IS
	'ledger totals per property, local day, kind and collection account, in up to 16 slots to be summed (maintained by a trigger)';

-- Money searches that do not go by meter or account: recharges, refunds,
-- reversals and fees by date, and anything an operator wrote. Energy entries
-- (the bulk) are found by meter (ledger_meter).
CREATE INDEX ledger_money ON prepaid.ledger (property_id, created_at) WHERE kind <> 'energy';
CREATE INDEX ledger_operator ON prepaid.ledger (property_id, operator, created_at)
	WHERE operator IS NOT NULL;

CREATE FUNCTION prepaid._ledger_rollup() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, prepaid, pg_temp AS $$
BEGIN
	WITH coll AS (
		INSERT INTO prepaid.ledger_collection (property_id, entry_id, collection_account_id)
		SELECT n.property_id, n.entry_id, c.id
		  FROM new_rows n
		 CROSS JOIN LATERAL (SELECT CASE
				WHEN n.kind = 'reversal' THEN
					(SELECT lc.collection_account_id FROM prepaid.ledger_collection lc
					  WHERE lc.property_id = n.property_id AND lc.entry_id = n.reverses_entry_id)
				ELSE coalesce(
					(SELECT o.collection_account_id FROM prepaid.payment_order o
					  WHERE o.order_no = n.external_id AND o.property_id = n.property_id
						AND n.kind LIKE 'recharge\_%'),
					(SELECT ca.collection_account_id
					   FROM prepaid.account a
					   JOIN prepaid.collection_account ca ON ca.property_id = a.property_id
					  WHERE a.property_id = n.property_id AND a.account_id = n.account_id
						AND ca.channel = CASE WHEN n.kind = 'refund' THEN split_part(n.channel, ':', 2)
											  ELSE substr(n.kind, 10) END
					  ORDER BY ca.collection_account_id = a.collection_account_id DESC,
							   ca.collection_account_id
					  LIMIT 1),
					(SELECT a.collection_account_id FROM prepaid.account a
					  WHERE a.property_id = n.property_id AND a.account_id = n.account_id))
				END AS id) c
		 WHERE n.kind IN ('recharge_platform', 'recharge_wechat', 'recharge_alipay', 'refund',
						  'reversal')
		   AND c.id IS NOT NULL
		RETURNING property_id, entry_id, collection_account_id)
	-- entries are grouped first (created_at is the writing transaction's
	-- start, the same for a whole statement, so a settlement run is a few
	-- groups) and the local day is computed per group, not per entry
	INSERT INTO prepaid.revenue_daily AS x (property_id, day, kind, collection_account_id,
											entries, amount, kwh, slot)
	SELECT g.property_id, (g.created_at AT TIME ZONE p.time_zone)::date, g.kind,
		   g.collection_account_id, sum(g.entries), sum(g.amount), sum(g.kwh),
		   -- the parallel settlement gives each of its processes a slot
		   -- (pg_prepaid.rollup_slot); anyone else takes one by process id
		   CASE WHEN current_setting('pg_prepaid.rollup_slot', true) ~ '^[0-9]+$'
				THEN current_setting('pg_prepaid.rollup_slot', true)::smallint
				ELSE pg_backend_pid() % 16 END
	  FROM (SELECT n.property_id, n.created_at, n.kind, c.collection_account_id,
				   count(*) AS entries, sum(n.amount) AS amount,
				   coalesce(sum(n.kwh), 0) AS kwh
			  FROM new_rows n
			  LEFT JOIN coll c ON c.property_id = n.property_id AND c.entry_id = n.entry_id
			 GROUP BY 1, 2, 3, 4) g
	  JOIN prepaid.property p ON p.property_id = g.property_id
	 GROUP BY 1, 2, 3, 4
	 ORDER BY 1, 2, 3, 4
	ON CONFLICT (property_id, day, kind, collection_account_id, slot) DO UPDATE
	   SET entries = x.entries + excluded.entries, amount = x.amount + excluded.amount,
		   kwh = x.kwh + excluded.kwh;
	RETURN NULL;
END
$$;
-- fires after ledger_balance (name order)
CREATE TRIGGER ledger_rollup AFTER INSERT ON prepaid.ledger
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION prepaid._ledger_rollup();
