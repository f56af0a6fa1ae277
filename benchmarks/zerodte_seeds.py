"""The 0DTE family's done-criterion figures: on the default data, over several training seeds, each run's net P&L
per held-out day against every baseline's, the IQM with its stratified-bootstrap interval, and the checks. Runs
the workflow the assets run (dataset, audit, training, evaluation) without Dagster, on the embedded market and
chains in a temporary warehouse. Prints what it measured; asserts nothing.

    python benchmarks/zerodte_seeds.py [--seeds 0 1 2] [--timesteps 200000] [--slices 2]
    python benchmarks/zerodte_seeds.py --start 2023-01-03 --train-days 250 --timesteps 1000000
    python benchmarks/zerodte_seeds.py --ppo gamma=0.999 --ppo ent_coef=0.005
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import embedded_warehouse  # noqa: E402
from market.calendar import sessions  # noqa: E402
from rl.core import workflow  # noqa: E402
from rl.core.family import load_family  # noqa: E402
from rl.core.registry import get_family  # noqa: E402
from rl.core.reward import load_reward  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=None, help="per run (default: the config's)")
    parser.add_argument("--slices", type=int, default=None, help="walk-forward slices (default: the config's)")
    parser.add_argument("--start", default=None, help="first session, ISO date (default: the config's)")
    parser.add_argument("--end", default=None, help="last session, ISO date (default: the config's)")
    parser.add_argument("--train-days", type=int, default=None, help="sessions each slice trains on")
    parser.add_argument("--reward", default=None, help="reward file under configs/ (default: the config's)")
    parser.add_argument("--ppo", action="append", default=[], metavar="KEY=VALUE", help="a PPO setting (repeatable)")
    args = parser.parse_args()
    base = load_family(ROOT / "configs" / "zerodte.yaml")
    dates = {k: date.fromisoformat(v) for k, v in (("start", args.start), ("end", args.end)) if v}
    data = dataclasses.replace(base.data, **dates)
    walk = {"slices": args.slices, "train_days": args.train_days}
    cfg = dataclasses.replace(
        base,
        data=data,
        seeds=tuple(args.seeds),
        reward=args.reward or base.reward,
        ppo=dataclasses.replace(
            base.ppo, total_timesteps=args.timesteps or base.ppo.total_timesteps, **_settings(args.ppo)
        ),
        walk_forward=dataclasses.replace(base.walk_forward, **{k: v for k, v in walk.items() if v}),
    )
    family = get_family("zerodte")
    reward = load_reward(ROOT / "configs" / cfg.reward, family.reward_components)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        con = embedded_warehouse(out / "w.duckdb", cfg.data.symbols, sessions(cfg.data.start, cfg.data.end), True)
        frame = family.load_data(con, cfg)
        con.close()
        manifest = workflow.build_dataset(frame, cfg, out / "datasets")
        del frame  # the warehouse rows: gigabytes over a long range, and the arrays hold all they carry
        print(
            f"data: {len(manifest.dates)} sessions of {', '.join(manifest.symbols)} in {time.perf_counter() - t0:.0f}s"
        )
        t1 = time.perf_counter()
        audit = workflow.audit_family(manifest, cfg, reward)
        policy = workflow.train_family(manifest, cfg, reward, audit, out / "ck", log=lambda _: None)
        steps = cfg.ppo.total_timesteps * len(cfg.training_seeds()) * cfg.walk_forward.slices
        print(f"training: {steps:,} env-steps over {len(policy.checkpoints)} runs in {time.perf_counter() - t1:.0f}s")
        outcome = workflow.evaluate_family(manifest, policy, cfg, reward, out / "reports")
    comparison = outcome.checks["beats_baselines"]["comparison"]
    baselines = list(comparison["baselines"])
    print(f"{'slice':<14} agent runs (net P&L a held-out day, one per seed) | " + ", ".join(baselines))
    for task, scores in comparison["agent_runs"].items():
        per = outcome.metrics[task]
        days = {p: per[p]["sessions"] / len(cfg.data.symbols) for p in baselines}
        theirs = "  ".join(f"{per[p]['total_pnl'] / days[p]:+10,.0f}" for p in baselines)
        print(f"{task:<14} " + "  ".join(f"{s:+10,.0f}" for s in scores) + f" | {theirs}")
    print(f"{'policy':<14} {'IQM':>10}   95% interval")
    for name, v in {"agent": comparison["agent"], **comparison["baselines"]}.items():
        print(f"{name:<14} {v['iqm']:+10,.0f}   [{v['low']:+,.0f}, {v['high']:+,.0f}]")
    for name, v in comparison["versus"].items():
        print(
            f"agent - {name:<14} {v['iqm_diff']:+10,.0f}   [{v['iqm_diff_low']:+,.0f}, {v['iqm_diff_high']:+,.0f}]"
            f"   P(agent > {name}) {v['poi']:.2f}"
        )
    shown = ("trades_per_day", "win_rate", "avg_premium_return", "stops", "mix_hold", "mix_exit", "mix_trim_50")
    shown += tuple(f"tier_{i}_hits" for i in range(1, 7))
    for name in ("agent", "momentum"):
        row = outcome.metrics["all"].get(name, {})
        print(f"{name}, all held-out sessions: " + ", ".join(f"{k} {row[k]:.3g}" for k in shown if k in row))
    print("checks: " + ", ".join(f"{k} {'pass' if v['passed'] else 'FAIL'}" for k, v in outcome.checks.items()))
    for name, check in outcome.checks.items():
        if not check["passed"] and name != "beats_baselines":
            print(f"  {name}: {check.get('detail', '')}")


def _settings(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE pairs with YAML values (0.999, [64, 64], relu)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--ppo wants KEY=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


if __name__ == "__main__":
    main()
