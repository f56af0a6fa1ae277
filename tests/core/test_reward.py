"""Declarative reward YAML: loading, validation errors, combine() math, net-P&L matches accounting."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from rl.core.data import random_walk_days
from rl.core.reward import AuditLimits, RewardSpec, combine, load_reward
from rl.families.intraday.accounting import COMPONENT_NAMES, COMPONENTS
from rl.families.intraday.config import EnvConfig
from rl.families.intraday.env import IntradayEnv
from tests import ROOT

CONFIGS = ROOT / "configs" / "rewards"


def _write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_rewards_load_with_the_sha_of_their_values() -> None:
    for name in ("intraday.yaml", "intraday_seed000_original.yaml"):
        path = CONFIGS / name
        spec = load_reward(path, COMPONENTS)
        values = yaml.safe_load(path.read_text())
        assert spec.sha256 == hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()
        assert set(spec.components) <= set(COMPONENTS) and spec.name
    default = load_reward(CONFIGS / "intraday.yaml", COMPONENTS)
    assert {n: c.coefficient for n, c in default.components.items()}["pnl"] == pytest.approx(0.01)
    seed = load_reward(CONFIGS / "intraday_seed000_original.yaml", COMPONENTS)
    assert seed.components["daily_pnl_level"].weight == 5.0 and seed.components["sharpe"].weight == 100.0
    assert seed.components["loss_penalty"].weight == 2.0 and seed.components["commission"].weight == 0.5
    again = RewardSpec.from_dict(_strip(default.to_dict()), COMPONENTS)
    assert (again.name, again.description, again.components, again.audit) == (
        default.name,
        default.description,
        default.components,
        default.audit,
    )


def _strip(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "sha256"}


def test_sha_changes_with_a_value_not_with_a_comment(tmp_path: Path) -> None:
    a = load_reward(_write(tmp_path, "name: a\ncomponents: {pnl: {weight: 1, scale: 0.01}}\n"), COMPONENTS)
    b = load_reward(_write(tmp_path, "name: a\ncomponents: {pnl: {weight: 1, scale: 0.02}}\n"), COMPONENTS)
    assert a.sha256 != b.sha256 and len(a.sha256) == 64
    c = load_reward(
        _write(tmp_path, "# why: a note\nname: a\ncomponents:\n  pnl: {scale: 0.01, weight: 1}\n"), COMPONENTS
    )
    assert c.sha256 == a.sha256


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "name: r\ncomponents: {pnl: {weight: 1}, pnl_bonus: {weight: 2}}\n",
            r"unknown component.*pnl_bonus.*known",
        ),
        ("name: r\ncomponents: {pnl: {weight: .nan, scale: 1}}\n", "finite"),
        ("name: r\ncomponents: {pnl: {weight: 1, scale: .inf}}\n", "finite"),
        ("name: r\ncomponents: {pnl: {weight: lots}}\n", "number"),
        ("name: r\ncomponents: {pnl: {weight: true}}\n", "number"),
        ("name: r\ncomponents: {pnl: {scale: 1}}\n", "weight"),
        ("name: r\ncomponents: {pnl: {weight: 1, scael: 1}}\n", "unknown key"),
        ("name: r\ncomponents: {}\n", "non-empty"),
        ("name: r\n", "components"),
        ("components: {pnl: {weight: 1}}\n", "name"),
        ("name: r\ncomponents: {pnl: {weight: 1}}\nextra: 1\n", "unknown top-level"),
        ("name: r\ncomponents: {pnl: {weight: 1}}\naudit: {max_step: 1}\n", "audit"),
        ("name: r\ncomponents: {pnl: {weight: 1}}\naudit: {max_step_p99: -1}\n", "max_step_p99"),
        ("- just\n- a list\n", "mapping"),
        ("name: r\ncomponents: {pnl: {weight: 1}\n", "not valid YAML"),
        ("", "empty"),
    ],
)
def test_bad_reward_files_raise_clear_value_errors(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_reward(_write(tmp_path, text), COMPONENTS)


def test_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_reward(tmp_path / "nope.yaml", COMPONENTS)


def test_unknown_component_message_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        load_reward(_write(tmp_path, "name: r\ncomponents: {sharpee: {weight: 1}}\n"), COMPONENTS)
    assert all(name in str(err.value) for name in COMPONENT_NAMES)


def test_combine_is_the_weighted_sum_of_components() -> None:
    rng = np.random.default_rng(0)
    comps = {name: rng.standard_normal(7) for name in COMPONENT_NAMES}
    spec = RewardSpec.from_dict(
        {
            "name": "mix",
            "components": {
                "pnl": {"weight": 2.0, "scale": 0.5},
                "drawdown": {"weight": -3.0},
                "hold_tax": {"weight": 0.0, "scale": 9.0},
            },
        },
        COMPONENTS,
    )
    expected = 2.0 * 0.5 * comps["pnl"] - 3.0 * comps["drawdown"]
    np.testing.assert_allclose(combine(spec, comps), expected, rtol=1e-12)
    comps["hold_tax"] = np.full(7, np.nan)  # a zero-weight component never leaks into the total
    assert np.all(np.isfinite(combine(spec, comps)))
    del comps["drawdown"]
    with pytest.raises(ValueError, match="drawdown"):
        combine(spec, comps)
    assert spec.coefficients == (("pnl", 1.0), ("drawdown", -3.0))


@pytest.mark.parametrize("scale", [0.01, 1.0, 3.7])
def test_net_pnl_reward_sums_to_scaled_day_net_pnl(scale: float) -> None:
    spec = RewardSpec.from_dict(
        {
            "name": "net",
            "components": {n: {"weight": 1.0, "scale": scale} for n in ("pnl", "commission", "spread_cost")},
        },
        COMPONENTS,
    )
    days = random_walk_days(3, 120, n_features=3, seed=2)
    env = IntradayEnv(days, EnvConfig(warmup_minutes=10), spec)
    rng = np.random.default_rng(0)
    for episode in range(4):
        env.reset(seed=episode)
        total, done, info = 0.0, False, {}
        while not done:
            mask = env.action_masks()
            _, r, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(mask))))
            total += r
            done = term or trunc
        assert info["round_trips"] > 0
        assert total == pytest.approx(scale * info["net_pnl"], rel=1e-9, abs=1e-9)


def test_audit_limits_defaults_and_yaml_override(tmp_path: Path) -> None:
    assert AuditLimits() == AuditLimits(10.0, 1000.0, 1000.0, True)
    spec = load_reward(
        _write(
            tmp_path,
            "name: r\ncomponents: {pnl: {weight: 1}}\naudit: {max_step_p99: 2, require_fee_parity: false}\n",
        ),
        COMPONENTS,
    )
    assert spec.audit.max_step_p99 == 2.0 and spec.audit.max_value_target == 1000.0
    assert not spec.audit.require_fee_parity
    assert yaml.safe_load(yaml.safe_dump(spec.to_dict()))["components"]["pnl"] == {
        "weight": 1.0,
        "scale": 1.0,
    }
