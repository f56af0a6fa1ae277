"""The prop-firm family's done-criterion figures: on the default data, over several training seeds, the agent's
pass rate against every baseline's on the held-out slices, with Wilson intervals, breach counts and each seed's
phase-1 gate. Runs the same workflow the assets run (gated stage, gate, accounts stage, evaluation), without
Dagster, on the embedded market in a temporary warehouse. Prints a table; asserts nothing.

    python benchmarks/propfirm_seeds.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import embedded_warehouse  # noqa: E402
from market.calendar import CME_EQUITY, sessions  # noqa: E402
from rl.core import workflow  # noqa: E402
from rl.core.family import load_family  # noqa: E402
from rl.core.registry import get_family  # noqa: E402
from rl.core.reward import load_reward  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    base = load_family(ROOT / "configs" / "propfirm.yaml")
    family = get_family("propfirm")
    reward = load_reward(ROOT / "configs" / base.reward, family.reward_components)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        days = sessions(base.data.start, base.data.end, CME_EQUITY)
        con = embedded_warehouse(out / "w.duckdb", base.data.symbols, days)
        frame = family.load_data(con, base)
        con.close()
        manifest = workflow.build_dataset(frame, base, out / "datasets")
        del frame  # the warehouse rows: gigabytes over a long range, and the arrays hold all they carry
        print(
            f"data: {len(manifest.dates)} CME days of {', '.join(manifest.symbols)} in {time.perf_counter() - t0:.0f}s"
        )
        header = (
            f"{'seed':>4} {'gate':>5} {'policy':<14} {'pass rate [90% interval]':<26} {'breaches':>8} {'data end':>8}"
        )
        print(header)
        for seed in args.seeds:
            cfg = dataclasses.replace(base, ppo=dataclasses.replace(base.ppo, seed=seed))
            audit = workflow.audit_family(manifest, cfg, reward)
            gated = workflow.train_family(manifest, cfg, reward, audit, out / "ck", log=lambda _: None, stage="gated")
            gate = workflow.gate_family(manifest, gated, cfg, reward)
            if not gate["passed"]:
                print(f"{seed:>4} {'FAIL':>5} {gate['detail']}")
                continue
            final = workflow.train_family(
                manifest, cfg, reward, audit, out / "ck", log=lambda _: None, stage="rest", start=gated.with_gate(gate)
            )
            outcome = workflow.evaluate_family(manifest, final, cfg, reward, out / "reports")
            for policy, m in outcome.metrics["all"].items():
                interval = f"{m['pass_rate']:.0%} [{m['pass_rate_low']:.0%}, {m['pass_rate_high']:.0%}]"
                breaches = int(m["ended_trailing_drawdown"] + m["ended_daily_loss"])
                print(f"{seed:>4} {'ok':>5} {policy:<14} {interval:<26} {breaches:>8} {int(m['ended_end_of_data']):>8}")
            print(f"     gate: {gate['detail']}")
            verdicts = ", ".join(f"{k} {v['passed']}" for k, v in outcome.checks.items())
            print(f"     checks: {verdicts}")


if __name__ == "__main__":
    main()
