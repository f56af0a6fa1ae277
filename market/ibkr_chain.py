"""Interactive Brokers same-day option chains (TWS / IB Gateway through ib_async) as a `ChainSource`.

Rows as market/chain_sources.py declares them. Requests for one underlying and session, on IbkrSource's read-only
connection with its pacing limiter, timeouts and retries:
1. The underlying's first regular-session minute: one 1-minute TRADES bar (paced) whose close centres the strike
   window (SPX: the index level; SPY, QQQ: the ETF's trades).
2. `qualifyContracts(underlying)` for its conId, then `reqSecDefOptParams(symbol, "", secType, conId)`, with the
   underlying as `contracts:` configures it (SPY, QQQ: STK on SMART; SPX: IND on CBOE). IB answers one chain per
   exchange and trading class; the one kept has tradingClass SPXW for SPX (the symbol itself for SPY and QQQ) and the
   session among its expirations, exchange SMART preferred. Its strikes are the union over all of the class's
   expirations, so a strike of the window may not be listed for the session.
3. `Option(symbol, YYYYMMDD, strike, right, exchange, multiplier, currency, tradingClass=...)` for the window's
   strikes, calls and puts, and `qualifyContracts`: since ib_async 2.0.1 a contract IB does not know (or finds
   ambiguous) comes back None. It is skipped with a warning and reported by `skipped()`; the chain goes on.
4. For each known contract `reqHistoricalData(whatToShow="BID")` and `whatToShow="ASK"`: 1-minute bars over the
   regular session (useRTH=1, formatDate=2: bar starts in UTC). A BID bar's close is the last bid of its minute and
   an ASK bar's the last ask: the quote standing at the bar's close, where the chain is priced. BID_ASK bars would
   not do: IB documents their open and close as the minute's TIME-AVERAGED bid and ask, and a BID_ASK request
   counts twice against the pacing limits, the same two units as BID plus ASK. A minute without a bar leaves that
   side null; IB's -1 (none) is null; a side IB has no history for (error 162) is null all day. Volume is not
   fetched (one more TRADES request per contract): null.

Cost: 1 + 2 x contracts paced requests (125 for the default 15 strikes each side); at IB's 60 requests in 10
minutes that is about 21 minutes per underlying and session. IB keeps no history of expired options, so a session's
chain can be fetched on that day only (after the close, before IB drops the day's expired contracts): an earlier
session has no chain expiring on it, a MissingDataError that the warehouse records as a gap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from market.calendar import session_bounds, session_index
from market.chain_sources import (
    OptionsConfig,
    chain_grid,
    contract_minutes,
    first_session_close,
    option_root,
    strike_window,
)
from market.ibkr_source import (
    ContractSpec,
    IbkrConfig,
    IbkrMissingDataError,
    IbkrSource,
    IbkrSourceError,
    PacingLimiter,
    _nullable,
)
from market.option_chain import occ_symbol
from market.symbols import get_symbol

logger = logging.getLogger(__name__)
QUOTE_SIDES = ("BID", "ASK")  # whatToShow per side: each bar's close is the side's last quote of the minute


class IbkrChainSource(IbkrSource):
    """Same-day option chains from IB (see the module docstring); `strikes_each_side` bounds the window."""

    name = "ibkr"

    def __init__(
        self,
        config: IbkrConfig | None = None,
        *,
        strikes_each_side: int = OptionsConfig.strikes_each_side,
        ib: Any = None,
        limiter: PacingLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(config, ib=ib, limiter=limiter, sleep=sleep)
        OptionsConfig(strikes_each_side=strikes_each_side)  # validates it
        self.strikes_each_side = strikes_each_side
        self.unknown: dict[tuple[str, date], tuple[str, ...]] = {}  # contracts qualified to None, per fetch

    def skipped(self, underlying: str, session_date: date) -> tuple[str, ...]:
        """The window's contracts IB did not know (qualified to None) at the last fetch of that chain."""
        return self.unknown.get((underlying, session_date), ())

    def fetch_chain(self, underlying: str, session_date: date) -> pl.DataFrame:
        """Raw per-minute bids and asks of `underlying`'s contracts expiring on `session_date`.

        ValueError for an unknown underlying, a future or a non-session (before connecting); IbkrMissingDataError
        when IB has no first bar or no chain expiring that day or knows none of its contracts; IbkrSourceError
        when a request fails for good."""
        contract, cspec, index = self._contract(underlying, session_date)
        if cspec.sec_type not in ("STK", "IND"):
            raise ValueError(f"ibkr: {underlying!r} is a {cspec.sec_type}; same-day chains cover stocks and indexes")
        session_index(session_date, get_symbol(underlying, session_date).session_rule)
        start_s, end_s = (int(b.astype(np.int64) // 1_000_000_000) for b in session_bounds(session_date))
        with self._lock:  # one fetch at a time on the one connection
            first_bar = self._bars(underlying, session_date, contract, cspec, start_s, start_s + 60, index)
            first = first_session_close(first_bar["ts"].cast(pl.Int64).to_list(), first_bar["close"], session_date)
            if first is None:
                raise IbkrMissingDataError(f"ibkr: no first regular-session bar of {underlying} on {session_date}")
            chain = self._option_chain(underlying, session_date, contract)
            window = strike_window(chain.strikes, first, self.strikes_each_side)
            known = self._known_options(underlying, session_date, contract, chain, window)
            minutes = [self._quote_minutes(name, option, session_date, start_s, end_s) for name, option in known]
        contracts = pl.DataFrame(
            [(name, option.right, float(option.strike)) for name, option in known],
            schema={"contract": pl.Utf8, "right": pl.Utf8, "strike": pl.Float64},
            orient="row",
        )
        return chain_grid(underlying, session_date, contracts, pl.concat(minutes), volume_known=False)

    def _lookup(self, where: str, coro: Callable[[], Coroutine[Any, Any, Any]]) -> list[Any]:
        """A contract lookup under the request timeout and retries, outside the historical pacing rules."""
        timeout = self.config.timeout_s

        async def request() -> Any:
            try:
                return await asyncio.wait_for(coro(), timeout)
            except TimeoutError:
                return None

        return self._request(where, None, None, 1, request, first=True, paced=False)

    def _option_chain(self, underlying: str, session_date: date, contract: Any) -> Any:
        """The secdef chain of the same-day trading class that lists the session as an expiration."""
        qualified = self._lookup(f"qualifyContracts({underlying})", lambda: self._ib.qualifyContractsAsync(contract))
        if qualified[0] is None:
            raise IbkrSourceError(f"ibkr: IB does not know the underlying {contract} of {underlying}'s options")
        where = f"reqSecDefOptParams({underlying}, {contract.secType}, conId {contract.conId})"
        chains = self._lookup(
            where, lambda: self._ib.reqSecDefOptParamsAsync(contract.symbol, "", contract.secType, contract.conId)
        )
        root, expiry = option_root(underlying), f"{session_date:%Y%m%d}"
        matches = [c for c in chains if c.tradingClass == root and expiry in c.expirations]
        if not matches:
            classes = sorted({c.tradingClass for c in chains})
            raise IbkrMissingDataError(
                f"ibkr: IB lists no {root} option of {underlying} expiring on {session_date} (trading classes "
                f"{classes}); IB keeps no expired options, so a chain can be fetched on its own session only"
            )
        return next((c for c in matches if c.exchange == "SMART"), matches[0])

    def _known_options(
        self, underlying: str, session_date: date, contract: Any, chain: Any, window: list[float]
    ) -> list[tuple[str, Any]]:
        """(OCC ticker, qualified Option) for the window's calls and puts that IB knows; the rest are recorded."""
        expiry, tclass = f"{session_date:%Y%m%d}", chain.tradingClass
        pairs = [(strike, right) for strike in window for right in ("C", "P")]
        names = [occ_symbol(tclass, session_date, right == "C", strike) for strike, right in pairs]
        options = [
            self._module.Option(contract.symbol, expiry, strike, right, chain.exchange, chain.multiplier,
                                contract.currency, tradingClass=tclass)
            for strike, right in pairs
        ]  # fmt: skip
        where = f"qualifyContracts({len(options)} {tclass} options of {underlying} {session_date})"
        qualified = self._lookup(where, lambda: self._ib.qualifyContractsAsync(*options))
        unknown = tuple(n for n, q in zip(names, qualified, strict=True) if q is None)
        self.unknown[(underlying, session_date)] = unknown
        if unknown:
            logger.warning(
                "ibkr: IB does not know %d of the %d contracts of %s's %s window; skipped: %s",
                *(len(unknown), len(names), underlying, session_date, ", ".join(unknown)),
            )
        known = [(n, q) for n, q in zip(names, qualified, strict=True) if q is not None]
        if not known:
            raise IbkrMissingDataError(
                f"ibkr: IB knows none of the {len(names)} {tclass} contracts of {underlying} expiring on {session_date}"
            )
        return known

    def _quote_minutes(self, name: str, option: Any, session_date: date, start_s: int, end_s: int) -> pl.DataFrame:
        """One contract's last bid and ask per minute from its BID and ASK bars (see the module docstring)."""
        spec = ContractSpec("OPT", option.exchange, option.currency)
        sides: dict[str, dict[int, float | None]] = {}
        for what in QUOTE_SIDES:
            try:
                bars = self._bars(name, session_date, option, spec, start_s, end_s, False, what)
            except IbkrMissingDataError as exc:
                logger.warning("ibkr: %s: no %s history, so that side is null all day: %s", name, what, exc)
                sides[what] = {}
                continue
            starts = bars["ts"].cast(pl.Int64).to_list()
            sides[what] = {t: _nullable(c) for t, c in zip(starts, bars["close"], strict=True)}
        bid, ask = sides["BID"], sides["ASK"]
        return contract_minutes(name, {m: (bid.get(m), ask.get(m)) for m in set(bid) | set(ask)})
