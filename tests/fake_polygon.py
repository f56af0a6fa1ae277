"""A small local stand-in for Polygon's (massive's) REST API, in Polygon's documented JSON, for offline tests.

`serve_polygon(data)` serves a `FakePolygonData` on 127.0.0.1 (ephemeral port, daemon threads) and yields the base
URL to hand to `RESTClient(base=...)` (or `PolygonConfig(base_url=...)`). Endpoints:

- `/v3/trades/{ticker}` and `/v3/quotes/{ticker}`: filters `timestamp.gte/.gt/.lte/.lt` (ns integers, or a
  YYYY-MM-DD date meaning midnight UTC), `order` asc|desc (default asc here), `sort` (only `timestamp`), `limit`
  (default 1000, max 50000). Body: status, request_id, results and, while rows remain, `next_url`.
- `/futures/v1/trades/{ticker}` and `/futures/v1/quotes/{ticker}`: filter `session_end_date` (the CME trading
  day) and `timestamp.*` (ns), sort `timestamp.asc`; `/futures/v1/aggs/{ticker}`: `resolution=1min`,
  `window_start.*` (ns). Paged like v3.
- `/v3/reference/options/contracts`: the stored contract objects (`data.contracts`), filtered by
  `underlying_ticker`, `expiration_date`, `contract_type` and `as_of` (a contract listed after that day, by its
  `listed` date, is left out; an expired one stays), sorted by ticker; `limit` default 10, at most 1000.
- `/v2/aggs/ticker/{ticker}/range/1/{timespan}/{from}/{to}`: the ticker's stored aggregates of that timespan
  ("minute", "second") whose bar start `t` lies in [from, to]; dates are whole New York days (as Polygon reads
  them for stocks), integers are Unix ms. `sort` asc|desc, `limit` (default 5000, max 50000), `adjusted` logged
  only. Body: ticker, queryCount, resultsCount, adjusted, status, request_id, results (omitted when empty, as
  Polygon does) and `next_url`.

Pages hold min(limit, `page_cap`) rows; a smaller `page_cap` imitates Polygon cutting a page short of the asked
`limit` (client issue #72), so only a client that follows `next_url` gets every row. `page_caps` (path prefix ->
cap) cuts only the pages of some endpoints. `next_url` is a full URL
with an opaque `cursor` that carries the original filters, as Polygon's does.

Auth: `Authorization: Bearer <key>` (or `apiKey=`); none -> 401, a wrong key -> 401, a ticker in `forbidden` ->
403 NOT_AUTHORIZED. `data.fail(prefix, status, times)` makes the next `times` requests whose path starts with
`prefix` answer `status` (429, 500, ...; `body=` replaces the JSON error, e.g. a garbled 200 page). Every request
lands in `data.requests` as (path, query, status). More than MAX_REQUESTS requests get 503 (a runaway loop fails).

Serving a DayTape (e.g. the synthetic market) in Polygon's format, for pipeline tests:

    data = polygon_data_from_tapes([("SPY", tape_spy), ("SPX", tape_spx)], api_key="test-key")
    with serve_polygon(data) as base_url:
        source = PolygonSource(PolygonConfig(base_url=base_url), api_key="test-key")
        tape = source.fetch_day("SPY", day)

Option chains (`add_option_chain(data, quotes)`, quotes as `tests.option_quotes.vendor_quotes` makes them): each
contract is listed in the contracts reference; each contract-minute with a bid and an ask gets a stale quote 5 s into
the minute (0.5 higher) and the real one at 55 s, so only a client keeping the LAST quote of a minute recovers it,
and a minute aggregate where its volume is above 0. Options tickers are served like any other (`O:SPY240305C...`).

Equities become trades, quotes and minute aggregates (the tape's bars, or bars built from its trades: minutes
without trades get no bar); indexes (`SymbolSpec.is_index`, served under their vendor ticker such as I:SPX) become
1-second and 1-minute aggregates of their levels, with no volume. `synthetic_polygon_data(symbols, days)` does
this for the embedded synthetic market.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse
from zoneinfo import ZoneInfo

import polars as pl

from market.polygon_source import DEFAULT_TICKERS
from market.sources import DayTape, bars_from_trades
from market.symbols import get_symbol

DEFAULT_KEY = "test-polygon-key"
MAX_LIMIT = 50_000
MAX_REQUESTS = 10_000
_NY = ZoneInfo("America/New_York")
_SECOND_NS = 1_000_000_000
_MS_NS = 1_000_000
_ERRORS = {
    400: ("ERROR", "error", "Bad request"),
    401: ("ERROR", "error", "Unknown API Key"),
    403: ("NOT_AUTHORIZED", "message", "You are not entitled to this data. Please upgrade your plan."),
    404: ("NOT_FOUND", "message", "The requested resource was not found"),
    429: (
        "ERROR",
        "error",
        "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue.",
    ),
    500: ("ERROR", "error", "Internal server error"),
    502: ("ERROR", "error", "Bad gateway"),
    503: ("ERROR", "error", "Service unavailable"),
}


@dataclass
class FakeTicker:
    """One vendor ticker's data in Polygon's own JSON objects."""

    trades: list[dict[str, Any]] = field(default_factory=list)  # v3 trade objects (sip_timestamp: UTC ns)
    quotes: list[dict[str, Any]] = field(default_factory=list)  # v3 quote objects (sip_timestamp: UTC ns)
    aggs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # timespan -> agg objects (t: bar start ms)
    futures_trades: list[dict[str, Any]] = field(default_factory=list)  # /futures/v1 objects (timestamp: UTC ns)
    futures_quotes: list[dict[str, Any]] = field(default_factory=list)
    futures_aggs: list[dict[str, Any]] = field(default_factory=list)  # 1-minute bars (window_start: UTC ns)


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the fake saw it (the query of a `next_url` request is just its cursor)."""

    path: str
    query: dict[str, str]
    status: int


