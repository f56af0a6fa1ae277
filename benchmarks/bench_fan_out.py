"""An 8-training fan-out: the intraday policy's 4 slices x 2 seeds as one step, and as a step per run on 1 and 2
worker processes.

The same dataset and seeds each time. `one step` is the embedded default (every run in one process, one after
another, in process). `fanned` is TRADEFLOW_FAN_OUT=1 launched as a real run on Dagster's multiprocess executor,
with at most N steps at once: N worker processes, the single-machine stand-in for N Celery workers (which run the
same steps; see README "When one machine is not enough"). The figures: wall time of the training job, the
speed-up of 2 workers over 1, and the overhead per step (fanned on 1 worker against one step, per training
run). Prints numbers and ratios; asserts nothing.

    python benchmarks/bench_fan_out.py                    # 8 runs of 8,192 env-steps
    python benchmarks/bench_fan_out.py --timesteps 32768
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RANGE = {"dagster/asset_partition_range_start": "2024-01-02", "dagster/asset_partition_range_end": "2024-02-09"}


def _configs(tmp: Path, timesteps: int) -> Path:
    configs = tmp / "configs"
    shutil.copytree(ROOT / "configs", configs)
    market = yaml.safe_load((configs / "market.yaml").read_text())
    market["embedded"]["trades_per_day"] = 3000
    (configs / "market.yaml").write_text(yaml.safe_dump(market, sort_keys=False))
    family = yaml.safe_load((configs / "intraday.yaml").read_text())
    family["data"].update({"start": RANGE["dagster/asset_partition_range_start"], "end": "2024-02-09"})
    family["walk_forward"].update({"train_days": 10, "test_days": 3, "slices": 4})
    family["seeds"] = [1, 2]
    family["ppo"].update({"total_timesteps": timesteps, "n_envs": 16, "n_steps": 64, "batch_size": 256})
    (configs / "intraday.yaml").write_text(yaml.safe_dump(family, sort_keys=False))
    return configs


def _timed_fanned(instance, workers: int) -> float:
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    repo = ReconstructableRepository.for_module("pipelines.definitions", "defs", working_directory=str(ROOT))
    job = repo.get_reconstructable_job("intraday_training_job")
    config = {"execution": {"config": {"multiprocess": {"max_concurrent": workers}}}}
    t0 = time.perf_counter()
    with dg.execute_job(job, instance=instance, run_config=config) as result:
        if not result.success:
            raise RuntimeError(f"the fanned-out training on {workers} worker(s) failed")
        steps = [e.step_key for e in result.get_step_success_events() if "train_run[" in e.step_key]
    if len(steps) != 8:
        raise RuntimeError(f"expected 8 training steps, got {steps}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=8192, help="env-steps per training run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.update(
            {"TRADEFLOW_HOME": str(tmp / "home"), "TRADEFLOW_CONFIG_DIR": str(_configs(tmp, args.timesteps))}
        )
        import dagster as dg

        os.environ["TRADEFLOW_FAN_OUT"] = "1"  # the module's defs, which the step processes rebuild, fan out
        from pipelines.definitions import build_definitions

        os.environ["TRADEFLOW_FAN_OUT"] = "0"
        defs = build_definitions()  # the one-step default, in this process only
        os.environ["TRADEFLOW_FAN_OUT"] = "1"
        from assets.settings import ensure_dagster_home

        instance = dg.DagsterInstance.from_config(str(ensure_dagster_home(tmp / "home")))  # the duckdb pool
        if not defs.resolve_job_def("market_data_job").execute_in_process(instance=instance, tags=RANGE).success:
            raise RuntimeError("market data failed")
        t0 = time.perf_counter()
        if not defs.resolve_job_def("intraday_training_job").execute_in_process(instance=instance).success:
            raise RuntimeError("the one-step training failed")
        one_step = time.perf_counter() - t0
        one, two = _timed_fanned(instance, 1), _timed_fanned(instance, 2)
        instance.dispose()
    print(f"intraday training job: 4 slices x 2 seeds = 8 runs of {args.timesteps:,} env-steps (dataset, audit, "
          "training, evaluation)")  # fmt: skip
    print(f"one step, in process:          {one_step:7.1f} s")
    print(f"fanned out, 1 worker process:  {one:7.1f} s")
    print(f"fanned out, 2 worker processes:{two:7.1f} s")
    print(f"speed-up, 2 workers over 1:    {one / two:7.2f}x")
    print(f"speed-up, 2 workers over one step: {one_step / two:5.2f}x")
    print(f"overhead per step (1 worker against one step): {(one - one_step) / 8:+.1f} s per training run")


if __name__ == "__main__":
    main()
