-- Funding-rate arbitrage family (issue 3). Crypto trades 24/7: partitions are UTC calendar days (`day`).
-- No keys, like the intraday raw layer: partitions are replaced whole in one transaction.
CREATE TABLE raw.funding_rates (
    exchange VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    day DATE NOT NULL,                 -- UTC day of funding_time
    funding_time TIMESTAMP_NS NOT NULL, -- naive UTC; the settlement that ENDS the interval
    rate DOUBLE NOT NULL,              -- per interval, as a fraction (0.0001 = 0.01%)
    interval_hours INTEGER NOT NULL    -- length of the interval ending at funding_time: 1, 2, 4 or 8
);

CREATE TABLE raw.mark_prices (
    exchange VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    day DATE NOT NULL,
    ts TIMESTAMP_NS NOT NULL,
    mark DOUBLE NOT NULL,
    bid DOUBLE NOT NULL,
    ask DOUBLE NOT NULL,
    volume_24h DOUBLE                  -- USD; NULL where the venue does not report it
);

-- Every (snapshot ts, symbol, exchange pair) oriented long on the lower-APR leg, short on the higher.
-- `source` tells rows built from raw.* ('warehouse') from imported files ('csv:<file name>').
CREATE TABLE core.funding_opportunities (
    day DATE NOT NULL,
    ts TIMESTAMP_NS NOT NULL,
    symbol VARCHAR NOT NULL,
    long_exchange VARCHAR NOT NULL,
    short_exchange VARCHAR NOT NULL,
    long_rate DOUBLE NOT NULL,         -- latest rate published at or before ts (per the leg's interval)
    short_rate DOUBLE NOT NULL,
    long_interval_h INTEGER,           -- NULL when an imported file does not say
    short_interval_h INTEGER,
    apr DOUBLE NOT NULL,               -- short_apr - long_apr, each leg annualised with its own interval
    spread_bps DOUBLE,                 -- sum of both legs' (ask - bid) / mid in bps: a round trip's spread cost
    volume_24h DOUBLE,                 -- the smaller leg's
    source VARCHAR NOT NULL
);
