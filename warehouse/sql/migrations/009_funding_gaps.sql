-- What a funding source asked for and did not get: a symbol with no funding row that day, or no ticker to price
-- its book. Replaced per UTC day with the day's other raw tables.
CREATE TABLE raw.funding_gaps (
    exchange VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    day DATE NOT NULL,
    reason VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
