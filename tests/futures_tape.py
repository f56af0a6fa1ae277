"""A generated millisecond futures tape, shaped like a real E-mini recording: the tests' and benchmarks' input.

Prints carry US/Central wall-clock times with milliseconds. Many rows repeat the previous print exactly (same
millisecond, price and size: one aggressive order filling several resting ones), which is legal and must be kept.
Each session runs from the evening open (17:00 CT the day before) to its close; a few prints fall in the daily
break and on the weekend, where no session is, and are never part of a session.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from market.calendar import session_bounds
from market.symbols import get_symbol

CHICAGO = "America/Chicago"
LOCAL_FORMAT = "%d.%m.%Y %H:%M:%S.%f"  # pandas/strftime form of dd.mm.yyyy hh:mm:ss.fff (cut to milliseconds)


def session_ticks(
    symbol: str, day: date, n: int, seed: int, repeat_share: float = 0.3, base: float = 4800.0
) -> pd.DataFrame:
    """`n` prints of `symbol` inside its session `day`: naive-UTC `ts` (ms), price on the tick grid, size."""
    spec = get_symbol(symbol, day)
    open_, close_ = (int(b.astype(np.int64)) // 1_000_000 for b in session_bounds(day, spec.session_rule))
    rng = np.random.default_rng(seed)
    ms = np.sort(rng.integers(open_, close_, n))
    repeat = rng.random(n) < repeat_share
    repeat[0] = False
    steps = rng.choice([-1, 0, 0, 1], n)
    price = base + spec.tick * np.cumsum(steps)
    size = rng.choice([1.0, 1.0, 2.0, 5.0, 10.0], n)
    src = np.maximum.accumulate(np.where(repeat, 0, np.arange(n)))  # a run of repeats copies its first print
    ms, price, size = np.where(repeat, ms[src], ms), price[src], size[src]
    order = np.argsort(ms, kind="stable")
    return pd.DataFrame(
        {"ts": pd.to_datetime(ms[order], unit="ms"), "price": price[order], "size": size[order], "symbol": symbol}
    )


def outside_ticks(symbol: str, day: date) -> pd.DataFrame:
    """Three prints of `symbol` in the daily break after `day`'s close, where no session is."""
    spec = get_symbol(symbol, day)
    close_ = pd.Timestamp(session_bounds(day, spec.session_rule)[1])
    stamps = [close_ + pd.Timedelta(minutes=m) for m in (1, 20, 59)]
    return pd.DataFrame({"ts": stamps, "price": 4800.0, "size": 1.0, "symbol": symbol})


def write_local_csv(frame: pd.DataFrame, path: str) -> None:
    """`frame` (naive-UTC ts) as a CSV with US/Central wall-clock times, dd.mm.yyyy hh:mm:ss.fff."""
    local = frame["ts"].dt.tz_localize("UTC").dt.tz_convert(CHICAGO).dt.strftime(LOCAL_FORMAT).str[:-3]
    frame.assign(ts=local).to_csv(path, index=False)
