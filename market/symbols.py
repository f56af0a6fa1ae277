"""Instruments: what each tradable symbol is (kind, tick, multiplier, calendar, costs), built in or declared in YAML.

The built-ins cover the families' markets: SPY and QQQ (ETFs), the SPX index, and the CME equity-index futures ES,
MES, NQ and MNQ. Anything else (AAPL, another future) is declared under `instruments:` in configs/market.yaml with
the same keys, no code change; `declared()` installs those declarations for a block of work and `get_symbol`
resolves a name against them, refusing an unknown one with the list of known instruments.

A futures root (ES) names the instrument; its contracts are written root + month code + year (ESU4 or ESU24:
September 2024) and resolve to the root's spec with their own symbol and expiry (`contract`). Their ticks are
stored under the contract symbol; a continuous series is derived from them (market/futures.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import date, time
from typing import Any

from market.calendar import SessionRule
from market.values import is_number

KINDS = ("equity", "etf", "index", "future", "option")
SPREAD_MODELS = ("ticks", "bps")
MONTH_CODES = "FGHJKMNQUVXZ"  # January .. December
_CONTRACT = re.compile(r"^(?P<root>[A-Z0-9]+?)(?P<month>[FGHJKMNQUVXZ])(?P<year>\d{1,2})$")


@dataclass(frozen=True)
class SymbolSpec:
    """One instrument: its market facts, its costs and the parameters the synthetic market scales it by."""

    symbol: str
    kind: str  # equity | etf | index | future | option
    tick: float = 0.01  # minimum price increment
    point_value: float = 1.0  # currency per 1.0 of price per share or contract (ES: 50)
    currency: str = "USD"
    calendar: str = "XNYS"  # exchange-calendars name: XNYS (NYSE), CMES (CME Globex)
    session_close: str | None = None  # local "HH:MM" that ends a session before the calendar's own close
    timezone: str = "America/New_York"  # the zone of session_close and of the exchange's wall clock
    commission: float = 0.005  # per share (equity, etf) or per contract (future, option), in `currency`
    spread_model: str = "ticks"  # spread assumed for a session without quotes: ticks | bps
    spread: float = 1.0  # that spread, in ticks or basis points of the price
    price_band_pct: float = 25.0  # a print further than this (percent) from the recent median price is implausible
    contract_months: str = ""  # futures: the listed months as codes, e.g. HMUZ
    expiry_rule: str = ""  # futures: third_friday (CME equity index)
    roll_days: int = 8  # futures: calendar days before expiry when the continuous series moves to the next contract
    expiry: date | None = None  # a futures contract: its last trading day
    root: str | None = None  # a futures contract: its root (ES for ESU4)
    underlying: str = ""  # the instrument whose price this one follows (MES follows ES); "" = its own
    # The synthetic market's parameters (ignored by live sources).
    start_price: float = 100.0  # price level on the reference session (2024-01-02); the daily walk starts there
    beta: float = 1.0  # loading on the shared market factor
    idio_vol: float = 0.0  # idiosyncratic volatility as a fraction of the market factor's
    density: float = 1.0  # trades and quotes per day relative to SPY's
    wide_spread_prob: float = 0.1  # chance that a quote or trade sees a spread wider than one tick
    level_interval_s: float = 1.0  # seconds between printed levels (indexes only)
    description: str = ""

    def __post_init__(self) -> None:
        where = f"instrument {self.symbol!r}"
        if not isinstance(self.symbol, str) or not re.fullmatch(r"[A-Za-z0-9._:-]+", self.symbol):
            raise ValueError(f"{where}: the symbol must be letters, digits or ._:-")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("tick", "point_value", "start_price", "density", "level_interval_s", "price_band_pct"):
            value = getattr(self, name)
            if not is_number(value) or not value > 0:
                raise ValueError(f"{where}: {name} must be a number > 0, got {value!r}")
        for name in ("commission", "spread", "idio_vol", "beta"):
            value = getattr(self, name)
            if not is_number(value) or value < 0:
                raise ValueError(f"{where}: {name} must be a number >= 0, got {value!r}")
        if self.spread_model not in SPREAD_MODELS:
            raise ValueError(f"{where}: spread_model must be one of {', '.join(SPREAD_MODELS)}")
        if not 0.0 <= self.wide_spread_prob < 1.0:
            raise ValueError(f"{where}: wide_spread_prob must be in [0, 1), got {self.wide_spread_prob}")
        if not isinstance(self.currency, str) or not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError(f"{where}: currency must be a three-letter code such as USD, got {self.currency!r}")
        if self.kind == "future":
            bad = set(self.contract_months) - set(MONTH_CODES)
            if self.expiry is None and (not self.contract_months or bad):
                raise ValueError(f"{where}: a future needs contract_months as month codes ({MONTH_CODES})")
            if self.expiry is None and self.expiry_rule != "third_friday":
                raise ValueError(f"{where}: expiry_rule must be third_friday, got {self.expiry_rule!r}")
            if not isinstance(self.roll_days, int) or not 0 <= self.roll_days <= 60:
                raise ValueError(f"{where}: roll_days must be an integer in [0, 60], got {self.roll_days!r}")
        self.session_rule  # noqa: B018 - validates calendar, session_close and timezone

    @property
    def is_index(self) -> bool:
        """Indexes print levels only: size 0.0 and no quotes."""
        return self.kind == "index"

    @property
    def session_rule(self) -> SessionRule:
        """The trading days and minutes of this instrument's sessions."""
        close = None
        if self.session_close is not None:
            try:
                close = time.fromisoformat(self.session_close)
            except (TypeError, ValueError):
                raise ValueError(
                    f"instrument {self.symbol!r}: session_close must be HH:MM, got {self.session_close!r}"
                ) from None
        return SessionRule(self.calendar, self.timezone, close)

    @property
    def fallback_spread(self) -> tuple[float, float]:
        """The spread the spread model assumes when a session has no quotes, as (a fixed price amount, basis points
        of the price): one of the two is 0."""
        return (self.spread * self.tick, 0.0) if self.spread_model == "ticks" else (0.0, self.spread)


