"""One asset machinery for every registered family: config sources -> dataset -> reward audit -> policy ->
evaluation -> promoted policy -> shadow signals (per data partition).

Each family gets four observable sources, one per thing a person edits: the reward YAML, and its config's data
range, training sections (env, ppo, phases, walk-forward, reward path) and evaluation section. Each source's data
version is the sha256 of its resolved values, so a comment-only edit changes nothing, and each stage listens only
to the sources it reads: a date-range edit rebuilds the dataset (and so everything after it), a training edit
retrains, an evaluation edit re-evaluates. The sources are observed by `config_observation_sensor`, which hashes
the files itself and records an observation only when one changed, so polling never shows up as runs.
"""

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import dagster as dg

from assets.common import WAREHOUSE_POOL, check_result, metadata
from assets.partitions import DATA_PARTITIONS, FIRST_PARTITION
from assets.resources import ArtifactStore, ConfigStore, WarehouseResource
from rl.core import intervals, promotion, shadow, workflow
from rl.core.family import DATA_SECTIONS, EVALUATION_SECTIONS, TRAINING_SECTIONS, FamilyConfig
from rl.core.mismatch import CHECK as MISMATCH_CHECK
from rl.core.mismatch import DESCRIPTION as MISMATCH_DESCRIPTION
from rl.core.registry import Family, get_family, kinds
from rl.core.reward import RewardSpec, load_reward
from rl.core.search import load_preset
from rl.core.versioning import source_digest
from warehouse.runs import get_training_slices, record_evaluation, record_promotion, record_training_run
from warehouse.signals import latest_promotion, replace_signals, shadow_days

_SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}
SOURCE_SUFFIXES = ("reward_config", "data_config", "training_config", "evaluation_config")
# A training step that fails is retried once in the same run; it resumes from its last partial save.
TRAINING_RETRY = dg.RetryPolicy(max_retries=1)
MODEL_STAGES = ("reward_audit", "policy", "evaluation", "promoted_policy")


def load(configs: ConfigStore, kind: str) -> tuple[FamilyConfig, RewardSpec]:
    """The family's config and reward, each file read once, refusing a config of another kind."""
    cfg = configs.family(kind)
    if cfg.kind != kind:
        raise ValueError(f"{configs.family_path(kind).name} has kind {cfg.kind!r}; these assets are {kind!r}")
    family = get_family(kind)
    return cfg, load_reward(configs.resolve(cfg.reward), family.reward_components)


def source_versions(configs: ConfigStore, kind: str) -> dict[str, str]:
    """The data version of each of the family's four config sources, keyed by asset name."""
    cfg, reward = load(configs, kind)
    return {
        f"{kind}_reward_config": reward.sha256,
        f"{kind}_data_config": cfg.version(DATA_SECTIONS),
        f"{kind}_training_config": cfg.version(TRAINING_SECTIONS),
        f"{kind}_evaluation_config": cfg.version(EVALUATION_SECTIONS),
    }


def _sources(kind: str) -> dg.AssetsDefinition:
    descriptions = {
        "reward_config": f"The {kind} reward YAML; the sha256 of its values is the data version, so an edit "
        "retrains the models.",
        "data_config": f"The data section of {kind}.yaml (dates, symbols); an edit rebuilds the dataset first.",
        "training_config": f"The env, ppo, seeds, warm-start, phases, walk-forward and reward-path sections of "
        f"{kind}.yaml; an edit retrains the models.",
        "evaluation_config": f"The evaluation section of {kind}.yaml; an edit re-runs the evaluation only.",
    }

    @dg.multi_observable_source_asset(
        name=f"{kind}_config_sources",
        specs=[
            dg.AssetSpec(f"{kind}_{suffix}", group_name=kind, description=descriptions[suffix])
            for suffix in SOURCE_SUFFIXES
        ],
        required_resource_keys={"configs"},
        description=f"Hashes the {kind} config and reward files (observed by config_observation_sensor).",
    )
    def config_sources(context):
        for key, version in source_versions(context.resources.configs, kind).items():
            yield dg.ObserveResult(asset_key=key, data_version=dg.DataVersion(version))

    return config_sources


