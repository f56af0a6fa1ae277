"""Polygon (massive) same-day option chains as a `ChainSource` (rows as market/chain_sources.py declares them).

Requests for one underlying and session:
1. The underlying's minute aggregates (`list_aggs(<ticker>, 1, "minute", d, d)`, I:SPX for SPX): the close of the
   first regular-session bar centres the strike window, as the embedded chain centres its own.
2. `list_options_contracts(underlying_ticker=<symbol>, expiration_date=d, as_of=d, limit=1000)`: the chain as it
   stood that day. Polygon answers a past expiration only with `as_of` (or `expired=true`, which would also list
   contracts added after that day). Kept: call and put tickers of the same-day class, `O:<root>YYMMDD[CP]<strike x
   1000, 8 digits>` with root SPXW for SPX, so the AM-settled monthly SPX class (which also expires on a third
   Friday) and adjusted deliverables (O:SPY1...) are left out.
3. For each contract of the window: `list_quotes(O:..., timestamp.gte/.lt = the regular session, sort=timestamp,
   order=asc, limit=page_limit)`, reduced while the pages stream in to the last bid_price / ask_price of each
   minute (an at-the-money 0DTE contract sends hundreds of thousands of quotes a day; one a minute is kept), and
   `list_aggs(O:..., 1, "minute", d, d)` for each minute's traded contracts `v` (no aggregate: volume 0.0).
A minute without a quote is a row with null bid and ask. Prices pass through as sent, a zero bid (no bid) included;
the warehouse quarantines what breaks a quote rule.

Cost: 2 + 2 x contracts list calls (63 for the default 15 strikes each side), each followed through every
`next_url` page. Retries, pagination, the garbled-page watch and the API key (POLYGON_API_KEY, never in a log,
error or repr) are PolygonSource's: this class is a PolygonSource that also serves chains.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

import polars as pl

from market.calendar import is_session, session_bounds
from market.chain_sources import (
    OptionsConfig,
    chain_grid,
    contract_minutes,
    first_session_close,
    last_per_minute,
    option_root,
    strike_window,
)
from market.polygon_source import MAX_PAGE_LIMIT, PolygonConfig, PolygonSource, _ms_to_ns
from market.sources import MissingDataError
from market.values import is_int, is_number

CONTRACTS_PAGE_LIMIT = 1000  # the options contracts endpoint's largest page
_RIGHTS = {"call": "C", "put": "P"}


def _latest_quotes(rows: Iterable[Any]) -> dict[int, tuple[Any, Any]]:
    return last_per_minute((q.sip_timestamp, q.bid_price, q.ask_price) for q in rows)


class PolygonChainSource(PolygonSource):
    """Same-day option chains from Polygon (see the module docstring); `strikes_each_side` bounds the window."""

    name = "polygon"

    def __init__(
        self,
        config: PolygonConfig,
        api_key: str | None,
        *,
        strikes_each_side: int = OptionsConfig.strikes_each_side,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(config, api_key, client=client, sleep=sleep)
        OptionsConfig(strikes_each_side=strikes_each_side)  # validates it
        self.strikes_each_side = strikes_each_side

    def __repr__(self) -> str:
        return f"PolygonChainSource(config={self.config!r}, strikes_each_side={self.strikes_each_side}, api_key=***)"

    def skipped(self, underlying: str, session_date: date) -> tuple[str, ...]:
        """None: every contract Polygon lists has its quotes endpoint."""
        return ()

    def fetch_chain(self, underlying: str, session_date: date) -> pl.DataFrame:
        """Raw per-minute quotes and volumes of `underlying`'s contracts expiring on `session_date`.

        ValueError off-session (before any request); MissingDataError when Polygon has no minute bars for the
        underlying or lists no same-day contract; PolygonSourceError when a request fails for good."""
        if not is_session(session_date):
            raise ValueError(f"polygon: {session_date} is not an NYSE session, so no option expires on it")
        first = self._first_price(underlying, session_date)
        listed = self._contracts(underlying, session_date)
        window = strike_window(listed["strike"].to_list(), first, self.strikes_each_side)
        chosen = listed.filter(pl.col("strike").is_in(window)).sort("strike", "right")
        lo, hi = (int(b.astype("int64")) for b in session_bounds(session_date))
        minutes = [self._contract_minutes(c, underlying, session_date, lo, hi) for c in chosen["contract"]]
        return chain_grid(underlying, session_date, chosen, pl.concat(minutes), volume_known=True)

    def _first_price(self, underlying: str, session_date: date) -> float:
        ticker = self.config.ticker(underlying)
        aggs = self._aggs(ticker, underlying, session_date, "minute")
        first = first_session_close([_ms_to_ns(a.timestamp) for a in aggs], [a.close for a in aggs], session_date)
        if first is None:
            raise MissingDataError(
                f"polygon has no regular-session minute bars for {underlying} (ticker {ticker}) on {session_date}: "
                "nothing to centre its option chain's strikes on"
            )
        return first

    def _contracts(self, underlying: str, session_date: date) -> pl.DataFrame:
        """The same-day class's calls and puts expiring on the session, as (contract, right, strike)."""
        root = option_root(underlying)
        pattern = re.compile(rf"^O:{re.escape(root)}\d{{6}}[CP]\d{{8}}$")
        rows = self._list(
            "list_options_contracts",
            underlying,
            underlying,
            session_date,
            expiration_date=session_date,
            as_of=session_date,
            limit=CONTRACTS_PAGE_LIMIT,
        )
        kept = [
            (c.ticker, _RIGHTS[c.contract_type], float(c.strike_price))
            for c in rows
            if isinstance(c.ticker, str) and pattern.match(c.ticker) and c.contract_type in _RIGHTS
            and c.expiration_date == session_date.isoformat() and is_number(c.strike_price)
        ]  # fmt: skip
        if not kept:
            raise MissingDataError(
                f"polygon lists no {root} option of {underlying} expiring on {session_date} (as of that day, "
                f"{len(rows)} contracts listed in all): no same-day chain"
            )
        return pl.DataFrame(kept, schema={"contract": pl.Utf8, "right": pl.Utf8, "strike": pl.Float64}, orient="row")

    def _contract_minutes(self, ticker: str, underlying: str, session_date: date, lo: int, hi: int) -> pl.DataFrame:
        quotes = self._list(
            "list_quotes",
            ticker,
            underlying,
            session_date,
            collect=_latest_quotes,
            timestamp_gte=lo,
            timestamp_lt=hi,
            limit=min(self.config.page_limit, MAX_PAGE_LIMIT),
            sort="timestamp",
            order="asc",
        )
        aggs = self._aggs(ticker, underlying, session_date, "minute")
        volume = {_ms_to_ns(a.timestamp): a.volume for a in aggs if is_int(a.timestamp)}
        return contract_minutes(ticker, quotes, volume)
