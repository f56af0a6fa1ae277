"""What resumable training costs: the intraday family's PPO settings on its synthetic days, trained three ways.

1. uninterrupted, with partial saves off (`save_every: 0`);
2. uninterrupted, saving a partial state every `--save-every` steps (the saves' overhead);
3. interrupted right after the save at half the steps, then resumed from it (the reload's overhead; with a kill
   between saves, the steps since the last save are also trained again).

Printed as wall times and ratios to run 1; nothing is asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from rl.core.family import load_family
from rl.core.reward import load_reward
from rl.core.train import train_policy
from rl.families.intraday import FAMILY

ROOT = Path(__file__).resolve().parents[1]


class Interrupt(Exception):
    """Raised from the partial save at half the steps: stands in for a kill -9 right after it."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=131_072)
    parser.add_argument("--save-every", type=int, default=32_768)
    args = parser.parse_args()
    import rl.core.resume as resume

    cfg = load_family(ROOT / "configs" / "intraday.yaml")
    reward = load_reward(ROOT / "configs" / cfg.reward, FAMILY.reward_components)
    days = FAMILY.synthetic_days(0)
    env = FAMILY.env_factory(days, cfg.env, reward)
    base = dataclasses.replace(cfg.ppo, total_timesteps=args.steps)
    real_save = resume.save_partial

    def run(name: str, save_every: int, tmp: Path) -> float:
        ppo = dataclasses.replace(base, save_every=save_every)
        start = time.perf_counter()
        try:
            train_policy(days, cfg.env, reward, ppo, tmp / name, env, partial_dir=tmp / ".partial" / name)
        except Interrupt:
            resume.save_partial = real_save
            train_policy(days, cfg.env, reward, ppo, tmp / name, env, partial_dir=tmp / ".partial" / name)
        return time.perf_counter() - start

    def save_then_interrupt(model, state, folder):
        real_save(model, state, folder)
        if state["phase_steps"] >= args.steps // 2:
            raise Interrupt

    with tempfile.TemporaryDirectory() as tmp:
        plain = run("plain", 0, Path(tmp))
        saving = run("saving", args.save_every, Path(tmp))
        resume.save_partial = save_then_interrupt
        resumed = run("resumed", args.save_every, Path(tmp))
        resume.save_partial = real_save
    print(f"{'run':<44}{'wall s':>10}{'ratio':>10}")
    for label, wall in (
        ("uninterrupted, no partial saves", plain),
        (f"uninterrupted, a partial save every {args.save_every:,} steps", saving),
        ("interrupted after the save at half, resumed", resumed),
    ):
        print(f"{label:<44}{wall:>10.1f}{wall / plain:>10.3f}")
    print(f"{args.steps:,} steps; save overhead {saving - plain:+.1f} s, resume overhead {resumed - saving:+.1f} s")


if __name__ == "__main__":
    main()
