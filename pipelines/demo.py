"""The main command: materialize the whole asset graph on the default data into the tradeflow home.

Runs the same Definitions the UI loads, against a persistent Dagster instance under `<home>/dagster`,
so every run, check and report is visible afterwards in `dagster dev`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run_demo(families: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Fill each family's declared days with market data, then observe, audit, train, evaluate and promote, and play
    the promoted policies over the next partition (shadow signals)."""
    from assets.family import SOURCE_SUFFIXES
    from assets.settings import ensure_dagster_home, tradeflow_home

    home = tradeflow_home()
    os.environ["DAGSTER_HOME"] = str(ensure_dagster_home(home))

    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.recovery import recover
    from rl.core.registry import get_family, kinds

    instance = dg.DagsterInstance.get()
    instance.upgrade()
    for line in recover(instance):  # a run killed earlier must not hold the warehouse slot (no daemon runs here)
        _step(f"recovered {line}")
    configs = defs.resources["configs"]
    chosen = list(families or kinds())
    # Each data job runs once, over every chosen family's days (families sharing a job share its partitions).
    spans: dict[str, list] = {}
    for family in chosen:
        cfg = configs.family(family)
        spans.setdefault(get_family(cfg.kind).data_job, []).extend(get_family(cfg.kind).data_partitions(cfg))
    for data_job, days in spans.items():
        first, last = min(days), max(days)
        t0 = time.perf_counter()
        _step(f"{data_job} for {len(set(days))} family days {first}..{last}")
        defs.resolve_job_def(data_job).execute_in_process(
            run_config=QUIET,
            instance=instance,
            tags={PARTITION_RANGE_START: first.isoformat(), PARTITION_RANGE_END: last.isoformat()},
        )
        _step(f"{data_job} done in {time.perf_counter() - t0:.1f}s")
    reports: dict[str, Path] = {}
    for family in chosen:
        _step(f"{family}: observing the config sources")
        defs.resolve_implicit_global_asset_job_def().execute_in_process(
            run_config=QUIET,
            instance=instance,
            asset_selection=[dg.AssetKey(f"{family}_{suffix}") for suffix in SOURCE_SUFFIXES],
        )
        t1 = time.perf_counter()
        result = defs.resolve_job_def(f"{family}_training_job").execute_in_process(run_config=QUIET, instance=instance)
        summary = result.output_for_node(f"{family}_evaluation")
        _step(f"{family}: dataset, audit, training and evaluation done in {time.perf_counter() - t1:.1f}s")
        reports[family] = Path(summary["report_path"])
    shadow_partitions(defs, instance, chosen)
    return reports


def shadow_plan(configs, families: list[str]) -> dict[str, dict[str, list[str]]]:
    """Data job -> the partition after each family's data range -> the families whose shadow signals play there."""
    from assets.partitions import DATA_PARTITIONS
    from rl.core.registry import get_family

    wanted: dict[str, dict[str, list[str]]] = {}
    for family in families:
        cfg = configs.family(family)
        data_job = get_family(cfg.kind).data_job
        day = DATA_PARTITIONS[data_job].get_next_partition_key(cfg.data.end.isoformat())
        if day is not None:
            wanted.setdefault(data_job, {}).setdefault(day, []).append(family)
    return wanted


def shadow_partitions(defs, instance, families: list[str]) -> None:
    """The nightly cycle once: each family's data for the partition after its data range, then its shadow signals
    there (the promoted policy's decisions on a day no checkpoint or evaluation has seen)."""
    import dagster as dg

    for data_job, days in shadow_plan(defs.resources["configs"], families).items():
        for day, names in days.items():
            t0 = time.perf_counter()
            defs.resolve_job_def(data_job).execute_in_process(run_config=QUIET, instance=instance, partition_key=day)
            keys = [dg.AssetKey(f"{name}_signals") for name in names]
            result = defs.resolve_job_def(data_job.replace("_data_job", "_signals_job")).execute_in_process(
                run_config=QUIET, instance=instance, partition_key=day, asset_selection=keys
            )
            for name in names:
                out = result.output_for_node(f"{name}_signals")
                pnl = f"net P&L {out['net_pnl']:+,.2f}" if "net_pnl" in out else out.get("note", "")
                _step(f"{name}: shadow signals for {day}: {out['decisions']} decisions, {pnl}")
            _step(f"{data_job} and shadow signals for {day} done in {time.perf_counter() - t0:.1f}s")


def _step(message: str) -> None:
    print(f"[tradeflow] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", action="append", help="agent family to run (default: every registered one)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    reports = run_demo(tuple(args.family) if args.family else None)
    print()
    for family, path in reports.items():
        print(f"{family} evaluation report: {path}")
    print(f"total wall time: {time.perf_counter() - start:.1f}s")
    print("Open the UI (bound to 127.0.0.1): bash scripts/ui.sh   then browse http://127.0.0.1:3000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
