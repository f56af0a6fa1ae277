"""Prop-firm futures envs: one funded account's life across trading days, under a rule book, N of them in arrays.

An episode is an account. Each day it trades its root's front contract from `trade_from` to the rule book's
`flat_by`, when any position is closed; then the next trading day begins, until the account passes, breaches or
the data ends. Both envs run the same `_Batch` core on the shared ledger (`rl.core.accounting`), so
`PropFirmVecEnv(seed=s)` env i plays exactly what `PropFirmEnv.reset(seed=s + i)` plays.

Timing (no look-ahead): the decision at bar t sees features[t] (bar t complete) and the account; it fills at
open[t+1] across half the spread plus `slippage_ticks`, is marked at close[t+1], and the rules judge bar t+1:
equity's high and low inside the bar come from the position over the bar's high and low. The threshold the low
is judged against already trails this bar's high (conservative: the order inside a bar is unknown).

Actions: Discrete(2N+1), action a targets a - N contracts (N = max_contracts, within the rule book's limit).
Masks: after the entry cutoff only reductions (toward flat) and HOLD; beyond the limit nothing. An invalid action
sent anyway acts as HOLD.

Done reasons: `trailing_drawdown`, `daily_loss` (a book whose daily loss breaches), `passed` and `days_done`
(episode_days reached) terminate; `end_of_data` (the root's days ran out) and `bar_limit` (a random short window,
seed 002's training setup) truncate. A day's `cutoff_flatten` and a `daily_loss_pause` are rule events: the
position is closed and the account goes on the next day.

Observation (float32): [features[t], position / N, open P&L, (balance - threshold) / trailing drawdown, day P&L /
daily limit (or the drawdown), (target - balance) / profit target, time to the entry cutoff, time to flat (both
as fractions of the day's window), qualifying days so far / needed]; $ values are divided by pnl_scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from rl.core.accounting import COMPONENTS as LEDGER_COMPONENTS
from rl.core.accounting import Ledger, contract_terms
from rl.core.reward import RewardSpec, combine
from rl.core.vecenv import DayEpisodeEnv, DayEpisodesVecEnv
from rl.families.propfirm.config import EnvConfig
from rl.families.propfirm.data import FuturesDays
from rl.families.propfirm.rules import (
    closing_peak,
    daily_loss_hit,
    drawdown_breached,
    intraday_peak,
    max_position,
    passed,
    trailing_threshold,
)

COMPONENTS: dict[str, str] = {
    **LEDGER_COMPONENTS,
    "breach": "-1 at the step the account fails (trailing drawdown or a breaching daily loss)",
    "passed": "+1 at the step the account passes (target reached after the qualifying days)",
    "cutoff_flatten": "-1 when the day's cutoff had to close an open position",
    "daily_loss_pause": "-1 when the daily loss limit paused trading for the rest of the day",
    "threshold_room": "change of (balance - threshold) / trailing drawdown this step: room to the drawdown line",
}
COMPONENT_NAMES: tuple[str, ...] = tuple(COMPONENTS)
DONE_REASONS: tuple[str, ...] = (
    "",
    "trailing_drawdown",
    "daily_loss",
    "passed",
    "days_done",
    "end_of_data",
    "bar_limit",
    "cutoff_flatten",
    "daily_loss_pause",
)
TRAILING_DRAWDOWN, DAILY_LOSS, PASSED, DAYS_DONE, END_OF_DATA, BAR_LIMIT, CUTOFF, PAUSED = range(1, 9)
TRUNCATING = frozenset({END_OF_DATA, BAR_LIMIT})
CONTINUING = (CUTOFF, PAUSED)
EVENTS = ("cutoff_flatten", "daily_loss_pause", "invalid_action")
STATE_NAMES: tuple[str, ...] = (
    "position",
    "open_pnl",
    "threshold_room",
    "day_pnl",
    "target_gap",
    "to_entry_cutoff",
    "to_flat",
    "qualifying_days",
)
_ALL = slice(None)


def observation_names(feature_names: Sequence[str]) -> tuple[str, ...]:
    """Name of every observation column, in order (features first, then STATE_NAMES)."""
    return (*feature_names, *STATE_NAMES)


def _windows(days: FuturesDays, cfg: EnvConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per day: the first decision index, the cutoff bar (the last bar starting before flat_by; its close is
    the flat time) and the first bar at or after the entry cutoff, from each bar's local time and date."""
    book = cfg.rulebook
    d, t = days.minute_ns.shape
    local = (
        pl.Series(days.minute_ns.reshape(-1))
        .cast(pl.Datetime("ns"))
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(book.timezone)
    )
    clock = (local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)).to_numpy().reshape(d, t)
    same_day = (local.dt.date().to_numpy().astype("datetime64[D]").reshape(d, t)) == days.dates[:, None]
    valid = np.arange(t)[None, :] < days.bars.length[:, None]

    def minutes(x: Any) -> int:
        return x.hour * 60 + x.minute

    in_window = valid & same_day & (clock >= minutes(cfg.trade_from_time)) & (clock < minutes(book.flat_by_time))
    has = in_window.any(axis=1)
    first = np.where(has, np.argmax(in_window, axis=1), 0)
    last = np.where(has, t - 1 - np.argmax(in_window[:, ::-1], axis=1), 0)
    late = in_window & (clock >= minutes(book.entry_cutoff_time))
    entry_end = np.where(late.any(axis=1), np.argmax(late, axis=1), last + 1)
    short = np.flatnonzero(~has | (last - np.maximum(first, 1) < 1))
    if short.size:
        k = int(short[0])
        raise ValueError(
            f"{days.contracts[k]} on {days.dates[k]} has fewer than two bars between {cfg.trade_from} and "
            f"{book.flat_by} {book.timezone}: {short.size} such day(s); leave them out of the data range"
        )
    return np.maximum(first, 1) - 1, last, entry_end


