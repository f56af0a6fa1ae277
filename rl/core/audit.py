"""Reward-scale audit, run BEFORE training: does this reward give the value network a target it can fit?

Seed 000 trained for two hours on a reward whose episodes summed to -1.2e7 (value loss 1.9e13). Rolling out a
few cheap policies through the same batched env and accounting, and bounding the per-step reward, the episode
return and the discounted return (the value target), catches that in seconds and names the components
responsible.

The audit is family-agnostic: a family describes itself as an `AuditTarget` (how to replay episodes in its
batched env, which cheap policies to roll out, which components are costs).
"""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl.core.config import jsonable
from rl.core.reward import AuditLimits, RewardSpec
from rl.core.rollout import masked_rollout

AuditPolicy = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def random_valid_actions(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random valid action per env, for any mask width (every family's audit rolls it out)."""
    return np.argmax(rng.random(masks.shape) * masks, axis=1)


@dataclass(frozen=True)
class AuditTarget:
    """What the audit needs from a family: episodes to replay in its batched env, policies and component names."""

    n_available: int  # distinct episodes that can be replayed (days, start hours)
    make_env: Callable[[np.ndarray, int], Any]  # (episode ids, seed) -> evaluation-mode batched env (done_mask)
    policies: Mapping[str, AuditPolicy]  # name -> (masks, rng) -> actions
    component_names: tuple[str, ...]  # every accounting component the env reports in `last_components`
    cost_components: tuple[str, ...]  # components that must weigh at least as much as `pnl` (fee parity)
    net_pnl: Callable[[Any], np.ndarray]  # finished env -> net P&L per episode ($)


def day_episodes_target(
    vec_env: Callable[..., Any], days: Any, env_cfg: Any, reward: RewardSpec,
    policies: Mapping[str, AuditPolicy], component_names: tuple[str, ...],
) -> AuditTarget:  # fmt: skip
    """The target of a minute-bar family (a DayEpisodesVecEnv `vec_env` over day rows): each audited episode
    replays one (symbol, session) row without auto-reset, and the ledger's commission and spread are the costs."""

    def make_env(idx: np.ndarray, seed: int) -> Any:
        return vec_env(days, env_cfg, reward, len(idx), seed=seed, fixed_days=idx, auto_reset=False)

    return AuditTarget(
        n_available=days.n_days,
        make_env=make_env,
        policies=policies,
        component_names=component_names,
        cost_components=("commission", "spread_cost"),
        net_pnl=lambda env: env.ledger.equity,
    )


@dataclass(frozen=True)
class ComponentStats:
    """Scale of one reward term (or the total) over the audit rollouts."""

    mean: float  # mean per step
    std: float  # std per step
    p99_abs_step: float  # 99th percentile of |value per step|
    episode_mean: float  # mean episode sum, all policies pooled
    episode_std: float  # std of episode sums, all policies pooled
    worst_episode_abs_mean: float  # max over policies of |mean episode sum|
    value_target_p99: float  # 99th percentile of |discounted return| over all steps
    finite: bool  # every value finite


@dataclass(frozen=True)
class RewardAudit:
    """Result of `audit_reward`: per-component and total scales, per-policy totals, the limits to judge by."""

    reward_name: str
    reward_sha256: str
    n_episodes: int  # episodes per policy
    gamma: float  # discount of the value target
    policies: tuple[str, ...]
    coefficients: dict[str, float]  # weight * scale per reward component
    total: ComponentStats  # the reward the agent sees
    components: dict[str, ComponentStats]  # weighted contribution of each reward component
    raw: dict[str, ComponentStats]  # every accounting component in raw units (to choose scales)
    per_policy: dict[str, ComponentStats]  # total reward, by policy
    policy_net_pnl: dict[str, float]  # mean day net P&L ($) by policy
    reward_pnl_corr: float  # Pearson correlation of episode reward and episode net P&L (nan if undefined)
    limits: AuditLimits
    cost_components: tuple[str, ...] = ("commission", "spread_cost")  # judged by the fee-parity rule

    def problems(self, limits: AuditLimits | None = None) -> list[str]:
        """Readable failures against `limits` (default: the reward file's), naming offending components."""
        lim = limits or self.limits
        out = []
        bad = [n for n, s in self.components.items() if not s.finite]
        if bad or not self.total.finite:
            out.append(f"non-finite reward values; offending components: {', '.join(bad) or 'total'}")
        checks = (
            ("p99 |step reward|", "p99_abs_step", lim.max_step_p99),
            ("|mean episode return| (worst policy)", "worst_episode_abs_mean", lim.max_episode_abs_mean),
            ("p99 |value target|", "value_target_p99", lim.max_value_target),
        )
        for label, attr, limit in checks:
            value = getattr(self.total, attr)
            if not value <= limit:
                per = {n: getattr(s, attr) for n, s in self.components.items()}
                out.append(f"{label} = {value:.4g} > {limit:.4g}; offending components: {_offenders(per, limit)}")
        if lim.require_fee_parity:
            pnl = self.coefficients.get("pnl", 0.0)
            if pnl > 0:
                short = [n for n in self.cost_components if self.coefficients.get(n, 0.0) < pnl]
                if short:
                    out.append(
                        f"fees under-weighted: pnl has coefficient {pnl:.4g} but {', '.join(short)} less; "
                        "the reward would ignore costs the reported profit includes"
                    )
        return out

    @property
    def passed(self) -> bool:
        """True when `problems()` is empty under the reward file's limits."""
        return not self.problems()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become None) including `problems` and `passed`."""
        data = jsonable(dataclasses.asdict(self))
        data["problems"] = self.problems()
        data["passed"] = self.passed
        return data


def _offenders(per_component: dict[str, float], limit: float) -> str:
    """Components over the limit on their own; if none is, the largest contributors (>= 25% of the top)."""
    items = sorted(per_component.items(), key=lambda kv: -_key(kv[1]))
    over = [(n, v) for n, v in items if not v <= limit]
    if not over and items:
        top = _key(items[0][1])
        over = [(n, v) for n, v in items if _key(v) >= 0.25 * top]
    return ", ".join(f"{n} ({v:.4g})" for n, v in over) or "none identified"


def _key(v: float) -> float:
    return math.inf if not math.isfinite(v) else v


def _discounted(x: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted return from every step: G[s] = x[s] + gamma * G[s + 1], over [steps, envs]."""
    g = np.zeros_like(x)
    acc = np.zeros(x.shape[1])
    for s in range(x.shape[0] - 1, -1, -1):
        acc = x[s] + gamma * acc
        g[s] = acc
    return g


def _stats(values: Sequence[np.ndarray], actives: Sequence[np.ndarray], gamma: float) -> ComponentStats:
    """Stats of per-policy [steps, envs] arrays (values are 0 where the env had already finished)."""
    steps = np.concatenate([v[a] for v, a in zip(values, actives, strict=True)])
    finite = bool(np.all(np.isfinite(steps)))
    with np.errstate(all="ignore"):
        episodes = [v.sum(axis=0) for v in values]
        pooled = np.concatenate(episodes)
        targets = np.concatenate([_discounted(v, gamma)[a] for v, a in zip(values, actives, strict=True)])
        return ComponentStats(
            mean=float(steps.mean()),
            std=float(steps.std()),
            p99_abs_step=float(np.percentile(np.abs(steps), 99)),
            episode_mean=float(pooled.mean()),
            episode_std=float(pooled.std()),
            worst_episode_abs_mean=float(max(abs(e.mean()) for e in episodes)),
            value_target_p99=float(np.percentile(np.abs(targets), 99)),
            finite=finite,
        )


def _rollout(
    target: AuditTarget, reward: RewardSpec, idx: np.ndarray, policy: AuditPolicy, rng: np.random.Generator, seed: int
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """One episode per env on episode ids `idx`: rewards, raw components, active masks [steps, N], net P&L [N]."""
    env = target.make_env(idx, seed)
    n = len(idx)
    rewards, actives = [], []
    comps: dict[str, list[np.ndarray]] = {name: [] for name in target.component_names}

    def record(running: np.ndarray, steps: np.ndarray) -> None:
        active = np.zeros(n, dtype=bool)
        active[running] = True
        actives.append(active)
        rewards.append(env.last_rewards.copy())
        for name in target.component_names:
            comps[name].append(env.last_components[name])

    masked_rollout(env, lambda obs, masks: policy(masks, rng), name="audit", after_step=record)
    net = np.asarray(target.net_pnl(env), dtype=np.float64).copy()
    env.close()
    return np.stack(rewards), {name: np.stack(v) for name, v in comps.items()}, np.stack(actives), net


def audit_target(
    target: AuditTarget,
    reward: RewardSpec,
    n_episodes: int = 16,
    seed: int = 0,
    gamma: float = 0.99,
    policies: Sequence[str] | None = None,
) -> RewardAudit:
    """Roll out the target's policies (or the named subset) on the same `n_episodes` episodes; measure the reward."""
    if n_episodes < 1:
        raise ValueError("n_episodes must be >= 1")
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    policies = tuple(target.policies) if policies is None else tuple(policies)
    unknown = [p for p in policies if p not in target.policies]
    if unknown or not policies:
        raise ValueError(f"unknown audit policies {unknown}; known: {list(target.policies)}")
    rng = np.random.default_rng(seed)
    d = target.n_available
    idx = rng.permutation(d)[:n_episodes] if n_episodes <= d else rng.integers(d, size=n_episodes)
    runs = {}
    for k, name in enumerate(policies):
        runs[name] = _rollout(target, reward, idx, target.policies[name], np.random.default_rng([seed, k]), seed)
    gc.collect()  # the rollouts' envs sit in reference cycles: free their arrays before a training allocates its own
    names = list(policies)
    actives = [runs[p][2] for p in names]
    coefficients = {n: c.coefficient for n, c in reward.components.items()}
    raw = {c: _stats([runs[p][1][c] for p in names], actives, gamma) for c in target.component_names}
    with np.errstate(all="ignore"):
        weighted = {
            c: _stats([coef * runs[p][1][c] for p in names], actives, gamma) for c, coef in coefficients.items()
        }
    total = _stats([runs[p][0] for p in names], actives, gamma)
    per_policy = {p: _stats([runs[p][0]], [runs[p][2]], gamma) for p in names}
    ep_reward = np.concatenate([runs[p][0].sum(axis=0) for p in names])
    ep_net = np.concatenate([runs[p][3] for p in names])
    with np.errstate(all="ignore"):
        corr = (
            float(np.corrcoef(ep_reward, ep_net)[0, 1])
            if np.std(ep_reward) > 0 and np.std(ep_net) > 0
            else float("nan")
        )
    return RewardAudit(
        reward_name=reward.name,
        reward_sha256=reward.sha256,
        n_episodes=int(n_episodes),
        gamma=float(gamma),
        policies=tuple(names),
        coefficients=coefficients,
        total=total,
        components=weighted,
        raw=raw,
        per_policy=per_policy,
        policy_net_pnl={p: float(runs[p][3].mean()) for p in names},
        reward_pnl_corr=corr,
        limits=reward.audit,
        cost_components=target.cost_components,
    )
