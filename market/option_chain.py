"""The embedded market's same-day option chains: every minute of a session, calls and puts around the open on SPY,
QQQ and SPX, priced from their underlying's own 1-minute bars (see market/SYNTHETIC.md, "Option chains").

- Strikes: `strikes_each_side` increments either side of the session's first price, at the product's increment
  (SPY and QQQ $1, SPX $5), listed for the whole day as a real 0DTE chain is.
- Time: calendar minutes from each bar's end to the session's close (16:00 New York; 13:00 on an early close).
- Volatility: the at-the-money level follows the underlying's realized volatility over the last `vol_window`
  minutes (a variance premium over it, never below `iv_floor`), with a smile and a put skew on standardised
  moneyness that steepen into the close.
- Quotes: Black-Scholes mids; spreads of `spread_pct` of the mid, never under the product's tick, wider into
  the close, so cheap options carry the widest relative spreads; bid and ask are the nearest ticks to
  mid -/+ half the spread, so a spread under a tick quotes one tick wide (SPY's penny-wide at-the-money 0DTE
  quotes). Greeks at each contract's own volatility.
- No look-ahead: the chain at minute t uses bars up to t only. The planted edge lives in the underlying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from market.options import bs_greeks, bs_price, years_to

STRIKE_STEP = {"SPY": 1.0, "QQQ": 1.0, "SPX": 5.0}
OPTION_TICK = {"SPY": 0.01, "QQQ": 0.01, "SPX": 0.05}
OPTION_ROOT = {"SPX": "SPXW"}  # SPX same-day options are the weekly class
_RETURN_YEAR = np.sqrt(252 * 390)  # annualises the standard deviation of 1-minute returns (trading time)


@dataclass(frozen=True)
class ChainConfig:
    """Knobs of the embedded chains; each is validated so a bad preset fails before any pricing."""

    strikes_each_side: int = 15
    rate: float = 0.05  # annual risk-free rate (continuous)
    vol_window: int = 30  # minutes of realized volatility the at-the-money level follows
    iv_premium: float = 1.15  # at-the-money vol = premium x realized vol ...
    iv_floor: float = 0.06  # ... and never below this
    smile: float = 0.015  # curvature per squared unit of standardised moneyness
    skew: float = 0.04  # put skew per unit of standardised moneyness
    close_steepening: float = 2.0  # smile and skew are (1 + this) times steeper at the close than at the open
    spread_pct: float = 0.01  # quoted spread as a share of the mid (never under a tick) ...
    close_spread: float = 0.5  # ... widened by up to (1 + this) into the close

    def __post_init__(self) -> None:
        ints = {"strikes_each_side": (1, 200), "vol_window": (2, 390)}
        for name, (lo, hi) in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"ChainConfig.{name} must be an integer in [{lo}, {hi}], got {value!r}")
        bounds = {
            "rate": (-0.05, 0.3),
            "iv_premium": (0.5, 3.0),
            "iv_floor": (0.001, 2.0),
            "smile": (0.0, 1.0),
            "skew": (0.0, 1.0),
            "close_steepening": (0.0, 10.0),
            "spread_pct": (0.0, 1.0),
            "close_spread": (0.0, 10.0),
        }
        for name, (lo, hi) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                raise ValueError(f"ChainConfig.{name} must be a number in [{lo}, {hi}], got {value!r}")


def occ_symbol(root: str, expiry: date, is_call: bool, strike: float) -> str:
    """The contract's OCC ticker as Polygon writes it: O:SPY240305C00470000 (strike in thousandths)."""
    return f"O:{root}{expiry:%y%m%d}{'C' if is_call else 'P'}{round(strike * 1000):08d}"


def listed_strikes(symbol: str, first_price: float, each_side: int) -> np.ndarray:
    """The day's strikes: `each_side` increments either side of the increment nearest the first price."""
    step = STRIKE_STEP[symbol]
    centre = round(first_price / step) * step
    return centre + step * np.arange(-each_side, each_side + 1, dtype=np.float64)


def minutes_to_close(minute_ns: np.ndarray, close_ns: int) -> np.ndarray:
    """Calendar minutes from each bar's close (its start `minute_ns` + 1 minute, UTC ns) to the session's close
    `close_ns`, never below 0: the time to expiry a same-day chain quoted at that bar is priced on."""
    return np.maximum((close_ns - (np.asarray(minute_ns, dtype=np.int64) + 60_000_000_000)) / 60e9, 0.0)


def realized_vol(close: np.ndarray, window: int) -> np.ndarray:
    """Annualised standard deviation of the 1-minute log returns over the last `window` minutes, at each minute
    (the first minutes use what they have; 0 before two returns exist)."""
    ret = np.diff(np.log(close), prepend=np.log(close[0]))
    sd = pl.Series(ret).rolling_std(window, min_samples=2).fill_null(0.0).to_numpy()
    return sd * _RETURN_YEAR


