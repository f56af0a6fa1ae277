-- Core layer: 1-minute bars on the session's calendar minutes and the features computed from them.
CREATE TABLE core.bars_1m (
    symbol VARCHAR NOT NULL,
    session_date DATE NOT NULL,
    minute TIMESTAMP NOT NULL,     -- bar start, naive UTC
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume DOUBLE NOT NULL,
    vwap DOUBLE NOT NULL,          -- TWAP when the minute has no volume (index levels)
    trade_count BIGINT NOT NULL,
    buy_volume DOUBLE NOT NULL,
    sell_volume DOUBLE NOT NULL,
    mean_spread DOUBLE NOT NULL,   -- dollars; carried from the last quoted minute; 0 for a symbol without quotes
    mean_mid DOUBLE,               -- carried like mean_spread; NULL for a symbol without quotes (index)
    filled BOOLEAN NOT NULL        -- no trades in the minute: o=h=l=c=previous close, volume 0
);

-- One column per entry of warehouse.features.FEATURES, in that order (a test checks they agree).
CREATE TABLE core.features_1m (
    symbol VARCHAR NOT NULL,
    session_date DATE NOT NULL,
    minute TIMESTAMP NOT NULL,
    spread_bps DOUBLE,
    spread_z_30 DOUBLE,
    imbalance_1m DOUBLE,
    imbalance_3m DOUBLE,
    imbalance_5m DOUBLE,
    imbalance_day DOUBLE,
    volume_z_30 DOUBLE,
    trade_count_z_30 DOUBLE,
    vwap_dev DOUBLE,
    range_pct DOUBLE,
    close_location DOUBLE,
    realized_vol_5 DOUBLE,
    realized_vol_15 DOUBLE,
    vol_ratio_5_30 DOUBLE,
    filled_frac_5 DOUBLE,
    ret_1m DOUBLE,
    ret_3m DOUBLE,
    ret_5m DOUBLE,
    ret_10m DOUBLE,
    ret_15m DOUBLE,
    ret_30m DOUBLE,
    ret_open DOUBLE,
    sma_5_20 DOUBLE,
    rsi_14 DOUBLE,
    zscore_20 DOUBLE,
    efficiency_10 DOUBLE,
    range_pos_30 DOUBLE,
    tod_frac DOUBLE,
    tod_sin DOUBLE,
    tod_cos DOUBLE,
    to_close DOUBLE
);
