"""IQM, the stratified bootstrap and the probability of improvement, against values worked out by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rl.core.intervals import (
    beats_baselines,
    compare,
    iqm,
    iqm_interval,
    probability_of_improvement,
    report_lines,
    seed_comparison,
    stratified_resamples,
)


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # (3 + 4 + 5 + 6) / 4
    assert iqm([100.0, 1, 2, 3, 4, 5]) == pytest.approx(3.5)  # 1 cut at each end of 6: (2 + 3 + 4 + 5) / 4
    assert iqm([[-50.0, 1.0], [2.0, 3.0]]) == pytest.approx(1.5)  # flattened: -50 and 3 are cut
    assert iqm([7.0]) == 7.0
    with pytest.raises(ValueError, match="undefined"):
        iqm([])


def test_probability_of_improvement_counts_pairs_per_slice_with_ties_half():
    # slice a: pairs (1>2 no, 1>0 yes, 3>2 yes, 3>0 yes) = 3/4; slice b: 5 = 5 tie = 1/2.
    x = {"a": [1.0, 3.0], "b": [5.0]}
    y = {"a": [2.0, 0.0], "b": [5.0]}
    assert probability_of_improvement(x, y) == pytest.approx((0.75 + 0.5) / 2)
    assert probability_of_improvement(y, x) == pytest.approx((0.25 + 0.5) / 2)
    with pytest.raises(ValueError, match="same slices"):
        probability_of_improvement(x, {"a": [1.0]})


def test_stratified_resamples_keep_every_slice_and_draw_only_its_own_runs():
    rng = np.random.default_rng(0)
    a, b = stratified_resamples({"a": [1.0, 2.0, 3.0], "b": [10.0, 20.0]}, 500, rng)
    assert a.shape == (500, 3) and b.shape == (500, 2)
    assert set(np.unique(a)) == {1.0, 2.0, 3.0} and set(np.unique(b)) == {10.0, 20.0}


def test_the_bootstrap_interval_matches_the_exact_resampling_distribution():
    """Two slices of two runs: 16 equally likely stratified resamples, whose IQM quantiles the bootstrap must hit."""
    runs = {"a": [0.0, 4.0], "b": [1.0, 9.0]}
    exact = []
    for pick_a, pick_b in itertools.product(
        itertools.product(runs["a"], repeat=2), itertools.product(runs["b"], repeat=2)
    ):
        exact.append(iqm([*pick_a, *pick_b]))
    want_low, want_high = np.quantile(exact, [0.1, 0.9])
    got = iqm_interval(runs, confidence=0.8, reps=40_000, seed=1)
    assert got["iqm"] == pytest.approx(iqm([0.0, 4.0, 1.0, 9.0]))  # (1 + 4) / 2 = 2.5
    assert got["iqm"] == pytest.approx(2.5)
    assert got["low"] == pytest.approx(want_low, abs=0.26)
    assert got["high"] == pytest.approx(want_high, abs=0.26)


def test_one_run_per_slice_has_no_width_and_identical_runs_none_either():
    assert iqm_interval({"a": [3.0], "b": [5.0]}) == {"iqm": 4.0, "low": 4.0, "high": 4.0}
    same = iqm_interval({"a": [2.0, 2.0, 2.0]})
    assert same["low"] == same["high"] == 2.0


def test_compare_gives_the_difference_of_iqms_and_its_interval():
    agent = {"a": [10.0, 12.0, 11.0], "b": [9.0, 13.0, 10.0]}
    flat = {"a": [0.0], "b": [0.0]}
    out = compare(agent, flat, reps=2000)
    assert out["iqm_diff"] == pytest.approx(iqm([10, 12, 11, 9, 13, 10]))
    assert out["iqm_diff_low"] > 9.0 and out["iqm_diff_high"] < 13.0
    assert out["poi"] == out["poi_low"] == out["poi_high"] == 1.0


def test_beats_baselines_judges_the_lower_bound_not_the_lucky_seed():
    lucky = {"a": [-5.0, -4.0, 30.0], "b": [-6.0, -3.0, 25.0]}  # one great seed per slice, two losing ones
    steady = {"a": [4.0, 5.0, 6.0], "b": [3.0, 5.0, 4.0]}
    flat = {"a": [0.0], "b": [0.0]}
    assert np.mean([*lucky["a"], *lucky["b"]]) > 0  # the plain mean says it wins
    failed = beats_baselines(seed_comparison(lucky, {"flat": flat}))
    assert not failed["passed"] and failed["value"] < 0 and "worst baseline flat" in failed["threshold"]
    passed = beats_baselines(seed_comparison(steady, {"flat": flat, "worse": {"a": [1.0], "b": [-1.0]}}))
    assert passed["passed"] and passed["value"] > 0
    assert "P(agent > flat) 1.00" in passed["detail"]
    single = beats_baselines(seed_comparison({"a": [4.0], "b": [5.0]}, {"flat": flat}))
    assert single["passed"] and "one seed per slice" in single["detail"]


def test_the_report_section_shows_each_policy_and_each_comparison():
    comparison = seed_comparison({"a": [4.0, 5.0], "b": [3.0, 6.0]}, {"flat": {"a": [0.0], "b": [0.0]}})
    text = "\n".join(report_lines(comparison))
    assert "## Seeds and intervals" in text and "| **agent** | +4.50 |" in text
    assert "| flat | +0.00 | [+0.00, +0.00] |" in text  # the baseline's own IQM
    assert "| flat | +4.50 | [" in text and "| 1.00 [1.00, 1.00] |" in text  # the agent against it
