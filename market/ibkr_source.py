"""Interactive Brokers historical data (TWS / IB Gateway through `ib_async`) behind the `MarketSource` protocol.

`IbkrSource.fetch_day(symbol, day)` returns one session as a raw `DayTape`. The source is read-only: it connects
with `readonly=True`, fetches no account or order state at start-up, and never sends an order message.

Columns and where they come from
- bars (BAR_SCHEMA): `reqHistoricalData(contract, endDateTime=<window end, UTC>, durationStr="<window> S",
  barSizeSetting="1 min", whatToShow="TRADES", useRTH=not extended_hours, formatDate=2)`. formatDate=2 makes IB
  send each bar's time as UTC epoch seconds, which is the bar's START, so `ts` needs no timezone guesswork.
  open/high/low/close as sent; volume = the bar's volume (shares; TWS before API 10 sent stock volume in lots of
  100); vwap = the bar's `average`; trade_count = `barCount`. IB sends -1 when it has no average or count: those
  become null. IB has no volume for an index, so an index bar's volume is 0.0, like its level rows.
- trades (TRADE_SCHEMA): `reqHistoricalTicks(..., whatToShow="TRADES")` (price, size). IB stores these at
  1-second resolution; the k-th tick of a second (k = 0, 1, ...) in IB's order gets ts = that second + k ns, so
  genuine repeated prints are not mistaken for a feed's duplicated rows, and every tick stays in its own second.
- quotes (QUOTE_SCHEMA): `reqHistoricalTicks(..., whatToShow="BID_ASK")`: bid=priceBid, ask=priceAsk,
  bid_size=sizeBid, ask_size=sizeAsk; the top-of-book changes IB recorded, also at 1-second resolution (and spaced
  1 ns apart within a second, like trades).
- index symbols (SPX): levels as trades with size 0.0 from `index_ticks` ("TRADES" or "MIDPOINT" ticks); no quotes.
- futures contracts (ESH24): a `Future` of the root's configured contract (`contracts.ES`: FUT on CME) with
  lastTradeDateOrContractMonth = the contract month (202403), over the whole Globex day from 17:00 CT the evening
  before (useRTH=0 always: IB's regular hours would cut it to the pit session). A bare root (ES) names no contract
  and is refused; the continuous series is derived from the contracts in the warehouse. `front_contract(root)`
  asks IB's continuous future (CONTFUT, reqContractDetails) which contract it stands for now.

Window: `market.calendar.fetch_window(day, extended_hours)`; `useRTH = not extended_hours`. A tick page may run
past the window end (a request asks for the next 1000 ticks, wherever they fall): paging stops there and the ticks
at or after the end are cut off, since they lie outside the requested window. Bars are passed through as sent.

Paging and its repeated ticks
IB returns at most 1000 ticks per `reqHistoricalTicks` and takes the start time to the second. Ticks before the
requested start are dropped; a page holding only such ticks and nothing new makes no progress and is an error
(asking again would repeat it at 15 s a request for as long as one cared to wait). Each next page must
start at the second of the last tick received (starting one second later would skip that second's remaining
ticks), so each page begins with ticks of that boundary second that were already taken. They are dropped by
COUNTING, not by value: the connector remembers the multiset of ticks it took in the boundary second and removes
exactly one matching tick per remembered one from the new page's boundary second. Genuine identical trades in one
second (same price and size twice) survive, because each remembered tick cancels only one occurrence; boundary-
second ticks the previous page did not reach (cut off by the cap) are new and kept. Paging ends at the window end
or when a page brings nothing new (one extra request per stream and day: a short page is not trusted as the end).
A page whose ticks all lie in ONE second and fill the cap cannot be paged past (asking again from that second
returns the same page), so the connector moves on to the next second and logs a warning. What is lost: the ticks
of that second after the first 1000 in IB's order, if IB really capped there (IB documents that it completes the
last second instead, returning more than 1000 ticks, in which case nothing is lost).

Pacing (enforced by `PacingLimiter` before every historical request; IB's documented rules)
- no identical request within 15 s; no 6 or more requests for one contract, exchange and tick type within 2 s;
  at most 60 requests in any 10 minutes; a BID_ASK request counts twice.
- Arithmetic: a day costs 1 bars request plus about ticks / 1000 + 1 pages per tick stream. SPY prints of the
  order of 500,000 trades in a regular session: about 500 TRADES pages, which at 60 requests per 10 minutes
  (6 a minute) take about 85 minutes; its BID_ASK history is at least as long and each page counts twice, so
  another 170 minutes or more. A full SPY day of ticks and quotes takes about 4 hours; bars alone take one
  request. `ticks: false` / `quotes: false` return those streams as None (not fetched), so the warehouse keeps
  what it has stored for them; the tick-built bars downstream need ticks fetched once per session.
- The limiter only sees this process's requests. IB counts per TWS / Gateway session, so share one limiter
  between sources that use the same TWS (the `limiter=` argument) and do not run two processes against it.

Errors
An empty result is never read as "no data": ib_async returns [] on a timeout (with only a log warning) and on a
request error, so [] raises `IbkrSourceError` naming the request, with any error code and message IB sent for it
(for example 162 or 200). IB's explicit "HMDS query returned no data" (error 162) for a session the calendar says
traded raises `IbkrMissingDataError` (a `MissingDataError`: the ingest records a gap). A pacing violation, a lost
connection or a refused connect is transient and retried with backoff (`market.retry.call_with_backoff`); the
pacing limiter makes a retried identical request wait its 15 s. A timeout drops the connection so that a late
answer cannot be mistaken for the next request's.

Approximated: timestamps are whole seconds (IB's resolution); the order of ticks within a second is IB's; the
trades are what IB recorded as TRADES (IB's tape, which may filter some odd-lot or irregular prints).

Threading: ib_async runs on asyncio. The source runs the IB client on its own event loop in a private daemon thread,
started at the first fetch, so `fetch_day` works from plain synchronous code in any thread (Dagster ops, scripts,
tests), even where the caller has an event loop of its own. `close()` (or leaving the `with` block) disconnects and
stops that thread.

`ib_async` is imported lazily (`ib_insync` is accepted where only it is installed; never both, they overwrite each
other's `eventkit`).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import math
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Hashable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import polars as pl

from market.calendar import fetch_window, session_index
from market.retry import call_with_backoff
from market.sources import (
    BAR_SCHEMA,
    QUOTE_SCHEMA,
    TRADE_SCHEMA,
    DayTape,
    MissingDataError,
    SourceError,
    empty_bars,
    empty_quotes,
    empty_trades,
)
from market.symbols import contract_symbol, get_symbol
from market.values import is_int, is_number

__all__ = [
    "DEFAULT_CONTRACTS",
    "TICKS_PER_REQUEST",
    "ContractSpec",
    "IbkrConfig",
    "IbkrImportError",
    "IbkrMissingDataError",
    "IbkrSource",
    "IbkrSourceError",
    "IbkrTransientError",
    "PacingLimiter",
    "PacingRules",
    "ib_module_name",
    "import_ib",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

TICKS_PER_REQUEST = 1000  # IB's cap per reqHistoricalTicks
MAX_PAGES = 100_000  # hard bound on one tick stream's paging loop (a runaway loop fails instead of spinning)
_INDEX_TICKS = ("TRADES", "MIDPOINT")
_SEC_TYPES = ("STK", "IND", "FUT")
# IB codes (sent with reqId -1) that say the link to TWS or to IB's historical data farm is down: transient.
_CONNECTIVITY_CODES = frozenset({504, 1100, 1300, 2103, 2105, 2110})
_NO_DATA_MARKERS = ("returned no data", "no data")


class IbkrSourceError(SourceError):
    """An IB request failed for good: an error code, an empty result (timeout), or retries ran out."""


class IbkrMissingDataError(IbkrSourceError, MissingDataError):
    """IB says it has no data (error 162 "HMDS query returned no data") for a session the calendar says traded."""


class IbkrTransientError(Exception):
    """A failure worth retrying: a pacing violation, a lost or refused connection."""


class IbkrImportError(ImportError):
    """Neither or both of ib_async and ib_insync are installed."""


# ----------------------------------------------------------------------------------------------------------
# Lazy import


def ib_module_name() -> str:
    """The IB client to import: ib_async, or ib_insync where only it is installed; never both (eventkit clash)."""
    has_async = importlib.util.find_spec("ib_async") is not None
    has_insync = importlib.util.find_spec("ib_insync") is not None
    if has_async and has_insync:
        raise IbkrImportError(
            "both ib_async and ib_insync are installed; they overwrite each other's eventkit package, "
            "so uninstall ib_insync (ib_async is its maintained fork with the same API)"
        )
    if has_async:
        return "ib_async"
    if has_insync:
        return "ib_insync"
    raise IbkrImportError("the ibkr source needs ib_async (pip install ib_async)")


def import_ib() -> ModuleType:
    """Import the IB client library chosen by `ib_module_name` (only when a source first connects)."""
    return importlib.import_module(ib_module_name())


# ----------------------------------------------------------------------------------------------------------
# Configuration


def _bad(key: str, msg: str) -> ValueError:
    return ValueError(f"ibkr config: {key} {msg}")


def _refuse_unknown(key: str, given: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    if not isinstance(given, Mapping):
        raise _bad(key, f"must be a mapping, got {type(given).__name__}")
    for name in given:
        if name not in allowed:
            raise _bad(f"{key}.{name}" if key else repr(name), f"is not a known key (known: {', '.join(allowed)})")


@dataclass(frozen=True)
class ContractSpec:
    """How IB names one symbol: security type (STK or IND), routing exchange, currency, optional primary exchange."""

    sec_type: str
    exchange: str
    currency: str = "USD"
    primary_exchange: str = ""

    def validate(self, key: str) -> None:
        """ValueError naming `key` (e.g. "contracts.SPY") when a field is unusable."""
        if self.sec_type not in _SEC_TYPES:
            raise _bad(f"{key}.sec_type", f"must be one of {', '.join(_SEC_TYPES)}, got {self.sec_type!r}")
        for name in ("exchange", "currency"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise _bad(f"{key}.{name}", f"must be a non-empty string, got {value!r}")
        if not isinstance(self.primary_exchange, str):
            raise _bad(f"{key}.primary_exchange", f"must be a string, got {self.primary_exchange!r}")

    @classmethod
    def from_dict(cls, key: str, d: Mapping[str, Any]) -> ContractSpec:
        """A ContractSpec from one YAML entry; unknown keys and bad values raise ValueError naming the key."""
        _refuse_unknown(key, d, tuple(f.name for f in fields(cls)))
        if "sec_type" not in d or "exchange" not in d:
            raise _bad(key, "needs sec_type and exchange")
        spec = cls(**d)
        spec.validate(key)
        return spec


DEFAULT_CONTRACTS: dict[str, ContractSpec] = {
    "SPY": ContractSpec("STK", "SMART", "USD", "ARCA"),
    "QQQ": ContractSpec("STK", "SMART", "USD", "NASDAQ"),
    "SPX": ContractSpec("IND", "CBOE", "USD"),
    # Futures roots: each contract (ESH24) is a Future of its root with lastTradeDateOrContractMonth = 202403.
    "ES": ContractSpec("FUT", "CME", "USD"),
    "MES": ContractSpec("FUT", "CME", "USD"),
    "NQ": ContractSpec("FUT", "CME", "USD"),
    "MNQ": ContractSpec("FUT", "CME", "USD"),
}


@dataclass(frozen=True)
class PacingRules:
    """IB's historical-data pacing rules (defaults are IB's documented limits)."""

    identical_s: float = 15.0  # no identical request within this many seconds
    contract_window_s: float = 2.0  # window of the per-contract rule
    contract_max: int = 5  # at most this many per contract+exchange+tick type in the window (IB: "6 or more" fails)
    window_s: float = 600.0  # window of the overall rule
    window_max: int = 60  # at most this many requests in the window
    bid_ask_weight: int = 2  # a BID_ASK request counts this many times

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, key: str = "pacing") -> None:
        """ValueError naming the key when a rule is unusable."""
        for name in ("identical_s", "contract_window_s", "window_s"):
            value = getattr(self, name)
            if not is_number(value) or value < 0:
                raise _bad(f"{key}.{name}", f"must be a number >= 0, got {value!r}")
        for name in ("contract_max", "window_max", "bid_ask_weight"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise _bad(f"{key}.{name}", f"must be an int >= 1, got {value!r}")
        if self.bid_ask_weight > min(self.contract_max, self.window_max):
            raise _bad(f"{key}.bid_ask_weight", "must not exceed contract_max or window_max")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], key: str = "pacing") -> PacingRules:
        """PacingRules from the YAML `pacing` mapping; missing keys keep IB's defaults."""
        _refuse_unknown(key, d, tuple(f.name for f in fields(cls)))
        return cls(**d)


