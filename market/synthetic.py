"""Deterministic synthetic market: realistic-looking raw trades/quotes with a planted, documented edge.

See market/SYNTHETIC.md for the model, the stylized facts and how the edge was calibrated. In short:
a shared market factor (GARCH minute variance, Student-t shocks, U-shaped volatility) plus per-symbol
idiosyncratic noise moves a log-mid path that opens and closes on a daily anchor walk; a latent
per-minute order-flow imbalance I_m sets the buy/sell mix of the trades, pushes the price inside the
minute (impact) and adds a decaying drift `edge * sigma_m * I_m` to the next `edge_horizon_minutes`.
Everything is vectorised numpy; the only Python loop is the per-minute GARCH recursion.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np
import polars as pl

from market.calendar import NYSE, SessionRule, session_index, session_table
from market.sources import QUOTE_SCHEMA, TRADE_SCHEMA, DayTape, SyntheticSource, empty_quotes
from market.symbols import SymbolSpec, get_symbol

__all__ = [
    "DEFAULT_EDGE",
    "DEFAULT_FUTURES_EDGE",
    "SyntheticMarketConfig",
    "SyntheticSource",
    "calibration_pnl",
    "generate_day",
    "minute_bars",
]

DEFAULT_EDGE = 0.55
DEFAULT_FUTURES_EDGE = 0.7  # futures cost more per round trip in basis points (a 0.25 tick, $2.25 a side)
REFERENCE_SESSION = date(2024, 1, 2)  # SymbolSpec.start_price is the open on this session
FULL_SESSION_MINUTES = 390
MAX_TRADES_PER_DAY = 5_000_000
_MINUTE_NS = 60_000_000_000
_SECONDS = 60  # resolution of the shared intraminute market path
_MARKET_KEY = zlib.crc32(b"__market__")
_BREAK_GAP = 0.3  # an open right after a one-hour daily break gaps this fraction of an overnight or weekend gap
_CROSS_DAY = 0  # "ordinal" used for the cross-day streams; real dates have ordinals > 700,000
_REGIME_PHI = 0.97  # persistence of the daily volatility regime
_REGIME_SD = 0.2  # stationary sd of the log volatility regime
_T_DF = 5.0  # Student-t degrees of freedom of the market factor's minute shocks
_ODD_LOT_PROB = 0.3
_SIZE_TAIL = 1.4  # Pareto (Lomax) tail index of round-lot counts
_MAX_SIZE = 100_000.0


@dataclass(frozen=True)
class SyntheticMarketConfig:
    """Knobs of the synthetic market; every field is validated so a bad preset fails before generating."""

    seed: int = 7  # root of every random stream
    trades_per_day: int = 20_000  # SPY trades on a full session; other equities scaled by SymbolSpec.density
    quotes_per_day: int = 20_000  # SPY quote updates on a full session; scaled like trades
    edge: float = DEFAULT_EDGE  # strength of the planted order-flow drift (0 = off, no predictability)
    futures_edge: float = DEFAULT_FUTURES_EDGE  # the same drift's strength in the futures (0 = off)
    edge_horizon_minutes: int = 3  # minutes after m that receive a (linearly decaying) drift from I_m
    impact: float = 0.25  # same-minute price push of a full imbalance, in units of the minute's sigma
    trades_per_level: float = 8.0  # trades per change of the quoted mid (book stickiness)
    flow_concentration: float = 2.0  # I_m = 2*Beta(a, a) - 1; larger a = imbalances nearer 0
    daily_vol: float = 0.008  # market factor open-to-close volatility on an average day
    gap_vol: float = 0.004  # market factor overnight-gap volatility
    garch_alpha: float = 0.05  # minute GARCH(1,1) reaction to the last squared shock
    garch_beta: float = 0.93  # minute GARCH(1,1) persistence

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ValueError(f"SyntheticMarketConfig: {msg}")

        for name in ("seed", "trades_per_day", "quotes_per_day", "edge_horizon_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                bad(f"{name} must be an int, got {value!r}")
        for name in (
            "edge",
            "futures_edge",
            "impact",
            "trades_per_level",
            "flow_concentration",
            "daily_vol",
            "gap_vol",
            "garch_alpha",
            "garch_beta",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                bad(f"{name} must be a finite number, got {value!r}")
        if self.seed < 0:
            bad(f"seed must be >= 0, got {self.seed}")
        if not 1 <= self.trades_per_day <= MAX_TRADES_PER_DAY:
            bad(f"trades_per_day must be in [1, {MAX_TRADES_PER_DAY}], got {self.trades_per_day}")
        if not 0 <= self.quotes_per_day <= MAX_TRADES_PER_DAY:
            bad(f"quotes_per_day must be in [0, {MAX_TRADES_PER_DAY}], got {self.quotes_per_day}")
        if not 0.0 <= self.edge <= 2.0:
            bad(f"edge must be in [0, 2] (0 = no planted edge), got {self.edge}")
        if not 0.0 <= self.futures_edge <= 2.0:
            bad(f"futures_edge must be in [0, 2] (0 = no planted edge), got {self.futures_edge}")
        if not 1 <= self.edge_horizon_minutes <= 60:
            bad(f"edge_horizon_minutes must be in [1, 60], got {self.edge_horizon_minutes}")
        if not 0.0 <= self.impact <= 2.0:
            bad(f"impact must be in [0, 2], got {self.impact}")
        if not 0.5 <= self.trades_per_level <= 1000.0:
            bad(f"trades_per_level must be in [0.5, 1000], got {self.trades_per_level}")
        if not 0.5 <= self.flow_concentration <= 50.0:
            bad(f"flow_concentration must be in [0.5, 50], got {self.flow_concentration}")
        if not 0.0 < self.daily_vol <= 0.2:
            bad(f"daily_vol must be in (0, 0.2], got {self.daily_vol}")
        if not 0.0 <= self.gap_vol <= 0.2:
            bad(f"gap_vol must be in [0, 0.2], got {self.gap_vol}")
        if self.garch_alpha < 0 or self.garch_beta < 0 or self.garch_alpha + self.garch_beta >= 1:
            bad(
                "garch_alpha and garch_beta must be >= 0 with alpha + beta < 1, "
                f"got {self.garch_alpha} + {self.garch_beta}"
            )


# ----------------------------------------------------------------------------------------------------------
# Random streams


def _rng(seed: int, key: int, ordinal: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, key, ordinal]))


def _symbol_key(symbol: str) -> int:
    return zlib.crc32(symbol.encode())


@lru_cache(maxsize=8)
def _regime(seed: int, rule: SessionRule = NYSE) -> np.ndarray:
    """Daily volatility multiplier per session of `rule`'s calendar (AR(1) log-vol, E[mult^2] = 1): clustering
    across days."""
    rng = _rng(seed, _MARKET_KEY if rule == NYSE else _symbol_key(str(rule)), _CROSS_DAY)
    n = len(session_table(rule).days)
    shocks = rng.standard_normal(n) * _REGIME_SD * np.sqrt(1 - _REGIME_PHI**2)
    lv = np.empty(n)
    lv[0] = rng.standard_normal() * _REGIME_SD
    for i in range(1, n):  # once per seed over ~9,000 sessions, cached
        lv[i] = _REGIME_PHI * lv[i - 1] + shocks[i]
    out = np.exp(lv - _REGIME_SD**2)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=32)
def _anchor_walk(seed: int, key: int, rule: SessionRule = NYSE) -> tuple[np.ndarray, np.ndarray]:
    """Unit-volatility daily anchors of `rule`'s sessions (cached per stream): cumulative gap and open-to-close
    shocks.

    Session n opens at log level gap_vol*G[n] + daily_vol*D[n-1] (relative to the reference session) and
    closes at that plus daily_vol*d[n]. Cached cumulative sums make any date O(1) to generate. On a calendar
    other than NYSE's (CME Globex), an open that follows the previous close within a day (the one-hour daily
    break) gaps by `_BREAK_GAP` of a weekend's or holiday's gap.
    """
    table = session_table(rule)
    n = len(table.days)
    rng = _rng(seed, key, _CROSS_DAY + 1)
    regime = _regime(seed, rule)
    minutes = (table.close_ns - table.open_ns) / _MINUTE_NS
    full = FULL_SESSION_MINUTES if rule == NYSE else float(np.median(minutes))
    gaps = rng.standard_normal(n) * regime
    if rule != NYSE:
        pause = np.full(n, np.inf)
        pause[1:] = table.open_ns[1:] - table.close_ns[:-1]
        gaps *= np.where(pause < 12 * 3_600 * 10**9, _BREAK_GAP, 1.0)
    gaps[0] = 0.0
    intraday = rng.standard_normal(n) * regime * np.sqrt(minutes / full)
    ref = session_index(REFERENCE_SESSION, rule)
    g_cum = np.cumsum(gaps)
    d_prev = np.concatenate([[0.0], np.cumsum(intraday)[:-1]])
    g_cum -= g_cum[ref]
    d_prev -= d_prev[ref]
    levels = np.stack([g_cum, d_prev])
    levels.flags.writeable = False
    intraday.flags.writeable = False
    return levels, intraday


def _day_levels(cfg: SyntheticMarketConfig, spec: SymbolSpec, i: int) -> tuple[float, float]:
    """Log open and log open-to-close target of session i for the symbol (market factor + idiosyncratic)."""
    m_cum, m_day = _anchor_walk(cfg.seed, _MARKET_KEY)
    log_open = np.log(spec.start_price) + spec.beta * (cfg.gap_vol * m_cum[0, i] + cfg.daily_vol * m_cum[1, i])
    target = spec.beta * cfg.daily_vol * m_day[i]
    if spec.idio_vol > 0:
        s_cum, s_day = _anchor_walk(cfg.seed, _symbol_key(spec.symbol))
        log_open += spec.idio_vol * (cfg.gap_vol * s_cum[0, i] + cfg.daily_vol * s_cum[1, i])
        target += spec.idio_vol * cfg.daily_vol * s_day[i]
    return float(log_open), float(target)


# ----------------------------------------------------------------------------------------------------------
# Intraday shapes and the market factor


def _u_volume(x: np.ndarray) -> np.ndarray:
    """Relative trade intensity over the session fraction x in [0, 1): busy open and close, quiet lunch."""
    return 1.0 + 2.5 * np.exp(-x / 0.05) + 1.8 * np.exp(-(1.0 - x) / 0.04)


def _u_vol(x: np.ndarray) -> np.ndarray:
    """Relative minute volatility: high after the open, a little raised into the close."""
    return 1.0 + 1.2 * np.exp(-x / 0.04) + 0.3 * np.exp(-(1.0 - x) / 0.05)


_FULL_X = (np.arange(FULL_SESSION_MINUTES) + 0.5) / FULL_SESSION_MINUTES
_VOL_NORM = float(np.sqrt(np.mean(_u_vol(_FULL_X) ** 2)))
_VOLUME_NORM = float(np.sum(_u_volume(_FULL_X)))


class _MarketDay(NamedTuple):
    """The shared market factor of one session."""

    sigma: np.ndarray  # [M] minute sigma of the market factor (seasonal * regime * GARCH)
    garch: np.ndarray  # [M] GARCH variance state, mean 1
    cum: np.ndarray  # [M+1] cumulative log return at minute edges (unpinned)
    seconds: np.ndarray  # [60*M+1] cumulative log return on a 1-second grid (minute edges = cum)


def _equity_market_day(cfg: SyntheticMarketConfig, i: int, ordinal: int, n_min: int) -> _MarketDay:
    """The equity market factor of NYSE session i: the U-shaped intraday volatility on the day's regime."""
    x = (np.arange(n_min) + 0.5) / n_min
    base = cfg.daily_vol * _regime(cfg.seed)[i] / np.sqrt(FULL_SESSION_MINUTES) * _u_vol(x) / _VOL_NORM
    return _market_day(cfg, _rng(cfg.seed, _MARKET_KEY, ordinal), base)