def _keys(kind: str) -> dict[str, str]:
    return {s: f"{kind}_{s}" for s in (*SOURCE_SUFFIXES, "dataset", "hpo", "signals", *MODEL_STAGES)}


def _dataset(family: Family) -> dg.AssetsDefinition:
    kind, key = family.kind, _keys(family.kind)

    @dg.asset(
        name=key["dataset"],
        group_name=kind,
        deps=[*(dg.AssetKey(k) for k in family.data_assets), key["data_config"]],
        pool=WAREHOUSE_POOL,
        kinds={"duckdb", "numpy"},
        description=f"The {kind} config's date range as the family's arrays; data version = their content hash.",
        automation_condition=dg.AutomationCondition.eager().allow(dg.AssetSelection.assets(key["data_config"])),
    )
    def dataset(warehouse: WarehouseResource, artifacts: ArtifactStore, configs: ConfigStore) -> dg.Output:
        cfg = configs.family(kind)
        with warehouse.connect() as con:
            data = family.load_data(con, cfg)
        manifest = workflow.build_dataset(data, cfg, artifacts.dir("datasets", kind))
        artifacts.publish(manifest.path)
        return dg.Output(
            manifest, metadata=metadata(manifest.summary()), data_version=dg.DataVersion(manifest.data_version)
        )

    return dataset


def _reward_audit(family: Family) -> dg.AssetsDefinition:
    kind, key = family.kind, _keys(family.kind)

    @dg.asset(
        name=key["reward_audit"],
        group_name=kind,
        deps=[key["reward_config"], key["training_config"], key["data_config"]],
        ins={"manifest": dg.AssetIn(key=key["dataset"])},
        check_specs=[
            dg.AssetCheckSpec(
                "reward_scale_sane",
                asset=key["reward_audit"],
                blocking=True,
                description="Blocks training when a reward term's p99 step, mean episode return or value target "
                "exceeds the reward file's audit limits, or fees weigh less than P&L (seed 000's 1e6 scale).",
            )
        ],
        description=f"Scales of every {kind} reward component under random and simple policies, before training.",
        # A date-range edit requests the dataset and this audit in one tick, so they run in order in one run; a
        # dataset rebuilt by hand, or after a feature refresh, retrains nothing.
        automation_condition=dg.AutomationCondition.eager().allow(
            dg.AssetSelection.assets(key["reward_config"], key["training_config"], key["data_config"])
        ),
    )
    def reward_audit(configs: ConfigStore, artifacts: ArtifactStore, manifest: workflow.DatasetManifest):
        cfg, reward = load(configs, kind)
        artifacts.reach(manifest.path)
        audit = workflow.audit_family(manifest, cfg, reward)
        yield dg.Output(audit, metadata=metadata(audit.summary()))
        verdict = {"passed": audit.passed, "problems": list(audit.problems), "reward_sha256": audit.reward_sha256}
        yield check_result("reward_scale_sane", verdict, dg.AssetCheckSeverity.ERROR)

    return reward_audit


def _train(
    context: dg.AssetExecutionContext,
    artifacts: ArtifactStore,
    kind: str,
    manifest: workflow.DatasetManifest,
    cfg: FamilyConfig,
    reward: RewardSpec,
    audit: workflow.AuditOutcome,
    stage: str,
    start: workflow.PolicyArtifact | None,
    preset: dict | None = None,
) -> workflow.PolicyArtifact:
    """One training stage of a family into the artifact store, logging to the run."""
    artifacts.reach(manifest.path, *(start.checkpoints.values() if start else ()))
    artifact = workflow.train_family(
        manifest,
        cfg,
        reward,
        audit,
        checkpoints_dir=artifacts.dir("checkpoints", kind),
        tensorboard_dir=artifacts.dir("tensorboard", kind),
        log=context.log.info,
        stage=stage,
        start=start,
        preset=preset,
    )
    artifacts.publish(*artifact.checkpoints.values())
    return artifact


def _trained_on(key: Mapping[str, str]) -> dict[str, dg.AssetIn]:
    """The inputs every training or search stage reads: the family's dataset and its reward audit."""
    return {"manifest": dg.AssetIn(key=key["dataset"]), "audit": dg.AssetIn(key=key["reward_audit"])}


_PRESET = ", with the PPO settings of the latest hyperparameter search (hpo.use)"


