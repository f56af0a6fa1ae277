"""A tiny local stand-in for binance USD-M futures and bybit v5 linear public REST, in each exchange's own JSON format.

Serves on 127.0.0.1 only (random port, daemon threads, bounded request count) the endpoints the real ccxt classes
call for our connector. binance (`symbols`): exchangeInfo (fapi, plus empty spot/dapi ones so ccxt's default
`load_markets` works), fundingRate (startTime/endTime/limit paging, oldest first), fundingInfo, markPriceKlines,
ticker/24hr and ticker/bookTicker. bybit (`bybit`): /v5/market/instruments-info, funding/history and
mark-price-kline (both newest first, as bybit answers) and tickers; one server serves both path namespaces.
Faults can be injected: a status returned once for a path (`fail_once`) or always for a (path, symbol) pair
(`errors`). Every request is logged as (path, query) for the tests to inspect.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

HOUR_MS = 3_600_000
MAX_REQUESTS = 5_000  # bound: anything beyond this gets a 503 (a runaway client loop fails fast)


@dataclass
class FakeSymbol:
    """One perpetual: funding events (ms, rate), a mark path and a current book/volume."""

    symbol: str
    base: str
    funding: list[tuple[int, float]]
    mark_start: float = 100.0
    mark_step: float = 0.01  # mark at t = mark_start + mark_step * (minutes since mark_origin)
    mark_origin_ms: int = 0
    bid: float = 99.95
    ask: float = 100.05
    quote_volume: float = 1.5e9
    funding_interval_hours: int | None = None  # listed in fundingInfo when set (binance lists adjusted ones only)
    ticker: bool = True  # False: absent from the ticker and book-ticker answers (a ticker that cannot be matched)

    def mark_at(self, t_ms: int) -> float:
        return self.mark_start + self.mark_step * (t_ms - self.mark_origin_ms) / 60_000


@dataclass
class FakeExchange:
    """Server state; use as a context manager (`with FakeExchange(symbols) as fake:`)."""

    symbols: dict[str, FakeSymbol]
    bybit: dict[str, FakeSymbol] = field(default_factory=dict)
    fail_once: dict[str, tuple[int, dict]] = field(default_factory=dict)
    errors: dict[tuple[str, str], tuple[int, dict]] = field(default_factory=dict)
    newest_first: bool = False  # answer like bybit/okx: the newest `limit` rows of [start, end], newest first
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeExchange:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.timeout = 1.0
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def point(self, client: Any) -> Any:
        """Point every `urls['api']` entry of a ccxt client at this server, keeping each URL's path."""
        for key, url in list(client.urls["api"].items()):
            if isinstance(url, str):
                client.urls["api"][key] = self.base_url + urlparse(url).path
        return client

    def calls(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return [q for p, q in self.log if p == path]

    # -- routes ------------------------------------------------------------------------------------------------------
    def respond(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            self.log.append((path, query))
            if len(self.log) > MAX_REQUESTS:
                return 503, {"code": -1001, "msg": "fake server request bound reached"}
            if path in self.fail_once:
                return self.fail_once.pop(path)
        key = (path, query.get("symbol", ""))
        if key in self.errors:
            return self.errors[key]
        routes = {
            "/fapi/v1/exchangeInfo": self._exchange_info,
            "/api/v3/exchangeInfo": lambda q: {"timezone": "UTC", "serverTime": 0, "symbols": []},
            "/dapi/v1/exchangeInfo": lambda q: {"timezone": "UTC", "serverTime": 0, "symbols": []},
            "/fapi/v1/fundingRate": self._funding_rate,
            "/fapi/v1/fundingInfo": self._funding_info,
            "/fapi/v1/markPriceKlines": self._mark_klines,
            "/fapi/v1/ticker/24hr": self._ticker_24hr,
            "/fapi/v1/ticker/bookTicker": self._book_ticker,
            "/v5/market/instruments-info": self._bybit_instruments,
            "/v5/market/funding/history": self._bybit_funding,
            "/v5/market/mark-price-kline": self._bybit_mark_kline,
            "/v5/market/tickers": self._bybit_tickers,
        }
        route = routes.get(path)
        if route is None:
            return 404, {"code": -5000, "msg": f"path {path} not served by the fake"}
        sym = query.get("symbol")
        if path.startswith("/v5/"):
            if sym is not None and sym not in self.bybit:
                return 200, {"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {}, "time": 0}
            return 200, {"retCode": 0, "retMsg": "OK", "result": route(query), "retExtInfo": {}, "time": 0}
        if sym is not None and sym not in self.symbols:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        return 200, route(query)

    def _exchange_info(self, query: dict[str, str]) -> dict:
        filters = [
            {"filterType": "PRICE_FILTER", "minPrice": "0.0001", "maxPrice": "1000000", "tickSize": "0.0001"},
            {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000000", "stepSize": "0.001"},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "100000", "stepSize": "0.001"},
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
        ]
        symbols = [
            {
                "symbol": s.symbol,
                "pair": s.symbol,
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000,
                "onboardDate": 1569398400000,
                "status": "TRADING",
                "baseAsset": s.base,
                "quoteAsset": "USDT",
                "marginAsset": "USDT",
                "pricePrecision": 4,
                "quantityPrecision": 3,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "filters": filters,
                "orderTypes": ["LIMIT", "MARKET"],
                "timeInForce": ["GTC", "IOC"],
            }
            for s in self.symbols.values()
        ]
        return {"timezone": "UTC", "serverTime": 0, "rateLimits": [], "exchangeFilters": [], "symbols": symbols}

    def _funding_rate(self, query: dict[str, str]) -> list[dict]:
        # binance: ascending from startTime, at most `limit` (default 100, max 1000), endTime inclusive
        sym = self.symbols[query["symbol"]]
        lo, hi = int(query.get("startTime", 0)), int(query.get("endTime", 2**62))
        limit = min(int(query.get("limit", 100)), 1000)
        rows = [(t, r) for t, r in sorted(sym.funding) if lo <= t <= hi]
        rows = rows[::-1][:limit] if self.newest_first else rows[:limit]
        return [
            {"symbol": sym.symbol, "fundingTime": t, "fundingRate": f"{r:.8f}", "markPrice": f"{sym.mark_at(t):.8f}"}
            for t, r in rows
        ]

    def _funding_info(self, query: dict[str, str]) -> list[dict]:
        return [
            {
                "symbol": s.symbol,
                "adjustedFundingRateCap": "0.03000000",
                "adjustedFundingRateFloor": "-0.03000000",
                "fundingIntervalHours": s.funding_interval_hours,
                "disclaimer": False,
            }
            for s in self.symbols.values()
            if s.funding_interval_hours is not None
        ]

    def _mark_klines(self, query: dict[str, str]) -> list[list]:
        sym = self.symbols[query["symbol"]]
        step = {"1m": 1, "5m": 5, "15m": 15, "1h": 60}[query["interval"]] * 60_000
        lo = int(query["startTime"])
        hi = int(query.get("endTime", lo + 1000 * step))
        limit = min(int(query.get("limit", 500)), 1500)
        first = -(-lo // step) * step
        times = list(range(first, hi + 1, step))
        out = []
        for t in times[::-1][:limit] if self.newest_first else times[:limit]:
            o, c = sym.mark_at(t), sym.mark_at(t + step)
            out.append(
                [
                    t,
                    f"{o:.4f}",
                    f"{max(o, c):.4f}",
                    f"{min(o, c):.4f}",
                    f"{c:.4f}",
                    "0",
                    t + step - 1,
                    "0",
                    60,
                    "0",
                    "0",
                    "0",
                ]
            )
        return out

    def _ticker_24hr(self, query: dict[str, str]) -> Any:
        rows = [
            {
                "symbol": s.symbol,
                "priceChange": "0.0",
                "priceChangePercent": "0.0",
                "weightedAvgPrice": f"{s.mark_start:.4f}",
                "lastPrice": f"{(s.bid + s.ask) / 2:.4f}",
                "lastQty": "1",
                "openPrice": f"{s.mark_start:.4f}",
                "highPrice": f"{s.ask:.4f}",
                "lowPrice": f"{s.bid:.4f}",
                "volume": f"{s.quote_volume / s.mark_start:.3f}",
                "quoteVolume": f"{s.quote_volume:.2f}",
                "openTime": 0,
                "closeTime": 86_399_999,
                "firstId": 1,
                "lastId": 2,
                "count": 2,
            }
            for s in self.symbols.values()
            if query.get("symbol") in (None, s.symbol) and s.ticker
        ]
        return rows[0] if "symbol" in query else rows

    def _book_ticker(self, query: dict[str, str]) -> Any:
        rows = [
            {
                "symbol": s.symbol,
                "bidPrice": f"{s.bid:.4f}",
                "bidQty": "10",
                "askPrice": f"{s.ask:.4f}",
                "askQty": "10",
                "time": 0,
            }
            for s in self.symbols.values()
            if query.get("symbol") in (None, s.symbol) and s.ticker
        ]
        return rows[0] if "symbol" in query else rows

    # -- bybit v5 (answers wrapped in {"retCode": 0, "result": ...} by `respond`) -------------------------------------
    def _bybit_instruments(self, query: dict[str, str]) -> dict:
        rows = [
            {
                "symbol": s.symbol,
                "contractType": "LinearPerpetual",
                "status": "Trading",
                "baseCoin": s.base,
                "quoteCoin": "USDT",
                "settleCoin": "USDT",
                "launchTime": "1585526400000",
                "deliveryTime": "0",
                "priceScale": "4",
                "leverageFilter": {"minLeverage": "1", "maxLeverage": "50.00", "leverageStep": "0.01"},
                "priceFilter": {"minPrice": "0.0001", "maxPrice": "1999999.00", "tickSize": "0.0001"},
                "lotSizeFilter": {"maxOrderQty": "1000.0", "minOrderQty": "0.001", "qtyStep": "0.001"},
                "fundingInterval": 60 * (s.funding_interval_hours or 8),
            }
            for s in self.bybit.values()
            if query.get("status") != "PreLaunch"
        ]
        return {"category": query.get("category", "linear"), "list": rows, "nextPageCursor": ""}

    def _bybit_funding(self, query: dict[str, str]) -> dict:
        sym = self.bybit[query["symbol"]]
        lo, hi = int(query.get("startTime", 0)), int(query.get("endTime", 2**62))
        limit = min(int(query.get("limit", 200)), 200)
        rows = [(t, r) for t, r in sorted(sym.funding, reverse=True) if lo <= t <= hi][:limit]  # newest first
        listed = [{"symbol": sym.symbol, "fundingRate": f"{r:.8f}", "fundingRateTimestamp": str(t)} for t, r in rows]
        return {"category": "linear", "list": listed}

    def _bybit_mark_kline(self, query: dict[str, str]) -> dict:
        sym = self.bybit[query["symbol"]]
        step = int(query["interval"]) * 60_000
        lo = int(query["start"])
        hi = int(query.get("end", lo + 1000 * step))
        limit = min(int(query.get("limit", 200)), 1000)
        times = list(range(-(-lo // step) * step, hi + 1, step))[::-1][:limit]  # newest first
        rows = [[str(t), f"{sym.mark_at(t):.4f}", *[f"{sym.mark_at(t + step):.4f}"] * 3] for t in times]
        return {"symbol": sym.symbol, "category": "linear", "list": rows}

    def _bybit_tickers(self, query: dict[str, str]) -> dict:
        rows = [
            {
                "symbol": s.symbol,
                "lastPrice": f"{(s.bid + s.ask) / 2:.4f}",
                "markPrice": f"{s.mark_start:.4f}",
                "prevPrice24h": f"{s.mark_start:.4f}",
                "price24hPcnt": "0",
                "highPrice24h": f"{s.ask:.4f}",
                "lowPrice24h": f"{s.bid:.4f}",
                "bid1Price": f"{s.bid:.4f}",
                "bid1Size": "10",
                "ask1Price": f"{s.ask:.4f}",
                "ask1Size": "10",
                "volume24h": f"{s.quote_volume / s.mark_start:.3f}",
                "turnover24h": f"{s.quote_volume:.2f}",
                "openInterest": "1000",
                "openInterestValue": "1000000",
                "fundingRate": "0.0001",
                "nextFundingTime": "0",
            }
            for s in self.bybit.values()
            if query.get("symbol") in (None, s.symbol)
        ]
        return {"category": "linear", "list": rows}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeExchange
    timeout = 5  # a stuck client socket cannot hold a thread forever

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parsed = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        try:
            status, payload = self.fake.respond(parsed.path, query)
        except Exception as exc:  # a fake bug must reach the client as an answer, not a dropped socket
            status, payload = 500, {"code": -1000, "msg": f"fake server error: {type(exc).__name__}: {exc}"}
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature of the base class)
        """Silence per-request logging."""
