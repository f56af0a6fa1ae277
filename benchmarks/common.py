"""What the env and family benchmarks share: the masked random-valid stepping they time, and the env-then-training
run of a family's batched env (printed as numbers and ratios to the goals; nothing is asserted)."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

TRAIN_GOAL = 1e4  # MaskablePPO env-steps/s on every family


def masked_rate(env: Any, steps: int, masks_fn: Callable[[], np.ndarray] | None = None, seed: int = 0) -> float:
    """Env-steps per second over `steps` steps of a masked rollout without the network (after a 10-step warm-up):
    read the masks, draw a random valid action per env, step_async + step_wait (auto-resets included)."""
    masks_fn = masks_fn or env.action_masks
    n, width = env.num_envs, env.action_space.n
    rng = np.random.default_rng(seed)
    env.reset()
    for _ in range(10):
        env.step(np.argmax(rng.random((n, width)) * masks_fn(), axis=1))
    start = time.perf_counter()
    for _ in range(steps):
        masks = masks_fn()
        env.step_async(np.argmax(rng.random((n, width)) * masks, axis=1))
        env.step_wait()
    return n * steps / (time.perf_counter() - start)


def family_args(doc: str | None) -> argparse.Namespace:
    """The options of a family benchmark: env batch sizes, timed steps, training steps."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-envs", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--train-steps", type=int, default=65_536)
    return parser.parse_args()


def bench_family(
    label: str, make: Callable[[int, int], Any], days: Any, family: Any, reward: Any, args: argparse.Namespace,
    env_goal: float,
) -> None:  # fmt: skip
    """Print the batched env's masked rate at each `args.n_envs` against `env_goal`, then MaskablePPO's training
    rate on it with the family's PPO settings against the 10k goal. `make(n_envs, seed)` builds the env."""
    from rl.core.train import TrainPhase, train_policy

    goal = f"ratio to {env_goal / 1e6:g}M"
    print(f"{'setup':<34}{'env-steps/s':>14}{goal:>14}")
    best = 0.0
    for n in args.n_envs:
        rate = masked_rate(make(n, 0), args.steps)
        best = max(best, rate)
        print(f"{f'{label}({n}) action_masks()':<34}{rate:>14,.0f}{rate / env_goal:>14.2f}")
    print(f"best batched: {best:,.0f} env-steps/s = {best / env_goal:.2f} of the {env_goal / 1e6:g}M goal")
    ppo = dataclasses.replace(family.ppo, total_timesteps=args.train_steps)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_policy(days, family.env, reward, ppo, Path(tmp) / "ckpt",
                              [TrainPhase("bench", args.train_steps, make)], {"run_id": "bench"})  # fmt: skip
    rate = result.stats.steps_per_s
    print(f"training (n_envs={ppo.n_envs}, n_steps={ppo.n_steps}, batch {ppo.batch_size}, {ppo.n_epochs} epochs, "
          f"net {list(ppo.net_arch)}): {rate:,.0f} env-steps/s = {rate / TRAIN_GOAL:.2f} of the 10k goal")  # fmt: skip


def embedded_warehouse(path: Path, symbols: Sequence[str], days: Sequence[date], chains: bool = False) -> Any:
    """A DuckDB warehouse at `path` holding the embedded market's `days` of `symbols`: ticks, bars and features,
    and the same-day option chains with `chains` (the data a family's seeds benchmark trains on)."""
    from market.sources import SyntheticSource
    from warehouse.bars import build_bars
    from warehouse.db import connect
    from warehouse.features import build_features
    from warehouse.ingest import ingest_day
    from warehouse.options import build_chain

    con = connect(path)
    source = SyntheticSource()
    for d in days:
        ingest_day(con, source, list(symbols), d)
        build_bars(con, d)
        build_features(con, d)
        if chains:
            build_chain(con, d, list(symbols))
    return con
