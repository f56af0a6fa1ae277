"""The main command: materialize the whole asset graph on the default data into the tradeflow home.

Runs the same Definitions the UI loads, against a persistent Dagster instance under `<home>/dagster`,
so every run, check and report is visible afterwards in `dagster dev`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
FAMILIES = ("intraday", "funding")


def data_partitions(kind: str, start: date, end: date) -> tuple[str, list[date]]:
    """The data job a family kind needs and the partitions (days) it must cover for [start, end]."""
    if kind == "intraday":
        from market.calendar import sessions

        return "market_data_job", sessions(start, end)
    if kind == "funding":
        # The funding dataset also reads rates published before its first day (the latest rate at hour 0).
        from warehouse.funding import RATE_LOOKBACK_DAYS

        first = start - timedelta(days=RATE_LOOKBACK_DAYS)
        return "funding_data_job", [first + timedelta(days=i) for i in range((end - first).days + 1)]
    raise ValueError(f"unknown family kind {kind!r}")


def run_demo(families: tuple[str, ...] = FAMILIES) -> dict[str, Path]:
    """Fill each family's declared days with market data, then observe, audit, train and evaluate."""
    from pipelines.settings import ensure_dagster_home, tradeflow_home

    home = tradeflow_home()
    os.environ["DAGSTER_HOME"] = str(ensure_dagster_home(home))

    import dagster as dg

    from pipelines.definitions import defs
    from rl.family import load_family

    instance = dg.DagsterInstance.get()
    instance.upgrade()
    configs = defs.resources["configs"]
    reports: dict[str, Path] = {}
    for family in families:
        cfg = load_family(configs.family_path(family))
        data_job, days = data_partitions(cfg.kind, cfg.data.start, cfg.data.end)
        t0 = time.perf_counter()
        _step(f"{family}: {data_job} for {len(days)} partitions {days[0]}..{days[-1]}")
        defs.resolve_job_def(data_job).execute_in_process(
            run_config=QUIET,
            instance=instance,
            tags={PARTITION_RANGE_START: days[0].isoformat(), PARTITION_RANGE_END: days[-1].isoformat()},
        )
        _step(f"{family}: market data done in {time.perf_counter() - t0:.1f}s; observing the reward config")
        defs.resolve_implicit_global_asset_job_def().execute_in_process(
            run_config=QUIET, instance=instance, asset_selection=[dg.AssetKey(f"{family}_reward_config")]
        )
        t1 = time.perf_counter()
        result = defs.resolve_job_def(f"{family}_training_job").execute_in_process(run_config=QUIET, instance=instance)
        summary = result.output_for_node(f"{family}_evaluation")
        _step(f"{family}: dataset, audit, training and evaluation done in {time.perf_counter() - t1:.1f}s")
        reports[family] = Path(summary["report_path"])
    return reports


def _step(message: str) -> None:
    print(f"[tradeflow] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", action="append", help=f"agent family to run (default: all of {FAMILIES})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    reports = run_demo(tuple(args.family or FAMILIES))
    print()
    for family, path in reports.items():
        print(f"{family} evaluation report: {path}")
    print(f"total wall time: {time.perf_counter() - start:.1f}s")
    print("Open the UI (bound to 127.0.0.1): bash scripts/ui.sh   then browse http://127.0.0.1:3000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