@dataclass
class _Failure:
    prefix: str
    status: int
    remaining: int
    body: str | None
    skip: int = 0  # matching requests to let through first


class FakePolygonData:
    """The fake's whole state: tickers, the accepted key, page cap, scripted failures and the request log."""

    def __init__(
        self,
        tickers: Mapping[str, FakeTicker] | None = None,
        *,
        api_key: str = DEFAULT_KEY,
        page_cap: int = MAX_LIMIT,
        forbidden: Iterable[str] = (),
    ) -> None:
        self.tickers: dict[str, FakeTicker] = dict(tickers or {})
        self.contracts: list[dict[str, Any]] = []  # options contract reference objects
        self.api_key = api_key
        self.page_cap = page_cap
        self.page_caps: dict[str, int] = {}  # path prefix -> a smaller page cap for those endpoints only
        self.forbidden = set(forbidden)
        self.next_url_base: str | None = None  # set to hand out next_url on another host (the client must not go there)
        self.requests: list[LoggedRequest] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()

    def ticker(self, name: str) -> FakeTicker:
        """The stored data of vendor ticker `name`, created empty on first use."""
        return self.tickers.setdefault(name, FakeTicker())

    def fail(self, prefix: str, status: int, times: int = 1, body: str | None = None, skip: int = 0) -> None:
        """Answer `times` requests whose path starts with `prefix` with `status` (and `body` if given), after letting
        the first `skip` of them through (to fail a later page of a list)."""
        with self._lock:
            self._failures.append(_Failure(prefix, status, times, body, skip))

    def paths(self, prefix: str = "") -> list[str]:
        """Paths requested so far that start with `prefix`, in order."""
        with self._lock:
            return [r.path for r in self.requests if r.path.startswith(prefix)]

    def respond(self, path: str, query: dict[str, str], auth: str | None, base_url: str) -> tuple[int, str]:
        """Status and body for one GET; logged."""
        status, body = self._route(path, query, auth, base_url)
        with self._lock:
            self.requests.append(LoggedRequest(path, dict(query), status))
        return status, body

    def _route(self, path: str, query: dict[str, str], auth: str | None, base_url: str) -> tuple[int, str]:
        with self._lock:
            if len(self.requests) >= MAX_REQUESTS:
                return _error(503, "fake server request bound reached")
        key = auth[len("Bearer ") :] if auth and auth.startswith("Bearer ") else query.get("apiKey")
        if not key:
            return _error(401, "API Key was not provided")
        if key != self.api_key:
            return _error(401)
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and path.startswith(failure.prefix):
                    if failure.skip > 0:
                        failure.skip -= 1
                        continue
                    failure.remaining -= 1
                    return (failure.status, failure.body) if failure.body is not None else _error(failure.status)
        if "cursor" in query:
            try:
                state = json.loads(base64.urlsafe_b64decode(query["cursor"].encode()))
                query, offset = state["query"], int(state["offset"])
            except (ValueError, KeyError, TypeError):
                return _error(400, "invalid cursor")
        else:
            offset = 0
        parts = [unquote(p) for p in path.strip("/").split("/")]
        try:
            if parts == ["v3", "reference", "options", "contracts"]:
                return self._contracts(path, query, offset, base_url)
            if len(parts) == 3 and parts[0] == "v3" and parts[1] in ("trades", "quotes"):
                return self._v3(parts[1], parts[2], path, query, offset, base_url)
            if len(parts) == 9 and parts[:3] == ["v2", "aggs", "ticker"] and parts[4] == "range":
                return self._aggs(parts, path, query, offset, base_url)
            if len(parts) == 4 and parts[:2] == ["futures", "v1"] and parts[2] in ("trades", "quotes", "aggs"):
                return self._futures(parts[2], parts[3], path, query, offset, base_url)
        except ValueError as exc:
            return _error(400, str(exc))
        return _error(404)

    def _v3(
        self, kind: str, ticker: str, path: str, query: dict[str, str], offset: int, base_url: str
    ) -> tuple[int, str]:
        if ticker in self.forbidden:
            return _error(403)
        if query.get("sort", "timestamp") != "timestamp":
            raise ValueError(f"sort must be timestamp, got {query['sort']!r}")
        rows = getattr(self.tickers.get(ticker, FakeTicker()), kind)
        bounds = {
            op: _v3_time(query[f"timestamp.{op}"]) for op in ("gte", "gt", "lte", "lt") if f"timestamp.{op}" in query
        }
        rows = [r for r in rows if _within(r["sip_timestamp"], bounds)]
        rows.sort(key=lambda r: r["sip_timestamp"], reverse=_descending(query.get("order", "asc")))
        page, next_url = self._page(rows, path, query, offset, base_url, default_limit=1000)
        return _ok(page, next_url)

    def _contracts(self, path: str, query: dict[str, str], offset: int, base_url: str) -> tuple[int, str]:
        """The options contracts reference: filters as Polygon documents them, pages of at most 1000."""
        if int(query.get("limit", 10)) > 1000:
            raise ValueError("limit must be at most 1000 for options contracts")
        if query.get("underlying_ticker") in self.forbidden:
            return _error(403)
        rows = [
            {k: v for k, v in c.items() if k != "listed"}
            for c in self.contracts
            if all(query.get(k, c[k]) == c[k] for k in ("underlying_ticker", "expiration_date", "contract_type"))
            and c.get("listed", "") <= query.get("as_of", "9999-12-31")
        ]
        rows.sort(key=lambda c: c["ticker"], reverse=_descending(query.get("order", "asc")))
        page, next_url = self._page(rows, path, query, offset, base_url, default_limit=10)
        return _ok(page, next_url)

    def _aggs(self, parts: list[str], path: str, query: dict[str, str], offset: int, base_url: str) -> tuple[int, str]:
        ticker, multiplier, timespan, start, end = parts[3], parts[5], parts[6], parts[7], parts[8]
        if ticker in self.forbidden:
            return _error(403)
        if multiplier != "1":
            raise ValueError(f"the fake serves multiplier 1 only, got {multiplier}")
        lo_ms, hi_ms = _aggs_time(start, first=True), _aggs_time(end, first=False)
        rows = [r for r in self.tickers.get(ticker, FakeTicker()).aggs.get(timespan, []) if lo_ms <= r["t"] <= hi_ms]
        rows.sort(key=lambda r: r["t"], reverse=_descending(query.get("sort", "asc")))
        page, next_url = self._page(rows, path, query, offset, base_url, default_limit=5000)
        body: dict[str, Any] = {
            "ticker": ticker,
            "queryCount": len(page),
            "resultsCount": len(page),
            "adjusted": query.get("adjusted", "true") != "false",
            "status": "OK",
            "request_id": uuid.uuid4().hex,
        }
        if page:
            body["results"] = page
        if next_url:
            body["next_url"] = next_url
        return 200, json.dumps(body)

    def _futures(
        self, kind: str, ticker: str, path: str, query: dict[str, str], offset: int, base_url: str
    ) -> tuple[int, str]:
        """Futures trades and quotes filtered by session_end_date (and timestamp), aggregates by window_start."""
        if ticker in self.forbidden:
            return _error(403)
        data = self.tickers.get(ticker, FakeTicker())
        if kind == "aggs":
            if query.get("resolution") != "1min":
                raise ValueError(f"the fake serves resolution 1min only, got {query.get('resolution')!r}")
            key, rows = "window_start", data.futures_aggs
        else:
            if query.get("sort", "timestamp.asc") != "timestamp.asc":
                raise ValueError(f"sort must be timestamp.asc, got {query['sort']!r}")
            key, rows = "timestamp", getattr(data, f"futures_{kind}")
            if "session_end_date" in query:
                rows = [r for r in rows if r["session_end_date"] == query["session_end_date"]]
        bounds = {op: int(query[f"{key}.{op}"]) for op in ("gte", "gt", "lte", "lt") if f"{key}.{op}" in query}
        rows = sorted((r for r in rows if _within(r[key], bounds)), key=lambda r: r[key])
        page, next_url = self._page(rows, path, query, offset, base_url, default_limit=1000)
        return _ok(page, next_url)

    def _page(
        self, rows: list[dict], path: str, query: dict[str, str], offset: int, base_url: str, default_limit: int
    ) -> tuple[list[dict], str | None]:
        limit = int(query.get("limit", default_limit))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be in [1, {MAX_LIMIT}], got {limit}")
        size = min(limit, self.page_cap, *(cap for prefix, cap in self.page_caps.items() if path.startswith(prefix)))
        page = rows[offset : offset + size]
        if offset + size >= len(rows):
            return page, None
        state = {"query": query, "offset": offset + size}
        cursor = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
        return page, f"{self.next_url_base or base_url}{path}?cursor={cursor}"


