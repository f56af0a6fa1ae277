"""Intraday trading environments: a Gymnasium env and an SB3 VecEnv stepping N of them with array operations.

Both run the same `_Batch` core (the single env is a batch of one) and get every dollar from the
family's `Ledger`, so `IntradayVecEnv(seed=s)` env i reproduces `IntradayEnv.reset(seed=s + i)` exactly.

Timing (no look-ahead): the decision at index t sees features[t] (bar t is complete), the position, the open
trip's P&L, the day's net P&L and the time of day; it fills at open[t+1] +/- spread[t+1]/2 and is marked at
close[t+1].
Every ending is `terminated`: the loss cut and the profit lock, and the session close too, where the position is
liquidated and nothing lies beyond, so no value is bootstrapped past it. Nothing here is `truncated`.
Observation layout (float32): [features[t] (F columns, in `feature_names` order), position (-1/0/1),
unrealized P&L / pnl_scale, day net P&L / pnl_scale, fraction of the day elapsed t / (length - 1)].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rl.core.accounting import contract_terms
from rl.core.data import MarketDays
from rl.core.reward import RewardSpec, combine
from rl.core.vecenv import DayEpisodeEnv, DayEpisodesVecEnv
from rl.families.intraday.accounting import COMPONENT_NAMES, DONE_REASONS, day_ledger
from rl.families.intraday.config import EnvConfig

HOLD, BUY, SELL, CLOSE = 0, 1, 2, 3
N_ACTIONS = 4
ACTION_NAMES: tuple[str, ...] = ("hold", "buy", "sell", "close")
STATE_NAMES: tuple[str, ...] = ("position", "unrealized_pnl", "day_pnl", "time_fraction")

# _TARGET[(restricted * 4 + action) * 3 + position + 1] -> target position. In the last minutes BUY/SELL are
# invalid (masked); if sent anyway they act as HOLD, so exposure can never grow there.
_TARGET = np.array(
    [
        [[-1, 0, 1], [1, 1, 1], [-1, -1, -1], [0, 0, 0]],
        [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1], [0, 0, 0]],
    ],
    dtype=np.int64,
).reshape(-1)
# _MASKS[state * 3 + position + 1] -> [HOLD, BUY, SELL, CLOSE]; state 0 open, 1 last minutes, 2/3 finished.
_T, _F = True, False
_MASKS = np.array(
    [
        [[_T, _T, _F, _T], [_T, _T, _T, _F], [_T, _F, _T, _T]],
        [[_T, _F, _F, _T], [_T, _F, _F, _F], [_T, _F, _F, _T]],
        [[_T, _F, _F, _F]] * 3,
        [[_T, _F, _F, _F]] * 3,
    ],
    dtype=bool,
).reshape(-1, N_ACTIONS)
_ALL = slice(None)


def observation_names(feature_names: Sequence[str]) -> tuple[str, ...]:
    """Name of every observation column, in order (features first, then STATE_NAMES)."""
    return (*feature_names, *STATE_NAMES)


class _Batch:
    """State and stepping of N intraday accounts over a MarketDays, with array operations only."""

    def __init__(self, days: MarketDays, cfg: EnvConfig, reward: RewardSpec, n: int) -> None:
        if not isinstance(days, MarketDays):
            raise TypeError(f"days must be a MarketDays, got {type(days).__name__}")
        if days.n_days < 1:
            raise ValueError("days is empty")
        need = cfg.warmup_minutes + 2
        if int(days.length.min()) < need:
            short = int(np.argmin(days.length))
            raise ValueError(
                f"day {short} ({days.symbols[short]} {days.dates[short]}) has "
                f"{int(days.length[short])} minutes; "
                f"warmup_minutes={cfg.warmup_minutes} needs at least {need}"
            )
        if n < 1:
            raise ValueError(f"need at least one env, got {n}")
        self.days, self.cfg, self.reward, self.n = days, cfg, reward, int(n)
        n_days, t_max, n_feat = days.features.shape
        self.n_days, self.n_features, self.obs_dim = n_days, n_feat, n_feat + len(STATE_NAMES)
        self._t_max = t_max
        # Features padded with the state columns so one `take` builds the whole observation.
        ext = np.zeros((n_days * t_max, self.obs_dim), dtype=np.float32)
        ext[:, :n_feat] = days.features.reshape(-1, n_feat)
        self._obs_rows = ext
        self._open = np.ascontiguousarray(days.open.reshape(-1))
        self._close = np.ascontiguousarray(days.close.reshape(-1))
        self._spread = np.ascontiguousarray(days.spread.reshape(-1))
        self._day_length = days.length.astype(np.int64)
        self._pnl_scale = float(cfg.pnl_scale)
        self.ledger = day_ledger(self.n, cfg)
        self._terms = contract_terms(
            days.symbols,
            shares=cfg.shares,
            contracts=cfg.contracts,
            commission_per_share=cfg.commission_per_share,
            commission_per_contract=cfg.commission_per_contract,
            min_commission=cfg.min_commission,
        )
        z = np.zeros
        self.day = z(n, dtype=np.int64)
        self.t = z(n, dtype=np.int64)
        self._base = z(n, dtype=np.int64)  # day * T: row of minute 0 in the flat arrays
        self._last = z(n, dtype=np.int64)  # last decision index (length - 2): data ends after it
        self._flat_from = z(n, dtype=np.int64)  # first index whose fill lies in the last flat minutes
        self._span = np.ones(n)  # length - 1, for the time fraction
        self.finished = z(n, dtype=bool)

    def reset(self, sel: slice | np.ndarray, day: np.ndarray, rngs: object = None) -> None:
        """Put the selected envs at the first decision of `day` (array of day indices), flat (`rngs` unused: an
        intraday day always starts at its first decision)."""
        day = np.asarray(day, dtype=np.int64)
        if day.size and (day.min() < 0 or day.max() >= self.n_days):
            raise ValueError(f"day index out of range [0, {self.n_days})")
        length = self._day_length[day]
        start = self.cfg.warmup_minutes
        self.day[sel] = day
        self.t[sel] = start
        self._base[sel] = day * self._t_max
        self._last[sel] = length - 2
        self._flat_from[sel] = length - 1 - self.cfg.flat_minutes_before_close
        self._span[sel] = length - 1
        self.finished[sel] = False
        self.ledger.reset(sel, self._close[day * self._t_max + start], **self._terms.at(day))

    def observe(self, sel: slice | np.ndarray = _ALL) -> np.ndarray:
        """A fresh float32 [k, obs_dim] observation of the selected envs (see the module docstring)."""
        t = self.t[sel]
        obs = self._obs_rows.take(self._base[sel] + t, axis=0)
        f = self.n_features
        led = self.ledger
        obs[:, f] = led.pos[sel]
        obs[:, f + 1] = led.unrealized(sel) / self._pnl_scale
        obs[:, f + 2] = led.equity[sel] / self._pnl_scale
        obs[:, f + 3] = t / self._span[sel]
        return obs

    def masks(self, sel: slice | np.ndarray = _ALL) -> np.ndarray:
        """A fresh bool [k, 4] array of valid actions."""
        state = (self.t[sel] >= self._flat_from[sel]) + 2 * self.finished[sel]
        return _MASKS.take(state * 3 + self.ledger.pos[sel] + 1, axis=0)

    def step(
        self, sel: slice | np.ndarray, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Apply one action per selected env; returns raw components, rewards and done codes."""
        t = self.t[sel]
        restricted = t >= self._flat_from[sel]
        target = _TARGET.take((restricted * 4 + actions) * 3 + self.ledger.pos[sel] + 1)
        g = self._base[sel] + t + 1
        comps, code = self.ledger.step(
            sel,
            target,
            self._open.take(g),
            self._close.take(g),
            self._spread.take(g),
            t >= self._last[sel],
        )
        self.t[sel] = t + 1
        return comps, combine(self.reward, comps), code


