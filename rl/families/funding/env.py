"""Funding-arbitrage environments: a Gymnasium env and an SB3 VecEnv stepping N of them with array operations.

Both run the same `_Batch` core (the single env is a batch of one) and get every dollar from the
family's `FundingLedger`, so `FundingVecEnv(seed=s)` env i reproduces `FundingEnv.reset(seed=s + i)`.

Episode: `episode_hours` hourly decisions from a random start hour, with a random TradingConfig (when
`sample_config`), both drawn from the env's np_random (config first, then start). The end of the episode closes
every position and is `terminated` (like the intraday session close); so is an equity wipe-out.

Actions Discrete(1 + K + P): 0 hold; 1..K enter opportunity k-1 of this hour's top-K (each symbol's best
pair by APR from `rate_now` at t, one pair per symbol: long the lower-APR leg, short the higher, both available,
APR > 0; no look-ahead); K+1..K+P exit
slot j. Masks: enter needs a listed opportunity and a free slot below max_positions; exit needs an open slot.
A masked action sent anyway does nothing.

Observation (float32), in `observation_names()` order:
CONFIG_FEATURES (5), ACCOUNT_FEATURES (3), then per opportunity k OPP_FEATURES (7), then per slot j
SLOT_FEATURES (5): 8 + 7K + 5P columns. Everything in it is known at snapshot t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs

from rl.core.reward import RewardSpec, combine
from rl.core.vecenv import BatchedVecEnv, check_actions
from rl.families.funding.accounting import COMPONENT_NAMES, DONE_REASONS, FundingLedger
from rl.families.funding.config import FundingEnvConfig, TradingConfig
from rl.families.funding.data import FundingDays

HOLD = 0
CONFIG_FEATURES: tuple[str, ...] = (
    "leverage_div10",
    "target_utilization",
    "max_positions_div5",
    "liquidation_buffer",
    "taker_fee_bps_div10",
)
ACCOUNT_FEATURES: tuple[str, ...] = ("equity_change_pct", "open_fraction", "episode_fraction")
OPP_FEATURES: tuple[str, ...] = (
    "valid",
    "apr",  # short APR - long APR (fraction per year), clipped to +-5
    "apr_mean_24h",  # the same pair's APR averaged over the last 24 hours up to t (persistence), clipped to +-5
    "half_spreads_pct",  # sum of both legs' half-spread / mark, in percent
    "long_interval_div8",
    "short_interval_div8",
    "log10_min_volume_div10",
    "symbol_held",  # 1 when an open slot already holds this symbol
)
SLOT_FEATURES: tuple[str, ...] = ("active", "trip_pnl_pct", "apr_now", "hours_held_fraction", "notional_fraction")
_ALL = slice(None)
_APR_CLIP = 5.0  # 500% APR: anomalous quotes of 1,000-4,000% would otherwise swamp the inputs
PERSISTENCE_HOURS = 24


def trailing_mean(values: np.ndarray, hours: int) -> np.ndarray:
    """Mean over the last `hours` snapshots up to and including t, per cell, ignoring NaN (NaN if none): [T, ...]."""
    finite = np.isfinite(values)
    zero = np.zeros((1, *values.shape[1:]))
    total = np.concatenate([zero, np.cumsum(np.where(finite, values, 0.0), axis=0)])
    count = np.concatenate([zero, np.cumsum(finite, axis=0)])
    lo = np.maximum(np.arange(values.shape[0]) + 1 - hours, 0)
    n = count[1:] - count[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (total[1:] - total[lo]) / n, np.nan)


def n_actions(cfg: FundingEnvConfig) -> int:
    """1 (hold) + top_k (enter) + slots (exit)."""
    return 1 + cfg.top_k + cfg.slots


def observation_names(cfg: FundingEnvConfig) -> tuple[str, ...]:
    """Name of every observation column, in order."""
    opp = tuple(f"opp{k}_{f}" for k in range(cfg.top_k) for f in OPP_FEATURES)
    slot = tuple(f"slot{j}_{f}" for j in range(cfg.slots) for f in SLOT_FEATURES)
    return (*CONFIG_FEATURES, *ACCOUNT_FEATURES, *opp, *slot)


@dataclass(frozen=True)
class Opportunities:
    """Each hour's top-K cross-exchange pairs, ranked by APR from rate_now at that hour: arrays [T, K]."""

    sym: np.ndarray  # int64 symbol index
    long_x: np.ndarray  # int64 exchange of the long (lower-APR) leg
    short_x: np.ndarray  # int64 exchange of the short (higher-APR) leg
    apr: np.ndarray  # float64 short APR - long APR (0 where invalid)
    valid: np.ndarray  # bool
    features: np.ndarray  # float32 [T, K, len(OPP_FEATURES) - 1] (all but symbol_held)