def _preset(
    context: dg.AssetExecutionContext, artifacts: ArtifactStore, cfg: FamilyConfig, hpo_key: str, uses_hpo: bool
) -> dict | None:
    """The latest search's best ppo settings when the config uses them (read from its preset file, checked against
    the sha256 its materialization recorded); None otherwise."""
    if cfg.hpo.use != uses_hpo:
        raise ValueError(f"{cfg.name}.yaml's hpo.use changed since the definitions loaded; reload the code location")
    if not uses_hpo:
        return None
    event = context.instance.get_latest_materialization_event(dg.AssetKey(hpo_key))
    if event is None or event.asset_materialization is None:
        raise ValueError(f"hpo.use is on but {hpo_key} was never materialized: run the search first")
    meta = event.asset_materialization.metadata
    artifacts.reach(str(meta["preset"].value))
    return load_preset(Path(str(meta["preset"].value)), str(meta["preset_sha256"].value))


def gated_key(family: Family) -> str | None:
    """`<kind>_<phase>_policy`: the asset of a family's gated curriculum stage, or None for a family without one."""
    phase = getattr(family, "gated_phase", None)
    return f"{family.kind}_{phase}_policy" if phase else None


def _gated_policy(family: Family, code: str, uses_hpo: bool) -> dg.AssetsDefinition:
    kind, key, phase = family.kind, _keys(family.kind), family.gated_phase
    name = gated_key(family)

    @dg.asset(
        name=name,
        group_name=kind,
        ins=_trained_on(key),
        deps=[key["hpo"]] if uses_hpo else None,
        kinds={"pytorch"},
        code_version=code,
        retry_policy=TRAINING_RETRY,
        check_specs=[
            dg.AssetCheckSpec(
                f"{phase}_gate",
                asset=name,
                blocking=True,
                description=f"Blocks the later phases unless every slice's {phase} checkpoint beats the flat "
                "baseline's net P&L on the validation days at the end of its training window (days it never "
                "trained on).",
            )
        ],
        description=f"The {kind} curriculum up to its {phase} phase: a checkpoint per walk-forward slice, each "
        "with its own provenance, trained without the validation days its gate judges it on"
        f"{_PRESET if uses_hpo else ''}.",
        automation_condition=dg.AutomationCondition.eager().allow(
            dg.AssetSelection.assets(key["reward_audit"], *([key["hpo"]] if uses_hpo else []))
        ),
    )
    def gated_policy(
        context: dg.AssetExecutionContext,
        configs: ConfigStore,
        artifacts: ArtifactStore,
        manifest: workflow.DatasetManifest,
        audit: workflow.AuditOutcome,
    ):
        cfg, reward = load(configs, kind)
        preset = _preset(context, artifacts, cfg, key["hpo"], uses_hpo)
        artifact = _train(context, artifacts, kind, manifest, cfg, reward, audit, "gated", None, preset)
        gate = workflow.gate_family(manifest, artifact, cfg, reward)
        context.log.info(f"{phase} gate: {'passed' if gate['passed'] else 'FAILED'}: {gate['detail']}")
        artifact = artifact.with_gate(gate)
        yield dg.Output(artifact, metadata=metadata(artifact.summary()))
        yield check_result(f"{phase}_gate", gate, dg.AssetCheckSeverity.ERROR)

    return gated_policy


def _hpo(family: Family) -> dg.AssetsDefinition:
    kind, key = family.kind, _keys(family.kind)

    @dg.asset(
        name=key["hpo"],
        group_name=kind,
        ins=_trained_on(key),
        kinds={"optuna"},
        description=f"Optuna search (TPE, median pruning) of the {kind} config's hpo.space on validation days carved "
        "from each slice's training window, never its test days; the best settings become a versioned preset.",
    )
    def hpo(
        context: dg.AssetExecutionContext,
        configs: ConfigStore,
        artifacts: ArtifactStore,
        manifest: workflow.DatasetManifest,
        audit: workflow.AuditOutcome,
    ) -> dg.Output:
        cfg, reward = load(configs, kind)
        artifacts.reach(manifest.path)
        result = workflow.search_family(
            manifest, cfg, reward, audit, Path(artifacts.home), artifacts.dir("presets", kind), context.log.info
        )
        artifacts.publish(result.preset_path)
        return dg.Output(result, metadata=metadata(result.summary()), data_version=dg.DataVersion(result.preset_sha256))

    return hpo


