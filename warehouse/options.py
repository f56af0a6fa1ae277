"""Same-day option chains into the warehouse, one session at a time: the embedded chain priced from the stored
underlying bars (`build_chain`), or a vendor's raw quotes priced against the same bars (`build_vendor_chain`,
fetched by `fetch_vendor_chain`). Either way the quote rules are applied in one place (`store_chain`): sound rows
replace the session's partition of core.options_chain_1m and broken ones go to raw.quarantine with their reason,
in one transaction.

Vendor quotes (market/chain_sources.py, CHAIN_SCHEMA) are priced as the embedded chain is: spot = the underlying's
stored bar close at the quote's minute (a bar's chain is quoted at its close); minutes_to_expiry = calendar minutes
from that close to the session's close (market.calendar.session_bounds); mid = (bid + ask) / 2; iv = the volatility
that reprices the mid (`market.options.implied_vol`; NaN where none does, which the IV rule quarantines as
iv_out_of_bounds); greeks at that iv. A minute without a bid or an ask stays in the table as an unquoted row (NULL
mid, iv and greeks, no quote rule to break), which OptionDays reads as NaN = not quoted. On the session's last bar,
whose close is the expiry, no volatility prices a quote: its iv is NULL, not a broken row. Refused before pricing
and quarantined with their reason: `malformed` (no contract, minute, C/P right or positive strike), `duplicate`
(a (contract, minute) the vendor sent twice: the first is kept) and `no_underlying_bar` (no stored bar of the
underlying that minute; the bars cover every session minute, so the quote lies outside the session).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl

from market.calendar import is_session, session_bounds
from market.chain_sources import CHAIN_SCHEMA, ChainSource
from market.option_chain import STRIKE_STEP, ChainConfig, chain_day, chain_violations, minutes_to_close
from market.options import bs_greeks, implied_vol, years_to
from market.sources import MissingDataError
from warehouse.db import query_polars, utc_now
from warehouse.partitions import PartitionWrite, replace_partitions

TABLE = "options_chain_1m"
GREEKS = ("delta", "gamma", "theta", "vega")
_KEYS = ["contract", "minute"]


@dataclass(frozen=True)
class ChainStats:
    """What one session's build wrote."""

    session_date: date
    underlyings: tuple[str, ...]
    rows: int
    contracts: int
    quarantined: int
    reasons: dict[str, int]
    unquoted: int = 0  # stored contract-minutes without a bid or an ask (vendor chains)
    skipped: tuple[str, ...] = ()  # contracts the vendor listed in the window but could not serve
    gaps: dict[str, str] = field(default_factory=dict)  # underlying -> why the vendor had no chain (rows kept)


def _close_ns(session_date: date) -> int:
    return int(session_bounds(session_date)[1].astype("datetime64[ns]").astype(np.int64))


def _session_bars(con: duckdb.DuckDBPyConnection, session_date: date, names: Sequence[str]) -> pl.DataFrame:
    """The session's bars (symbol, minute, close) of `names`; ValueError naming the first without any."""
    bars = query_polars(
        con,
        "SELECT symbol, minute, close FROM core.bars_1m WHERE session_date = ? AND symbol IN "
        f"({', '.join('?' * len(names))}) ORDER BY symbol, minute",
        [session_date, *names],
    )
    held = set(bars["symbol"].to_list())
    for name in names:
        if name not in held:
            raise ValueError(f"{name} has no bars on {session_date}: materialize bars_1m before its option chain")
    return bars


