"""The one implementation of two-leg funding-arbitrage fills, funding, marks, liquidations and reward components.

Vectorised over N accounts; the single env, the batched env, evaluation and reports all get every dollar from
`FundingLedger.step`, so the reward and the reported P&L cannot drift apart.

Conventions (per account; a step is one decision at hourly snapshot t, then the hour t -> t+1):
- a position occupies a slot and has two legs of one symbol: long `qty` coins on exchange a, short `qty` coins
  on exchange b. Each leg's notional is equity * target_utilization / max_positions * leverage at entry, with
  qty = notional / mean(mark_a, mark_b) so the legs hedge the same number of coins; each leg's margin is
  qty * entry mark / leverage.
- trades fill at snapshot t (the quotes the decision sees): a leg trade costs the taker fee (bps of qty * mark)
  plus the half-spread qty * (ask - bid) / 2. Positions are valued at the mark, so costs are exactly `fees`.
- over the hour, each open leg is marked from its last mark to mark[t+1] and pays or receives the funding
  settled in that hour on its own exchange's schedule (`FundingDays.funding_paid[t+1]`): a long pays
  qty * mark * rate, a short receives it (a negative rate reverses both).
- a leg whose price loss since entry exceeds margin * (1 - liquidation_buffer) at t+1 is liquidated: the
  position is closed at t+1 with the normal costs on both legs plus the liquidation fee on that leg.
- the episode ends at its last hour or when equity falls to wipeout_fraction of the initial equity; open
  positions are then closed at t+1 with costs, within the same step.
- equity changes by exactly pnl + fees each step (`funding` is part of `pnl`).

Per-trip records for evaluation, rewritten by every `step` for all N accounts (NaN where nothing closed in it):
`closed_net[i, j]` is the net P&L (entry and exit costs included) of the position in slot j that closed in that
step, `closed_hours[i, j]` how long it was held (exit at t: t - opened; liquidation or final close at t+1:
t + 1 - opened), and `sym[i, j]` still names its symbol. An exit and an entry in one call would need two records
for one slot; the env sends one action per account per step. `entered_sym[i]` is the symbol entered in that step
(-1 for none); `spread` is the episode's half-spread part of `fees` (<= 0).
"""

from __future__ import annotations

import numpy as np

from rl.families.funding.data import FundingDays

COMPONENTS: dict[str, str] = {
    "pnl": "mark-to-market change of all open legs over the hour, funding included ($)",
    "fees": "minus taker fees, half-spreads and liquidation fees paid this step ($)",
    "funding": "funding received minus paid this step ($); informational, already inside pnl (weight it 0)",
    "quality_bonus": "expected 8h profit of the entered opportunity from its quoted APR, notional * APR * 8/8760 ($)",
    "diversity_penalty": "-1 when the entered position's symbol is already held in another slot",
    "liquidation": "-1 per position liquidated this step",
}
COMPONENT_NAMES: tuple[str, ...] = tuple(COMPONENTS)
DONE_REASONS: tuple[str, ...] = ("", "wipeout", "end_of_episode")  # indexed by the done code
WIPEOUT, END_OF_EPISODE = 1, 2
HOURS_PER_YEAR = 24.0 * 365.0

Index = slice | np.ndarray