_CME_EQUITY = {
    "kind": "future",
    "calendar": "CMES",
    "timezone": "America/Chicago",
    "session_close": "16:00",  # Globex equity index: 17:00 CT the evening before to 16:00 CT, then the daily break
    "contract_months": "HMUZ",
    "expiry_rule": "third_friday",
    "roll_days": 8,
    "tick": 0.25,
}
BUILTIN: dict[str, SymbolSpec] = {
    "SPY": SymbolSpec(
        "SPY",
        "etf",
        start_price=470.0,
        beta=1.0,
        idio_vol=0.05,
        density=1.0,
        wide_spread_prob=0.08,
        description="S&P 500 ETF: the agent's main instrument",
    ),
    "QQQ": SymbolSpec(
        "QQQ",
        "etf",
        start_price=400.0,
        beta=1.2,
        idio_vol=0.5,
        density=0.75,
        wide_spread_prob=0.12,
        description="Nasdaq-100 ETF: higher beta, its own idiosyncratic moves",
    ),
    "SPX": SymbolSpec(
        "SPX",
        "index",
        commission=0.0,
        spread=0.0,  # not traded: no quotes and no spread
        start_price=4700.0,
        beta=1.0,
        idio_vol=0.0,
        level_interval_s=1.0,
        description="S&P 500 cash index: levels once a second, no volume, no quotes",
    ),
    "ES": SymbolSpec("ES", **_CME_EQUITY, point_value=50.0, commission=2.25, start_price=4750.0, density=2.0,
                     description="E-mini S&P 500 futures: $50 a point"),
    "MES": SymbolSpec("MES", **_CME_EQUITY, point_value=5.0, commission=0.62, start_price=4750.0, underlying="ES",
                      description="Micro E-mini S&P 500 futures: $5 a point"),
    "NQ": SymbolSpec("NQ", **_CME_EQUITY, point_value=20.0, commission=2.25, start_price=16800.0, beta=1.2, density=2.0,
                     description="E-mini Nasdaq-100 futures: $20 a point"),
    "MNQ": SymbolSpec("MNQ", **_CME_EQUITY, point_value=2.0, commission=0.62, start_price=16800.0, beta=1.2,
                      underlying="NQ",
                      description="Micro E-mini Nasdaq-100 futures: $2 a point"),
}  # fmt: skip
DEFAULT_SYMBOLS = BUILTIN  # the name the rest of the code has always used
_declared: dict[str, SymbolSpec] = {}


