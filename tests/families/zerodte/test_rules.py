"""Seed 003's risk rules by hand: take-profit tiers and their partial exits, the hard stop and its slippage, the
rotation cooldown, flattening before the close and cash settlement at expiry."""

from __future__ import annotations

import numpy as np
import pytest

from rl.families.zerodte.rules import (
    RiskRules,
    can_enter,
    exit_share,
    must_flatten,
    settlement_value,
    stop_gap_and_slippage,
    stop_hit,
    stop_loss_beyond,
    tier_names,
    tiers_reached,
)

RULES = RiskRules()


def test_tiers_are_reached_by_the_best_premium_including_the_boundary() -> None:
    """Bought at $2.00: a best of $2.40 reaches +20%, exactly $2.60 reaches +30% too, $3.99 stops short of +100%."""
    hit = tiers_reached(2.0, np.array([2.39, 2.40, 2.60, 3.99, 6.0]), RULES)
    assert hit.sum(axis=1).tolist() == [0, 1, 2, 4, 6]
    assert tier_names(RULES) == ("tp_20", "tp_30", "tp_50", "tp_70", "tp_100", "tp_200")


def test_partial_exits_compound_on_what_is_still_held() -> None:
    """+50% sells half; +100% sells 70% of what is left; both on one bar: 1 - 0.5 * 0.3 = 85%; +200% sells all."""
    newly = np.zeros((4, 6), dtype=bool)
    newly[0, 2] = True
    newly[1, 4] = True
    newly[2, [2, 3, 4]] = True
    newly[3, 5] = True
    assert exit_share(newly, RULES) == pytest.approx([0.5, 0.7, 0.85, 1.0])
    assert exit_share(np.zeros(6, dtype=bool), RULES) == 0.0


def test_the_hard_stop_touches_at_minus_fifteen_percent_and_reports_slippage() -> None:
    assert stop_hit(2.0, np.array([1.71, 1.70, 1.50]), RULES).tolist() == [False, True, True]
    assert stop_loss_beyond(2.0, np.array([1.70, 1.65, 1.80]), RULES) == pytest.approx([0.0, 0.025, 0.0])
    # marks 1.70 and 1.50 (stop 1.70), sold at 1.66 and 1.40: gaps 0 and 0.10, slippage 0.02 and 0.05 of entry
    gap, slip = stop_gap_and_slippage(2.0, np.array([1.70, 1.50]), np.array([1.66, 1.40]), RULES)
    assert gap == pytest.approx([0.0, 0.10]) and slip == pytest.approx([0.02, 0.05])
    assert gap + slip == pytest.approx(stop_loss_beyond(2.0, np.array([1.66, 1.40]), RULES))


def test_rotation_cooldown_flat_before_close_and_cash_settlement() -> None:
    assert can_enter(np.array([100, 104, 105, 3]), np.array([100, 100, 100, -1]), RULES).tolist() == [
        False, False, True, True,
    ]  # fmt: skip
    assert must_flatten(np.array([6.0, 5.0, 0.0]), RULES).tolist() == [False, True, True]
    cash = RiskRules(settlement="cash_at_expiry")
    assert not must_flatten(1.0, cash).any()
    assert settlement_value(np.array([True, True, False]), 470.0, np.array([472.5, 469.0, 469.0])).tolist() == [
        2.5, 0.0, 1.0,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tiers": [0.3, 0.2]}, "risk.tiers must be increasing"),
        ({"tier_exits": [0.5]}, "a share in \\[0, 1\\] for each of the 6 tiers"),
        ({"stop": 1.5}, "risk.stop must be a share"),
        ({"cooldown_minutes": -1}, "risk.cooldown_minutes must be an integer"),
        ({"settlement": "hold"}, "risk.settlement must be one of"),
        ({"stopp": 0.1}, "unknown key"),
    ],
)
def test_bad_rules_are_refused_naming_the_key(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RiskRules.from_dict(change)


def test_the_contract_rule_takes_the_nearest_delta_that_quotes_enough_and_trades() -> None:
    from rl.families.zerodte.rules import ContractRule, choose_contract

    delta = np.array([0.80, 0.55, 0.45, 0.30, -0.20, -0.48, -0.52, -0.90])
    ask = np.array([6.0, 2.1, 1.6, 0.08, 0.5, 1.5, 1.9, 7.0])
    volume = np.array([50, 0, 40, 90, 10, 30, 30, 5])
    call = np.array([True] * 4 + [False] * 4)
    rule = ContractRule(target_delta=0.5, min_premium=0.1, min_volume=20)
    assert choose_contract(delta, ask, volume, call, True, rule) == 2  # 0.55 is as near but never traded
    assert choose_contract(delta, ask, None, call, True, rule) == 2  # a tie (0.05 either side): the cheaper
    assert choose_contract(delta, ask, volume, call, False, rule) == 5  # |-0.48| and |-0.52| tie: the cheaper
    far = ContractRule(target_delta=0.3, min_premium=0.1)
    assert choose_contract(delta, ask, None, call, True, far) == 2  # 0.30 quotes under the minimum premium
    assert choose_contract(delta, ask, volume, call, True, ContractRule(min_premium=10.0)) == -1
    with pytest.raises(ValueError, match="contract.target_delta"):
        ContractRule(target_delta=1.2)
