-- Same-day option chains by the minute: every listed contract's quote, implied volatility and greeks, one
-- partition per session. Rows that break a quote rule (put-call parity, crossed quotes, monotone strikes, IV
-- bounds) go to raw.quarantine with table_name 'options_chain_1m' and a reason, never here.
CREATE TABLE core.options_chain_1m (
    contract VARCHAR NOT NULL,           -- OCC ticker, e.g. O:SPY240305C00470000
    underlying VARCHAR NOT NULL,
    session_date DATE NOT NULL,
    minute TIMESTAMP_NS NOT NULL,        -- the underlying bar's start (naive UTC); quoted at its close
    "right" VARCHAR NOT NULL,            -- C or P
    strike DOUBLE NOT NULL,
    minutes_to_expiry DOUBLE NOT NULL,   -- calendar minutes from the quote to the session's close
    spot DOUBLE NOT NULL,
    bid DOUBLE NOT NULL,
    ask DOUBLE NOT NULL,
    mid DOUBLE NOT NULL,
    iv DOUBLE NOT NULL,
    delta DOUBLE,                        -- NULL at expiry
    gamma DOUBLE,
    theta DOUBLE,                        -- per calendar day
    vega DOUBLE                          -- per volatility point
);
