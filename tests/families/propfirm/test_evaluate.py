"""Prop-firm evaluation: accounts from several start days, the same accounts for every policy, the pass-rate
interval, per-episode records, and seed 002's regression (short training windows, long evaluation accounts)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rl.core.evaluate import load_agent
from rl.core.mismatch import episode_mismatch, episode_summary
from rl.core.policies import random_valid
from rl.core.train import PPOConfig, train_policy
from rl.families.propfirm.config import EnvConfig, EvaluationConfig
from rl.families.propfirm.data import synthetic_futures_days
from rl.families.propfirm.evaluate import evaluate_with_baselines, start_days
from rl.families.propfirm.metrics import policy_metrics, run_checks, wilson_interval
from tests.families.propfirm.test_env import NET
from tests.families.propfirm.test_rules import INTRADAY

DAYS = synthetic_futures_days(n_days=8, n_minutes=120, first_bar="2024-03-04T13:30", seed=4)
CFG = EnvConfig(rulebook=INTRADAY)


def test_wilson_interval_matches_hand_computation() -> None:
    lo, hi = wilson_interval(5, 10, 0.95)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 24, 0.9)[0] == 0.0 and 0.09 < wilson_interval(0, 24, 0.9)[1] < 0.11
    assert np.isnan(wilson_interval(0, 0, 0.9)[0])


def test_start_days_are_spread_per_root_and_leave_enough_days() -> None:
    two = dataclasses.replace(DAYS, bars=dataclasses.replace(DAYS.bars, symbols=np.array(["ES"] * 4 + ["NQ"] * 4)))
    assert start_days(two, per_root=2, min_days_left=2).tolist() == [0, 2, 4, 6]
    assert start_days(DAYS, per_root=3, min_days_left=3).tolist() == [0, 2, 5]  # linspace(0, 5, 3), rounded


def test_every_policy_plays_the_same_accounts_and_each_account_is_recorded() -> None:
    results = evaluate_with_baselines(random_valid(1), DAYS, CFG, EvaluationConfig(starts_per_slice=4), NET)
    assert set(results) == {"agent", "flat", "random_valid", "opening_range", "trend"}
    starts = {name: [(e.root, e.start_date) for e in r.episodes] for name, r in results.items()}
    assert len({tuple(v) for v in starts.values()}) == 1 and len(starts["flat"]) == 4
    flat = results["flat"].episodes
    assert all(e.done_reason == "end_of_data" and e.net_pnl == 0.0 and e.min_room == 2_500.0 for e in flat)
    assert [e.days for e in flat] == [8 - d for d in start_days(DAYS, 4, 5).tolist()]  # lived to the data's end
    for e in results["agent"].episodes:
        assert e.days == len(e.day_pnl) == len(e.room_by_day)
        assert sum(e.day_pnl) == pytest.approx(e.net_pnl)
        assert e.net_pnl == pytest.approx(e.gross_pnl + e.commission + e.spread_cost)
        assert e.breached == (e.min_room <= 0) or e.done_reason != "trailing_drawdown"
    m = policy_metrics(results["flat"])
    assert m["pass_rate"] == 0.0 and m["pass_rate_low"] == 0.0 and m["ended_end_of_data"] == 4
    rows = results["agent"].to_rows("s0", "ckpt", "agent")
    assert rows[0]["details_json"]["days"] == results["agent"].episodes[0].days
    checks = run_checks(results, "agent")
    rates = {name: policy_metrics(r)["pass_rate"] for name, r in results.items()}
    best_baseline = max(v for k, v in rates.items() if k != "agent")
    assert checks["pass_rate_beats_baselines"]["value"] == rates["agent"]
    assert checks["pass_rate_beats_baselines"]["passed"] == (rates["agent"] > best_baseline)
    flat_only = run_checks({"agent": results["flat"], "flat": results["flat"]}, "agent")
    assert not flat_only["pass_rate_beats_baselines"]["passed"]  # a tie is not a win
    assert not flat_only["action_mix"]["passed"]  # never trading is flagged


TINY = PPOConfig(total_timesteps=2048, n_envs=4, n_steps=128, batch_size=128, n_epochs=1, net_arch=(32,))


def _trained_then_evaluated(tmp_path, env_cfg: EnvConfig, name: str) -> dict:
    """Train on the first 5 days with `env_cfg`, evaluate accounts on the last 3 under the full rules; the check."""
    from rl.families.propfirm.env import PropFirmVecEnv

    train, test = DAYS.subset(np.arange(5)), DAYS.subset(np.arange(5, 8))
    result = train_policy(
        train,
        env_cfg,
        NET,
        TINY,
        tmp_path / name,
        lambda n, seed: PropFirmVecEnv(train, env_cfg, NET, n_envs=n, seed=seed),
        {"run_id": name},
    )
    agent, _ = load_agent(result.checkpoint_dir, test.dates)
    evaluation = evaluate_with_baselines(agent, test, CFG, EvaluationConfig(starts_per_slice=3, min_days_left=1), NET)
    mine = evaluation["agent"].episodes
    return episode_mismatch(
        result.phases[-1]["episodes"],
        episode_summary([e.done_reason for e in mine], [e.steps for e in mine]),
    )


def test_seed_002_regression_short_training_windows_are_flagged(tmp_path) -> None:
    """Trained only on 20-30-bar random windows, the agent never met how an account ends; trained on whole
    accounts, it did."""
    short = _trained_then_evaluated(tmp_path, dataclasses.replace(CFG, episode_bars=(20, 30)), "short")
    assert not short["passed"]
    assert short["training"]["done_reasons"].get("bar_limit", 0) > 0.9 * short["training"]["episodes"]
    assert short["training"]["length_quantiles"]["p90"] <= 30
    whole = _trained_then_evaluated(tmp_path, CFG, "whole")
    assert whole["passed"], whole["detail"]
    assert whole["training"]["length_quantiles"]["p50"] > 30