def rank_opportunities(days: FundingDays, top_k: int) -> Opportunities:
    """Each symbol's best pair at hour t, then the top-K symbols by that APR (stable order on ties).

    One pair per symbol: ranked over all (symbol, long, short) triples, a few illiquid symbols quoting huge APRs on
    every venue pair would fill all K rows and hide every liquid opportunity (measured: the synthetic market's
    three anomalous symbols took all top-8 rows in every hour). Only data at hour t is used for hour t.
    """
    n_t, n_s, n_x = days.mark.shape
    apr = days.apr_now
    pair = apr[:, :, None, :] - apr[:, :, :, None]  # [T, S, long a, short b] = apr_b - apr_a
    ok = np.isfinite(pair) & (pair > 0.0) & ~np.eye(n_x, dtype=bool)[None, None]
    per_pair = np.where(ok, pair, -np.inf).reshape(n_t, n_s, n_x * n_x)
    best_pair = np.argmax(per_pair, axis=2)  # first maximum: stable
    per_symbol = np.take_along_axis(per_pair, best_pair[:, :, None], axis=2)[:, :, 0]
    order = np.argsort(-per_symbol, axis=1, kind="stable")[:, :top_k]
    if order.shape[1] < top_k:
        order = np.pad(order, ((0, 0), (0, top_k - order.shape[1])), constant_values=0)
    best = np.take_along_axis(per_symbol, order, axis=1)
    valid = np.isfinite(best)
    if n_s < top_k:
        valid[:, n_s:] = False
    sym = order
    long_x, short_x = np.divmod(np.take_along_axis(best_pair, order, axis=1), n_x)
    t = np.arange(n_t)[:, None]
    mark = days.mark[t, sym, long_x], days.mark[t, sym, short_x]
    half = 0.5 * (days.ask - days.bid)
    hs = half[t, sym, long_x] / mark[0] + half[t, sym, short_x] / mark[1]
    vol = np.minimum(days.volume_24h[t, sym, long_x], days.volume_24h[t, sym, short_x])
    mean24 = trailing_mean(apr, PERSISTENCE_HOURS)
    persistent = np.nan_to_num(mean24[t, sym, short_x] - mean24[t, sym, long_x], nan=0.0)
    feats = np.stack(
        [
            valid.astype(np.float64),
            np.clip(np.where(valid, best, 0.0), -_APR_CLIP, _APR_CLIP),
            np.clip(np.where(valid, persistent, 0.0), -_APR_CLIP, _APR_CLIP),
            np.where(valid, hs * 100.0, 0.0),
            np.where(valid, days.interval_h[t, sym, long_x] / 8.0, 0.0),
            np.where(valid, days.interval_h[t, sym, short_x] / 8.0, 0.0),
            np.where(valid, np.log10(np.maximum(np.nan_to_num(vol, nan=1.0), 1.0)) / 10.0, 0.0),
        ],
        axis=-1,
    )
    return Opportunities(
        sym=np.where(valid, sym, 0),
        long_x=np.where(valid, long_x, 0),
        short_x=np.where(valid, short_x, 1),
        apr=np.where(valid, best, 0.0),
        valid=valid,
        features=np.nan_to_num(feats).astype(np.float32),
    )