def _fanned_hpo(family: Family, trials: int) -> dg.AssetsDefinition:
    """The search as a step per trial on one shared study (Postgres storage lets workers on several machines share
    it; SQLite only processes on one), then a step that gathers the best trial into the preset."""
    kind, key = family.kind, _keys(family.kind)

    @dg.op(
        name=f"{kind}_search_trials",
        out=dg.DynamicOut(int),
        description=f"Names the {trials} trial steps of the {kind} search (the study holds their state).",
    )
    def search_trials():
        for number in range(trials):
            yield dg.DynamicOutput(number, mapping_key=f"trial_{number}")

    @dg.op(name=f"{kind}_search_trial", description=f"Runs one trial of the shared {kind} study.")
    def search_trial(
        context: dg.OpExecutionContext, configs: ConfigStore, artifacts: ArtifactStore, number: int, manifest, audit
    ) -> int:
        cfg, reward = load(configs, kind)
        home, presets = Path(artifacts.home), artifacts.dir("presets", kind)
        artifacts.reach(manifest.path)
        workflow.search_family(manifest, cfg, reward, audit, home, presets, context.log.info, max_trials=1)
        return number

    @dg.op(name=f"{kind}_search_result", description=f"Gathers the {kind} study's best trial into the preset.")
    def search_result(
        context: dg.OpExecutionContext, configs: ConfigStore, artifacts: ArtifactStore, ran: list, manifest, audit
    ) -> dg.Output:
        cfg, reward = load(configs, kind)
        home, presets = Path(artifacts.home), artifacts.dir("presets", kind)
        artifacts.reach(manifest.path)
        result = workflow.search_family(manifest, cfg, reward, audit, home, presets, context.log.info, max_trials=0)
        artifacts.publish(result.preset_path)
        return dg.Output(result, metadata=metadata(result.summary()), data_version=dg.DataVersion(result.preset_sha256))

    def compose(manifest, audit):
        ran = search_trials().map(lambda number: search_trial(number, manifest, audit))
        return search_result(ran.collect(), manifest, audit)

    return dg.graph_asset(
        name=key["hpo"],
        group_name=kind,
        ins=_trained_on(key),
        kinds={"optuna"},
        description=f"Optuna search (TPE, median pruning) of the {kind} config's hpo.space, a step per trial on one "
        "study, on validation days carved from each slice's training window; the best settings become a preset.",
    )(compose)


def _policy(family: Family, code: str, uses_hpo: bool) -> dg.AssetsDefinition:
    kind, key = family.kind, _keys(family.kind)
    gated = gated_key(family)
    uses_hpo = uses_hpo and not gated  # a curriculum's preset is its gated stage's, which this stage continues
    ins = _trained_on(key)
    if gated:
        ins["start"] = dg.AssetIn(key=gated)
    after = f", continuing the {family.gated_phase} stage's checkpoints once they passed their gate" if gated else ""
    upstream = [gated or key["reward_audit"], *([key["hpo"]] if uses_hpo else [])]

    asset = dg.asset(
        name=key["policy"],
        group_name=kind,
        ins=ins,
        deps=[key["hpo"]] if uses_hpo else None,
        kinds={"pytorch"},
        code_version=code,
        retry_policy=TRAINING_RETRY,
        description=f"{kind} MaskablePPO checkpoints, one per walk-forward slice, with config, data, reward and "
        f"code versions{after}{_PRESET if uses_hpo else ''}.",
        automation_condition=dg.AutomationCondition.eager().allow(dg.AssetSelection.assets(*upstream)),
    )

    def train(context, configs, artifacts, manifest, audit, start) -> dg.Output:
        cfg, reward = load(configs, kind)
        # The "rest" stage continues the gated stage's checkpoints, so it keeps their PPO settings.
        preset = None if gated else _preset(context, artifacts, cfg, key["hpo"], uses_hpo)
        artifact = _train(
            context, artifacts, kind, manifest, cfg, reward, audit, "rest" if gated else "all", start, preset
        )
        return dg.Output(artifact, metadata=metadata(artifact.summary()))

    if gated:

        def policy(
            context: dg.AssetExecutionContext,
            configs: ConfigStore,
            artifacts: ArtifactStore,
            manifest: workflow.DatasetManifest,
            audit: workflow.AuditOutcome,
            start: workflow.PolicyArtifact,
        ) -> dg.Output:
            return train(context, configs, artifacts, manifest, audit, start)

    else:

        def policy(
            context: dg.AssetExecutionContext,
            configs: ConfigStore,
            artifacts: ArtifactStore,
            manifest: workflow.DatasetManifest,
            audit: workflow.AuditOutcome,
        ) -> dg.Output:
            return train(context, configs, artifacts, manifest, audit, None)

    return asset(policy)


