"""A small fake TWS / IB Gateway: the TWS socket API on 127.0.0.1, enough of it for the historical-data connector.

Real clients (`ib_async.IB`) connect to it unchanged. It runs in background threads (one accepting, one per
connection) and binds port 0, so every instance gets its own free port:

    market = market_from_tape(generate_day(SyntheticMarketConfig(), "SPY", day))
    with FakeTws(market) as tws:            # or: with running_tws(market) as port: ...
        clock = FakeClock()                 # IB's pacing on a clock that never really waits
        limiter = PacingLimiter(clock, clock.sleep)
        with IbkrSource(IbkrConfig(port=tws.port, timeout_s=0.5), limiter=limiter, sleep=lambda s: None) as source:
            tape = source.fetch_day("SPY", day)
        assert tws.order_messages() == []

Wire format: every message after the first 4 bytes is a 4-byte big-endian length followed by NUL-terminated text
fields. What it speaks (server version 178, the top of ib_async 2.1's 157..178 range, text protocol):
- handshake: the client sends b"API\\0" and a length-prefixed "v<min>..<max>"; the fake answers with the server
  version and a connection time.
- client -> fake: 71 startApi (answered by 9 nextValidId, 15 managedAccounts and the usual 2104/2106/2158 farm
  notices as error messages with reqId -1); 61 reqPositions (62 positionEnd); 49 reqCurrentTime (49 currentTime);
  20 reqHistoricalData (17 historicalData: bars whose START lies in [end - duration, end); formatDate=2 sends
  epoch seconds, formatDate=1 New York local time with its zone name; TRADES bars only); 25 cancelHistoricalData
  (logged); 96 reqHistoricalTicks for TRADES (98 historicalTicksLast), BID_ASK (97 historicalTicksBidAsk) and
  MIDPOINT (96 historicalTicks); 9 reqContractDetails (10 contractData, 52 contractDataEnd) for a stock or index
  it serves, a listed option, or a continuous future; 78 reqSecDefOptParams (75 securityDefinitionOptionParameter
  per chain, 76 ...End). Every other message (an order, say) is only logged.
- options (`add_option_chain(market, quotes)`, quotes as `tests.option_quotes.vendor_quotes` makes them): each
  underlying gets a chain per trading class (SPXW for SPX) listing the session and a later expiration; its strikes
  are the union of the listed ones and `unknown_strikes`, which no contract has, so qualifying such a contract
  gets error 200 and ib_async's None. Each contract serves 1-minute BID and ASK bars whose close is the minute's
  quote and whose open a stale one; `decoy_classes` adds other classes (the monthly SPX) listing the same dates.
  Historical requests for an option are logged under its OCC ticker (O:SPY240305C00470000).
- historical ticks behave like IB's: whole-second times; from startDateTime, the first min(numberOfTicks, 1000)
  ticks at or after that second (or, with only endDateTime, the last ones at or before it), in stored order. A
  client that pages from its last tick's second therefore gets that second's earlier ticks again (the repeated
  boundary second). `complete_last_second=True` also sends the rest of the last second, as IB documents ("to
  complete a full second, more ticks may be returned than requested"); the default is a hard cap, the harder case.
- errors as IB sends them (4 errMsg, version 2, reqId, code, text, advanced-reject JSON): an unknown symbol gets
  200 "No security definition has been found for the request"; a bar request with no bars in range gets 162
  "HMDS query returned no data"; a tick request with no ticks gets an empty, finished page.

Scripts (`Script`, via `error`, `no_data`, `pacing_violation`, `silence`, `disconnect`) replace the answer to
matching requests (by kind "bars"/"ticks", symbol, whatToShow; `nth` matching request only; `times` it fires, None
for always): an error message, no answer at all (the client's timeout path), or a dropped connection.

State is in memory: `FakeMarket` holds bars per symbol and ticks per (symbol, whatToShow); `market_from_tape`
builds it from a `DayTape` (e.g. `market.synthetic.generate_day`), at IB's 1-second resolution, with 1-minute bars
aggregated from the trades when the tape has none, so pipeline tests can serve the synthetic market as TWS.
Every message received after the handshake is logged (`log`, `message_ids()`, `order_messages()`) and every
historical request is parsed into `requests` so tests can count them.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import socket
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from market.chain_sources import option_root
from market.option_chain import occ_symbol
from market.sources import DayTape, bars_from_trades
from market.symbols import get_symbol

SERVER_VERSION = 178
TICK_CAP = 1000  # IB's maximum ticks per reqHistoricalTicks

# client -> TWS message ids
START_API = 71
REQ_POSITIONS = 61
REQ_CURRENT_TIME = 49
REQ_HISTORICAL_DATA = 20
CANCEL_HISTORICAL_DATA = 25
REQ_HISTORICAL_TICKS = 96
REQ_CONTRACT_DATA = 9
REQ_SEC_DEF_OPT_PARAMS = 78
PLACE_ORDER = 3
CANCEL_ORDER = 4
EXERCISE_OPTIONS = 21
REQ_GLOBAL_CANCEL = 58
ORDER_MESSAGE_IDS = frozenset({PLACE_ORDER, CANCEL_ORDER, EXERCISE_OPTIONS, REQ_GLOBAL_CANCEL})

# TWS -> client message ids
ERR_MSG = 4
NEXT_VALID_ID = 9
MANAGED_ACCTS = 15
HISTORICAL_DATA = 17
CURRENT_TIME = 49
POSITION_END = 62
HISTORICAL_TICKS = 96
CONTRACT_DATA = 10
CONTRACT_DATA_END = 52
HISTORICAL_TICKS_BID_ASK = 97
HISTORICAL_TICKS_LAST = 98
SEC_DEF_OPT_PARAMS = 75
SEC_DEF_OPT_PARAMS_END = 76

NO_DATA_TEXT = "Historical Market Data Service error message:HMDS query returned no data: {symbol}@{exchange} {what}"
PACING_TEXT = "Historical Market Data Service error message:Historical data request pacing violation"
NO_SECDEF_TEXT = "No security definition has been found for the request"
_NEW_YORK = ZoneInfo("America/New_York")


# ----------------------------------------------------------------------------------------------------------
# Market data held by the fake


@dataclass(frozen=True)
class Bar:
    """One bar: `time` is the bar START in UTC epoch seconds."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


