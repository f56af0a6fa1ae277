"""The one implementation of fills, costs, marks, round trips and reward components, vectorised over N.

Both environments, the audit, evaluation and reports get every dollar from `Ledger.step`, so the reward an
agent is trained on and the P&L it is judged by cannot drift apart.

Conventions (per account, one step = one decision at bar t):
- position `pos` in units {-1, 0, +1}; shares held q = pos * shares.
- a trade from q0 to q1 fills at the open of bar t+1 (treated as the mid) +/- half the spread of bar t+1:
  spread cost |q1 - q0| * spread/2, commission max(min_commission, commission_per_share * |q1 - q0|).
- the position is marked at the close of bar t+1:
  gross pnl = q0 * (open - previous mark) + q1 * (close - open).
- net equity (day net P&L) changes by exactly pnl + commission + spread_cost (the latter two are <= 0).
- a round trip opens when a position is taken from flat, and closes when it goes back to flat or flips; a
  flip's costs are split between the closing and the opening trip in proportion to shares.
- at the episode's end (loss cut, profit lock or data end) the position is liquidated at that close, with
  costs.
"""

from __future__ import annotations

import numpy as np

from rl.families.intraday.config import EnvConfig

COMPONENTS: dict[str, str] = {
    "pnl": "gross mark-to-market change of the position ($): fills at the bar open, marks at the bar close",
    "commission": "minus the commission paid this step ($)",
    "spread_cost": "minus the half-spread paid crossing the spread this step ($)",
    "drawdown": "minus the increase of the day's maximum drawdown of net equity ($); sums to -max drawdown",
    "holding_cost": "-1 per step holding a position (after the step's trade)",
    "hold_tax": "-1 per step flat (after the step's trade)",
    "win_bonus": "+1 per round trip closed this step with positive net P&L (after all its costs)",
    "loss_penalty": "-|day net P&L| once, at the episode's last step, when the day ends negative ($)",
    "daily_pnl_level": "the day's net P&L level after this step ($), repeated every step (seed 000's bug)",
    "sharpe": "running Sharpe (mean/std) of this episode's step net P&L so far; 0 until it is defined",
}
COMPONENT_NAMES: tuple[str, ...] = tuple(COMPONENTS)
DONE_REASONS: tuple[str, ...] = ("", "loss_cut", "profit_lock", "end_of_data")  # indexed by the done code
LOSS_CUT, PROFIT_LOCK, END_OF_DATA = 1, 2, 3

Index = slice | np.ndarray


