-- Live sources (issue 4). A vendor's own 1-minute bars (Polygon aggregates, IB historical bars, a user's bar
-- files) kept beside the ticks, partitioned like them, to cross-check the bars we build from ticks.
CREATE TABLE raw.minute_bars (
    symbol VARCHAR NOT NULL,
    session_date DATE NOT NULL,
    ts TIMESTAMP_NS NOT NULL,      -- bar START, naive UTC (Polygon's `t`); no row for a minute without trades
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume DOUBLE NOT NULL,        -- fractional on Polygon
    vwap DOUBLE,                   -- NULL where the vendor gives none
    trade_count BIGINT             -- NULL where the vendor gives none
);

-- Sessions a source had nothing for (a missing day on Polygon, an explicit "no data" from IB, no file): the
-- stored ticks of that symbol and session are left as they were, and the gap is reported with the vendor's reason.
CREATE TABLE raw.ingest_gaps (
    source VARCHAR NOT NULL,
    session_date DATE NOT NULL,
    symbol VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