@dataclass(frozen=True)
class TradeTick:
    """A TRADES tick (sent as HISTORICAL_TICKS_LAST)."""

    time: int
    price: float
    size: float
    exchange: str = "ARCA"
    conditions: str = ""
    mask: int = 0


@dataclass(frozen=True)
class QuoteTick:
    """A BID_ASK tick (sent as HISTORICAL_TICKS_BID_ASK)."""

    time: int
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    mask: int = 0


@dataclass(frozen=True)
class MidTick:
    """A MIDPOINT tick (sent as HISTORICAL_TICKS)."""

    time: int
    price: float
    size: float = 0.0


_TICK_TYPES = {"TRADES": TradeTick, "BID_ASK": QuoteTick, "MIDPOINT": MidTick}


@dataclass(frozen=True)
class OptionChainParams:
    """One reqSecDefOptParams answer: an exchange's chain of one trading class."""

    exchange: str
    trading_class: str
    multiplier: str
    expirations: tuple[str, ...]  # YYYYMMDD
    strikes: tuple[float, ...]


@dataclass(frozen=True)
class OptionListing:
    """A listed option contract the fake qualifies."""

    symbol: str
    trading_class: str
    expiry: str  # YYYYMMDD
    right: str  # C or P
    strike: float
    con_id: int


