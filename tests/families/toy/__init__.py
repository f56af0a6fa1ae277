"""A tiny test family: long or flat one unit of a minute-bar symbol, to prove that a family is one folder.

Registered only inside tests (`rl.core.registry.registered`), it reuses the core's MarketDays, BatchedVecEnv,
rollout loop, episode set, metrics and report helpers, and the warehouse's feature frames. Nothing outside
this folder names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from rl.core.audit import AuditTarget, random_valid_actions
from rl.core.config import from_dict, is_number
from rl.core.data import MarketDays, random_walk_days
from rl.core.evaluate import EpisodeSet
from rl.core.metrics import share_distribution
from rl.core.policies import Policy, random_valid
from rl.core.report import report_head, table, write_report
from rl.core.reward import RewardSpec, combine
from rl.core.rollout import masked_rollout
from rl.core.vecenv import BatchedVecEnv

COMPONENTS = {"pnl": "$ change of the position's value over the minute"}
ACTIONS = ("FLAT", "LONG")
END_OF_DATA = 1


@dataclass(frozen=True)
class ToyEnvConfig:
    units: float = 10.0  # shares held when long
    warmup_minutes: int = 5  # first decision index

    def __post_init__(self) -> None:
        if not is_number(self.units) or self.units <= 0:
            raise ValueError(f"toy env: units must be > 0, got {self.units!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ToyEnvConfig:
        return from_dict(cls, data, where="env")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Batch:
    """N toy accounts over a MarketDays: decision at t sees features[t], is marked from close[t] to close[t+1]."""

    def __init__(self, days: MarketDays, cfg: ToyEnvConfig, reward: RewardSpec, n: int) -> None:
        self.days, self.cfg, self.reward, self.n = days, cfg, reward, n
        self.obs_dim = days.n_features + 1
        self.day = np.zeros(n, dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)
        self.pos = np.zeros(n, dtype=np.int64)
        self.equity = np.zeros(n)
        self.fill = np.full(n, np.nan)  # the last step's fill price (NaN: no trade)
        self.finished = np.zeros(n, dtype=bool)

    def reset(self, sel: Any, day: np.ndarray) -> None:
        self.day[sel], self.t[sel], self.pos[sel], self.equity[sel] = day, self.cfg.warmup_minutes, 0, 0.0
        self.finished[sel] = False

    def observe(self, sel: Any = slice(None)) -> np.ndarray:
        obs = np.empty((len(self.day[sel]), self.obs_dim), dtype=np.float32)
        obs[:, :-1] = self.days.features[self.day[sel], self.t[sel]]
        obs[:, -1] = self.pos[sel]
        return obs

    def masks(self, sel: Any = slice(None)) -> np.ndarray:
        n = len(self.day[sel])
        return np.stack([np.ones(n, dtype=bool), ~self.finished[sel]], axis=1)

    def step(self, sel: Any, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        day, t = self.day[sel], self.t[sel]
        self.fill[sel] = np.where(actions != self.pos[sel], self.days.close[day, t], np.nan)
        self.pos[sel] = actions
        pnl = actions * self.cfg.units * (self.days.close[day, t + 1] - self.days.close[day, t])
        self.equity[sel] += pnl
        self.t[sel] = t + 1
        code = np.where(t + 1 >= self.days.length[day] - 1, END_OF_DATA, 0).astype(np.int8)
        comps = {"pnl": pnl}
        return comps, combine(self.reward, comps), code


class ToyEnv(gym.Env):
    """One toy account, one (symbol, session) per episode."""

    metadata = {"render_modes": []}

    def __init__(self, days: MarketDays, env_cfg: ToyEnvConfig, reward: RewardSpec) -> None:
        super().__init__()
        self._core = _Batch(days, env_cfg, reward, 1)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self._core.obs_dim,), dtype=np.float32)
        self.action_space = spaces.Discrete(len(ACTIONS))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._core.reset(slice(None), np.array([self.np_random.integers(self._core.days.n_days)]))
        return self._core.observe()[0], {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        comps, reward, code = self._core.step(slice(None), np.asarray([int(action)]))
        self._core.finished[:] = code != 0
        return self._core.observe()[0], float(reward[0]), bool(code[0]), False, {"net_pnl": float(comps["pnl"][0])}

    def action_masks(self) -> np.ndarray:
        return self._core.masks()[0]


class ToyVecEnv(BatchedVecEnv):
    """N toy accounts stepped as arrays; env i draws its days like ToyEnv.reset(seed=seed + i)."""

    COMPONENTS = tuple(COMPONENTS)
    STATE_ATTRS = frozenset({"t", "done_mask"})

    def __init__(self, days, env_cfg, reward, n_envs, seed=0, fixed_days=None, auto_reset=True) -> None:
        self._core = _Batch(days, env_cfg, reward, n_envs)
        self.fixed_days = None if fixed_days is None else np.asarray(fixed_days, dtype=np.int64)
        self._rngs = [seeding.np_random(seed + i)[0] for i in range(n_envs)]
        self.auto_reset = auto_reset
        super().__init__(
            n_envs,
            spaces.Box(-np.inf, np.inf, shape=(self._core.obs_dim,), dtype=np.float32),
            spaces.Discrete(len(ACTIONS)),
        )
        self.done_mask = np.zeros(n_envs, dtype=bool)
        self._obs = self._actions = None

    def _pick(self, idx: Sequence[int]) -> np.ndarray:
        if self.fixed_days is not None:
            return self.fixed_days[list(idx)]
        return np.array([self._rngs[i].integers(self._core.days.n_days) for i in idx], dtype=np.int64)

    def reset(self):
        self._core.reset(slice(None), self._pick(range(self.num_envs)))
        self.done_mask[:] = False
        self._obs = self._core.observe()
        return self._obs

    @property
    def core(self) -> _Batch:
        return self._core

    def _net_pnl(self, comps):
        return self._core.equity.copy()

    def decision_state(self) -> dict[str, np.ndarray]:
        return {"position": self._core.pos.astype(np.float64), "fill_price": self._core.fill.copy()}

    def _finish(self, idx, obs, comps, code, infos) -> None:
        for i in idx.tolist():
            infos[i] = {
                "net_pnl": float(self._core.equity[i]),
                "terminal_observation": obs[i],
                "TimeLimit.truncated": False,
            }
        if self.auto_reset:
            self._core.reset(idx, self._pick(idx))
            obs[idx] = self._core.observe(idx)
        else:
            self.done_mask[idx] = True
            self._core.finished[idx] = True

    def get_attr(self, attr_name, indices=None):
        idx = list(self._get_indices(indices))
        if attr_name == "t":
            return [int(self._core.t[i]) for i in idx]
        return [getattr(self, attr_name) for _ in idx]


@dataclass(frozen=True, eq=False)
class ToyEpisode:
    symbol: str
    date: date
    total_reward: float
    net_pnl: float
    action_counts: tuple[int, int]
    steps: int


@dataclass(frozen=True, eq=False)
class ToyResult(EpisodeSet):
    N_ACTIONS: ClassVar[int] = len(ACTIONS)
    episodes: tuple[ToyEpisode, ...]


def _play(policy: Policy, days: MarketDays, cfg: ToyEnvConfig, reward: RewardSpec, name: str) -> ToyResult:
    env = ToyVecEnv(days, cfg, reward, days.n_days, fixed_days=np.arange(days.n_days), auto_reset=False)
    run = masked_rollout(env, policy, name)
    return ToyResult(
        name=name,
        episodes=tuple(
            ToyEpisode(
                str(days.symbols[i]),
                np.datetime64(days.dates[i], "D").item(),
                float(run.total_reward[i]),
                float(env._core.equity[i]),
                tuple(int(c) for c in run.action_counts[i]),
                int(run.steps[i]),
            )
            for i in range(days.n_days)
        ),
    )


class ToyFamily:
    kind = "toy"
    description = "A test family: long or flat one symbol per session."
    env_config = ToyEnvConfig
    evaluation_config = None
    reward_components = tuple(COMPONENTS)
    checks = {"toy_trades": "warn"}
    check_descriptions = {"toy_trades": "Warns when the agent never goes long on the held-out days."}
    summary_keys = ("total_pnl",)
    episode_info_keys = ("net_pnl",)
    data_assets = ("features_1m",)
    data_job = "market_data_job"

    def data_partitions(self, cfg) -> list[date]:
        return self.expected_dates(cfg)

    def load_data(self, con, cfg):
        from warehouse.datasets import load_training_frame

        return load_training_frame(con, cfg.data.symbols, cfg.data.start, cfg.data.end)

    def expected_dates(self, cfg) -> list[date]:
        from market.calendar import sessions

        return sessions(cfg.data.start, cfg.data.end)

    def build_days(self, data, cfg, expected) -> MarketDays:
        base = ("symbol", "session_date", "minute", "open", "close", "mean_spread")
        return MarketDays.from_frame(data, [c for c in data.columns if c not in base])

    def load_days(self, path: Path) -> MarketDays:
        return MarketDays.load_npz(path)

    def env_factory(self, days, env_cfg, reward):
        return lambda n_envs, seed: ToyVecEnv(days, env_cfg, reward, n_envs=n_envs, seed=seed)

    def single_env(self, days, env_cfg, reward) -> ToyEnv:
        return ToyEnv(days, env_cfg, reward)

    def synthetic_days(self, seed: int) -> MarketDays:
        return random_walk_days(n_days=4, n_minutes=40, n_features=3, seed=seed)

    def perturb_after(self, days: MarketDays, t: int) -> MarketDays:
        later = np.arange(days.max_minutes) > t
        return dataclasses.replace(
            days,
            features=np.where(later[None, :, None], days.features + 1.0, days.features).astype(np.float32),
            close=np.where(later, days.close * 0.9, days.close),
        )

    def audit_target(self, days, cfg, reward) -> AuditTarget:
        return AuditTarget(
            n_available=days.n_days,
            make_env=lambda idx, seed: ToyVecEnv(days, cfg.env, reward, len(idx), seed, idx, auto_reset=False),
            policies={"random_valid": random_valid_actions, "long": lambda masks, rng: masks[:, 1].astype(int)},
            component_names=tuple(COMPONENTS),
            cost_components=(),
            net_pnl=lambda env: env._core.equity,
        )

    def shadow(self, days, cfg, reward) -> Any:
        from rl.core.shadow import day_play

        env = ToyVecEnv(days, cfg.env, reward, days.n_days, fixed_days=np.arange(days.n_days), auto_reset=False)
        return day_play(env, days, ACTIONS)

    def evaluate(self, agent, held_out, cfg, reward, agent_name) -> dict[str, ToyResult]:
        policies = {agent_name: agent, "flat": lambda obs, masks: np.zeros(len(masks), dtype=np.int64)}
        policies["random_valid"] = random_valid(cfg.ppo.seed)
        return {name: _play(p, held_out, cfg.env, reward, name) for name, p in policies.items()}

    def concat(self, name, results) -> ToyResult:
        return ToyResult.concat(name, results)

    def metrics(self, result: ToyResult) -> dict[str, float]:
        shares = share_distribution(result.action_counts, ACTIONS)
        return {"total_pnl": float(result.net_pnl.sum()), "long_share": shares["LONG"]}

    def run_checks(self, results: Mapping[str, ToyResult], cfg, agent: str) -> dict[str, dict[str, Any]]:
        share = share_distribution(results[agent].action_counts, ACTIONS)["LONG"]
        return {"toy_trades": {"passed": share > 0, "value": share, "threshold": 0.0, "detail": f"long {share:.0%}"}}

    def episode_rows(self, result: ToyResult, slice_name, checkpoint_id, agent) -> list[dict[str, Any]]:
        return [
            {
                "slice": slice_name,
                "checkpoint_id": checkpoint_id if result.name == agent else None,
                "policy": result.name,
                "policy_kind": "agent" if result.name == agent else "baseline",
                "symbol": ep.symbol,
                "session_date": ep.date,
                "reward": ep.total_reward,
                "net_pnl": ep.net_pnl,
                "n_steps": ep.steps,
                "action_counts_json": dict(zip(ACTIONS, ep.action_counts, strict=True)),
            }
            for ep in result.episodes
        ]

    def report(self, ctx, results, checks, out_dir: Path, agent, slices, cfg) -> str:
        rows = [[name, f"{self.metrics(r)['total_pnl']:+.2f}"] for per in results.values() for name, r in per.items()]
        out_dir.mkdir(parents=True, exist_ok=True)
        return write_report(out_dir, [*report_head(ctx, checks), table(["policy", "P&L"], rows)])


FAMILY = ToyFamily()
