"""Walk-forward slicing (no look-ahead between train and test) and the family config it is declared in."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import yaml

from rl.core.family import DataRange, FamilyConfig, load_family
from rl.core.walkforward import WalkForwardConfig, walk_forward_slices
from tests import ROOT  # noqa: E402

FAMILY = ROOT / "configs" / "intraday.yaml"


def _weekdays(n: int, start: date = date(2024, 1, 2)) -> list[date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


@pytest.mark.parametrize(
    ("n_dates", "cfg"),
    [
        (61, WalkForwardConfig()),
        (30, WalkForwardConfig(train_days=10, test_days=5, slices=3)),
        (40, WalkForwardConfig(train_days=8, test_days=3, slices=4, step_days=7)),
        (5, WalkForwardConfig(train_days=1, test_days=1, slices=4)),
    ],
)
def test_every_test_date_is_after_every_train_date(n_dates, cfg):
    dates = _weekdays(n_dates)
    slices = walk_forward_slices(dates, cfg)
    assert len(slices) == cfg.slices >= 1
    seen_test: set[date] = set()
    for s in slices:
        assert len(s.train_dates) == cfg.train_days and len(s.test_dates) == cfg.test_days
        assert min(s.test_dates) > max(s.train_dates), s.name
        assert not set(s.train_dates) & set(s.test_dates)
        assert list(s.train_dates) == sorted(s.train_dates) and list(s.test_dates) == sorted(s.test_dates)
        assert not seen_test & set(s.test_dates), "test windows must not overlap"
        seen_test |= set(s.test_dates)
    assert slices[-1].test_dates[-1] == dates[-1], "the last slice tests on the most recent sessions"
    assert [s.test_dates[0] for s in slices] == sorted(s.test_dates[0] for s in slices)
    assert len({s.name for s in slices}) == len(slices)


def test_default_config_has_at_least_two_slices():
    assert WalkForwardConfig().slices >= 2
    assert load_family(FAMILY).walk_forward.slices >= 2


def test_repeated_and_unsorted_dates_slice_by_session():
    dates = _weekdays(12)
    per_symbol = np.array([np.datetime64(d) for d in dates for _ in ("SPY", "QQQ")], dtype="datetime64[D]")
    rng = np.random.default_rng(0)
    shuffled = per_symbol[rng.permutation(len(per_symbol))]
    cfg = WalkForwardConfig(train_days=6, test_days=3, slices=2)
    slices = walk_forward_slices(shuffled, cfg)
    assert slices == walk_forward_slices(dates, cfg)
    assert slices[0].train_dates == tuple(dates[0:6]) and slices[0].test_dates == tuple(dates[6:9])
    assert slices[1].train_dates == tuple(dates[3:9]) and slices[1].test_dates == tuple(dates[9:12])


def test_too_few_dates_is_a_clear_error():
    cfg = WalkForwardConfig(train_days=10, test_days=5, slices=2)
    walk_forward_slices(_weekdays(20), cfg)  # exactly enough
    with pytest.raises(ValueError, match=r"needs 20 distinct sessions .* got 19"):
        walk_forward_slices(_weekdays(19), cfg)
    with pytest.raises(ValueError, match="got 0"):
        walk_forward_slices([], cfg)


def test_invalid_walk_forward_settings():
    with pytest.raises(ValueError, match="train_days"):
        WalkForwardConfig(train_days=0)
    with pytest.raises(ValueError, match="overlap"):
        WalkForwardConfig(test_days=5, step_days=3)
    with pytest.raises(ValueError, match="unknown key"):
        WalkForwardConfig.from_dict({"train_dayz": 3})


# ------------------------------------------------------------------------------------------ family config
def test_intraday_family_config_loads_and_covers_the_declared_range():
    from market.calendar import sessions

    cfg = load_family(FAMILY)
    assert cfg.name == "intraday"
    assert cfg.data.symbols == ("SPY", "QQQ")
    assert cfg.data.start == date(2024, 1, 2) and cfg.data.end >= date(2024, 3, 27)
    assert (ROOT / "configs" / cfg.reward).is_file()
    assert cfg.ppo.net_arch == (256, 256, 128)
    days = sessions(cfg.data.start, cfg.data.end)
    slices = walk_forward_slices(days, cfg.walk_forward)
    assert len(slices) >= 2 and all(min(s.test_dates) > max(s.train_dates) for s in slices)


def test_family_to_dict_round_trips_and_is_plain_yaml():
    cfg = load_family(FAMILY)
    raw = cfg.to_dict()
    assert FamilyConfig.from_dict(yaml.safe_load(yaml.safe_dump(raw))) == cfg


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(extra=1), "unknown key"),
        (lambda r: r["ppo"].update(n_env=8), "unknown key"),
        (lambda r: r["env"].update(share=100), "unknown key"),
        (lambda r: r["walk_forward"].update(test=3), "unknown key"),
        (lambda r: r["data"].update(start="2024-02-30"), "data.start"),
        (lambda r: r["data"].update(end="2023-12-01"), "before data.start"),
        (lambda r: r["data"].update(symbols=[]), "data.symbols"),
        (lambda r: r.update(reward="/abs/rewards.yaml"), "relative"),
        (lambda r: r.update(reward="../outside.yaml"), "relative"),
        (lambda r: r.pop("data"), "missing keys"),
    ],
)
def test_family_config_rejects_bad_values(tmp_path, edit, message):
    raw = yaml.safe_load(FAMILY.read_text())
    edit(raw)
    path = tmp_path / "family.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=message):
        load_family(path)


def test_data_range_accepts_strings():
    r = DataRange(start="2024-01-02", end="2024-01-10", symbols=["SPY"])
    assert r.start == date(2024, 1, 2) and r.symbols == ("SPY",)