@dataclass
class FakeMarket:
    """Bars per symbol and ticks per (symbol, whatToShow), each kept sorted by time (stable, so order is kept)."""

    bars: dict[str, list[Bar]] = field(default_factory=dict)
    fronts: dict[str, str] = field(default_factory=dict)  # futures root -> its front contract's last trading day
    ticks: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    chains: dict[str, list[OptionChainParams]] = field(default_factory=dict)  # underlying -> secdef answers
    options: dict[str, OptionListing] = field(default_factory=dict)  # OCC ticker -> listed contract
    quote_bars: dict[tuple[str, str], list[Bar]] = field(default_factory=dict)  # (OCC ticker, BID/ASK) -> bars

    def set_bars(self, symbol: str, bars: Sequence[Bar]) -> FakeMarket:
        """Serve these 1-minute TRADES bars for `symbol`."""
        self.bars[symbol] = sorted(bars, key=lambda b: b.time)
        return self

    def set_ticks(self, symbol: str, what_to_show: str, ticks: Sequence[Any]) -> FakeMarket:
        """Serve these ticks for (`symbol`, `what_to_show`); ticks of one second keep the order given."""
        kind = _TICK_TYPES[what_to_show]
        if any(not isinstance(t, kind) for t in ticks):
            raise TypeError(f"{what_to_show} ticks must be {kind.__name__}")
        self.ticks[(symbol, what_to_show)] = sorted(ticks, key=lambda t: t.time)
        return self

    def knows(self, symbol: str) -> bool:
        """True when the symbol has any data (an unknown one gets IB's error 200)."""
        return symbol in self.bars or symbol in self.options or any(s == symbol for s, _ in self.ticks)

    def con_id(self, symbol: str) -> int:
        """A stable contract id for a stock or index the fake serves."""
        return 1000 + sorted({*self.bars, *(s for s, _ in self.ticks)}).index(symbol)


def _bars_from_trades(trades: pl.DataFrame, index: bool) -> list[Bar]:
    """1-minute bars (start-labelled) from trades as IB sends them: no volume for an index, -1 for a missing wap."""
    bars = bars_from_trades(trades)
    out = []
    for start, r in zip(_seconds(bars["ts"]), bars.iter_rows(named=True), strict=True):
        wap = -1.0 if index or r["vwap"] is None else r["vwap"]
        volume = 0.0 if index else r["volume"]
        out.append(Bar(start, r["open"], r["high"], r["low"], r["close"], volume, wap, r["trade_count"]))
    return out