class _Batch:
    """State and stepping of N funding envs over one FundingDays, with array operations only."""

    def __init__(self, days: FundingDays, cfg: FundingEnvConfig, reward: RewardSpec, n: int) -> None:
        if not isinstance(days, FundingDays):
            raise TypeError(f"days must be a FundingDays, got {type(days).__name__}")
        if days.n_hours < cfg.episode_hours + 1:
            raise ValueError(
                f"days has {days.n_hours} hours; episode_hours={cfg.episode_hours} needs at least "
                f"{cfg.episode_hours + 1}"
            )
        if n < 1:
            raise ValueError(f"need at least one env, got {n}")
        self.days, self.cfg, self.reward, self.n = days, cfg, reward, int(n)
        self.k, self.p = cfg.top_k, cfg.slots
        self.n_actions = n_actions(cfg)
        self.obs_dim = len(observation_names(cfg))
        self.opp = rank_opportunities(days, cfg.top_k)
        self._apr = np.nan_to_num(days.apr_now, nan=0.0).reshape(-1)
        self._s, self._x = len(days.symbols), len(days.exchanges)
        self.ledger = FundingLedger(days, self.n, cfg.slots, cfg.wipeout_fraction)
        self.start = np.zeros(n, dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)
        self.finished = np.zeros(n, dtype=bool)
        self._cfg_obs = np.zeros((n, len(CONFIG_FEATURES)), dtype=np.float32)
        self.configs: list[TradingConfig] = [cfg.trading] * n

    def draw(self, rng: np.random.Generator) -> tuple[TradingConfig, int]:
        """An episode's TradingConfig and start hour from `rng` (config first, then start)."""
        trading = self.cfg.trading.sample(rng) if self.cfg.sample_config else self.cfg.trading
        return trading, int(rng.integers(self.days.n_hours - self.cfg.episode_hours))

    def reset(self, idx: np.ndarray, configs: Sequence[TradingConfig], starts: np.ndarray) -> None:
        """Start the envs `idx` flat at hour `starts` with their configs."""
        starts = np.asarray(starts, dtype=np.int64)
        if starts.size and (starts.min() < 0 or starts.max() > self.days.n_hours - 1 - self.cfg.episode_hours):
            raise ValueError(f"start hour out of range [0, {self.days.n_hours - 1 - self.cfg.episode_hours}]")
        for i, c in zip(idx.tolist(), configs, strict=True):
            self.configs[i] = c

        def col(name: str) -> np.ndarray:
            return np.array([getattr(c, name) for c in configs], dtype=np.float64)

        lev, util, npos = col("leverage"), col("target_utilization"), col("max_positions")
        buf, fee = col("liquidation_buffer"), col("taker_fee_bps")
        self.ledger.configure(
            idx, lev, util, npos.astype(np.int64), buf, fee, col("liquidation_fee_bps"), col("initial_equity")
        )
        self._cfg_obs[idx] = np.stack([lev / 10.0, util, npos / 5.0, buf, fee / 10.0], axis=1)
        self.start[idx] = starts
        self.t[idx] = starts
        self.finished[idx] = False

    def observe(self, sel: slice | np.ndarray = _ALL) -> np.ndarray:
        """A fresh float32 [k, obs_dim] observation of the selected envs (see the module docstring)."""
        led, cfg = self.ledger, self.cfg
        t = self.t[sel]
        k = t.shape[0]
        active = led.active[sel]
        sym = led.sym[sel]
        eq0 = led.equity0[sel]
        opp_sym = self.opp.sym[t]
        held = (active[:, None, :] & (opp_sym[:, :, None] == sym[:, None, :])).any(axis=2)
        opp = np.concatenate([self.opp.features[t], held[:, :, None].astype(np.float32)], axis=2)
        cell = (t[:, None] * self._s + sym) * self._x
        apr = np.clip(self._apr.take(cell + led.xs[sel]) - self._apr.take(cell + led.xl[sel]), -_APR_CLIP, _APR_CLIP)
        act = active.astype(np.float64)
        slot = np.stack(
            [
                act,
                act * led.trip_pnl[sel] / eq0[:, None] * 100.0,
                act * apr,
                act * (t[:, None] - led.opened[sel]) / cfg.episode_hours,
                act * led.notional[sel] / eq0[:, None],
            ],
            axis=2,
        )
        account = np.stack(
            [
                (led.equity[sel] / eq0 - 1.0) * 100.0,
                active.sum(axis=1) / self.p,
                (t - self.start[sel]) / cfg.episode_hours,
            ],
            axis=1,
        )
        return np.concatenate(
            [self._cfg_obs[sel], account.astype(np.float32), opp.reshape(k, -1), slot.reshape(k, -1)],
            axis=1,
            dtype=np.float32,
        )

    def masks(self, sel: slice | np.ndarray = _ALL) -> np.ndarray:
        """A fresh bool [k, 1 + K + P] array of valid actions."""
        led = self.ledger
        running = ~self.finished[sel]
        active = led.active[sel]
        room = running & (active.sum(axis=1) < led.max_positions[sel])
        out = np.empty((running.shape[0], self.n_actions), dtype=bool)
        out[:, 0] = True
        out[:, 1 : 1 + self.k] = self.opp.valid[self.t[sel]] & room[:, None]
        out[:, 1 + self.k :] = active & running[:, None]
        return out

    def step(
        self, sel: slice | np.ndarray, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Apply one action per selected env; returns raw components, rewards and done codes."""
        t = self.t[sel]
        k_idx = np.clip(actions - 1, 0, self.k - 1)
        enter = (actions >= 1) & (actions <= self.k) & self.opp.valid[t, k_idx]
        exit_slot = np.where(actions > self.k, actions - 1 - self.k, -1)
        comps, code = self.ledger.step(
            sel,
            t,
            exit_slot,
            enter,
            self.opp.sym[t, k_idx],
            self.opp.long_x[t, k_idx],
            self.opp.short_x[t, k_idx],
            self.opp.apr[t, k_idx],
            t + 1 - self.start[sel] >= self.cfg.episode_hours,
        )
        self.t[sel] = t + 1
        return comps, combine(self.reward, comps), code


def _reset_info(days: FundingDays, start: int, trading: TradingConfig) -> dict[str, Any]:
    return {"start": start, "start_time": str(days.timeline[start]), "trading": trading.to_dict()}


def _end_info(led: FundingLedger, i: int, code: int) -> dict[str, Any]:
    return {
        "done_reason": DONE_REASONS[code],
        "round_trips": int(led.round_trips[i]),
        "wins": int(led.wins[i]),
        "liquidations": int(led.liquidations[i]),
        "gross": float(led.gross[i]),
        "total_fees": float(led.fees[i]),
        "total_funding": float(led.funding[i]),
    }


class FundingEnv(gym.Env):
    """One account trading cross-exchange funding pairs over `episode_hours` hours (module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, days: FundingDays, env_cfg: FundingEnvConfig, reward: RewardSpec) -> None:
        super().__init__()
        self._core = _Batch(days, env_cfg, reward, 1)
        self.days, self.env_cfg, self.reward = days, env_cfg, reward
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self._core.obs_dim,), dtype=np.float32)
        self.action_space = spaces.Discrete(self._core.n_actions)
        self.render_mode = None
        self._done = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Draw a TradingConfig and a start hour from np_random; `options` may fix `start` and/or `trading`."""
        super().reset(seed=seed)
        trading, start = self._core.draw(self.np_random)
        options = options or {}
        trading = options.get("trading", trading)
        start = int(options.get("start", start))
        self._core.reset(np.array([0]), [trading], np.array([start]))
        self._done = False
        return self._get_obs(), _reset_info(self.days, start, trading)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One hour; info has the raw components, `equity` and `net_pnl` (equity change this episode)."""
        if self._done:
            raise RuntimeError("the episode has ended; call reset() before step()")
        a = check_actions(action, 1, self._core.n_actions)
        comps, reward, code = self._core.step(_ALL, a)
        led = self._core.ledger
        c = int(code[0])
        info: dict[str, Any] = {name: float(comps[name][0]) for name in COMPONENT_NAMES}
        info["equity"] = float(led.equity[0])
        info["net_pnl"] = float(led.equity[0] - led.equity0[0])
        info["open_positions"] = int(led.active[0].sum())
        if c:
            self._done = True
            self._core.finished[0] = True
            info.update(_end_info(led, 0, c))
        return self._get_obs(), float(reward[0]), c > 0, False, info

    def _get_obs(self) -> np.ndarray:
        return self._core.observe()[0]

    def action_masks(self) -> np.ndarray:
        """Valid actions now: bool (1 + K + P,) (a fresh array)."""
        return self._core.masks()[0]


