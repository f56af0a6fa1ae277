"""User-supplied CSV and Parquet files (ticks, quotes, minute bars) as a MarketSource.

People bring their own recordings, like seed 000's SPY ticks: one file of several days, or a file per day and
symbol, with their own column names and often naive local timestamps. This source maps them onto the
TRADE/QUOTE/BAR schemas and hands RAW frames to the warehouse, which validates and quarantines them like every
other source's. What never reaches a partition (rows on non-session days, rows without a usable timestamp in a
multi-day file, unknown symbols, unreadable files) is listed by `inspect_files`.

Configuration (the `file:` section of configs/market.yaml; `FileImportConfig.from_dict`). Quote a path that
starts with `{`, or YAML reads it as a mapping:

    file:
      trades: ticks/{symbol}.csv        # REQUIRED. Path or glob, relative to the base directory (absolute allowed)
      quotes: null                      # optional, same form; null = no quotes (empty frames)
      bars: null                        # optional minute bars, same form; ts = the bar's START
      format: auto                      # auto (by extension: .csv, .csv.gz, .parquet, .pq) | csv | parquet
      timezone: America/New_York        # IANA zone of NAIVE timestamps in the files (default UTC)
      timestamp: auto                   # auto | s | ms | us | ns (epoch units) | a strptime format
      delimiter: ","                    # CSV field separator (one character)
      extended_hours: false             # also import 04:00-09:30 and 16:00-20:00 New York rows
      columns:                          # contract column -> the file's column; omitted = the contract name
        trades: {ts: time, price: px, size: qty, symbol: ticker}
        quotes: {bid: bid_px, ask: ask_px}
        bars: {volume: v, vwap: null}   # null = the file has no such column

Keys:
- `trades`, `quotes`, `bars`: where the files are. Placeholders: `{symbol}` (the symbol as written, e.g. SPY)
  and `{date}` (the session date, YYYY-MM-DD; `{date:%Y%m%d}` for another order of %Y, %m and %d). Glob
  wildcards `*`, `?`, `[...]` and `**` are allowed; every matching file is read, in path order.
  With `{symbol}` a file is that symbol's: rows whose symbol column says otherwise still come through (the
  warehouse quarantines them as wrong_symbol), and without a symbol column the symbol comes from the path.
  Without `{symbol}` a file holds many symbols: it needs a symbol column and each symbol takes its own rows.
  With `{date}` a file is that session's: rows with an unparseable timestamp are part of it (quarantined as
  null_ts). Without `{date}` such rows belong to no session: they are left out and counted by `inspect_files`.
- `format`: `auto` decides by extension; `csv` or `parquet` force one reader for every file.
- `timezone` (default `UTC`): the zone of naive datetimes in the files (text or naive Parquet datetimes);
  `exchange` reads each symbol's files in its instrument's own zone (ES: America/Chicago, SPY: New York), which
  needs `{symbol}` in every path.
  Time-zone-aware values (Parquet datetimes with a zone, text with an offset or `Z`) are converted from their
  own zone, and epoch numbers are UTC by definition. A wall-clock time that does not exist (spring forward)
  becomes null; an ambiguous one (fall back) takes the earlier instant. Both happen only at night on Sundays.
- `timestamp` (default `auto`): how the `ts` column is read. `auto`: datetime columns as they are; numbers
  are epoch values whose unit follows from each value's size (below 1e11 seconds, 1e14 milliseconds, 1e17
  microseconds, else nanoseconds); text is decided per file from its first 1,000 non-empty values: epoch
  numbers when most of them are numbers, else ISO 8601 (`2024-01-02 09:30:00.123`, space or `T`, optional
  seconds and fraction, optional `Z` or offset), `dd.mm.yyyy hh:mm:ss.fff` (fraction and seconds optional) or
  a plain date (`2009-05-22`, `22.05.2009`: midnight in `timezone`), in the forms found there. A text column
  none of whose sampled values is readable is a FileSourceError naming the column and a value (set a format).
  `s|ms|us|ns`: epoch numbers in that unit. A string with `%` is a strptime format for polars (chrono), e.g.
  `"%m/%d/%Y %H:%M:%S%.f"`.
- `columns`: per kind (`trades`, `quotes`, `bars`) a mapping from contract column to the file's column.
  trades: ts, price, size, symbol; quotes: ts, bid, ask, bid_size, ask_size, symbol; bars: ts, open, high,
  low, close, volume, vwap, trade_count, symbol. Unmapped columns use the contract name. Trades and quotes may
  also map `vendor_id`, the vendor's trade id or sequence number (a column named `vendor_id` is taken as it):
  only a row repeating an earlier row's id is an exact re-send, quarantined as duplicate. Without it no row is
  a duplicate, however alike: repeated identical prints in one millisecond are legal. A column mapped to
  a name must exist in every file (FileSourceError naming file and column otherwise). Optional columns
  (symbol; trades.size; bars.vwap and bars.trade_count) may be absent: symbol then comes from the path,
  size becomes 0.0 (what an index prints; an equity with no size column is an error unless `size: null`
  says so, and then every trade is quarantined as zero_size), vwap and trade_count become null.
- `delimiter` (default `,`): the CSV separator. CSV files are read as text and cast, so a value that is not
  a number (`abc`, empty) becomes null and the warehouse quarantines its row with a reason.
- `extended_hours` (default false): the window taken from a file for a session is `fetch_window(d,
  extended_hours)`, the regular session or 04:00-20:00 New York.

Sessions: a row belongs to session d when its New York date is d (so a 19:00 New York print of d, which is
the next day in UTC, is d's). `fetch_day` takes the rows of the requested symbol in `fetch_window(d,
extended_hours)`; the rest of d's rows (pre- and after-hours when extended_hours is false, and rows outside
04:00-20:00 always) are not requested, as a vendor would not send them, and `inspect_files` counts them.
Rows are not sorted, deduplicated or checked here: bad values, re-sends and out-of-order rows reach the
warehouse in file order. Index symbols get no quotes (their levels come as trades with size 0.0).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import string
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from market.calendar import (
    FIRST_DAY,
    LAST_DAY,
    NYSE,
    SessionRule,
    extended_bounds,
    fetch_window,
    is_session,
    session_bounds,
    session_table,
)
from market.sources import (
    BAR_SCHEMA,
    QUOTE_SCHEMA,
    TRADE_SCHEMA,
    DayTape,
    MissingDataError,
    SourceError,
    empty_quotes,
)
from market.symbols import SymbolSpec, get_symbol, is_known

__all__ = [
    "FileImportConfig",
    "FileImportReport",
    "FileSource",
    "FileSourceError",
    "MatchedFile",
    "SessionRows",
    "inspect_files",
]

log = logging.getLogger(__name__)

KINDS = ("trades", "quotes", "bars")
SCHEMAS: dict[str, dict[str, pl.DataType]] = {"trades": TRADE_SCHEMA, "quotes": QUOTE_SCHEMA, "bars": BAR_SCHEMA}
# Columns a file may lack; see the module docstring for what replaces each.
OPTIONAL_COLUMNS: dict[str, frozenset[str]] = {
    "trades": frozenset({"symbol", "size"}),
    "quotes": frozenset({"symbol"}),
    "bars": frozenset({"symbol", "vwap", "trade_count"}),
}
# The vendor's trade id or sequence number, where a trades or quotes file has one: only a repeated id is a re-send.
ID_COLUMN = "vendor_id"
ID_KINDS = frozenset({"trades", "quotes"})
EXCHANGE_ZONE = "exchange"  # timezone setting: read naive stamps in each instrument's own zone
FORMATS = ("auto", "csv", "parquet")
EPOCH_UNITS: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
NEW_YORK = "America/New_York"
MISSING_SYMBOL = "<missing>"  # report key for rows of a multi-symbol file with an empty symbol
_MAX_NS = 9.0e18  # beyond this an epoch does not fit Datetime("ns") (year 2262)
# ISO 8601 forms tried by timestamp "auto" on text (%#z also reads "Z"), and how many values pick them per file.
_ISO_FORMATS = (
    *(f"%Y-%m-%d{sep}%H:%M{sec}{zone}" for sep in (" ", "T") for sec in (":%S%.f", "") for zone in ("", "%#z")),
    "%d.%m.%Y %H:%M:%S%.f",  # 22.05.2009 14:30:00.123, as European platforms export
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d",  # a plain date: midnight in the file's zone
    "%d.%m.%Y",
)
_SAMPLE_ROWS = 1000
_NUMBER = r"^[+-]?\d+(\.\d*)?$"
_DATE_CODES = {"%Y": ("[0-9]" * 4, r"\d{4}"), "%m": ("[0-9]" * 2, r"\d{2}"), "%d": ("[0-9]" * 2, r"\d{2}")}


class FileSourceError(SourceError):
    """A file cannot be imported as configured: unreadable, unknown format, or a mapped column is missing."""


# ----------------------------------------------------------------------------------------------------------
# Path templates


@dataclass(frozen=True)
class _Template:
    """A configured path with `{symbol}` / `{date[:fmt]}` placeholders: globbed to fetch, parsed back to report."""

    key: str
    text: str
    parts: tuple[tuple[str, str | None, str], ...]  # (literal, placeholder or None, date format)

    @classmethod
    def parse(cls, key: str, text: str) -> _Template:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"FileImportConfig.{key}: must be a non-empty path, got {text!r}")
        text = os.path.normpath(os.path.expanduser(text.strip()))
        parts = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"FileImportConfig.{key}: bad placeholder in {text!r}: {exc}") from None
        for literal, name, spec, conversion in parsed:
            if name is None:
                parts.append((literal, None, ""))
                continue
            if conversion or name not in ("symbol", "date") or (name == "symbol" and spec):
                raise ValueError(
                    f"FileImportConfig.{key}: unknown placeholder {{{name}}} in {text!r}; "
                    "use {symbol}, {date} or {date:%Y%m%d}"
                )
            fmt = spec or "%Y-%m-%d"
            if name == "date":
                rest = fmt
                for code in _DATE_CODES:
                    rest = rest.replace(code, "")
                if "%" in rest or not all(code in fmt for code in _DATE_CODES):
                    raise ValueError(
                        f"FileImportConfig.{key}: {{date:{fmt}}} must use each of %Y, %m and %d once and no other codes"
                    )
            parts.append((literal, name, fmt))
        return cls(key, text, tuple(parts))

    @property
    def has_symbol(self) -> bool:
        return any(name == "symbol" for _, name, _ in self.parts)

    @property
    def has_date(self) -> bool:
        return any(name == "date" for _, name, _ in self.parts)

    def pattern(self, symbol: str | None = None, day: date | None = None) -> str:
        """The glob for `symbol` and `day`; a placeholder left as None matches any value."""
        out = []
        for literal, name, fmt in self.parts:
            out.append(literal)
            if name == "symbol":
                out.append(glob.escape(symbol) if symbol is not None else "*")
            elif name == "date":
                if day is not None:
                    out.append(day.strftime(fmt))
                else:
                    text = fmt
                    for code, (wild, _) in _DATE_CODES.items():
                        text = text.replace(code, wild)
                    out.append(text)
        return "".join(out)

    def files(self, base_dir: Path, symbol: str | None = None, day: date | None = None) -> list[Path]:
        """Existing files matching the template, in path order."""
        pattern = self.pattern(symbol, day)
        if os.path.isabs(pattern):
            found = glob.glob(pattern, recursive=True)
        else:
            found = [os.path.join(base_dir, p) for p in glob.glob(pattern, root_dir=base_dir, recursive=True)]
        return sorted(Path(p) for p in found if os.path.isfile(p))

    def _regex(self) -> re.Pattern[str]:
        out, seen = [], set()
        for literal, name, fmt in self.parts:
            out.append(_glob_to_regex(literal))
            if name is None:
                continue
            if name in seen:
                out.append(f"(?P={name})")
                continue
            seen.add(name)
            if name == "symbol":
                out.append(r"(?P<symbol>[^/]+)")
            else:
                body = re.escape(fmt)
                for code, (_, rx) in _DATE_CODES.items():
                    body = body.replace(re.escape(code), rx)
                out.append(f"(?P<date>{body})")
        return re.compile("".join(out) + r"\Z")

    def values(self, path: Path, base_dir: Path) -> tuple[str | None, date | None]:
        """The symbol and date a matched file's path holds (None where the template has no such placeholder)."""
        target = path if os.path.isabs(self.text) else Path(os.path.relpath(path, base_dir))
        m = self._regex().match(target.as_posix())
        if m is None:
            raise FileSourceError(f"cannot read {{symbol}}/{{date}} from the path of {path} ({self.key}: {self.text})")
        groups = m.groupdict()
        day = None
        if self.has_date:
            fmt = next(f for _, name, f in self.parts if name == "date")
            try:
                day = datetime.strptime(groups["date"], fmt).date()
            except ValueError:
                raise FileSourceError(f"{path}: {groups['date']!r} is not a date in the form {fmt}") from None
        return groups.get("symbol"), day


