"""Synthetic perpetual-futures funding market: funding rates and mark prices across exchanges, O(1) per UTC day.

See market/FUNDING.md for the model. In short, per symbol s and exchange x an hourly 8h-equivalent rate
`r8[s, x, hour]` = symbol level (regime-switching, mean-reverting daily anchor) + exchange basis (daily anchor)
+ planted persistent spread (`persistent_spread` APR, 0 = off) + hourly AR(1) noise bridged to zero at midnight.
A funding payment at `funding_time` T with interval h is the mean of `r8` over the hours [T-h, T) times h/8, so
rates on any interval are consistent. Intervals (8h/4h/1h) are drawn per (symbol, exchange, ISO week) and can
change at week boundaries. Mark prices every `mark_every_minutes` share a symbol price path (Brownian bridge
between daily anchors) plus a per-exchange basis; anomalous symbols (seed 004's COAIUSDT) quote large,
exchange-specific rates but have wide spreads, short-lived rates and basis jumps that erase the funding.

Daily anchors come from one cheap cached recursion over days since `epoch` (blocks of days share one random
stream); everything inside a day is vectorised numpy from a stream seeded by (seed, tag, day ordinal).
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl

__all__ = [
    "FUNDING_EXCHANGES",
    "FUNDING_RATE_SCHEMA",
    "MARK_PRICE_SCHEMA",
    "OPPORTUNITY_CSV_COLUMNS",
    "FundingMarketConfig",
    "FundingSource",
    "FundingTape",
    "SyntheticFundingSource",
    "apr",
    "funding_config_from_dict",
    "funding_symbols",
    "generate_funding_day",
    "greedy_pair_backtest",
    "planted_spreads",
    "read_opportunities_csv",
]

FUNDING_EXCHANGES: tuple[str, ...] = ("binance", "bybit", "okx", "bitget", "gate")
LIQUID_SYMBOLS: tuple[str, ...] = (
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "BNBUSDT",
    "DOGEUSDT",
    "ADAUSDT",
    "AVAXUSDT",
    "LINKUSDT",
    "DOTUSDT",
    "LTCUSDT",
    "TRXUSDT",
    "NEARUSDT",
    "APTUSDT",
    "ARBUSDT",
    "OPUSDT",
    "SUIUSDT",
    "ATOMUSDT",
    "FILUSDT",
    "INJUSDT",
    "TIAUSDT",
    "SEIUSDT",
    "WLDUSDT",
    "AAVEUSDT",
    "UNIUSDT",
    "ETCUSDT",
    "PEPEUSDT",
    "TONUSDT",
)
_START_PRICES = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0, "BNBUSDT": 550.0}
FUNDING_RATE_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.Utf8(),
    "symbol": pl.Utf8(),
    "funding_time": pl.Datetime("ns"),
    "rate": pl.Float64(),
    "interval_hours": pl.Int32(),
}
MARK_PRICE_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.Utf8(),
    "symbol": pl.Utf8(),
    "ts": pl.Datetime("ns"),
    "mark": pl.Float64(),
    "bid": pl.Float64(),
    "ask": pl.Float64(),
    "volume_24h": pl.Float64(),
}
OPPORTUNITY_CSV_COLUMNS: tuple[str, ...] = (
    "entry_time",
    "symbol",
    "long_exchange",
    "short_exchange",
    "entry_long_price",
    "entry_short_price",
    "long_funding_rate",
    "short_funding_rate",
    "fund_apr",
    "volume_24h",
)
INTERVALS = np.array([1, 4, 8], dtype=np.int32)
_BLOCK = 128  # days per cross-day random stream
_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS
_RATE_CAP = 0.025  # per-interval clamp (exchanges cap funding; the warehouse rejects |rate| > 0.03)
_TAGS = {name: zlib.crc32(name.encode()) for name in ("daily", "hourly", "marks", "intervals", "static")}


def apr(rate: np.ndarray | float, interval_hours: np.ndarray | float) -> np.ndarray | float:
    """Annualised rate of a per-interval funding rate: rate * (24 / interval_h) * 365."""
    return rate * (24.0 / interval_hours) * 365.0


@dataclass(frozen=True)
class FundingMarketConfig:
    """Knobs of the synthetic funding market; validated so a bad preset fails before generating."""

    seed: int = 7  # root of every random stream
    symbols: int = 24  # number of symbols (the anomalous ones included)
    exchanges: tuple[str, ...] = FUNDING_EXCHANGES  # venues quoting every symbol
    anomalous: tuple[str, ...] = ("COAIUSDT", "MYXUSDT", "AIAUSDT")  # illiquid high-APR traps (seed 004)
    mark_every_minutes: int = 15  # mark/bid/ask snapshot spacing
    epoch: date = date(2024, 1, 1)  # first day that can be generated (start of the daily-anchor recursion)
    persistent_spread: float = 0.6  # planted: APR of a persistent cross-exchange rate offset (0 = off)
    spread_on_prob: float = 0.02  # planted: daily chance that an idle (symbol, exchange) starts an offset
    spread_persistence: float = 0.85  # planted: daily chance that an offset carries on to the next day
    base_rate: float = 0.0001  # normal-regime symbol funding per 8h (0.01%, the exchanges' default)
    hot_rate: float = 0.0003  # extra per-8h symbol funding in the hot (crowded long) regime
    regime_persistence: float = 0.9  # daily chance a symbol stays in its funding regime
    basis_sd: float = 0.00008  # sd of the per-exchange daily rate basis, per 8h
    noise_sd: float = 0.00012  # sd of the hourly AR(1) rate noise (transient cross-exchange spreads), per 8h
    noise_phi: float = 0.85  # hourly persistence of that noise
    anomalous_rate_sd: float = 0.01  # sd of anomalous symbols' exchange-specific per-8h rate (seed 004: COAIUSDT)
    anomalous_jump_prob: float = 0.01  # chance per mark step of a cross-exchange basis jump (anomalous)
    anomalous_jump_sd: float = 0.03  # size sd of those basis jumps (fraction of price)

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ValueError(f"FundingMarketConfig: {msg}")

        # YAML gives lists and ISO strings; the config must stay hashable (it keys the daily-anchor cache).
        for name in ("exchanges", "anomalous"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if isinstance(self.epoch, str):
            try:
                object.__setattr__(self, "epoch", date.fromisoformat(self.epoch))
            except ValueError:
                bad(f"epoch must be an ISO date, got {self.epoch!r}")
        for name in ("seed", "symbols", "mark_every_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                bad(f"{name} must be an int, got {value!r}")
        if self.seed < 0:
            bad(f"seed must be >= 0, got {self.seed}")
        if (
            not isinstance(self.exchanges, tuple)
            or len(self.exchanges) < 2
            or len(set(self.exchanges)) != len(self.exchanges)
        ):
            bad(f"exchanges must be a tuple of >= 2 distinct names, got {self.exchanges!r}")
        if not isinstance(self.anomalous, tuple) or len(set(self.anomalous)) != len(self.anomalous):
            bad(f"anomalous must be a tuple of distinct symbols, got {self.anomalous!r}")
        if not 2 <= self.symbols - len(self.anomalous) <= len(LIQUID_SYMBOLS):
            bad(
                f"symbols={self.symbols} leaves {self.symbols - len(self.anomalous)} liquid symbols "
                f"(need 2..{len(LIQUID_SYMBOLS)})"
            )
        if self.mark_every_minutes <= 0 or 1440 % self.mark_every_minutes:
            bad(f"mark_every_minutes must divide a day (1440), got {self.mark_every_minutes}")
        if not isinstance(self.epoch, date):
            bad(f"epoch must be a date, got {self.epoch!r}")
        for name in (
            "persistent_spread",
            "spread_on_prob",
            "spread_persistence",
            "base_rate",
            "hot_rate",
            "regime_persistence",
            "basis_sd",
            "noise_sd",
            "noise_phi",
            "anomalous_rate_sd",
            "anomalous_jump_prob",
            "anomalous_jump_sd",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                bad(f"{name} must be a finite number, got {value!r}")
            if name != "base_rate" and value < 0:
                bad(f"{name} must be >= 0, got {value}")
        for name in ("spread_on_prob", "spread_persistence", "regime_persistence", "anomalous_jump_prob"):
            if getattr(self, name) > 1:
                bad(f"{name} is a probability, got {getattr(self, name)}")
        if self.noise_phi >= 1:
            bad(f"noise_phi must be < 1, got {self.noise_phi}")


def funding_config_from_dict(data: dict) -> FundingMarketConfig:
    """A config from a plain dict (e.g. YAML); unknown keys -> ValueError listing the known ones."""
    known = set(FundingMarketConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"FundingMarketConfig: unknown keys {unknown}; known: {sorted(known)}")
    return FundingMarketConfig(**data)


def funding_symbols(cfg: FundingMarketConfig) -> list[str]:
    """The symbols of a config: the first `symbols - len(anomalous)` liquid names, then the anomalous ones."""
    return list(LIQUID_SYMBOLS[: cfg.symbols - len(cfg.anomalous)]) + list(cfg.anomalous)


@dataclass(frozen=True)
class FundingTape:
    """One UTC day of raw funding data (columns as FUNDING_RATE_SCHEMA / MARK_PRICE_SCHEMA)."""

    funding_rates: pl.DataFrame
    mark_prices: pl.DataFrame
    gaps: tuple[tuple[str, str, str], ...] = ()  # (exchange, symbol, reason): asked for and not (fully) received


@runtime_checkable
class FundingSource(Protocol):
    """Anything that hands over one UTC day of raw funding rates and mark prices (unsorted, unvalidated)."""

    name: str

    def fetch_day(self, day: date) -> FundingTape: ...


class SyntheticFundingSource:
    """The synthetic funding market behind the `FundingSource` protocol."""

    def __init__(self, cfg: FundingMarketConfig | None = None) -> None:
        self.cfg = cfg or FundingMarketConfig()
        self.name = f"synthetic_funding(seed={self.cfg.seed})"

    def fetch_day(self, day: date) -> FundingTape:
        return generate_funding_day(self.cfg, day)


def _rng(seed: int, tag: str, ordinal: int, extra: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _TAGS[tag], ordinal, extra]))


@dataclass(frozen=True)
class _Static:
    """Per (symbol, exchange) constants: liquidity, spreads, volatility, start prices."""

    anomalous: np.ndarray  # [S] bool
    half_spread: np.ndarray  # [S, X] fraction of price
    volume: np.ndarray  # [S, X] typical 24h USD volume
    daily_vol: np.ndarray  # [S] daily log-price sd
    start_price: np.ndarray  # [S]
    basis_sd: np.ndarray  # [S, X] 15-min price-basis sd (fraction)
    rate_scale: np.ndarray  # [S] multiplier of the symbol's rate level and noise


@lru_cache(maxsize=16)
def _static(cfg: FundingMarketConfig) -> _Static:
    names = funding_symbols(cfg)
    n_s, n_x = len(names), len(cfg.exchanges)
    rng = _rng(cfg.seed, "static", 0)
    anomalous = np.array([s in cfg.anomalous for s in names])
    rank = np.arange(n_s, dtype=float)
    sym_volume = np.where(anomalous, rng.uniform(2e6, 2e7, n_s), 8e9 / (1.0 + rank) ** 1.3)
    venue_share = rng.dirichlet(np.full(n_x, 4.0), size=n_s)
    half_spread = np.where(
        anomalous[:, None], rng.uniform(15e-4, 40e-4, (n_s, n_x)), rng.uniform(0.2e-4, 1.5e-4, (n_s, n_x))
    )
    half_spread = np.where(~anomalous[:, None], half_spread * (1.0 + rank[:, None] / 10.0), half_spread)
    start = np.array([_START_PRICES.get(s, float(np.exp(rng.uniform(-2.0, 4.0)))) for s in names])
    return _Static(
        anomalous=anomalous,
        half_spread=half_spread,
        volume=sym_volume[:, None] * venue_share * n_x,
        daily_vol=np.where(anomalous, 0.10, 0.025 + 0.002 * rank),
        start_price=start,
        basis_sd=np.where(anomalous[:, None], 30e-4, 1.5e-4) * np.ones((1, n_x)),
        rate_scale=np.where(anomalous, 3.0, 1.0 + rank / 20.0),
    )


@dataclass(frozen=True)
class _Anchors:
    """Daily anchors at 00:00 UTC of every day since the epoch (index 0 = epoch)."""

    level: np.ndarray  # [D, S] symbol per-8h rate level
    basis: np.ndarray  # [D, S, X] exchange per-8h rate basis
    planted: np.ndarray  # [D, S, X] -1/0/+1 planted offset sign in force during day d
    log_price: np.ndarray  # [D, S] log price at 00:00
    vol_mult: np.ndarray  # [D, S] volume multiplier of the day
    regime: np.ndarray  # [D, S] 0 normal, 1 hot (crowded longs), 2 negative funding


@lru_cache(maxsize=64)
def _anchor_block(cfg: FundingMarketConfig, block: int) -> _Anchors:
    """Anchors for days [block*_BLOCK, (block+1)*_BLOCK) continuing the previous block's last state."""
    st = _static(cfg)
    n_s, n_x = st.half_spread.shape
    rng = _rng(cfg.seed, "daily", block)
    if block == 0:
        level = np.full(n_s, cfg.base_rate) * st.rate_scale
        regime = np.zeros(n_s, dtype=np.int8)
        basis = rng.normal(0.0, cfg.basis_sd, (n_s, n_x))
        planted = np.zeros((n_s, n_x), dtype=np.int8)
        log_price = np.log(st.start_price)
    else:
        prev = _anchor_block(cfg, block - 1)
        level, basis, planted = prev.level[-1], prev.basis[-1], prev.planted[-1]
        log_price = prev.log_price[-1]
        regime = prev.regime[-1]
    out_level = np.empty((_BLOCK, n_s))
    out_basis = np.empty((_BLOCK, n_s, n_x))
    out_planted = np.empty((_BLOCK, n_s, n_x), dtype=np.int8)
    out_price = np.empty((_BLOCK, n_s))
    out_regime = np.empty((_BLOCK, n_s), dtype=np.int8)
    u_regime = rng.random((_BLOCK, n_s))
    new_regime = rng.integers(0, 3, (_BLOCK, n_s))
    z_level = rng.normal(size=(_BLOCK, n_s))
    z_basis = rng.normal(size=(_BLOCK, n_s, n_x))
    u_plant = rng.random((_BLOCK, n_s, n_x))
    sign_plant = np.where(rng.random((_BLOCK, n_s, n_x)) < 0.5, -1, 1).astype(np.int8)
    z_price = rng.standard_t(4.0, size=(_BLOCK, n_s)) / np.sqrt(2.0)
    regime_mean = np.array([cfg.base_rate, cfg.base_rate + cfg.hot_rate, -cfg.base_rate])
    for i in range(_BLOCK):
        if block or i:
            switch = u_regime[i] > cfg.regime_persistence
            regime = np.where(switch, new_regime[i], regime).astype(np.int8)
            target = regime_mean[regime] * st.rate_scale
            level = target + 0.7 * (level - target) + 0.5 * cfg.base_rate * st.rate_scale * z_level[i]
            basis = 0.5 * basis + np.sqrt(0.75) * cfg.basis_sd * z_basis[i]
            stay = (planted != 0) & (u_plant[i] < cfg.spread_persistence)
            start = (planted == 0) & (u_plant[i] < cfg.spread_on_prob)
            planted = np.where(stay, planted, np.where(start, sign_plant[i], 0)).astype(np.int8)
            planted[st.anomalous] = 0
            log_price = log_price + st.daily_vol * z_price[i]
        out_level[i], out_basis[i], out_planted[i], out_price[i], out_regime[i] = (
            level,
            basis,
            planted,
            log_price,
            regime,
        )
    vol_mult = np.exp(rng.normal(0.0, 0.3, (_BLOCK, n_s)) + 0.5 * np.abs(out_regime > 0))
    return _Anchors(out_level, out_basis, out_planted, out_price, vol_mult, out_regime)