class IntradayEnv(DayEpisodeEnv):
    """One account trading one (symbol, day) per episode; Discrete(4): HOLD, BUY, SELL, CLOSE (module doc)."""

    COMPONENTS = COMPONENT_NAMES

    def __init__(self, days: MarketDays, env_cfg: EnvConfig, reward: RewardSpec, day_index: int | None = None) -> None:
        super().__init__(_Batch(days, env_cfg, reward, 1), days, env_cfg, reward, day_index, N_ACTIONS)

    def _reset_info(self, day: int) -> dict[str, Any]:
        return _reset_info(self.days, day)

    def _end_info(self, code: int) -> dict[str, Any]:
        led = self._core.ledger
        return {"done_reason": DONE_REASONS[code], "round_trips": int(led.round_trips[0]), "wins": int(led.wins[0])}


def _reset_info(days: MarketDays, day: int) -> dict[str, Any]:
    return {"day_index": day, "symbol": str(days.symbols[day]), "session_date": str(days.dates[day])}


class IntradayVecEnv(DayEpisodesVecEnv):
    """N intraday envs stepped together with array operations (SB3 VecEnv, auto-reset, masks as one array).

    Env i draws its days from `gymnasium.utils.seeding.np_random(seed + i)`, exactly like
    `IntradayEnv.reset(seed=seed + i)`. With `fixed_days`, env i always plays day `fixed_days[i]`. With
    `auto_reset=False` (evaluation), an env that finishes stays finished (`done_mask`), its observation
    frozen, its rewards 0 and its only valid action HOLD, until `reset()`.

    Infos: an env that finished this step gets a fresh dict with `terminal_observation`,
    `TimeLimit.truncated`, `done_reason`, `net_pnl`, `position`, `round_trips`, `wins` and the step's raw
    components; every other env gets one shared read-only empty dict. Per-step values for all envs are in
    `last_components`, `last_rewards`, `last_net_pnl` and `last_done_code` (arrays [N]: the step just taken,
    before any auto-reset).
    """

    _PER_ENV = {"day_index": "day", "t": "t"}
    _PER_LEDGER = {"position": "pos", "net_pnl": "equity", "round_trips": "round_trips", "wins": "wins"}
    STATE_ATTRS = frozenset({*_PER_ENV, *_PER_LEDGER, "done_mask"})
    COMPONENTS = COMPONENT_NAMES

    def __init__(
        self,
        days: MarketDays,
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
        led = self._core.ledger
        return {
            "net_pnl": float(led.equity[i]),
            "position": 0,
            "done_reason": DONE_REASONS[code],
            "round_trips": int(led.round_trips[i]),
            "wins": int(led.wins[i]),
        }