def _fanned_policy(family: Family, code: str, uses_hpo: bool) -> dg.AssetsDefinition:
    """The policy asset as three kinds of step: plan the runs, train each (slice, seed) run as a step of its own
    (dynamic outputs, so an executor spreads them over workers), then assemble one artifact, exactly as one step
    would have made it. Only for a family without a gated curriculum (its stage's gate is one check over all runs)."""
    kind, key = family.kind, _keys(family.kind)

    @dg.op(
        name=f"{kind}_training_plan",
        ins={"manifest": dg.In(), "audit": dg.In(), "searched": dg.In(dg.Nothing)},
        out={"plan": dg.Out(), "runs": dg.DynamicOut()},
        description=f"Names the {kind} training's runs (one per slice and seed) after checking its audit.",
    )
    def training_plan(context: dg.OpExecutionContext, configs: ConfigStore, artifacts: ArtifactStore, manifest, audit):
        cfg, reward = load(configs, kind)
        preset = _preset(context, artifacts, cfg, key["hpo"], uses_hpo)
        plan = workflow.plan_training(manifest, cfg, reward, audit, "all", None, preset)
        yield dg.Output(plan, "plan")
        for run_key in plan.keys:
            yield dg.DynamicOutput(run_key, output_name="runs", mapping_key=re.sub(r"\W", "_", run_key))

    @dg.op(
        name=f"{kind}_train_run",
        retry_policy=TRAINING_RETRY,
        description=f"Trains one {kind} run (a slice and seed) of the plan into the checkpoint store.",
    )
    def train_one(
        context: dg.OpExecutionContext, configs: ConfigStore, artifacts: ArtifactStore, plan, run_key, manifest, audit
    ) -> workflow.RunOutcome:
        cfg, reward = load(configs, kind)
        stores = artifacts.dir("checkpoints", kind), artifacts.dir("tensorboard", kind)
        artifacts.reach(manifest.path)
        outcome = workflow.train_run(plan, run_key, manifest, cfg, reward, audit, *stores, context.log.info)
        artifacts.publish(outcome.checkpoint)
        return outcome

    @dg.op(name=f"{kind}_assemble_policy", description=f"Gathers every {kind} run into the policy artifact.")
    def assemble(configs: ConfigStore, plan, outcomes: list, manifest, audit) -> dg.Output:
        cfg, reward = load(configs, kind)
        artifact = workflow.assemble_policy(plan, outcomes, manifest, cfg, reward, audit)
        return dg.Output(artifact, metadata=metadata(artifact.summary()))

    ins = _trained_on(key)
    if uses_hpo:
        ins["searched"] = dg.AssetIn(key=key["hpo"], dagster_type=dg.Nothing)

    def compose(manifest, audit, searched=None):
        plan, runs = training_plan(manifest, audit, searched) if uses_hpo else training_plan(manifest, audit)
        outcomes = runs.map(lambda run_key: train_one(plan, run_key, manifest, audit))
        return assemble(plan, outcomes.collect(), manifest, audit)

    upstream = [key["reward_audit"], *([key["hpo"]] if uses_hpo else [])]
    return dg.graph_asset(
        name=key["policy"],
        group_name=kind,
        ins=ins,
        kinds={"pytorch"},
        code_version=code,
        description=f"{kind} MaskablePPO checkpoints, one per walk-forward slice and seed, each trained in a step "
        f"of its own, with config, data, reward and code versions{_PRESET if uses_hpo else ''}.",
        automation_condition=dg.AutomationCondition.eager().allow(dg.AssetSelection.assets(*upstream)),
    )(compose if uses_hpo else lambda manifest, audit: compose(manifest, audit))