def _day_index(cfg: FundingMarketConfig, day: date) -> int:
    if not isinstance(day, date) or isinstance(day, datetime):
        raise ValueError(f"day must be a datetime.date, got {day!r}")
    idx = (day - cfg.epoch).days
    if idx < 0:
        raise ValueError(f"{day} is before the synthetic funding market's epoch {cfg.epoch}")
    return idx


def _anchor(cfg: FundingMarketConfig, idx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a = _anchor_block(cfg, idx // _BLOCK)
    i = idx % _BLOCK
    return a.level[i], a.basis[i], a.planted[i], a.log_price[i], a.vol_mult[i]


def _intervals(cfg: FundingMarketConfig, week: int) -> np.ndarray:
    """Funding interval [S, X] in force during ISO-ish week `week` (exchanges re-set intervals weekly here)."""
    st = _static(cfg)
    rng = _rng(cfg.seed, "intervals", week)
    n_s, n_x = st.half_spread.shape
    u = rng.random((n_s, n_x))
    liquid = np.where(u < 0.8, 8, np.where(u < 0.95, 4, 1))
    anomalous = np.where(u < 0.4, 1, np.where(u < 0.8, 4, 8))
    return np.where(st.anomalous[:, None], anomalous, liquid).astype(np.int32)


def _hourly_r8(cfg: FundingMarketConfig, idx: int) -> np.ndarray:
    """Per-8h-equivalent rate [S, X, 24] for each hour of day `idx` (hour labelled by its start)."""
    st = _static(cfg)
    n_s, n_x = st.half_spread.shape
    lv0, b0, planted, _, _ = _anchor(cfg, idx)
    lv1, b1, _, _, _ = _anchor(cfg, idx + 1)
    frac = np.arange(24) / 24.0
    r8 = lv0[:, None, None] + (lv1 - lv0)[:, None, None] * frac
    r8 = r8 + b0[:, :, None] + (b1 - b0)[:, :, None] * frac
    r8 = r8 + planted[:, :, None] * (cfg.persistent_spread * 8.0 / (24.0 * 365.0))
    rng = _rng(cfg.seed, "hourly", idx)
    sd = np.where(st.anomalous, cfg.anomalous_rate_sd, cfg.noise_sd * st.rate_scale)[:, None, None]
    phi = np.where(st.anomalous, 0.6, cfg.noise_phi)[:, None, None]
    z = rng.normal(size=(n_s, n_x, 25)) * sd * np.sqrt(1.0 - phi**2)
    noise = np.empty_like(z)
    noise[..., 0] = 0.0
    for h in range(1, 25):
        noise[..., h] = phi[..., 0] * noise[..., h - 1] + z[..., h]
    # Bridged to 0 at both midnights so the path is a function of its own day only. Anomalous symbols get a
    # large, short-lived (phi 0.6 per hour) exchange-specific rate: a huge quoted APR that does not persist.
    noise = noise - noise[..., 24:25] * (np.arange(25) / 24.0)
    return r8 + noise[..., :24]


def _funding_rows(cfg: FundingMarketConfig, day: date) -> pl.DataFrame:
    idx = _day_index(cfg, day)
    st = _static(cfg)
    n_s, n_x = st.half_spread.shape
    hours = np.concatenate(
        [
            _hourly_r8(cfg, idx - 1)[..., 16:] if idx else np.repeat(_hourly_r8(cfg, 0)[..., :1], 8, axis=2),
            _hourly_r8(cfg, idx),
        ],
        axis=2,
    )  # [S, X, 32]: previous day 16:00 .. this day 23:00
    week = (day.toordinal() - 1) // 7  # weeks start on Mondays (ordinal 1 = Monday 0001-01-01)
    first_ord = day.toordinal()
    ivl_today = _intervals(cfg, week)
    ivl_prev_week = _intervals(cfg, (first_ord - 2) // 7)
    names = funding_symbols(cfg)
    day_ns = np.datetime64(day, "ns")
    frames = []
    cum = np.concatenate([np.zeros((n_s, n_x, 1)), np.cumsum(hours, axis=2)], axis=2)
    for h_end in range(24):
        # The interval ending at h_end was in force during the hour before it.
        ivl = ivl_prev_week if (h_end == 0 and (first_ord - 1) % 7 == 0) else ivl_today
        due = h_end % ivl == 0
        if not due.any():
            continue
        end = h_end + 8
        start = end - ivl
        total = (
            np.take_along_axis(cum, np.full((n_s, n_x, 1), end), axis=2)[..., 0]
            - np.take_along_axis(cum, start[..., None], axis=2)[..., 0]
        )
        rate = np.clip(total / 8.0, -_RATE_CAP, _RATE_CAP)
        s_idx, x_idx = np.nonzero(due)
        frames.append(
            (
                s_idx,
                x_idx,
                np.full(len(s_idx), day_ns + np.timedelta64(h_end * _HOUR_NS, "ns")),
                rate[s_idx, x_idx],
                ivl[s_idx, x_idx],
            )
        )
    s_idx, x_idx, ts, rate, ivl = (np.concatenate(parts) for parts in zip(*frames, strict=True))
    return pl.DataFrame(
        {
            "exchange": np.array(cfg.exchanges, dtype=object)[x_idx].astype(str),
            "symbol": np.array(names, dtype=object)[s_idx].astype(str),
            "funding_time": ts,
            "rate": rate,
            "interval_hours": ivl.astype(np.int32),
        },
        schema=FUNDING_RATE_SCHEMA,
    )


def _mark_rows(cfg: FundingMarketConfig, day: date) -> pl.DataFrame:
    idx = _day_index(cfg, day)
    st = _static(cfg)
    n_s, n_x = st.half_spread.shape
    n_t = 1440 // cfg.mark_every_minutes
    _, _, _, lp0, vol_mult = _anchor(cfg, idx)
    _, _, _, lp1, _ = _anchor(cfg, idx + 1)
    rng = _rng(cfg.seed, "marks", idx)
    steps = rng.normal(size=(n_s, n_t)) * (st.daily_vol[:, None] / np.sqrt(n_t))
    walk = np.concatenate([np.zeros((n_s, 1)), np.cumsum(steps, axis=1)], axis=1)
    frac = np.arange(n_t + 1) / n_t
    bridge = walk - walk[:, -1:] * frac
    log_mid = lp0[:, None] + (lp1 - lp0)[:, None] * frac + bridge  # [S, T+1]
    basis = rng.normal(size=(n_s, n_x, n_t)) * st.basis_sd[..., None]
    jumps = (rng.random((n_s, n_x, n_t)) < cfg.anomalous_jump_prob) & st.anomalous[:, None, None]
    jump_size = rng.normal(0.0, cfg.anomalous_jump_sd, (n_s, n_x, n_t)) * jumps
    # A jump decays over ~8 hours; cumulative decayed sum via a short loop over time steps (n_t = 96).
    decay = 0.98 ** (60 / cfg.mark_every_minutes / 4)
    acc = np.zeros((n_s, n_x))
    jump_path = np.empty_like(jump_size)
    for t in range(n_t):
        acc = acc * decay + jump_size[..., t]
        jump_path[..., t] = acc
    mark = np.exp(log_mid[:, None, :n_t] + basis + jump_path)
    hs = st.half_spread[..., None] * rng.uniform(0.7, 1.5, (n_s, n_x, n_t))
    volume = st.volume[..., None] * vol_mult[:, None, None] * rng.lognormal(0.0, 0.05, (n_s, n_x, n_t))
    names = funding_symbols(cfg)
    ts = np.datetime64(day, "ns") + np.arange(n_t) * np.timedelta64(cfg.mark_every_minutes * 60_000_000_000, "ns")
    s_idx, x_idx, t_idx = np.meshgrid(np.arange(n_s), np.arange(n_x), np.arange(n_t), indexing="ij")
    s_idx, x_idx, t_idx = s_idx.ravel(), x_idx.ravel(), t_idx.ravel()
    m = mark.ravel()
    return pl.DataFrame(
        {
            "exchange": np.array(cfg.exchanges, dtype=object)[x_idx].astype(str),
            "symbol": np.array(names, dtype=object)[s_idx].astype(str),
            "ts": ts[t_idx],
            "mark": m,
            "bid": m * (1.0 - hs.ravel()),
            "ask": m * (1.0 + hs.ravel()),
            "volume_24h": volume.ravel(),
        },
        schema=MARK_PRICE_SCHEMA,
    )


def generate_funding_day(cfg: FundingMarketConfig, day: date) -> FundingTape:
    """One UTC day of funding rates (every funding time in [day, day+1)) and mark snapshots; deterministic."""
    return FundingTape(_funding_rows(cfg, day), _mark_rows(cfg, day))


def planted_spreads(cfg: FundingMarketConfig, day: date) -> pl.DataFrame:
    """Ground truth of the planted structure on `day`: (symbol, exchange, sign, apr_offset) for active offsets."""
    _, _, planted, _, _ = _anchor(cfg, _day_index(cfg, day))
    s_idx, x_idx = np.nonzero(planted)
    names = funding_symbols(cfg)
    return pl.DataFrame(
        {
            "symbol": [names[i] for i in s_idx],
            "exchange": [cfg.exchanges[i] for i in x_idx],
            "sign": planted[s_idx, x_idx].astype(np.int8),
            "apr_offset": planted[s_idx, x_idx] * float(cfg.persistent_spread),
        },
        schema={"symbol": pl.Utf8, "exchange": pl.Utf8, "sign": pl.Int8, "apr_offset": pl.Float64},
    )


def _hourly_grid(cfg: FundingMarketConfig, start: date, days: int) -> dict[str, np.ndarray]:
    """Hourly [T, S, X] arrays of a day range: latest published rate/interval, funding paid, mid, half-spread."""
    names = funding_symbols(cfg)
    s_of = {s: i for i, s in enumerate(names)}
    x_of = {x: i for i, x in enumerate(cfg.exchanges)}
    n_s, n_x, n_t = len(names), len(cfg.exchanges), 24 * days
    paid = np.zeros((n_t, n_s, n_x))
    rate_now = np.full((n_t, n_s, n_x), np.nan)
    ivl_now = np.full((n_t, n_s, n_x), 8.0)
    mid = np.empty((n_t, n_s, n_x))
    hs = np.empty((n_t, n_s, n_x))
    vol = np.empty((n_t, n_s, n_x))
    t0 = np.datetime64(start, "ns")
    for k in range(days):
        tape = generate_funding_day(cfg, start + timedelta(days=k))
        fr = tape.funding_rates
        t = ((fr["funding_time"].to_numpy() - t0) // np.timedelta64(_HOUR_NS, "ns")).astype(int)
        s = np.array([s_of[v] for v in fr["symbol"]])
        x = np.array([x_of[v] for v in fr["exchange"]])
        paid[t, s, x] = fr["rate"].to_numpy()
        rate_now[t, s, x] = fr["rate"].to_numpy()
        ivl_now[t, s, x] = fr["interval_hours"].to_numpy()
        mk = tape.mark_prices.filter(pl.col("ts").dt.minute() == 0)
        t = ((mk["ts"].to_numpy() - t0) // np.timedelta64(_HOUR_NS, "ns")).astype(int)
        s = np.array([s_of[v] for v in mk["symbol"]])
        x = np.array([x_of[v] for v in mk["exchange"]])
        bid, ask = mk["bid"].to_numpy(), mk["ask"].to_numpy()
        mid[t, s, x] = (bid + ask) / 2
        hs[t, s, x] = (ask - bid) / (bid + ask)
        vol[t, s, x] = mk["volume_24h"].to_numpy()
    # Carry the latest published rate (and its interval) forward: what is known at each hour.
    known = ~np.isnan(rate_now)
    pos = np.where(known, np.arange(n_t)[:, None, None], 0)
    pos = np.maximum.accumulate(pos, axis=0)
    rate_now = np.take_along_axis(rate_now, pos, axis=0)
    ivl_now = np.take_along_axis(ivl_now, pos, axis=0)
    rate_now = np.where(np.maximum.accumulate(known, axis=0), rate_now, np.nan)
    return {"paid": paid, "rate_now": rate_now, "ivl_now": ivl_now, "mid": mid, "hs": hs, "vol": vol}


def greedy_pair_backtest(
    cfg: FundingMarketConfig,
    start: date,
    days: int,
    hold_hours: int = 72,
    fee_bps: float = 5.0,
    min_apr: float = 0.2,
    min_volume: float = 5e7,
) -> dict[str, float]:
    """Measure the planted structure: a one-position greedy rule that enters the highest observed-APR pair.

    Every hour while flat, among symbols whose both legs trade >= `min_volume`, enter the (symbol, long leg,
    short leg) with the largest APR from the latest published rates (no look-ahead) if >= `min_apr`; hold
    `hold_hours` (or to the end of the range), paying `fee_bps` taker fee plus the half-spread on every leg
    at entry and exit. Notional 1 per leg; returns funding earned, fees, price P&L, net and trade count.
    """
    g = _hourly_grid(cfg, start, days)
    ann = apr(g["rate_now"], g["ivl_now"])
    n_t, n_s, n_x = ann.shape
    funding = fees = price = 0.0
    trades = 0
    t = 0
    fee = fee_bps / 1e4
    while t < n_t - 1:
        a = np.where(np.isnan(ann[t]), np.nan, ann[t])
        ok = (g["vol"][t] >= min_volume).all(axis=1) & ~np.isnan(a).any(axis=1)
        if not ok.any():
            t += 1
            continue
        lo, hi = (
            np.nanargmin(np.where(ok[:, None], a, np.inf), axis=1),
            np.nanargmax(np.where(ok[:, None], a, -np.inf), axis=1),
        )
        gap = np.where(ok, a[np.arange(n_s), hi] - a[np.arange(n_s), lo], -np.inf)
        s = int(np.argmax(gap))
        if gap[s] < min_apr:
            t += 1
            continue
        lx, sx = lo[s], hi[s]
        end = min(t + hold_hours, n_t - 1)
        trades += 1
        fees += 2 * fee * 2 + g["hs"][t, s, lx] + g["hs"][t, s, sx] + g["hs"][end, s, lx] + g["hs"][end, s, sx]
        funding += g["paid"][t + 1 : end + 1, s, sx].sum() - g["paid"][t + 1 : end + 1, s, lx].sum()
        price += g["mid"][end, s, lx] / g["mid"][t, s, lx] - g["mid"][end, s, sx] / g["mid"][t, s, sx]
        t = end + 1
    return {
        "trades": float(trades),
        "funding": float(funding),
        "fees": float(fees),
        "price_pnl": float(price),
        "net": float(funding - fees + price),
    }


_AWARE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%:z")
_NAIVE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def _parse_time(values: pl.Series) -> pl.Series:
    """entry_time strings (ISO with ' ' or 'T', optional fraction, optional UTC offset or Z; naive = UTC)
    -> naive UTC Datetime('ns'); unreadable -> null. Each row is parsed on its own (formats may be mixed)."""
    text = values.str.strip_chars().str.replace("T", " ").str.replace(r"Z$", "+00:00")
    parsed = [
        text.str.to_datetime(fmt, strict=False, time_unit="ns").dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        for fmt in _AWARE_FORMATS
    ] + [text.str.to_datetime(fmt, strict=False, time_unit="ns") for fmt in _NAIVE_FORMATS]
    return pl.select(pl.coalesce(parsed)).to_series().alias(values.name)


def read_opportunities_csv(path: str | Path) -> pl.DataFrame:
    """Seed 001's opportunity CSV as a frame: the required columns typed, extra columns kept as text.

    entry_time -> Datetime('ns') naive UTC; prices, rates, fund_apr, volume_24h -> Float64. Values that do not
    parse become null (the warehouse quarantines those rows). A missing file, an empty/malformed file or a
    missing required column -> ValueError naming it.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"opportunities CSV {str(p)!r} does not exist")
    with p.open(newline="") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise ValueError(f"opportunities CSV {p.name!r} is empty (no header row)")
    header = [h.strip() for h in header]
    missing = [c for c in OPPORTUNITY_CSV_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"opportunities CSV {p.name!r} is missing column {missing[0]!r} (has {header})")
    try:
        raw = pl.read_csv(p, infer_schema=False, truncate_ragged_lines=False)
    except Exception as exc:
        raise ValueError(f"opportunities CSV {p.name!r} is malformed: {exc}") from exc
    raw = raw.rename({c: c.strip() for c in raw.columns})
    numeric = [
        c for c in OPPORTUNITY_CSV_COLUMNS if c not in ("entry_time", "symbol", "long_exchange", "short_exchange")
    ]
    return raw.with_columns(
        _parse_time(raw["entry_time"]),
        *[pl.col(c).str.strip_chars().cast(pl.Utf8) for c in ("symbol", "long_exchange", "short_exchange")],
        *[pl.col(c).str.strip_chars().cast(pl.Float64, strict=False) for c in numeric],
    )
