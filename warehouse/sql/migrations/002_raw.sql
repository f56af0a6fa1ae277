-- Raw layer, one partition per NYSE session (session_date). No keys: partitions are replaced whole
-- (DELETE then INSERT in one transaction) and DuckDB's indexes would only slow the bulk inserts down.
CREATE TABLE raw.ticks (
    symbol VARCHAR NOT NULL,
    session_date DATE NOT NULL,
    ts TIMESTAMP_NS NOT NULL,      -- naive UTC
    seq BIGINT NOT NULL,           -- 0.. per (symbol, session_date) in ts order, ties in arrival order
    price DOUBLE NOT NULL,
    size DOUBLE NOT NULL,          -- 0 for index levels
    side TINYINT NOT NULL          -- tick rule: +1 uptick, -1 downtick, carried on zero ticks, 0 unknown
);

CREATE TABLE raw.quotes (
    symbol VARCHAR NOT NULL,
    session_date DATE NOT NULL,
    ts TIMESTAMP_NS NOT NULL,
    bid DOUBLE NOT NULL,
    ask DOUBLE NOT NULL,
    bid_size DOUBLE NOT NULL,
    ask_size DOUBLE NOT NULL
);

CREATE TABLE raw.quarantine (
    source VARCHAR NOT NULL,       -- market source name
    table_name VARCHAR NOT NULL,   -- 'ticks' or 'quotes'
    session_date DATE NOT NULL,
    symbol VARCHAR,                -- as received (may be the wrong symbol)
    ts TIMESTAMP,                  -- as received (may be NULL)
    reason VARCHAR NOT NULL,
    payload VARCHAR NOT NULL,      -- the rejected row as JSON
    quarantined_at TIMESTAMP NOT NULL
);
