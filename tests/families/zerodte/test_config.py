"""0DTE settings: the shipped config loads, bad values fail at load time naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from rl.core.family import TRAINING_SECTIONS, FamilyConfig, load_family
from rl.families.zerodte.config import EnvConfig, EvaluationConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_the_shipped_config_loads_with_seed_003s_rules() -> None:
    cfg = load_family(CONFIGS / "zerodte.yaml")
    assert cfg.env.risk.tiers == (0.2, 0.3, 0.5, 0.7, 1.0, 2.0) and cfg.env.risk.stop == 0.15
    assert cfg.env.window == 20 and cfg.data.symbols == ("SPY", "QQQ", "SPX")
    assert cfg.evaluation.max_hold_share == 0.87


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"contracts": 0}, "contracts"),
        ({"premium_budget": 0}, "premium_budget"),
        ({"premium_budget": "lots"}, "premium_budget"),
        ({"window": 40}, "warmup_minutes must be >= window - 1"),
        ({"risk": {"stop": 1.5}}, "risk.stop"),
        ({"risk": {"tiers": [0.5, 0.2]}}, "risk.tiers"),
        ({"contract": {"target_delta": 0}}, "contract.target_delta"),
        ({"risk": {"settlement": "physical"}}, "risk.settlement"),
        ({"spread": 1}, "unknown"),
    ],
)
def test_a_bad_env_value_is_refused_naming_it(raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnvConfig.from_dict(raw)


def test_a_bad_evaluation_value_is_refused() -> None:
    with pytest.raises(ValueError, match="max_hold_share"):
        EvaluationConfig(max_hold_share=1.2)


def test_a_risk_edit_changes_the_training_version() -> None:
    cfg = load_family(CONFIGS / "zerodte.yaml")
    raw = cfg.to_dict()
    raw["env"]["risk"]["stop"] = 0.2
    edited = FamilyConfig.from_dict(raw)
    assert edited.version(TRAINING_SECTIONS) != cfg.version(TRAINING_SECTIONS)
    assert FamilyConfig.from_dict(cfg.to_dict()).version(TRAINING_SECTIONS) == cfg.version(TRAINING_SECTIONS)
