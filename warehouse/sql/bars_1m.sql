-- 1-minute bars of one session, on exactly the calendar's minutes. Four statements, run in order by
-- warehouse/bars.py (each begins with a "step" marker comment naming it):
--   trade_minutes / quote_minutes aggregate the day's ticks and quotes into small temp tables with plain
--   GROUP BYs (no window function ever touches a tick; run as separate statements they are ~1.5x faster
--   than as CTEs of one query), then `bars` lays them on the calendar grid, carrying prices and quotes
--   across minutes without trades (windows over ~390 rows per symbol).
-- Parameters: $session_date DATE. `bars` also reads _bars_grid (symbol, minute, fallback_spread, fallback_bps):
-- every calendar minute of each symbol's own session, and the spread its instrument's model assumes when the
-- symbol has no quote all day (a fixed amount, or basis points of the price), flagged in spread_modelled.
-- Minutes are bucketed on integer nanoseconds: make_timestamp(epoch_ns(ts) // 60000000000 * 60000000) is the
-- minute's start as a TIMESTAMP, exactly. date_trunc('minute', ts), time_bucket and ts::TIMESTAMP round a
-- TIMESTAMP_NS to microseconds first, which put every stamp from :59.9999995 on (Polygon's index levels at
-- 14:31:59.999999999) into the next minute. The divisor must stay an integer literal (60e9 is a DOUBLE and
-- rounds too); `//` truncates toward zero, which is the floor for every stamp after 1970.

-- step: trade_minutes
CREATE OR REPLACE TEMP TABLE _bars_trade_minutes AS
SELECT
    symbol,
    make_timestamp(epoch_ns(ts) // 60000000000 * 60000000) AS minute,
    arg_min(price, seq) AS open,
    max(price) AS high,
    min(price) AS low,
    arg_max(price, seq) AS close,
    sum(size) AS volume,
    sum(price * size) AS notional,
    sum(price) AS price_sum,
    count(*) AS trade_count,
    sum(size * (side = 1)::DOUBLE) AS buy_volume,
    sum(size * (side = -1)::DOUBLE) AS sell_volume
FROM raw.ticks
WHERE session_date = $session_date
GROUP BY ALL;

-- step: quote_minutes
CREATE OR REPLACE TEMP TABLE _bars_quote_minutes AS
SELECT
    symbol,
    make_timestamp(epoch_ns(ts) // 60000000000 * 60000000) AS minute,
    sum(ask - bid) AS spread_sum,
    sum(ask + bid) AS mid2_sum,
    count(*) AS quote_count
FROM raw.quotes
WHERE session_date = $session_date
GROUP BY ALL;

-- step: vendor_minutes
-- Sessions without a single tick but with the vendor's minute bars (an IB `ticks: false` backfill, a bars file):
-- their bars, with the fields a bar cannot carry left NULL.
CREATE OR REPLACE TEMP TABLE _bars_vendor_minutes AS
SELECT
    symbol,
    make_timestamp(epoch_ns(ts) // 60000000000 * 60000000) AS minute,  -- on a minute (validated)
    open,
    high,
    low,
    close,
    volume,
    vwap * volume AS notional,
    NULL::DOUBLE AS price_sum,
    trade_count,
    NULL::DOUBLE AS buy_volume,
    NULL::DOUBLE AS sell_volume
FROM raw.minute_bars
WHERE session_date = $session_date
  AND symbol NOT IN (SELECT DISTINCT symbol FROM _bars_trade_minutes);

-- step: bars
WITH
minutes AS (
    SELECT * FROM _bars_trade_minutes
    UNION ALL BY NAME
    SELECT * FROM _bars_vendor_minutes
),
joined AS (
    SELECT
        g.symbol,
        g.minute,
        g.fallback_spread,
        g.fallback_bps,
        g.built_from,
        t.* EXCLUDE (symbol, minute),
        q.spread_sum / q.quote_count AS spread,
        q.mid2_sum / (2 * q.quote_count) AS mid
    FROM _bars_grid AS g
    LEFT JOIN minutes AS t ON t.symbol = g.symbol AND t.minute = g.minute
    LEFT JOIN _bars_quote_minutes AS q ON q.symbol = g.symbol AND q.minute = g.minute
),
carried AS (
    SELECT
        *,
        -- Empty minutes take the previous close; empty minutes before the first trade take the first trade's price.
        coalesce(last_value(close IGNORE NULLS) OVER upto, first_value(open IGNORE NULLS) OVER whole) AS carry_close,
        coalesce(last_value(spread IGNORE NULLS) OVER upto, first_value(spread IGNORE NULLS) OVER whole)
            AS carry_spread,
        coalesce(last_value(mid IGNORE NULLS) OVER upto, first_value(mid IGNORE NULLS) OVER whole) AS carry_mid
    FROM joined
    WINDOW
        upto AS (PARTITION BY symbol ORDER BY minute ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
        whole AS (PARTITION BY symbol ORDER BY minute ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
SELECT
    symbol,
    $session_date::DATE AS session_date,
    minute,
    coalesce(open, carry_close) AS open,
    coalesce(high, carry_close) AS high,
    coalesce(low, carry_close) AS low,
    coalesce(close, carry_close) AS close,
    coalesce(volume, 0.0) AS volume,
    -- VWAP; TWAP when the minute has no volume (index levels); the carried close for an empty minute; unknown
    -- (NULL) for a vendor bar sent without one.
    CASE
        WHEN open IS NULL THEN carry_close
        WHEN volume > 0 THEN notional / volume
        WHEN built_from = 'vendor' THEN NULL
        ELSE coalesce(price_sum / trade_count, carry_close)
    END AS vwap,
    CASE WHEN open IS NULL THEN 0 ELSE trade_count END AS trade_count,
    CASE WHEN built_from = 'vendor' THEN NULL ELSE coalesce(buy_volume, 0.0) END AS buy_volume,
    CASE WHEN built_from = 'vendor' THEN NULL ELSE coalesce(sell_volume, 0.0) END AS sell_volume,
    coalesce(carry_spread, fallback_spread + fallback_bps * 1e-4 * coalesce(close, carry_close)) AS mean_spread,
    carry_mid AS mean_mid,
    open IS NULL AS filled,
    carry_spread IS NULL AS spread_modelled,
    built_from
FROM carried
