"""Polygon (massive) market data as a `MarketSource`: one symbol's raw trades, quotes and vendor minute bars a session.

Client: the `massive` package, the maintained rename of `polygon-api-client` with the same API; where only the old
package is installed, its `polygon` import is used instead (`polygon_client_package()` says which). The client is
imported lazily, when the first request is made, never at module import. The API key is passed to
`RESTClient(api_key=...)` explicitly: massive's own default reads MASSIVE_API_KEY from the environment at import time.

How each column is obtained, and what is approximated:
- Equity trades: `list_trades(ticker, timestamp.gte/.lt = fetch_window(d, extended_hours) in UTC ns, sort=timestamp,
  order=asc, limit=page_limit)`. ts = `sip_timestamp` (the SIP's clock, UTC ns) as naive UTC Datetime(ns); price;
  size = `decimal_size` where Polygon sends it (the exact fractional size), else `size`. Fractional sizes stay
  fractional. Nothing is filtered: odd lots, corrections and late prints pass through raw for the warehouse.
  Distinct prints (exchange, id) sharing one SIP nanosecond are spaced 1 ns apart in Polygon's order, so they are
  not mistaken for duplicated rows; `vendor_id` = "exchange:id", so the same print sent twice is quarantined as a
  duplicate (a re-send), and nothing else is.
- Equity quotes (`quotes: true`): `list_quotes` over the same window: bid_price, ask_price, bid_size, ask_size at
  sip_timestamp. Sizes are converted to shares: Polygon's docs count them in round lots, so they are multiplied by
  `quote_lot_size` (100) for sessions before `quote_shares_since` (2025-11-03): from that day Polygon publishes
  them in shares (the SEC's market-data infrastructure rules), and they are kept as sent.
- Vendor minute bars (`bars: true`): `list_aggs(ticker, 1, "minute", d, d, adjusted=False, sort=asc, limit=50000)`
  (not `get_aggs`, which reads one page only). ts = `t` (ms, the bar START); open/high/low/close = o/h/l/c;
  volume = v (fractional kept); vwap = vw; trade_count = n (null where absent). `adjusted=False` keeps the bars in
  the same unadjusted prices as the trades they cross-check. Polygon sends the whole day, pre-market 04:00 to
  after-hours 20:00 New York, and no bar for a minute without trades: both pass through as sent (the warehouse keeps
  or drops extended hours by configuration; nothing is filled in).
- Index levels (`SymbolSpec.is_index`, vendor ticker such as I:SPX): 1-second aggregates
  (`list_aggs(ticker, 1, "second", d, d)`) as TRADES rows with price = the second's close `c` and size 0.0; no
  quotes. A second's close is only known when the second ends, so a level is stamped ts = t + 1 s - 1 ns: never
  before it could have been seen (no look-ahead), yet still inside its own second and minute, so the level of
  15:59:59 stays inside the session (whose close is exclusive). APPROXIMATED: one level per second (the open, high
  and low inside a second are dropped), and a second without a print has no row. The index's minute aggregates are
  its vendor bars, with volume 0.0 where Polygon gives none (indexes have no volume).

- Futures contracts (ESH24, sent to Polygon as ESH4: its tickers carry a one-digit year; `tickers:` overrides):
  `list_futures_trades(ticker, session_end_date=d, sort=timestamp.asc)`, Polygon's own CME trading day, which opens
  the evening before. ts = `timestamp` (UTC ns); vendor_id = channel:sequence_number. Quotes from
  `list_futures_quotes` the same way (sizes in contracts); minute bars from `list_futures_aggregates(resolution=1min,
  window_start over the session)`, ts = `window_start` (ns), vwap = dollar_volume / volume where sent.

Polygon's traps: every list follows `next_url` (the massive iterator does, keeping only the URL's path and query, so
the base stays ours), because a page can stop short of `limit` (client issue #72). A whole session can be missing
(#338): no trades and no minute bars for a day the calendar says traded raises `MissingDataError`, and the ingest
records the gap. A page that is not valid JSON makes the client log an error and END the list early, silently; that
log is watched and turned into a (retried) failure.

Errors: each page is first retried inside the client (`page_retries`, urllib3's backoff of 0.2 s doubling, honouring
Retry-After), so a rate limit on page 40 does not restart the list. When a page's retries run out, the whole list
call is retried by `market.retry.call_with_backoff` (`max_retries`, `backoff_s`, an injectable sleep). Transient:
HTTP 429, 500, 502, 503, 504 (also 413, 499), which urllib3 raises as `MaxRetryError`, connection errors and
timeouts (also `MaxRetryError`), and a garbled page. Any other non-200 answer (401, 403 NOT_AUTHORIZED, 404, ...)
comes back from the client as `BadResponse(<body>)` and fails at once. Either way the caller gets
`PolygonSourceError` naming the call, symbol and date. The API key never appears in an error, repr or log record:
messages are redacted, causes dropped, and the client's verbose/trace modes stay off.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from types import MappingProxyType, ModuleType
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from market.calendar import fetch_window
from market.retry import call_with_backoff, redact
from market.sources import (
    BAR_SCHEMA,
    QUOTE_SCHEMA,
    TRADE_SCHEMA,
    DayTape,
    MissingDataError,
    SourceError,
    empty_quotes,
)
from market.symbols import MONTH_CODES, get_symbol
from market.values import is_int, is_number

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_TICKERS",
    "PolygonConfig",
    "PolygonSource",
    "PolygonSourceError",
    "polygon_client_package",
    "rest_client_class",
]

API_KEY_ENV = "POLYGON_API_KEY"  # where the key comes from (through Dagster's EnvVar); named in errors, never read here
DEFAULT_BASE_URL = "https://api.massive.com"  # massive's own default base (the old client's api.polygon.io also works)
DEFAULT_TICKERS: Mapping[str, str] = MappingProxyType({"SPX": "I:SPX"})
MAX_PAGE_LIMIT = 50_000  # Polygon's largest page
QUOTE_SHARES_SINCE = date(2025, 11, 3)  # Polygon's switch of quote sizes from round lots to shares (SEC MDI rules)
CLIENT_PACKAGES = ("massive", "polygon")  # preferred first
_CLIENT_LOGGER = "RESTClient"  # the logger name of both client packages
_MS_NS = 1_000_000
_SECOND_NS = 1_000_000_000

logger = logging.getLogger(__name__)


class PolygonSourceError(SourceError):
    """A Polygon request failed for good (refused, or transient failures outlasted the retries)."""


class _GarbledPage(Exception):
    """The client could not decode a page and ended the list early; retried like a dropped connection."""


# ----------------------------------------------------------------------------------------------------------------
# Client package


def _client_module() -> ModuleType:
    problems = []
    for name in CLIENT_PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if hasattr(module, "RESTClient"):
            return module
        problems.append(f"{name}: has no RESTClient")
    raise ImportError(
        "the Polygon source needs the `massive` package (pip install massive) or, where only it is installed, the "
        "older `polygon-api-client` (import polygon); never both, their certifi pins conflict. Neither is usable: "
        + "; ".join(problems)
    )


def polygon_client_package() -> str:
    """Which client package the source uses: "massive", or "polygon" where only the old one is installed."""
    return _client_module().__name__


def rest_client_class() -> type:
    """The `RESTClient` class of the package `polygon_client_package()` names (imported now, not at module import)."""
    return _client_module().RESTClient


# ----------------------------------------------------------------------------------------------------------------
# Config


def _bad_ticker(ticker: object) -> bool:
    return not isinstance(ticker, str) or not ticker or any(c.isspace() or c in "/?#%" for c in ticker)


@dataclass(frozen=True)
class PolygonConfig:
    """The `polygon` section of configs/market.yaml. Holds no API key: that goes to `PolygonSource` separately."""

    base_url: str = DEFAULT_BASE_URL  # REST base URL; tests point it at a local fake
    tickers: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TICKERS))  # symbol -> vendor ticker
    extended_hours: bool = False  # fetch trades/quotes from 04:00 to 20:00 New York instead of the regular session
    quotes: bool = True  # fetch equity quotes (NBBO), the largest of the three downloads
    quote_lot_size: float = 100.0  # shares per unit of Polygon's bid_size/ask_size before quote_shares_since
    quote_shares_since: date = QUOTE_SHARES_SINCE  # first session whose quote sizes Polygon publishes in shares
    bars: bool = True  # fetch Polygon's own minute bars beside the ticks, to cross-check them
    page_limit: int = MAX_PAGE_LIMIT  # rows asked per trades/quotes page (1..50000); next_url is followed regardless
    page_retries: int = 8  # retries of ONE page inside the client on 429/5xx (urllib3 waits 0.2 s, doubling)
    max_retries: int = 4  # retries of a whole list call (from its first page) once a page's retries run out
    backoff_s: float = 0.5  # first wait between retries; doubles each retry
    timeout_s: float = 30.0  # connect and read timeout of one HTTP request

    def __post_init__(self) -> None:
        def bad(key: str, msg: str) -> None:
            raise ValueError(f"PolygonConfig.{key}: {msg}")

        if not isinstance(self.base_url, str):
            bad("base_url", f"must be a URL string, got {self.base_url!r}")
        parts = urlsplit(self.base_url)
        if parts.username or parts.password:  # checked first: the URL is not echoed when it holds credentials
            bad("base_url", "must not carry credentials (the key is passed to the source separately)")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            bad("base_url", f"must be an http(s) URL, got {self.base_url!r}")
        if parts.query or parts.fragment:
            bad("base_url", "must have no query or fragment (a key in a URL would leak; it is passed separately)")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))  # the client appends "/v3/..."
        if not isinstance(self.tickers, Mapping):
            bad("tickers", f"must be a mapping of symbol to vendor ticker, got {self.tickers!r}")
        for symbol, ticker in self.tickers.items():
            if not isinstance(symbol, str) or not symbol:
                bad("tickers", f"symbols must be non-empty strings, got {symbol!r}")
            if _bad_ticker(ticker):
                bad(
                    "tickers",
                    f"{symbol}: vendor ticker must be a non-empty string without /?#% or spaces, got {ticker!r}",
                )
        object.__setattr__(self, "tickers", dict(self.tickers))
        for key in ("extended_hours", "quotes", "bars"):
            if not isinstance(getattr(self, key), bool):
                bad(key, f"must be true or false, got {getattr(self, key)!r}")
        if not is_int(self.page_limit) or not 1 <= self.page_limit <= MAX_PAGE_LIMIT:
            bad("page_limit", f"must be an integer in [1, {MAX_PAGE_LIMIT}], got {self.page_limit!r}")
        if not is_int(self.page_retries) or not 0 <= self.page_retries <= 20:
            bad("page_retries", f"must be an integer in [0, 20], got {self.page_retries!r}")
        if not is_int(self.max_retries) or not 0 <= self.max_retries <= 20:
            bad("max_retries", f"must be an integer in [0, 20], got {self.max_retries!r}")
        if not is_number(self.backoff_s) or not 0 <= self.backoff_s <= 60:
            bad("backoff_s", f"must be a number of seconds in [0, 60], got {self.backoff_s!r}")
        if not is_number(self.quote_lot_size) or not 0 < self.quote_lot_size <= 1_000_000:
            bad("quote_lot_size", f"must be a positive number of shares per lot, got {self.quote_lot_size!r}")
        since = self.quote_shares_since
        if isinstance(since, str):
            try:
                since = date.fromisoformat(since)
            except ValueError:
                bad("quote_shares_since", f"must be a date (YYYY-MM-DD), got {since!r}")
        if not isinstance(since, date) or isinstance(since, datetime):
            bad("quote_shares_since", f"must be a date (YYYY-MM-DD), got {since!r}")
        object.__setattr__(self, "quote_shares_since", since)
        if not is_number(self.timeout_s) or not 0 < self.timeout_s <= 600:
            bad("timeout_s", f"must be a number of seconds in (0, 600], got {self.timeout_s!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> PolygonConfig:
        """Build from a YAML section; unknown keys and bad values raise ValueError naming the key.

        `tickers` entries are merged over the defaults ({"SPX": "I:SPX"}), so mapping one symbol keeps the others."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise ValueError(f"PolygonConfig: expected a mapping of settings, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            raise ValueError(f"PolygonConfig: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(d)
        if "tickers" in values:
            if not isinstance(values["tickers"], Mapping):
                raise ValueError(f"PolygonConfig.tickers: must be a mapping, got {values['tickers']!r}")
            values["tickers"] = {**DEFAULT_TICKERS, **values["tickers"]}
        return cls(**values)

    def ticker(self, symbol: str) -> str:
        """Polygon's ticker for `symbol` (e.g. SPX -> I:SPX); unmapped symbols are their own ticker, except futures
        contracts, which Polygon writes with a one-digit year (ESH24 -> ESH4)."""
        if symbol in self.tickers:
            return self.tickers[symbol]
        spec = get_symbol(symbol)
        if spec.kind == "future" and spec.expiry is not None:
            return f"{spec.root}{MONTH_CODES[spec.expiry.month - 1]}{spec.expiry.year % 10}"
        return symbol


# ----------------------------------------------------------------------------------------------------------------
# Frames


def _frame(schema: dict[str, pl.DataType], symbol: str, ts_ns: list[Any], **cols: list[Any]) -> pl.DataFrame:
    """Exactly `schema`'s columns; values that are not numbers become null (the warehouse quarantines them)."""
    data: dict[str, pl.Series] = {
        "symbol": pl.Series("symbol", [symbol] * len(ts_ns), dtype=pl.Utf8),
        "ts": pl.Series("ts", ts_ns, dtype=pl.Int64, strict=False).cast(pl.Datetime("ns")),
    }
    for name, values in cols.items():
        data[name] = pl.Series(name, values, dtype=schema[name], strict=False)
    return pl.DataFrame(data).select(list(schema))


def _size(trade: Any) -> Any:
    exact = getattr(trade, "decimal_size", None)
    if exact is not None:
        try:
            return float(exact)
        except (TypeError, ValueError):
            pass
    return trade.size


def _spaced_sip_timestamps(trades: list[Any]) -> list[Any]:
    """SIP timestamps with distinct prints that share one nanosecond spaced 1 ns apart, in Polygon's order.

    Distinct prints (another exchange or trade id) can share a SIP nanosecond, price and size; left equal they would
    be quarantined as a feed's duplicated rows. The same (exchange, id) sent twice keeps its first time, so a real
    repeat still reaches the warehouse as a duplicate."""
    seen: dict[tuple[Any, Any, Any], int] = {}
    used: dict[Any, int] = {}
    out = []
    for i, t in enumerate(trades):
        ts = t.sip_timestamp
        if not is_int(ts):
            out.append(ts)
            continue
        trade_id = getattr(t, "id", None)
        key = (ts, getattr(t, "exchange", None), trade_id if trade_id is not None else f"#{i}")
        if key not in seen:
            seen[key] = used.get(ts, 0)
            used[ts] = seen[key] + 1
        out.append(ts + seen[key])
    return out


def _vendor_id(trade: Any) -> str | None:
    """Polygon's trade id is unique per exchange and day, so (exchange, id) names one print."""
    trade_id = getattr(trade, "id", None)
    return None if trade_id is None else f"{getattr(trade, 'exchange', None)}:{trade_id}"


def _trades_frame(symbol: str, trades: list[Any]) -> pl.DataFrame:
    frame = _frame(
        TRADE_SCHEMA,
        symbol,
        _spaced_sip_timestamps(trades),
        price=[t.price for t in trades],
        size=[_size(t) for t in trades],
    )
    return frame.with_columns(pl.Series("vendor_id", [_vendor_id(t) for t in trades], dtype=pl.Utf8))


def _quotes_frame(symbol: str, quotes: list[Any], lot_size: float, stamp: str = "sip_timestamp") -> pl.DataFrame:
    """Quotes with sizes in shares (equity quotes came in round lots) or contracts (futures, lot size 1), stamped by
    `stamp` (UTC ns); a size that is not a number stays null."""
    frame = _frame(
        QUOTE_SCHEMA,
        symbol,
        [getattr(q, stamp) for q in quotes],
        bid=[q.bid_price for q in quotes],
        ask=[q.ask_price for q in quotes],
        bid_size=[q.bid_size for q in quotes],
        ask_size=[q.ask_size for q in quotes],
    )
    return frame.with_columns(pl.col("bid_size", "ask_size") * lot_size)


def _ms_to_ns(ms: Any, offset_ns: int = 0) -> Any:
    return ms * _MS_NS + offset_ns if is_int(ms) else None


def _levels_frame(symbol: str, seconds: list[Any]) -> pl.DataFrame:
    """Index levels: each second's close, stamped at the last nanosecond of its second (see the module docstring)."""
    return _frame(
        TRADE_SCHEMA,
        symbol,
        [_ms_to_ns(a.timestamp, _SECOND_NS - 1) for a in seconds],
        price=[a.close for a in seconds],
        size=[0.0] * len(seconds),
    )


def _futures_trades_frame(symbol: str, trades: list[Any]) -> pl.DataFrame:
    """Futures trades: ts = `timestamp` (UTC ns, the exchange's), price, size; vendor_id = the feed's channel and
    sequence number, so only a print sent twice is a duplicate."""
    frame = _frame(
        TRADE_SCHEMA,
        symbol,
        [t.timestamp for t in trades],
        price=[t.price for t in trades],
        size=[t.size for t in trades],
    )
    ids = [None if t.sequence_number is None else f"{t.channel}:{t.sequence_number}" for t in trades]
    return frame.with_columns(pl.Series("vendor_id", ids, dtype=pl.Utf8))


def _futures_bars_frame(symbol: str, aggs: list[Any]) -> pl.DataFrame:
    """Futures minute aggregates: ts = `window_start` (UTC ns); vwap from dollar volume where Polygon sends it."""

    def vwap(a: Any) -> Any:
        usable = is_number(a.dollar_volume) and is_number(a.volume) and a.volume > 0
        return a.dollar_volume / a.volume if usable else None

    return _frame(
        BAR_SCHEMA,
        symbol,
        [a.window_start for a in aggs],
        open=[a.open for a in aggs],
        high=[a.high for a in aggs],
        low=[a.low for a in aggs],
        close=[a.close for a in aggs],
        volume=[a.volume for a in aggs],
        vwap=[vwap(a) for a in aggs],
        trade_count=[a.transactions for a in aggs],
    )


def _bars_frame(symbol: str, aggs: list[Any], is_index: bool) -> pl.DataFrame:
    return _frame(
        BAR_SCHEMA,
        symbol,
        [_ms_to_ns(a.timestamp) for a in aggs],
        open=[a.open for a in aggs],
        high=[a.high for a in aggs],
        low=[a.low for a in aggs],
        close=[a.close for a in aggs],
        volume=[0.0 if is_index and a.volume is None else a.volume for a in aggs],
        vwap=[a.vwap for a in aggs],
        trade_count=[a.transactions for a in aggs],
    )


# ----------------------------------------------------------------------------------------------------------------
# Source


class _PageWatch(logging.Handler):
    """Counts the client's "Error decoding json response" records from this thread (the list then ends early)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.thread = threading.get_ident()
        self.garbled = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and str(record.msg).startswith("Error decoding json"):
            self.garbled += 1


@contextmanager
def _watch_pages() -> Iterator[_PageWatch]:
    watch = _PageWatch()
    client_logger = logging.getLogger(_CLIENT_LOGGER)
    client_logger.addHandler(watch)
    try:
        yield watch
    finally:
        client_logger.removeHandler(watch)


def _transient() -> tuple[type[BaseException], ...]:
    from urllib3 import exceptions as u3  # a dependency of both client packages

    return (u3.MaxRetryError, u3.ProtocolError, u3.TimeoutError, ConnectionError, _GarbledPage)


class PolygonSource:
    """Raw trades, quotes and minute bars of one symbol and session from Polygon (see the module docstring).

    `api_key` comes from the POLYGON_API_KEY environment variable (through Dagster's EnvVar); it is required
    unless a ready `client` is injected. `sleep` is the backoff sleeper (tests pass a recorder)."""

    name = "polygon"

    def __init__(
        self,
        config: PolygonConfig,
        api_key: str | None,
        *,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(config, PolygonConfig):
            raise TypeError(f"config must be a PolygonConfig, got {type(config).__name__}")
        key = api_key.strip() if isinstance(api_key, str) else None
        if client is None and not key:
            raise PolygonSourceError(
                f"no Polygon API key: set the {API_KEY_ENV} environment variable (passed to the source through "
                "Dagster's EnvVar)"
            )
        self.config = config
        self._api_key = key or None
        self._client = client
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"PolygonSource(config={self.config!r}, api_key=***)"

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._api_key,)

    def _rest(self) -> Any:
        """The REST client, built on first use with our key, base URL and per-page retries."""
        if self._client is None:
            cls = rest_client_class()
            try:
                self._client = cls(
                    api_key=self._api_key,
                    base=self.config.base_url,
                    retries=self.config.page_retries,
                    connect_timeout=float(self.config.timeout_s),
                    read_timeout=float(self.config.timeout_s),
                    pagination=True,
                    verbose=False,
                    trace=False,
                )
            except Exception as exc:
                msg = f"polygon: building the {cls.__module__} RESTClient failed: {type(exc).__name__}: {exc}"
                raise PolygonSourceError(redact(msg, self._secrets())) from None
        return self._client

    def _list(
        self,
        call: str,
        ticker: str,
        symbol: str,
        session_date: date,
        collect: Callable[[Iterable[Any]], Any] = list,
        **kwargs: Any,
    ) -> Any:
        """Every row of one list call (all pages), retried whole on transient failures; `collect` consumes the rows
        as they arrive (default: a list; a reducer keeps a long list out of memory)."""
        where = f"polygon {call}({ticker!r}) for {symbol} on {session_date}"
        client = self._rest()

        def fetch() -> Any:
            with _watch_pages() as watch:
                rows = collect(getattr(client, call)(ticker, **kwargs))
            if watch.garbled:
                raise _GarbledPage("a page was not valid JSON, so the client ended the list early")
            return rows

        def on_retry(exc: BaseException) -> None:
            logger.warning(redact(f"{where}: {type(exc).__name__}: {exc}; retrying", self._secrets()))

        rows = call_with_backoff(
            fetch,
            where=where,
            transient=_transient(),
            error=PolygonSourceError,
            max_retries=self.config.max_retries,
            backoff_s=self.config.backoff_s,
            sleep=self._sleep,
            secrets=self._secrets(),
            on_retry=on_retry,
        )
        logger.debug("%s: %d rows", where, len(rows))
        return rows

    def _aggs(self, ticker: str, symbol: str, session_date: date, timespan: str) -> list[Any]:
        return self._list(
            "list_aggs",
            ticker,
            symbol,
            session_date,
            multiplier=1,
            timespan=timespan,
            from_=session_date,
            to=session_date,
            adjusted=False,
            sort="asc",
            limit=MAX_PAGE_LIMIT,
        )

    def _futures_day(self, symbol: str, ticker: str, day: date, start: Any, end: Any) -> DayTape:
        """A futures contract's trading day: trades and quotes by Polygon's session_end_date (the CME trading day,
        which opens the evening before), minute aggregates by window start over the same session."""
        if symbol == ticker and get_symbol(symbol).expiry is None:
            raise ValueError(f"polygon: {symbol!r} is a futures root; ask for a contract such as {symbol}H24")
        page = {"session_end_date": day.isoformat(), "limit": self.config.page_limit, "sort": "timestamp.asc"}
        trades = _futures_trades_frame(symbol, self._list("list_futures_trades", ticker, symbol, day, **page))
        bars = None
        if self.config.bars:
            window = {"window_start_gte": int(start.astype("int64")), "window_start_lt": int(end.astype("int64"))}
            listed = self._list(
                "list_futures_aggregates", ticker, symbol, day, resolution="1min", limit=MAX_PAGE_LIMIT, **window
            )
            bars = _futures_bars_frame(symbol, listed)
        if trades.height == 0:
            kind = MissingDataError if bars is None or bars.height == 0 else PolygonSourceError
            raise kind(
                f"polygon has no trades for {symbol} (ticker {ticker}) on the CME trading day {day}"
                + ("" if kind is MissingDataError else f" but {bars.height} minute bars: refusing to store nothing")
            )
        quotes = None
        if self.config.quotes:
            listed = self._list("list_futures_quotes", ticker, symbol, day, **page)
            quotes = _quotes_frame(symbol, listed, 1.0, stamp="timestamp")
        return DayTape(trades=trades, quotes=quotes, bars=bars)

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        """Raw trades, quotes and vendor minute bars of `symbol` on `session_date`.

        ValueError for an unknown symbol or a day that is not a session of its calendar (before any request);
        MissingDataError when Polygon has neither trades nor bars for the session; PolygonSourceError otherwise."""
        spec = get_symbol(symbol, session_date)
        start, end = fetch_window(session_date, self.config.extended_hours, spec.session_rule)
        ticker = self.config.ticker(symbol)
        if spec.kind == "future":
            return self._futures_day(symbol, ticker, session_date, start, end)
        if spec.is_index:
            trades = _levels_frame(symbol, self._aggs(ticker, symbol, session_date, "second"))
        else:
            window = {"timestamp_gte": int(start.astype("int64")), "timestamp_lt": int(end.astype("int64"))}
            page = {"limit": self.config.page_limit, "sort": "timestamp", "order": "asc"}
            trades = _trades_frame(symbol, self._list("list_trades", ticker, symbol, session_date, **window, **page))
        bars = None  # not fetched: the warehouse keeps the stored vendor bars
        if self.config.bars:
            bars = _bars_frame(symbol, self._aggs(ticker, symbol, session_date, "minute"), spec.is_index)
        n_bars = 0 if bars is None else bars.height
        if trades.height == 0 and n_bars == 0:
            what = "no trades and no minute bars" if self.config.bars else "no trades"
            kind = "levels" if spec.is_index else "ticks"
            raise MissingDataError(
                f"polygon has {what} for {symbol} (ticker {ticker}) on {session_date}, an NYSE session: the vendor "
                f"is missing this day's {kind}"
            )
        if trades.height == 0:  # bars prove the day traded: an empty list is a cut-short answer, not the day
            raise PolygonSourceError(
                f"polygon sent {n_bars} minute bars but no {'levels' if spec.is_index else 'trades'} for {symbol} on "
                f"{session_date}: refusing to replace the stored day with nothing"
            )
        quotes = empty_quotes() if spec.is_index else None  # an index has no quotes; None = not fetched
        if self.config.quotes and not spec.is_index:
            listed = self._list("list_quotes", ticker, symbol, session_date, **window, **page)
            lot = 1.0 if session_date >= self.config.quote_shares_since else self.config.quote_lot_size
            quotes = _quotes_frame(symbol, listed, lot)
            if quotes.height == 0:
                raise PolygonSourceError(
                    f"polygon sent {trades.height} trades but no quotes for {symbol} on {session_date}: refusing to "
                    "replace the stored quotes with nothing (set quotes: false to leave them alone)"
                )
        return DayTape(trades=trades, quotes=quotes, bars=bars)