def _seconds(ts: pl.Series) -> list[int]:
    return (ts.cast(pl.Int64) // 1_000_000_000).to_list()


def market_from_tape(
    tape: DayTape, symbol: str | None = None, *, index: bool | None = None, into: FakeMarket | None = None
) -> FakeMarket:
    """Serve a `DayTape` as TWS would: TRADES from trades, BID_ASK from quotes, bars from the tape (or aggregated).

    An index (default: as `market.symbols` says) serves its levels as TRADES and MIDPOINT ticks with size 0.
    Times are cut to whole seconds, as IB stores them. Add several symbols by passing the same `into`."""
    market = into if into is not None else FakeMarket()
    if symbol is None:
        if tape.trades.height == 0:
            raise ValueError("market_from_tape: name the symbol of a tape without trades")
        symbol = str(tape.trades["symbol"][0])
    if index is None:
        index = get_symbol(symbol).is_index
    tr = tape.trades
    secs, prices, sizes = _seconds(tr["ts"]), tr["price"].to_list(), tr["size"].to_list()
    if index:
        market.set_ticks(symbol, "TRADES", [TradeTick(t, p, 0.0, "CBOE") for t, p in zip(secs, prices, strict=True)])
        market.set_ticks(symbol, "MIDPOINT", [MidTick(t, p) for t, p in zip(secs, prices, strict=True)])
    else:
        market.set_ticks(symbol, "TRADES", [TradeTick(*row) for row in zip(secs, prices, sizes, strict=True)])
        q = tape.quotes
        columns = [q[c].to_list() for c in ("bid", "ask", "bid_size", "ask_size")]
        rows = zip(_seconds(q["ts"]), *columns, strict=True)
        market.set_ticks(symbol, "BID_ASK", [QuoteTick(*row) for row in rows])
    if tape.bars is not None and tape.bars.height:
        b = tape.bars
        market.set_bars(
            symbol,
            [
                Bar(
                    t,
                    r["open"],
                    r["high"],
                    r["low"],
                    r["close"],
                    r["volume"],
                    -1.0 if r["vwap"] is None else r["vwap"],
                    -1 if r["trade_count"] is None else r["trade_count"],
                )
                for t, r in zip(_seconds(b["ts"]), b.iter_rows(named=True), strict=True)
            ],
        )
    else:
        market.set_bars(symbol, _bars_from_trades(tr, index))
    return market


class FakeClock:
    """A monotonic clock that moves only when slept on: `PacingLimiter(clock, clock.sleep)` paces without waiting.

    Any test that fetches more than a few pages from the fake needs it, or IB's real pacing (at most 60 requests
    in 10 minutes) would make the test wait."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# ----------------------------------------------------------------------------------------------------------
# Scripted answers


@dataclass
class Script:
    """Replace the answer to matching historical requests: "error" (code, message), "silence", "disconnect", or
    "rewind" (ticks served from `code` seconds before the requested start, as a stale page would be).

    `message` may use {symbol}, {exchange} and {what}. Matching: `kind` ("bars"/"ticks"), `symbol`,
    `what_to_show` (None matches any); `nth`: only the nth matching request (1-based); `times`: how often it
    fires (None: always)."""

    action: str
    code: int = 0
    message: str = ""
    kind: str | None = None
    symbol: str | None = None
    what_to_show: str | None = None
    nth: int | None = None
    times: int | None = 1
    matched: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.action not in ("error", "silence", "disconnect", "rewind"):
            raise ValueError(f"unknown script action {self.action!r}")
        if self.kind not in (None, "bars", "ticks"):
            raise ValueError(f"unknown request kind {self.kind!r}")

    def take(self, request: HistRequest) -> bool:
        """Count a request; True when this script answers it."""
        if self.kind not in (None, request.kind) or self.symbol not in (None, request.symbol):
            return False
        if self.what_to_show not in (None, request.what_to_show):
            return False
        self.matched += 1
        if self.nth is not None and self.matched != self.nth:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


def error(code: int, message: str, **match: Any) -> Script:
    """Answer matching requests with IB error `code`."""
    return Script("error", code, message, **match)


def no_data(**match: Any) -> Script:
    """IB's "HMDS query returned no data" (error 162)."""
    return Script("error", 162, NO_DATA_TEXT, **match)


def pacing_violation(**match: Any) -> Script:
    """IB's pacing violation (error 162)."""
    return Script("error", 162, PACING_TEXT, **match)


def rewind(seconds: int, **match: Any) -> Script:
    """Serve matching tick requests from `seconds` before their start (IB answering with ticks already sent)."""
    return Script("rewind", seconds, **match)


def silence(**match: Any) -> Script:
    """Never answer matching requests (the client times out and ib_async returns an empty result)."""
    return Script("silence", **match)


def disconnect(**match: Any) -> Script:
    """Drop the connection on matching requests (a connection reset)."""
    return Script("disconnect", **match)


# ----------------------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class HistRequest:
    """A parsed reqHistoricalData ("bars") or reqHistoricalTicks ("ticks")."""

    kind: str
    req_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    what_to_show: str
    use_rth: bool
    start: str = ""
    end: str = ""
    duration: str = ""
    bar_size: str = ""
    format_date: int = 0
    number_of_ticks: int = 0


@dataclass(frozen=True)
class Received:
    """One message from a client: its connection number, message id and raw fields."""

    connection: int
    msg_id: int
    fields: tuple[str, ...]


def parse_ib_time(text: str) -> int | None:
    """Epoch seconds of an IB request time: "yyyymmdd-hh:mm:ss" (UTC) or "yyyymmdd hh:mm:ss [zone]" ("" = now)."""
    text = text.strip()
    if not text:
        return None
    if "-" in text[:9]:
        return int(datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC).timestamp())
    day, clock, *zone = text.split()
    tz = ZoneInfo(zone[0]) if zone else UTC
    return int(datetime.strptime(day + clock, "%Y%m%d%H:%M:%S").replace(tzinfo=tz).timestamp())


