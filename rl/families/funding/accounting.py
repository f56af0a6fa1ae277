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


class _Work:
    """The selected accounts' working arrays during one `FundingLedger.step`, passed through its five phases."""

    def __init__(self, led: FundingLedger, sel: Index, t: np.ndarray) -> None:
        k = t.shape[0]
        self.sel, self.t, self.rows = sel, t, np.arange(k)
        self.fee, self.eq = led.fee[sel], led.equity[sel]
        self.active = led.active[sel]
        self.qty, self.sym, self.xl, self.xs = led.qty[sel], led.sym[sel], led.xl[sel], led.xs[sel]
        self.last_l, self.last_s = led.last_l[sel], led.last_s[sel]
        self.trip = led.trip_pnl[sel]
        self.fees = np.zeros(k)
        self.spread = np.zeros(k)
        self.wins = np.zeros(k, dtype=np.int64)
        self.closes = np.zeros(k, dtype=np.int64)
        self.closed_net = np.full((k, led.slots), np.nan)
        self.closed_hours = np.full((k, led.slots), np.nan)
        self.entered = np.full(k, -1, dtype=np.int64)
        self.ended: np.ndarray | None = None  # positions closed at t+1 (liquidated or flattened) ...
        self.ended_net = self.closed_net  # ... and their net P&L
        # Set by _hour: t+1, the next marks, the held quantities and the cost of closing at t+1.
        self.t1 = self.ml1 = self.ms1 = self.q = self.close_half = self.close_cost = np.empty(0)


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
        w = _Work(self, sel, t)
        self._exit(w, exit_slot)
        bonus, diversity = self._enter(w, enter, enter_sym, enter_xl, enter_xs, enter_apr)
        pnl, funding = self._hour(w)
        liquidation = self._liquidate(w)
        code = self._close_at_end(w, pnl, last)
        self._commit(w, pnl, funding, liquidation)
        comps = {
            "pnl": pnl,
            "fees": w.fees,
            "funding": funding,
            "quality_bonus": bonus,
            "diversity_penalty": diversity,
            "liquidation": liquidation,
        }
        return comps, code

    def _exit(self, w: _Work, exit_slot: np.ndarray) -> None:
        """1) Close the chosen slot at snapshot t (ignored when that slot is empty)."""
        mark, half, sel, t, rows = self._mark, self._half, w.sel, w.t, w.rows
        j = np.clip(exit_slot, 0, self.slots - 1)
        do_exit = (exit_slot >= 0) & w.active[rows, j]
        if not do_exit.any():
            return
        r, jj = rows[do_exit], j[do_exit]
        cl = self._cell(t[r], w.sym[r, jj], w.xl[r, jj])
        cs = self._cell(t[r], w.sym[r, jj], w.xs[r, jj])
        q = w.qty[r, jj]
        half_cost = q * (half[cl] + half[cs])
        cost = w.fee[r] * q * (mark[cl] + mark[cs]) + half_cost
        w.fees[r] -= cost
        w.spread[r] -= half_cost
        net = w.trip[r, jj] - cost
        w.closed_net[r, jj] = net
        w.closed_hours[r, jj] = t[r] - self.opened[sel][r, jj]
        w.wins[r] += net > 0.0
        w.closes[r] += 1
        w.active[r, jj] = False
        w.trip[r, jj] = 0.0

    def _enter(
        self,
        w: _Work,
        enter: np.ndarray,
        enter_sym: np.ndarray,
        enter_xl: np.ndarray,
        enter_xs: np.ndarray,
        enter_apr: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """2) Enter at snapshot t into the first free slot below max_positions; (quality bonus, diversity)."""
        mark, half, sel, t, rows, k = self._mark, self._half, w.sel, w.t, w.rows, len(w.t)
        free = ~w.active & (np.arange(self.slots)[None, :] < self.max_positions[sel][:, None])
        has_free = free.any(axis=1)
        do_enter = enter & has_free & (w.eq > 0.0)
        bonus = np.zeros(k)
        diversity = np.zeros(k)
        if not do_enter.any():
            return bonus, diversity
        r = rows[do_enter]
        jj = np.argmax(free[r], axis=1)
        s_new = enter_sym[r]
        diversity[r] = -(w.active[r] & (w.sym[r] == s_new[:, None])).any(axis=1).astype(np.float64)
        cl = self._cell(t[r], s_new, enter_xl[r])
        cs = self._cell(t[r], s_new, enter_xs[r])
        ml, ms = mark[cl], mark[cs]
        lev = self.leverage[sel][r]
        util = self.utilization[sel][r]
        npos = self.max_positions[sel][r]
        notional = w.eq[r] * util / npos * lev
        q = notional / (0.5 * (ml + ms))
        half_cost = q * (half[cl] + half[cs])
        cost = w.fee[r] * q * (ml + ms) + half_cost
        w.fees[r] -= cost
        w.spread[r] -= half_cost
        w.entered[r] = s_new
        bonus[r] = notional * enter_apr[r] * 8.0 / HOURS_PER_YEAR
        w.active[r, jj] = True
        w.sym[r, jj], w.xl[r, jj], w.xs[r, jj] = s_new, enter_xl[r], enter_xs[r]
        w.qty[r, jj] = q
        w.last_l[r, jj], w.last_s[r, jj] = ml, ms
        entry_l, entry_s = self.entry_l[sel], self.entry_s[sel]
        margin_l, margin_s = self.margin_l[sel], self.margin_s[sel]
        notion, opened = self.notional[sel], self.opened[sel]
        entry_l[r, jj], entry_s[r, jj] = ml, ms
        margin_l[r, jj], margin_s[r, jj] = q * ml / lev, q * ms / lev
        notion[r, jj] = notional
        opened[r, jj] = t[r]
        w.trip[r, jj] = -cost
        self.entry_l[sel], self.entry_s[sel] = entry_l, entry_s
        self.margin_l[sel], self.margin_s[sel] = margin_l, margin_s
        self.notional[sel], self.opened[sel] = notion, opened
        return bonus, diversity

    def _hour(self, w: _Work) -> tuple[np.ndarray, np.ndarray]:
        """3) The hour t -> t+1: marks and funding on each leg's own schedule; (pnl, funding) per account."""
        mark, half = self._mark, self._half
        w.t1 = (w.t + 1)[:, None]
        cl = self._cell(w.t1, w.sym, w.xl)
        cs = self._cell(w.t1, w.sym, w.xs)
        w.ml1, w.ms1 = mark.take(cl), mark.take(cs)
        w.q = np.where(w.active, w.qty, 0.0)
        fund_slot = w.q * (w.ms1 * self._paid.take(cs) - w.ml1 * self._paid.take(cl))
        slot_pnl = w.q * ((w.ml1 - w.last_l) - (w.ms1 - w.last_s)) + fund_slot
        w.trip = w.trip + slot_pnl
        w.close_half = w.q * (half.take(cl) + half.take(cs))
        w.close_cost = w.fee[:, None] * w.q * (w.ml1 + w.ms1) + w.close_half
        return slot_pnl.sum(axis=1), fund_slot.sum(axis=1)

    def _liquidate(self, w: _Work) -> np.ndarray:
        """4) Liquidate a leg whose price loss exceeds margin * (1 - buffer); the (negative) count per account."""
        sel, q, ml1, ms1 = w.sel, w.q, w.ml1, w.ms1
        keep = 1.0 - self.buffer[sel][:, None]
        liq_l = w.active & (q * (self.entry_l[sel] - ml1) > self.margin_l[sel] * keep)
        liq_s = w.active & (q * (ms1 - self.entry_s[sel]) > self.margin_s[sel] * keep)
        liq = liq_l | liq_s
        if not liq.any():
            return np.zeros(len(w.t))
        lf = self.liq_fee[sel][:, None]
        cost = np.where(liq, w.close_cost + lf * q * (liq_l * ml1 + liq_s * ms1), 0.0)
        w.fees -= cost.sum(axis=1)
        net = w.trip - cost
        w.ended, w.ended_net = liq, net
        w.wins += (liq & (net > 0.0)).sum(axis=1)
        w.closes += liq.sum(axis=1)
        w.active = w.active & ~liq
        w.trip = np.where(liq, 0.0, w.trip)
        return -liq.sum(axis=1).astype(np.float64)

    def _close_at_end(self, w: _Work, pnl: np.ndarray, last: np.ndarray) -> np.ndarray:
        """5) Episode end or wipe-out: close everything left at t+1 with costs; the done code per account."""
        eq_mark = w.eq + pnl + w.fees
        code = np.where(last, np.int8(END_OF_EPISODE), np.int8(0))
        code = np.where(eq_mark <= self.wipeout_fraction * self.equity0[w.sel], np.int8(WIPEOUT), code)
        flat = (code != 0)[:, None] & w.active
        if flat.any():
            cost = np.where(flat, w.close_cost, 0.0)
            w.fees -= cost.sum(axis=1)
            net = w.trip - cost
            if w.ended is None:
                w.ended, w.ended_net = flat, net
            else:
                w.ended, w.ended_net = w.ended | flat, np.where(flat, net, w.ended_net)
            w.wins += (flat & (net > 0.0)).sum(axis=1)
            w.closes += flat.sum(axis=1)
            w.active = w.active & ~flat
            w.trip = np.where(flat, 0.0, w.trip)
        if w.ended is not None:
            w.spread -= np.where(w.ended, w.close_half, 0.0) @ self._ones
            w.closed_net = np.where(w.ended, w.ended_net, w.closed_net)
            w.closed_hours = np.where(w.ended, w.t1 - self.opened[w.sel], w.closed_hours)
        return code

    def _commit(self, w: _Work, pnl: np.ndarray, funding: np.ndarray, liquidation: np.ndarray) -> None:
        """Write the selected accounts' new state and totals back, and this call's close/entry records."""
        sel = w.sel
        self.active[sel] = w.active
        self.sym[sel], self.xl[sel], self.xs[sel] = w.sym, w.xl, w.xs
        self.qty[sel] = np.where(w.active, w.qty, 0.0)
        self.last_l[sel], self.last_s[sel] = w.ml1, w.ms1
        self.trip_pnl[sel] = w.trip
        self.equity[sel] = w.eq + pnl + w.fees
        self.gross[sel] += pnl
        self.fees[sel] += w.fees
        self.funding[sel] += funding
        self.liquidations[sel] -= liquidation.astype(np.int64)
        self.round_trips[sel] += w.closes
        self.wins[sel] += w.wins
        self.spread[sel] += w.spread
        # Records describe this call only: accounts not selected (finished in evaluation) closed nothing.
        if isinstance(sel, slice) and sel == slice(None):  # the training path: new arrays, no copy
            self.closed_net, self.closed_hours, self.entered_sym = w.closed_net, w.closed_hours, w.entered
        else:
            self.closed_net.fill(np.nan)
            self.closed_hours.fill(np.nan)
            self.entered_sym.fill(-1)
            self.closed_net[sel], self.closed_hours[sel], self.entered_sym[sel] = (
                w.closed_net,
                w.closed_hours,
                w.entered,
            )
