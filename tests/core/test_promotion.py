"""The promotion gate's rule on hand-built run scores, its config, and the promoted policy's page."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from rl.core.promotion import NOT_TRADING, PromotedPolicy, Promotion, PromotionConfig, decide, promoted_report


def test_gate_promotes_a_candidate_that_beats_the_incumbent_on_every_slice() -> None:
    candidate = {"s0": [3.0, 4.0], "s1": [2.0, 5.0]}
    incumbent = {"s0": [1.0, 2.0], "s1": [1.0, 1.5]}
    ev = decide(candidate, incumbent, PromotionConfig(), "old")
    assert ev["poi"] == 1.0  # every pair within each slice favours the candidate
    assert ev["iqm_diff"] == pytest.approx(3.5 - 1.25)  # trimmed means of (2, 3, 4, 5) and (1, 1, 1.5, 2)
    assert ev["promoted"] and ev["iqm_diff_low"] <= ev["iqm_diff"] <= ev["iqm_diff_high"]
    assert ev["candidate_runs"] == candidate and ev["incumbent_runs"] == incumbent


def test_gate_keeps_the_incumbent_below_the_probability_threshold() -> None:
    # s0: the candidate wins 3 of 4 pairs; s1: it loses both pairs: P = (0.75 + 0) / 2 = 0.375.
    candidate = {"s0": [3.0, 1.5], "s1": [0.0]}
    incumbent = {"s0": [1.0, 2.0], "s1": [2.0, 0.5]}
    ev = decide(candidate, incumbent, PromotionConfig(min_probability=0.3), "old")
    assert ev["poi"] == pytest.approx(0.375)
    assert ev["promoted"] == (ev["iqm_diff"] > 0)  # above 0.3, so the IQM difference decides
    assert not decide(candidate, incumbent, PromotionConfig(min_probability=0.4), "old")["promoted"]
    assert "kept the incumbent" in decide(candidate, incumbent, PromotionConfig(), "old")["detail"]


def test_before_any_promotion_the_incumbent_is_not_trading() -> None:
    losing = decide({"s0": [-1.0, 2.0], "s1": [-3.0]}, None, PromotionConfig())
    assert losing["against"] == NOT_TRADING and losing["incumbent_runs"] == {"s0": [0.0], "s1": [0.0]}
    assert losing["poi"] == pytest.approx((0.5 + 0.0) / 2) and not losing["promoted"]
    assert decide({"s0": [1.0, 2.0], "s1": [3.0]}, None, PromotionConfig())["promoted"]
    tie = decide({"s0": [0.0]}, None, PromotionConfig(min_probability=0.0))
    assert tie["poi"] == 0.5 and not tie["promoted"]  # equal scores never promote: the IQM must be higher


@pytest.mark.parametrize("bad", [-0.1, 1.0, "0.5", True])
def test_promotion_threshold_is_validated(bad) -> None:
    with pytest.raises(ValueError, match="promotion.min_probability"):
        PromotionConfig(min_probability=bad)
    with pytest.raises(ValueError, match="unknown"):
        PromotionConfig.from_dict({"min_probabilty": 0.5})


def _policy() -> PromotedPolicy:
    slices = {"slice_2": {"test": ["2024-01-01", "2024-01-31"]}, "slice_10": {"test": ["2024-02-01", "2024-02-28"]}}
    checkpoints = {f"{s}/seed_{k}": f"/ckpt/{s}-{k}" for s in slices for k in (0, 1)}
    return PromotedPolicy("run-1", checkpoints, {}, slices, {"evaluation_run_id": "e", "iqm": 5.0, "low": 2.0,
                                                             "high": 8.0})  # fmt: skip


def test_the_shadow_plays_every_seed_of_the_slice_trained_latest() -> None:
    assert _policy().latest_keys() == ["slice_10/seed_0", "slice_10/seed_1"]  # by test dates, not by name
    assert PromotedPolicy.from_dict(_policy().to_dict()) == _policy()


def test_promoted_report_puts_shadow_days_beside_the_held_out_interval() -> None:
    decision = Promotion("p", "f", "run-1", "e", None, True, _policy(), decide({"s": [1.0]}, None, PromotionConfig()))
    shadow = pl.DataFrame(
        {
            "partition_date": [date(2024, 3, 1)] * 2 + [date(2024, 3, 4)] * 2,
            "checkpoint": ["slice_10/seed_0", "slice_10/seed_1"] * 2,
            "net_pnl": [-4.0, -2.0, 0.0, -2.0],
            "trades": [2, 4, 0, 0],
        }
    )
    text = promoted_report(decision, shadow)
    assert "shadow 2024-03-01 | 1 | -3.00 | 3 trades" in text and "shadow 2024-03-04 | 1 | -1.00" in text
    assert "shadow (mean) | 2 | -2.00 | below the held-out interval" in text  # mean -2 < low 2
    assert "held-out (IQM) |  | +5.00 | [+2.00, +8.00]" in text
    empty = promoted_report(decision, shadow.clear())
    assert "No shadow partition has been played yet" in empty
