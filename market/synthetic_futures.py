"""Synthetic CME equity-index futures: the embedded market's ES, MES, NQ and MNQ contracts on Globex sessions.

See market/SYNTHETIC.md ("Futures"). Each underlying (ES and its micro MES share one; NQ and MNQ another) has a
daily walk over the CMES calendar and, each trading day, a minute path from 17:00 CT the evening before to the
16:00 CT close: quiet overnight, busier from the European morning, a spike at the 08:30 CT cash open (with a jump:
the gap risk at the open), a bump into the 15:00 CT cash close, occasional fast markets, GARCH volatility and the
same planted order-flow edge as the equities. Every listed contract of the underlying (the two nearest) prints
that path plus its basis on a 0.25 tick, and the volume moves from the front to the next contract around the roll.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np

from market.calendar import is_session, session_bounds, session_index
from market.futures import contracts_after
from market.sources import DayTape, MissingDataError
from market.symbols import SymbolSpec, get_symbol
from market.synthetic import (
    SyntheticMarketConfig,
    _anchor_walk,
    _market_day,
    _own_path,
    _print_tape,
    _regime,
    _rng,
    _Shape,
    _symbol_key,
)

LISTED = 2  # contracts of a root the embedded market lists on a day: the nearest two
CARRY = 0.04  # annual carry (financing minus dividends): a contract trades at exp(CARRY * years to expiry)
FAST_MARKET_PROB = 0.12  # chance that a day has one fast market in its cash hours
FAST_MARKET_VOL = 3.0  # volatility multiplier inside a fast market (activity rises with it)
OPEN_JUMP_SD = 0.5  # sd of the 08:30 CT open's jump, in units of gap_vol (Student-t, 3 degrees of freedom)
ROLL_WIDTH_DAYS = 1.5  # how many days the volume takes to move from front to next around the roll
_CT_OPEN = 17 * 60  # the Globex day opens at 17:00 CT the evening before (minutes after midnight)
_CASH_OPEN, _CASH_CLOSE = 8 * 60 + 30, 15 * 60  # 08:30 and 15:00 CT


def underlying_of(spec: SymbolSpec) -> str:
    """The instrument whose price a contract follows: MESH24 -> ES, ESH24 -> ES."""
    return spec.underlying or spec.root or spec.symbol


def listed_contracts(root: str, session_date: date) -> list[str]:
    """The contracts of `root` the embedded market lists on `session_date`: the nearest two not yet expired."""
    return [c.symbol for c in contracts_after(root, session_date, LISTED)]


def _clock(n_min: int) -> np.ndarray:
    """Local CT minute of day of each minute of a Globex day (0 = midnight), from its 17:00 open."""
    return (_CT_OPEN + np.arange(n_min)) % 1440


def vol_profile(n_min: int) -> np.ndarray:
    """Relative minute volatility by CT clock: Asia 0.3, Europe 0.45, the cash session 1 (with a spike after the
    08:30 open and a bump into the 15:00 close), 0.5 after the cash close."""
    t = _clock(n_min).astype(np.float64)
    cash = (t >= _CASH_OPEN) & (t < _CASH_CLOSE)
    prof = np.where(t >= 2 * 60, 0.45, 0.3)
    prof = np.where(t >= _CASH_CLOSE, 0.5, prof)
    prof = np.where(t >= _CT_OPEN, 0.3, prof)  # the evening before midnight is Asia too
    spike = 1.0 + 1.2 * np.exp(-(t - _CASH_OPEN) / 12.0) + 0.3 * np.exp(-(_CASH_CLOSE - t) / 20.0)
    return np.where(cash, spike, prof)


_FULL_PROFILE = vol_profile(1380)
_CASH_NORM = float(np.sqrt(np.sum(np.where(_FULL_PROFILE >= 1.0, _FULL_PROFILE, 0.0) ** 2)))
_DAY_VAR = float(np.sum(_FULL_PROFILE**2)) / _CASH_NORM**2  # a Globex day's variance in cash-session units


def _fast_market(cfg: SyntheticMarketConfig, key: int, ordinal: int, n_min: int) -> np.ndarray:
    """Per-minute volatility multiplier: 1, or FAST_MARKET_VOL through one 5-20 minute window of the cash hours."""
    rng = _rng(cfg.seed, key ^ 0x5A5A, ordinal)
    mult = np.ones(n_min)
    t = _clock(n_min)
    cash = np.flatnonzero((t >= _CASH_OPEN + 5) & (t < _CASH_CLOSE - 20))
    if rng.random() < FAST_MARKET_PROB and cash.size:
        start = int(rng.choice(cash))
        mult[start : start + int(rng.integers(5, 21))] = FAST_MARKET_VOL
    return mult


def _volume_share(spec: SymbolSpec, session_date: date) -> float:
    """The contract's share of its root's volume: the front's falls and the next's rises around `roll_days` before
    the front expires (a logistic over ROLL_WIDTH_DAYS), each keeping at least 1%."""
    front = contracts_after(spec.root, session_date, 1)[0]
    left = (front.expiry - session_date).days
    next_share = 1.0 / (1.0 + np.exp((left - spec.roll_days) / ROLL_WIDTH_DAYS))
    share = next_share if spec.symbol != front.symbol else 1.0 - next_share
    return float(np.clip(share, 0.01, 0.99))


def _contract_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Trade sizes in contracts: mostly 1-3, a Pareto tail of blocks up to 500."""
    return np.minimum(1.0 + np.floor(rng.pareto(1.6, n) * 1.5), 500.0)


