"""0DTE throughput: the batched env with masks (goal 1M env-steps/s, the chain priced once per partition and read
from arrays) and MaskablePPO training on it (goal 10k env-steps/s), on synthetic SPY sessions of 390 minutes with
a 62-contract chain, the shipped config and reward, and seed 003's 20 x 23 observation window.

Each timed env step does what a masked rollout does besides the network: read the masks, draw a random valid action
per env, step (auto-resets included). Prints numbers and ratios; asserts nothing.

    python benchmarks/bench_zerodte.py [--n-envs 256 1024 4096] [--steps 300] [--train-steps 65536]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rl.core.family import load_family  # noqa: E402
from rl.core.registry import get_family  # noqa: E402
from rl.core.reward import load_reward  # noqa: E402
from rl.core.train import TrainPhase, train_policy  # noqa: E402
from rl.families.zerodte.data import synthetic_option_days  # noqa: E402
from rl.families.zerodte.env import ZeroDteVecEnv  # noqa: E402

ENV_GOAL, TRAIN_GOAL = 1e6, 1e4


def _env_rate(days, cfg, reward, n: int, steps: int) -> float:
    env = ZeroDteVecEnv(days, cfg, reward, n_envs=n, seed=0)
    rng = np.random.default_rng(0)
    env.reset()
    width = env.action_space.n
    for _ in range(10):
        env.step(np.argmax(rng.random((n, width)) * env.action_masks(), axis=1))
    start = time.perf_counter()
    for _ in range(steps):
        masks = env.action_masks()
        env.step_async(np.argmax(rng.random((n, width)) * masks, axis=1))
        env.step_wait()
    return n * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-envs", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--train-steps", type=int, default=65_536)
    args = parser.parse_args()
    days = synthetic_option_days(n_days=20, n_minutes=390, n_features=22, strikes_each_side=15)
    family = load_family(ROOT / "configs" / "zerodte.yaml")
    cfg = family.env
    reward = load_reward(ROOT / "configs" / family.reward, get_family("zerodte").reward_components)
    print(f"days={days.n_days} minutes={days.bars.max_minutes} contracts={days.n_contracts} "
          f"observation={cfg.window}x{len(days.feature_names)}+state")  # fmt: skip
    print(f"{'setup':<34}{'env-steps/s':>14}{'ratio to 1M':>14}")
    best = 0.0
    for n in args.n_envs:
        rate = _env_rate(days, cfg, reward, n, args.steps)
        best = max(best, rate)
        print(f"{f'ZeroDteVecEnv({n}) action_masks()':<34}{rate:>14,.0f}{rate / ENV_GOAL:>14.2f}")
    print(f"best batched: {best:,.0f} env-steps/s = {best / ENV_GOAL:.2f} of the 1M goal")

    ppo = dataclasses.replace(family.ppo, total_timesteps=args.train_steps)
    make = lambda n, seed: ZeroDteVecEnv(days, cfg, reward, n_envs=n, seed=seed)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        result = train_policy(days, cfg, reward, ppo, Path(tmp) / "ckpt",
                              [TrainPhase("bench", args.train_steps, make)], {"run_id": "bench"})  # fmt: skip
    rate = result.stats.steps_per_s
    print(f"training (n_envs={ppo.n_envs}, n_steps={ppo.n_steps}, batch {ppo.batch_size}, {ppo.n_epochs} epochs, "
          f"net {list(ppo.net_arch)}): {rate:,.0f} env-steps/s = {rate / TRAIN_GOAL:.2f} of the 10k goal")  # fmt: skip


if __name__ == "__main__":
    main()
