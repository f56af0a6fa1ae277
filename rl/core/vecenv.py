"""Plumbing every batched env shares: action validation, the O(1) infos of envs that did not finish, the SB3 VecEnv
over day episodes, and the Gymnasium env that is a batch of one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn


def check_actions(actions: Any, n: int, n_actions: int) -> np.ndarray:
    """The N actions as int64, refusing a wrong count, non-integers and values outside [0, n_actions)."""
    a = np.asarray(actions)
    if a.size != n:
        raise ValueError(f"expected {n} actions, got shape {a.shape}")
    a = a.reshape(n)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise ValueError(f"actions must be integers, got dtype {a.dtype}")
    if n and (a.min() < 0 or a.max() >= n_actions):
        raise ValueError(f"actions must be in [0, {n_actions}), got min {a.min()} max {a.max()}")
    return a.astype(np.int64, copy=False)


class SharedEmptyInfo(dict):
    """The info of every env that did not finish this step: one shared, read-only empty dict (O(1) infos).

    Writing to it raises instead of leaking into other envs; copies are ordinary dicts.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("this step info is shared by all running envs and read-only; use dict(info) to edit a copy")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = __ior__ = _read_only  # type: ignore

    def copy(self) -> dict:  # type: ignore[override]
        return {}

    def __copy__(self) -> dict:
        return {}

    def __deepcopy__(self, memo: dict) -> dict:
        return {}

    def __reduce__(self) -> tuple:
        return (dict, ())


EMPTY_INFO = SharedEmptyInfo()