def _book_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.ceil(rng.lognormal(3.5, 0.8, n))


def futures_day(cfg: SyntheticMarketConfig, spec: SymbolSpec, session_date: date) -> DayTape:
    """Raw trades and quotes of futures contract `spec` on its Globex trading day `session_date`.

    MissingDataError when the contract is not among the two the embedded market lists that day; ValueError on a
    day that is not a session of its calendar.
    """
    if spec.expiry is None:
        raise ValueError(f"{spec.symbol} is a futures root; name a contract such as {spec.symbol}H24")
    rule = spec.session_rule
    if not is_session(session_date, rule):
        raise ValueError(f"{session_date} is not a {rule} session")
    if spec.symbol not in listed_contracts(spec.root, session_date):
        raise MissingDataError(
            f"{spec.symbol} is not listed by the embedded market on {session_date}: it lists "
            f"{', '.join(listed_contracts(spec.root, session_date))}"
        )
    under = get_symbol(underlying_of(spec))
    key = _symbol_key(under.symbol)
    i = session_index(session_date, rule)
    open_, close_ = session_bounds(session_date, rule)
    open_ns = int(open_.astype("datetime64[ns]").astype(np.int64))
    n_min = int((close_ - open_) // np.timedelta64(1, "m"))
    ordinal = session_date.toordinal()

    fast = _fast_market(cfg, key, ordinal, n_min)
    profile, at_open = vol_profile(n_min), _clock(n_min) == _CASH_OPEN
    base = cfg.daily_vol * _regime(cfg.seed, rule)[i] / _CASH_NORM * profile * fast
    mkt = _market_day(cfg, _rng(cfg.seed, key, ordinal), base)
    log_open, target = _day_levels(cfg, under, i)
    path_rng = _rng(cfg.seed, key + 1, ordinal)  # the underlying's flow and path: shared by all its contracts
    jumps = np.zeros(n_min)
    cash_open = np.flatnonzero(at_open)
    if cash_open.size:
        jumps[cash_open[0]] = OPEN_JUMP_SD * cfg.gap_vol * path_rng.standard_t(3.0) / np.sqrt(3.0)
    flow, own = _own_path(replace(cfg, edge=cfg.futures_edge), under, path_rng, mkt, target, jumps)

    years = (spec.expiry - session_date).days / 365.25
    shape = _Shape(
        activity=profile * fast * _volume_share(spec, session_date),
        norm=float(np.sum(_FULL_PROFILE)),
        wide=np.where(at_open, 4.0, 1.0),
        trade_sizes=_contract_sizes,
        quote_sizes=_book_sizes,
        log_offset=CARRY * years,
    )
    rng = _rng(cfg.seed, _symbol_key(spec.symbol), ordinal)
    return _print_tape(cfg, spec, rng, mkt, flow, own, log_open, open_ns, shape)


def _day_levels(cfg: SyntheticMarketConfig, under: SymbolSpec, i: int) -> tuple[float, float]:
    """Log open of Globex day i of the underlying and its open-to-close target (overnight hours included)."""
    walk, day = _anchor_walk(cfg.seed, _symbol_key(under.symbol), under.session_rule)
    scale = under.beta * cfg.daily_vol * np.sqrt(_DAY_VAR)
    log_open = np.log(under.start_price) + under.beta * cfg.gap_vol * walk[0, i] + scale * walk[1, i]
    return float(log_open), float(scale * day[i])