def _market_day(cfg: SyntheticMarketConfig, rng: np.random.Generator, base: np.ndarray) -> _MarketDay:
    """A market factor for one session (GARCH(1,1) minute variance, Student-t shocks, a 1-second path) around the
    per-minute sigma `base` (the seasonal shape times the day's regime).

    All symbols read the same 1-second path, so SPY, QQQ and SPX co-move inside the minute too.
    """
    n_min = base.size
    z = rng.standard_t(_T_DF, n_min) / np.sqrt(_T_DF / (_T_DF - 2.0))
    a, b = cfg.garch_alpha, cfg.garch_beta
    h = np.empty(n_min)
    h[0] = 1.0
    z2 = z * z
    for m in range(1, n_min):  # one step a minute: the only sequential part of a day
        h[m] = (1.0 - a - b) + a * h[m - 1] * z2[m - 1] + b * h[m - 1]
    sigma = base * np.sqrt(h)
    ret = sigma * z
    cum = np.concatenate([[0.0], np.cumsum(ret)])
    # Brownian bridge on 60 one-second steps inside each minute, 0 at both minute edges.
    walk = np.cumsum(rng.standard_normal((n_min, _SECONDS)) / np.sqrt(_SECONDS), axis=1)
    frac = np.arange(1, _SECONDS + 1) / _SECONDS
    bridge = walk - frac * walk[:, -1:]
    inside = cum[:-1, None] + frac * ret[:, None] + sigma[:, None] * bridge
    seconds = np.concatenate([[0.0], inside.ravel()])
    return _MarketDay(sigma, h, cum, seconds)


