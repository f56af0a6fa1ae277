"""The train/eval mismatch check: seed 002's short training windows against long evaluation accounts."""

from __future__ import annotations

from rl.core.mismatch import episode_mismatch, episode_summary, merge


def test_short_training_windows_against_long_accounts_fail() -> None:
    training = episode_summary(["bar_limit"] * 97 + ["trailing_drawdown"] * 3, [25] * 100)
    evaluation = episode_summary(["trailing_drawdown"] * 7 + ["passed"] * 2 + ["end_of_data"], [1846] * 10)
    check = episode_mismatch(training, evaluation, mismatch_share=0.5, rare_share=0.05)
    assert not check["passed"]
    assert (
        abs(check["value"] - 1.0) < 1e-12
    )  # trailing_drawdown (3%), passed and end_of_data (0%) are all rare in training
    assert "trailing_drawdown: 70% of evaluation, 3.0% of training" in check["detail"]
    assert check["training"]["length_quantiles"]["p50"] == 25.0
    assert check["evaluation"]["length_quantiles"]["p50"] == 1846.0


def test_the_same_kind_of_episode_passes_and_a_rare_minority_is_tolerated() -> None:
    training = episode_summary(["trailing_drawdown"] * 60 + ["passed"] * 30 + ["end_of_data"] * 10, [900] * 100)
    evaluation = episode_summary(["trailing_drawdown"] * 5 + ["passed"] * 4 + ["daily_loss"], [800] * 10)
    check = episode_mismatch(training, evaluation)
    assert check["passed"] and check["value"] == 0.1 and "daily_loss" in check["detail"]


def test_training_that_never_finished_an_episode_fails_and_slices_merge() -> None:
    evaluation = episode_summary(["end_of_data"] * 4, [390] * 4)
    check = episode_mismatch(episode_summary([], []), evaluation)
    assert not check["passed"] and "never saw how an episode ends" in check["detail"]
    both = merge([episode_summary(["a", "b"], [10, 20]), episode_summary(["a"], [30])])
    assert both["episodes"] == 3 and both["done_reasons"] == {"a": 2, "b": 1}
    assert both["shares"]["a"] == 2 / 3
