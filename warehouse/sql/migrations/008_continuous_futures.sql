-- A futures root's continuous series, derived from its contracts' bars, and the rolls that built it.
CREATE TABLE core.continuous_bars_1m (
    root VARCHAR NOT NULL,           -- ES
    session_date DATE NOT NULL,
    minute TIMESTAMP NOT NULL,       -- bar start, naive UTC
    contract VARCHAR NOT NULL,       -- the contract this bar comes from (ESH24): series never mix contracts silently
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume DOUBLE NOT NULL,
    trade_count BIGINT NOT NULL,
    filled BOOLEAN NOT NULL,
    adjustment DOUBLE NOT NULL,      -- added to the contract's prices (0 unless back-adjusted)
    back_adjusted BOOLEAN NOT NULL
);

CREATE TABLE core.futures_rolls (
    root VARCHAR NOT NULL,
    roll_date DATE NOT NULL,         -- first session on the new contract
    from_contract VARCHAR NOT NULL,
    to_contract VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,           -- calendar | volume
    gap DOUBLE                       -- to_contract close - from_contract close on the session before the roll
);
