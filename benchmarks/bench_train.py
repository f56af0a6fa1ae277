"""Training throughput: torch-alone ceiling vs MaskablePPO end to end on the batched intraday env.

(1) The ceiling: forward + backward + Adam step of SB3's own maskable [256,256,128] pi+vf policy on random
    observations at the configured batch size; PPO visits every sample n_epochs times, so
    ceiling env-steps/s = samples/s / n_epochs.
(2) End to end: `rl.core.train.train_policy` (MaskablePPO + IntradayVecEnv, rollouts and updates) on synthetic
    random-walk days, env-steps/s over learn().
Goal: >= 10k env-steps/s and >= 75% of the ceiling. Defaults come from configs/intraday.yaml.

    python benchmarks/bench_train.py [--timesteps 200000] [--n-envs 256] [--batch 1024] [--epochs 4] ...
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

GOAL_STEPS_PER_S = 10_000
GOAL_CEILING_FRACTION = 0.75


def main(argv: list[str] | None = None) -> int:
    from rl.core.data import random_walk_days
    from rl.core.family import load_family
    from rl.core.registry import get_family
    from rl.core.reward import load_reward
    from rl.core.train import measure_torch_ceiling, train_policy

    family = load_family(ROOT / "configs" / "intraday.yaml")
    ppo = family.ppo
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--n-envs", type=int, default=ppo.n_envs)
    parser.add_argument("--n-steps", type=int, default=ppo.n_steps)
    parser.add_argument("--batch", type=int, default=ppo.batch_size)
    parser.add_argument("--epochs", type=int, default=ppo.n_epochs)
    parser.add_argument("--threads", type=int, default=ppo.torch_threads)
    parser.add_argument("--activation", choices=("tanh", "relu"), default=ppo.activation)
    parser.add_argument("--days", type=int, default=40, help="synthetic (symbol, session) days")
    parser.add_argument("--features", type=int, default=30, help="feature columns (the warehouse has ~30)")
    args = parser.parse_args(argv)
    ppo = dataclasses.replace(
        ppo,
        total_timesteps=args.timesteps,
        n_envs=args.n_envs,
        n_steps=args.n_steps,
        batch_size=args.batch,
        n_epochs=args.epochs,
        torch_threads=args.threads,
        activation=args.activation,
    )
    reward = load_reward(ROOT / "configs" / family.reward, get_family("intraday").reward_components)
    days = random_walk_days(n_days=args.days, n_features=args.features, seed=0, edge=0.5)
    obs_dim = days.n_features + 4

    print(
        f"config: n_envs={ppo.n_envs} n_steps={ppo.n_steps} batch={ppo.batch_size} n_epochs={ppo.n_epochs} "
        f"threads={ppo.torch_threads} net_arch={list(ppo.net_arch)} {ppo.activation} obs_dim={obs_dim} "
        f"timesteps={ppo.total_timesteps}"
    )
    ceiling = measure_torch_ceiling(obs_dim, ppo, n_batches=60)
    print(
        f"(1) torch ceiling: {ceiling['samples_per_s']:,.0f} samples/s per train step "
        f"at batch {ppo.batch_size} "
        f"-> {ceiling['ceiling_env_steps_per_s']:,.0f} env-steps/s with n_epochs={ppo.n_epochs}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        make_env = get_family("intraday").env_factory(days, family.env, reward)
        result = train_policy(days, family.env, reward, ppo, Path(tmp) / "ckpt", make_env, {"run_id": "bench"})
        total = time.perf_counter() - start
    stats = result.stats
    ratio = stats.steps_per_s / ceiling["ceiling_env_steps_per_s"]
    print(
        f"(2) MaskablePPO end to end: {stats.steps_per_s:,.0f} env-steps/s "
        f"({stats.timesteps:,} steps in {stats.wall_s:.1f}s of learn(); {total:.1f}s with setup and save)"
    )
    print(f"ratio end-to-end / ceiling: {ratio:.0%}")
    ok = stats.steps_per_s >= GOAL_STEPS_PER_S and ratio >= GOAL_CEILING_FRACTION
    print(
        f"goal >= {GOAL_STEPS_PER_S:,} env-steps/s and >= {GOAL_CEILING_FRACTION:.0%} of the ceiling: "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