def _ok(page: list[dict[str, Any]], next_url: str | None) -> tuple[int, str]:
    """A 200 page as Polygon's v3 endpoints send it, with `next_url` when more rows follow."""
    body: dict[str, Any] = {"results": page, "status": "OK", "request_id": uuid.uuid4().hex}
    if next_url:
        body["next_url"] = next_url
    return 200, json.dumps(body)


def _error(status: int, text: str | None = None) -> tuple[int, str]:
    state, key, default = _ERRORS.get(status, ("ERROR", "error", f"status {status}"))
    return status, json.dumps({"status": state, "request_id": uuid.uuid4().hex, key: text or default})


def _descending(order: str) -> bool:
    if order not in ("asc", "desc"):
        raise ValueError(f"order/sort must be asc or desc, got {order!r}")
    return order == "desc"


def _v3_time(value: str) -> int:
    """A v3 timestamp filter: ns integer, or a date (midnight UTC)."""
    if value.lstrip("-").isdigit():
        return int(value)
    return int(datetime.combine(date.fromisoformat(value), time()).timestamp()) * _SECOND_NS


def _aggs_time(value: str, first: bool) -> int:
    """An aggs range end in Unix ms: a ms integer as is, a date as the first or last ms of its New York day."""
    if value.isdigit():
        return int(value)
    day = date.fromisoformat(value)
    start = datetime.combine(day, time(), tzinfo=_NY)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=_NY)
    return int(start.timestamp() * 1000) if first else int(end.timestamp() * 1000) - 1