def parse_duration(text: str) -> int:
    """Seconds of an IB durationStr ("23400 S", "1 D", "1 W"); D as 24 h, the fake has no trading calendar."""
    amount, unit = text.split()
    return int(amount) * {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}[unit]


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = conn.recv(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv_msg(conn: socket.socket) -> bytes | None:
    head = _recv_exact(conn, 4)
    if head is None:
        return None
    return _recv_exact(conn, struct.unpack(">I", head)[0])


def _encode(*fields: Any) -> bytes:
    payload = "".join(f"{f}\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


class _Dropped(Exception):
    """A script dropped the connection."""


class FakeTws:
    """The fake server; a context manager whose `port` is set once it listens (see the module docstring)."""

    def __init__(
        self,
        market: FakeMarket | None = None,
        *,
        scripts: Sequence[Script] = (),
        server_version: int = SERVER_VERSION,
        accounts: Sequence[str] = ("DU1234567",),
        tick_cap: int = TICK_CAP,
        complete_last_second: bool = False,
    ) -> None:
        self.market = market if market is not None else FakeMarket()
        self.scripts = list(scripts)
        self.server_version = server_version
        self.accounts = tuple(accounts)
        self.tick_cap = tick_cap
        self.complete_last_second = complete_last_second
        self.port = 0
        self.log: list[Received] = []
        self.requests: list[HistRequest] = []
        self.handshakes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def __enter__(self) -> FakeTws:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        accept = threading.Thread(target=self._accept_loop, name="fake-tws-accept", daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
            pass  # wakes the blocking accept()
        assert self._listener is not None
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=2.0)

    def add_script(self, script: Script) -> Script:
        """Add a scripted answer while running."""
        with self._lock:
            self.scripts.append(script)
        return script

    # -- what tests inspect -------------------------------------------------------------------------------------

    def message_ids(self) -> list[int]:
        """Ids of every message received after the handshake, in order."""
        with self._lock:
            return [m.msg_id for m in self.log]

    def order_messages(self) -> list[Received]:
        """Messages that would place, cancel or exercise an order (a read-only client sends none)."""
        with self._lock:
            return [m for m in self.log if m.msg_id in ORDER_MESSAGE_IDS]

    def requests_of(
        self, kind: str | None = None, symbol: str | None = None, what_to_show: str | None = None
    ) -> list[HistRequest]:
        """Historical requests received, filtered."""
        with self._lock:
            return [
                r
                for r in self.requests
                if kind in (None, r.kind) and symbol in (None, r.symbol) and what_to_show in (None, r.what_to_show)
            ]

    # -- serving ------------------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        number = 0
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self._stop.is_set():
                conn.close()
                return
            number += 1
            with self._lock:
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn, number), name="fake-tws-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        try:
            if _recv_exact(conn, 4) != b"API\0":
                return
            versions = _recv_msg(conn)
            if versions is None:
                return
            low, high = versions.decode().split()[0].lstrip("v").split("..")
            if not int(low) <= self.server_version <= int(high):
                return
            conn.sendall(_encode(self.server_version, "20240102 12:00:00 UTC"))
            with self._lock:
                self.handshakes += 1
            while (payload := _recv_msg(conn)) is not None:
                fields = payload.decode().split("\0")[:-1]
                with self._lock:
                    self.log.append(Received(number, int(fields[0]), tuple(fields)))
                self._dispatch(conn, fields)
        except (OSError, _Dropped):
            pass
        finally:
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)
            conn.close()

    def _error(self, conn: socket.socket, req_id: int, code: int, text: str) -> None:
        extra = ("",) if self.server_version >= 166 else ()
        conn.sendall(_encode(ERR_MSG, 2, req_id, code, text, *extra))

    def _dispatch(self, conn: socket.socket, fields: list[str]) -> None:
        msg_id = int(fields[0])
        if msg_id == START_API:
            conn.sendall(_encode(NEXT_VALID_ID, 1, 1) + _encode(MANAGED_ACCTS, 1, ",".join(self.accounts)))
            self._error(conn, -1, 2104, "Market data farm connection is OK:usfarm")
            self._error(conn, -1, 2106, "HMDS data farm connection is OK:ushmds")
            self._error(conn, -1, 2158, "Sec-def data farm connection is OK:secdefnj")
        elif msg_id == REQ_POSITIONS:
            conn.sendall(_encode(POSITION_END, 1))
        elif msg_id == REQ_CURRENT_TIME:
            conn.sendall(_encode(CURRENT_TIME, 1, int(datetime.now(UTC).timestamp())))
        elif msg_id == REQ_CONTRACT_DATA:
            self._contract_details(conn, fields)
        elif msg_id == REQ_SEC_DEF_OPT_PARAMS:
            self._sec_def_opt_params(conn, fields)
        elif msg_id in (REQ_HISTORICAL_DATA, REQ_HISTORICAL_TICKS):
            request = _parse_request(fields)
            with self._lock:
                self.requests.append(request)
                script = next((s for s in self.scripts if s.take(request)), None)
            if script is not None:
                self._play(conn, script, request)
            elif request.kind == "bars":
                self._bars(conn, request)
            else:
                self._ticks(conn, request)

    def _play(self, conn: socket.socket, script: Script, request: HistRequest) -> None:
        if script.action == "error":
            text = script.message.format(symbol=request.symbol, exchange=request.exchange, what=request.what_to_show)
            self._error(conn, request.req_id, script.code, text)
        elif script.action == "disconnect":
            conn.shutdown(socket.SHUT_RDWR)
            raise _Dropped
        elif script.action == "rewind":
            earlier = parse_ib_time(request.start) - script.code
            start = datetime.fromtimestamp(earlier, UTC).strftime("%Y%m%d-%H:%M:%S")
            self._ticks(conn, dataclasses.replace(request, start=start))

    def _contract_details(self, conn: socket.socket, f: list[str]) -> None:
        """reqContractDetails (9, version 8, reqId, 12 contract fields, ...): a CONTFUT resolves to its root's front
        contract, a stock or index it serves and a listed option to themselves; anything else gets error 200.
        Answered in the v164+ contractData layout and closed by contractDataEnd."""
        req_id, symbol, sec_type, exchange = int(f[2]), f[4], f[5], f[10]
        last = self.market.fronts.get(symbol)
        if sec_type == "CONTFUT" and last is not None:
            local = f"{symbol}{'FGHJKMNQUVXZ'[int(last[4:6]) - 1]}{last[3]}"
            details = _contract_data(req_id, symbol, "FUT", last, exchange=exchange, local=local, trading_class=symbol,
                                     con_id=1, min_tick=0.25, multiplier="50", long_name=f"E-mini {symbol}",
                                     month=last[:6], time_zone="US/Central")  # fmt: skip
        elif sec_type in ("STK", "IND") and symbol in self.market.bars:
            con_id = self.market.con_id(symbol)
            details = _contract_data(req_id, symbol, sec_type, "", exchange=exchange, local=symbol,
                                     trading_class=symbol, con_id=con_id, primary=f[11])  # fmt: skip
        elif sec_type == "OPT" and (o := self.market.options.get(_option_name(f[4], f[14], f[6], f[8], f[7]))):
            local = f"{o.symbol:<6}{o.expiry[2:]}{o.right}{round(o.strike * 1000):08d}"
            details = _contract_data(req_id, o.symbol, "OPT", o.expiry, strike=o.strike, right=o.right,
                                     exchange=exchange, local=local, trading_class=o.trading_class, con_id=o.con_id,
                                     multiplier="100", month=o.expiry[:6])  # fmt: skip
        else:
            return self._error(conn, req_id, 200, NO_SECDEF_TEXT)
        conn.sendall(details)

    def _sec_def_opt_params(self, conn: socket.socket, f: list[str]) -> None:
        """reqSecDefOptParams (78, reqId, symbol, futFopExchange, secType, conId): one message per chain, then the
        end (nothing but the end for an underlying without options)."""
        req_id, symbol, con_id = int(f[1]), f[2], f[5]
        out = b""
        for c in self.market.chains.get(symbol, []):
            out += _encode(SEC_DEF_OPT_PARAMS, req_id, c.exchange, con_id, c.trading_class, c.multiplier,
                           len(c.expirations), *c.expirations, len(c.strikes), *c.strikes)  # fmt: skip
        conn.sendall(out + _encode(SEC_DEF_OPT_PARAMS_END, req_id))

    def _bars(self, conn: socket.socket, r: HistRequest) -> None:
        if not self.market.knows(r.symbol):
            return self._error(conn, r.req_id, 200, NO_SECDEF_TEXT)
        if r.what_to_show == "TRADES":
            bars = self.market.bars.get(r.symbol, [])
        elif (r.symbol, r.what_to_show) in self.market.quote_bars:
            bars = self.market.quote_bars[(r.symbol, r.what_to_show)]
        else:
            text = f"the fake TWS serves TRADES bars, and BID and ASK bars of options, not {r.what_to_show}"
            return self._error(conn, r.req_id, 321, text)
        end = parse_ib_time(r.end)
        if end is None:
            end = bars[-1].time + 60 if bars else 0
        start = end - parse_duration(r.duration)
        chosen = [b for b in bars if start <= b.time < end]
        if not chosen:
            text = NO_DATA_TEXT.format(symbol=r.symbol, exchange=r.exchange, what=r.what_to_show)
            return self._error(conn, r.req_id, 162, text)
        fields: list[Any] = [HISTORICAL_DATA, r.req_id, _utc_text(start), _utc_text(end), len(chosen)]
        for b in chosen:
            fields += [_bar_time(b.time, r.format_date), b.open, b.high, b.low, b.close, b.volume, b.wap, b.count]
        conn.sendall(_encode(*fields))

    def _ticks(self, conn: socket.socket, r: HistRequest) -> None:
        if not self.market.knows(r.symbol):
            return self._error(conn, r.req_id, 200, NO_SECDEF_TEXT)
        if r.what_to_show not in _TICK_TYPES:
            return self._error(conn, r.req_id, 321, f"unsupported whatToShow {r.what_to_show}")
        ticks = self.market.ticks.get((r.symbol, r.what_to_show), [])
        times = [t.time for t in ticks]
        start, end = parse_ib_time(r.start), parse_ib_time(r.end)
        cap = max(0, min(r.number_of_ticks, self.tick_cap))
        if start is not None:
            lo = bisect.bisect_left(times, start)
            hi = len(ticks) if end is None else bisect.bisect_right(times, end)
            stop = min(hi, lo + cap)
            if self.complete_last_second and stop > lo:
                stop = min(hi, bisect.bisect_right(times, times[stop - 1]))
            chosen = ticks[lo:stop]
        elif end is not None:
            hi = bisect.bisect_right(times, end)
            chosen = ticks[max(0, hi - cap) : hi]
        else:
            return self._error(conn, r.req_id, 321, "Either start time or end time must be specified.")
        conn.sendall(_encode(*_tick_fields(r.req_id, r.what_to_show, chosen)))


