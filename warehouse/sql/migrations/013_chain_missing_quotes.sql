-- Real option chains (market/chain_sources.py: Polygon, IBKR) keep a listed contract's minute without a quote as a
-- row with NULL bid, ask, mid and iv, never filled in, so the table shows which contract-minutes went unquoted (the
-- embedded chain quotes every one). iv is also NULL on a vendor's last bar, whose close is the expiry: no volatility
-- prices a quote there. volume: contracts traded in the minute where the vendor reports it (Polygon), else NULL.
ALTER TABLE core.options_chain_1m ALTER COLUMN bid DROP NOT NULL;
ALTER TABLE core.options_chain_1m ALTER COLUMN ask DROP NOT NULL;
ALTER TABLE core.options_chain_1m ALTER COLUMN mid DROP NOT NULL;
ALTER TABLE core.options_chain_1m ALTER COLUMN iv DROP NOT NULL;
ALTER TABLE core.options_chain_1m ADD COLUMN volume DOUBLE;