def _within(ts: int, bounds: dict[str, int]) -> bool:
    return (
        ts >= bounds.get("gte", ts)
        and ts > bounds.get("gt", ts - 1)
        and ts <= bounds.get("lte", ts)
        and ts < bounds.get("lt", ts + 1)
    )


class _Handler(BaseHTTPRequestHandler):
    data: FakePolygonData
    base_url: str

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        status, body = self.data.respond(url.path, query, self.headers.get("Authorization"), self.base_url)
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        """Silent: the request log is `data.requests`."""


@contextmanager
def serve_polygon(data: FakePolygonData) -> Iterator[str]:
    """Serve `data` on 127.0.0.1 (random port) for the duration of the block; yields the base URL."""
    handler = type("Handler", (_Handler,), {"data": data, "base_url": ""})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    handler.base_url = f"http://{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield handler.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ----------------------------------------------------------------------------------------------------------------
# DayTape -> Polygon JSON


def _number(x: float | None) -> float | int | None:
    """Whole sizes as integers (as Polygon sends them), fractional ones as floats."""
    if x is None or not math.isfinite(x):
        return x
    return int(x) if float(x).is_integer() else x


def _ns(ts: pl.Series) -> list[int]:
    return ts.cast(pl.Datetime("ns")).cast(pl.Int64).to_list()