class FundingVecEnv(BatchedVecEnv):
    """N funding envs stepped together with array operations (SB3 VecEnv, auto-reset, masks as one array).

    Env i draws configs and start hours from `gymnasium.utils.seeding.np_random(seed + i)`, exactly like
    `FundingEnv.reset(seed=seed + i)`. With `fixed_starts`, env i always starts at hour fixed_starts[i] (its
    config is still drawn). With `auto_reset=False` (evaluation), a finished env stays finished (`done_mask`),
    its observation frozen, rewards 0 and only HOLD valid, until `reset()`.
    Per-step arrays [N] of the step just taken (before any auto-reset): `last_components`, `last_rewards`,
    `last_net_pnl`, `last_done_code`. An env that finished gets an info with `terminal_observation`,
    `TimeLimit.truncated`, the components and episode totals; the others share one read-only empty dict.
    """

    STATE_ATTRS = frozenset({"configs", "t", "start", "done_mask"})
    COMPONENTS = COMPONENT_NAMES

    def __init__(
        self,
        days: FundingDays,
        env_cfg: FundingEnvConfig,
        reward: RewardSpec,
        n_envs: int,
        seed: int | None = 0,
        fixed_starts: np.ndarray | Sequence[int] | None = None,
        auto_reset: bool = True,
    ) -> None:
        self._core = _Batch(days, env_cfg, reward, n_envs)
        self.days, self.env_cfg, self.reward = days, env_cfg, reward
        latest = days.n_hours - 1 - env_cfg.episode_hours
        self.fixed_starts = self.fixed_indices(fixed_starts, n_envs, latest, "fixed_starts")
        self._init_batched(n_envs, self._core.obs_dim, self._core.n_actions, seed, auto_reset)

    @property
    def ledger(self) -> FundingLedger:
        """The accounts (slots, equity, totals) of all envs."""
        return self._core.ledger

    def _draw(self, idx: Sequence[int]) -> tuple[list[TradingConfig], np.ndarray]:
        configs, starts = [], np.empty(len(idx), dtype=np.int64)
        for j, i in enumerate(idx):
            trading, start = self._core.draw(self._rngs[i])
            opts = self._options[i] or {}
            configs.append(opts.get("trading", trading))
            if "start" in opts:
                start = int(opts["start"])
            elif self.fixed_starts is not None:
                start = int(self.fixed_starts[i])
            starts[j] = start
        return configs, starts

    def reset(self) -> VecEnvObs:
        """Reset every env (seeds from `seed()` and options from `set_options()` apply here, then clear)."""
        n = self.num_envs
        for i in range(n):
            if self._seeds[i] is not None:
                self._rngs[i] = seeding.np_random(self._seeds[i])[0]
        idx = np.arange(n)
        configs, starts = self._draw(range(n))
        self._core.reset(idx, configs, starts)
        self.done_mask[:] = False
        self.reset_infos = [_reset_info(self.days, int(s), c) for s, c in zip(starts, configs, strict=True)]
        self._reset_seeds()
        self._reset_options()
        self._obs = self._core.observe()
        return self._obs

    def _net_pnl(self, comps: dict[str, np.ndarray]) -> np.ndarray:
        return self._core.ledger.equity - self._core.ledger.equity0

    def _end_info(self, i: int, code: int) -> dict[str, Any]:
        led = self._core.ledger
        return {
            "equity": float(led.equity[i]),
            "net_pnl": float(led.equity[i] - led.equity0[i]),
            "open_positions": 0,
            **_end_info(led, i, code),
        }

    def decision_state(self) -> dict[str, np.ndarray]:
        """Open two-leg positions per env, and for an entry the mean of its two legs' entry marks (NaN otherwise:
        an exit's legs close at marks of different exchanges, shown in its P&L)."""
        led = self._core.ledger
        fill = np.full(self.num_envs, np.nan)
        entered = np.flatnonzero(led.entered_sym >= 0)
        if entered.size:
            slot = np.argmax(np.where(led.active[entered], led.opened[entered], -1), axis=1)
            fill[entered] = 0.5 * (led.entry_l[entered, slot] + led.entry_s[entered, slot])
        return {"position": led.active.sum(axis=1).astype(np.float64), "fill_price": fill}

    def _restart(self, idx: np.ndarray) -> None:
        configs, starts = self._draw(idx.tolist())
        self._core.reset(idx, configs, starts)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Per-env `configs`, `t`, `start`, `done_mask`; other attributes are shared."""
        idx = list(self._get_indices(indices))
        if attr_name == "configs":
            return [self._core.configs[i] for i in idx]
        if attr_name in ("t", "start"):
            values = getattr(self._core, attr_name)
            return [values[i].item() for i in idx]
        if attr_name == "done_mask":
            return [bool(self.done_mask[i]) for i in idx]
        value = getattr(self, attr_name)
        return [value for _ in idx]