@dataclass(frozen=True)
class IbkrConfig:
    """Where TWS / IB Gateway listens and what to fetch (the `ibkr` section of configs/market.yaml)."""

    host: str = "127.0.0.1"  # TWS / Gateway host
    port: int = 7497  # 7497 TWS paper (7496 TWS live, 4002 Gateway paper, 4001 Gateway live)
    client_id: int = 17  # unique per connection to one TWS
    timeout_s: float = 60.0  # per historical request; an unanswered request is an error, not "no data"
    connect_timeout_s: float = 10.0  # connect and API handshake
    contracts: dict[str, ContractSpec] = field(default_factory=lambda: dict(DEFAULT_CONTRACTS))
    extended_hours: bool = False  # fetch 04:00-20:00 New York with useRTH=0, else the regular session
    ticks: bool = True  # TRADES ticks into trades (index levels for an index)
    quotes: bool = True  # BID_ASK ticks into quotes (never for an index)
    bars: bool = True  # IB's 1-minute TRADES bars
    index_ticks: str = "TRADES"  # which ticks carry an index's levels: TRADES or MIDPOINT
    max_retries: int = 4  # retries of one request on a transient failure
    backoff_s: float = 1.0  # first backoff wait, doubled per retry
    pacing: PacingRules = field(default_factory=PacingRules)

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise _bad("host", f"must be a non-empty string, got {self.host!r}")
        if not is_int(self.port) or not 1 <= self.port <= 65535:
            raise _bad("port", f"must be an int in [1, 65535], got {self.port!r}")
        if not is_int(self.client_id) or self.client_id < 0:
            raise _bad("client_id", f"must be an int >= 0, got {self.client_id!r}")
        for name in ("timeout_s", "connect_timeout_s"):
            value = getattr(self, name)
            if not is_number(value) or value <= 0:
                raise _bad(name, f"must be a number > 0, got {value!r}")
        for name in ("extended_hours", "ticks", "quotes", "bars"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise _bad(name, f"must be true or false, got {value!r}")
        if self.index_ticks not in _INDEX_TICKS:
            raise _bad("index_ticks", f"must be one of {', '.join(_INDEX_TICKS)}, got {self.index_ticks!r}")
        if not is_int(self.max_retries) or self.max_retries < 0:
            raise _bad("max_retries", f"must be an int >= 0, got {self.max_retries!r}")
        if not is_number(self.backoff_s) or self.backoff_s < 0:
            raise _bad("backoff_s", f"must be a number >= 0, got {self.backoff_s!r}")
        if not isinstance(self.contracts, Mapping):
            raise _bad("contracts", f"must be a mapping of symbol to contract, got {self.contracts!r}")
        for symbol, spec in self.contracts.items():
            if not isinstance(spec, ContractSpec):
                raise _bad(f"contracts.{symbol}", f"must be a ContractSpec, got {spec!r}")
            spec.validate(f"contracts.{symbol}")
        object.__setattr__(self, "contracts", dict(self.contracts))
        if not isinstance(self.pacing, PacingRules):
            raise _bad("pacing", f"must be PacingRules, got {self.pacing!r}")
        self.pacing.validate()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> IbkrConfig:
        """Config from the YAML mapping; unknown keys or bad values raise ValueError naming the key.

        `contracts` entries override the defaults per symbol (SPY, QQQ, SPX keep theirs unless given)."""
        d = dict(d or {})
        _refuse_unknown("", d, tuple(f.name for f in fields(cls)))
        if "contracts" in d:
            given = d["contracts"]
            _refuse_unknown("contracts", given or {}, tuple(given or {}))
            contracts = dict(DEFAULT_CONTRACTS)
            for symbol, entry in (given or {}).items():
                contracts[str(symbol)] = ContractSpec.from_dict(f"contracts.{symbol}", entry)
            d["contracts"] = contracts
        if "pacing" in d:
            d["pacing"] = PacingRules.from_dict(d["pacing"] or {})
        return cls(**d)


# ----------------------------------------------------------------------------------------------------------
# Pacing


class PacingLimiter:
    """Waits before each historical request until every one of IB's pacing rules allows it.

    Rules (see `PacingRules`): no identical request within `identical_s`; at most `contract_max` weighted
    requests per contract key in any `contract_window_s`; at most `window_max` weighted requests in any
    `window_s`. A request made at time t counts while now - t < window. Deterministic given `clock` and `sleep`
    (tests pass a fake clock whose sleep advances it). Thread-safe: callers sharing one TWS share one limiter.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rules: PacingRules | None = None,
    ) -> None:
        self.rules = rules if rules is not None else PacingRules()
        self.rules.validate()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._identical: dict[Hashable, float] = {}
        self._by_contract: dict[Hashable, deque[tuple[float, int]]] = {}
        self._all: deque[tuple[float, int]] = deque()

    def delay(self, request_key: Hashable, contract_key: Hashable, weight: int = 1) -> float:
        """Seconds to wait from now before this request is allowed (0.0 when it may go at once)."""
        with self._lock:
            return self._delay(self._clock(), request_key, contract_key, weight)

    def acquire(self, request_key: Hashable, contract_key: Hashable, weight: int = 1) -> float:
        """Wait (through `sleep`) until the request is allowed, then record it; returns the seconds waited."""
        if not is_int(weight) or not 1 <= weight <= min(self.rules.contract_max, self.rules.window_max):
            raise ValueError(f"weight must be an int in [1, {min(self.rules.contract_max, self.rules.window_max)}]")
        waited = 0.0
        with self._lock:
            while (wait := self._delay(self._clock(), request_key, contract_key, weight)) > 0:
                self._sleep(wait)
                waited += wait
            now = self._clock()
            self._identical[request_key] = now
            self._by_contract.setdefault(contract_key, deque()).append((now, weight))
            self._all.append((now, weight))
        return waited

    def _delay(self, now: float, request_key: Hashable, contract_key: Hashable, weight: int) -> float:
        r = self._rules_pruned(now)
        last = self._identical.get(request_key)
        per_contract = self._by_contract.get(contract_key, ())
        return max(
            0.0,
            (last + r.identical_s - now) if last is not None else 0.0,
            _window_wait(per_contract, now, r.contract_window_s, r.contract_max, weight),
            _window_wait(self._all, now, r.window_s, r.window_max, weight),
        )

    def _rules_pruned(self, now: float) -> PacingRules:
        """Forget requests that no rule can count any more (keeps the state bounded on long runs)."""
        r = self.rules
        while self._all and now - self._all[0][0] >= r.window_s:
            self._all.popleft()
        for key, events in list(self._by_contract.items()):
            while events and now - events[0][0] >= r.contract_window_s:
                events.popleft()
            if not events:
                del self._by_contract[key]
        if len(self._identical) > 4 * r.window_max:
            self._identical = {k: t for k, t in self._identical.items() if now - t < r.identical_s}
        return r


def _window_wait(events: Any, now: float, window: float, limit: int, weight: int) -> float:
    """Seconds until the weighted count of events within `window` leaves room for `weight` more (0 if it does)."""
    live = [(t, w) for t, w in events if now - t < window]
    excess = sum(w for _, w in live) + weight - limit
    if excess <= 0:
        return 0.0
    freed = 0
    for t, w in live:  # oldest first
        freed += w
        if freed >= excess:
            return t + window - now
    return window  # unreachable while weight <= limit


# ----------------------------------------------------------------------------------------------------------
# The event-loop thread


class _LoopThread:
    """A private asyncio loop in a daemon thread; every call into the IB client runs on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="ibkr-source-loop", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the loop and wait for it (the timeout is a last guard; coroutines time out themselves)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        """Cancel what is left on the loop, stop it, join the thread and close the loop."""
        if self.loop.is_closed():
            return
        if self.thread.is_alive():

            async def cancel_rest() -> None:
                rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in rest:
                    task.cancel()
                await asyncio.gather(*rest, return_exceptions=True)

            try:
                asyncio.run_coroutine_threadsafe(cancel_rest(), self.loop).result(2.0)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(5.0)
        if not self.thread.is_alive():
            self.loop.close()


async def _disconnect(ib: Any) -> None:
    """Disconnect `ib` and let the transport finish closing, so no socket outlives the source."""
    conn = ib.client.conn
    ib.disconnect()
    conn.disconnect()  # a half-open connect leaves a transport that IB.disconnect skips
    for _ in range(100):
        if conn.transport is None:
            return
        await asyncio.sleep(0.005)


def _shutdown(runner: _LoopThread, ib: Any) -> None:
    """Disconnect and stop the loop thread (close() and the garbage-collection safety net)."""
    if runner.loop.is_closed():
        return
    if ib is not None and runner.thread.is_alive():
        try:
            runner.run(_disconnect(ib), 5.0)
        except Exception as exc:  # shutting down: a broken socket must not keep the thread alive
            logger.warning("ibkr: disconnect failed: %s", exc)
    runner.stop()


# ----------------------------------------------------------------------------------------------------------
# The source


def _ib_utc(seconds: int) -> str:
    """IB's UTC datetime form ("yyyymmdd-hh:mm:ss"), passed as a string so no library reformats it."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%d-%H:%M:%S")


def _epoch_s(value: Any) -> int:
    """Whole UTC epoch seconds of a datetime from the IB client (naive means UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return math.floor(value.timestamp())
    if isinstance(value, int | float):
        return math.floor(value)
    raise IbkrSourceError(f"unexpected IB timestamp {value!r}")


def _tick_key(tick: Any) -> str:
    """Identity of a tick for repeat counting: every field (repr also makes NaN equal to NaN)."""
    return repr(tick)


def _drop_repeats(page: list[Any], boundary_s: int, taken: Counter[str]) -> list[Any]:
    """The ticks of `page` not received before: each remembered boundary-second tick cancels ONE equal tick."""
    pending = Counter(taken)
    fresh = []
    for tick in page:
        if _epoch_s(tick.time) == boundary_s:
            key = _tick_key(tick)
            if pending[key] > 0:
                pending[key] -= 1
                continue
        fresh.append(tick)
    return fresh


def _nullable(value: float) -> float | None:
    """IB's -1 ("none") as null; anything else (NaN included) as sent."""
    return None if value == -1 else float(value)


@dataclass
class _Outcome:
    """What one request attempt produced: ticks or bars, or nothing and why."""

    rows: list[Any] | None
    errors: list[tuple[int, str]]
    timed_out: bool = False


class IbkrSource:
    """One IB TWS / Gateway connection serving `fetch_day` (see the module docstring).

    `ib`: an unconnected IB client to use (default: a new `IB()` of the imported library); `limiter`: the pacing
    limiter (share one per TWS); `sleep`: the retry backoff sleeper (tests pass a no-op).
    """

    name = "ibkr"

    def __init__(
        self,
        config: IbkrConfig | None = None,
        *,
        ib: Any = None,
        limiter: PacingLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config if config is not None else IbkrConfig()
        self.limiter = limiter if limiter is not None else PacingLimiter(rules=self.config.pacing)
        self._sleep = sleep
        self._ib = ib
        self._module: ModuleType | None = None
        self._runner: _LoopThread | None = None
        self._finalizer: weakref.finalize | None = None
        self._lock = threading.RLock()
        self._errors: list[tuple[int, int, str]] = []
        self._listening = False
        self.requests_made = 0  # historical requests sent (pages included): what the pacing budget saw

    def __repr__(self) -> str:
        c = self.config
        return f"IbkrSource(host={c.host!r}, port={c.port}, client_id={c.client_id}, connected={self.connected})"

    def __enter__(self) -> IbkrSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """True while the API connection to TWS is up."""
        return self._ib is not None and self._runner is not None and bool(self._ib.isConnected())

    def close(self) -> None:
        """Disconnect from TWS and stop the event-loop thread (safe to call twice; a later fetch reconnects)."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()  # runs _shutdown once
                self._finalizer = None
            self._runner = None

    # -- connection ----------------------------------------------------------------------------------------

    def _ensure_connected(self) -> None:
        if self._module is None:
            self._module = import_ib()
        if self._runner is None:
            if self._ib is None:
                self._ib = self._module.IB()
            self._runner = _LoopThread()
            self._finalizer = weakref.finalize(self, _shutdown, self._runner, self._ib)
        if not self._listening:
            self._ib.errorEvent += self._on_error
            self._listening = True
        if self._ib.isConnected():
            return
        c = self.config
        kwargs: dict[str, Any] = {"readonly": True}
        fetch_none = getattr(self._module, "StartupFetchNONE", None)
        if fetch_none is not None:  # ib_async: skip every account / order download at start-up
            kwargs["fetchFields"] = fetch_none

        async def connect() -> None:
            await self._ib.connectAsync(c.host, c.port, clientId=c.client_id, timeout=c.connect_timeout_s, **kwargs)

        where = f"connect to TWS at {c.host}:{c.port} (client id {c.client_id})"
        try:
            self._runner.run(connect(), c.connect_timeout_s + 5.0)
        except (OSError, TimeoutError) as exc:
            self._drop_connection()
            raise IbkrTransientError(f"{where}: {type(exc).__name__}: {exc}") from None
        if not self._ib.isConnected():
            raise IbkrTransientError(f"{where}: not ready after the handshake")
        logger.info("ibkr: connected to %s:%s as client %s (read-only)", c.host, c.port, c.client_id)

    def _drop_connection(self) -> None:
        """Disconnect but keep the loop thread: the next attempt reconnects on it."""
        if self._runner is not None and self._ib is not None:
            try:
                self._runner.run(_disconnect(self._ib), 5.0)
            except Exception as exc:
                logger.warning("ibkr: disconnect failed: %s", exc)

    def _on_error(self, req_id: int, code: int, message: str, *_rest: Any) -> None:
        self._errors.append((req_id, code, message))

    # -- one request -----------------------------------------------------------------------------------------

    def _attempt(self, make: Callable[[], Coroutine[Any, Any, Any]], timeout: float) -> _Outcome:
        """Connect if needed and run one request; returns its rows or the errors IB sent while it ran."""
        self._ensure_connected()
        assert self._runner is not None
        self._errors.clear()
        self.requests_made += 1
        raised: list[tuple[int, str]] = []
        try:
            rows = self._runner.run(make(), timeout + 5.0)
        except TimeoutError:  # the last-resort guard fired: the request never finished
            rows = None
        except (ConnectionError, OSError) as exc:
            self._drop_connection()
            raise IbkrTransientError(f"connection lost: {type(exc).__name__}: {exc}") from None
        except Exception as exc:
            code, message = getattr(exc, "code", None), getattr(exc, "message", None)
            if not (isinstance(code, int) and isinstance(message, str)):
                raise
            rows, raised = [], [(code, message)]  # a RequestError: the IB client runs with RaiseRequestErrors
        errors = self._window_errors()
        errors += [e for e in raised if e not in errors]
        if not rows and not errors:
            self._drop_connection()  # a timeout: a late answer must not land in the next request's window
        return _Outcome(None if rows is None else list(rows), errors, timed_out=rows is None)

    def _window_errors(self) -> list[tuple[int, str]]:
        """Errors IB sent while the request ran: those for a request, plus connectivity alarms (reqId -1)."""
        return [(code, msg) for req_id, code, msg in self._errors if req_id >= 0 or code in _CONNECTIVITY_CODES]

    def _request(
        self,
        where: str,
        request_key: Hashable,
        contract_key: Hashable,
        weight: int,
        make: Callable[[], Coroutine[Any, Any, Any]],
        *,
        first: bool,
        paced: bool = True,
    ) -> list[Any]:
        """One request, retried on transient failures; never returns []. Historical requests are `paced` by the
        limiter; a contract lookup (reqContractDetails, reqSecDefOptParams) is not under IB's historical rules."""

        def once() -> list[Any]:
            if paced:
                self.limiter.acquire(request_key, contract_key, weight)
            outcome = self._attempt(make, self.config.timeout_s)
            if outcome.rows:
                return outcome.rows
            raise _failure(where, outcome, self.config.timeout_s, first=first)

        def on_retry(exc: BaseException) -> None:
            logger.warning("ibkr: %s: %s; retrying", where, exc)

        with self._lock:
            return call_with_backoff(
                once,
                where=where,
                transient=(IbkrTransientError,),
                error=IbkrSourceError,
                max_retries=self.config.max_retries,
                backoff_s=self.config.backoff_s,
                sleep=self._sleep,
                on_retry=on_retry,
            )

    # -- fetching ----------------------------------------------------------------------------------------------

    def _contract(self, symbol: str, day: date | None = None) -> tuple[Any, ContractSpec, bool]:
        """The IB contract of `symbol`: a stock or index as configured, or a futures contract (ESH24) as a Future of
        its root's configured contract with its month; a bare root is refused (it names no contract)."""
        spec = get_symbol(symbol, day)
        key = spec.root or symbol
        cspec = self.config.contracts.get(key)
        if cspec is None:
            raise ValueError(f"ibkr: no IB contract configured for {key!r} (config key contracts.{key})")
        if (cspec.sec_type == "IND") != spec.is_index or (cspec.sec_type == "FUT") != (spec.kind == "future"):
            raise ValueError(f"ibkr: contracts.{key}.sec_type {cspec.sec_type!r} does not match a {spec.kind}")
        if spec.kind == "future" and spec.expiry is None:
            raise ValueError(
                f"ibkr: {symbol!r} is a futures root; ask for a contract such as {symbol}H24 (its ticks are stored "
                "under the contract's own symbol)"
            )
        if self._module is None:
            self._module = import_ib()
        fields = {"symbol": key, "secType": cspec.sec_type, "exchange": cspec.exchange, "currency": cspec.currency}
        if spec.expiry is not None:
            fields["lastTradeDateOrContractMonth"] = f"{spec.expiry:%Y%m}"
        else:
            fields["primaryExchange"] = cspec.primary_exchange
        return self._module.Contract(**fields), cspec, spec.is_index

    def front_contract(self, root: str) -> str:
        """The contract IB's continuous future for `root` stands for today (ContFuture discovery), as our contract
        symbol (ESH24): which contract to fetch when you do not know the month. History is fetched per contract."""
        spec = get_symbol(root)
        cspec = self.config.contracts.get(root)
        if spec.kind != "future" or spec.expiry is not None or cspec is None:
            raise ValueError(f"ibkr: {root!r} is not a futures root with a contract configured (contracts.{root})")
        if self._module is None:
            self._module = import_ib()
        contract = self._module.Contract(
            symbol=root, secType="CONTFUT", exchange=cspec.exchange, currency=cspec.currency
        )

        async def request() -> list[Any] | None:
            try:
                return await asyncio.wait_for(self._ib.reqContractDetailsAsync(contract), self.config.timeout_s)
            except TimeoutError:
                return None

        with self._lock:
            outcome = self._attempt(request, self.config.timeout_s)
        if not outcome.rows:
            raise _failure(f"reqContractDetails(ContFuture {root})", outcome, self.config.timeout_s, first=True)
        month = str(outcome.rows[0].contract.lastTradeDateOrContractMonth)
        return contract_symbol(root, int(month[4:6]), int(month[:4]))

    def _use_rth(self, contract: Any) -> bool:
        """IB's regular hours only for stocks and indexes outside extended hours; a future's session is the whole
        Globex day (17:00 CT the evening before), which useRTH=1 would cut to the pit hours."""
        return not self.config.extended_hours and getattr(contract, "secType", "") != "FUT"

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        """Raw bars, trades and quotes of `symbol` on `session_date` from IB; ValueError off-session or unknown."""
        if isinstance(session_date, datetime):
            session_date = session_date.date()
        contract, cspec, index = self._contract(symbol, session_date)
        rule = get_symbol(symbol, session_date).session_rule
        session_index(session_date, rule)  # ValueError naming the calendar on a weekend or holiday
        lo, hi = fetch_window(session_date, self.config.extended_hours, rule)
        start_s, end_s = int(lo.astype(np.int64) // 1_000_000_000), int(hi.astype(np.int64) // 1_000_000_000)
        c, day = self.config, session_date
        with self._lock:  # one fetch at a time on the one connection
            # A stream switched off is None, not empty: the warehouse then keeps what it has stored.
            bars = self._bars(symbol, day, contract, cspec, start_s, end_s, index) if c.bars else None
            trades = None
            if c.ticks:
                ticks = self._ticks(symbol, day, contract, cspec, c.index_ticks if index else "TRADES", start_s, end_s)
                trades = _trades_frame(symbol, ticks, index)
            quotes = empty_quotes() if index else None
            if c.quotes and not index:
                quotes = _quotes_frame(symbol, self._ticks(symbol, day, contract, cspec, "BID_ASK", start_s, end_s))
        return DayTape(trades=trades, quotes=quotes, bars=bars)

    def _bars(
        self,
        symbol: str,
        day: date,
        contract: Any,
        cspec: ContractSpec,
        start_s: int,
        end_s: int,
        index: bool,
        what: str = "TRADES",
    ) -> pl.DataFrame:
        end, duration, use_rth = _ib_utc(end_s), f"{end_s - start_s} S", self._use_rth(contract)
        timeout = self.config.timeout_s

        async def request() -> list[Any]:
            return await self._ib.reqHistoricalDataAsync(
                contract,
                endDateTime=end,
                durationStr=duration,
                barSizeSetting="1 min",
                whatToShow=what,
                useRTH=use_rth,
                formatDate=2,
                keepUpToDate=False,
                timeout=timeout,
            )

        where = f"reqHistoricalData({symbol} {day} {what} 1 min, end {end} UTC, {duration}, useRTH={int(use_rth)})"
        ckey = (symbol, cspec.sec_type, cspec.exchange, what)
        rkey = ("bars", *ckey, end, duration, use_rth)
        bars = self._request(where, rkey, ckey, 1, request, first=True)
        return _bars_frame(symbol, bars, index)

    def _ticks(
        self, symbol: str, day: date, contract: Any, cspec: ContractSpec, what: str, start_s: int, end_s: int
    ) -> list[Any]:
        """Every tick of one stream in [start_s, end_s), paged from the window start (see the module docstring)."""
        use_rth = self._use_rth(contract)
        weight = self.limiter.rules.bid_ask_weight if what == "BID_ASK" else 1
        ckey = (symbol, cspec.sec_type, cspec.exchange, what)
        timeout = self.config.timeout_s
        taken: list[Any] = []
        cursor, boundary = start_s, Counter()
        for page_no in range(1, MAX_PAGES + 1):
            start = _ib_utc(cursor)

            async def request(start: str = start) -> list[Any] | None:
                future = self._ib.reqHistoricalTicksAsync(
                    contract, start, "", TICKS_PER_REQUEST, what, use_rth, ignoreSize=False, miscOptions=[]
                )
                try:
                    return await asyncio.wait_for(future, timeout)
                except TimeoutError:
                    return None

            where = f"reqHistoricalTicks({symbol} {day} {what} from {start} UTC, page {page_no})"
            rkey = ("ticks", *ckey, start, TICKS_PER_REQUEST, use_rth)
            page = self._request(where, rkey, ckey, weight, request, first=page_no == 1)
            # IB answers from the requested second on; ticks before it were sent already (or precede the window)
            early = [t for t in page if _epoch_s(t.time) < cursor]
            page = [t for t in page if _epoch_s(t.time) >= cursor]
            fresh = _drop_repeats(page, cursor, boundary)
            if early and not fresh:
                raise IbkrSourceError(
                    f"{where}: IB answered with {len(early)} ticks before the requested start and nothing new: no "
                    "progress, so paging stops instead of repeating the request"
                )
            if early:
                logger.warning("ibkr: %s: dropped %d ticks before the requested start", where, len(early))
            taken.extend(t for t in fresh if _epoch_s(t.time) < end_s)
            first_s, last_s = _epoch_s(page[0].time), _epoch_s(page[-1].time)
            if last_s >= end_s:
                break
            if first_s == last_s and len(page) >= TICKS_PER_REQUEST:
                logger.warning(
                    "ibkr: %s: %d ticks in the single second %s; moving to the next second "
                    "(ticks of that second beyond these, if any, are not retrievable)",
                    where,
                    len(page),
                    _ib_utc(last_s),
                )
                cursor, boundary = last_s + 1, Counter()
                if cursor >= end_s:  # that was the window's last second: nothing is left to ask for
                    break
                continue
            if not fresh:
                break
            cursor = last_s
            boundary = Counter(_tick_key(t) for t in page if _epoch_s(t.time) == last_s)
        else:
            raise IbkrSourceError(f"reqHistoricalTicks({symbol} {day} {what}): more than {MAX_PAGES} pages")
        return taken


def _failure(where: str, outcome: _Outcome, timeout_s: float, *, first: bool) -> Exception:
    """The exception for a request that produced nothing: transient, missing data, or a plain error."""
    detail = "; ".join(f"error {code}: {msg}" for code, msg in outcome.errors)
    for code, msg in outcome.errors:
        if "pacing violation" in msg.lower() or code in _CONNECTIVITY_CODES:
            return IbkrTransientError(f"{where}: {detail}")
    if first:
        for code, msg in outcome.errors:
            if code == 162 and any(m in msg.lower() for m in _NO_DATA_MARKERS):
                return IbkrMissingDataError(f"{where}: IB has no data for a session the calendar says traded: {detail}")
    if outcome.errors:
        return IbkrSourceError(f"{where} returned nothing: {detail}")
    if outcome.timed_out:
        return IbkrSourceError(f"{where} timed out after {timeout_s:g} s with no answer and no error from IB")
    return IbkrSourceError(
        f"{where} returned an empty result and no error: a timeout (limit {timeout_s:g} s) or an unreported "
        "error, not 'no data'"
    )


def _bars_frame(symbol: str, bars: list[Any], index: bool) -> pl.DataFrame:
    """IB BarData (formatDate=2: start time in UTC) as BAR_SCHEMA rows, in IB's order."""
    if not bars:
        return empty_bars()
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(bars),
            "ts": np.array([_epoch_s(b.date) for b in bars], dtype=np.int64) * 1_000_000_000,
            "open": [float(b.open) for b in bars],
            "high": [float(b.high) for b in bars],
            "low": [float(b.low) for b in bars],
            "close": [float(b.close) for b in bars],
            "volume": [0.0 if index else float(b.volume) for b in bars],
            "vwap": [_nullable(b.average) for b in bars],
            "trade_count": [None if b.barCount == -1 else int(b.barCount) for b in bars],
        },
        schema={**BAR_SCHEMA, "ts": pl.Int64()},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns")))


def _ts_ns(ticks: list[Any]) -> np.ndarray:
    """Tick times in ns: IB's whole second plus the tick's place within that second (0, 1, 2 ... ns).

    IB stamps ticks to the second, so two identical prints in one second would look like a feed's repeated row and
    be quarantined as duplicates; spacing them 1 ns apart in IB's order keeps both, and keeps each in its second."""
    seconds = np.array([_epoch_s(t.time) for t in ticks], dtype=np.int64)
    n = seconds.size
    starts = np.ones(n, dtype=bool)
    starts[1:] = seconds[1:] != seconds[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    return seconds * 1_000_000_000 + (np.arange(n) - first)


def _trades_frame(symbol: str, ticks: list[Any], index: bool) -> pl.DataFrame:
    """TRADES (or an index's MIDPOINT) ticks as TRADE_SCHEMA rows; an index's size is 0.0."""
    if not ticks:
        return empty_trades()
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(ticks),
            "ts": _ts_ns(ticks),
            "price": [float(t.price) for t in ticks],
            "size": [0.0 if index else float(t.size) for t in ticks],
        },
        schema={**TRADE_SCHEMA, "ts": pl.Int64()},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns")))


def _quotes_frame(symbol: str, ticks: list[Any]) -> pl.DataFrame:
    """BID_ASK ticks as QUOTE_SCHEMA rows."""
    if not ticks:
        return empty_quotes()
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(ticks),
            "ts": _ts_ns(ticks),
            "bid": [float(t.priceBid) for t in ticks],
            "ask": [float(t.priceAsk) for t in ticks],
            "bid_size": [float(t.sizeBid) for t in ticks],
            "ask_size": [float(t.sizeAsk) for t in ticks],
        },
        schema={**QUOTE_SCHEMA, "ts": pl.Int64()},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns")))