def trades_to_polygon(trades: pl.DataFrame) -> list[dict[str, Any]]:
    """TRADE_SCHEMA rows as v3 trade objects (sip and participant timestamps both the row's ts)."""
    out = []
    for i, (ts, price, size) in enumerate(zip(_ns(trades["ts"]), trades["price"], trades["size"], strict=True)):
        out.append(
            {
                "conditions": [],
                "exchange": 4,
                "id": str(i + 1),
                "participant_timestamp": ts,
                "price": price,
                "sequence_number": i + 1,
                "sip_timestamp": ts,
                "size": _number(size),
                "tape": 1,
            }
        )
    return out


def quotes_to_polygon(quotes: pl.DataFrame, lot_size: float = 100.0) -> list[dict[str, Any]]:
    """QUOTE_SCHEMA rows as v3 quote objects, sizes in round lots of `lot_size` shares as Polygon counts them."""
    lots = quotes.select(pl.col("bid_size", "ask_size") / lot_size)
    cols = [_ns(quotes["ts"]), quotes["bid"], quotes["ask"], lots["bid_size"], lots["ask_size"]]
    return [
        {
            "ask_exchange": 11,
            "ask_price": ask,
            "ask_size": _number(ask_size),
            "bid_exchange": 12,
            "bid_price": bid,
            "bid_size": _number(bid_size),
            "participant_timestamp": ts,
            "sequence_number": i + 1,
            "sip_timestamp": ts,
            "tape": 1,
        }
        for i, (ts, bid, ask, bid_size, ask_size) in enumerate(zip(*cols, strict=True))
    ]