def _parse_request(f: list[str]) -> HistRequest:
    """The fields of a 20 reqHistoricalData or 96 reqHistoricalTicks (12 contract fields from index 2)."""
    symbol = f[3]
    if f[4] == "FUT":
        symbol = f"{f[3]}:{f[5]}"
    elif f[4] == "OPT":
        symbol = _option_name(f[3], f[13], f[5], f[7], f[6])
    contract = {
        "symbol": symbol,  # a future is its root and contract month, an option its OCC ticker
        "sec_type": f[4],
        "exchange": f[9],
        "primary_exchange": f[10],
        "currency": f[11],
    }
    if int(f[0]) == REQ_HISTORICAL_DATA:
        return HistRequest(
            kind="bars",
            req_id=int(f[1]),
            **contract,
            end=f[15],
            bar_size=f[16],
            duration=f[17],
            use_rth=f[18] == "1",
            what_to_show=f[19],
            format_date=int(f[20]),
        )
    return HistRequest(
        kind="ticks",
        req_id=int(f[1]),
        **contract,
        start=f[15],
        end=f[16],
        number_of_ticks=int(f[17]),
        what_to_show=f[18],
        use_rth=f[19] == "1",
    )


def _option_name(symbol: str, trading_class: str, expiry: str, right: str, strike: str) -> str:
    """The OCC ticker of an option contract's fields (the class's root, e.g. SPXW, or the symbol)."""
    day = datetime.strptime(expiry, "%Y%m%d").date() if expiry else datetime(1970, 1, 1).date()
    return occ_symbol(trading_class or symbol, day, right.startswith("C"), float(strike or 0))


