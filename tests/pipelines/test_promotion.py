"""Shadow signals and the promotion gate through the real asset graph, on the toy family.

The gate replays the promoted policy on the candidate's held-out days and promotes only on the interval evidence;
the signals asset plays the promoted policy over a partition after its training and stores every decision once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.definitions import build_definitions
from rl.core import workflow
from rl.core.family import load_family
from rl.core.promotion import REPORT_FILE, PromotedPolicy, Promotion
from rl.core.registry import registered
from rl.core.reward import load_reward
from tests.families import toy
from tests.pipelines.test_registry import RANGE, _write_toy_config
from warehouse.runs import record_promotion
from warehouse.signals import get_signals

NEW_DAY = "2024-01-11"  # the session after the toy config's last day


def _con(home: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(home / "warehouse.duckdb"))


def _signals(defs, instance, partition: str = NEW_DAY, raise_on_error: bool = True):
    return defs.resolve_job_def("market_signals_job").execute_in_process(
        instance=instance,
        partition_key=partition,
        asset_selection=[dg.AssetKey("toy_signals")],
        raise_on_error=raise_on_error,
    )


def test_gate_replays_the_promoted_policy_and_signals_play_a_new_partition_once(tf_env) -> None:
    _write_toy_config(tf_env.configs)
    with registered(toy.FAMILY):
        defs = build_definitions()
        instance = dg.DagsterInstance.ephemeral()
        data = defs.resolve_job_def("market_data_job")
        assert data.execute_in_process(instance=instance, tags=RANGE).success
        assert data.execute_in_process(instance=instance, partition_key=NEW_DAY).success
        first = defs.resolve_job_def("toy_training_job").execute_in_process(instance=instance)
        assert first.success
        a, eval_a = first.output_for_node("toy_policy"), first.output_for_node("toy_evaluation")
        d1: Promotion = first.output_for_node("toy_promoted_policy")
        # The first gate judges the candidate against not trading: 0 a day on every slice.
        assert d1.incumbent_run_id is None and d1.evidence["against"] == "not trading"
        assert d1.evidence["incumbent_runs"] == {k: [0.0] for k in eval_a["agent_run_scores"]}
        rule = d1.evidence["iqm_diff"] > 0 and d1.evidence["poi"] > 0.6
        assert d1.promoted == rule and (d1.policy is not None) == rule
        assert "## Promotion" in Path(eval_a["report_path"]).read_text()

        # A stands as the promoted policy; a retrained candidate must be judged against A replayed on its days.
        standing = replace(d1, run_id=f"{d1.run_id}-a", promoted=True, policy=workflow.promotion_candidate(a, eval_a))
        with _con(tf_env.home) as con:
            record_promotion(con, standing.record())
        tf_env.edit_yaml(tf_env.configs / "toy.yaml", lambda f: f["ppo"].update(seed=7))
        defs = build_definitions()
        second = defs.resolve_job_def("toy_training_job").execute_in_process(instance=instance)
        assert second.success
        b, eval_b = second.output_for_node("toy_policy"), second.output_for_node("toy_evaluation")
        d2: Promotion = second.output_for_node("toy_promoted_policy")
    assert d2.incumbent_run_id == a.run_id and d2.evidence["against"] == f"promoted {a.run_id}"
    # Replayed under the same evaluation rules on the same days, A scores exactly what its own evaluation gave.
    assert d2.evidence["incumbent_runs"] == eval_a["agent_run_scores"]
    assert d2.evidence["candidate_runs"] == eval_b["agent_run_scores"]
    rule = d2.evidence["iqm_diff"] > 0 and d2.evidence["poi"] > 0.6
    assert d2.promoted == rule
    assert d2.policy.run_id == (b.run_id if rule else a.run_id)
    check = next(e for e in second.get_asset_check_evaluations() if e.check_name == "promoted")
    assert check.passed == rule

    with registered(toy.FAMILY):
        played = _signals(defs, instance)
        assert played.success
        summary = played.output_for_node("toy_signals")
        again = _signals(defs, instance)  # the same partition played again is replaced, not appended
        assert again.success
        refused = _signals(defs, instance, "2024-01-09", raise_on_error=False)  # a day the checkpoint trained on
        assert not refused.success
        assert "strictly later" in refused.get_step_failure_events()[0].event_specific_data.error.to_string()
    with _con(tf_env.home) as con:
        stored = get_signals(con, "toy")
    columns = ("policy_run_id", "checkpoint", "step", "bar_ts", "probabilities", "mask", "action", "step_pnl")
    rows = stored.select(*columns, "fill_price").rows()
    latest = max(d2.policy.slices, key=lambda s: d2.policy.slices[s]["test"][1])
    assert {(r[0], r[1]) for r in rows} == {(d2.policy.run_id, latest)}
    steps = [r[2] for r in rows]
    assert len(rows) == summary["decisions"] == len(set(steps)) > 0  # one account: every step stored exactly once
    for _, _, _, _, probs, mask, action, _, _ in rows:
        assert sum(probs) == pytest.approx(1.0)
        assert all(p == 0 for p, valid in zip(probs, mask, strict=True) if not valid) and mask[action]
        assert probs[action] == max(probs)  # the deterministic policy plays its most probable valid action
    first_bar, last_bar = rows[0][3], rows[-1][3]
    assert str(first_bar.date()) == NEW_DAY == str(last_bar.date())
    assert (first_bar.hour, first_bar.minute) == (14, 30 + toy.ToyEnvConfig().warmup_minutes)  # 09:35 New York
    assert sum(r[7] for r in rows) == pytest.approx(summary["net_pnl"])
    assert sum(r[8] is not None for r in rows) == summary["trades"]
    report = (tf_env.home / "reports" / "toy" / REPORT_FILE).read_text()
    assert f"shadow {NEW_DAY}" in report and "held-out (IQM)" in report


def test_gate_both_ways_between_two_trained_policies(tf_env) -> None:
    """Candidate and incumbent swapped: with scores that differ exactly one direction is promoted; a tie promotes
    neither (the IQM difference must be above 0)."""
    _write_toy_config(tf_env.configs)
    tf_env.edit_yaml(tf_env.configs / "toy.yaml", lambda f: f.update(promotion={"min_probability": 0.0}))
    with registered(toy.FAMILY):
        defs = build_definitions()
        instance = dg.DagsterInstance.ephemeral()
        assert defs.resolve_job_def("market_data_job").execute_in_process(instance=instance, tags=RANGE).success
        runs = []
        for seed in (0, 3):
            tf_env.edit_yaml(tf_env.configs / "toy.yaml", lambda f, s=seed: f["ppo"].update(seed=s))
            result = build_definitions().resolve_job_def("toy_training_job").execute_in_process(instance=instance)
            runs.append(tuple(result.output_for_node(n) for n in ("toy_dataset", "toy_policy", "toy_evaluation")))
        (manifest, a, eval_a), (_, b, eval_b) = runs
        cfg = load_family(tf_env.configs / "toy.yaml")
        reward = load_reward(tf_env.configs / "rewards" / "toy.yaml", toy.FAMILY.reward_components)
        pol_a, pol_b = workflow.promotion_candidate(a, eval_a), workflow.promotion_candidate(b, eval_b)
        b_over_a = workflow.promote_family(manifest, b, eval_b, cfg, reward, pol_a)
        a_over_b = workflow.promote_family(manifest, a, eval_a, cfg, reward, pol_b)
        again = workflow.promote_family(manifest, a, eval_a, cfg, reward, pol_a)  # re-judged after a re-evaluation
    assert again.promoted and again.policy.run_id == a.run_id
    assert again.evidence["detail"].startswith("already the promoted policy; candidate vs not trading")
    assert b_over_a.evidence["incumbent_runs"] == eval_a["agent_run_scores"], b_over_a.evidence["note"]
    assert a_over_b.evidence["incumbent_runs"] == eval_b["agent_run_scores"]
    assert b_over_a.evidence["iqm_diff"] == pytest.approx(-a_over_b.evidence["iqm_diff"])
    if eval_a["agent_run_scores"] == eval_b["agent_run_scores"]:
        assert not b_over_a.promoted and not a_over_b.promoted
    else:
        assert b_over_a.promoted != a_over_b.promoted
    for decision, mine, theirs in ((b_over_a, pol_b, pol_a), (a_over_b, pol_a, pol_b)):
        assert isinstance(decision.policy, PromotedPolicy)
        assert decision.policy.run_id == (mine.run_id if decision.promoted else theirs.run_id)