def parse_instruments(raw: Any, where: str = "instruments") -> dict[str, SymbolSpec]:
    """User declarations (symbol -> keys) as specs; ValueError naming the key. A built-in may be redeclared."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a mapping of symbol -> settings, got {raw!r}")
    known = {f.name for f in fields(SymbolSpec)} - {"symbol", "expiry", "root"}
    aliases = {"tick_size": "tick", "multiplier": "point_value"}
    out: dict[str, SymbolSpec] = {}
    for symbol, settings in raw.items():
        if not isinstance(settings, Mapping):
            raise ValueError(f"{where}.{symbol}: must be a mapping of settings, got {settings!r}")
        values = {aliases.get(k, k): v for k, v in settings.items()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}.{symbol}: unknown keys {unknown}; known: {sorted(known | set(aliases))}")
        if "kind" not in values:
            raise ValueError(f"{where}.{symbol}: kind is required ({', '.join(KINDS)})")
        base = BUILTIN.get(str(symbol))
        try:
            out[str(symbol)] = replace(base, **values) if base else SymbolSpec(str(symbol), **values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}.{symbol}: {exc}") from None
    return out


def known_instruments() -> dict[str, SymbolSpec]:
    """The built-ins with the current declarations over them."""
    return {**BUILTIN, **_declared}


def declare(specs: Mapping[str, SymbolSpec]) -> None:
    """Replace the declared instruments with `specs` (the code location does this when it loads market.yaml)."""
    _declared.clear()
    _declared.update(specs)


@contextmanager
def declared(specs: Mapping[str, SymbolSpec]) -> Iterator[None]:
    """Make the user's declared instruments known to `get_symbol` for the block (the market resource does this)."""
    previous = dict(_declared)
    _declared.update(specs)
    try:
        yield
    finally:
        _declared.clear()
        _declared.update(previous)


def session_rules(symbols: Iterable[str] | None = None) -> tuple[SessionRule, ...]:
    """The distinct session rules of `symbols` (default: every known instrument), NYSE first."""
    specs = known_instruments().values() if symbols is None else [get_symbol(s) for s in symbols]
    return tuple(sorted({s.session_rule for s in specs}, key=lambda r: (r.calendar != "XNYS", str(r))))


def third_friday(year: int, month: int) -> date:
    """The third Friday of a month: the last trading day of a CME equity-index future."""
    first = date(year, month, 1)
    return date(year, month, 1 + (4 - first.weekday()) % 7 + 14)


def contract_expiry(root: SymbolSpec, month: int, year: int) -> date:
    """Last trading day of `root`'s contract for `month`/`year` under its expiry rule."""
    if root.expiry_rule == "third_friday":
        return third_friday(year, month)
    raise ValueError(f"{root.symbol}: no expiry rule {root.expiry_rule!r}")


def contract_symbol(root: str, month: int, year: int) -> str:
    """The contract's symbol with a two-digit year, e.g. ESU24."""
    return f"{root}{MONTH_CODES[month - 1]}{year % 100:02d}"


def contract(name: str, on: date | None = None) -> SymbolSpec | None:
    """The spec of futures contract `name` (ESU4, ESU24), or None when `name` is not one.

    A one-digit year is the first such year whose contract has not expired by `on` (default: the 2020s), so ESU3
    on a 2013 session is September 2013 and on a 2023 session September 2023."""
    m = _CONTRACT.match(name)
    if not m:
        return None
    root = known_instruments().get(m.group("root"))
    if root is None or root.kind != "future" or root.expiry is not None:
        return None
    month = MONTH_CODES.index(m.group("month")) + 1
    if m.group("month") not in root.contract_months:
        raise ValueError(f"{name}: {root.symbol} lists only the months {root.contract_months}")
    digits = m.group("year")
    if len(digits) == 2:
        year = 2000 + int(digits)
    else:
        ref = on or date(2020, 1, 1)
        year = ref.year - ref.year % 10 + int(digits)
        if contract_expiry(root, month, year) < ref:
            year += 10
    expiry = contract_expiry(root, month, year)
    return replace(root, symbol=name, expiry=expiry, root=root.symbol, description=f"{root.symbol} {expiry:%b %Y}")


def is_known(name: Any) -> bool:
    """True when `get_symbol(name)` resolves."""
    try:
        get_symbol(name)
    except ValueError:
        return False
    return True


def get_symbol(name: str, on: date | None = None) -> SymbolSpec:
    """The spec for `name` (a built-in, a declared instrument or a futures contract of one); ValueError listing
    the known instruments otherwise."""
    known = known_instruments()
    if isinstance(name, str) and name in known:
        return known[name]
    spec = contract(name, on) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(
            f"unknown symbol {name!r}; known: {', '.join(known)} (declare others under instruments: in "
            "configs/market.yaml; futures contracts are written root + month code + year, e.g. ESU24)"
        )
    return spec