def _health_checks(family: Family, policy_key: str) -> dg.AssetChecksDefinition:
    """The training-health checks of one policy asset, judged from its recorded PPO updates.

    A check separate from the asset, so that an edited `health:` threshold is judged again from the UI without
    retraining; a job that materializes the policy runs them right after it.
    """
    from rl.core import health

    kind = family.kind

    @dg.multi_asset_check(
        name=f"{policy_key}_health",
        specs=[
            dg.AssetCheckSpec(name, asset=policy_key, description=health.DESCRIPTIONS[name]) for name in health.CHECKS
        ],
        ins={"artifact": dg.AssetIn(key=policy_key)},
        can_subset=True,
        description=f"Training health of {policy_key}: entropy, approx KL, clip fraction, value loss and explained "
        "variance of every PPO update, against the config's health thresholds.",
    )
    def policy_health(context: dg.AssetCheckExecutionContext, configs: ConfigStore, artifact: workflow.PolicyArtifact):
        cfg, _ = load(configs, kind)
        chosen = {key.name for key in context.selected_asset_check_keys}
        for name, verdict in artifact.health(cfg).items():
            if name in chosen:  # one check can be executed alone from the UI
                severity = _SEVERITY[verdict["severity"] or health.SEVERITY[name]]
                yield check_result(name, verdict, severity, asset_key=policy_key)

    return policy_health


def _evaluation(family: Family, code: str) -> dg.AssetsDefinition:
    kind, key = family.kind, _keys(family.kind)

    @dg.asset(
        name=key["evaluation"],
        group_name=kind,
        deps=[key["evaluation_config"]],
        ins={"manifest": dg.AssetIn(key=key["dataset"]), "artifact": dg.AssetIn(key=key["policy"])},
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        code_version=code,
        check_specs=[
            *(
                dg.AssetCheckSpec(name, asset=key["evaluation"], description=family.check_descriptions[name])
                for name in family.checks
            ),
            dg.AssetCheckSpec(MISMATCH_CHECK, asset=key["evaluation"], description=MISMATCH_DESCRIPTION),
            dg.AssetCheckSpec(intervals.CHECK, asset=key["evaluation"], description=intervals.DESCRIPTION),
        ],
        description=f"Walk-forward {kind} evaluation on held-out days against baselines, stored per run in "
        "DuckDB, with a report.",
        automation_condition=dg.AutomationCondition.eager().allow(
            dg.AssetSelection.assets(key["policy"], key["evaluation_config"])
        ),
    )
    def evaluation(
        context: dg.AssetExecutionContext,
        configs: ConfigStore,
        artifacts: ArtifactStore,
        warehouse: WarehouseResource,
        manifest: workflow.DatasetManifest,
        artifact: workflow.PolicyArtifact,
    ):
        cfg, reward = load(configs, kind)
        artifacts.reach(manifest.path, *artifact.checkpoints.values())
        outcome = workflow.evaluate_family(manifest, artifact, cfg, reward, artifacts.dir("reports", kind))
        artifacts.publish(Path(outcome.report_path).parent)
        with warehouse.connect() as con:
            if get_training_slices(con, artifact.run_id).is_empty():
                record_training_run(con, artifact.training_rows())
            record_evaluation(con, outcome.record())
        context.log.info(f"evaluation report: {outcome.report_path}")
        yield dg.Output(
            outcome.summary(),
            metadata={**metadata(outcome.summary()), "report": dg.MetadataValue.md(outcome.report_md)},
        )
        for name, check in outcome.checks.items():
            yield check_result(name, check, _SEVERITY[family.checks.get(name, "error")])

    return evaluation


def _write_promoted_report(artifacts: ArtifactStore, kind: str, decision: promotion.Promotion, history) -> str:
    """The promoted policy's page (held-out figures beside shadow P&L), rewritten from the warehouse each time."""
    text = promotion.promoted_report(decision, history)
    (artifacts.dir("reports", kind) / promotion.REPORT_FILE).write_text(text)
    return text


