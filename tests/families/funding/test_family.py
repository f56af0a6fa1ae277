"""The funding family on the shared machinery: its config, day slicing, and its reward audit before training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from rl.core.audit import audit_target
from rl.core.family import FamilyConfig, load_family
from rl.core.reward import AuditLimits
from rl.families.funding.audit import funding_audit_target
from rl.families.funding.config import FundingEnvConfig, FundingEvaluationConfig, load_funding_reward
from rl.families.funding.data import random_funding_days
from tests import ROOT

CONFIGS = ROOT / "configs"


def test_funding_yaml_loads_as_a_funding_family() -> None:
    cfg = load_family(CONFIGS / "funding.yaml")
    assert cfg.kind == "funding" and isinstance(cfg.env, FundingEnvConfig)
    assert isinstance(cfg.evaluation, FundingEvaluationConfig)
    assert cfg.data.symbols == ()  # "all"
    again = FamilyConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert load_family(CONFIGS / "intraday.yaml").evaluation is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(kind="options"), "unknown family kind 'options'"),
        (lambda r: r["evaluation"].update(greedy_exit_apr=0.5), "greedy_exit_apr"),
        (lambda r: r["evaluation"].update(stride_hours=0), "stride_hours"),
        (lambda r: r["evaluation"].update(max_symbol_hhi=1.5), "max_symbol_hhi"),
        (lambda r: r["evaluation"].update(unknown=1), "unknown key"),
        (lambda r: r["env"]["trading"].update(leverage=20), "leverage"),
    ],
)
def test_bad_funding_config_values_are_refused(edit, message: str) -> None:
    raw = yaml.safe_load((CONFIGS / "funding.yaml").read_text())
    edit(raw)
    with pytest.raises(ValueError, match=message):
        FamilyConfig.from_dict(raw)


def test_intraday_family_takes_no_evaluation_section() -> None:
    raw = yaml.safe_load((CONFIGS / "intraday.yaml").read_text())
    raw["evaluation"] = {"stride_hours": 24}
    with pytest.raises(ValueError, match="takes no evaluation section"):
        FamilyConfig.from_dict(raw)


def test_select_dates_takes_whole_utc_days_and_refuses_gaps() -> None:
    days = random_funding_days(24 * 5, 3, seed=1)
    assert [str(d) for d in days.dates] == [f"2025-10-{d}" for d in range(22, 27)]
    window = days.select_dates(["2025-10-23", "2025-10-24"])
    assert window.n_hours == 48 and str(window.timeline[0]).startswith("2025-10-23T00")
    np.testing.assert_array_equal(window.mark, days.mark[24:72])
    assert window.content_hash() != days.content_hash()
    with pytest.raises(ValueError, match="consecutive"):
        days.select_dates(["2025-10-23", "2025-10-25"])
    with pytest.raises(ValueError, match="not in this FundingDays"):
        days.select_dates(["2025-11-30"])


def test_audit_passes_the_default_reward_and_names_what_breaks_a_raw_dollar_one() -> None:
    days = random_funding_days(240, 6, seed=3, planted_spread_apr=0.3, anomalous=1)
    cfg = FundingEnvConfig()
    default = load_funding_reward(CONFIGS / "rewards" / "funding.yaml")
    audit = audit_target(funding_audit_target(days, cfg, default), default, seed=0)
    assert audit.problems() == [], audit.problems()
    assert set(audit.policies) == {"random_valid", "enter_best", "churn", "flat"}
    assert audit.policy_net_pnl["flat"] == 0.0 and audit.policy_net_pnl["churn"] < 0.0
    # Seed 000's mistake in this family: P&L in raw dollars under the default limits.
    raw_dollars = load_funding_reward(CONFIGS / "rewards" / "funding_seed004_v2.yaml")
    strict = dataclasses.replace(raw_dollars, audit=AuditLimits())
    problems = audit_target(funding_audit_target(days, cfg, strict), strict, seed=0).problems()
    assert any("p99 |step reward|" in p and "fees" in p for p in problems), problems


def test_audit_flags_fees_weighted_below_pnl(tmp_path: Path) -> None:
    spec = yaml.safe_load((CONFIGS / "rewards" / "funding.yaml").read_text())
    spec["components"]["fees"]["weight"] = 0.5
    path = tmp_path / "cheap_fees.yaml"
    path.write_text(yaml.safe_dump(spec))
    reward = load_funding_reward(path)
    days = random_funding_days(120, 4, seed=2)
    problems = audit_target(funding_audit_target(days, FundingEnvConfig(), reward), reward, seed=0).problems()
    assert any(p.startswith("fees under-weighted") and "fees" in p for p in problems), problems
