"""What a behaviour-cloning warm start buys: env steps until the agent matches the best baseline on validation days.

Reads the family's dataset that the main command built (`<home>/datasets/<family>/`). On the first walk-forward
slice, the last `--validation-days` of the training window are held back; PPO trains on the rest, with and without
a warm start cloning `--teacher`, and every `--eval-every` steps both are played on the validation days against
the family's baselines (never on the slice's test days). Printed: each evaluation's net P&L, and the first step
count at which the agent's P&L reached the best baseline's. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from assets.settings import tradeflow_home
from rl.core.family import load_family
from rl.core.policies import agent
from rl.core.registry import get_family
from rl.core.reward import load_reward
from rl.core.train import build_model, torch_threads
from rl.core.walkforward import walk_forward_slices
from rl.core.warmstart import behaviour_clone, demonstrations

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="zerodte")
    parser.add_argument("--teacher", default="momentum")
    parser.add_argument("--steps", type=int, default=393_216)
    parser.add_argument("--eval-every", type=int, default=65_536)
    parser.add_argument("--validation-days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    family = get_family(args.family)
    cfg = load_family(ROOT / "configs" / f"{args.family}.yaml")
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, seed=args.seed))
    reward = load_reward(ROOT / "configs" / cfg.reward, family.reward_components)
    (path,) = sorted((tradeflow_home() / "datasets" / args.family).glob("*.npz"), key=lambda p: p.stat().st_mtime)[-1:]
    days = family.load_days(path)
    first = walk_forward_slices(sorted({d.item() for d in days.dates.astype("datetime64[D]")}), cfg.walk_forward)[0]
    train = days.select_dates(first.train_dates[: -args.validation_days])
    validation = days.select_dates(first.train_dates[-args.validation_days :])
    make_env = family.env_factory(train, cfg.env, reward)
    teacher = family.teachers(train, cfg)[args.teacher]
    warm = dataclasses.replace(cfg.warm_start, teacher=args.teacher)

    def validate(model) -> tuple[float, str, float]:
        results = family.evaluate(agent(model), validation, cfg, reward, "agent")
        pnl = {name: family.metrics(r)["total_pnl"] for name, r in results.items()}
        best = max((n for n in pnl if n != "agent"), key=pnl.get)
        return pnl["agent"], best, pnl[best]

    print(f"{args.family} slice {first.name}: {len(train.dates)} training episodes, validation "
          f"{first.train_dates[-args.validation_days]}..{first.train_dates[-1]}; teacher {args.teacher}")  # fmt: skip
    print(f"{'run':<8}{'steps':>10}{'agent P&L':>14}{'best baseline':>26}{'wall s':>9}")
    reached = {}
    with torch_threads(cfg.ppo.torch_threads):
        for label in ("cold", "warm"):
            start = time.perf_counter()
            model = build_model(make_env, cfg.ppo)
            if label == "warm":
                env = make_env(cfg.ppo.n_envs, args.seed + 7919)
                stats = behaviour_clone(model, demonstrations(env, teacher(env), warm.steps), warm, args.seed)
                print(f"  warm start: agreement with {args.teacher} {stats['epochs'][-1]['agreement']:.1%}")
            steps = 0
            while True:
                mine, best, theirs = validate(model)
                print(f"{label:<8}{steps:>10,}{mine:>+14,.0f}{f'{best} {theirs:+,.0f}':>26}"
                      f"{time.perf_counter() - start:>9.0f}")  # fmt: skip
                if mine >= theirs and label not in reached:
                    reached[label] = steps
                if steps >= args.steps:
                    break
                model.learn(args.eval_every, reset_num_timesteps=steps == 0)
                steps = model.num_timesteps
    for label in ("cold", "warm"):
        at = reached.get(label)
        print(f"{label}: reached the best baseline's validation P&L " + (f"at {at:,} steps" if at is not None else
              f"not within {args.steps:,} steps"))  # fmt: skip


if __name__ == "__main__":
    main()