class FundingLedger:
    """Accounts of N envs with `slots` two-leg positions each over one FundingDays; array operations only."""

    def __init__(self, days: FundingDays, n: int, slots: int, wipeout_fraction: float = 0.1) -> None:
        self.n, self.slots = int(n), int(slots)
        self.wipeout_fraction = float(wipeout_fraction)
        self._s, self._x = len(days.symbols), len(days.exchanges)
        self._mark = np.ascontiguousarray(np.nan_to_num(days.mark, nan=0.0).reshape(-1))
        self._half = np.ascontiguousarray(np.nan_to_num(0.5 * (days.ask - days.bid), nan=0.0).reshape(-1))
        self._paid = np.ascontiguousarray(np.nan_to_num(days.funding_paid, nan=0.0).reshape(-1))
        z, shape = np.zeros, (self.n, self.slots)
        self._ones = np.ones(self.slots)  # row sums as a mat-vec product: ~4x faster than .sum(axis=1) here
        # Per-account config (set by `configure`).
        self.leverage = np.ones(n)
        self.utilization = np.full(n, 0.5)
        self.max_positions = np.ones(n, dtype=np.int64)
        self.buffer = np.full(n, 0.2)
        self.fee = np.zeros(n)  # fraction of notional
        self.liq_fee = np.zeros(n)
        self.equity0 = np.ones(n)
        # Account state.
        self.equity = z(n)
        self.gross = z(n)  # episode sums
        self.fees = z(n)
        self.funding = z(n)
        self.liquidations = z(n, dtype=np.int64)
        self.round_trips = z(n, dtype=np.int64)
        self.wins = z(n, dtype=np.int64)
        self.spread = z(n)  # episode sum (<= 0) of the half-spread part of `fees`
        # Records of the last `step` call (module docstring).
        self.closed_net = np.full(shape, np.nan)
        self.closed_hours = np.full(shape, np.nan)
        self.entered_sym = np.full(n, -1, dtype=np.int64)
        # Slot state [N, P].
        self.active = z(shape, dtype=bool)
        self.sym = z(shape, dtype=np.int64)
        self.xl = z(shape, dtype=np.int64)  # long leg exchange
        self.xs = z(shape, dtype=np.int64)  # short leg exchange
        self.qty = z(shape)
        self.last_l, self.last_s = z(shape), z(shape)  # last marks
        self.entry_l, self.entry_s = z(shape), z(shape)  # entry marks
        self.margin_l, self.margin_s = z(shape), z(shape)
        self.notional = z(shape)
        self.trip_pnl = z(shape)  # net P&L of the open position so far (its costs included)
        self.opened = z(shape, dtype=np.int64)  # decision index of entry

    def configure(
        self,
        sel: Index,
        leverage: np.ndarray,
        utilization: np.ndarray,
        max_positions: np.ndarray,
        buffer: np.ndarray,
        fee_bps: np.ndarray,
        liq_fee_bps: np.ndarray,
        equity0: np.ndarray,
    ) -> None:
        """Set the selected accounts' TradingConfig values and start them flat at `equity0`."""
        self.leverage[sel] = leverage
        self.utilization[sel] = utilization
        self.max_positions[sel] = max_positions
        self.buffer[sel] = buffer
        self.fee[sel] = np.asarray(fee_bps, dtype=np.float64) * 1e-4
        self.liq_fee[sel] = np.asarray(liq_fee_bps, dtype=np.float64) * 1e-4
        self.equity0[sel] = equity0
        self.equity[sel] = equity0
        for arr in (self.gross, self.fees, self.funding, self.liquidations, self.round_trips, self.wins, self.spread):
            arr[sel] = 0
        for arr in (self.active, self.qty, self.trip_pnl, self.notional):
            arr[sel] = 0
        self.closed_net[sel] = np.nan
        self.closed_hours[sel] = np.nan
        self.entered_sym[sel] = -1

    def _cell(self, t: np.ndarray, sym: np.ndarray, x: np.ndarray) -> np.ndarray:
        return (t * self._s + sym) * self._x + x

    def n_open(self, sel: Index = slice(None)) -> np.ndarray:
        """Open positions per selected account."""
        return self.active[sel].sum(axis=1)

    def step(
        self,
        sel: Index,
        t: np.ndarray,
        exit_slot: np.ndarray,
        enter: np.ndarray,
        enter_sym: np.ndarray,
        enter_xl: np.ndarray,
        enter_xs: np.ndarray,
        enter_apr: np.ndarray,
        last: np.ndarray,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One decision at snapshot t[k] per selected account, then the hour to t+1; returns components, codes.

        `exit_slot` is -1 or the slot to close (ignored when empty); `enter` flags an entry of (enter_sym, long on
        enter_xl, short on enter_xs) quoted at `enter_apr` (ignored when no slot below max_positions is free).
        `last` flags accounts whose episode ends at t+1. Done code: 0 running, else an index into DONE_REASONS.
        """
        k = t.shape[0]
        rows = np.arange(k)
        fee, eq = self.fee[sel], self.equity[sel]
        active = self.active[sel]
        qty, sym, xl, xs = self.qty[sel], self.sym[sel], self.xl[sel], self.xs[sel]
        last_l, last_s = self.last_l[sel], self.last_s[sel]
        trip = self.trip_pnl[sel]
        mark, half = self._mark, self._half
        fees = np.zeros(k)
        spread = np.zeros(k)
        wins = np.zeros(k, dtype=np.int64)
        closes = np.zeros(k, dtype=np.int64)
        closed_net = np.full((k, self.slots), np.nan)
        closed_hours = np.full((k, self.slots), np.nan)
        entered = np.full(k, -1, dtype=np.int64)

        # 1) exit at snapshot t.
        j = np.clip(exit_slot, 0, self.slots - 1)
        do_exit = (exit_slot >= 0) & active[rows, j]
        if do_exit.any():
            r, jj = rows[do_exit], j[do_exit]
            cl = self._cell(t[r], sym[r, jj], xl[r, jj])
            cs = self._cell(t[r], sym[r, jj], xs[r, jj])
            q = qty[r, jj]
            half_cost = q * (half[cl] + half[cs])
            cost = fee[r] * q * (mark[cl] + mark[cs]) + half_cost
            fees[r] -= cost
            spread[r] -= half_cost
            net = trip[r, jj] - cost
            closed_net[r, jj] = net
            closed_hours[r, jj] = t[r] - self.opened[sel][r, jj]
            wins[r] += net > 0.0
            closes[r] += 1
            active[r, jj] = False
            trip[r, jj] = 0.0

        # 2) enter at snapshot t into the first free slot below max_positions.
        free = ~active & (np.arange(self.slots)[None, :] < self.max_positions[sel][:, None])
        has_free = free.any(axis=1)
        do_enter = enter & has_free & (eq > 0.0)
        bonus = np.zeros(k)
        diversity = np.zeros(k)
        if do_enter.any():
            r = rows[do_enter]
            jj = np.argmax(free[r], axis=1)
            s_new = enter_sym[r]
            diversity[r] = -(active[r] & (sym[r] == s_new[:, None])).any(axis=1).astype(np.float64)
            cl = self._cell(t[r], s_new, enter_xl[r])
            cs = self._cell(t[r], s_new, enter_xs[r])
            ml, ms = mark[cl], mark[cs]
            lev = self.leverage[sel][r]
            util = self.utilization[sel][r]
            npos = self.max_positions[sel][r]
            notional = eq[r] * util / npos * lev
            q = notional / (0.5 * (ml + ms))
            half_cost = q * (half[cl] + half[cs])
            cost = fee[r] * q * (ml + ms) + half_cost
            fees[r] -= cost
            spread[r] -= half_cost
            entered[r] = s_new
            bonus[r] = notional * enter_apr[r] * 8.0 / HOURS_PER_YEAR
            active[r, jj] = True
            sym[r, jj], xl[r, jj], xs[r, jj] = s_new, enter_xl[r], enter_xs[r]
            qty[r, jj] = q
            last_l[r, jj], last_s[r, jj] = ml, ms
            entry_l, entry_s = self.entry_l[sel], self.entry_s[sel]
            margin_l, margin_s = self.margin_l[sel], self.margin_s[sel]
            notion, opened = self.notional[sel], self.opened[sel]
            entry_l[r, jj], entry_s[r, jj] = ml, ms
            margin_l[r, jj], margin_s[r, jj] = q * ml / lev, q * ms / lev
            notion[r, jj] = notional
            opened[r, jj] = t[r]
            trip[r, jj] = -cost
            self.entry_l[sel], self.entry_s[sel] = entry_l, entry_s
            self.margin_l[sel], self.margin_s[sel] = margin_l, margin_s
            self.notional[sel], self.opened[sel] = notion, opened

        # 3) the hour t -> t+1: marks and funding on each leg's own schedule.
        t1 = (t + 1)[:, None]
        cl = self._cell(t1, sym, xl)
        cs = self._cell(t1, sym, xs)
        ml1, ms1 = mark.take(cl), mark.take(cs)
        q = np.where(active, qty, 0.0)
        fund_slot = q * (ms1 * self._paid.take(cs) - ml1 * self._paid.take(cl))
        slot_pnl = q * ((ml1 - last_l) - (ms1 - last_s)) + fund_slot
        trip = trip + slot_pnl
        pnl = slot_pnl.sum(axis=1)
        funding = fund_slot.sum(axis=1)

        # 4) liquidation of a leg whose price loss exceeds margin * (1 - buffer).
        keep = 1.0 - self.buffer[sel][:, None]
        liq_l = active & (q * (self.entry_l[sel] - ml1) > self.margin_l[sel] * keep)
        liq_s = active & (q * (ms1 - self.entry_s[sel]) > self.margin_s[sel] * keep)
        liq = liq_l | liq_s
        h1l, h1s = half.take(cl), half.take(cs)
        close_half = q * (h1l + h1s)
        close_cost = fee[:, None] * q * (ml1 + ms1) + close_half
        liquidation = np.zeros(k)
        ended: np.ndarray | None = None  # positions closed at t+1 (liquidated or flattened) ...
        ended_net = closed_net  # ... and their net P&L
        if liq.any():
            lf = self.liq_fee[sel][:, None]
            cost = np.where(liq, close_cost + lf * q * (liq_l * ml1 + liq_s * ms1), 0.0)
            fees -= cost.sum(axis=1)
            net = trip - cost
            ended, ended_net = liq, net
            wins += (liq & (net > 0.0)).sum(axis=1)
            closes += liq.sum(axis=1)
            liquidation = -liq.sum(axis=1).astype(np.float64)
            active = active & ~liq
            trip = np.where(liq, 0.0, trip)

        # 5) episode end or wipe-out: close everything left at t+1 with costs.
        eq_mark = eq + pnl + fees
        code = np.where(last, np.int8(END_OF_EPISODE), np.int8(0))
        code = np.where(eq_mark <= self.wipeout_fraction * self.equity0[sel], np.int8(WIPEOUT), code)
        done = code != 0
        flat = done[:, None] & active
        if flat.any():
            cost = np.where(flat, close_cost, 0.0)
            fees -= cost.sum(axis=1)
            net = trip - cost
            ended, ended_net = (flat, net) if ended is None else (ended | flat, np.where(flat, net, ended_net))
            wins += (flat & (net > 0.0)).sum(axis=1)
            closes += flat.sum(axis=1)
            active = active & ~flat
            trip = np.where(flat, 0.0, trip)
        if ended is not None:
            spread -= np.where(ended, close_half, 0.0) @ self._ones
            closed_net = np.where(ended, ended_net, closed_net)
            closed_hours = np.where(ended, t1 - self.opened[sel], closed_hours)

        self.active[sel] = active
        self.sym[sel], self.xl[sel], self.xs[sel] = sym, xl, xs
        self.qty[sel] = np.where(active, qty, 0.0)
        self.last_l[sel], self.last_s[sel] = ml1, ms1
        self.trip_pnl[sel] = trip
        self.equity[sel] = eq + pnl + fees
        self.gross[sel] += pnl
        self.fees[sel] += fees
        self.funding[sel] += funding
        self.liquidations[sel] -= liquidation.astype(np.int64)
        self.round_trips[sel] += closes
        self.wins[sel] += wins
        self.spread[sel] += spread
        # Records describe this call only: accounts not selected (finished in evaluation) closed nothing.
        if isinstance(sel, slice) and sel == slice(None):  # the training path: new arrays, no copy
            self.closed_net, self.closed_hours, self.entered_sym = closed_net, closed_hours, entered
        else:
            self.closed_net.fill(np.nan)
            self.closed_hours.fill(np.nan)
            self.entered_sym.fill(-1)
            self.closed_net[sel], self.closed_hours[sel], self.entered_sym[sel] = closed_net, closed_hours, entered
        comps = {
            "pnl": pnl,
            "fees": fees,
            "funding": funding,
            "quality_bonus": bonus,
            "diversity_penalty": diversity,
            "liquidation": liquidation,
        }
        return comps, code