class Ledger:
    """Account state of N envs; `step` applies one decision per selected account, array operations only."""

    def __init__(self, n: int, cfg: EnvConfig) -> None:
        self.n = int(n)
        self.cfg = cfg
        self._shares = float(cfg.shares)
        self._per_share = float(cfg.commission_per_share)
        self._min_comm = float(cfg.min_commission)
        self._loss_cut = None if cfg.loss_cut is None else float(cfg.loss_cut)
        self._profit_lock = None if cfg.profit_lock is None else float(cfg.profit_lock)
        z = np.zeros
        self.pos = z(n, dtype=np.int64)  # position in units (-1, 0, 1)
        self.mark = z(n)  # last mark price (close of the last bar)
        self.entry = z(n)  # fill mid of the open round trip (0 when flat)
        self.trip_cost = z(n)  # costs paid so far by the open round trip ($, >= 0)
        self.equity = z(n)  # day net P&L ($)
        self.peak = z(n)  # running max of equity (starts at 0)
        self.max_drawdown = z(n)  # running max of peak - equity ($)
        self.n_steps = z(n, dtype=np.int64)
        self._ret_mean = z(n)
        self._ret_m2 = z(n)
        self.gross = z(n)  # episode sum of pnl
        self.commission = z(n)  # episode sum of commission (<= 0)
        self.spread_cost = z(n)  # episode sum of spread_cost (<= 0)
        self.realized_gross = z(n)  # sum over closed round trips of q * (exit mid - entry mid)
        self.realized_net = z(n)  # sum over closed round trips of gross minus their costs
        self.round_trips = z(n, dtype=np.int64)
        self.wins = z(n, dtype=np.int64)

    def reset(self, sel: Index, mark: np.ndarray | float) -> None:
        """Start a new day for the selected accounts: flat, zero P&L, marked at `mark`."""
        for arr in (
            self.pos,
            self.entry,
            self.trip_cost,
            self.equity,
            self.peak,
            self.max_drawdown,
            self.n_steps,
            self._ret_mean,
            self._ret_m2,
            self.gross,
            self.commission,
            self.spread_cost,
            self.realized_gross,
            self.realized_net,
            self.round_trips,
            self.wins,
        ):
            arr[sel] = 0
        self.mark[sel] = mark

    def unrealized(self, sel: Index = slice(None)) -> np.ndarray:
        """P&L of the open round trip at the last mark, net of the costs it paid so far ($; 0 when flat)."""
        return self.pos[sel] * self._shares * (self.mark[sel] - self.entry[sel]) - self.trip_cost[sel]

    def _done_codes(self, eq_mark: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """Done code per account from the equity marked before exit costs: loss cut, then profit lock, then the
        data end (0 running)."""
        code = np.where(truncated, np.int8(END_OF_DATA), np.int8(0))
        if self._profit_lock is not None:
            code = np.where(eq_mark >= self._profit_lock, np.int8(PROFIT_LOCK), code)
        if self._loss_cut is not None:
            code = np.where(eq_mark <= self._loss_cut, np.int8(LOSS_CUT), code)
        return code

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

        `truncated` flags accounts whose data ends at this bar. Returns the raw components (arrays over the
        selection) and the done code per account (0 running, else an index into DONE_REASONS): a loss cut
        or profit lock is judged on the equity marked at `close_next`, before exit costs, and wins over the
        data end.
        Accounts that end are liquidated at `close_next` with costs, within this same step.

        One function on purpose: each statement is one array expression over every selected account, in the order
        the ledger applies them (trade, mark, judge, liquidate, record); the done codes, the running Sharpe and the
        write-back are methods of their own.
        """
        shares, per_share, min_comm = self._shares, self._per_share, self._min_comm
        pos0 = self.pos[sel]
        q0 = pos0 * shares
        q1 = target * shares
        adq = np.abs(q1 - q0)
        traded = adq > 0.0
        comm = np.where(traded, np.maximum(adq * per_share, min_comm), 0.0)
        half = 0.5 * spread_next
        sc = adq * half
        pnl = q0 * (open_next - self.mark[sel]) + q1 * (close_next - open_next)

        # Round trips: a trade closes the open trip (pos0 != 0) and/or opens one (target != 0).
        cost = comm + sc
        closing = traded & (pos0 != 0)
        opening = traded & (target != 0)
        safe = np.where(traded, adq, 1.0)
        close_part = cost * np.abs(q0) / safe
        open_part = cost * np.abs(q1) / safe
        entry = self.entry[sel]
        trip_cost = self.trip_cost[sel]
        trip_gross = q0 * (open_next - entry)
        trip_net = trip_gross - trip_cost - close_part
        win_count = (closing & (trip_net > 0.0)).astype(np.float64)
        closes = closing.astype(np.int64)
        realized_gross = np.where(closing, trip_gross, 0.0)
        realized_net = np.where(closing, trip_net, 0.0)
        entry = np.where(opening, open_next, np.where(closing, 0.0, entry))
        trip_cost = np.where(opening, open_part, np.where(closing, 0.0, trip_cost))

        eq0 = self.equity[sel]
        code = self._done_codes(eq0 + pnl - comm - sc, truncated)
        done = code != 0
        holding = target != 0
        pos1 = target
        liquidate = done & holding
        if liquidate.any():
            aq = np.abs(q1)
            comm2 = np.where(liquidate, np.maximum(aq * per_share, min_comm), 0.0)
            sc2 = np.where(liquidate, aq * half, 0.0)
            gross2 = q1 * (close_next - entry)
            net2 = gross2 - trip_cost - (comm2 + sc2)
            win_count = win_count + (liquidate & (net2 > 0.0))
            closes = closes + liquidate
            realized_gross = realized_gross + np.where(liquidate, gross2, 0.0)
            realized_net = realized_net + np.where(liquidate, net2, 0.0)
            comm = comm + comm2
            sc = sc + sc2
            entry = np.where(liquidate, 0.0, entry)
            trip_cost = np.where(liquidate, 0.0, trip_cost)
            pos1 = np.where(liquidate, 0, target)

        commission = -comm
        spread_cost = -sc
        net = pnl + commission + spread_cost
        eq1 = eq0 + net
        peak = np.maximum(self.peak[sel], eq1)
        dd0 = self.max_drawdown[sel]
        dd1 = np.maximum(dd0, peak - eq1)

        n1, mean1, m2, sharpe = self._running_sharpe(sel, net)

        comps = {
            "pnl": pnl,
            "commission": commission,
            "spread_cost": spread_cost,
            "drawdown": dd0 - dd1,
            "holding_cost": -holding.astype(np.float64),
            "hold_tax": holding.astype(np.float64) - 1.0,
            "win_bonus": win_count,
            "loss_penalty": np.where(done, np.minimum(eq1, 0.0), 0.0),
            "daily_pnl_level": eq1,
            "sharpe": sharpe,
        }

        self._commit(
            sel,
            {
                "pos": pos1,
                "mark": close_next,
                "entry": entry,
                "trip_cost": trip_cost,
                "equity": eq1,
                "peak": peak,
                "max_drawdown": dd1,
                "n_steps": n1,
                "_ret_mean": mean1,
                "_ret_m2": m2,
            },
            {
                "gross": pnl,
                "commission": commission,
                "spread_cost": spread_cost,
                "realized_gross": realized_gross,
                "realized_net": realized_net,
                "round_trips": closes,
                "wins": win_count.astype(np.int64),
            },
        )
        return comps, code

    def _commit(self, sel: Index, state: dict[str, np.ndarray], totals: dict[str, np.ndarray]) -> None:
        """Set the selected accounts' new state and add this step to their running totals."""
        for name, values in state.items():
            getattr(self, name)[sel] = values
        for name, values in totals.items():
            getattr(self, name)[sel] += values
