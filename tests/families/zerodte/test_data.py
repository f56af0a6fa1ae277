"""OptionDays from warehouse-shaped frames: dense quotes, gaps kept as gaps, stray rows refused, stored losslessly."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from market.option_chain import ChainConfig, chain_day
from rl.families.zerodte.data import OptionDays, synthetic_option_days


def frames(n_minutes: int = 40) -> tuple[pl.DataFrame, pl.DataFrame]:
    minute = np.datetime64("2024-03-04T14:30", "ns") + np.arange(n_minutes).astype("timedelta64[m]")
    close = 500.0 + np.cumsum(np.random.default_rng(0).normal(0, 0.2, n_minutes))
    day = date(2024, 3, 4)
    bars = pl.DataFrame(
        {"symbol": "SPY", "session_date": day, "minute": minute, "open": close, "close": close,
         "mean_spread": 0.01, "ret_1m": 0.0},
        schema_overrides={"session_date": pl.Date},
    )  # fmt: skip
    close_ns = int((minute[-1] + np.timedelta64(1, "m")).astype(np.int64))
    chain = chain_day("SPY", day, minute, close, close_ns, ChainConfig(strikes_each_side=3))
    return bars, chain


def test_every_listed_contract_minute_lands_in_its_cell() -> None:
    bars, chain = frames()
    days = OptionDays.from_frames(bars, chain, ("ret_1m",))
    assert days.n_contracts == 14 and days.missing_quotes() == 0
    row = chain.filter((pl.col("right") == "P") & (pl.col("strike") == chain["strike"].max())).sort("minute")
    np.testing.assert_allclose(days.quotes["ask"][0, :, -1], row["ask"].to_numpy(), rtol=1e-6)
    assert days.is_call[0].tolist() == [True] * 7 + [False] * 7
    np.testing.assert_allclose(days.to_close[0], row["minutes_to_expiry"].to_numpy())


def test_a_quarantined_quote_stays_a_gap_and_is_counted() -> None:
    bars, chain = frames()
    gone = chain.filter(~((pl.col("minute") == chain["minute"][300]) & (pl.col("contract") == chain["contract"][300])))
    days = OptionDays.from_frames(bars, gone, ("ret_1m",))
    assert days.missing_quotes() == 1
    assert int(np.isnan(days.quotes["bid"]).sum()) == 1


def test_a_chain_row_on_no_bar_is_refused() -> None:
    bars, chain = frames()
    with pytest.raises(ValueError, match="fall on no bar"):
        OptionDays.from_frames(bars.head(20), chain, ("ret_1m",))
    with pytest.raises(ValueError, match="fall on no bar"):  # found in whichever slice of the chain holds it
        OptionDays.from_frames(bars.head(20), chain, ("ret_1m",), chunk_rows=7)


def test_placing_the_chain_a_slice_at_a_time_builds_the_same_arrays() -> None:
    bars, chain = frames()
    later = {"session_date": pl.lit(date(2024, 3, 5)), "minute": pl.col("minute") + pl.duration(days=1, time_unit="ns")}
    bars = pl.concat([bars, bars.with_columns(**later)])
    chain = pl.concat([chain, chain.with_columns(**later).filter(pl.col("strike") > chain["strike"].min())])
    whole = OptionDays.from_frames(bars, chain, ("ret_1m",))
    assert whole.n_contracts == 14 and np.isnan(whole.strike[1]).sum() == 2  # the second day lists 12
    for rows in (1, 7, 500, chain.height - 1):
        sliced = OptionDays.from_frames(bars, chain, ("ret_1m",), chunk_rows=rows)
        assert sliced.content_hash() == whole.content_hash()


def test_npz_round_trip_keeps_every_array_and_the_data_version(tmp_path) -> None:
    days = synthetic_option_days(n_days=2, n_minutes=50)
    days.save_npz(tmp_path / "d.npz")
    back = OptionDays.load_npz(tmp_path / "d.npz")
    assert back.content_hash() == days.content_hash()
    assert back.subset([1]).dates.tolist() == days.dates[1:].tolist()


def test_a_vendors_minute_volume_lands_in_its_cell_and_an_unreported_one_stays_nan(tmp_path) -> None:
    bars, chain = frames()
    assert "volume" not in chain.columns  # the embedded chain reports none
    no_volume = OptionDays.from_frames(bars, chain, ("ret_1m",))
    assert np.isnan(no_volume.volume).all()
    reported = chain.with_columns(
        pl.when(pl.col("right") == "C").then(pl.int_range(pl.len()).cast(pl.Float64)).otherwise(None).alias("volume")
    )
    days = OptionDays.from_frames(bars, reported, ("ret_1m",))
    calls = reported.filter(pl.col("right") == "C")
    row = calls.filter(pl.col("strike") == calls["strike"].min()).sort("minute")
    np.testing.assert_array_equal(days.volume[0, :, 0], row["volume"].to_numpy())
    assert np.isnan(days.volume[0, :, ~days.is_call[0]]).all()
    days.save_npz(tmp_path / "v.npz")
    again = OptionDays.load_npz(tmp_path / "v.npz")
    np.testing.assert_array_equal(again.volume, days.volume)
    assert again.content_hash() == days.content_hash() != no_volume.content_hash()