def _promoted_policy(family: Family) -> dg.AssetsDefinition:
    kind, key = family.kind, _keys(family.kind)
    name = key["promoted_policy"]

    @dg.asset(
        name=name,
        group_name=kind,
        ins={
            "manifest": dg.AssetIn(key=key["dataset"]),
            "artifact": dg.AssetIn(key=key["policy"]),
            "evaluation": dg.AssetIn(key=key["evaluation"]),
        },
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        check_specs=[dg.AssetCheckSpec(promotion.CHECK, asset=name, description=promotion.DESCRIPTION)],
        description=f"The {kind} policy the shadow signals play: a newly evaluated policy replaces it only when its "
        "held-out IQM beats the promoted one's on the same days with P(improvement) above promotion.min_probability.",
        automation_condition=dg.AutomationCondition.eager().allow(dg.AssetSelection.assets(key["evaluation"])),
    )
    def promoted_policy(
        context: dg.AssetExecutionContext,
        configs: ConfigStore,
        artifacts: ArtifactStore,
        warehouse: WarehouseResource,
        manifest: workflow.DatasetManifest,
        artifact: workflow.PolicyArtifact,
        evaluation: dict,
    ):
        cfg, reward = load(configs, kind)
        with warehouse.connect() as con:
            last = latest_promotion(con, cfg.name)
        current = promotion.PromotedPolicy.from_dict(last["policy"]) if last and last["policy"] else None
        artifacts.reach(
            manifest.path, *artifact.checkpoints.values(), *(current.checkpoints.values() if current else ())
        )
        decision = workflow.promote_family(manifest, artifact, evaluation, cfg, reward, current)
        with warehouse.connect() as con:
            record_promotion(con, decision.record())
            history = shadow_days(con, cfg.name, decision.policy.run_id if decision.policy else "")
        report = _write_promoted_report(artifacts, kind, decision, history)
        with Path(evaluation["report_path"]).open("a") as out:  # the gate's verdict in the evaluation's report
            out.write("\n" + "\n".join(promotion.report_lines(decision)))
        context.log.info(f"promotion gate: {decision.evidence['detail']}")
        yield dg.Output(decision, metadata={**metadata(decision.summary()), "report": dg.MetadataValue.md(report)})
        yield check_result(promotion.CHECK, decision.check(), dg.AssetCheckSeverity.WARN)

    return promoted_policy


def _signals(family: Family) -> dg.AssetsDefinition:
    kind, key = family.kind, _keys(family.kind)
    partitions = DATA_PARTITIONS[family.data_job]
    unit = "UTC day" if family.data_job == "funding_data_job" else "session"

    @dg.asset(
        name=key["signals"],
        group_name=kind,
        partitions_def=partitions,
        deps=[dg.AssetKey(k) for k in family.data_assets],
        ins={"promoted": dg.AssetIn(key=key["promoted_policy"])},
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        description=f"Shadow signals, per {unit}: every decision the promoted {kind} policy would take on the "
        "partition (action, probabilities, mask, position, hypothetical fill and P&L) in ml.signals; no orders.",
        automation_condition=dg.AutomationCondition.eager(),
    )
    def signals(
        context: dg.AssetExecutionContext,
        configs: ConfigStore,
        artifacts: ArtifactStore,
        warehouse: WarehouseResource,
        promoted: promotion.Promotion,
    ) -> dg.Output:
        day = date.fromisoformat(context.partition_key)
        _, reward = load(configs, kind)
        if promoted.policy is None:
            note = f"no {kind} policy is promoted yet ({promoted.evidence['detail']}): nothing to play"
            context.log.warning(note)
            return dg.Output({"decisions": 0, "note": note}, metadata={"decisions": 0, "note": note})
        cfg = workflow.shadow_config(promoted.policy, day)
        if day not in family.expected_dates(cfg):
            note = f"{day} is not a trading day of the {kind} family's instruments: nothing to play"
            return dg.Output({"decisions": 0, "note": note}, metadata={"decisions": 0, "note": note})
        with warehouse.connect() as con:
            data = family.load_data(con, cfg)
        artifacts.reach(*promoted.policy.checkpoints.values())
        frame = workflow.shadow_family(promoted.policy, data, cfg, reward, day)
        with warehouse.connect() as con:
            replace_signals(con, cfg.name, day, promoted.policy.run_id, frame)
            history = shadow_days(con, cfg.name, promoted.policy.run_id)
        report = _write_promoted_report(artifacts, kind, promoted, history)
        summary = {"policy_run_id": promoted.policy.run_id, **shadow.summary(frame)}
        context.log.info(f"{kind} shadow {day}: {summary['decisions']} decisions, net P&L {summary['net_pnl']:+,.2f}")
        return dg.Output(summary, metadata={**metadata(summary), "report": dg.MetadataValue.md(report)})

    return signals