def aggs_from_trades(trades: pl.DataFrame, every: str, with_volume: bool = True) -> list[dict[str, Any]]:
    """Polygon aggregates of `every` ("1m", "1s") from trades; periods without trades get no bar."""
    bars = bars_from_trades(trades, every)
    out = []
    for row, start in zip(bars.iter_rows(named=True), _ns(bars["ts"]), strict=True):
        agg = {"o": row["open"], "h": row["high"], "l": row["low"], "c": row["close"], "t": start // _MS_NS}
        if with_volume:
            vwap = None if row["vwap"] is None else round(row["vwap"], 4)
            agg.update({"v": _number(row["volume"]), "vw": vwap, "n": row["trade_count"]})
        out.append(agg)
    return out


def bars_to_polygon(bars: pl.DataFrame) -> list[dict[str, Any]]:
    """BAR_SCHEMA rows as minute agg objects."""
    out = []
    for row, start in zip(bars.iter_rows(named=True), _ns(bars["ts"]), strict=True):
        agg = {"o": row["open"], "h": row["high"], "l": row["low"], "c": row["close"], "v": _number(row["volume"])}
        if row["vwap"] is not None:
            agg["vw"] = row["vwap"]
        if row["trade_count"] is not None:
            agg["n"] = row["trade_count"]
        agg["t"] = start // _MS_NS
        out.append(agg)
    return out


def add_tape(data: FakePolygonData, symbol: str, tape: DayTape, tickers: Mapping[str, str] | None = None) -> None:
    """Append one symbol's DayTape to `data` under its vendor ticker (see the module docstring)."""
    mapping = {**DEFAULT_TICKERS, **(tickers or {})}
    fake = data.ticker(mapping.get(symbol, symbol))
    minute = fake.aggs.setdefault("minute", [])
    if get_symbol(symbol).is_index:
        fake.aggs.setdefault("second", []).extend(aggs_from_trades(tape.trades, "1s", with_volume=False))
        minute.extend(aggs_from_trades(tape.trades, "1m", with_volume=False))
        return
    fake.trades.extend(trades_to_polygon(tape.trades))
    fake.quotes.extend(quotes_to_polygon(tape.quotes))
    minute.extend(
        bars_to_polygon(tape.bars)
        if tape.bars is not None and tape.bars.height
        else aggs_from_trades(tape.trades, "1m")
    )


def polygon_data_from_tapes(
    tapes: Iterable[tuple[str, DayTape]],
    *,
    tickers: Mapping[str, str] | None = None,
    api_key: str = DEFAULT_KEY,
    page_cap: int = MAX_LIMIT,
) -> FakePolygonData:
    """Fake Polygon data serving each (symbol, DayTape) pair; several days of one symbol simply accumulate."""
    data = FakePolygonData(api_key=api_key, page_cap=page_cap)
    for symbol, tape in tapes:
        add_tape(data, symbol, tape, tickers)
    return data


def synthetic_polygon_data(
    symbols: Iterable[str], days: Iterable[date], config: Any = None, **kwargs: Any
) -> FakePolygonData:
    """The synthetic market (`market.synthetic`, `config` a SyntheticMarketConfig or None) served as Polygon."""
    from market.sources import SyntheticSource

    source = SyntheticSource(config)
    days = list(days)
    return polygon_data_from_tapes(((s, source.fetch_day(s, d)) for s in symbols for d in days), **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Option chains in Polygon's format


def option_contract(ticker: str, underlying: str, right: str, strike: float, expiry: date) -> dict[str, Any]:
    """An options contract reference object as Polygon documents it (European for indexes, else American)."""
    return {
        "cfi": "OCEPSX" if get_symbol(underlying).is_index else "OCASPS",
        "contract_type": "call" if right == "C" else "put",
        "exercise_style": "european" if get_symbol(underlying).is_index else "american",
        "expiration_date": expiry.isoformat(),
        "primary_exchange": "CBOE" if get_symbol(underlying).is_index else "BATO",
        "shares_per_contract": 100,
        "strike_price": _number(strike),
        "ticker": ticker,
        "underlying_ticker": underlying,
    }


def add_option_chain(data: FakePolygonData, quotes: pl.DataFrame) -> None:
    """Serve vendor quotes (contract, underlying, right, strike, minute, bid, ask, volume) as Polygon would: see the
    module docstring. A contract-minute with a null bid or ask gets no quote that minute."""
    for (ticker,), rows in quotes.sort("minute").group_by("contract", maintain_order=True):
        first = rows.row(0, named=True)
        expiry = first["minute"].date()
        data.contracts.append(option_contract(ticker, first["underlying"], first["right"], first["strike"], expiry))
        fake = data.ticker(ticker)
        for i, (start, r) in enumerate(zip(_ns(rows["minute"]), rows.iter_rows(named=True), strict=True)):
            if r["bid"] is not None and r["ask"] is not None:
                stale = _option_quote(start + 5 * _SECOND_NS, r["bid"] + 0.5, r["ask"] + 0.5, 2 * i)
                fake.quotes += [stale, _option_quote(start + 55 * _SECOND_NS, r["bid"], r["ask"], 2 * i + 1)]
            if r["volume"]:
                mid = (r["bid"] + r["ask"]) / 2 if r["bid"] is not None and r["ask"] is not None else 0.01
                agg = {"o": mid, "h": mid, "l": mid, "c": mid, "v": _number(r["volume"]), "n": 1, "t": start // _MS_NS}
                fake.aggs.setdefault("minute", []).append(agg)


def _option_quote(ts: int, bid: float, ask: float, sequence: int) -> dict[str, Any]:
    """An options v3 quote object (sizes in contracts, no participant timestamp)."""
    return {"ask_exchange": 301, "ask_price": ask, "ask_size": 10, "bid_exchange": 302, "bid_price": bid,
            "bid_size": 12, "sequence_number": sequence, "sip_timestamp": ts}  # fmt: skip
