"""0DTE options environments (seed 003): a Gymnasium env and a batched VecEnv over one `_Batch` core.

An episode is one (underlying, session). Six actions, masked: HOLD, BUY_CALL and BUY_PUT (flat, before the entry
cutoff, after the cooldown, when the rule finds a contract), TRIM_50 and TRIM_70 (two or more contracts held) and
EXIT (in a position).

Timing (no look-ahead): the decision at minute t sees the underlying's features up to t and the held contract's
quote at t; the contract a buy takes is picked from the chain at t; every fill comes at minute t+1's quote (buys
at the ask, sells at the bid) and the position is marked at t+1's mid. The risk rules judge that mark: the hard stop
rests with the broker, so the first mark at or below it sells at that same minute's bid (a gap through the stop
shows as a loss beyond it, never hidden); a take-profit tier reached there sells its share at t+2's quote. A contract
without a quote at t+1 cannot be traded then; the trade waits.
At the session's last bar the position is sold at the bid (flat_before_close books have closed it already in
their last minutes), or settled at intrinsic value against the underlying's last close (cash_at_expiry).
Observation (float32): the underlying's last `window` feature rows (oldest first, row-major), then STATE_NAMES.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from rl.core.accounting import COMPONENTS as LEDGER_COMPONENTS
from rl.core.accounting import Index, Ledger
from rl.core.reward import RewardSpec, combine
from rl.core.vecenv import DayEpisodeEnv, DayEpisodesVecEnv
from rl.families.zerodte.config import EnvConfig
from rl.families.zerodte.data import OptionDays
from rl.families.zerodte.rules import (
    can_enter,
    choose_contract,
    exit_share,
    must_flatten,
    settlement_value,
    stop_gap_and_slippage,
    stop_hit,
    tiers_reached,
)

HOLD, BUY_CALL, BUY_PUT, TRIM_50, TRIM_70, EXIT = range(6)
N_ACTIONS = 6
ACTION_NAMES: tuple[str, ...] = ("HOLD", "BUY_CALL", "BUY_PUT", "TRIM_50", "TRIM_70", "EXIT")
_TRIM = np.array([0.0, 0.0, 0.0, 0.5, 0.7, 0.0])
STATE_NAMES: tuple[str, ...] = (
    "position_fraction", "side", "premium_pnl", "unrealized_pnl", "day_pnl", "minutes_held", "tiers_hit",
    "to_close", "cooldown_left", "delta", "gamma_pct", "theta_share", "vega_share", "iv",
)  # fmt: skip
DONE_REASONS: tuple[str, ...] = ("", "session_close")
SESSION_CLOSE, STOPPED = 1, 2  # done codes; STOPPED sells the position and the session goes on
COMPONENTS: dict[str, str] = {
    **LEDGER_COMPONENTS,
    "good_buy_call": "+1 when a call's premium first reaches the first take-profit tier (paid when it is known)",
    "good_buy_put": "+1 when a put's premium first reaches the first take-profit tier",
    "tp_tiers": "+1 per take-profit tier the held premium reaches this step",
    "stop_loss": "-1 per hard stop this step sells",
    "missed_opportunity": "-1 per HOLD while flat, free to buy, on a breakout of the underlying",
    "bad_chase": "-1 per buy after the underlying already moved chase_return_pct its way",
}
COMPONENT_NAMES: tuple[str, ...] = tuple(COMPONENTS)
_ALL = slice(None)


def observation_names(feature_names: Sequence[str], window: int) -> tuple[str, ...]:
    """Name of every observation column: `<feature>_t-<lag>` for the window rows, then STATE_NAMES."""
    rows = [f"{f}_t-{lag}" if lag else f"{f}_t" for lag in range(window - 1, -1, -1) for f in feature_names]
    return (*rows, *STATE_NAMES)


def _breakouts(close: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """[D, T] bool: the close above (below) every close of the `n` minutes before it, from close data <= t."""
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.pad(close, ((0, 0), (n, 0)), mode="edge")
    past = sliding_window_view(padded, n, axis=1)[:, :-1]  # [D, T, n]: closes t-n .. t-1
    early = np.arange(close.shape[1])[None, :] < n
    return (close > past.max(axis=2)) & ~early, (close < past.min(axis=2)) & ~early


class _Fill(NamedTuple):
    """What one step decided and filled, for the rule state and the shaping components that follow it."""

    t: np.ndarray  # decision minute
    a: np.ndarray  # the action taken (a masked one as HOLD)
    row: np.ndarray  # flat index of (day, t)
    opened: np.ndarray  # flat before, holding after
    closed: np.ndarray  # holding before, flat after
    traded: np.ndarray  # the position changed
    k_new: np.ndarray  # the contract traded or held
    mid1: np.ndarray  # its mid at t+1 (the mark)
    spread1: np.ndarray  # its spread at t+1
    paid0: np.ndarray  # premium paid for the position held before
    stop_now: np.ndarray  # this step's sale was the hard stop
    pos0: np.ndarray  # contracts before
    realized0: np.ndarray  # the ledger's realized net before


class _Batch:
    """State and stepping of N option accounts over an OptionDays, with array operations only."""

    def __init__(self, days: OptionDays, cfg: EnvConfig, reward: RewardSpec, n: int) -> None:
        if not isinstance(days, OptionDays):
            raise TypeError(f"days must be an OptionDays, got {type(days).__name__}")
        if days.n_days < 1 or n < 1:
            raise ValueError("need at least one day and one env")
        need = cfg.warmup_minutes + 2
        if int(days.bars.length.min()) < need:
            short = int(np.argmin(days.bars.length))
            raise ValueError(
                f"day {short} ({days.symbols[short]} {days.dates[short]}) has {int(days.bars.length[short])} "
                f"minutes; warmup_minutes={cfg.warmup_minutes} needs at least {need}"
            )
        self.days, self.cfg, self.reward, self.n = days, cfg, reward, int(n)
        self.rules = cfg.risk
        d, t_max, n_feat = days.bars.features.shape
        self.n_days, self._t_max, self._k = d, t_max, days.n_contracts
        self.obs_dim = cfg.window * n_feat + len(STATE_NAMES)
        self._w = cfg.window * n_feat
        self._obs_rows = self._window_rows(days.bars.features, cfg.window)
        self._prepare_quotes(days)
        self._prepare_signals(days, cfg)
        self._stop_due = np.zeros(n, dtype=bool)  # this step's selection: the mark reached the stop
        self.ledger = Ledger(n, self._exits, continuing=(STOPPED,))
        self._mask_cache: np.ndarray | None = None
        z = np.zeros
        self.day, self.t, self._base, self._last = (z(n, dtype=np.int64) for _ in range(4))
        self.finished = z(n, dtype=bool)
        self.k = np.full(n, -1, dtype=np.int64)  # held contract (-1 flat)
        self.side = z(n, dtype=np.int64)  # +1 call, -1 put, 0 flat
        self.paid, self.best = z(n), z(n)  # premium paid (the ask) and best mid since entry
        self.entry_t = z(n, dtype=np.int64)
        self.size = z(n, dtype=np.int64)  # contracts the open position's buy took
        self.last_exit = np.full(n, -1, dtype=np.int64)
        n_tiers = len(self.rules.tiers)
        self.hit = z((n, n_tiers), dtype=bool)
        self.pending_share = z(n)
        # Episode facts the evaluation reads.
        self.tier_hits = z((n, n_tiers), dtype=np.int64)
        self.stops, self.entries_call, self.entries_put = (z(n, dtype=np.int64) for _ in range(3))
        self.worst_beyond_stop = z(n)  # largest stop fill beyond the stop, share of premium
        self.worst_stop_gap = z(n)  # largest part of that beyond the stop at the triggering mark (the gap)
        self.worst_stop_slippage = z(n)  # largest part of that below the triggering mark (the fill's half spread)
        self.trade_return_sum = z(n)  # closed trades' net P&L as a share of the premium paid, summed

    def _window_rows(self, features: np.ndarray, window: int) -> np.ndarray:
        """[D * T, obs_dim] float32: each minute's last `window` feature rows (oldest first) with room for the
        state columns, so one contiguous `take` builds the observation (D x T x obs_dim x 4 bytes, e.g. 130 MB
        for 180 sessions; a 2D gather of the window rows instead costs twice the step time)."""
        from numpy.lib.stride_tricks import sliding_window_view

        d, t_max, n_feat = features.shape
        padded = np.pad(features, ((0, 0), (window - 1, 0), (0, 0)), mode="edge")
        win = sliding_window_view(padded, window, axis=1)[:, :t_max]  # [D, T, F, W]
        rows = np.zeros((d * t_max, self.obs_dim), dtype=np.float32)
        rows[:, : self._w] = win.transpose(0, 1, 3, 2).reshape(d * t_max, -1)
        return rows

    def _prepare_quotes(self, days: OptionDays) -> None:
        bid, ask = days.quotes["bid"].astype(np.float64), days.quotes["ask"].astype(np.float64)
        self._quoted = (np.isfinite(bid) & np.isfinite(ask)).reshape(-1)
        self._mid = np.nan_to_num((bid + ask) / 2).reshape(-1)
        self._spread = np.nan_to_num(ask - bid).reshape(-1)
        spot = days.bars.close[:, :, None]
        mid = np.where(self._quoted.reshape(bid.shape), self._mid.reshape(bid.shape), np.nan)
        safe = np.where(mid > 0, mid, np.nan)
        greeks = (
            days.quotes["delta"],
            days.quotes["gamma"] * spot / 100.0,
            np.clip(days.quotes["theta"] / safe, -10.0, 0.0),
            np.clip(days.quotes["vega"] / safe, 0.0, 10.0),
            days.quotes["iv"],
        )
        self._greeks = np.nan_to_num(np.stack(greeks, axis=-1).astype(np.float32)).reshape(-1, 5)
        self._strike = np.nan_to_num(days.strike).reshape(-1)
        self._is_call = days.is_call.reshape(-1)
        quoted_ask = np.where(self._quoted.reshape(bid.shape), ask, np.nan)
        volume = None
        if self.cfg.contract.min_volume > 0:  # a contract must have traded that much in the decision minute
            if not np.isfinite(days.volume).any():
                raise ValueError(
                    f"contract.min_volume is {self.cfg.contract.min_volume:g} but the chain reports no volume (the "
                    "embedded chain carries none): set min_volume to 0 or load a chain with volumes"
                )
            volume = days.volume  # NaN (not reported) never qualifies
        self._call_pick, self._put_pick = (
            choose_contract(
                days.quotes["delta"], quoted_ask, volume, days.is_call[:, None, :], want, self.cfg.contract
            ).reshape(-1)
            for want in (True, False)
        )
        flat_ask = np.nan_to_num(quoted_ask).reshape(-1)
        self._call_qty, self._put_qty = (self._buy_size(flat_ask, pick) for pick in (self._call_pick, self._put_pick))

    def _buy_size(self, ask: np.ndarray, pick: np.ndarray) -> np.ndarray:
        """Contracts a buy of each row's pick takes: the premium budget at the decision minute's ask (known at t)."""
        most = self.cfg.contracts
        if self.cfg.premium_budget is None:
            return np.full(pick.shape, most, dtype=np.int64)
        rows = np.arange(pick.size)
        price = ask[rows * self._k + np.maximum(pick, 0)] * 100.0
        qty = np.floor(self.cfg.premium_budget / np.where(price > 0, price, np.inf) * (1 + 1e-6))  # float32 asks
        return np.clip(qty, 1, most).astype(np.int64)

    def _prepare_signals(self, days: OptionDays, cfg: EnvConfig) -> None:
        close = days.bars.close
        up, down = _breakouts(close, cfg.setup_minutes)
        self._setup = (up | down).reshape(-1)
        lag = np.pad(close, ((0, 0), (cfg.chase_minutes, 0)), mode="edge")[:, : close.shape[1]]
        move = np.log(close / lag) * 100.0
        self._chase_up = (move >= cfg.chase_return_pct).reshape(-1)
        self._chase_down = (move <= -cfg.chase_return_pct).reshape(-1)
        to_close = days.to_close.astype(np.float64)
        self._to_close = to_close.reshape(-1)
        self._entry_ok = (to_close > cfg.entry_cutoff_minutes).reshape(-1)
        nxt = np.concatenate([to_close[:, 1:], to_close[:, -1:]], axis=1)
        self._flatten = must_flatten(nxt, cfg.risk).reshape(-1)  # the fill at t+1 lies in the last minutes
        self._spot = close.reshape(-1)

    def reset(self, sel: slice | np.ndarray, day: np.ndarray, rngs: object = None) -> None:
        """Put the selected envs at the first decision of `day` (array of day indices), flat."""
        day = np.asarray(day, dtype=np.int64)
        if day.size and (day.min() < 0 or day.max() >= self.n_days):
            raise ValueError(f"day index out of range [0, {self.n_days})")
        self.day[sel] = day
        self.t[sel] = self.cfg.warmup_minutes
        self._base[sel] = day * self._t_max
        self._last[sel] = self.days.bars.length[day] - 2
        self.finished[sel] = False
        self._mask_cache = None
        for name in ("side", "paid", "best", "entry_t", "size", "hit", "pending_share", "tier_hits", "stops",
                     "entries_call", "entries_put", "worst_beyond_stop", "worst_stop_gap", "worst_stop_slippage",
                     "trade_return_sum"):  # fmt: skip
            getattr(self, name)[sel] = 0
        self.k[sel] = -1
        self.last_exit[sel] = -1
        self.ledger.reset(sel, 0.0, size=1.0, point_value=100.0, commission=self.cfg.commission_per_contract)

    def observe(self, sel: slice | np.ndarray = _ALL) -> np.ndarray:
        """A fresh float32 [k, obs_dim] observation of the selected envs (see the module docstring)."""
        t = self.t[sel]
        row = self._base[sel] + t
        obs = self._obs_rows.take(row, axis=0)
        led = self.ledger
        pos = led.pos[sel]
        held = pos > 0
        paid = self.paid[sel]
        rest = self.rules.cooldown_minutes
        last = self.last_exit[sel]
        state = np.empty((9, len(row)))
        state[0] = pos / np.maximum(self.size[sel], 1)
        state[1] = self.side[sel]
        state[2] = np.where(held, led.mark[sel] / np.where(held, paid, 1.0) - 1.0, 0.0)
        state[3] = led.unrealized(sel) / self.cfg.pnl_scale
        state[4] = led.equity[sel] / self.cfg.pnl_scale
        state[5] = np.where(held, (t - self.entry_t[sel]) / 10.0, 0.0)
        state[6] = self.hit[sel].sum(axis=1) / self.hit.shape[1]
        state[7] = self._to_close.take(row) / 390.0
        state[8] = np.where((last >= 0) & (rest > 0), np.clip((rest - (t - last)) / max(rest, 1), 0, 1), 0.0)
        w = self._w
        obs[:, w : w + 9] = state.T
        cell = row * self._k + np.maximum(self.k[sel], 0)
        obs[:, w + 9 :] = self._greeks.take(cell, axis=0) * held[:, None]
        return obs

    def masks(self, sel: slice | np.ndarray = _ALL) -> np.ndarray:
        """A fresh bool [k, 6] array of valid actions."""
        t = self.t[sel]
        row = self._base[sel] + t
        pos = self.ledger.pos[sel]
        live = ~self.finished[sel]
        flat = (pos == 0) & live
        can_buy = flat & self._entry_ok.take(row) & can_enter(t, self.last_exit[sel], self.rules)
        out = np.empty((len(row), N_ACTIONS), dtype=bool)
        out[:, HOLD] = True
        out[:, BUY_CALL] = can_buy & (self._call_pick.take(row) >= 0)
        out[:, BUY_PUT] = can_buy & (self._put_pick.take(row) >= 0)
        out[:, TRIM_50] = out[:, TRIM_70] = live & (pos >= 2)
        out[:, EXIT] = live & (pos > 0)
        if isinstance(sel, slice) and sel == _ALL:
            self._mask_cache = out.copy()  # the step validates against these unless the state changes first
        return out

    def step(
        self, sel: slice | np.ndarray, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Apply one action per selected env (a masked action acts as HOLD); returns components, rewards, codes."""
        t = self.t[sel].copy()  # copies: a slice selection would give views the step overwrites
        row = self._base[sel] + t
        cached = self._mask_cache if isinstance(sel, slice) and sel == _ALL else None
        valid = (cached if cached is not None else self.masks(sel))[np.arange(len(row)), actions]
        self._mask_cache = None
        a = np.where(valid, actions, HOLD)
        led = self.ledger
        pos0 = led.pos[sel].copy()
        k0 = self.k[sel].copy()
        is_buy = (a == BUY_CALL) | (a == BUY_PUT)
        k_new = np.where(a == BUY_CALL, self._call_pick.take(row), np.where(a == BUY_PUT, self._put_pick.take(row), k0))
        target = self._target(sel, a, pos0, is_buy, row)
        last = t >= self._last[sel]
        cash = self.rules.settlement == "cash_at_expiry"
        if cash:
            target = np.where(last, pos0, target)  # the final minute settles what is held
        nxt = row + 1
        cell = nxt * self._k + np.maximum(k_new, 0)
        quoted = (k_new < 0) | self._quoted.take(cell)
        target = np.where(quoted, target, pos0)  # no quote at t+1: the trade waits
        mid1 = np.where(quoted, self._mid.take(cell), led.mark[sel])
        spread1 = np.where(quoted, self._spread.take(cell), 0.0)
        close1 = mid1
        if cash:
            listed = self.day[sel] * self._k + np.maximum(k_new, 0)
            value = settlement_value(self._is_call.take(listed), self._strike.take(listed), self._spot.take(nxt))
            close1 = np.where(last & (k_new >= 0), value, mid1)
            spread1 = np.where(last, 0.0, spread1)
        paid0 = self.paid[sel].copy()
        # The hard stop rests with the broker: the first mark at or below it sells at that same minute's bid.
        stop_now = (pos0 > 0) & (target > 0) & stop_hit(np.where(pos0 > 0, paid0, 1.0), mid1, self.rules) & ~last
        self._stop_due = stop_now
        realized0 = led.realized_net[sel].copy()
        comps, code = led.step(sel, target, mid1, close1, spread1, last)
        code = np.where(led.ends(code), code, np.int8(0))
        pos1 = led.pos[sel].copy()
        opened = (pos0 == 0) & (pos1 > 0)
        closed = (pos0 > 0) & (pos1 == 0)
        fill = _Fill(t, a, row, opened, closed, target != pos0, k_new, mid1, spread1, paid0, stop_now, pos0, realized0)
        comps |= self._after_fill(sel, fill)
        self.t[sel] = t + 1
        return comps, combine(self.reward, comps), code

    def _exits(self, sel: Index, eq_mark: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """The ledger's exit rule: the session's last bar ends the episode; a stop due sells and goes on."""
        return np.where(truncated, np.int8(SESSION_CLOSE), np.where(self._stop_due, np.int8(STOPPED), np.int8(0)))

    def _target(self, sel: Index, a: np.ndarray, pos0: np.ndarray, is_buy: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Contracts to hold after this decision: the action, then the risk rules' exits, then the close."""
        trim = _TRIM[a]
        qty = np.where(a == BUY_CALL, self._call_qty.take(row), self._put_qty.take(row))
        target = np.where(is_buy, qty, np.where(a == EXIT, 0, pos0))
        sold = np.maximum(np.rint(pos0 * trim), 1).astype(np.int64)
        target = np.where(trim > 0, pos0 - sold, target)
        share = self.pending_share[sel]
        auto = np.where(share >= 1.0 - 1e-12, pos0, np.maximum(np.rint(pos0 * share), 1)).astype(np.int64)
        target = np.where((share > 0) & (pos0 > 0), np.minimum(target, pos0 - auto), target)
        return np.where(self._flatten.take(row), 0, target)

    def _after_fill(self, sel: Index, f: _Fill) -> dict[str, np.ndarray]:
        """Update the position's rule state after the fills at t+1 and return the shaping components."""
        side = np.where(f.a == BUY_CALL, 1, -1)
        self.k[sel] = np.where(f.opened, f.k_new, np.where(f.closed, -1, self.k[sel]))
        self.side[sel] = np.where(f.opened, side, np.where(f.closed, 0, self.side[sel]))
        paid = np.where(f.opened, f.mid1 + f.spread1 / 2, f.paid0)
        self.paid[sel] = np.where(f.closed, 0.0, paid)
        self.entry_t[sel] = np.where(f.opened, f.t + 1, self.entry_t[sel])
        size = self.size[sel]
        self.size[sel] = np.where(f.opened, self.ledger.pos[sel], size)
        self.entries_call[sel] += f.opened & (f.a == BUY_CALL)
        self.entries_put[sel] += f.opened & (f.a == BUY_PUT)
        self.last_exit[sel] = np.where(f.closed, f.t + 1, self.last_exit[sel])
        stopped = f.stop_now & f.closed
        self.stops[sel] += stopped
        if stopped.any():  # rare: the stop's bookkeeping runs only on the steps that stop something
            entry = np.where(stopped, f.paid0, 1.0)
            gap, slip = stop_gap_and_slippage(entry, f.mid1, f.mid1 - f.spread1 / 2, self.rules)
            gap, slip = np.where(stopped, gap, 0.0), np.where(stopped, slip, 0.0)
            self.worst_stop_gap[sel] = np.maximum(self.worst_stop_gap[sel], gap)
            self.worst_stop_slippage[sel] = np.maximum(self.worst_stop_slippage[sel], slip)
            self.worst_beyond_stop[sel] = np.maximum(self.worst_beyond_stop[sel], gap + slip)
        held = self.ledger.pos[sel] > 0
        best = np.where(f.opened, f.mid1, np.where(held, np.maximum(self.best[sel], f.mid1), 0.0))
        self.best[sel] = best
        hit0 = np.where(f.opened[:, None], False, self.hit[sel])
        newly = held[:, None] & tiers_reached(np.where(held, paid, 1.0), best, self.rules) & ~hit0
        self.hit[sel] = np.where(held[:, None], hit0 | newly, False)
        self.tier_hits[sel] += newly
        carried = np.where(f.traded | ~held, 0.0, self.pending_share[sel])
        self.pending_share[sel] = 1.0 - (1.0 - carried) * (1.0 - exit_share(newly, self.rules))
        if f.closed.any():
            self._record_trips(sel, f.closed, f.paid0 * 100.0 * np.maximum(size, 1), f.realized0)
        first_tier = newly[:, 0]
        cur_side = np.where(f.opened, side, self.side[sel])
        flat_hold = (f.pos0 == 0) & (f.a == HOLD)
        free = self._entry_ok.take(f.row) & can_enter(f.t, self.last_exit[sel], self.rules)
        free &= (self._call_pick.take(f.row) >= 0) | (self._put_pick.take(f.row) >= 0)
        chase = ((f.a == BUY_CALL) & self._chase_up.take(f.row)) | ((f.a == BUY_PUT) & self._chase_down.take(f.row))
        return {
            "good_buy_call": (first_tier & (cur_side > 0)).astype(np.float64),
            "good_buy_put": (first_tier & (cur_side < 0)).astype(np.float64),
            "tp_tiers": newly.sum(axis=1).astype(np.float64),
            "stop_loss": -stopped.astype(np.float64),
            "missed_opportunity": -(flat_hold & free & self._setup.take(f.row)).astype(np.float64),
            "bad_chase": -(chase & f.opened).astype(np.float64),
        }

    def _record_trips(self, sel: Index, closed: np.ndarray, cost: np.ndarray, realized0: np.ndarray) -> None:
        """Each closed trade's net P&L (after every cost) as a share of the premium its buy paid ($ `cost`)."""
        net = self.ledger.realized_net[sel] - realized0
        ret = np.where(closed, net / np.where(closed, cost, 1.0), 0.0)
        self.trade_return_sum[sel] += ret


class ZeroDteEnv(DayEpisodeEnv):
    """One account scalping one underlying's same-day options for a session; Discrete(6) (module docstring)."""

    COMPONENTS = COMPONENT_NAMES

    def __init__(self, days: OptionDays, env_cfg: EnvConfig, reward: RewardSpec, day_index: int | None = None) -> None:
        super().__init__(_Batch(days, env_cfg, reward, 1), days, env_cfg, reward, day_index, N_ACTIONS)

    def _reset_info(self, day: int) -> dict[str, Any]:
        return _reset_info(self.days, day)

    def _end_info(self, code: int) -> dict[str, Any]:
        return _end_info(self._core, 0, code)


def _reset_info(days: OptionDays, day: int) -> dict[str, Any]:
    return {"day_index": day, "symbol": str(days.symbols[day]), "session_date": str(days.dates[day])}


def _end_info(core: _Batch, i: int, code: int) -> dict[str, Any]:
    led = core.ledger
    return {
        "net_pnl": float(led.equity[i]),
        "position": 0,
        "done_reason": DONE_REASONS[code],
        "round_trips": int(led.round_trips[i]),
        "wins": int(led.wins[i]),
        "stops": int(core.stops[i]),
    }


class ZeroDteVecEnv(DayEpisodesVecEnv):
    """N 0DTE envs stepped together with array operations (SB3 VecEnv, auto-reset, masks as one array).

    Env i draws its sessions from `np_random(seed + i)`, exactly like `ZeroDteEnv.reset(seed=seed + i)`; with
    `fixed_days` env i always plays `fixed_days[i]`; with `auto_reset=False` a finished env stays finished.
    """

    _PER_ENV = {"day_index": "day", "t": "t", "contract": "k", "stops": "stops"}
    _PER_LEDGER = {"position": "pos", "net_pnl": "equity", "round_trips": "round_trips", "wins": "wins"}
    STATE_ATTRS = frozenset({*_PER_ENV, *_PER_LEDGER, "done_mask"})
    COMPONENTS = COMPONENT_NAMES

    def __init__(
        self,
        days: OptionDays,
        env_cfg: EnvConfig,
        reward: RewardSpec,
        n_envs: int,
        seed: int | None = 0,
        fixed_days: np.ndarray | Sequence[int] | None = None,
        auto_reset: bool = True,
    ) -> None:
        core = _Batch(days, env_cfg, reward, n_envs)
        super().__init__(core, days, env_cfg, reward, n_envs, seed, fixed_days, auto_reset, N_ACTIONS)

    def _reset_info(self, day: int) -> dict[str, Any]:
        return _reset_info(self.days, day)

    def _end_info(self, i: int, code: int) -> dict[str, Any]:
        return _end_info(self._core, i, code)
