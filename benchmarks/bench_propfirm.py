"""Prop-firm throughput: the batched env with masks (goal 2M env-steps/s) and MaskablePPO training on it (goal
10k env-steps/s), on synthetic ES days with the shipped rule book, config and reward.

Each timed env step does what a masked rollout does besides the network: read the masks, draw a random valid action
per env, step (auto-resets and day rolls included). Prints numbers and ratios; asserts nothing.

    python benchmarks/bench_propfirm.py [--n-envs 256 1024 4096] [--steps 300] [--train-steps 65536]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_family, family_args  # noqa: E402
from rl.core.family import load_family  # noqa: E402
from rl.core.registry import get_family  # noqa: E402
from rl.core.reward import load_reward  # noqa: E402
from rl.families.propfirm.data import synthetic_futures_days  # noqa: E402
from rl.families.propfirm.env import PropFirmVecEnv  # noqa: E402


def main() -> None:
    args = family_args(__doc__)
    family = load_family(ROOT / "configs" / "propfirm.yaml")
    reward = load_reward(ROOT / "configs" / family.reward, get_family("propfirm").reward_components)
    # 20 Globex-like days of 1,380 minutes from 17:00 CT: the window 09:30-16:59 ET is 449 bars of each.
    days = synthetic_futures_days(n_days=20, n_minutes=1380, first_bar="2024-03-03T23:00", seed=0, n_features=31)
    print(f"days={days.n_days} minutes={days.bars.max_minutes} features={len(days.feature_names)} "
          f"rule book={family.env.rulebook.name} max_contracts={family.env.max_contracts}")  # fmt: skip
    make = lambda n, seed: PropFirmVecEnv(days, family.env, reward, n_envs=n, seed=seed)  # noqa: E731
    bench_family("PropFirmVecEnv", make, days, family, reward, args, env_goal=2e6)


if __name__ == "__main__":
    main()