def build_chain(
    con: duckdb.DuckDBPyConnection,
    session_date: date,
    underlyings: Sequence[str],
    cfg: ChainConfig = ChainConfig(),  # noqa: B008 - frozen, validated defaults
    source: str = "embedded",
) -> ChainStats:
    """Price `session_date`'s chains of the `underlyings` with option chains (SPY, QQQ, SPX) from core.bars_1m and
    replace the partition; an NYSE holiday (a CME-only partition) writes nothing. ValueError when an underlying has
    no bars that session."""
    names = [s for s in dict.fromkeys(underlyings) if s in STRIKE_STEP]
    if not names or not is_session(session_date):
        return ChainStats(session_date, (), 0, 0, 0, {})
    bars = _session_bars(con, session_date, names)
    close_ns = _close_ns(session_date)
    chains = []
    for name in names:
        own = bars.filter(pl.col("symbol") == name)
        minute = own["minute"].cast(pl.Datetime("ns")).to_numpy()
        chains.append(chain_day(name, session_date, minute, own["close"].to_numpy(), close_ns, cfg))
    return store_chain(con, session_date, names, pl.concat(chains), source, cfg.rate)


def store_chain(
    con: duckdb.DuckDBPyConnection,
    session_date: date,
    names: Sequence[str],
    chain: pl.DataFrame,
    source: str,
    rate: float,
    refused: pl.DataFrame | None = None,
) -> ChainStats:
    """The one write path of every chain: the quote rules (`chain_violations`) over the quoted rows, rows breaking
    one and `refused` rows (with their reason) to raw.quarantine, the rest to core.options_chain_1m, replacing the
    session's partition of `names` in both tables in one transaction."""
    quoted = chain.filter(pl.col("bid").is_not_null() & pl.col("ask").is_not_null())
    broken = chain_violations(quoted, rate)
    clean = chain.join(broken.select(_KEYS).unique(), on=_KEYS, how="anti")
    bad = broken if refused is None else pl.concat([broken, refused.select(broken.columns)], how="vertical_relaxed")
    quarantine = bad.select(
        pl.lit(source).alias("source"),
        pl.lit(TABLE).alias("table_name"),
        pl.col("session_date"),
        pl.col("underlying").alias("symbol"),  # the contract is in the payload
        pl.col("minute").cast(pl.Datetime("us")).alias("ts"),
        pl.col("reason"),
        pl.struct(pl.exclude("reason")).struct.json_encode().alias("payload"),
        pl.lit(utc_now(), dtype=pl.Datetime("us")).alias("quarantined_at"),
    )
    names = list(names)
    writes = [
        PartitionWrite(f"core.{TABLE}", frame=clean, extra_where={"underlying": names}),
        PartitionWrite("raw.quarantine", frame=quarantine, extra_where={"table_name": [TABLE], "symbol": names}),
    ]
    counts = replace_partitions(con, session_date, writes)
    reasons = dict(bad.group_by("reason").len().iter_rows()) if bad.height else {}
    unquoted = clean.filter(pl.col("bid").is_null() | pl.col("ask").is_null()).height
    return ChainStats(
        session_date, tuple(names), counts.get(f"core.{TABLE}", 0), int(chain["contract"].n_unique()),
        int(bad.height), reasons, unquoted,
    )  # fmt: skip