def _glob_to_regex(text: str) -> str:
    """Regex for a literal template piece that may hold glob wildcards (`**`, `*`, `?`, `[...]`)."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if text.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in text[i + 1 :]:
            j = text.index("]", i + 1)
            body = text[i + 1 : j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


# ----------------------------------------------------------------------------------------------------------
# Configuration


def _check_columns(value: Any) -> Mapping[str, Mapping[str, str | None]]:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ValueError(f"FileImportConfig.columns: must be a mapping of {', '.join(KINDS)}, got {value!r}")
    out: dict[str, Mapping[str, str | None]] = {}
    for kind, mapping in value.items():
        if kind not in KINDS:
            raise ValueError(f"FileImportConfig.columns.{kind}: unknown kind; use {', '.join(KINDS)}")
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, Mapping):
            raise ValueError(f"FileImportConfig.columns.{kind}: must be a mapping, got {mapping!r}")
        for col, name in mapping.items():
            where = f"FileImportConfig.columns.{kind}.{col}"
            known = [*SCHEMAS[kind], *([ID_COLUMN] if kind in ID_KINDS else [])]
            if col not in known:
                raise ValueError(f"{where}: unknown column; {kind} has {', '.join(known)}")
            if name is None:
                if col not in OPTIONAL_COLUMNS[kind] and col != ID_COLUMN:
                    raise ValueError(f"{where}: cannot be null, every {kind} file needs it")
            elif not isinstance(name, str) or not name:
                raise ValueError(f"{where}: must be the file's column name (a non-empty string), got {name!r}")
        out[kind] = MappingProxyType(dict(mapping))
    return MappingProxyType(out)


@dataclass(frozen=True)
class FileImportConfig:
    """Where the user's files are and how to read them (every key is described in the module docstring)."""

    trades: str | None  # path/glob of trade (or index level) files; {symbol} and {date}; None = bars only
    quotes: str | None = None  # path/glob of quote files; None = no quotes
    bars: str | None = None  # path/glob of minute-bar files (ts = bar start); None = no bars
    format: str = "auto"  # auto (by extension) | csv | parquet
    timezone: str = "UTC"  # IANA zone of naive timestamps in the files
    timestamp: str = "auto"  # auto | s | ms | us | ns | a strptime format
    columns: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict, hash=False)
    delimiter: str = ","  # CSV separator
    extended_hours: bool = False  # take 04:00-20:00 New York instead of the regular session

    def __post_init__(self) -> None:
        if self.trades is None and self.bars is None:
            raise ValueError("FileImportConfig: set trades (tick files), bars (1-minute bar files) or both")
        for key in KINDS:
            value = getattr(self, key)
            if value is not None:
                _Template.parse(key, value)
        if self.format not in FORMATS:
            raise ValueError(f"FileImportConfig.format: must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if not isinstance(self.timezone, str) or not self.timezone:
            raise ValueError(f"FileImportConfig.timezone: must be an IANA zone name, got {self.timezone!r}")
        if self.timezone == EXCHANGE_ZONE:
            unnamed = [
                k for k in KINDS if getattr(self, k) is not None and not _Template.parse(k, getattr(self, k)).has_symbol
            ]
            if unnamed:
                raise ValueError(
                    f"FileImportConfig.timezone: exchange reads each file in its instrument's zone, so the "
                    f"{', '.join(unnamed)} path needs {{symbol}}"
                )
        else:
            try:
                ZoneInfo(self.timezone)
                pl.Series([datetime(2024, 1, 2)]).dt.replace_time_zone(self.timezone)
            except Exception:
                raise ValueError(
                    f"FileImportConfig.timezone: unknown time zone {self.timezone!r} (e.g. America/New_York, UTC, "
                    "exchange)"
                ) from None
        if not isinstance(self.timestamp, str) or not (
            self.timestamp == "auto" or self.timestamp in EPOCH_UNITS or "%" in self.timestamp
        ):
            raise ValueError(
                "FileImportConfig.timestamp: must be auto, one of s/ms/us/ns (epoch units) or a strptime format "
                f"with %-codes, got {self.timestamp!r}"
            )
        object.__setattr__(self, "columns", _check_columns(self.columns))
        if not isinstance(self.delimiter, str) or len(self.delimiter) != 1:
            raise ValueError(f"FileImportConfig.delimiter: must be one character, got {self.delimiter!r}")
        if not isinstance(self.extended_hours, bool):
            raise ValueError(f"FileImportConfig.extended_hours: must be true or false, got {self.extended_hours!r}")
        for kind in KINDS:
            template = self.template(kind)
            mapping = self.columns.get(kind, {})
            if template is not None and not template.has_symbol and "symbol" in mapping and mapping["symbol"] is None:
                raise ValueError(
                    f"FileImportConfig.columns.{kind}.symbol: null needs {{symbol}} in the {kind} path "
                    "(otherwise nothing says whose rows a file holds)"
                )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> FileImportConfig:
        """Build from the YAML `file:` section; unknown keys or bad values raise ValueError naming the key."""
        if not isinstance(d, Mapping):
            raise ValueError(f"FileImportConfig: the file section must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            raise ValueError(
                f"FileImportConfig: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if d.get("trades") is None and d.get("bars") is None:
            raise ValueError("FileImportConfig: set trades (tick files), bars (1-minute bar files) or both")
        return cls(**{"trades": None, **dict(d)})

    def template(self, kind: str) -> _Template | None:
        """The parsed path template of `kind`, or None when that kind is not configured."""
        text = getattr(self, kind)
        return None if text is None else _Template.parse(kind, text)


# ----------------------------------------------------------------------------------------------------------
# Reading one file


def _file_format(config: FileImportConfig, path: Path, kind: str) -> str:
    if config.format != "auto":
        return config.format
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise FileSourceError(
        f"{kind} file {path}: cannot tell its format from the extension (.csv, .csv.gz, .parquet); set format"
    )


def _fail(kind: str, path: Path, exc: Exception) -> FileSourceError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return FileSourceError(f"cannot read {kind} file {path}: {type(exc).__name__}: {detail}")


def _scan(config: FileImportConfig, path: Path, kind: str) -> tuple[pl.LazyFrame, pl.Schema]:
    """A lazy scan of one file and its columns; CSV columns are all text so bad values cannot stop the read."""
    fmt = _file_format(config, path, kind)
    try:
        if fmt == "csv":
            lf = pl.scan_csv(path, separator=config.delimiter, infer_schema=False, glob=False)
        else:
            lf = pl.scan_parquet(path, glob=False)
        return lf, lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _fail(kind, path, exc) from None


def _collect(lf: pl.LazyFrame, kind: str, path: Path) -> pl.DataFrame:
    try:
        return lf.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _fail(kind, path, exc) from None


def _number(name: str, dtype: pl.DataType, kind: str, path: Path) -> pl.Expr:
    """Float64 from a numeric or text column; text that is not a number becomes null."""
    col = pl.col(name)
    if dtype == pl.Utf8:
        return col.str.strip_chars().cast(pl.Float64, strict=False)
    if dtype.is_numeric() or dtype == pl.Null:
        return col.cast(pl.Float64, strict=False)
    raise FileSourceError(f"{kind} file {path}: column {name!r} must hold numbers, it holds {dtype}")


def _epoch_factor(magnitude: pl.Expr, unit: str) -> pl.Expr:
    """Nanoseconds per epoch unit; `auto` picks the unit per value from its size (see the module docstring)."""
    if unit != "auto":
        return pl.lit(EPOCH_UNITS[unit], dtype=pl.Int64)
    return (
        pl.when(magnitude < 1e11)
        .then(pl.lit(EPOCH_UNITS["s"], dtype=pl.Int64))
        .when(magnitude < 1e14)
        .then(pl.lit(EPOCH_UNITS["ms"], dtype=pl.Int64))
        .when(magnitude < 1e17)
        .then(pl.lit(EPOCH_UNITS["us"], dtype=pl.Int64))
        .otherwise(pl.lit(1, dtype=pl.Int64))
    )


def _epoch_from(col: pl.Expr, dtype: pl.DataType, unit: str) -> pl.Expr:
    """Naive UTC Datetime(ns) from epoch numbers in a numeric or text column; anything else becomes null.

    The whole part and the fraction are scaled apart, in integers, so that "1704292201.25" seconds or an Int64
    nanosecond epoch stay exact (one float product would be off by up to a few hundred nanoseconds)."""
    if dtype == pl.Utf8:
        text = col.str.strip_chars()
        parts = text.str.extract_groups(r"^([+-]?)(\d+)(?:\.(\d*))?$")
        whole = parts.struct.field("2").cast(pl.Int64, strict=False)
        magnitude = text.cast(pl.Float64, strict=False).abs()
        factor = _epoch_factor(magnitude, unit)
        nanos9 = parts.struct.field("3").fill_null("").str.pad_end(9, "0").str.slice(0, 9).cast(pl.Int64)
        ns_abs = whole * factor + (nanos9 * factor) // 1_000_000_000
        exact = pl.when(parts.struct.field("1") == "-").then(-ns_abs).otherwise(ns_abs)
        approx = (text.cast(pl.Float64, strict=False) * factor).round(0)  # other forms, e.g. 1.7e9
    else:
        value = col.cast(pl.Float64, strict=False)
        magnitude = value.abs()
        factor = _epoch_factor(magnitude, unit)
        if dtype.is_integer():
            exact = col.cast(pl.Int64, strict=False) * factor
        else:
            floor = value.floor()
            exact = floor.cast(pl.Int64, strict=False) * factor + ((value - floor) * factor).round(0).cast(pl.Int64)
        approx = value * factor
    fits = magnitude * factor.cast(pl.Float64) < _MAX_NS
    ns = pl.when(fits).then(pl.coalesce(exact, approx.cast(pl.Int64, strict=False)))
    return pl.from_epoch(ns, time_unit="ns")


class _Timestamps:
    """Builds the expression that turns a file's ts column into naive UTC Datetime(ns)."""

    def __init__(self, config: FileImportConfig, symbol: str | None = None) -> None:
        self.zone = config.timezone
        if self.zone == EXCHANGE_ZONE:  # the instrument's own wall clock (ES: Chicago, SPY: New York)
            self.zone = get_symbol(symbol).timezone if symbol is not None and is_known(symbol) else "UTC"
        self.mode = config.timestamp

    def naive_local(self, expr: pl.Expr) -> pl.Expr:
        """Naive wall-clock times in the configured zone -> naive UTC."""
        if self.zone == "UTC":
            return expr
        return (
            expr.dt.replace_time_zone(self.zone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
            .dt.replace_time_zone(None)
        )

    @staticmethod
    def aware(expr: pl.Expr) -> pl.Expr:
        return expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)

    def _parsed(self, text: pl.Expr, fmt: str, schema_of: pl.LazyFrame) -> pl.Expr:
        parsed = text.str.strptime(pl.Datetime("ns"), format=fmt, strict=False)
        dtype = schema_of.select(parsed.alias("x")).collect_schema()["x"]
        fixed = self.aware(parsed) if getattr(dtype, "time_zone", None) else self.naive_local(parsed)
        return fixed.cast(pl.Datetime("ns"))

    def expr(self, name: str, dtype: pl.DataType, lf: pl.LazyFrame, kind: str, path: Path) -> pl.Expr:
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if self.mode in EPOCH_UNITS:
                raise FileSourceError(f"{kind} file {path}: column {name!r} holds datetimes, not {self.mode} epochs")
            fixed = self.aware(col) if dtype.time_zone else self.naive_local(col)
            return fixed.cast(pl.Datetime("ns"))
        if dtype == pl.Null:
            return pl.lit(None, dtype=pl.Datetime("ns"))
        if "%" in self.mode:
            if not (dtype == pl.Utf8 or dtype.is_integer()):
                raise FileSourceError(f"{kind} file {path}: column {name!r} holds {dtype}, not text for {self.mode!r}")
            return self._parsed(col.cast(pl.Utf8).str.strip_chars(), self.mode, lf)
        if dtype.is_numeric():
            return _epoch_from(col, dtype, self.mode)
        if dtype != pl.Utf8:
            raise FileSourceError(f"{kind} file {path}: column {name!r} holds {dtype}, not timestamps")
        if self.mode in EPOCH_UNITS:
            return _epoch_from(col, dtype, self.mode)
        # auto on text: decide once per file from a sample, so a million rows are not parsed every possible way
        text = col.str.strip_chars()
        sample = _collect(lf.select(text).drop_nulls().head(_SAMPLE_ROWS), kind, path).to_series()
        if sample.len() == 0:
            return pl.lit(None, dtype=pl.Datetime("ns"))
        if 2 * sample.str.contains(_NUMBER).sum() > sample.len():
            return _epoch_from(col, dtype, "auto")
        found = [f for f in _ISO_FORMATS if sample.str.strptime(pl.Datetime("ns"), f, strict=False).is_not_null().any()]
        if not found:
            raise FileSourceError(
                f"{kind} file {path}: cannot read timestamps like {sample[0]!r} in column {name!r}; "
                "set timestamp to a strptime format or an epoch unit"
            )
        return pl.coalesce([self._parsed(text, fmt, lf) for fmt in found])


@dataclass(frozen=True)
class _FileFrame:
    """One file's rows as contract columns (lazy), with the file's own column names."""

    lazy: pl.LazyFrame
    columns: tuple[str, ...]
    size_missing: bool  # trades only: the file has no size column and none was mapped


def _read(config: FileImportConfig, kind: str, path: Path, path_symbol: str | None, stamps: _Timestamps) -> _FileFrame:
    """Scan `path` and map its columns onto SCHEMAS[kind] (types cast, nothing filtered)."""
    lf, schema = _scan(config, path, kind)
    overrides = config.columns.get(kind, {})
    have = list(schema.names())
    exprs: list[pl.Expr] = []
    size_missing = False
    for col, dtype in SCHEMAS[kind].items():
        explicit = col in overrides
        name = overrides[col] if explicit else col
        if name is not None and name not in have:
            if explicit or col not in OPTIONAL_COLUMNS[kind]:
                raise FileSourceError(
                    f"{kind} file {path} has no column {name!r} (for {col}; set columns.{kind}.{col}); "
                    f"its columns: {', '.join(have)}"
                )
            name = None
        if col == "symbol":
            if name is not None:
                exprs.append(pl.col(name).cast(pl.Utf8).str.strip_chars().alias(col))
            elif path_symbol is not None:
                exprs.append(pl.lit(path_symbol, dtype=pl.Utf8).alias(col))
            else:
                raise FileSourceError(
                    f"{kind} file {path} has no symbol column {overrides.get('symbol') or 'symbol'!r} and its "
                    f"path has no {{symbol}}: set columns.{kind}.symbol or put {{symbol}} in the {kind} path"
                )
        elif col == "ts":
            exprs.append(stamps.expr(name, schema[name], lf, kind, path).alias(col))
        elif name is None:
            size_missing = col == "size" and not explicit
            fill = 0.0 if col == "size" else None
            exprs.append(pl.lit(fill, dtype=dtype).alias(col))
        else:
            value = _number(name, schema[name], kind, path)
            if dtype == pl.Int64:
                value = value.cast(pl.Int64, strict=False)
            exprs.append(value.alias(col))
    if kind in ID_KINDS:
        name = overrides.get(ID_COLUMN, ID_COLUMN if ID_COLUMN in have else None)
        if name is not None and name not in have:
            raise FileSourceError(
                f"{kind} file {path} has no column {name!r} (for {ID_COLUMN}); its columns: {', '.join(have)}"
            )
        if name is not None:
            exprs.append(pl.col(name).cast(pl.Utf8).str.strip_chars().alias(ID_COLUMN))
    return _FileFrame(lf.select(exprs), tuple(have), size_missing)


def _in_window(start: Any, end: Any) -> pl.Expr:
    return (pl.col("ts") >= pl.lit(start)) & (pl.col("ts") < pl.lit(end))


def trades_found(trades: pl.DataFrame | None) -> bool:
    """True when some trade file held rows for the session."""
    return trades is not None and trades.height > 0


_MINUTE_NS = 60_000_000_000


def _check_minute_bars(lf: pl.LazyFrame, path: Path) -> None:
    """Refuse a bars file that is not 1-minute bars: hourly or daily bars would become a few minutes of a session.

    Judged on the whole file (one symbol's rows): the smallest step between its bar starts."""
    ts = _collect(lf.select(pl.col("ts").drop_nulls().unique().sort().cast(pl.Int64)), "bars", path).to_series()
    steps = ts.diff().drop_nulls()
    if steps.len() and steps.min() >= 60 * _MINUTE_NS:
        step = "daily" if steps.min() >= 24 * 60 * _MINUTE_NS else "hourly"
        raise FileSourceError(
            f"bars file {path} holds {step} bars; only 1-minute bars (ts = each minute's start) are supported: "
            "resample coarser data yourself, or import its ticks"
        )


# ----------------------------------------------------------------------------------------------------------
# The source


class FileSource:
    """Trades, quotes and minute bars from the user's CSV/Parquet files (see the module docstring)."""

    name = "file"

    def __init__(self, config: FileImportConfig, base_dir: Path | str) -> None:
        if not isinstance(config, FileImportConfig):
            raise TypeError(f"FileSource needs a FileImportConfig, got {type(config).__name__}")
        self.config = config
        self.base_dir = Path(base_dir)
        self._stamps: dict[str, _Timestamps] = {}
        self._warned: set[tuple[str, Path]] = set()

    def __repr__(self) -> str:
        return (
            f"FileSource(trades={self.config.trades!r}, quotes={self.config.quotes!r}, bars={self.config.bars!r}, "
            f"base_dir={str(self.base_dir)!r}, extended_hours={self.config.extended_hours})"
        )

    def report(self, days: Collection[date] | None = None) -> str:
        """What the files hold and what never reaches a partition (markdown), for the run's metadata."""
        return inspect_files(self.config, self.base_dir).to_markdown(days)

    def fetch_day(self, symbol: str, session_date: date) -> DayTape:
        """`symbol`'s rows of `session_date` from the configured files, raw, in file order.

        ValueError for an unknown symbol or a non-session date; MissingDataError when no trade file matches or
        none holds a row for the session; FileSourceError when a file cannot be read or lacks a column.
        """
        spec = get_symbol(symbol, session_date)
        start, end = fetch_window(session_date, self.config.extended_hours, spec.session_rule)
        trades = self._read_kind("trades", spec, session_date, start, end)
        bars = self._read_kind("bars", spec, session_date, start, end)
        if not trades_found(trades) and bars is not None and bars.height:
            # A bars-only day (a bar backfill, or no tick file for it): the stored ticks, if any, stay as they are;
            # the warehouse builds the session's bars from these when it holds no ticks.
            return DayTape(trades=None, quotes=None, bars=bars)
        if self.config.trades is None:
            raise MissingDataError(f"file source: no 1-minute bars of {spec.symbol} for {session_date}")
        if trades is None:
            template = self.config.template("trades")
            pattern = template.pattern(spec.symbol, session_date)
            if not template.files(self.base_dir):  # nothing matches on any day: a wrong path, not a missing day
                raise FileSourceError(
                    f"file source: no file matches trades {self.config.trades!r} under {self.base_dir} for any symbol "
                    "or date; check the path"
                )
            raise MissingDataError(
                f"file source: no trades file for {spec.symbol} on {session_date} (looked for {pattern!r} "
                f"under {self.base_dir})"
            )
        if trades.height == 0:
            raise MissingDataError(
                f"file source: the trades files hold no rows of {spec.symbol} for {session_date} "
                f"({'04:00-20:00' if self.config.extended_hours else 'regular session'}, New York)"
            )
        # No quotes or bars file (or none configured) is None, not empty: the warehouse keeps what is stored.
        quotes = empty_quotes() if spec.is_index else self._read_kind("quotes", spec, session_date, start, end)
        return DayTape(trades=trades, quotes=quotes, bars=bars)

    def _read_kind(self, kind: str, spec: SymbolSpec, day: date, start: Any, end: Any) -> pl.DataFrame | None:
        """The session's rows of `kind` from every matching file; None when none matches (or none is set)."""
        template = self.config.template(kind)
        if template is None:
            return None
        paths = template.files(self.base_dir, spec.symbol, day if template.has_date else None)
        if not paths:
            return None
        frames = []
        for path in paths:
            stamps = self._stamps.setdefault(spec.symbol, _Timestamps(self.config, spec.symbol))
            part = _read(self.config, kind, path, spec.symbol if template.has_symbol else None, stamps)
            if part.size_missing and not spec.is_index:
                raise FileSourceError(
                    f"trades file {path} has no column 'size' (set columns.trades.size; null only for index "
                    f"levels); its columns: {', '.join(part.columns)}"
                )
            lf = part.lazy
            if not template.has_symbol:
                lf = lf.filter(pl.col("symbol") == spec.symbol)
            if kind == "bars":
                _check_minute_bars(lf, path)
            df = _collect(lf.filter(_in_window(start, end) | pl.col("ts").is_null()), kind, path)
            if not template.has_date:
                undated = df["ts"].null_count()
                if undated:
                    df = df.filter(pl.col("ts").is_not_null())
                    if (kind, path) not in self._warned:
                        self._warned.add((kind, path))
                        log.warning(
                            "file source: %d %s rows of %s in %s have no parseable timestamp and belong to no "
                            "session; they are not imported (inspect_files lists them)",
                            undated,
                            kind,
                            spec.symbol,
                            path,
                        )
            frames.append(df)
        return pl.concat(frames, how="vertical")


# ----------------------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class MatchedFile:
    """One file a template matched, with the symbol and date its path names and its row count."""

    kind: str
    path: str
    symbol: str | None
    day: date | None
    rows: int


@dataclass(frozen=True)
class SessionRows:
    """Rows of one (kind, symbol, session) by where they fall in the day (New York)."""

    regular: int = 0  # inside the regular session
    extended: int = 0  # 04:00-20:00 but outside the regular session (pre-/after-hours)
    outside: int = 0  # before 04:00 or from 20:00: never imported
    null_ts: int = 0  # per-date files only: no parseable timestamp, imported and quarantined as null_ts

    def imported(self, extended_hours: bool) -> int:
        """Rows fetch_day hands to the warehouse (which may still quarantine some)."""
        return self.regular + self.null_ts + (self.extended if extended_hours else 0)


@dataclass(frozen=True)
class FileImportReport:
    """What the configured files hold and which rows can never reach a partition, as plain data."""

    extended_hours: bool
    files: tuple[MatchedFile, ...]
    sessions: Mapping[tuple[str, str, date], SessionRows]  # (kind, symbol, session) -> rows
    non_session: Mapping[tuple[str, str, date], int]  # (kind, symbol, New York date without a session) -> rows
    unparseable_ts: Mapping[tuple[str, str], int]  # (kind, file) -> rows with no usable timestamp, not imported
    misdated: Mapping[tuple[str, str], int]  # (kind, file): rows of a per-date file dated another day
    unknown_symbols: Mapping[str, int]  # symbol (MISSING_SYMBOL for none) -> rows, not a known symbol
    errors: Mapping[str, str]  # file -> why it cannot be imported

    def imported(self, kind: str, symbol: str, day: date) -> int:
        """Rows of (kind, symbol, day) that fetch_day returns."""
        rows = self.sessions.get((kind, symbol, day))
        return 0 if rows is None else rows.imported(self.extended_hours)

    @property
    def not_imported(self) -> dict[str, int]:
        """Row counts that never reach a partition, by cause."""
        window = sum(r.outside + (0 if self.extended_hours else r.extended) for r in self.sessions.values())
        return {
            "outside_window": window,
            "non_session_day": sum(self.non_session.values()),
            "unparseable_ts": sum(self.unparseable_ts.values()),
            "misdated": sum(self.misdated.values()),
            "unknown_symbol": sum(self.unknown_symbols.values()),
        }

    def to_markdown(self, days: Collection[date] | None = None) -> str:
        """A human summary for a run's metadata or a terminal; `days` limits the per-session table to a run's."""
        window = "04:00-20:00 New York" if self.extended_hours else "the regular session"
        lines = [
            "## File import",
            "",
            f"{len(self.files)} file(s) matched, {len(self.errors)} unreadable; importing {window}.",
            "",
        ]
        if self.sessions:
            lines += [
                "| kind | symbol | session | imported | regular | pre/after-hours | outside the window | no ts |",
                "|---|---|---|---:|---:|---:|---:|---:|",
            ]
            for (kind, sym, day), r in sorted(self.sessions.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
                if days is not None and day not in days:
                    continue
                lines.append(
                    f"| {kind} | {sym} | {day} | {r.imported(self.extended_hours)} | {r.regular} | {r.extended} "
                    f"| {r.outside} | {r.null_ts} |"
                )
            lines.append("")
        lines += ["### Not imported", ""]
        lines += [f"- {cause}: {n}" for cause, n in self.not_imported.items()]
        sections = [
            ("Rows on days without a session", self.non_session, ("kind", "symbol", "trading day")),
            ("Rows without a usable timestamp", self.unparseable_ts, ("kind", "file")),
            ("Rows of a per-date file dated another day", self.misdated, ("kind", "file")),
        ]
        for title, data, head in sections:
            if data:
                lines += ["", f"#### {title}", "", "| " + " | ".join((*head, "rows")) + " |"]
                lines.append("|" + "---|" * len(head) + "---:|")
                lines += [f"| {' | '.join(str(k) for k in key)} | {n} |" for key, n in sorted(data.items())]
        if self.unknown_symbols:
            lines += ["", "#### Unknown symbols", ""]
            lines += [f"- {sym}: {n} rows" for sym, n in sorted(self.unknown_symbols.items())]
        if self.errors:
            lines += ["", "#### Files that cannot be imported", ""]
            lines += [f"- {path}: {msg}" for path, msg in sorted(self.errors.items())]
        return "\n".join(lines) + "\n"


def _safe_is_session(d: date | None) -> bool:
    return d is not None and FIRST_DAY <= d <= LAST_DAY and is_session(d)


def _rule_of(symbol: str) -> SessionRule:
    return get_symbol(symbol).session_rule if is_known(symbol) else NYSE


def _bounds_frame(pairs: Sequence[tuple[str, date]]) -> pl.DataFrame:
    """Per (symbol, trading day): whether its exchange holds a session, and its regular and extended windows (naive
    UTC ns; only NYSE has extended hours, elsewhere they equal the session)."""
    rows = []
    for symbol, d in pairs:
        rule = _rule_of(symbol)
        if d is not None and FIRST_DAY <= d <= LAST_DAY and is_session(d, rule):
            (o, c), (eo, ec) = session_bounds(d, rule), extended_bounds(d, rule)
            rows.append((symbol, d, True, o, c, eo, ec))
        else:
            rows.append((symbol, d, False, None, None, None, None))
    ns = pl.Datetime("ns")
    schema = {"symbol": pl.Utf8, "day": pl.Date, "session": pl.Boolean, "open": ns, "close": ns, "eopen": ns,
              "eclose": ns}  # fmt: skip
    return pl.DataFrame(
        [(sym, d, ok, *(None if x is None else x.astype("datetime64[ns]").item() for x in rest))
         for sym, d, ok, *rest in rows],
        schema=schema,
        orient="row",
    )  # fmt: skip


def _trading_days(counts: pl.DataFrame) -> pl.DataFrame:
    """`counts` with each bucket's trading day: the New York date for NYSE instruments, and for the others the
    session holding the minute (a CME day opens at 17:00 CT the evening before); a minute in the daily break gets
    the session it follows, whose window it then lies outside."""
    parts = []
    for symbol in counts["symbol"].unique().to_list():
        part = counts.filter(pl.col("symbol") == symbol)
        rule = _rule_of(symbol)
        if rule == NYSE or part.height == 0:
            parts.append(part)
            continue
        table = session_table(rule)
        minute = part["minute"].cast(pl.Int64)
        ns = minute.fill_null(0).to_numpy()
        at = np.clip(np.searchsorted(table.close_ns, ns, side="right"), 0, len(table.days) - 1)
        at = np.where((table.open_ns[at] > ns) & (at > 0), at - 1, at)  # in a break: the session it follows
        day = pl.Series("day", table.days[at].astype("datetime64[D]")).cast(pl.Date)
        parts.append(part.with_columns(pl.when(minute.is_null()).then(None).otherwise(day).alias("day")))
    return pl.concat(parts) if parts else counts


def _classify(counts: pl.DataFrame, path_day: date | None, per_date: bool) -> pl.DataFrame:
    """Where each (symbol, trading day, minute) bucket of a file goes: one class per bucket."""
    counts = _trading_days(counts)
    pairs = [(s, d) for s, d in counts.select("symbol", "day").unique().rows() if d is not None]
    joined = counts.join(_bounds_frame(pairs), on=["symbol", "day"], how="left")
    known = pl.col("symbol").is_in([s for s in counts["symbol"].unique().to_list() if is_known(s)])
    minute = pl.col("minute")
    cls = (
        pl.when(~known)
        .then(pl.lit("unknown_symbol"))
        .when(pl.col("day").is_null())
        .then(pl.lit("null_ts" if per_date and _safe_is_session(path_day) else "unparseable_ts"))
        .when(pl.lit(per_date) & (pl.col("day") != pl.lit(path_day, dtype=pl.Date)))
        .then(pl.lit("misdated"))
        .when(~pl.col("session"))
        .then(pl.lit("non_session"))
        .when((minute >= pl.col("open")) & (minute < pl.col("close")))
        .then(pl.lit("regular"))
        .when((minute >= pl.col("eopen")) & (minute < pl.col("eclose")))
        .then(pl.lit("extended"))
        .otherwise(pl.lit("outside"))
    )
    day = pl.when(pl.col("day").is_null()).then(pl.lit(path_day, dtype=pl.Date)).otherwise(pl.col("day"))
    return (
        joined.with_columns(cls.alias("cls"), day.alias("day"))
        .group_by("cls", "symbol", "day")
        .agg(pl.col("n").sum())
        .sort("cls", "symbol", "day", nulls_last=True)
    )


def inspect_files(config: FileImportConfig, base_dir: Path | str) -> FileImportReport:
    """Read every configured file once and report rows per (kind, symbol, session) and every row that no
    fetch_day will return: non-session days, unparseable timestamps (multi-day files), rows of a per-date file
    dated another day, unknown symbols, and files that cannot be read (errors are reported, not raised)."""
    base = Path(base_dir)
    files: list[MatchedFile] = []
    sessions: dict[tuple[str, str, date], dict[str, int]] = {}
    non_session: dict[tuple[str, str, date], int] = {}
    unparseable: dict[tuple[str, str], int] = {}
    misdated: dict[tuple[str, str], int] = {}
    unknown: dict[str, int] = {}
    errors: dict[str, str] = {}
    for kind in KINDS:
        template = config.template(kind)
        if template is None:
            continue
        for path in template.files(base):
            try:
                path_symbol, path_day = template.values(path, base)
                part = _read(config, kind, path, path_symbol, _Timestamps(config, path_symbol))
                lf = part.lazy
                if template.has_symbol:  # rows of a symbol's file land in that symbol's partition
                    lf = lf.with_columns(pl.lit(path_symbol, dtype=pl.Utf8).alias("symbol"))
                local = pl.col("ts").dt.replace_time_zone("UTC").dt.convert_time_zone(NEW_YORK)
                counts = _collect(
                    lf.group_by(
                        pl.col("symbol").fill_null(MISSING_SYMBOL),
                        local.dt.date().alias("day"),
                        pl.col("ts").dt.truncate("1m").alias("minute"),
                    ).agg(pl.len().cast(pl.Int64).alias("n")),
                    kind,
                    path,
                )
            except FileSourceError as exc:
                errors[str(path)] = str(exc)
                continue
            files.append(MatchedFile(kind, str(path), path_symbol, path_day, int(counts["n"].sum())))
            for cls, sym, day, n in _classify(counts, path_day, template.has_date).iter_rows():
                if cls == "unknown_symbol":
                    unknown[sym] = unknown.get(sym, 0) + n
                elif cls == "unparseable_ts":
                    unparseable[(kind, str(path))] = unparseable.get((kind, str(path)), 0) + n
                elif cls == "misdated":
                    misdated[(kind, str(path))] = misdated.get((kind, str(path)), 0) + n
                elif cls == "non_session":
                    non_session[(kind, sym, day)] = non_session.get((kind, sym, day), 0) + n
                else:
                    bucket = sessions.setdefault((kind, sym, day), {})
                    bucket[cls] = bucket.get(cls, 0) + n
    return FileImportReport(
        extended_hours=config.extended_hours,
        files=tuple(files),
        sessions=MappingProxyType({k: SessionRows(**v) for k, v in sessions.items()}),
        non_session=MappingProxyType(non_session),
        unparseable_ts=MappingProxyType(unparseable),
        misdated=MappingProxyType(misdated),
        unknown_symbols=MappingProxyType(unknown),
        errors=MappingProxyType(errors),
    )
