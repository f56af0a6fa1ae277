"""0DTE throughput: the batched env with masks (goal 1M env-steps/s, the chain priced once per partition and read
from arrays) and MaskablePPO training on it (goal 10k env-steps/s), on synthetic SPY sessions of 390 minutes with
a 62-contract chain, the shipped config and reward, and seed 003's 20 x 23 observation window.

Each timed env step does what a masked rollout does besides the network: read the masks, draw a random valid action
per env, step (auto-resets included). Prints numbers and ratios; asserts nothing.

    python benchmarks/bench_zerodte.py [--n-envs 256 1024 4096] [--steps 300] [--train-steps 65536]
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
from rl.families.zerodte.data import synthetic_option_days  # noqa: E402
from rl.families.zerodte.env import ZeroDteVecEnv  # noqa: E402


def main() -> None:
    args = family_args(__doc__)
    days = synthetic_option_days(n_days=20, n_minutes=390, n_features=22, strikes_each_side=15)
    family = load_family(ROOT / "configs" / "zerodte.yaml")
    cfg = family.env
    reward = load_reward(ROOT / "configs" / family.reward, get_family("zerodte").reward_components)
    print(f"days={days.n_days} minutes={days.bars.max_minutes} contracts={days.n_contracts} "
          f"observation={cfg.window}x{len(days.feature_names)}+state")  # fmt: skip
    make = lambda n, seed: ZeroDteVecEnv(days, cfg, reward, n_envs=n, seed=seed)  # noqa: E731
    bench_family("ZeroDteVecEnv", make, days, family, reward, args, env_goal=1e6)


if __name__ == "__main__":
    main()