def family_assets(family: Family, uses_hpo: bool = False, fan_out: bool = False, hpo_trials: int = 8) -> list:
    """The config sources, dataset, audit, search, policy, evaluation, promoted policy and shadow signals assets of one
    registered family; with `uses_hpo` (the config's hpo.use) the first training stage depends on the search, and
    with `fan_out` each (slice, seed) run of a family without a gated curriculum trains in a step of its own, and
    each of the search's `hpo_trials` trials runs in a step of its own."""
    # Training code only: a commit elsewhere (README, warehouse) must not mark the models stale.
    code = f"rl-{source_digest(packages=('rl',))[:16]}"
    gated = [_gated_policy(family, code, uses_hpo)] if gated_key(family) else []
    return [
        _sources(family.kind),
        _dataset(family),
        _reward_audit(family),
        _fanned_hpo(family, hpo_trials) if fan_out else _hpo(family),
        *gated,
        _fanned_policy(family, code, uses_hpo) if fan_out and not gated else _policy(family, code, uses_hpo),
        _evaluation(family, code),
        _promoted_policy(family),
        _signals(family),
    ]


def family_checks(family: Family) -> list[dg.AssetChecksDefinition]:
    """The training-health checks of the family's policy assets (the gated stage's too)."""
    policies = [*filter(None, [gated_key(family)]), _keys(family.kind)["policy"]]
    return [_health_checks(family, key) for key in policies]


def model_stage_keys(family: Family) -> list[str]:
    """The family's model assets in order: audit, the gated stage (if any), policy, evaluation, promoted policy."""
    gated = gated_key(family)
    keys = _keys(family.kind)
    return [
        keys["reward_audit"],
        *([gated] if gated else []),
        keys["policy"],
        keys["evaluation"],
        keys["promoted_policy"],
    ]


def validate_configs(configs: ConfigStore) -> dict[str, FamilyConfig]:
    """Every registered family's config and reward file, checked when the definitions load: a bad value (a
    negative learning rate, gamma 1.5, a reward weight "abc") fails there, naming its file and key, not after the
    data work of a run. Returns the configs by kind."""
    out = {}
    for kind in kinds():
        cfg, _ = load(configs, kind)
        family = get_family(kind)
        check_data_range(configs.family_path(kind).name, family, cfg, FIRST_PARTITION.get(family.data_job))
        out[kind] = cfg
    return out


def check_data_range(name: str, family: Family, cfg: FamilyConfig, first: date | None) -> None:
    """The family's data range must fall inside its data job's partitions: ValueError naming the config file, the
    range and the setting, when the definitions load (not Dagster's bare invalid-subset error at run time)."""
    try:
        days = family.data_partitions(cfg)
    except ValueError as exc:
        raise ValueError(f"{name}: data: {exc}") from None
    if first is not None and days and days[0] < first:
        setting = "history_start in market.yaml" if family.data_job == "market_data_job" else "the first UTC day"
        raise ValueError(
            f"{name}: data.start needs partitions from {days[0]}, but they start at {first} ({setting}); move "
            "data.start or history_start"
        )


def model_assets(configs: Mapping[str, FamilyConfig], fan_out: bool = False) -> list:
    """Every registered family's assets, shaped by its config's hpo.use (`configs` by kind, as validated)."""
    return [
        a
        for kind in kinds()
        for a in family_assets(get_family(kind), configs[kind].hpo.use, fan_out, configs[kind].hpo.trials)
    ]


def model_checks() -> list[dg.AssetChecksDefinition]:
    """Every registered family's checks that are defined apart from an asset."""
    return [c for kind in kinds() for c in family_checks(get_family(kind))]
