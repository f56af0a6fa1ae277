"""One asset machinery for every agent family: reward config -> dataset -> reward audit -> policy -> evaluation.

A family is an env, a reward YAML and a config; this factory gives each the same lineage, checkpointing,
run-versioned evaluation and report. What differs (the warehouse loader here; arrays, env, baselines, metrics,
checks and report in `rl.families`) is chosen by the family's kind.
"""

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from assets.common import WAREHOUSE_POOL, check_result, metadata
from pipelines.resources import ArtifactStore, ConfigStore, WarehouseResource
from rl import workflow
from rl.families import FAMILIES
from rl.family import FamilyConfig, load_family
from rl.reward import RewardSpec
from rl.versioning import source_digest
from warehouse.runs import get_training_slices, record_evaluation, record_training_run

DataLoader = Callable[[duckdb.DuckDBPyConnection, FamilyConfig], Any]
_SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def family_assets(family: str, kind: str, data_deps: Sequence[dg.AssetsDefinition], load_data: DataLoader) -> list:
    """Build the reward-config source, dataset, audit, policy and evaluation assets of one family.

    `family` names the assets and the config file (`configs/<family>.yaml`); `kind` picks the env and checks.
    """
    impl = FAMILIES[kind]

    def load(configs: ConfigStore) -> tuple[FamilyConfig, RewardSpec]:
        cfg = load_family(configs.family_path(family))
        if cfg.kind != kind:
            raise ValueError(f"{configs.family_path(family).name} has kind {cfg.kind!r}; these assets are {kind!r}")
        return cfg, impl.load_reward(Path(configs.reward_path(family)))

    reward_key = f"{family}_reward_config"
    audit_key = f"{family}_reward_audit"
    policy_key = f"{family}_policy"
    group = family
    # Training code only: a commit elsewhere (README, warehouse) must not mark the models stale.
    code = f"rl-{source_digest(packages=('rl',))[:16]}"

    @dg.observable_source_asset(
        name=reward_key,
        group_name=group,
        description=f"The {family} reward YAML; its sha256 is the data version, so an edit marks the models stale.",
        required_resource_keys={"configs"},
        automation_condition=dg.AutomationCondition.cron_tick_passed("*/5 * * * *"),
    )
    def reward_config(context) -> dg.DataVersion:
        path = context.resources.configs.reward_path(family)
        return dg.DataVersion(hashlib.sha256(path.read_bytes()).hexdigest())

    @dg.asset(
        name=f"{family}_dataset",
        group_name=group,
        deps=list(data_deps),
        pool=WAREHOUSE_POOL,
        kinds={"duckdb", "numpy"},
    )
    def dataset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        artifacts: ArtifactStore,
        configs: ConfigStore,
    ) -> dg.Output:
        """The declared date range as the family's arrays with walk-forward slices; data version = content hash."""
        cfg, _ = load(configs)
        with warehouse.connect() as con:
            data = load_data(con, cfg)
        manifest = workflow.build_dataset(data, cfg, artifacts.dir("datasets", family))
        return dg.Output(
            manifest,
            metadata=metadata(manifest.summary()),
            data_version=dg.DataVersion(manifest.data_version),
        )

    @dg.asset(
        name=audit_key,
        group_name=group,
        deps=[reward_config],
        ins={"manifest": dg.AssetIn(key=f"{family}_dataset")},
        check_specs=[dg.AssetCheckSpec("reward_scale_sane", asset=audit_key, blocking=True)],
        automation_condition=dg.AutomationCondition.eager().allow(dg.AssetSelection.assets(reward_key)),
    )
    def reward_audit(context: dg.AssetExecutionContext, configs: ConfigStore, manifest: workflow.DatasetManifest):
        """Scales of every reward component under random and simple policies, checked before any training."""
        cfg, reward = load(configs)
        audit = workflow.audit_family(manifest, cfg, reward)
        yield dg.Output(audit, metadata=metadata(audit.summary()))
        verdict = {"passed": audit.passed, "problems": list(audit.problems), "reward_sha256": audit.reward_sha256}
        yield check_result("reward_scale_sane", verdict, dg.AssetCheckSeverity.ERROR)

    @dg.asset(
        name=policy_key,
        group_name=group,
        ins={
            "manifest": dg.AssetIn(key=f"{family}_dataset"),
            "audit": dg.AssetIn(key=audit_key),
        },
        kinds={"pytorch"},
        code_version=code,
        automation_condition=dg.AutomationCondition.eager().allow(dg.AssetSelection.assets(audit_key)),
    )
    def policy(
        context: dg.AssetExecutionContext,
        configs: ConfigStore,
        artifacts: ArtifactStore,
        manifest: workflow.DatasetManifest,
        audit: workflow.AuditOutcome,
    ) -> dg.Output:
        """MaskablePPO checkpoints, one per walk-forward slice, saved with config, data, reward and code versions."""
        cfg, reward = load(configs)
        artifact = workflow.train_family(
            manifest,
            cfg,
            reward,
            audit,
            checkpoints_dir=artifacts.dir("checkpoints", family),
            tensorboard_dir=artifacts.dir("tensorboard", family),
            log=context.log.info,
        )
        return dg.Output(artifact, metadata=metadata(artifact.summary()))

    @dg.asset(
        name=f"{family}_evaluation",
        group_name=group,
        ins={
            "manifest": dg.AssetIn(key=f"{family}_dataset"),
            "artifact": dg.AssetIn(key=policy_key),
        },
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        code_version=code,
        check_specs=[dg.AssetCheckSpec(name, asset=f"{family}_evaluation") for name in impl.checks],
        automation_condition=dg.AutomationCondition.eager().allow(dg.AssetSelection.assets(policy_key)),
    )
    def evaluation(
        context: dg.AssetExecutionContext,
        configs: ConfigStore,
        artifacts: ArtifactStore,
        warehouse: WarehouseResource,
        manifest: workflow.DatasetManifest,
        artifact: workflow.PolicyArtifact,
    ):
        """Walk-forward evaluation on held-out days against baselines, stored per run in DuckDB, with a report."""
        cfg, reward = load(configs)
        outcome = workflow.evaluate_family(manifest, artifact, cfg, reward, artifacts.dir("reports", family))
        with warehouse.connect() as con:
            if get_training_slices(con, artifact.run_id).is_empty():
                record_training_run(con, artifact.training_rows(cfg.to_dict()))
            record_evaluation(con, outcome.record())
        context.log.info(f"evaluation report: {outcome.report_path}")
        yield dg.Output(
            outcome.summary(),
            metadata={**metadata(outcome.summary()), "report": dg.MetadataValue.md(outcome.report_md)},
        )
        for name, check in outcome.checks.items():
            yield check_result(name, check, _SEVERITY[impl.checks[name]])

    return [reward_config, dataset, reward_audit, policy, evaluation]
