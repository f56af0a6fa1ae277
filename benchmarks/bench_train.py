"""Training throughput of every family in one run: the torch-alone ceiling vs MaskablePPO end to end.

For each family, with the PPO settings of its shipped config:
(1) The ceiling: forward + backward + Adam step of SB3's own maskable policy (the family's net_arch and action
    count) on random observations at the configured batch size; PPO visits every sample n_epochs times, so
    ceiling env-steps/s = samples/s / n_epochs.
(2) End to end: `rl.core.train.train_policy` (MaskablePPO on the family's batched env: rollouts and updates) on
    synthetic data of realistic size, env-steps/s over learn().
Goal: >= 75% of the ceiling for every family.

    python benchmarks/bench_train.py [--timesteps 200000] [--family intraday --family funding]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GOAL_CEILING_FRACTION = 0.75


def _days(kind: str):
    """Synthetic training data of the size the shipped configs train on (40 sessions / 40 UTC days)."""
    if kind == "intraday":
        from rl.core.data import random_walk_days

        return random_walk_days(n_days=80, n_features=30, seed=0, edge=0.5)  # 40 sessions x 2 symbols
    if kind == "funding":
        from rl.families.funding.data import random_funding_days

        return random_funding_days(n_hours=40 * 24, n_symbols=24, seed=0, planted_spread_apr=0.3, anomalous=3)
    from rl.core.registry import get_family

    return get_family(kind).synthetic_days(0)


def bench(kind: str, timesteps: int) -> dict[str, float]:
    """Ceiling and end-to-end throughput of one family; prints both and their ratio."""
    from rl.core.family import load_family
    from rl.core.registry import get_family
    from rl.core.reward import load_reward
    from rl.core.train import measure_torch_ceiling, train_policy

    family = get_family(kind)
    cfg = load_family(ROOT / "configs" / f"{kind}.yaml")
    reward = load_reward(ROOT / "configs" / cfg.reward, family.reward_components)
    ppo = dataclasses.replace(cfg.ppo, total_timesteps=timesteps)
    days = _days(kind)
    make_env = family.env_factory(days, cfg.env, reward)
    probe = make_env(1, 0)
    obs_dim, n_actions = probe.observation_space.shape[0], int(probe.action_space.n)
    probe.close()
    print(
        f"{kind}: n_envs={ppo.n_envs} n_steps={ppo.n_steps} batch={ppo.batch_size} n_epochs={ppo.n_epochs} "
        f"threads={ppo.torch_threads} net_arch={list(ppo.net_arch)} {ppo.activation} obs_dim={obs_dim} "
        f"actions={n_actions} timesteps={ppo.total_timesteps:,}"
    )
    ceiling = measure_torch_ceiling(obs_dim, ppo, n_actions=n_actions, n_batches=60)
    print(
        f"  (1) torch ceiling: {ceiling['samples_per_s']:,.0f} samples/s per train step at batch {ppo.batch_size} "
        f"-> {ceiling['ceiling_env_steps_per_s']:,.0f} env-steps/s with n_epochs={ppo.n_epochs}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train_policy(days, cfg.env, reward, ppo, Path(tmp) / "ckpt", make_env, {"run_id": "bench"})
        total = time.perf_counter() - start
    stats = result.stats
    ratio = stats.steps_per_s / ceiling["ceiling_env_steps_per_s"]
    print(
        f"  (2) MaskablePPO end to end: {stats.steps_per_s:,.0f} env-steps/s "
        f"({stats.timesteps:,} steps in {stats.wall_s:.1f}s of learn(); {total:.1f}s with setup and save)"
    )
    print(f"  ratio end-to-end / ceiling: {ratio:.0%}")
    return {"steps_per_s": stats.steps_per_s, "ceiling": ceiling["ceiling_env_steps_per_s"], "ratio": ratio}


def main(argv: list[str] | None = None) -> int:
    from rl.core.registry import kinds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--family", action="append", help="a registered family (default: all)")
    args = parser.parse_args(argv)
    results = {kind: bench(kind, args.timesteps) for kind in (args.family or kinds())}
    met = all(r["ratio"] >= GOAL_CEILING_FRACTION for r in results.values())
    summary = ", ".join(f"{kind} {r['ratio']:.0%}" for kind, r in results.items())
    verdict = "met" if met else "NOT met"
    print(f"goal >= {GOAL_CEILING_FRACTION:.0%} of the ceiling for every family: {verdict} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
