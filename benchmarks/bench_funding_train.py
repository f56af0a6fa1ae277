"""The funding family's long run: train on the embedded market walk-forward, evaluate held-out against baselines.

Runs the same plain-Python workflow as the Dagster assets (dataset -> reward audit -> MaskablePPO per slice ->
held-out evaluation with baselines, checks and report) on the synthetic funding market, without the warehouse.
Prints training env-steps/s and held-out P&L per policy, for the default reward and, with --v2, seed 004's.

    python benchmarks/bench_funding_train.py [--steps 300000] [--v2] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from market.funding import FundingMarketConfig, generate_funding_day  # noqa: E402
from rl.core import workflow  # noqa: E402
from rl.core.family import load_family  # noqa: E402
from rl.core.registry import get_family  # noqa: E402
from rl.core.reward import load_reward  # noqa: E402
from warehouse.funding import RATE_LOOKBACK_DAYS as LOOKBACK_DAYS  # noqa: E402


def frames(cfg, start, end) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Funding rates (from LOOKBACK_DAYS before start) and marks through `end`, as the warehouse would return."""
    market = FundingMarketConfig()
    n = (end - start).days + 1 + LOOKBACK_DAYS
    tapes = [generate_funding_day(market, start - timedelta(days=LOOKBACK_DAYS - i)) for i in range(n)]
    rates = pl.concat([t.funding_rates for t in tapes])
    marks = pl.concat([t.mark_prices for t in tapes])
    return rates, marks.filter(pl.col("ts") >= pl.datetime(start.year, start.month, start.day))


def run(reward_file: str, steps: int, seed: int, out: Path) -> dict[str, dict[str, float]]:
    cfg = load_family(ROOT / "configs" / "funding.yaml")
    cfg = dataclasses.replace(
        cfg, reward=reward_file, ppo=dataclasses.replace(cfg.ppo, total_timesteps=steps, seed=seed)
    )
    reward = load_reward(ROOT / "configs" / reward_file, get_family(cfg.kind).reward_components)
    t0 = time.perf_counter()
    manifest = workflow.build_dataset(frames(cfg, cfg.data.start, cfg.data.end), cfg, out)
    audit = workflow.audit_family(manifest, cfg, reward)
    print(f"  dataset + audit {time.perf_counter() - t0:.1f}s; audit passed={audit.passed} {list(audit.problems)}")
    artifact = workflow.train_family(manifest, cfg, reward, audit, out / "checkpoints", log=lambda m: None)
    for name, stats in artifact.stats.items():
        rate = stats["steps_per_s"]
        print(f"  {name}: {stats['timesteps']:.0f} steps in {stats['wall_s']:.1f}s = {rate:,.0f} env-steps/s")
    outcome = workflow.evaluate_family(manifest, artifact, cfg, reward, out / "reports")
    overall = outcome.metrics["all"]
    for policy, m in overall.items():
        print(
            f"  {policy:<13} P&L {m['total_pnl']:>+10,.0f}  mean/episode {m['mean_pnl_pct']:+.2f}%  "
            f"win {m['win_rate']:.0%}  trips {m['round_trips']:.0f}  funding {m['funding']:+,.0f}  "
            f"fees {m['fees']:+,.0f}  reward {m['total_reward']:+,.1f}  top-symbol {m['top_symbol_share']:.0%}"
        )
    for name, check in outcome.checks.items():
        print(f"  check {name}: {'PASS' if check['passed'] else 'FAIL'}: {check['detail']}")
    print(f"  report: {outcome.report_path}")
    return overall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300_000, help="PPO env steps per walk-forward slice")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--v2", action="store_true", help="also train seed 004's v2 reward")
    args = parser.parse_args()
    rewards = ["rewards/funding.yaml"] + (["rewards/funding_seed004_v2.yaml"] if args.v2 else [])
    with tempfile.TemporaryDirectory() as tmp:
        for reward_file in rewards:
            wins = 0
            for seed in args.seeds:
                print(f"{reward_file} seed {seed}:")
                overall = run(reward_file, args.steps, seed, Path(tmp) / f"{Path(reward_file).stem}-{seed}")
                agent = overall["agent"]["total_pnl"]
                best = max(overall[p]["total_pnl"] for p in ("never_trade", "greedy"))
                wins += agent > best
                print(f"  agent - best baseline: {agent - best:+,.0f}")
            print(f"{reward_file}: agent beat both baselines in {wins}/{len(args.seeds)} seeds")


if __name__ == "__main__":
    main()
