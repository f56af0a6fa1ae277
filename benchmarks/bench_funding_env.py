"""Raw funding-env throughput: batched FundingVecEnv vs DummyVecEnv of single FundingEnvs, with action masks.

Each timed step does what a masked rollout does besides the network: read the masks, draw a random valid action
per env (vectorised), step_async + step_wait (auto-resets included). Prints env-steps/s per setup.

    python benchmarks/bench_funding_env.py [--n-envs 64 256 1024 4096] [--steps 300] [--hours 720] [--symbols 24]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import masked_rate  # noqa: E402
from rl.families.funding.config import FundingEnvConfig, load_funding_reward  # noqa: E402
from rl.families.funding.data import random_funding_days  # noqa: E402

REWARD = Path(__file__).resolve().parents[1] / "configs" / "rewards" / "funding.yaml"
EXCHANGES = ("binance", "bybit", "okx", "bitget", "gate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-envs", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per setup")
    parser.add_argument("--hours", type=int, default=720)
    parser.add_argument("--symbols", type=int, default=24)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--dummy-steps", type=int, default=1000, help="timed steps for DummyVecEnv(8)")
    args = parser.parse_args()

    from sb3_contrib.common.maskable.utils import get_action_masks
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rl.families.funding.env import FundingEnv, FundingVecEnv, n_actions

    t0 = time.perf_counter()
    days = random_funding_days(args.hours, args.symbols, EXCHANGES, seed=0, planted_spread_apr=0.3, anomalous=2)
    gen_s = time.perf_counter() - t0
    cfg, reward = FundingEnvConfig(top_k=args.top_k), load_funding_reward(REWARD)
    n_act = n_actions(cfg)
    t0 = time.perf_counter()
    FundingVecEnv(days, cfg, reward, n_envs=1)
    build_s = time.perf_counter() - t0
    print(f"hours={args.hours} symbols={args.symbols} exchanges={len(EXCHANGES)} top_k={args.top_k} actions={n_act}")
    print(f"generate data {gen_s:.2f}s, build env (ranking included) {build_s:.2f}s")
    print(f"{'setup':<34}{'env-steps/s':>14}{'us/vec-step':>13}")
    for n in args.n_envs:
        env = FundingVecEnv(days, cfg, reward, n_envs=n, seed=0)
        rate = masked_rate(env, args.steps)
        print(f"{f'FundingVecEnv({n})':<34}{rate:>14,.0f}{n / rate * 1e6:>13.1f}")
    dummy = DummyVecEnv([lambda: FundingEnv(days, cfg, reward) for _ in range(8)])
    rate = masked_rate(dummy, args.dummy_steps, lambda: get_action_masks(dummy))
    print(f"{'DummyVecEnv(8) of FundingEnv':<34}{rate:>14,.0f}{8 / rate * 1e6:>13.1f}")


if __name__ == "__main__":
    main()