def chain_day(
    symbol: str, session_date: date, minute: np.ndarray, close: np.ndarray, close_ns: int, cfg: ChainConfig
) -> pl.DataFrame:
    """Every listed contract at every bar of one session of `symbol`: the chain each minute's close prices.

    `minute` is each bar's start (datetime64[ns], UTC), `close` its close, `close_ns` the session's close (UTC ns).
    """
    if symbol not in STRIKE_STEP:
        raise ValueError(f"the embedded chains cover {', '.join(STRIKE_STEP)}, not {symbol!r}")
    minute = np.asarray(minute, dtype="datetime64[ns]")
    close = np.asarray(close, dtype=np.float64)
    if minute.size == 0 or not np.all(np.isfinite(close)) or np.any(close <= 0):
        raise ValueError(f"{symbol} {session_date}: the chain needs the session's bars with positive closes")
    strikes = listed_strikes(symbol, float(close[0]), cfg.strikes_each_side)
    to_close = minutes_to_close(minute.astype(np.int64), close_ns)  # a bar's chain is quoted at its close
    frac = 1.0 - to_close / max(float(to_close[0]), 1.0)  # 0 at the open, 1 at the close
    atm = np.maximum(cfg.iv_premium * realized_vol(close, cfg.vol_window), cfg.iv_floor)

    n_min, n_k = minute.size, strikes.size
    spot = np.repeat(close, 2 * n_k)
    k = np.tile(np.concatenate([strikes, strikes]), n_min)
    call = np.tile(np.repeat([True, False], n_k), n_min)
    t = np.repeat(years_to(to_close), 2 * n_k)
    level = np.repeat(atm, 2 * n_k)
    steep = 1.0 + cfg.close_steepening * np.repeat(frac, 2 * n_k)
    x = np.clip(np.log(k / spot) / (level * np.sqrt(np.maximum(t, years_to(1.0)))), -6.0, 6.0)
    iv = np.clip(level * (1.0 + steep * (cfg.smile * x * x - cfg.skew * x)), cfg.iv_floor, 5.0)
    mid = bs_price(call, spot, k, t, cfg.rate, iv)
    tick = OPTION_TICK[symbol]
    spread = np.maximum(cfg.spread_pct * mid, tick) * (1.0 + cfg.close_spread * np.repeat(frac, 2 * n_k))
    bid = np.maximum(np.round((mid - spread / 2) / tick) * tick, 0.0)
    ask = np.maximum(np.round((mid + spread / 2) / tick) * tick, bid + tick)
    greeks = bs_greeks(call, spot, k, t, cfg.rate, iv)
    root = OPTION_ROOT.get(symbol, symbol)
    names = {(c, s): occ_symbol(root, session_date, c, s) for c in (True, False) for s in strikes}
    return pl.DataFrame(
        {
            "contract": [names[(c, s)] for c, s in zip(call.tolist(), k.tolist(), strict=True)],
            "underlying": symbol,
            "session_date": session_date,
            "minute": np.repeat(minute, 2 * n_k),
            "right": np.where(call, "C", "P"),
            "strike": k,
            "minutes_to_expiry": np.repeat(to_close, 2 * n_k),
            "spot": spot,
            "bid": np.round(bid, 4),
            "ask": np.round(ask, 4),
            "mid": mid,
            "iv": iv,
            **greeks,
        },
        schema_overrides={"session_date": pl.Date},
    )


def chain_violations(chain: pl.DataFrame, rate: float, iv_bounds: tuple[float, float] = (0.01, 5.0)) -> pl.DataFrame:
    """The rows of a chain that break a rule, each with its reason (empty for a sound chain):
    `crossed` (bid > ask, or a negative bid), `iv_out_of_bounds` (not finite or outside `iv_bounds`), `monotonicity`
    (a call's mid above the next lower strike's, a put's below it, beyond a tick), `put_call_parity` (C - P away from
    S - K e^(-rT) by more than the two spreads' halves)."""
    crossed = chain.filter((pl.col("bid") > pl.col("ask")) | (pl.col("bid") < 0)).with_columns(
        pl.lit("crossed").alias("reason")
    )
    lo, hi = iv_bounds
    iv_bad = chain.filter(~pl.col("iv").is_finite() | (pl.col("iv") < lo) | (pl.col("iv") > hi)).with_columns(
        pl.lit("iv_out_of_bounds").alias("reason")
    )
    ordered = chain.sort("underlying", "minute", "right", "strike")
    prev = pl.col("mid").shift(1).over("underlying", "minute", "right")
    slack = (pl.col("ask") - pl.col("bid")).shift(1).over("underlying", "minute", "right").fill_null(0.0) + 1e-9
    monotone = ordered.filter(
        ((pl.col("right") == "C") & (pl.col("mid") > prev + slack))
        | ((pl.col("right") == "P") & (pl.col("mid") < prev - slack))
    ).with_columns(pl.lit("monotonicity").alias("reason"))
    keys = ["underlying", "minute", "strike"]
    calls = chain.filter(pl.col("right") == "C").select(*keys, "spot", "minutes_to_expiry", "bid", "ask", "mid")
    puts = chain.filter(pl.col("right") == "P").select(*keys, pl.col("bid", "ask", "mid").name.suffix("_put"))
    pairs = calls.join(puts, on=keys)
    forward = pl.col("spot") - pl.col("strike") * (-rate * pl.col("minutes_to_expiry") / (365 * 24 * 60)).exp()
    room = (pl.col("ask") - pl.col("bid") + pl.col("ask_put") - pl.col("bid_put")) / 2 + 1e-9
    parity = (
        pairs.filter(((pl.col("mid") - pl.col("mid_put")) - forward).abs() > room)
        .select(keys)
        .join(chain, on=keys)
        .with_columns(pl.lit("put_call_parity").alias("reason"))
    )
    columns = [*chain.columns, "reason"]
    return pl.concat([f.select(columns) for f in (crossed, iv_bad, monotone, parity)])
