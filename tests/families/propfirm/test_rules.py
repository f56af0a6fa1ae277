"""The rule book: the shipped YAMLs load, every rule is checked by hand at its boundaries, bad values are refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from rl.families.propfirm.rules import (
    RuleBook,
    best_day_share,
    closing_peak,
    consistent,
    contract_units,
    daily_loss_hit,
    drawdown_breached,
    intraday_peak,
    load_rulebook,
    max_position,
    passed,
    trailing_threshold,
)

BOOKS = Path(__file__).resolve().parents[3] / "configs" / "rulebooks"
INTRADAY = load_rulebook(BOOKS / "apex_50k_intraday.yaml")
EOD = load_rulebook(BOOKS / "apex_50k_eod.yaml")


def test_shipped_books_load_with_the_published_50k_terms() -> None:
    assert (INTRADAY.start_balance, INTRADAY.profit_target, INTRADAY.trailing_drawdown) == (50_000, 3_000, 2_500)
    assert INTRADAY.trailing == "intraday" and INTRADAY.daily_loss_limit is None
    assert EOD.trailing == "end_of_day" and EOD.daily_loss_limit == 1_000 and EOD.daily_loss_action == "pause"
    assert INTRADAY.sha256 != EOD.sha256 and len(INTRADAY.sha256) == 64


def test_intraday_trailing_follows_the_high_including_open_profit() -> None:
    """The issue's example: peak $50,875 intraday, close $50,100: the threshold is $48,375, not $47,600."""
    peak = intraday_peak(50_000.0, np.array([50_400.0, 50_875.0, 50_100.0]).max(), INTRADAY)
    assert peak == 50_875.0
    assert trailing_threshold(peak, INTRADAY) == 48_375.0
    assert trailing_threshold(closing_peak(peak, 50_100.0), INTRADAY) == 48_375.0  # the close does not lower it
    assert trailing_threshold(50_000.0, INTRADAY) == 47_500.0


def test_trailing_stops_once_the_threshold_reaches_start_plus_100() -> None:
    assert trailing_threshold(52_599.0, INTRADAY) == 50_099.0
    assert trailing_threshold(52_600.0, INTRADAY) == 50_100.0  # the boundary: reached
    assert trailing_threshold(53_000.0, INTRADAY) == 50_100.0  # and it stays there
    never = replace(INTRADAY, trail_stop_offset=None)
    assert trailing_threshold(53_000.0, never) == 50_500.0


def test_end_of_day_book_trails_only_closing_balances() -> None:
    """Intraday high $51,200, close $50,800: the EOD threshold moves to $48,300, the intraday one to $48,700."""
    assert intraday_peak(50_000.0, 51_200.0, EOD) == 50_000.0
    assert trailing_threshold(closing_peak(50_000.0, 50_800.0), EOD) == 48_300.0
    assert trailing_threshold(intraday_peak(50_000.0, 51_200.0, INTRADAY), INTRADAY) == 48_700.0
    assert closing_peak(50_800.0, 50_300.0) == 50_800.0  # a lower close never lowers the peak


def test_touching_the_threshold_breaches() -> None:
    assert list(drawdown_breached(np.array([48_375.01, 48_375.0, 48_000.0]), 48_375.0)) == [False, True, True]


def test_daily_loss_limit_is_reached_at_exactly_minus_the_limit() -> None:
    """Day opens at $50,400; equity lows of $49,401 and $49,400 are day P&Ls of -$999 and -$1,000."""
    assert list(daily_loss_hit(np.array([49_401.0, 49_400.0]) - 50_400.0, EOD)) == [False, True]
    assert not daily_loss_hit(-5_000.0, INTRADAY)  # no limit on the intraday book


def test_contract_limit_counts_micros_at_a_tenth() -> None:
    assert contract_units(3, 70, INTRADAY) == pytest.approx(10.0)
    assert contract_units(-3, 71, INTRADAY) > INTRADAY.max_contracts
    assert max_position(INTRADAY, micro=False) == 10 and max_position(INTRADAY, micro=True) == 100
    assert max_position(replace(INTRADAY, max_contracts=3.5), micro=False) == 3


def test_consistency_is_the_best_days_share_of_total_profit() -> None:
    assert best_day_share(np.array([1_000.0, 500.0, 500.0, 1_000.0])) == pytest.approx(1 / 3)
    assert not consistent(np.array([1_000.0, 500.0, 500.0, 1_000.0]), INTRADAY)
    assert consistent(np.array([900.0, 700.0, 700.0, 700.0]), INTRADAY)  # exactly 30%: allowed
    with_loss = np.array([900.0, -300.0, 700.0, 700.0, 700.0, 200.0])  # a losing day lowers the total profit
    assert best_day_share(with_loss) == pytest.approx(900 / 2_900) and not consistent(with_loss, INTRADAY)
    assert np.isnan(best_day_share(np.array([-100.0, 50.0])))  # no profit: undefined, and not consistent
    assert not consistent(np.array([-100.0, 50.0]), INTRADAY)


def test_passing_needs_the_target_and_the_qualifying_days() -> None:
    balance = np.array([53_000.0, 53_000.0, 52_999.99, 54_000.0])
    days = np.array([5, 4, 9, 5])
    assert list(passed(balance, days, INTRADAY)) == [True, False, False, True]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trailing": "weekly"}, "trailing must be one of intraday, end_of_day"),
        ({"trailing_drawdown": 0}, "trailing_drawdown must be a number > 0"),
        ({"daily_loss_limit": float("nan")}, "daily_loss_limit must be a number >= 0 or null"),
        ({"micro_ratio": 2}, "micro_ratio must be in"),
        ({"flat_by": "5pm"}, "flat_by must be a local time HH:MM"),
        ({"entry_cutoff": "17:00"}, "entry_cutoff .* is after flat_by"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"qualifying_days": 0}, "qualifying_days must be an integer >= 1"),
        ({"trail_stop_offset": 3_000}, "trail_stop_offset must be below profit_target"),
        ({"daily_loss_action": "warn"}, "daily_loss_action must be one of pause, breach"),
    ],
)
def test_bad_values_are_refused_with_the_key(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RuleBook.from_dict({**INTRADAY.to_dict(), **change})


def test_unknown_keys_and_broken_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['max_contract'\]"):
        RuleBook.from_dict({"name": "x", "max_contract": 5})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="bad.yaml is not valid YAML"):
        load_rulebook(bad)
    with pytest.raises(ValueError, match="rule book not found"):
        load_rulebook(tmp_path / "missing.yaml")
    same = tmp_path / "same.yaml"
    same.write_text("# a comment\n" + yaml.safe_dump(dict(reversed(INTRADAY.to_dict().items())), sort_keys=False))
    assert load_rulebook(same).sha256 == INTRADAY.sha256  # comments and order do not change the version
