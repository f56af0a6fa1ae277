"""Live perpetual-futures funding data through ccxt, behind the `FundingSource` protocol.

`CcxtFundingSource.fetch_day(day)` returns one UTC day as a `FundingTape` in the FD schemas
(`FUNDING_RATE_SCHEMA`, `MARK_PRICE_SCHEMA`), raw: not sorted, deduplicated or validated (the warehouse does that).

How each column is obtained, and what is approximated:
- funding rates: ccxt's unified `fetch_funding_rate_history(symbol, since, limit)` with OUR OWN pagination loop
  over windows of `page_limit` hours (the finest funding interval is 1h, so a window never holds more than a page,
  whether the exchange answers oldest-first like binance or newest-first like bybit/okx); a full page continues
  1 ms after its last row. ccxt's `paginate=True` assumes an 8h step on binance and silently drops rows of hourly
  symbols, so it is never used.
- interval_hours (the interval that ENDS at funding_time): the gap to the previous funding time of the same symbol
  (the query starts 8h before the day so the first row of the day has its predecessor) when that gap is a valid
  interval (1, 2, 4 or 8 h); otherwise the exchange's current funding info (`fetch_funding_intervals`, or the
  market's `fundingInterval` on bybit) when it lists the symbol; otherwise the gap to the next row; otherwise 8.
  Gaps come first because funding info describes only the current interval, and intervals change over time.
- mark: mark-price candles (`fetch_ohlcv(..., params={"price": "mark"})`, `mark_timeframe`, default 15m); a row per
  candle at its open time with the candle's open (the mark at that instant, so nothing later leaks in).
- bid/ask: APPROXIMATED. Exchanges publish no historical top of book, so the current relative half-spread from
  `fetch_tickers` (or `fetch_bids_asks` when tickers lack bid/ask) is applied around every mark of the day; with no
  book at all, bid = ask = mark (a locked book, which the warehouse accepts), and the tape records that as a gap.
- gaps: a requested symbol with no funding row in the day, or whose ticker cannot be matched, is recorded in
  `FundingTape.gaps` with its reason (the warehouse stores it and the funding_gaps check reports it), never silence.
- volume_24h: APPROXIMATED as the current 24h quote volume (USD) from `fetch_tickers` on every row (or
  base volume * last price when the quote volume is missing); null when the exchange gives neither.

Transient failures (ccxt.RateLimitExceeded, DDoSProtection, NetworkError) are retried with exponential backoff;
anything else surfaces at once as `CcxtSourceError` naming the exchange, call and symbol. Public data needs no key;
keys, if set, come from `TRADEFLOW_<EXCHANGE>_API_KEY` / `_SECRET` and are redacted from every error message.
ccxt is imported lazily, only when a client is built.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from market.funding import FUNDING_RATE_SCHEMA, MARK_PRICE_SCHEMA, FundingTape
from market.retry import call_with_backoff
from market.sources import SourceError

__all__ = ["DEFAULT_CLIENT_OPTIONS", "CcxtFundingSource", "CcxtSourceError", "infer_intervals"]

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS
_VALID_INTERVALS = (1, 2, 4, 8)
_LOOKBACK_MS = 8 * _HOUR_MS  # one longest interval before the day, so the first row has its predecessor
_MAX_PAGES = 10_000  # hard bound on one pagination loop

DEFAULT_CLIENT_OPTIONS: dict[str, dict[str, Any]] = {
    # only USD-M markets: spares the spot/coin-M exchangeInfo calls and the keyed sapi currency/margin calls
    "binance": {"defaultType": "future", "fetchMarkets": {"types": ["linear"]}, "fetchCurrencies": False},
    "bybit": {"defaultType": "swap", "fetchMarkets": {"types": ["linear"]}},
    "okx": {"defaultType": "swap"},
    "bitget": {"defaultType": "swap"},
    "gate": {"defaultType": "swap"},
}


class CcxtSourceError(SourceError):
    """A ccxt call failed for good (a non-transient error, or retries exhausted)."""


def _epoch_ms(day: date) -> int:
    return (day - date(1970, 1, 1)).days * _DAY_MS


def infer_intervals(times_ms: Sequence[int], fallback: int | None = None) -> list[int]:
    """Interval (hours) ending at each funding time of ONE symbol, from gaps between sorted unique times.

    A row uses the gap to its predecessor when that is 1, 2, 4 or 8 h, else `fallback` (the exchange's funding
    info), else the gap to its successor when valid, else 8.
    """
    times = sorted(times_ms)
    out: list[int] = []
    for i, t in enumerate(times):
        prev_gap = (t - times[i - 1]) / _HOUR_MS if i > 0 else None
        next_gap = (times[i + 1] - t) / _HOUR_MS if i + 1 < len(times) else None
        if prev_gap in _VALID_INTERVALS:
            out.append(int(prev_gap))
        elif fallback is not None:
            out.append(int(fallback))
        elif next_gap in _VALID_INTERVALS:
            out.append(int(next_gap))
        else:
            out.append(8)
    return out


def _default_client(exchange_id: str) -> Any:
    import ccxt  # lazy: importing this module must not import ccxt

    cls = getattr(ccxt, exchange_id, None)
    if cls is None:
        raise ValueError(f"unknown ccxt exchange {exchange_id!r}")
    options = copy.deepcopy(DEFAULT_CLIENT_OPTIONS.get(exchange_id, {}))
    config: dict[str, Any] = {"enableRateLimit": True, "options": options}
    prefix = f"TRADEFLOW_{exchange_id.upper()}_"
    key, secret = os.environ.get(prefix + "API_KEY"), os.environ.get(prefix + "SECRET")
    if key and secret:
        config["apiKey"], config["secret"] = key, secret
    return cls(config)


class CcxtFundingSource:
    """Funding rates and mark prices of perpetual swaps on real exchanges via ccxt (see the module docstring).

    `symbols` are exchange-neutral names like "BTCUSDT" (matched to each exchange's linear USDT-settled swap) or
    ccxt unified symbols like "BTC/USDT:USDT"; the frames carry the "BTCUSDT" form. `client_factory` builds the ccxt
    client for an exchange id (tests inject one pointed at a local server); `sleep` is the backoff sleeper. A symbol an
    exchange does not list raises ValueError, or with `skip_missing=True` is left out and recorded in `missing`.
    `page_limit` (rows asked per request) must not exceed any chosen exchange's page cap (okx/bitget 100, bybit 200
    funding rows, binance 1000): an exchange that silently caps a page shorter would leave rows out of a window. The
    default 100 covers a day's funding (32 h with the look-back) and 15m marks (96) in one request each.
    """

    def __init__(
        self,
        exchanges: Sequence[str],
        symbols: Sequence[str],
        max_retries: int = 5,
        backoff_s: float = 0.5,
        page_limit: int = 100,
        mark_timeframe: str = "15m",
        skip_missing: bool = False,
        client_factory: Callable[[str], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not exchanges:
            raise ValueError("exchanges must not be empty")
        if not symbols:
            raise ValueError("symbols must not be empty")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if backoff_s < 0:
            raise ValueError(f"backoff_s must be >= 0, got {backoff_s}")
        if page_limit < 1:
            raise ValueError(f"page_limit must be >= 1, got {page_limit}")
        self.exchanges = tuple(exchanges)
        self.symbols = tuple(symbols)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.page_limit = page_limit
        self.mark_timeframe = mark_timeframe
        self.name = f"ccxt_funding({','.join(self.exchanges)})"
        self.skip_missing = skip_missing
        self.retry_count = 0  # transient failures retried so far (observability)
        self.missing: set[tuple[str, str]] = set()  # (exchange, symbol) pairs skipped: no such swap listed
        self._factory = client_factory or _default_client
        self._sleep = sleep
        self._clients: dict[str, Any] = {}
        self._intervals: dict[str, dict[str, int]] = {}

    # -- plumbing ---------------------------------------------------------------------------------------------------
    def _client(self, exchange_id: str) -> Any:
        client = self._clients.get(exchange_id)
        if client is None:
            client = self._factory(exchange_id)
            self._clients[exchange_id] = client
            self._call(client, "load_markets")
        return client

    def _call(self, client: Any, method: str, *args: Any, symbol: str | None = None, **kwargs: Any) -> Any:
        """Call `client.method(*args, **kwargs)`, retrying transient ccxt errors with exponential backoff."""
        import ccxt

        def bump(_: BaseException) -> None:
            self.retry_count += 1

        return call_with_backoff(
            lambda: getattr(client, method)(*args, **kwargs),
            where=f"{client.id} {method}" + (f"({symbol})" if symbol else ""),
            transient=(ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.NetworkError),
            error=CcxtSourceError,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            sleep=self._sleep,
            secrets=tuple(getattr(client, attr, None) for attr in ("apiKey", "secret", "password")),
            on_retry=bump,
            fatal=(ccxt.BaseError,),
        )

    def _market(self, client: Any, symbol: str) -> dict:
        """The linear USDT-style swap market of `symbol` ("BTCUSDT" or a unified "BTC/USDT:USDT") on `client`."""
        markets: dict[str, dict] = client.markets or {}
        if symbol in markets:
            return markets[symbol]
        for market in markets.values():
            if (
                market.get("swap")
                and market.get("linear")
                and market.get("settle") == market.get("quote")
                and f"{market.get('base')}{market.get('quote')}" == symbol
            ):
                return market
        swaps = sorted(m["symbol"] for m in markets.values() if m.get("swap"))[:5]
        raise ValueError(f"symbol {symbol!r} has no linear perpetual swap on {client.id}; e.g. {swaps}")

    @staticmethod
    def _name(market: dict) -> str:
        return f"{market['base']}{market['quote']}"

    def _funding_intervals(self, exchange_id: str, client: Any) -> dict[str, int]:
        """Current interval (h) per unified symbol from the exchange's funding info; {} when not offered."""
        if exchange_id not in self._intervals:
            found: dict[str, int] = {}
            if client.has.get("fetchFundingIntervals"):
                info = self._call(client, "fetch_funding_intervals")
                for sym, entry in (info or {}).items():
                    interval = str(entry.get("interval") or "")
                    if interval.endswith("h") and interval[:-1].isdigit() and int(interval[:-1]) in _VALID_INTERVALS:
                        found[sym] = int(interval[:-1])
            self._intervals[exchange_id] = found
        return self._intervals[exchange_id]

    def _paginate(
        self,
        client: Any,
        method: str,
        market: dict,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        lead: tuple = (),
        params: dict | None = None,
    ) -> list:
        """Every row of a since/limit endpoint in [start_ms, end_ms) (our own loop, never ccxt's `paginate`).

        Calls `client.method(symbol, *lead, since, page_limit, params | {"until": ...})` over windows of
        `page_limit * step_ms` (`step_ms` = the finest row spacing), so a window holds at most a page whether the
        exchange answers oldest-first (binance) or newest-first (bybit, okx). A full page continues 1 ms after its
        last row; otherwise the next window starts where this one ended.
        """
        rows: list = []
        since = start_ms
        sym = market["symbol"]
        for _ in range(_MAX_PAGES):
            if since >= end_ms:
                return rows
            window_end = min(end_ms, since + self.page_limit * step_ms)
            query = {**(params or {}), "until": window_end - 1}
            page = self._call(client, method, sym, *lead, since, self.page_limit, query, symbol=sym)
            keep = [r for r in page if (t := _row_ms(r)) is not None and since <= t < window_end]
            rows.extend(keep)
            since = max(_row_ms(r) for r in keep) + 1 if len(page) >= self.page_limit and keep else window_end
        raise CcxtSourceError(f"{client.id} {method}({sym}): more than {_MAX_PAGES} pages")

    # -- public -----------------------------------------------------------------------------------------------------
    def fetch_day(self, day: date) -> FundingTape:
        """Raw funding rates and mark prices of every (exchange, symbol) for the UTC day `day`."""
        start, end = _epoch_ms(day), _epoch_ms(day + timedelta(days=1))
        rates: list[pl.DataFrame] = []
        marks: list[pl.DataFrame] = []
        gaps: list[tuple[str, str, str]] = []
        for exchange_id in self.exchanges:
            client = self._client(exchange_id)
            markets = []
            for symbol in self.symbols:
                try:
                    markets.append(self._market(client, symbol))
                except ValueError:
                    if not self.skip_missing:
                        raise
                    self.missing.add((exchange_id, symbol))
            intervals = self._funding_intervals(exchange_id, client)
            for market in markets:
                rates.append(self._funding_frame(exchange_id, client, market, start, end, intervals))
                if rates[-1].height == 0:
                    gaps.append((exchange_id, self._name(market), f"no funding rows on {day} from {exchange_id}"))
            quotes = self._quotes(client, markets) if markets else {}
            for market in markets:
                quote = quotes.get(market["symbol"])
                if quote is None or quote[0] is None:
                    reason = f"no ticker matched {market['symbol']} on {exchange_id}: bid and ask taken as the mark"
                    gaps.append((exchange_id, self._name(market), reason))
                marks.append(self._mark_frame(exchange_id, client, market, start, end, quote))
        return FundingTape(
            funding_rates=pl.concat(rates) if rates else pl.DataFrame(schema=FUNDING_RATE_SCHEMA),
            mark_prices=pl.concat(marks) if marks else pl.DataFrame(schema=MARK_PRICE_SCHEMA),
            gaps=tuple(gaps),
        )

    def _funding_frame(
        self, exchange_id: str, client: Any, market: dict, start: int, end: int, intervals: dict[str, int]
    ) -> pl.DataFrame:
        rows = self._paginate(client, "fetch_funding_rate_history", market, start - _LOOKBACK_MS, end, _HOUR_MS)
        by_time = {int(r["timestamp"]): r for r in rows}
        times = sorted(by_time)
        fallback = intervals.get(market["symbol"]) or _info_interval(market)
        interval_of = dict(zip(times, infer_intervals(times, fallback), strict=True))
        day_rows = [r for r in rows if start <= int(r["timestamp"]) < end]  # arrival order: raw
        return pl.DataFrame(
            {
                "exchange": [exchange_id] * len(day_rows),
                "symbol": [self._name(market)] * len(day_rows),
                "funding_time": np.array([int(r["timestamp"]) for r in day_rows], dtype="datetime64[ms]").astype(
                    "datetime64[ns]"
                ),
                "rate": [_float(r.get("fundingRate")) for r in day_rows],
                "interval_hours": [interval_of[int(r["timestamp"])] for r in day_rows],
            },
            schema=FUNDING_RATE_SCHEMA,
        )

    def _quotes(self, client: Any, markets: list[dict]) -> dict[str, tuple[float | None, float | None]]:
        """Per unified symbol: (relative half-spread, 24h quote volume in USD) from the current tickers."""
        symbols = [m["symbol"] for m in markets]
        tickers: dict = {}
        if client.has.get("fetchTickers"):
            tickers = self._call(client, "fetch_tickers", symbols) or {}
        books = tickers
        if any(_float((tickers.get(s) or {}).get("bid")) is None for s in symbols) and client.has.get("fetchBidsAsks"):
            books = self._call(client, "fetch_bids_asks", symbols) or {}
        out: dict[str, tuple[float | None, float | None]] = {}
        for s in symbols:
            t, b = tickers.get(s) or {}, books.get(s) or {}
            bid, ask = _float(b.get("bid")), _float(b.get("ask"))
            half = (ask - bid) / (ask + bid) if bid and ask and bid > 0 and ask >= bid else None
            volume = _float(t.get("quoteVolume"))
            if volume is None and _float(t.get("baseVolume")) is not None and _float(t.get("last")) is not None:
                volume = _float(t["baseVolume"]) * _float(t["last"])
            out[s] = (half, volume)
        return out

    def _mark_frame(
        self, exchange_id: str, client: Any, market: dict, start: int, end: int, quote: tuple | None
    ) -> pl.DataFrame:
        step = int(client.parse_timeframe(self.mark_timeframe) * 1000)
        candles = self._paginate(
            client, "fetch_ohlcv", market, start, end, step, lead=(self.mark_timeframe,), params={"price": "mark"}
        )
        ts = np.array([int(c[0]) for c in candles], dtype="datetime64[ms]").astype("datetime64[ns]")
        mark = np.array([_float(c[1]) for c in candles], dtype=np.float64)
        half, volume = quote if quote is not None else (None, None)
        half = 0.0 if half is None else half
        return pl.DataFrame(
            {
                "exchange": [exchange_id] * len(candles),
                "symbol": [self._name(market)] * len(candles),
                "ts": ts,
                "mark": mark,
                "bid": mark * (1.0 - half),
                "ask": mark * (1.0 + half),
                "volume_24h": [volume] * len(candles),
            },
            schema=MARK_PRICE_SCHEMA,
        )


def _info_interval(market: dict) -> int | None:
    """Current interval (h) from a market's raw info where the exchange puts it there (bybit: minutes)."""
    minutes = _float((market.get("info") or {}).get("fundingInterval"))
    hours = None if minutes is None else minutes / 60
    return int(hours) if hours in _VALID_INTERVALS else None


def _row_ms(row: Any) -> int | None:
    """Timestamp (ms) of a ccxt funding-history dict or an OHLCV list."""
    value = row.get("timestamp") if isinstance(row, dict) else row[0]
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
