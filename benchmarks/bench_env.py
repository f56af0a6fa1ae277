"""Raw env throughput: batched IntradayVecEnv vs DummyVecEnv of single IntradayEnvs, both with action masks.

Each timed step does what a masked rollout does besides the network: read the masks, draw a random valid
action per env (vectorised), step_async + step_wait (auto-resets included). Prints env-steps/s per setup.

    python benchmarks/bench_env.py [--n-envs 1024 2048 4096] [--steps 400] [--days 64] [--features 30]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import masked_rate  # noqa: E402
from rl.core.data import random_walk_days  # noqa: E402
from rl.core.reward import load_reward  # noqa: E402
from rl.families.intraday.accounting import COMPONENTS  # noqa: E402
from rl.families.intraday.config import EnvConfig  # noqa: E402

REWARD = Path(__file__).resolve().parents[1] / "configs" / "rewards" / "intraday.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-envs", type=int, nargs="+", default=[64, 256, 1024, 2048, 4096])
    parser.add_argument("--steps", type=int, default=400, help="timed steps per setup")
    parser.add_argument("--days", type=int, default=64)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--dummy-steps", type=int, default=1500, help="timed steps for DummyVecEnv(8)")
    args = parser.parse_args()

    from sb3_contrib.common.maskable.utils import get_action_masks
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rl.families.intraday.env import IntradayEnv, IntradayVecEnv

    days = random_walk_days(args.days, 390, n_features=args.features, seed=0)
    cfg, reward = EnvConfig(), load_reward(REWARD, COMPONENTS)
    print(f"days={args.days} minutes=390 features={args.features} obs_dim={args.features + 4}", end=" ")
    print(f"reward={reward.name}")
    print(f"{'setup':<34}{'env-steps/s':>14}{'us/vec-step':>13}")
    results = {}
    for n in args.n_envs:
        env = IntradayVecEnv(days, cfg, reward, n, seed=0)
        rate = masked_rate(env, args.steps)
        results[n] = rate
        print(f"{f'IntradayVecEnv({n}) action_masks()':<34}{rate:>14,.0f}{n / rate * 1e6:>13.1f}")
    for n in (64, 256, max(args.n_envs)):
        env = IntradayVecEnv(days, cfg, reward, n, seed=0)
        rate = masked_rate(env, max(args.steps // 2, 50), lambda env=env: get_action_masks(env))
        print(f"{f'IntradayVecEnv({n}) sb3-contrib masks':<34}{rate:>14,.0f}{n / rate * 1e6:>13.1f}")
    dummy = DummyVecEnv([lambda i=i: IntradayEnv(days, cfg, reward) for i in range(8)])
    dummy.seed(0)
    dummy_rate = masked_rate(dummy, args.dummy_steps, lambda: get_action_masks(dummy))
    print(f"{'DummyVecEnv(8) of IntradayEnv':<34}{dummy_rate:>14,.0f}{8 / dummy_rate * 1e6:>13.1f}")
    best_n = max(results, key=results.get)
    ratio = results[best_n] / dummy_rate
    print(f"best batched: {results[best_n]:,.0f} steps/s at N={best_n} = {ratio:,.0f}x DummyVecEnv(8)")


if __name__ == "__main__":
    main()