def _contract_data(
    req_id: int,
    symbol: str,
    sec_type: str,
    last: str,
    *,
    exchange: str,
    local: str,
    trading_class: str,
    con_id: int,
    strike: float = 0.0,
    right: str = "",
    min_tick: float = 0.01,
    multiplier: str = "",
    long_name: str = "",
    primary: str = "",
    month: str = "",
    time_zone: str = "US/Eastern",
) -> bytes:
    """One contractData message in the v164+ layout, then contractDataEnd."""
    fields = [CONTRACT_DATA, req_id, symbol, sec_type, last, strike, right, exchange, "USD", local, trading_class,
              trading_class, con_id, min_tick, multiplier, "LMT,MKT", exchange, 1, 0, long_name, primary, month, "",
              "", "", time_zone, "", "", "", "", 0, 0, "", "", "", last, "", 1, 1, 1]  # fmt: skip
    return _encode(*fields) + _encode(CONTRACT_DATA_END, 1, req_id)


def add_option_chain(
    market: FakeMarket,
    quotes: pl.DataFrame,
    *,
    unknown_strikes: Sequence[float] = (),
    decoy_classes: Sequence[str] = (),
) -> FakeMarket:
    """Serve vendor quotes (contract, underlying, right, strike, minute, bid, ask) as TWS would: see the module
    docstring. A contract-minute with a null bid (ask) has no BID (ASK) bar."""
    for (underlying,), rows in quotes.group_by("underlying", maintain_order=True):
        expiry = f"{rows['minute'].min():%Y%m%d}"
        strikes = tuple(sorted({*rows["strike"].to_list(), *unknown_strikes}))
        for trading_class in (option_root(underlying), *decoy_classes):
            market.chains.setdefault(underlying, []).append(
                OptionChainParams("SMART", trading_class, "100", (expiry, "20991231"), strikes)
            )
        for (name,), own in rows.sort("minute").group_by("contract", maintain_order=True):
            first = own.row(0, named=True)
            market.options[name] = OptionListing(underlying, option_root(underlying), expiry, first["right"],
                                                 first["strike"], 50_000 + len(market.options))  # fmt: skip
            starts = _seconds(own["minute"])
            for side in ("bid", "ask"):
                market.quote_bars[(name, side.upper())] = [
                    Bar(t, q + 0.5, max(q, q + 0.5), min(q, q + 0.5), q, -1.0, -1.0, -1)
                    for t, q in zip(starts, own[side].to_list(), strict=True)
                    if q is not None
                ]
    return market