class BatchedVecEnv(VecEnv):
    """SB3 plumbing shared by the array-batched envs: one object holds every env, so attributes are shared and
    `action_masks` is one [N, A] array.

    Subclasses call `_init_batched` and provide `_core` (`step(sel, actions) -> (components, rewards, done
    codes)`, `observe(sel)`, `masks()`, `finished`), `COMPONENTS`, `_net_pnl`, `_end_info`, `_restart`,
    `get_attr` and `STATE_ATTRS`. Stepping is the same for every family: all envs in one array call, or only
    the running ones once some have finished in evaluation mode (`auto_reset=False`).
    """

    STATE_ATTRS: frozenset[str] = frozenset()  # per-env state: readable with get_attr, never settable
    COMPONENTS: tuple[str, ...] = ()  # the ledger's reward components, as in `last_components`
    TRUNCATING: frozenset[int] = frozenset()  # done codes that truncate (the data ran out), not terminate

    def _init_batched(self, n_envs: int, obs_dim: int, n_actions: int, seed: int | None, auto_reset: bool) -> None:
        """What every batched env sets up: per-env generators seeded `seed + i` (exactly like the single env's
        `reset(seed=seed + i)`), the spaces, and the per-step arrays of the step just taken."""
        from gymnasium import spaces
        from gymnasium.utils import seeding

        self._rngs = [seeding.np_random(None if seed is None else seed + i)[0] for i in range(n_envs)]
        self.auto_reset = bool(auto_reset)
        self.render_mode = None
        super().__init__(
            n_envs, spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float32), spaces.Discrete(n_actions)
        )
        self.done_mask = np.zeros(n_envs, dtype=bool)
        self.last_components: dict[str, np.ndarray] = {name: np.zeros(n_envs) for name in self.COMPONENTS}
        self.last_rewards = np.zeros(n_envs)
        self.last_net_pnl = np.zeros(n_envs)
        self.last_done_code = np.zeros(n_envs, dtype=np.int8)
        self._actions: np.ndarray | None = None
        self._obs: np.ndarray | None = None

    @staticmethod
    def fixed_indices(values: Any, n_envs: int, upper: int, what: str) -> np.ndarray | None:
        """One episode index per env in [0, upper] (days, start hours), or None; refuses a wrong count or range."""
        if values is None:
            return None
        fixed = np.asarray(values, dtype=np.int64).reshape(-1)
        if fixed.shape != (n_envs,):
            raise ValueError(f"{what} needs one value per env ({n_envs}), got {fixed.shape}")
        if fixed.size and (fixed.min() < 0 or fixed.max() > upper):
            raise ValueError(f"{what} out of range [0, {upper}]")
        return fixed

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        n = self.num_envs
        actions = check_actions(self._actions, n, int(self.action_space.n))
        self._actions = None
        core = self._core
        if self.auto_reset or not self.done_mask.any():
            comps, rewards, code = core.step(slice(None), actions)
            obs = core.observe()
        else:
            idx = np.flatnonzero(~self.done_mask)
            obs = self._obs.copy()
            rewards = np.zeros(n)
            code = np.zeros(n, dtype=np.int8)
            comps = {name: np.zeros(n) for name in self.COMPONENTS}
            if idx.size:
                sub_comps, sub_rewards, sub_code = core.step(idx, actions[idx])
                for name, values in sub_comps.items():
                    comps[name][idx] = values
                rewards[idx] = sub_rewards
                code[idx] = sub_code
                obs[idx] = core.observe(idx)
        self.last_components = comps
        self.last_rewards = rewards
        self.last_net_pnl = self._net_pnl(comps)
        self.last_done_code = code
        dones = code != 0
        infos: list[dict[str, Any]] = [EMPTY_INFO] * n
        if dones.any():
            self._finish(np.flatnonzero(dones), obs, comps, code, infos)
        self._obs = obs
        return obs, rewards, dones, infos

    def _net_pnl(self, comps: dict[str, np.ndarray]) -> np.ndarray:
        """Each env's episode net P&L after the step just taken."""
        raise NotImplementedError

    def _finish(
        self,
        idx: np.ndarray,
        obs: np.ndarray,
        comps: dict[str, np.ndarray],
        code: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Fill the infos of the envs `idx` that just ended (the step's components, the family's `_end_info`,
        SB3's terminal observation), then auto-reset them, or freeze them in evaluation mode."""
        terminal = obs[idx]
        for j, i in enumerate(idx.tolist()):
            info: dict[str, Any] = {name: float(comps[name][i]) for name in self.COMPONENTS}
            info.update(self._end_info(i, int(code[i])))
            info["terminal_observation"] = terminal[j]
            info["TimeLimit.truncated"] = int(code[i]) in self.TRUNCATING
            infos[i] = info
        if self.auto_reset:
            self._restart(idx)
            obs[idx] = self._core.observe(idx)
        else:
            self.done_mask[idx] = True
            self._core.finished[idx] = True

    def _end_info(self, i: int, code: int) -> dict[str, Any]:
        """Episode totals of env i that just ended with done code `code` (net_pnl at least)."""
        raise NotImplementedError

    def _restart(self, idx: np.ndarray) -> None:
        """Start new episodes for the envs `idx` (auto-reset)."""
        raise NotImplementedError

    def action_masks(self) -> np.ndarray:
        """Valid actions of every env: a fresh bool [N, A] array (a copy: safe to keep across steps)."""
        return self._core.masks()

    def decision_state(self) -> dict[str, np.ndarray]:
        """What a shadow play records of every env after a step (`rl.core.shadow`): `position` [N] float (units
        held) and `fill_price` [N] float (the price the step's trade filled at, NaN where it traded nothing)."""
        raise NotImplementedError(f"{type(self).__name__} does not report its decision state")

    def close(self) -> None:
        """Nothing to release (no subprocesses, no files)."""

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set a shared attribute; the envs share one object, so only all indices at once are allowed."""
        idx = sorted(set(self._get_indices(indices)))
        if attr_name in self.STATE_ATTRS:
            raise AttributeError(f"'{attr_name}' is environment state; use reset() to change it")
        if idx != list(range(self.num_envs)):
            raise ValueError(f"'{attr_name}' is shared by all envs of {type(self).__name__}; set it for all indices")
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any):
        """`action_masks` returns the fresh [N, A] mask array itself (rows at `indices`), which sb3-contrib's
        `np.stack` copies row by row (~0.4 us per env); other methods run once on the batched env and their
        result is repeated per index."""
        if method_name == "action_masks":
            masks = self._core.masks()
            if indices is not None:
                masks = masks[list(self._get_indices(indices))]
            return masks
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """The batched envs are never wrapped by gymnasium wrappers."""
        return [False for _ in self._get_indices(indices)]


class DayEpisodesVecEnv(BatchedVecEnv):
    """A batched env whose episodes open on a day of its data: what the minute-bar families share.

    Env i opens on `options["day_index"]` (set_options), else `fixed_days[i]`, else a day drawn from its own
    generator, so env i plays exactly what the single env plays after `reset(seed=seed + i)`. Subclasses pass their
    core (`reset(sel, days, rngs)`, `observe()`, `obs_dim`, `n_days`, `ledger`) to `__init__` and say what a reset
    reports (`_reset_info`).
    """

    fixed_days: np.ndarray | None = None
    _PER_ENV: dict[str, str] = {}  # get_attr name -> per-env array of `_core`
    _PER_LEDGER: dict[str, str] = {}  # get_attr name -> per-env array of `_core.ledger`

    def __init__(
        self, core: Any, days: Any, env_cfg: Any, reward: Any, n_envs: int, seed: int | None,
        fixed_days: np.ndarray | Sequence[int] | None, auto_reset: bool, n_actions: int,
    ) -> None:  # fmt: skip
        """Subclasses pass their batched core (built for `n_envs` over `days`) and their action count."""
        self._core = core
        self.days, self.env_cfg, self.reward = days, env_cfg, reward
        self.fixed_days = self.fixed_indices(fixed_days, n_envs, days.n_days - 1, "fixed_days")
        self._init_batched(n_envs, core.obs_dim, n_actions, seed, auto_reset)

    @property
    def core(self) -> Any:
        """The batched state (ledger, rule state, episode facts) the evaluation reads."""
        return self._core

    @property
    def ledger(self) -> Any:
        """The accounts (position, equity, round trips, wins, cost totals) of all envs."""
        return self._core.ledger

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Per-env values of the `_PER_ENV` and `_PER_LEDGER` names and `done_mask`; else the shared attribute."""
        idx = list(self._get_indices(indices))
        if attr_name in self._PER_ENV:
            values = getattr(self._core, self._PER_ENV[attr_name])
        elif attr_name in self._PER_LEDGER:
            values = getattr(self._core.ledger, self._PER_LEDGER[attr_name])
        elif attr_name == "done_mask":
            values = self.done_mask
        else:
            value = getattr(self, attr_name)
            return [value for _ in idx]
        return [values[i].item() for i in idx]

    def _reset_info(self, day: int) -> dict[str, Any]:
        raise NotImplementedError

    def reset(self) -> Any:
        """Reset every env (seeds from `seed()` and options from `set_options()` apply here, then clear)."""
        from gymnasium.utils import seeding

        n = self.num_envs
        days = np.empty(n, dtype=np.int64)
        for i in range(n):
            if self._seeds[i] is not None:
                self._rngs[i] = seeding.np_random(self._seeds[i])[0]
            days[i] = self._pick_day(i)
        self._core.reset(slice(None), days, self._rngs)
        self.done_mask[:] = False
        self.reset_infos = [self._reset_info(int(d)) for d in days]
        self._reset_seeds()
        self._reset_options()
        self._obs = self._core.observe()
        return self._obs

    def _pick_day(self, i: int) -> int:
        day = self._options[i].get("day_index") if self._options[i] else None
        if day is not None:
            return int(day)
        if self.fixed_days is not None:
            return int(self.fixed_days[i])
        return int(self._rngs[i].integers(self._core.n_days))

    def _net_pnl(self, comps: dict[str, np.ndarray]) -> np.ndarray:
        return comps["daily_pnl_level"]

    def decision_state(self) -> dict[str, np.ndarray]:
        """The shared ledger's position and last fill (the next bar's open plus or minus half its spread)."""
        led = self._core.ledger
        return {"position": led.pos.astype(np.float64), "fill_price": led.last_fill}

    def _restart(self, idx: np.ndarray) -> None:
        days = np.array([self._pick_day(i) for i in idx.tolist()], dtype=np.int64)
        self._core.reset(idx, days, [self._rngs[i] for i in idx.tolist()])


class DayEpisodeEnv(gym.Env):
    """One account on a family's batched core (a batch of one), as a Gymnasium env: what the minute-bar families'
    single envs share, so env i of their VecEnv and this env after `reset(seed=seed + i)` play the same episode.

    Subclasses pass their core and action count to `__init__` and say what a reset and an ending report
    (`_reset_info`, `_end_info`); `COMPONENTS` names the step's raw components in `info`, and a done code in
    `TRUNCATING` truncates (the data ran out) instead of terminating.
    """

    metadata = {"render_modes": []}
    COMPONENTS: tuple[str, ...] = ()
    TRUNCATING: frozenset[int] = frozenset()

    def __init__(self, core: Any, days: Any, env_cfg: Any, reward: Any, day_index: int | None, n_actions: int):
        from gymnasium import spaces

        super().__init__()
        self._core = core
        if day_index is not None and not 0 <= int(day_index) < days.n_days:
            raise ValueError(f"day_index {day_index} out of range [0, {days.n_days})")
        self.day_index = None if day_index is None else int(day_index)
        self.days, self.env_cfg, self.reward = days, env_cfg, reward
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(core.obs_dim,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_actions)
        self.render_mode = None
        self._done = True

    def _reset_info(self, day: int) -> dict[str, Any]:
        raise NotImplementedError

    def _end_info(self, code: int) -> dict[str, Any]:
        """The episode's totals when it ends with done code `code`."""
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode on `options["day_index"]`, else the fixed `day_index`, else a day from np_random."""
        super().reset(seed=seed)
        day = (options or {}).get("day_index", self.day_index)
        if day is None:
            day = int(self.np_random.integers(self._core.n_days))
        self._core.reset(slice(None), np.array([day]), [self.np_random])
        self._done = False
        return self._core.observe()[0], self._reset_info(int(day))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One decision on the core; info has the step's raw components, net P&L and position, and the totals at
        the end."""
        if self._done:
            raise RuntimeError("the episode has ended; call reset() before step()")
        a = check_actions(action, 1, int(self.action_space.n))
        comps, reward, code = self._core.step(slice(None), a)
        led = self._core.ledger
        c = int(code[0])
        info: dict[str, Any] = {name: float(comps[name][0]) for name in self.COMPONENTS}
        info["net_pnl"] = float(led.equity[0])
        info["position"] = int(led.pos[0])
        if c:
            self._done = True
            info.update(self._end_info(c))
        truncated = c in self.TRUNCATING
        return self._core.observe()[0], float(reward[0]), c > 0 and not truncated, truncated, info

    def action_masks(self) -> np.ndarray:
        """Valid actions now (a fresh array)."""
        return self._core.masks()[0]