class _Batch:
    """State and stepping of N accounts over FuturesDays, with array operations only."""

    def __init__(self, days: FuturesDays, cfg: EnvConfig, reward: RewardSpec, n: int) -> None:
        if not isinstance(days, FuturesDays):
            raise TypeError(f"days must be FuturesDays, got {type(days).__name__}")
        if n < 1:
            raise ValueError(f"need at least one env, got {n}")
        from market.symbols import get_symbol

        self.days, self.cfg, self.reward, self.n, self.book = days, cfg, reward, int(n), cfg.rulebook
        n_days, t_max, n_feat = days.bars.features.shape
        self.n_days, self.n_features, self.obs_dim, self._t_max = n_days, n_feat, n_feat + len(STATE_NAMES), t_max
        self.max_pos = int(cfg.max_contracts)
        self.n_actions = 2 * self.max_pos + 1
        specs = [get_symbol(str(c), d.astype(object)) for c, d in zip(days.contracts, days.dates, strict=True)]
        self._terms = contract_terms(
            days.contracts,
            shares=1,
            contracts=1,
            commission_per_share=0.0,
            commission_per_contract=cfg.commission_per_contract,
            min_commission=0.0,
        )
        micro = np.array([bool(s.underlying) for s in specs])
        self._limit = np.minimum(self.max_pos, [max_position(self.book, m) for m in micro]).astype(np.int64)
        self._mask_table = self._masks_by_state()
        slip = np.array([s.tick for s in specs]) * float(cfg.slippage_ticks)
        ext = np.zeros((n_days * t_max, self.obs_dim), dtype=np.float32)
        ext[:, :n_feat] = days.bars.features.reshape(-1, n_feat)
        self._obs_rows = ext
        self._open = np.ascontiguousarray(days.bars.open.reshape(-1))
        self._close = np.ascontiguousarray(days.bars.close.reshape(-1))
        self._high = np.ascontiguousarray(days.high.reshape(-1))
        self._low = np.ascontiguousarray(days.low.reshape(-1))
        self._spread = np.ascontiguousarray((days.bars.spread + 2.0 * slip[:, None]).reshape(-1))
        self._start, self._last, self._entry_end = _windows(days, cfg)
        self._span = np.maximum(self._last - self._start, 1).astype(np.float64)
        self._next = days.next_day()
        self.ledger = Ledger(self.n, self._judge, continuing=CONTINUING)
        z = np.zeros
        self.day = z(n, dtype=np.int64)
        self.t = z(n, dtype=np.int64)
        self._base = z(n, dtype=np.int64)
        self._stop_t = np.full(n, -1, dtype=np.int64)  # bar_limit: the last decision index of a short window
        self.peak = z(n)  # the balance the threshold trails
        self.threshold = z(n)
        self.day_start = z(n)  # equity (net P&L) at the day's open
        self.traded_today = z(n, dtype=bool)
        self.trading_days = z(n, dtype=np.int64)  # completed days with a trade
        self.days_done = z(n, dtype=np.int64)
        self.day_pnl = z((n, n_days))  # each completed day's net P&L, in order
        self.events = z((n, len(EVENTS)), dtype=np.int64)
        self.finished = z(n, dtype=bool)
        self._pending: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------------------------------- episodes
    def reset(
        self, sel: slice | np.ndarray, day: np.ndarray, rngs: Sequence[np.random.Generator] | None = None
    ) -> None:
        """Open fresh accounts on `day` (array of day indices) for the selected envs. With `episode_bars`, each
        starts at a random decision of its day drawn from `rngs` (one per selected env) and stops 20-30 bars on."""
        day = np.asarray(day, dtype=np.int64)
        if day.size and (day.min() < 0 or day.max() >= self.n_days):
            raise ValueError(f"day index out of range [0, {self.n_days})")
        t0 = self._start[day].copy()
        stop = np.full(day.size, -1, dtype=np.int64)
        if self.cfg.episode_bars is not None:
            lo, hi = self.cfg.episode_bars
            if rngs is None or len(rngs) != day.size:
                raise ValueError("episode_bars needs one generator per env to draw the windows")
            for j, rng in enumerate(rngs):
                last_decision = self._last[day[j]] - 1
                t0[j] = int(rng.integers(t0[j], max(t0[j], last_decision - lo + 1) + 1))  # the window fits the day
                stop[j] = min(t0[j] + int(rng.integers(lo, hi + 1)) - 1, last_decision)
        self._enter(sel, day, t0)
        self._stop_t[sel] = stop
        start = self.book.start_balance
        self.peak[sel] = start
        self.threshold[sel] = trailing_threshold(start, self.book)
        self.day_start[sel] = 0.0
        self.traded_today[sel] = False
        self.trading_days[sel] = 0
        self.days_done[sel] = 0
        self.day_pnl[sel] = 0.0
        self.events[sel] = 0
        self.finished[sel] = False
        self.ledger.reset(sel, self._close[day * self._t_max + t0], **self._terms.at(day))

    def _enter(self, sel: slice | np.ndarray, day: np.ndarray, t0: np.ndarray) -> None:
        self.day[sel] = day
        self.t[sel] = t0
        self._base[sel] = day * self._t_max

    def _close_day(self, idx: np.ndarray) -> None:
        """Record the day that accounts `idx` just finished: its net P&L, and whether it was a trading day."""
        pnl = self.ledger.equity[idx] - self.day_start[idx]
        self.day_pnl[idx, np.minimum(self.days_done[idx], self.n_days - 1)] = pnl
        self.days_done[idx] += 1
        self.trading_days[idx] += self.traded_today[idx]

    def _next_day(self, idx: np.ndarray) -> None:
        """Close the day of accounts `idx` (flat by now) and open their root's next trading day."""
        led = self.ledger
        self._close_day(idx)
        if self.book.trailing == "end_of_day":
            self.peak[idx] = closing_peak(self.peak[idx], self.book.start_balance + led.equity[idx])
            self.threshold[idx] = trailing_threshold(self.peak[idx], self.book)
        self.day_start[idx] = led.equity[idx]
        self.traded_today[idx] = False
        day = self._next[self.day[idx]]
        t0 = self._start[day]
        self._enter(idx, day, t0)
        led.mark[idx] = self._close[day * self._t_max + t0]

    # ------------------------------------------------------------------------------------------- rules
    def _judge(self, sel: slice | np.ndarray, eq_mark: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """The ledger's exit rule: this step's done code per selected account (see the module docstring)."""
        p = self._pending
        book = self.book
        q1 = p["target"] * self.ledger.exposure(sel)
        up, down = q1 * (p["high"] - p["close"]), q1 * (p["low"] - p["close"])
        eq_hi, eq_lo = eq_mark + np.maximum(up, down), eq_mark + np.minimum(up, down)
        start = book.start_balance
        peak = intraday_peak(self.peak[sel], start + eq_hi, book)
        threshold = trailing_threshold(peak, book)
        breach = drawdown_breached(start + eq_lo, threshold) & self.cfg.enforce_drawdown
        loss = daily_loss_hit(eq_lo - self.day_start[sel], book)
        traded = self.traded_today[sel] | (p["target"] != p["pos0"]) | (p["pos0"] != 0)
        done = passed(start + eq_mark, self.trading_days[sel] + traded, book)
        days_left = self._next[self.day[sel]] >= 0
        limit = self.cfg.episode_days
        last_day = np.zeros_like(days_left) if limit is None else self.days_done[sel] + 1 >= limit
        pause = loss & (book.daily_loss_action == "pause")
        day_over = p["cutoff"] | pause
        day_code = np.where(pause, np.int8(PAUSED), np.int8(CUTOFF))
        code = np.where(day_over, np.where(last_day, np.int8(DAYS_DONE), day_code), np.int8(0))
        code = np.where(day_over & ~days_left & ~last_day, np.int8(END_OF_DATA), code)
        code = np.where(truncated & (code != DAYS_DONE), np.int8(BAR_LIMIT), code)
        code = np.where(done, np.int8(PASSED), code)
        if book.daily_loss_action == "breach":
            code = np.where(loss, np.int8(DAILY_LOSS), code)
        code = np.where(breach, np.int8(TRAILING_DRAWDOWN), code)
        p["peak"], p["threshold"], p["traded"] = peak, threshold, traded
        return code

    # ------------------------------------------------------------------------------------------- stepping
    def observe(self, sel: slice | np.ndarray = _ALL) -> np.ndarray:
        """A fresh float32 [k, obs_dim] observation of the selected envs (see the module docstring)."""
        t = self.t[sel]
        day = self.day[sel]
        obs = self._obs_rows.take(self._base[sel] + t, axis=0)
        f, book, led, scale = self.n_features, self.book, self.ledger, self.cfg.pnl_scale
        balance = book.start_balance + led.equity[sel]
        day_unit = book.daily_loss_limit or book.trailing_drawdown
        span = self._span[day]
        obs[:, f] = led.pos[sel] / self.max_pos
        obs[:, f + 1] = led.unrealized(sel) / scale
        obs[:, f + 2] = (balance - self.threshold[sel]) / book.trailing_drawdown
        obs[:, f + 3] = (led.equity[sel] - self.day_start[sel]) / day_unit
        obs[:, f + 4] = (book.start_balance + book.profit_target - balance) / book.profit_target
        obs[:, f + 5] = np.maximum(self._entry_end[day] - 1 - t, 0) / span
        obs[:, f + 6] = (self._last[day] - t) / span
        obs[:, f + 7] = np.minimum((self.trading_days[sel] + self.traded_today[sel]) / book.qualifying_days, 1.0)
        return obs

    def _masks_by_state(self) -> np.ndarray:
        """Valid actions for every (size limit, after the entry cutoff, position): [(N+1) * 2 * (2N+1), 2N+1]."""
        n = self.max_pos
        target = np.arange(-n, n + 1)
        limit, late, pos = np.meshgrid(np.arange(n + 1), [False, True], target, indexing="ij")
        limit, late, pos = limit[..., None], late[..., None], pos[..., None]
        reducing = (np.abs(target) <= np.abs(pos)) & (target * pos >= 0)
        table = (np.abs(target) <= limit) & (~late | reducing)
        return table.reshape(-1, self.n_actions)

    def _state_rows(self, sel: slice | np.ndarray) -> np.ndarray:
        day = self.day[sel]
        late = self.t[sel] + 1 >= self._entry_end[day]
        return (self._limit[day] * 2 + late) * self.n_actions + self.ledger.pos[sel] + self.max_pos

    def masks(self, sel: slice | np.ndarray = _ALL) -> np.ndarray:
        """A fresh bool [k, 2N+1] array of valid actions (see the module docstring)."""
        mask = self._mask_table.take(self._state_rows(sel), axis=0)
        done = self.finished[sel]
        if done.any():
            mask[done] = False
            mask[done, self.max_pos] = True
        return mask

    def step(
        self, sel: slice | np.ndarray, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Apply one action per selected env; returns components, rewards and the done codes that end episodes."""
        t, day, led = self.t[sel], self.day[sel], self.ledger
        pos0 = led.pos[sel]
        target = actions - self.max_pos
        ok = self._mask_table.reshape(-1).take(self._state_rows(sel) * self.n_actions + actions)
        target = np.where(ok, target, pos0)
        g = self._base[sel] + t + 1
        stop = self._stop_t[sel]
        self._pending = {
            "target": target,
            "pos0": pos0,
            "high": self._high.take(g),
            "low": self._low.take(g),
            "close": self._close.take(g),
            "cutoff": t + 1 >= self._last[day],
        }
        room0 = self.book.start_balance + led.equity[sel] - self.threshold[sel]
        comps, code = led.step(sel, target, self._open.take(g), self._close.take(g), self._spread.take(g), t == stop)
        p = self._pending
        self.peak[sel] = p["peak"]
        self.threshold[sel] = p["threshold"]
        self.traded_today[sel] = p["traded"]
        self.t[sel] = t + 1
        flattened = (code == CUTOFF) & (target != 0)
        paused = code == PAUSED
        self.events[sel, 0] += flattened
        self.events[sel, 1] += paused
        self.events[sel, 2] += ~ok
        room1 = self.book.start_balance + led.equity[sel] - self.threshold[sel]
        comps = {
            **comps,
            "breach": -np.isin(code, (TRAILING_DRAWDOWN, DAILY_LOSS)).astype(np.float64),
            "passed": (code == PASSED).astype(np.float64),
            "cutoff_flatten": -flattened.astype(np.float64),
            "daily_loss_pause": -paused.astype(np.float64),
            "threshold_room": (room1 - room0) / self.book.trailing_drawdown,
        }
        rolling = np.isin(code, CONTINUING)
        if rolling.any():
            self._next_day(np.arange(self.n)[sel][rolling])
        ends = np.where(rolling, np.int8(0), code)
        if (ends != 0).any():  # the last day of an episode counts like any other
            self._close_day(np.arange(self.n)[sel][ends != 0])
        return comps, combine(self.reward, comps), ends


def _end_info(core: _Batch, i: int, code: int) -> dict[str, Any]:
    led = core.ledger
    return {
        "net_pnl": float(led.equity[i]),
        "done_reason": DONE_REASONS[code],
        "days": int(core.days_done[i]),
        "trading_days": int(core.trading_days[i]),
        "round_trips": int(led.round_trips[i]),
        "passed": bool(code == PASSED),
        "breached": bool(code in (TRAILING_DRAWDOWN, DAILY_LOSS)),
        **{name: int(core.events[i, k]) for k, name in enumerate(EVENTS)},
    }


class PropFirmEnv(DayEpisodeEnv):
    """One funded account per episode (module doc); Discrete(2N+1): a target of -N..N contracts."""

    COMPONENTS = COMPONENT_NAMES
    TRUNCATING = TRUNCATING

    def __init__(self, days: FuturesDays, env_cfg: EnvConfig, reward: RewardSpec, day_index: int | None = None):
        core = _Batch(days, env_cfg, reward, 1)
        super().__init__(core, days, env_cfg, reward, day_index, core.n_actions)

    def _reset_info(self, day: int) -> dict[str, Any]:
        return _reset_info(self.days, day)

    def _end_info(self, code: int) -> dict[str, Any]:
        return _end_info(self._core, 0, code)


def _reset_info(days: FuturesDays, day: int) -> dict[str, Any]:
    return {"day_index": day, "root": str(days.roots[day]), "contract": str(days.contracts[day]),
            "session_date": str(days.dates[day])}  # fmt: skip


class PropFirmVecEnv(DayEpisodesVecEnv):
    """N accounts stepped together with array operations (SB3 VecEnv, auto-reset, masks as one array).

    Env i draws its start days from `gymnasium.utils.seeding.np_random(seed + i)`, exactly like
    `PropFirmEnv.reset(seed=seed + i)`. With `fixed_days`, env i always opens on day `fixed_days[i]`; with
    `auto_reset=False` (evaluation) a finished env stays finished until `reset()`.
    """

    _PER_ENV = {"day_index": "day", "t": "t", "days_done": "days_done"}
    _PER_LEDGER = {"position": "pos", "net_pnl": "equity"}
    STATE_ATTRS = frozenset({*_PER_ENV, *_PER_LEDGER, "done_mask"})
    COMPONENTS = COMPONENT_NAMES
    TRUNCATING = TRUNCATING

    def __init__(
        self,
        days: FuturesDays,
        env_cfg: EnvConfig,
        reward: RewardSpec,
        n_envs: int,
        seed: int | None = 0,
        fixed_days: np.ndarray | Sequence[int] | None = None,
        auto_reset: bool = True,
    ) -> None:
        core = _Batch(days, env_cfg, reward, n_envs)
        super().__init__(core, days, env_cfg, reward, n_envs, seed, fixed_days, auto_reset, core.n_actions)

    def _reset_info(self, day: int) -> dict[str, Any]:
        return _reset_info(self.days, day)

    def _end_info(self, i: int, code: int) -> dict[str, Any]:
        return _end_info(self._core, i, code)