def _market_at(seconds: np.ndarray, minute: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """The market's 1-second path at event times, linearly interpolated inside each second."""
    s = (minute + frac) * _SECONDS
    k = np.minimum(np.floor(s).astype(np.int64), len(seconds) - 2)
    w = s - k
    return seconds[k] * (1.0 - w) + seconds[k + 1] * w


# ----------------------------------------------------------------------------------------------------------
# Event times and the log-mid path


def _event_times(rng: np.random.Generator, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson counts per minute, then sorted uniform times inside each minute: (counts, minute, frac)."""
    counts = rng.poisson(lam)
    minute = np.repeat(np.arange(len(lam)), counts)
    keys = np.sort(minute + rng.random(minute.size))
    frac = np.clip(keys - minute, 0.0, np.nextafter(1.0, 0.0))
    return counts, minute, frac


def _bridge_noise(rng: np.random.Generator, counts: np.ndarray, minute: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Unit Brownian-bridge values at sorted event times inside each minute (0 at both minute edges)."""
    n = frac.size
    if n == 0:
        return np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    prev = np.empty(n)
    prev[1:] = frac[:-1]
    prev[starts[has]] = 0.0
    walk = np.cumsum(np.sqrt(np.maximum(frac - prev, 0.0)) * rng.standard_normal(n))
    walk -= np.repeat(np.concatenate([[0.0], walk])[starts], counts)  # restart at 0 in each minute
    ends = np.cumsum(counts) - 1
    w_end = np.zeros(len(counts))
    w_end[has] = walk[ends[has]] + np.sqrt(1.0 - frac[ends[has]]) * rng.standard_normal(int(has.sum()))
    return walk - frac * w_end[minute]


def _own_edges(mkt: _MarketDay, spec: SymbolSpec, own_steps: np.ndarray, target: float) -> np.ndarray:
    """The symbol's own (non-market) log path at minute edges, after pinning the total path to `target`.

    The total path beta*market + own is bridged in variance-time so the session closes exactly at the
    daily anchor's close; the correction is booked to the own part so the market path stays shared.
    """
    own = np.concatenate([[0.0], np.cumsum(own_steps)])
    var = np.concatenate([[0.0], np.cumsum(mkt.sigma**2)])
    total_end = spec.beta * mkt.cum[-1] + own[-1]
    return own + var / var[-1] * (target - total_end)


def _log_mid(
    mkt: _MarketDay,
    spec: SymbolSpec,
    own: np.ndarray,
    log_open: float,
    minute: np.ndarray,
    frac: np.ndarray,
) -> np.ndarray:
    """Log mid at event times: shared market path + the symbol's own path (linear inside the minute)."""
    own_at = own[minute] + frac * (own[minute + 1] - own[minute])
    return log_open + spec.beta * _market_at(mkt.seconds, minute, frac) + own_at


# ----------------------------------------------------------------------------------------------------------
# Public generator


def generate_day(cfg: SyntheticMarketConfig, symbol: str, session_date: date) -> DayTape:
    """Raw trades and quotes of `symbol` on `session_date`; deterministic in (cfg, symbol, date).

    Raises ValueError for an unknown symbol or a date that is not a session of its exchange (NYSE; CME Globex for
    a futures contract, see market/synthetic_futures.py).
    """
    spec = get_symbol(symbol, session_date)
    if spec.kind == "future":
        from market.synthetic_futures import futures_day

        return futures_day(cfg, spec, session_date)
    if spec.kind not in ("equity", "etf", "index"):
        raise ValueError(
            f"the embedded market generates equities, ETFs, indexes and CME equity-index futures, not the "
            f"{spec.kind} {symbol!r}; import its ticks or bars from a file or a live source"
        )
    i = session_index(session_date)
    table = session_table()
    open_ns = int(table.open_ns[i])
    n_min = int((table.close_ns[i] - open_ns) // _MINUTE_NS)
    ordinal = session_date.toordinal()
    mkt = _equity_market_day(cfg, i, ordinal, n_min)
    log_open, target = _day_levels(cfg, spec, i)
    rng = _rng(cfg.seed, _symbol_key(spec.symbol), ordinal)
    if spec.is_index:
        return _index_day(spec, rng, mkt, log_open, target, open_ns)
    return _equity_day(cfg, spec, rng, mkt, log_open, target, open_ns)


def _index_day(
    spec: SymbolSpec,
    rng: np.random.Generator,
    mkt: _MarketDay,
    log_open: float,
    target: float,
    open_ns: int,
) -> DayTape:
    """An index: market-factor levels on a fixed clock, size 0.0, no quotes."""
    n_min = len(mkt.sigma)
    own = _own_edges(mkt, spec, spec.idio_vol * mkt.sigma * rng.standard_normal(n_min), target)
    step_ns = int(round(spec.level_interval_s * 1e9))
    offsets = np.arange(0, n_min * _MINUTE_NS, step_ns, dtype=np.int64)
    minute = offsets // _MINUTE_NS
    frac = (offsets % _MINUTE_NS) / _MINUTE_NS
    level = np.exp(_log_mid(mkt, spec, own, log_open, minute, frac))
    trades = _frame(
        TRADE_SCHEMA,
        spec.symbol,
        ts=open_ns + offsets,
        price=_on_grid(level, spec.tick),
        size=np.zeros(offsets.size),
    )
    return DayTape(trades=trades, quotes=empty_quotes())


class _Shape(NamedTuple):
    """How one instrument prints its day: activity and spread profiles, sizes, and where its mid sits."""

    activity: np.ndarray  # [M] relative trade and quote intensity ...
    norm: float  # ... divided by this: the activity a full day sums to
    wide: np.ndarray  # [M] multiplier of the instrument's chance of a spread wider than one tick
    trade_sizes: Callable[[np.random.Generator, int], np.ndarray]
    quote_sizes: Callable[[np.random.Generator, int], np.ndarray]
    log_offset: float = 0.0  # added to the log mid (a futures contract's basis over its underlying)


def _equity_shape(n_min: int) -> _Shape:
    x = (np.arange(n_min) + 0.5) / n_min
    quote = lambda rng, n: 100.0 * np.ceil(rng.lognormal(1.2, 0.9, n))  # noqa: E731
    return _Shape(_u_volume(x), _VOLUME_NORM, 1.0 + 3.0 * np.exp(-x / 0.02), _trade_sizes, quote)


def _equity_day(
    cfg: SyntheticMarketConfig,
    spec: SymbolSpec,
    rng: np.random.Generator,
    mkt: _MarketDay,
    log_open: float,
    target: float,
    open_ns: int,
) -> DayTape:
    """An equity: latent order flow, impact and drift on top of the market factor; trades at bid/ask."""
    flow, own = _own_path(cfg, spec, rng, mkt, target)
    return _print_tape(cfg, spec, rng, mkt, flow, own, log_open, open_ns, _equity_shape(len(mkt.sigma)))


def _own_path(
    cfg: SyntheticMarketConfig,
    spec: SymbolSpec,
    rng: np.random.Generator,
    mkt: _MarketDay,
    target: float,
    jumps: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The latent order flow I_m and the instrument's own log path at minute edges: idiosyncratic noise, the
    flow's same-minute impact and its decaying drift over the next minutes (the planted edge), plus `jumps`,
    pinned so the day closes on its anchor."""
    n_min = len(mkt.sigma)
    conc = cfg.flow_concentration
    flow = 2.0 * rng.beta(conc, conc, n_min) - 1.0  # I_m, i.i.d. across minutes
    vol = mkt.sigma * np.hypot(spec.beta, spec.idio_vol)  # the symbol's minute sigma
    idio = spec.idio_vol * mkt.sigma * rng.standard_normal(n_min)
    impact = cfg.impact * vol * flow
    h = cfg.edge_horizon_minutes
    decay = (h - np.arange(h)) / h  # minute m+k gets weight (h-k+1)/h, k = 1..h
    drift = cfg.edge * np.convolve(vol * flow, np.concatenate([[0.0], decay]))[:n_min]
    steps = idio + impact + drift
    if jumps is not None:
        steps = steps + jumps
    return flow, _own_edges(mkt, spec, steps, target)


def _print_tape(
    cfg: SyntheticMarketConfig,
    spec: SymbolSpec,
    rng: np.random.Generator,
    mkt: _MarketDay,
    flow: np.ndarray,
    own: np.ndarray,
    log_open: float,
    open_ns: int,
    shape: _Shape,
) -> DayTape:
    """Trades and quotes along the path: Poisson events on the activity profile, a sticky book of one-tick
    spreads (sometimes wider), and trade sides drawn from the order flow."""
    n_min = len(mkt.sigma)
    # Busier minutes: the instrument's profile, a random day level and more activity when volatility is high.
    vol_state = np.sqrt(mkt.garch)
    activity = shape.activity * vol_state * np.exp(0.2 * rng.standard_normal() - 0.02)
    scale = spec.density * activity / shape.norm
    lam_t = cfg.trades_per_day * scale
    lam_q = cfg.quotes_per_day * scale

    # Trades and quotes share one intraday path, so trades print at the prevailing quotes. Poisson
    # thinning: events arrive at rate lam_t + lam_q and each is a trade with probability lam_t / total.
    counts, minute, frac = _event_times(rng, lam_t + lam_q)
    is_trade = rng.random(minute.size) * (lam_t + lam_q)[minute] < lam_t[minute]

    # The book is sticky: each minute is cut into `levels` equal slots (about `trades_per_level` trades
    # each) and every event in a slot sees the mid of the slot's centre and the slot's spread, so runs of
    # trades share a bid/ask at any density (the tick rule then reads trade sides, as on a real tape).
    levels = np.maximum(1, np.round(lam_t / cfg.trades_per_level)).astype(np.int64)
    slot_in_minute = np.floor(frac * levels[minute]).astype(np.int64)
    slot_frac = (slot_in_minute + 0.5) / levels[minute]
    slot = np.concatenate([[0], np.cumsum(levels)[:-1]])[minute] + slot_in_minute
    log_mid = _log_mid(mkt, spec, own, log_open, minute, slot_frac)
    if spec.idio_vol > 0:
        log_mid += spec.idio_vol * mkt.sigma[minute] * _bridge_noise(rng, counts, minute, slot_frac)
    if shape.log_offset:
        log_mid += shape.log_offset
    mid_ticks = np.exp(log_mid) / spec.tick

    n_slots = int(levels.sum())
    wide_p = np.clip(spec.wide_spread_prob * shape.wide * vol_state, 0.0, 0.9)
    wide = rng.random(n_slots) < np.repeat(wide_p, levels)
    spread = (1.0 + wide * rng.geometric(0.6, n_slots))[slot]
    bid = np.floor(mid_ticks - spread / 2.0 + 0.5)
    ask = bid + spread
    ts = open_ns + np.round((minute + frac) * _MINUTE_NS).astype(np.int64)
    ts = np.minimum(ts, open_ns + n_min * _MINUTE_NS - 1)  # float rounding must never reach the close

    t_idx = np.flatnonzero(is_trade)
    buy = rng.random(t_idx.size) < (1.0 + flow[minute[t_idx]]) / 2.0
    price_ticks = np.where(buy, ask[t_idx], bid[t_idx])
    trades = _frame(
        TRADE_SCHEMA,
        spec.symbol,
        ts=ts[t_idx],
        price=_on_grid(price_ticks * spec.tick, spec.tick),
        size=shape.trade_sizes(rng, t_idx.size),
    )
    q_idx = np.flatnonzero(~is_trade)
    n_q = q_idx.size
    quotes = _frame(
        QUOTE_SCHEMA,
        spec.symbol,
        ts=ts[q_idx],
        bid=_on_grid(bid[q_idx] * spec.tick, spec.tick),
        ask=_on_grid(ask[q_idx] * spec.tick, spec.tick),
        bid_size=shape.quote_sizes(rng, n_q),
        ask_size=shape.quote_sizes(rng, n_q),
    )
    return DayTape(trades=trades, quotes=quotes)


def _trade_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Heavy-tailed sizes: odd lots 1..99 and round lots 100*k with Pareto-tailed k (capped)."""
    odd = rng.random(n) < _ODD_LOT_PROB
    lots = 1.0 + np.floor(rng.pareto(_SIZE_TAIL, n) * 1.5)
    size = np.where(odd, rng.integers(1, 100, n).astype(np.float64), 100.0 * lots)
    return np.minimum(size, _MAX_SIZE)


def _on_grid(prices: np.ndarray, tick: float) -> np.ndarray:
    """Snap to the tick grid so prices*100 is an integer to float precision."""
    return np.round(np.round(prices / tick) * tick, 10)


def _frame(schema: dict[str, pl.DataType], symbol: str, **cols: np.ndarray) -> pl.DataFrame:
    """A frame with exactly `schema`'s columns in order; `ts` given as int64 UTC ns."""
    data = {"ts": pl.Series("ts", cols.pop("ts"), dtype=pl.Int64).cast(pl.Datetime("ns"))}
    data.update({k: pl.Series(k, v, dtype=pl.Float64) for k, v in cols.items()})
    frame = pl.DataFrame(data).with_columns(pl.lit(symbol, dtype=pl.Utf8).alias("symbol"))
    return frame.select(list(schema))


# ----------------------------------------------------------------------------------------------------------
# Calibration: simple rules on generated trades (reference for tests, the benchmark and SYNTHETIC.md)


def minute_bars(trades: pl.DataFrame) -> pl.DataFrame:
    """One equity session's trades as 1-minute bars with a tick-rule signed-volume imbalance.

    Columns: minute, first, close, volume, imbalance. Minutes without trades are absent.
    """
    diff = pl.col("price").diff()
    signed = (
        trades.sort("ts")
        .with_columns(
            pl.when(diff > 0)
            .then(1.0)
            .when(diff < 0)
            .then(-1.0)
            .otherwise(None)
            .forward_fill()
            .fill_null(0.0)
            .alias("sign")
        )
        .with_columns(pl.col("ts").dt.truncate("1m").alias("minute"))
    )
    return (
        signed.group_by("minute", maintain_order=True)
        .agg(
            pl.col("price").first().alias("first"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().alias("volume"),
            (pl.col("size") * pl.col("sign")).sum().alias("signed"),
        )
        .with_columns((pl.col("signed") / pl.col("volume")).fill_nan(0.0).alias("imbalance"))
        .drop("signed")
    )


def calibration_pnl(
    trades: pl.DataFrame,
    rule: Literal["imbalance", "sma"] = "imbalance",
    shares: int = 100,
    threshold: float = 0.1,
    half_spread: float = 0.005,
    commission_per_share: float = 0.005,
    min_commission: float = 1.0,
) -> dict[str, float]:
    """Net P&L of a simple rule over one session, so the planted edge can be measured after costs.

    `imbalance`: hold +shares during minute m+1 when imbalance_m > threshold, -shares when < -threshold, else
    flat. `sma`: long when SMA5 > SMA20 of minute closes (known at the end of minute m), short when below.
    Fills at minute m+1's first trade price plus/minus `half_spread`, commission max(min, per_share*qty)
    per fill; the position is flattened at the session's last trade.
    """
    if rule not in ("imbalance", "sma"):
        raise ValueError(f"unknown rule {rule!r}; known: imbalance, sma")
    bars = minute_bars(trades)
    if bars.height == 0:
        return {"gross": 0.0, "commission": 0.0, "spread_cost": 0.0, "net": 0.0, "fills": 0.0}
    first = bars["first"].to_numpy()
    last = float(bars["close"][-1])
    if rule == "imbalance":
        imb = bars["imbalance"].to_numpy()
        signal = np.where(imb > threshold, 1.0, np.where(imb < -threshold, -1.0, 0.0))
    else:
        close = bars["close"]
        gap = (close.rolling_mean(5) - close.rolling_mean(20)).fill_null(0.0).to_numpy()
        signal = np.sign(gap)
    pos = np.concatenate([[0.0], signal[:-1]]) * shares  # decided at the end of m, held during m+1
    fill_px = np.append(first, last)
    gross = float(np.sum(pos * np.diff(fill_px)))
    qty = np.abs(np.diff(np.concatenate([[0.0], pos, [0.0]])))
    traded = qty > 0
    commission = float(np.sum(np.maximum(min_commission, commission_per_share * qty[traded])))
    spread_cost = float(np.sum(half_spread * qty))
    return {
        "gross": gross,
        "commission": commission,
        "spread_cost": spread_cost,
        "net": gross - commission - spread_cost,
        "fills": float(traded.sum()),
    }
