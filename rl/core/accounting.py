"""The one implementation of fills, costs, marks, round trips and the common reward components, vectorised over N.

Every minute-bar family gets every dollar from `Ledger.step`, so the reward an agent is trained on and the P&L it
is judged by cannot drift apart, and a future's $50 a point or a per-contract commission is applied in one place.

Conventions (per account, one step = one decision at bar t):
- position `pos` in whole units (any integer; a family bounds it). One unit is `size` shares or contracts, each
  worth `point_value` per 1.0 of price (1 for a share, 50 for ES). Exposure q = pos * size * point_value ($ per
  1.0 of price).
- a trade from pos0 to pos1 fills at the open of bar t+1 (treated as the mid) +/- half the spread of bar t+1:
  spread cost |q1 - q0| * spread/2; commission max(min_commission, commission * size * |pos1 - pos0|).
- the position is marked at the close of bar t+1: gross pnl = q0 * (open - previous mark) + q1 * (close - open).
- the account's net equity (the episode's net P&L) changes by exactly pnl + commission + spread_cost.
- a round trip runs from flat to flat (a flip closes one and opens the next, splitting the flip's costs in
  proportion to the quantities). Adding to a position moves its entry to the average fill; reducing it realizes
  that part against the entry, inside the same trip.
- accounts that the family's exit rule ends, or whose data ends, are liquidated at that close, with costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

COMPONENTS: dict[str, str] = {
    "pnl": "gross mark-to-market change of the position ($): fills at the bar open, marks at the bar close",
    "commission": "minus the commission paid this step ($)",
    "spread_cost": "minus the half-spread paid crossing the spread this step ($)",
    "drawdown": "minus the increase of the episode's maximum drawdown of net equity ($); sums to -max drawdown",
    "holding_cost": "-1 per step holding a position (after the step's trade)",
    "hold_tax": "-1 per step flat (after the step's trade)",
    "win_bonus": "+1 per round trip closed this step with positive net P&L (after all its costs)",
    "loss_penalty": "-|episode net P&L| once, at the episode's last step, when it ends negative ($)",
    "daily_pnl_level": "the episode's net P&L level after this step ($), repeated every step (seed 000's bug)",
    "sharpe": "running Sharpe (mean/std) of this episode's step net P&L so far; 0 until it is defined",
}
COMPONENT_NAMES: tuple[str, ...] = tuple(COMPONENTS)
TRADABLE_KINDS = ("equity", "etf", "future", "option")

Index = slice | np.ndarray
# (selected accounts, net equity marked at the close before exit costs, data ends here) -> done code per account
ExitRule = Callable[[Index, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ContractTerms:
    """What one unit of position holds and costs, per day: arrays [D] indexed like the days they describe."""

    size: np.ndarray  # shares or contracts per unit of position
    point_value: np.ndarray  # $ per 1.0 of price per share or contract
    commission: np.ndarray  # $ per share or contract traded
    min_commission: np.ndarray  # $ minimum per order

    def at(self, day: np.ndarray) -> dict[str, np.ndarray]:
        """The terms of the given day indices, as `Ledger.reset` keywords."""
        return {
            "size": self.size[day],
            "point_value": self.point_value[day],
            "commission": self.commission[day],
            "min_commission": self.min_commission[day],
        }


def contract_terms(
    symbols: Sequence[str] | np.ndarray,
    *,
    shares: int,
    contracts: int,
    commission_per_share: float,
    commission_per_contract: float | None,
    min_commission: float,
) -> ContractTerms:
    """Each day's terms from its symbol's instrument: shares of an equity or ETF at the per-share commission and
    minimum; contracts of a future or option at its point value and the per-contract commission (the instrument's
    own when None), with no minimum. An index cannot be traded and is refused."""
    from market.symbols import get_symbol

    symbols = np.asarray(symbols).astype(str)
    unique, inverse = np.unique(symbols, return_inverse=True)
    rows = []
    for name in unique.tolist():
        spec = get_symbol(name)
        if spec.kind not in TRADABLE_KINDS:
            raise ValueError(f"{name} is an {spec.kind}, which cannot be traded; trade its ETF or future instead")
        if spec.kind in ("equity", "etf"):
            rows.append((shares, spec.point_value, commission_per_share, min_commission))
        else:
            per = spec.commission if commission_per_contract is None else commission_per_contract
            rows.append((contracts, spec.point_value, per, 0.0))
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)[inverse.reshape(-1)]
    return ContractTerms(*(np.ascontiguousarray(table[:, k]) for k in range(4)))


class Ledger:
    """Account state of N envs; `step` applies one decision per selected account, array operations only."""

    def __init__(self, n: int, exit_rule: ExitRule, continuing: Sequence[int] = ()) -> None:
        """`exit_rule` judges each step's done codes; a code in `continuing` liquidates the position without ending
        the episode (a day's cutoff, a daily-loss pause), every other non-zero code ends it."""
        self.n = int(n)
        self._exit_rule = exit_rule
        self._continuing = np.asarray(tuple(continuing), dtype=np.int8)
        z = np.zeros
        self.size = np.ones(n)  # shares or contracts per unit
        self.point_value = np.ones(n)
        self.unit_commission = z(n)  # $ per share or contract
        self.min_commission = z(n)
        self.pos = z(n, dtype=np.int64)  # position in units
        self.mark = z(n)  # last mark price (close of the last bar)
        self.entry = z(n)  # average fill mid of the open round trip (0 when flat)
        self.trip_realized = z(n)  # gross realized by reductions inside the open round trip ($)
        self.trip_cost = z(n)  # costs paid so far by the open round trip ($, >= 0)
        self.equity = z(n)  # episode net P&L ($)
        self.peak = z(n)  # running max of equity (starts at 0)
        self.max_drawdown = z(n)  # running max of peak - equity ($)
        self.n_steps = z(n, dtype=np.int64)
        self._ret_mean = z(n)
        self._ret_m2 = z(n)
        self.gross = z(n)  # episode sum of pnl
        self.commission = z(n)  # episode sum of commission (<= 0)
        self.spread_cost = z(n)  # episode sum of spread_cost (<= 0)
        self.realized_gross = z(n)  # sum over closed round trips of their gross
        self.realized_net = z(n)  # sum over closed round trips of gross minus their costs
        self.round_trips = z(n, dtype=np.int64)
        self.wins = z(n, dtype=np.int64)
        self._last_trade: tuple[Index, np.ndarray, np.ndarray, np.ndarray] | None = None  # (sel, dpos, open, half)

    _EPISODE = (
        "pos",
        "entry",
        "trip_realized",
        "trip_cost",
        "equity",
        "peak",
        "max_drawdown",
        "n_steps",
        "_ret_mean",
        "_ret_m2",
        "gross",
        "commission",
        "spread_cost",
        "realized_gross",
        "realized_net",
        "round_trips",
        "wins",
    )

    def reset(
        self,
        sel: Index,
        mark: np.ndarray | float,
        *,
        size: np.ndarray | float = 1.0,
        point_value: np.ndarray | float = 1.0,
        commission: np.ndarray | float = 0.0,
        min_commission: np.ndarray | float = 0.0,
    ) -> None:
        """Start a new episode for the selected accounts: flat, zero P&L, marked at `mark`, trading on these terms."""
        for name in self._EPISODE:
            getattr(self, name)[sel] = 0
        self.mark[sel] = mark
        self.size[sel] = size
        self.point_value[sel] = point_value
        self.unit_commission[sel] = commission
        self.min_commission[sel] = min_commission

    @property
    def last_fill(self) -> np.ndarray:
        """[N] the price the last step's trade of each account filled at: the next bar's open plus or minus half
        its spread (NaN where it traded nothing or was not in that step)."""
        fill = np.full(self.n, np.nan)
        if self._last_trade is not None:
            sel, dpos, price, half = self._last_trade
            fill[sel] = np.where(dpos != 0, price + np.sign(dpos) * half, np.nan)
        return fill

    def exposure(self, sel: Index = slice(None)) -> np.ndarray:
        """$ per 1.0 of price of one unit of position in each selected account."""
        return self.size[sel] * self.point_value[sel]

    def unrealized(self, sel: Index = slice(None)) -> np.ndarray:
        """P&L of the open round trip at the last mark, net of the costs it paid so far ($; 0 when flat)."""
        q = self.pos[sel] * self.exposure(sel)
        return q * (self.mark[sel] - self.entry[sel]) + self.trip_realized[sel] - self.trip_cost[sel]

    def _costs(self, sel: Index, dpos: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(commission, spread cost) of trading |dpos| units at half-spread `half`, both >= 0."""
        shares = np.abs(dpos) * self.size[sel]
        comm = np.where(shares > 0, np.maximum(shares * self.unit_commission[sel], self.min_commission[sel]), 0.0)
        return comm, shares * self.point_value[sel] * half

    def _running_sharpe(self, sel: Index, net: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Welford's update of the step net P&L's mean and M2: (steps, mean, M2, Sharpe so far; 0 undefined)."""
        n1 = self.n_steps[sel] + 1
        mean0 = self._ret_mean[sel]
        delta = net - mean0
        mean1 = mean0 + delta / n1
        m2 = self._ret_m2[sel] + delta * (net - mean1)
        std = np.sqrt(m2 / n1)
        defined = (n1 >= 2) & (std > 1e-12)
        return n1, mean1, m2, np.where(defined, mean1 / np.where(defined, std, 1.0), 0.0)

    def step(
        self,
        sel: Index,
        target: np.ndarray,
        open_next: np.ndarray,
        close_next: np.ndarray,
        spread_next: np.ndarray,
        truncated: np.ndarray,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Trade the selected accounts to `target` units at `open_next`, mark at `close_next`, end where due.

        `truncated` flags accounts whose data ends at this bar. The exit rule sees the equity marked at
        `close_next` before exit costs and returns the done code per account (0 running); accounts that end are
        liquidated at `close_next` with costs, within this same step. Returns the raw components (arrays over the
        selection) and the done codes.
        """
        pos0 = self.pos[sel]
        unit = self.exposure(sel)
        q0, q1 = pos0 * unit, target * unit
        half = 0.5 * spread_next
        dpos = target - pos0
        self._last_trade = (sel, dpos, open_next, half)  # kept, not computed: only a shadow play reads the fill
        comm, sc = self._costs(sel, dpos, half)
        pnl = q0 * (open_next - self.mark[sel]) + q1 * (close_next - open_next)
        trip = self._trade(sel, pos0, target, q0, q1, open_next, comm + sc)

        eq0 = self.equity[sel]
        code = np.asarray(self._exit_rule(sel, eq0 + pnl - comm - sc, truncated))
        liquidate = (code != 0) & (target != 0)
        pos1 = target
        if liquidate.any():
            comm2, sc2 = self._costs(sel, np.where(liquidate, target, 0), half)
            self._close_trips(trip, liquidate, q1 * (close_next - trip["entry"]), comm2 + sc2)
            comm, sc = comm + comm2, sc + sc2
            pos1 = np.where(liquidate, 0, target)

        net = pnl - comm - sc
        eq1 = eq0 + net
        peak = np.maximum(self.peak[sel], eq1)
        dd0 = self.max_drawdown[sel]
        dd1 = np.maximum(dd0, peak - eq1)
        n1, mean1, m2, sharpe = self._running_sharpe(sel, net)
        holding = target != 0
        comps = {
            "pnl": pnl,
            "commission": -comm,
            "spread_cost": -sc,
            "drawdown": dd0 - dd1,
            "holding_cost": -holding.astype(np.float64),
            "hold_tax": holding.astype(np.float64) - 1.0,
            "win_bonus": trip["wins"],
            "loss_penalty": np.where(self.ends(code), np.minimum(eq1, 0.0), 0.0),
            "daily_pnl_level": eq1,
            "sharpe": sharpe,
        }
        state = {"pos": pos1, "mark": close_next, "equity": eq1, "peak": peak, "max_drawdown": dd1}
        state |= {"n_steps": n1, "_ret_mean": mean1, "_ret_m2": m2}
        state |= {k: trip[k] for k in ("entry", "trip_realized", "trip_cost")}
        totals = {"gross": pnl, "commission": -comm, "spread_cost": -sc, "round_trips": trip["closes"]}
        totals |= {"realized_gross": trip["gross"], "realized_net": trip["net"], "wins": trip["wins"]}
        self._commit(sel, state, totals)
        return comps, code

    def ends(self, code: np.ndarray) -> np.ndarray:
        """True where a done code ends the episode (non-zero and not a continuing code)."""
        return (code != 0) & ~np.isin(code, self._continuing)

    def _trade(
        self,
        sel: Index,
        pos0: np.ndarray,
        pos1: np.ndarray,
        q0: np.ndarray,
        q1: np.ndarray,
        fill: np.ndarray,
        cost: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """The round-trip books after trading pos0 -> pos1 at mid `fill` with total `cost`: the open trip's entry,
        realized and cost, and what the trips closed by this trade realized (gross, net, closes, wins)."""
        entry, realized, trip_cost = self.entry[sel], self.trip_realized[sel], self.trip_cost[sel]
        s0, s1 = np.sign(pos0), np.sign(pos1)
        closing = (s0 != 0) & (s1 != s0)  # to flat, or a flip
        opening = (s1 != 0) & (s1 != s0)  # from flat, or a flip
        adding = (s0 != 0) & (s1 == s0) & (np.abs(pos1) > np.abs(pos0))
        reducing = (s0 != 0) & (s1 == s0) & (np.abs(pos1) < np.abs(pos0))
        dq = np.abs(q1 - q0)
        safe = np.where(dq > 0, dq, 1.0)
        close_part = np.where(opening & closing, cost * np.abs(q0) / safe, cost)
        trip_gross = realized + q0 * (fill - entry)
        trip_net = trip_gross - trip_cost - close_part
        out = {
            "gross": np.where(closing, trip_gross, 0.0),
            "net": np.where(closing, trip_net, 0.0),
            "closes": closing.astype(np.int64),
            "wins": (closing & (trip_net > 0.0)).astype(np.float64),
        }
        safe_q1 = np.where(q1 != 0, np.abs(q1), 1.0)
        avg = (entry * np.abs(q0) + fill * (np.abs(q1) - np.abs(q0))) / safe_q1
        out["entry"] = np.where(opening, fill, np.where(closing, 0.0, np.where(adding, avg, entry)))
        out["trip_realized"] = np.where(
            opening | closing, 0.0, np.where(reducing, realized + (q0 - q1) * (fill - entry), realized)
        )
        out["trip_cost"] = np.where(
            opening, cost - np.where(closing, close_part, 0.0), np.where(closing, 0.0, trip_cost + cost)
        )
        return out

    @staticmethod
    def _close_trips(trip: dict[str, np.ndarray], where: np.ndarray, gross_open: np.ndarray, cost: np.ndarray) -> None:
        """Close the open trips `where` (liquidation): `gross_open` is the open part's gross at the exit price."""
        gross = trip["trip_realized"] + gross_open
        net = gross - trip["trip_cost"] - cost
        trip["wins"] = trip["wins"] + (where & (net > 0.0))
        trip["closes"] = trip["closes"] + where
        trip["gross"] = trip["gross"] + np.where(where, gross, 0.0)
        trip["net"] = trip["net"] + np.where(where, net, 0.0)
        for name in ("entry", "trip_realized", "trip_cost"):
            trip[name] = np.where(where, 0.0, trip[name])

    def _commit(self, sel: Index, state: dict[str, np.ndarray], totals: dict[str, np.ndarray]) -> None:
        """Set the selected accounts' new state and add this step to their running totals."""
        for name, values in state.items():
            getattr(self, name)[sel] = values
        for name, values in totals.items():
            getattr(self, name)[sel] += values.astype(getattr(self, name).dtype, copy=False)