def price_vendor_quotes(
    raw: pl.DataFrame, bars: pl.DataFrame, session_date: date, rate: float
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(priced rows in core.options_chain_1m's columns plus volume, refused rows with their reason) from a session's
    raw vendor quotes and the underlyings' bars (symbol, minute, close); see the module docstring."""
    ok = (
        pl.col("contract").is_not_null() & pl.col("minute").is_not_null() & pl.col("right").is_in(["C", "P"])
        & pl.col("strike").is_finite() & (pl.col("strike") > 0)
    ).fill_null(False)  # fmt: skip
    spot = bars.select(
        pl.col("symbol").alias("underlying"), pl.col("minute").cast(pl.Datetime("ns")), pl.col("close").alias("spot")
    )
    rows = (
        raw.select(pl.col(c).cast(t) for c, t in CHAIN_SCHEMA.items())
        .with_columns(pl.col("bid", "ask", "volume").fill_nan(None))  # a NaN quote is no quote
        .with_columns(
            pl.when(~ok).then(pl.lit("malformed"))
            .when(pl.int_range(pl.len()).over(_KEYS) > 0).then(pl.lit("duplicate"))
            .alias("reason"),
            pl.lit(session_date).alias("session_date"),
        )
        .join(spot, on=["underlying", "minute"], how="left")
        .with_columns(pl.col("reason").fill_null(pl.when(pl.col("spot").is_null()).then(pl.lit("no_underlying_bar"))))
    )  # fmt: skip
    priced = _priced(rows.filter(pl.col("reason").is_null()).drop("reason"), session_date, rate)
    refused = rows.filter(pl.col("reason").is_not_null()).with_columns(
        pl.lit(None, dtype=pl.Float64).alias(c) for c in ("minutes_to_expiry", "mid", "iv", *GREEKS)
    )
    return priced, refused.select(*priced.columns, "reason")


def _priced(rows: pl.DataFrame, session_date: date, rate: float) -> pl.DataFrame:
    """Minutes to expiry, mid, iv and greeks of quotes with their spot (unquoted rows: NULL mid, iv, greeks)."""
    minute_ns = rows["minute"].cast(pl.Int64).to_numpy()
    to_close = minutes_to_close(minute_ns, _close_ns(session_date))  # quoted at the bar's close
    bid, ask = (rows[c].cast(pl.Float64).to_numpy() for c in ("bid", "ask"))
    quoted = np.isfinite(bid) & np.isfinite(ask)
    call, spot, strike = rows["right"].to_numpy() == "C", rows["spot"].to_numpy(), rows["strike"].to_numpy()
    t = years_to(to_close)
    mid = np.where(quoted, (bid + ask) / 2, np.nan)
    iv = implied_vol(mid, call, spot, strike, t, rate)  # NaN: unquoted, expired, or no volatility reprices the mid
    greeks = bs_greeks(call, spot, strike, t, rate, iv)
    priceable = pl.Series(quoted & (to_close > 0))
    return rows.with_columns(
        pl.Series("minutes_to_expiry", to_close),
        pl.Series("mid", mid, nan_to_null=True),
        pl.when(priceable).then(pl.Series(iv)).otherwise(None).alias("iv"),  # NaN only where a quote found none
        *(pl.Series(name, greeks[name], nan_to_null=True) for name in GREEKS),
    ).select(
        "contract", "underlying", "session_date", "minute", "right", "strike", "minutes_to_expiry", "spot", "bid",
        "ask", "mid", "iv", *GREEKS, "volume",
    )  # fmt: skip


def build_vendor_chain(
    con: duckdb.DuckDBPyConnection,
    session_date: date,
    raw: pl.DataFrame,
    underlyings: Sequence[str],
    source: str,
    rate: float = ChainConfig.rate,
) -> ChainStats:
    """Price a session's raw vendor quotes of `underlyings` (CHAIN_SCHEMA rows) against their stored bars and
    replace their partition through `store_chain`. ValueError when a row names another underlying, or an
    underlying has no bars that session; a non-session writes nothing."""
    names = list(dict.fromkeys(underlyings))
    if not names or not is_session(session_date):
        return ChainStats(session_date, (), 0, 0, 0, {})
    return _store_vendor_quotes(con, session_date, raw, names, _session_bars(con, session_date, names), source, rate)


def _store_vendor_quotes(
    con: duckdb.DuckDBPyConnection, session_date: date, raw: pl.DataFrame, names: list[str], bars: pl.DataFrame,
    source: str, rate: float,
) -> ChainStats:  # fmt: skip
    """`build_vendor_chain` once the underlyings' bars are read."""
    foreign = raw.filter(pl.col("underlying").is_null() | ~pl.col("underlying").is_in(names))
    if foreign.height:
        raise ValueError(
            f"{foreign.height} chain rows of {session_date} name an underlying outside {names}, e.g. "
            f"{foreign['underlying'][0]!r}: a chain source must return the underlying it was asked for"
        )
    priced, refused = price_vendor_quotes(raw, bars, session_date, rate)
    return store_chain(con, session_date, names, priced, source, rate, refused)


def fetch_vendor_chain(
    con: duckdb.DuckDBPyConnection,
    source: ChainSource,
    session_date: date,
    underlyings: Sequence[str],
    rate: float = ChainConfig.rate,
) -> ChainStats:
    """Fetch the session's chain of each underlying with option chains (SPY, QQQ, SPX, as the embedded chain) from
    `source` and store them with `build_vendor_chain`. An underlying the vendor has no chain for (MissingDataError)
    is a gap: its stored rows are kept, and the reason is in the stats. Bars are checked before any request."""
    names = [s for s in dict.fromkeys(underlyings) if s in STRIKE_STEP]
    if not names or not is_session(session_date):
        return ChainStats(session_date, (), 0, 0, 0, {})
    bars = _session_bars(con, session_date, names)  # before any request: a chain needs its underlying's bars
    frames, gaps, skipped = [], {}, []
    for name in names:
        try:
            frames.append(source.fetch_chain(name, session_date))
        except MissingDataError as exc:
            gaps[name] = str(exc)
            continue
        skipped.extend(source.skipped(name, session_date))
    fetched = [n for n in names if n not in gaps]
    if not fetched:
        return ChainStats(session_date, (), 0, 0, 0, {}, skipped=tuple(skipped), gaps=gaps)
    raw = pl.concat(frames)
    own = bars.filter(pl.col("symbol").is_in(fetched))
    stats = _store_vendor_quotes(con, session_date, raw, fetched, own, source.name, rate)
    return replace(stats, skipped=tuple(skipped), gaps=gaps)


def load_chain_frame(
    con: duckdb.DuckDBPyConnection, underlyings: Sequence[str], start: date, end: date
) -> pl.DataFrame:
    """The stored chains of `underlyings` for sessions in [start, end], sorted by underlying, session, minute,
    right and strike; ValueError when an underlying has no chain stored in the range.

    Read one underlying and calendar month at a time: a year of chains is tens of millions of rows, and one query
    held DuckDB's sorted result, its numpy copy and the frame at once."""
    names = list(dict.fromkeys(underlyings))
    if not names:
        raise ValueError("load_chain_frame needs at least one underlying")
    pieces = [_chain_rows(con, name, lo, hi) for name in sorted(names) for lo, hi in _months(start, end)]
    frame = pl.concat(pieces) if pieces else None
    missing = names if frame is None else sorted(set(names) - set(frame["underlying"].unique().to_list()))
    if missing:
        raise ValueError(f"no option chain stored for {missing} between {start} and {end}: materialize "
                         "options_chain_1m for these sessions")  # fmt: skip
    return frame


def _months(start: date, end: date) -> list[tuple[date, date]]:
    """[start, end] cut at calendar months: (first, last) day of each piece."""
    out, lo = [], start
    while lo <= end:
        following = date(lo.year + lo.month // 12, lo.month % 12 + 1, 1)
        out.append((lo, min(end, following - timedelta(1))))
        lo = following
    return out


def _chain_rows(con: duckdb.DuckDBPyConnection, underlying: str, start: date, end: date) -> pl.DataFrame:
    """One underlying's stored chain rows for sessions in [start, end], in the order `load_chain_frame` promises.
    The right travels as a boolean and becomes text in polars: a Python string object per row made the load 2.7x
    slower and its peak memory higher."""
    rows = query_polars(
        con,
        f"""SELECT c.session_date, c.minute, (c."right" = 'C') AS is_call, c.strike, c.minutes_to_expiry,
                   c.bid, c.ask, c.iv, c.delta, c.gamma, c.theta, c.vega, c.volume
            FROM core.{TABLE} AS c WHERE c.underlying = ? AND c.session_date BETWEEN ? AND ?
            ORDER BY c.session_date, c.minute, c."right", c.strike""",
        [underlying, start, end],
    )
    right = pl.when(pl.col("is_call")).then(pl.lit("C")).otherwise(pl.lit("P")).alias("right")
    return rows.select(
        pl.lit(underlying, dtype=pl.Utf8).alias("underlying"),
        "session_date",
        "minute",
        right,
        pl.all().exclude("session_date", "minute", "is_call"),
    )
