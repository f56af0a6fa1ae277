"""Seed 004's regression, trained for real (briefly): under the v2 reward PPO learns to farm the quality bonus, and
the evaluation must say so. The long run (default reward beating both baselines) is benchmarks/bench_funding_train.py.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from market.funding import FundingMarketConfig, generate_funding_day
from rl.core.family import load_family
from rl.core.registry import get_family
from rl.families.funding.config import load_funding_reward
from rl.families.funding.data import FundingDays
from tests import ROOT

CONFIGS = ROOT / "configs"
START = date(2024, 3, 1)
TRAIN_DAYS, TEST_DAYS = 12, 5


def _days() -> tuple[FundingDays, FundingDays]:
    tapes = [generate_funding_day(FundingMarketConfig(), START + timedelta(days=i)) for i in range(-2, 17)]
    days = FundingDays.from_frames(
        pl.concat([t.funding_rates for t in tapes]),
        pl.concat([t.mark_prices for t in tapes]),
        start=np.datetime64(START.isoformat(), "ns"),
        end=np.datetime64((START + timedelta(days=TRAIN_DAYS + TEST_DAYS)).isoformat(), "ns") - np.timedelta64(1, "h"),
    )
    dates = [START + timedelta(days=i) for i in range(TRAIN_DAYS + TEST_DAYS)]
    return days.select_dates(dates[:TRAIN_DAYS]), days.select_dates(dates[TRAIN_DAYS:])


@pytest.mark.parametrize("steps", [60_000])
def test_a_ppo_agent_trained_on_seed004_v2_is_flagged(tmp_path: Path, steps: int) -> None:
    from rl.core.policies import agent
    from rl.core.train import train_policy

    cfg = load_family(CONFIGS / "funding.yaml")
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, total_timesteps=steps))
    family = get_family("funding")
    v2 = load_funding_reward(CONFIGS / "rewards" / "funding_seed004_v2.yaml")
    train, test = _days()
    result = train_policy(train, cfg.env, v2, cfg.ppo, tmp_path / "ckpt", family.env_factory(train, cfg.env, v2))
    from rl.core.checkpoint import load_checkpoint

    model, _ = load_checkpoint(result.checkpoint_dir)
    results = family.evaluate(agent(model), test, cfg, v2, "agent")
    checks = family.run_checks(results, cfg, "agent")
    m = family.metrics(results["agent"])
    assert m["total_reward"] > 0 > m["total_pnl"], m  # the reward says win, the money says loss
    assert not checks["reward_pnl_alignment"]["passed"], checks["reward_pnl_alignment"]
    report = family.report(_ctx(), {"s0": results}, checks, tmp_path / "report", "agent", (), cfg)
    assert "reward_pnl_alignment" in report and "FAIL" in report


def _ctx():
    from rl.core.report import ReportContext

    return ReportContext("funding", "eval", "train", {"s0": "ckpt"}, "funding_seed004_v2", "0" * 64, "d", "c")
