"""A family is one folder plus one registry entry: the test family appears everywhere with no other edit, and the
layers only import downwards (pipelines -> assets -> rl.families -> rl.core; nothing below imports upwards)."""

from __future__ import annotations

import ast
import subprocess
import sys

import dagster as dg
import duckdb
import yaml

from assets.family import SOURCE_SUFFIXES
from pipelines.definitions import build_definitions
from pipelines.sensors import config_observation_sensor, stale_models_sensor
from rl.core import health
from rl.core.registry import registered
from tests import ROOT
from tests.families import toy

RANGE = {
    "dagster/asset_partition_range_start": "2024-01-02",
    "dagster/asset_partition_range_end": "2024-01-10",
}


def _write_toy_config(configs) -> None:
    (configs / "toy.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "toy",
                "kind": "toy",
                "reward": "rewards/toy.yaml",
                "data": {"start": "2024-01-02", "end": "2024-01-10", "symbols": ["SPY"]},
                "walk_forward": {"train_days": 3, "test_days": 1, "slices": 2},
                "ppo": {"total_timesteps": 256, "n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 1},
            }
        )
    )
    (configs / "rewards" / "toy.yaml").write_text("name: toy\ncomponents:\n  pnl: {weight: 1.0, scale: 0.1}\n")


def _sensor_context(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.SensorEvaluationContext:
    return dg.build_sensor_context(
        instance=instance, definitions=defs, resources={"configs": defs.resources["configs"]}
    )


def test_a_registered_family_gets_assets_jobs_checks_and_sensor_entries(tf_env) -> None:
    _write_toy_config(tf_env.configs)
    with registered(toy.FAMILY):
        defs = build_definitions()
        graph = defs.resolve_asset_graph()
        keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
        stages = ("dataset", "reward_audit", "policy", "evaluation", "promoted_policy")
        assert {f"toy_{s}" for s in (*SOURCE_SUFFIXES, *stages, "signals")} <= keys
        checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
        assert {("toy_reward_audit", "reward_scale_sane"), ("toy_evaluation", "toy_trades")} <= checks
        job = defs.resolve_job_def("toy_training_job")
        assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {f"toy_{s}" for s in stages}

        instance = dg.DagsterInstance.ephemeral()
        context = dg.build_sensor_context(
            instance=instance, definitions=defs, resources={"configs": defs.resources["configs"]}
        )
        observed = {e.asset_key.to_user_string() for e in config_observation_sensor(context).asset_events}
        assert {f"toy_{s}" for s in SOURCE_SUFFIXES} <= observed

        # The whole graph, for real: the shared data job, then the toy family's own training job.
        assert defs.resolve_job_def("market_data_job").execute_in_process(instance=instance, tags=RANGE).success
        sources = [dg.AssetKey(f"toy_{s}") for s in SOURCE_SUFFIXES]
        assert (
            defs.resolve_implicit_global_asset_job_def()
            .execute_in_process(instance=instance, asset_selection=sources)
            .success
        )
        result = job.execute_in_process(instance=instance)
        assert result.success
        assert {e.check_name for e in result.get_asset_check_evaluations()} == {
            "reward_scale_sane",
            "toy_trades",
            "train_eval_mismatch",
            "beats_baselines",
            "promoted",
            *health.CHECKS,
        }
        con = duckdb.connect(str(tf_env.home / "warehouse.duckdb"), read_only=True)
        try:
            assert con.execute("select family, count(*) from ml.training_runs group by 1").fetchall() == [("toy", 2)]
            policies = {r[0] for r in con.execute("select distinct policy from ml.evaluation_episodes").fetchall()}
        finally:
            con.close()
        assert policies == {"agent", "flat", "random_valid"}

        context = dg.build_sensor_context(
            instance=instance, definitions=defs, resources={"configs": defs.resources["configs"]}
        )
        stale_models_sensor(context)  # a generator: run it for its log line
        assert list(stale_models_sensor(context) or []) == []
    after = build_definitions()  # unregistered again: gone, with nothing to clean up
    assert not any(k.to_user_string().startswith("toy_") for k in after.resolve_asset_graph().get_all_asset_keys())


def _imports(path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in _imports(path)
        if name == forbidden or name.startswith(forbidden)
    ]


def test_rl_core_imports_no_family() -> None:
    assert _offenders("rl/core", ("rl.families",)) == []
    code = (
        "import importlib, pkgutil, sys, rl.core\n"
        "for m in pkgutil.iter_modules(rl.core.__path__): importlib.import_module('rl.core.' + m.name)\n"
        "loaded = [m for m in sys.modules if m.startswith('rl.families')]\n"
        "print(loaded); sys.exit(1 if loaded else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_imports_only_run_downwards() -> None:
    assert _offenders("assets", ("pipelines",)) == []
    for package in ("rl", "warehouse", "market"):
        assert _offenders(package, ("assets", "pipelines", "dagster")) == [], package
    assert _offenders("rl/families", ("tests",)) == []