def _utc_text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%d %H:%M:%S")


def _bar_time(seconds: int, format_date: int) -> str:
    """formatDate=2: UTC epoch seconds; otherwise New York local time with the zone name, as TWS sends it."""
    if format_date == 2:
        return str(seconds)
    return datetime.fromtimestamp(seconds, _NEW_YORK).strftime("%Y%m%d %H:%M:%S America/New_York")


def _tick_fields(req_id: int, what: str, ticks: list[Any]) -> list[Any]:
    if what == "TRADES":
        fields: list[Any] = [HISTORICAL_TICKS_LAST, req_id, len(ticks)]
        for t in ticks:
            fields += [t.time, t.mask, t.price, t.size, t.exchange, t.conditions]
    elif what == "BID_ASK":
        fields = [HISTORICAL_TICKS_BID_ASK, req_id, len(ticks)]
        for t in ticks:
            fields += [t.time, t.mask, t.bid, t.ask, t.bid_size, t.ask_size]
    else:
        fields = [HISTORICAL_TICKS, req_id, len(ticks)]
        for t in ticks:
            fields += [t.time, 0, t.price, t.size]
    return [*fields, 1]  # done


@contextlib.contextmanager
def running_tws(market: FakeMarket | None = None, **kwargs: Any) -> Iterator[int]:
    """A FakeTws serving `market`, as a context manager yielding just its port."""
    with FakeTws(market, **kwargs) as tws:
        yield tws.port
