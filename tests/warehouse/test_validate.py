"""Validation of raw trades and quotes: every reason found, clean rows ordered, malformed frames refused."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from market.calendar import session_bounds
from market.symbols import get_symbol
from warehouse.validate import space_ties, tick_rule, validate_quotes, validate_trades

DAY = date(2024, 1, 3)
OPEN = session_bounds(DAY)[0].astype("datetime64[us]").item()
SPY, SPX = get_symbol("SPY"), get_symbol("SPX")


def _trades(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"symbol": pl.Utf8, "ts": pl.Datetime("ns"), "price": pl.Float64, "size": pl.Float64},
        orient="row",
    )


def _quotes(rows: list[tuple]) -> pl.DataFrame:
    schema = {
        "symbol": pl.Utf8,
        "ts": pl.Datetime("ns"),
        "bid": pl.Float64,
        "ask": pl.Float64,
        "bid_size": pl.Float64,
        "ask_size": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def t(seconds: float) -> datetime:
    return OPEN + timedelta(seconds=seconds)


def test_each_bad_trade_gets_its_reason_and_clean_rows_come_out_ordered() -> None:
    raw = _trades(
        [
            ("SPY", t(1), 100.00, 100),  # kept
            ("SPY", t(2), 100.01, 200),  # kept
            ("SPY", t(2), 100.01, 200),  # kept: a legal repeated print (no vendor id says it is a re-send)
            ("SPY", t(1.5), 100.02, 10),  # out_of_order (earlier than 2 s already seen)
            ("SPY", t(3), float("nan"), 5),  # nan_price
            ("SPY", t(3), None, 5),  # nan_price (null)
            ("SPY", t(3), float("inf"), 5),  # nan_price (not finite)
            ("SPY", t(4), -1.0, 5),  # non_positive_price
            ("SPY", t(4), 0.0, 5),  # non_positive_price
            ("SPY", t(5), 100.03, 0),  # zero_size
            ("SPY", t(5), 100.03, None),  # zero_size (missing)
            ("QQQ", t(6), 400.0, 1),  # wrong_symbol
            ("SPY", t(-1), 100.0, 1),  # out_of_session (before the open)
            ("SPY", t(6.5 * 3600), 100.0, 1),  # out_of_session (the close is exclusive)
            ("SPY", None, 100.0, 1),  # null_ts
            ("SPY", t(7), 99.99, 50),  # kept
            ("SPY", t(7), 99.99, 60),  # kept: same ts and price, different size
        ]
    )
    clean, bad = validate_trades(raw, SPY, DAY)
    assert bad["reason"].to_list() == [
        "out_of_order",
        "nan_price",
        "nan_price",
        "nan_price",
        "non_positive_price",
        "non_positive_price",
        "zero_size",
        "zero_size",
        "wrong_symbol",
        "out_of_session",
        "out_of_session",
        "null_ts",
    ]
    assert clean.columns == ["symbol", "session_date", "ts", "seq", "price", "size", "side"]
    assert clean["price"].to_list() == [100.00, 100.01, 100.01, 99.99, 99.99]
    assert clean["size"].to_list() == [100, 200, 200, 50, 60]
    assert clean["seq"].to_list() == [0, 1, 2, 3, 4]
    assert clean["ts"].is_sorted() and clean["ts"].n_unique() == 5  # repeats spaced 1 ns inside their stamp
    assert clean["side"].to_list() == [0, 1, 1, -1, -1]  # unknown, uptick, zero tick, downtick, zero tick
    assert (clean["session_date"] == DAY).all() and (clean["symbol"] == "SPY").all()
    assert set(bad.columns) >= {"table_name", "session_date", "symbol", "ts", "reason", "payload"}
    assert (bad["table_name"] == "ticks").all()
    wrong = json.loads(bad.filter(pl.col("reason") == "wrong_symbol")["payload"][0])
    assert wrong["symbol"] == "QQQ" and wrong["price"] == 400.0


def test_clean_input_passes_untouched_whatever_the_arrival_order_of_equal_timestamps() -> None:
    rng = np.random.default_rng(0)
    n = 2_000
    secs = np.sort(rng.uniform(0, 600, n)).round(0)  # many equal timestamps, in order
    prices = (100 + np.cumsum(rng.choice([-0.01, 0.0, 0.01], n))).round(2)
    sizes = rng.choice([1.0, 100.0], n)  # many rows repeat an earlier one exactly: legal prints
    raw = _trades([("SPY", t(s), p, z) for s, p, z in zip(secs, prices, sizes, strict=True)])
    assert raw.is_duplicated().sum() > 200
    clean, bad = validate_trades(raw, SPY, DAY)
    assert bad.height == 0
    assert clean.height == raw.height
    assert clean["price"].to_list() == raw["price"].to_list()
    second = clean["ts"].dt.truncate("1s")
    assert (second == raw["ts"]).all() and clean["ts"].n_unique() == n  # spaced, each inside its own second


def test_only_an_exact_re_send_by_vendor_id_is_a_duplicate() -> None:
    raw = _trades(
        [
            ("SPY", t(1), 100.0, 1),
            ("SPY", t(1), 100.0, 1),  # same values, another id: a legal repeat
            ("SPY", t(1), 100.5, 2),
            ("SPY", t(1), 100.0, 1),  # id 1 again: the vendor re-sent it
            ("SPY", t(3), 101.0, 1),
            ("SPY", t(2), 100.0, 1),  # out of order
            ("SPY", t(3), 101.0, 1),  # no id: kept
            ("SPY", t(3), 101.0, 9),  # id 4 again with other values: still a re-send
        ]
    ).with_columns(pl.Series("vendor_id", [1, 2, 3, 1, 4, 5, None, 4]))
    clean, bad = validate_trades(raw, SPY, DAY)
    assert bad["reason"].to_list() == ["duplicate", "out_of_order", "duplicate"]
    assert json.loads(bad["payload"][0])["vendor_id"] == "1"
    assert clean["price"].to_list() == [100.0, 100.0, 100.5, 101.0, 101.0]
    quotes = _quotes([("SPY", t(1), 99.99, 100.01, 100, 200)] * 3).with_columns(pl.Series("vendor_id", ["a", "b", "a"]))
    clean, bad = validate_quotes(quotes, SPY, DAY)
    assert clean.height == 2 and bad["reason"].to_list() == ["duplicate"]


def test_space_ties_stays_inside_each_stamps_resolution() -> None:
    ms = 1_700_000_000_123_000_000
    ts = np.array([ms, ms, ms, ms + 1_000_000, 5, 5, 7_000, 7_000], dtype=np.int64)
    assert space_ties(ts[:4]).tolist() == [ms, ms + 1, ms + 2, ms + 1_000_000]
    assert space_ties(np.array([5, 5, 7_000, 7_000])).tolist() == [5, 5, 7_000, 7_001]  # full-ns stamps stay equal
    many = np.full(1_500, 7_000, dtype=np.int64)  # a microsecond stamp holds 999 more prints, then they stay put
    spaced = space_ties(many)
    assert spaced.max() == 7_999 and (spaced[1_000:] == 7_000).all()


def test_index_levels_need_size_zero_and_equities_a_positive_size() -> None:
    raw = _trades([("SPX", t(1), 4700.0, 0.0), ("SPX", t(2), 4701.0, 5.0), ("SPX", t(3), 4700.5, 0.0)])
    clean, bad = validate_trades(raw, SPX, DAY)
    assert clean["price"].to_list() == [4700.0, 4700.5]
    assert bad["reason"].to_list() == ["index_size"]
    _, bad = validate_trades(raw.with_columns(pl.lit("SPY").alias("symbol")), SPY, DAY)
    assert bad["reason"].to_list() == ["zero_size", "zero_size"]


def test_quote_reasons_including_crossed_and_locked_books() -> None:
    raw = _quotes(
        [
            ("SPY", t(1), 99.99, 100.01, 100, 200),  # kept
            ("SPY", t(2), 100.01, 100.00, 100, 100),  # crossed
            ("SPY", t(2), 100.00, 100.00, 100, 100),  # locked
            ("SPY", t(3), float("nan"), 100.02, 1, 1),  # nan_price
            ("SPY", t(3), 0.0, 100.02, 1, 1),  # non_positive_price
            ("SPY", t(4), 100.0, 100.02, 0, 1),  # zero_size
            ("QQQ", t(4), 100.0, 100.02, 1, 1),  # wrong_symbol
            ("SPY", t(1), 99.99, 100.01, 100, 200),  # kept: a repeat of the first quote is legal
            ("SPY", t(0.5), 99.98, 100.01, 100, 200),  # out_of_order
            ("SPY", t(-60), 99.98, 100.01, 100, 200),  # out_of_session
            ("SPY", t(5), 100.00, 100.01, 100, 200),  # kept
        ]
    )
    clean, bad = validate_quotes(raw, SPY, DAY)
    assert bad["reason"].to_list() == [
        "crossed_quote",
        "crossed_quote",
        "nan_price",
        "non_positive_price",
        "zero_size",
        "wrong_symbol",
        "out_of_order",
        "out_of_session",
    ]
    assert clean.columns == ["symbol", "session_date", "ts", "bid", "ask", "bid_size", "ask_size"]
    assert clean["bid"].to_list() == [99.99, 99.99, 100.00]
    assert (bad["table_name"] == "quotes").all()


@pytest.mark.parametrize(
    ("frame", "column"),
    [
        (_trades([("SPY", t(1), 1.0, 1.0)]).drop("size"), "size"),
        (_trades([("SPY", t(1), 1.0, 1.0)]).with_columns(pl.col("price").cast(pl.Utf8)), "price"),
        (_trades([("SPY", t(1), 1.0, 1.0)]).with_columns(pl.col("ts").cast(pl.Utf8)), "ts"),
        (_trades([("SPY", t(1), 1.0, 1.0)]).with_columns(pl.lit(1).alias("symbol")), "symbol"),
    ],
)
def test_malformed_trade_frames_raise_naming_the_column(frame: pl.DataFrame, column: str) -> None:
    with pytest.raises(ValueError, match=f"'{column}'"):
        validate_trades(frame, SPY, DAY)


def test_malformed_quote_frame_raises_naming_the_column() -> None:
    quotes = _quotes([("SPY", t(1), 1.0, 1.01, 1.0, 1.0)])
    with pytest.raises(ValueError, match="'ask'"):
        validate_quotes(quotes.drop("ask"), SPY, DAY)
    with pytest.raises(ValueError, match="'bid_size'"):
        validate_quotes(quotes.with_columns(pl.lit("x").alias("bid_size")), SPY, DAY)


def test_integer_sizes_and_timezone_aware_timestamps_are_normalised() -> None:
    raw = pl.DataFrame(
        {
            "symbol": ["SPY", "SPY"],
            "ts": [OPEN.replace(tzinfo=UTC) + timedelta(seconds=s) for s in (1, 2)],
            "price": [100, 101],
            "size": [5, 7],
        }
    )
    clean, bad = validate_trades(raw, SPY, DAY)
    assert bad.height == 0
    assert clean.schema["ts"] == pl.Datetime("ns") and clean["ts"][0] == t(1)
    assert clean.schema["price"] == pl.Float64 and clean["size"].to_list() == [5.0, 7.0]


def _tick_rule_loop(prices: np.ndarray) -> np.ndarray:
    out, last = np.zeros(len(prices), dtype=np.int8), 0
    for i in range(1, len(prices)):
        if prices[i] > prices[i - 1]:
            last = 1
        elif prices[i] < prices[i - 1]:
            last = -1
        out[i] = last
    return out


def test_vectorised_tick_rule_matches_the_textbook_loop() -> None:
    rng = np.random.default_rng(3)
    prices = (100 + np.cumsum(rng.choice([-0.01, 0.0, 0.0, 0.01], 5_000))).round(2)
    prices[:5] = prices[0]  # leading zero ticks stay unknown
    np.testing.assert_array_equal(tick_rule(prices), _tick_rule_loop(prices))
    assert tick_rule(np.array([])).size == 0 and tick_rule(np.array([5.0])).tolist() == [0]


def test_one_late_timestamp_costs_one_row_not_the_rest_of_the_session() -> None:
    """Measured before: one print stamped 15:59:59 at row 100 quarantined 2,899 of 3,000 good ticks."""
    secs = np.arange(3_000) * 7.0  # good ticks, 7 s apart, in order
    rows = [("SPY", t(s), 100.0 + (i % 7) * 0.01, 100) for i, s in enumerate(secs)]
    rows[100] = ("SPY", t(6.5 * 3600 - 1), 100.05, 100)  # 15:59:59, hours ahead of its neighbours
    rows.append(("SPY", t(3.5), 100.0, 5))  # and one stamped early, arriving last
    clean, bad = validate_trades(_trades(rows), SPY, DAY)
    assert bad["reason"].to_list() == ["out_of_order", "out_of_order"]
    assert bad["ts"].to_list() == [t(6.5 * 3600 - 1), t(3.5)]
    assert clean.height == 2_999 and clean["ts"].is_sorted()


def test_in_order_keeps_a_longest_ordered_run_preferring_earlier_arrivals() -> None:
    import itertools

    from warehouse.validate import in_order

    assert in_order(np.array([1, 2, 2, 3])).all()
    assert in_order(np.array([1, 1, 3, 2])).tolist() == [True, True, True, False]  # ties: keep the earlier row
    assert in_order(np.array([1, 9, 2, 3, 4])).tolist() == [True, False, True, True, True]
    rng = np.random.default_rng(0)
    for _ in range(200):  # the kept rows are ordered, and no longer ordered subsequence exists (brute force)
        ts = rng.integers(0, 6, size=rng.integers(1, 9))
        keep = in_order(ts)
        kept = ts[keep]
        assert np.all(kept[1:] >= kept[:-1])
        best = max(
            r
            for r in range(len(ts) + 1)
            for combo in itertools.combinations(ts.tolist(), r)
            if all(a <= b for a, b in itertools.pairwise(combo))
        )
        assert keep.sum() == best


@pytest.mark.parametrize("sample", [200_000, 400])  # 400: the reference comes from every 7th print, as on a dense day
def test_implausible_prints_are_quarantined_against_the_recent_median_price(monkeypatch, sample: int) -> None:
    monkeypatch.setattr("warehouse.validate.REFERENCE_SAMPLE", sample)
    rng = np.random.default_rng(3)
    secs = np.sort(rng.uniform(0, 3600, 3_000))
    prices = (470 + np.cumsum(rng.choice([-0.01, 0.0, 0.01], 3_000))).round(2)
    rows = [("SPY", t(s), p, 100.0) for s, p in zip(secs, prices, strict=True)]
    rows[100] = ("SPY", rows[100][1], 1e9, 100.0)
    rows[1_000] = ("SPY", rows[1_000][1], prices[1_000] * 10, 100.0)
    rows[2_000] = ("SPY", rows[2_000][1], 0.01, 100.0)
    clean, bad = validate_trades(_trades(rows), SPY, DAY)
    assert bad["reason"].to_list() == ["implausible_price"] * 3 and clean.height == 2_997
    assert [json.loads(x)["price"] for x in bad["payload"]] == [1e9, prices[1_000] * 10, 0.01]
    lone = _trades([("SPY", t(60 * i), 470.0 + i, 1.0) for i in range(10)] + [("SPY", t(601), 4700.0, 1.0)])
    clean, bad = validate_trades(lone, SPY, DAY)  # a minute holding only the bad print is judged by its neighbours
    assert bad["reason"].to_list() == ["implausible_price"] and clean.height == 10
    gap = _trades([("SPY", t(0), 470.0, 1.0), ("SPY", t(3600), 520.0, 1.0)])  # +10.6% an hour later: a real move
    assert validate_trades(gap, SPY, DAY)[1].height == 0


def test_a_quote_far_from_the_recent_mids_is_implausible() -> None:
    rows = [("SPY", t(i), 470.0 + i / 100, 470.02 + i / 100, 100, 100) for i in range(300)]
    rows[150] = ("SPY", t(150), 4.70, 4.72, 100, 100)  # a quote off by a factor of 100
    clean, bad = validate_quotes(_quotes(rows), SPY, DAY)
    assert bad["reason"].to_list() == ["implausible_price"] and clean.height == 299
