"""File import: user CSV/Parquet ticks, quotes and bars mapped onto the source contract, offline, in tmp_path."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from market.calendar import extended_bounds, session_bounds
from market.file_source import FileImportConfig, FileSource, FileSourceError, inspect_files
from market.sources import BAR_SCHEMA, QUOTE_SCHEMA, TRADE_SCHEMA, MarketSource, MissingDataError, SourceError
from market.symbols import get_symbol
from warehouse.validate import validate_quotes, validate_trades

NY = ZoneInfo("America/New_York")
# Thursday, Friday, (Saturday: no session), Monday after the spring-forward Sunday, Tuesday: offsets -5 then -4.
DAYS = [date(2024, 3, 7), date(2024, 3, 8), date(2024, 3, 11), date(2024, 3, 12)]
SATURDAY = date(2024, 3, 9)


def _utc(day: date, hh: int, mm: int, ss: float = 0.0, zone: ZoneInfo = NY) -> datetime:
    """Wall-clock time in `zone` as a naive UTC datetime (the oracle the source must match)."""
    local = datetime(day.year, day.month, day.day, hh, mm, tzinfo=zone) + timedelta(seconds=ss)
    return local.astimezone(UTC).replace(tzinfo=None)


def _source(tmp_path: Path, **cfg) -> FileSource:
    return FileSource(FileImportConfig.from_dict(cfg), tmp_path)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _seed000_csv(tmp_path: Path) -> Path:
    """A recorded-style file: SPY ticks over several days, naive New York time, pre-market and after-hours."""
    lines = ["ts,price,size"]
    for i, day in enumerate(DAYS):
        lines += [
            f"{day} 08:15:00.250000,{500 + i}.00,10",  # pre-market
            f"{day} 09:30:00.000001,{500 + i}.10,100",
            f"{day} 12:00:30.5,{500 + i}.20,200",
            f"{day}T15:59:59.999999999,{500 + i}.30,300",
            f"{day} 19:30:00,{500 + i}.40,5",  # after-hours: the next day in UTC
            f"{day} 21:00:00,{500 + i}.50,5",  # after 20:00: never imported
        ]
    lines.append(f"{SATURDAY} 10:00:00,499.00,1")
    return _write(tmp_path / "SPY.csv", "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------------------
# Sessions and time zones


def test_recorded_new_york_ticks_become_utc_ns_split_by_session(tmp_path: Path) -> None:
    _seed000_csv(tmp_path)
    src = _source(tmp_path, trades="{symbol}.csv", timezone="America/New_York")
    assert isinstance(src, MarketSource) and src.name == "file"
    for i, day in enumerate(DAYS):
        tape = src.fetch_day("SPY", day)
        assert dict(tape.trades.schema) == TRADE_SCHEMA
        assert tape.quotes is None and tape.bars is None  # not configured: the stored rows stay as they are
        assert tape.trades["ts"].to_list() == [
            _utc(day, 9, 30, 0.000001),
            _utc(day, 12, 0, 30.5),
            _utc(day, 15, 59, 59.999999),
        ]
        # the last regular tick keeps its nanoseconds (a Python datetime stops at microseconds)
        last_ns = tape.trades["ts"].cast(pl.Int64)[-1]
        assert last_ns % 1000 == 999
        assert tape.trades["price"].to_list() == [500 + i + 0.1, 500 + i + 0.2, 500 + i + 0.3]
        assert tape.trades["symbol"].to_list() == ["SPY"] * 3
        clean, bad = validate_trades(tape.trades, get_symbol("SPY"), day)
        assert clean.height == 3 and bad.height == 0
    # 09:30 New York is 14:30 UTC before the DST switch and 13:30 after it
    assert _utc(DAYS[0], 9, 30) == datetime(2024, 3, 7, 14, 30)
    assert _utc(DAYS[2], 9, 30) == datetime(2024, 3, 11, 13, 30)


def test_extended_hours_take_the_04_to_20_window_of_the_new_york_date(tmp_path: Path) -> None:
    _seed000_csv(tmp_path)
    src = _source(tmp_path, trades="{symbol}.csv", timezone="America/New_York", extended_hours=True)
    day = DAYS[1]
    ts = src.fetch_day("SPY", day).trades["ts"].to_list()
    assert ts[0] == _utc(day, 8, 15, 0.25)
    assert ts[-1] == _utc(day, 19, 30)  # 23:30 UTC on the same date here; after-hours prints stay with their day
    assert len(ts) == 5  # the 21:00 print is outside 04:00-20:00
    lo, hi = extended_bounds(day)
    assert all(lo.astype("datetime64[us]").item() <= t < hi.astype("datetime64[us]").item() for t in ts)


def test_after_hours_print_that_is_tomorrow_in_utc_stays_with_its_session(tmp_path: Path) -> None:
    # 19:30 New York on 2024-01-02 is 00:30 UTC on 2024-01-03
    _write(tmp_path / "SPY.csv", "ts,price,size\n2024-01-02 19:30:00,470,1\n2024-01-03 09:31:00,471,1\n")
    src = _source(tmp_path, trades="{symbol}.csv", timezone="America/New_York", extended_hours=True)
    assert src.fetch_day("SPY", date(2024, 1, 2)).trades["ts"].to_list() == [datetime(2024, 1, 3, 0, 30)]
    assert src.fetch_day("SPY", date(2024, 1, 3)).trades["ts"].to_list() == [datetime(2024, 1, 3, 14, 31)]


def test_parquet_with_zone_aware_timestamps_and_a_ticker_column(tmp_path: Path) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    day = date(2024, 1, 3)
    local = [datetime(2024, 1, 3, 15, 30, 0, 5, tzinfo=berlin), datetime(2024, 1, 3, 16, 0, tzinfo=berlin)]
    frame = pl.DataFrame(
        {
            "when": pl.Series(local * 2, dtype=pl.Datetime("us", "Europe/Berlin")),
            "ticker": ["SPY", "SPY", "QQQ", "QQQ"],
            "px": [470.0, 471.0, 400.0, 401.0],
            "qty": pl.Series([1, 2, 3, 4], dtype=pl.Int32),
        }
    )
    frame.write_parquet(tmp_path / "all.parquet")
    # timezone applies to naive values only: the aware ones are converted from Berlin time
    src = _source(
        tmp_path,
        trades="all.parquet",
        timezone="Asia/Tokyo",
        columns={"trades": {"ts": "when", "symbol": "ticker", "price": "px", "size": "qty"}},
    )
    spy = src.fetch_day("SPY", day).trades
    qqq = src.fetch_day("QQQ", day).trades
    expected = [t.astimezone(UTC).replace(tzinfo=None) for t in local]
    assert spy["ts"].to_list() == expected == qqq["ts"].to_list()
    assert expected[0] == datetime(2024, 1, 3, 14, 30, 0, 5)
    assert spy["price"].to_list() == [470.0, 471.0] and qqq["size"].to_list() == [3.0, 4.0]
    assert dict(spy.schema) == TRADE_SCHEMA


def test_naive_parquet_datetimes_are_read_in_the_configured_zone(tmp_path: Path) -> None:
    pl.DataFrame(
        {"ts": [datetime(2024, 7, 1, 9, 45)], "price": [540.0], "size": [3.0], "symbol": ["QQQ"]}
    ).write_parquet(tmp_path / "QQQ.pq")
    src = _source(tmp_path, trades="{symbol}.pq", timezone="America/Chicago")
    assert src.fetch_day("QQQ", date(2024, 7, 1)).trades["ts"].to_list() == [datetime(2024, 7, 1, 14, 45)]


def test_epoch_milliseconds_and_auto_epoch_units_are_exact(tmp_path: Path) -> None:
    day = date(2024, 1, 3)
    open_ns = int(session_bounds(day)[0].astype("int64"))
    ms = [open_ns // 1_000_000 + 1, open_ns // 1_000_000 + 61_001]
    _write(tmp_path / "ms" / "SPY.csv", "t,p,s\n" + "".join(f"{v},470.5,1\n" for v in ms))
    cols = {"trades": {"ts": "t", "price": "p", "size": "s"}}
    src = _source(tmp_path, trades="ms/{symbol}.csv", timestamp="ms", columns=cols)
    got = src.fetch_day("SPY", day).trades["ts"].cast(pl.Int64).to_list()
    assert got == [v * 1_000_000 for v in ms]
    # auto: an Int64 nanosecond column and seconds with a fraction, told apart by their size
    ns = [open_ns + 123_456_789, open_ns + 2_000_000_001]
    pl.DataFrame({"ts": ns, "price": [1.0, 2.0], "size": [1.0, 1.0]}).write_parquet(tmp_path / "SPY.parquet")
    auto = _source(tmp_path, trades="{symbol}.parquet").fetch_day("SPY", day).trades
    assert auto["ts"].cast(pl.Int64).to_list() == ns
    secs = open_ns / 1e9 + 1.25
    _write(tmp_path / "s" / "SPY.csv", f"ts,price,size\n{secs:.2f},1,1\n")
    got_s = _source(tmp_path, trades="s/{symbol}.csv").fetch_day("SPY", day).trades["ts"].cast(pl.Int64)
    assert got_s.to_list() == [open_ns + 1_250_000_000]


def test_strptime_format_offsets_and_custom_delimiter(tmp_path: Path) -> None:
    _write(
        tmp_path / "SPY.txt",
        "Time;Last;Vol\n01/03/2024 10:15:00.5;470,25;3\n01/03/2024 10:16:00;470.5;4\n",
    )
    src = _source(
        tmp_path,
        trades="{symbol}.txt",
        format="csv",
        delimiter=";",
        timezone="America/New_York",
        timestamp="%m/%d/%Y %H:%M:%S%.f",
        columns={"trades": {"ts": "Time", "price": "Last", "size": "Vol"}},
    )
    trades = src.fetch_day("SPY", date(2024, 1, 3)).trades
    assert trades["ts"].to_list() == [datetime(2024, 1, 3, 15, 15, 0, 500000), datetime(2024, 1, 3, 15, 16)]
    assert trades["price"].is_null().to_list() == [True, False]  # "470,25" is not a number: null, quarantined
    # auto ISO text with an offset or Z ignores the configured zone
    _write(
        tmp_path / "QQQ.csv",
        "ts,price,size\n2024-01-03T10:00:00-05:00,400,1\n2024-01-03T15:01:00Z,401,1\n2024-01-03 10:02,402,1\n",
    )
    got = _source(tmp_path, trades="{symbol}.csv", timezone="America/New_York").fetch_day("QQQ", date(2024, 1, 3))
    assert got.trades["ts"].to_list() == [
        datetime(2024, 1, 3, 15, 0),
        datetime(2024, 1, 3, 15, 1),
        datetime(2024, 1, 3, 15, 2),
    ]


# ----------------------------------------------------------------------------------------------------------
# Per-day files, quotes, bars, indexes


def test_per_day_files_with_symbol_and_date_placeholders(tmp_path: Path) -> None:
    for day in DAYS[:2]:
        for sym, px in (("SPY", 500.0), ("QQQ", 430.0)):
            stamp = day.strftime("%Y%m%d")
            (tmp_path / "ticks" / sym).mkdir(parents=True, exist_ok=True)
            with gzip.open(tmp_path / "ticks" / sym / f"{stamp}.csv.gz", "wt") as f:
                f.write(f"ts,price,size,symbol\n{day} 10:00:00,{px},1,{sym}\n{day} 11:00:00,{px + 1},2,{sym}\n")
    src = _source(tmp_path, trades="ticks/{symbol}/{date:%Y%m%d}.csv.gz", timezone="America/New_York")
    absolute = _source(
        tmp_path / "elsewhere",
        trades=str(tmp_path / "ticks/{symbol}/{date:%Y%m%d}.csv.gz"),
        timezone="America/New_York",
    )
    assert absolute.fetch_day("SPY", DAYS[0]).trades["price"].to_list() == [500.0, 501.0]
    report = inspect_files(absolute.config, tmp_path / "elsewhere")
    assert sorted((f.symbol, f.day) for f in report.files) == [(s, d) for s in ("QQQ", "SPY") for d in DAYS[:2]]
    tape = src.fetch_day("QQQ", DAYS[1])
    assert tape.trades["ts"].to_list() == [_utc(DAYS[1], 10, 0), _utc(DAYS[1], 11, 0)]
    assert tape.trades["price"].to_list() == [430.0, 431.0]
    with pytest.raises(MissingDataError, match=r"SPY.*2024-03-11"):
        src.fetch_day("SPY", DAYS[2])


def test_quotes_and_bars_files_with_mappings_and_optional_columns(tmp_path: Path) -> None:
    day = date(2024, 1, 3)
    _write(tmp_path / "t" / f"SPY_{day}.csv", f"ts,price,size\n{day} 09:30:01,470.01,100\n")
    _write(
        tmp_path / "q" / f"SPY_{day}.csv",
        f"ts,b,a,bs,as\n{day} 09:30:00,470.00,470.02,5,7\n{day} 09:30:02,470.02,470.01,1,1\n",
    )
    _write(
        tmp_path / "b" / f"SPY_{day}.csv",
        f"ts,open,high,low,close,v,n\n{day} 09:30:00,470,471,469.5,470.5,1234.5,12\n{day} 09:31:00,1,1,1,1,x,\n",
    )
    src = _source(
        tmp_path,
        trades="t/{symbol}_{date}.csv",
        quotes="q/{symbol}_{date}.csv",
        bars="b/{symbol}_{date}.csv",
        timezone="America/New_York",
        columns={
            "quotes": {"bid": "b", "ask": "a", "bid_size": "bs", "ask_size": "as"},
            "bars": {"volume": "v", "trade_count": "n"},
        },
    )
    tape = src.fetch_day("SPY", day)
    assert dict(tape.quotes.schema) == QUOTE_SCHEMA and dict(tape.bars.schema) == BAR_SCHEMA
    assert tape.quotes.row(0) == ("SPY", datetime(2024, 1, 3, 14, 30), 470.0, 470.02, 5.0, 7.0)
    assert tape.bars.row(0) == ("SPY", datetime(2024, 1, 3, 14, 30), 470.0, 471.0, 469.5, 470.5, 1234.5, None, 12)
    assert tape.bars.row(1)[-3:] == (None, None, None)  # bad volume and empty count become null, no vwap column
    _, bad_q = validate_quotes(tape.quotes, get_symbol("SPY"), day)
    assert bad_q["reason"].to_list() == ["crossed_quote"]
    # a day with trades but no quote or bar file: those streams were not fetched (None), so nothing stored is lost
    _write(tmp_path / "t" / "SPY_2024-01-04.csv", "ts,price,size\n2024-01-04 10:00:00,471,1\n")
    other = src.fetch_day("SPY", date(2024, 1, 4))
    assert other.quotes is None and other.bars is None


def test_index_levels_without_a_size_column_get_size_zero_and_no_quotes(tmp_path: Path) -> None:
    day = date(2024, 1, 3)
    _write(tmp_path / "SPX.csv", f"ts,price\n{day} 14:30:00,4700.5\n{day} 14:30:01,4700.7\n")
    _write(tmp_path / "quotes_SPX.csv", f"ts,bid,ask,bid_size,ask_size\n{day} 14:30:00,1,2,1,1\n")
    src = _source(tmp_path, trades="{symbol}.csv", quotes="quotes_{symbol}.csv")
    tape = src.fetch_day("SPX", day)
    assert tape.trades["size"].to_list() == [0.0, 0.0] and tape.quotes.height == 0
    clean, bad = validate_trades(tape.trades, get_symbol("SPX"), day)
    assert clean.height == 2 and bad.height == 0
    # an equity file without a size column is a broken file, not zero-size trades
    _write(tmp_path / "SPY.csv", f"ts,price\n{day} 14:30:00,470\n")
    with pytest.raises(FileSourceError, match=r"SPY\.csv.*'size'"):
        src.fetch_day("SPY", day)


# ----------------------------------------------------------------------------------------------------------
# Bad rows reach the warehouse, broken files do not pass silently


def test_malformed_rows_pass_through_and_the_warehouse_quarantines_them(tmp_path: Path) -> None:
    day = date(2024, 1, 3)
    rows = [
        "ts,price,size,symbol,trade_id",
        f"{day} 10:00:00,470.00,100,SPY,1",  # clean
        f"{day} 10:00:01,NaN,100,SPY,2",  # nan_price
        f"{day} 10:00:02,abc,100,SPY,3",  # nan_price (not a number)
        ",470.10,100,SPY,4",  # null_ts: empty, kept because the file is this date's
        "not a time,470.10,100,SPY,5",  # null_ts: unparseable
        f"{day} 10:00:03,470.20,-5,SPY,6",  # zero_size
        f"{day} 10:00:04,470.30,10,SPY,7",  # clean
        f"{day} 10:00:04,470.30,10,SPY,8",  # clean: the same print again, under its own id
        f"{day} 10:00:04,470.30,10,SPY,7",  # duplicate: trade 7 sent twice
        f"{day} 10:00:02,470.40,10,SPY,9",  # out_of_order
        f"{day} 10:00:05,470.50,10,QQQ,10",  # wrong_symbol: a SPY file's row that says QQQ
        f"{day} 10:00:06,0,10,SPY,11",  # non_positive_price
    ]
    _write(tmp_path / day.isoformat() / "SPY.csv", "\n".join(rows) + "\n")
    ids = {"trades": {"vendor_id": "trade_id"}}
    src = _source(tmp_path, trades="{date}/{symbol}.csv", timezone="America/New_York", columns=ids)
    trades = src.fetch_day("SPY", day).trades
    assert trades.height == len(rows) - 1  # nothing dropped, reordered or deduplicated here
    clean, bad = validate_trades(trades, get_symbol("SPY"), day)
    assert clean["price"].to_list() == [470.0, 470.3, 470.3]
    assert bad["reason"].to_list() == [
        "nan_price",
        "nan_price",
        "null_ts",
        "null_ts",
        "zero_size",
        "duplicate",
        "out_of_order",
        "wrong_symbol",
        "non_positive_price",
    ]
    assert json.loads(bad["payload"][5])["vendor_id"] == "7"
    assert json.loads(bad["payload"][7])["symbol"] == "QQQ"


def test_mapped_column_missing_names_the_file_and_the_column(tmp_path: Path) -> None:
    _write(tmp_path / "SPY.csv", "time,price,size\n2024-01-03 10:00:00,1,1\n")
    src = _source(tmp_path, trades="{symbol}.csv", columns={"trades": {"ts": "timestamp"}})
    with pytest.raises(FileSourceError, match=r"SPY\.csv has no column 'timestamp'"):
        src.fetch_day("SPY", date(2024, 1, 3))
    # an unmapped required column is looked up under its contract name
    with pytest.raises(FileSourceError, match=r"SPY\.csv has no column 'ts'.*columns: time, price, size"):
        _source(tmp_path, trades="{symbol}.csv").fetch_day("SPY", date(2024, 1, 3))
    # a file of many symbols needs a symbol column
    _write(tmp_path / "all.csv", "ts,price,size\n2024-01-03 15:00:00,1,1\n")
    with pytest.raises(FileSourceError, match=r"all\.csv has no symbol column 'symbol'"):
        _source(tmp_path, trades="all.csv").fetch_day("SPY", date(2024, 1, 3))


def test_auto_reads_european_stamps_and_plain_dates_and_names_the_column_otherwise(tmp_path: Path) -> None:
    _write(tmp_path / "SPY.csv", "ts,price,size\n03.01.2024 15:00:00.125,1,1\n03.01.2024 15:01,1,1\n")
    got = _source(tmp_path, trades="{symbol}.csv").fetch_day("SPY", date(2024, 1, 3))
    assert got.trades["ts"].to_list() == [datetime(2024, 1, 3, 15, 0, 0, 125_000), datetime(2024, 1, 3, 15, 1)]
    _write(tmp_path / "bars" / "SPY.csv", "ts,open,high,low,close,volume\n2009-05-22,1,1,1,1,1\n")
    plain = _source(tmp_path, trades="{symbol}.csv", bars="bars/{symbol}.csv", timezone="America/New_York")
    assert plain._read_kind(
        "bars", get_symbol("SPY"), date(2009, 5, 22), datetime(2009, 5, 22, 4), datetime(2009, 5, 23)
    ).row(0)[1] == datetime(2009, 5, 22, 4)  # midnight New York
    _write(tmp_path / "QQQ.csv", "stamp,price,size\n3rd Jan 15:00,1,1\n")
    with pytest.raises(
        FileSourceError, match=r"QQQ\.csv: cannot read timestamps like '3rd Jan 15:00' in column 'stamp'"
    ):
        _source(tmp_path, trades="{symbol}.csv", columns={"trades": {"ts": "stamp"}}).fetch_day("QQQ", date(2024, 1, 3))
    got = _source(tmp_path, trades="{symbol}.csv", timestamp="%d.%m.%Y %H:%M:%S%.f").fetch_day("SPY", date(2024, 1, 3))
    assert got.trades["ts"].to_list()[0] == datetime(2024, 1, 3, 15, 0, 0, 125_000)


def test_unreadable_files_raise_file_source_errors(tmp_path: Path) -> None:
    (tmp_path / "SPY.parquet").write_bytes(b"this is not parquet")
    err = pytest.raises(
        FileSourceError, _source(tmp_path, trades="{symbol}.parquet").fetch_day, "SPY", date(2024, 1, 3)
    )
    assert "SPY.parquet" in str(err.value) and isinstance(err.value, SourceError)
    _write(tmp_path / "SPY.json", "{}")
    with pytest.raises(FileSourceError, match=r"SPY\.json.*format"):
        _source(tmp_path, trades="{symbol}.json").fetch_day("SPY", date(2024, 1, 3))
    _write(tmp_path / "QQQ.csv", "ts,price,size\n2024-01-03 15:00:00,1,1,extra,fields\n")
    with pytest.raises(FileSourceError, match=r"QQQ\.csv"):
        _source(tmp_path, trades="{symbol}.csv").fetch_day("QQQ", date(2024, 1, 3))


def test_missing_day_or_file_is_missing_data_and_bad_requests_are_value_errors(tmp_path: Path) -> None:
    _seed000_csv(tmp_path)
    src = _source(tmp_path, trades="{symbol}.csv", timezone="America/New_York")
    with pytest.raises(MissingDataError, match=r"no rows of SPY for 2024-03-13"):
        src.fetch_day("SPY", date(2024, 3, 13))  # a session the file does not cover
    with pytest.raises(MissingDataError, match=r"no trades file for QQQ"):
        src.fetch_day("QQQ", DAYS[0])
    with pytest.raises(ValueError, match="not an NYSE session"):
        src.fetch_day("SPY", SATURDAY)
    with pytest.raises(ValueError, match="unknown symbol"):
        src.fetch_day("AAPL", DAYS[0])
    typo = _source(tmp_path, trades="{symbol}.cvs", timezone="America/New_York")  # matches nothing at all
    with pytest.raises(FileSourceError, match="no file matches"):
        typo.fetch_day("SPY", DAYS[0])


# ----------------------------------------------------------------------------------------------------------
# The report of what cannot be imported


def test_inspect_files_reports_sessions_and_every_row_no_partition_takes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _seed000_csv(tmp_path)
    with (tmp_path / "SPY.csv").open("a") as f:
        f.write("garbage,1,1\n,2,2\n")
    _write(
        tmp_path / "multi" / "ticks.csv",
        "ts,price,size,symbol\n2024-03-07 10:00:00,1,1,QQQ\n2024-03-07 10:00:00,1,1,AAPL\n"
        "2024-03-07 10:00:01,1,1,AAPL\n2024-03-07 10:00:02,1,1,\n",
    )
    _write(
        tmp_path / "quotes" / "2024-03-07.csv", "ts,bid,ask,bid_size,ask_size,symbol\n2024-03-08 10:00:00,1,2,1,1,SPY\n"
    )
    (tmp_path / "quotes" / "2024-03-08.csv").write_bytes(b"")  # empty: cannot be read
    cfg = FileImportConfig.from_dict(
        {"trades": "{symbol}.csv", "quotes": "quotes/{date}.csv", "timezone": "America/New_York"}
    )
    report = inspect_files(cfg, tmp_path)
    with caplog.at_level("WARNING", logger="market.file_source"):
        fetched = _source(tmp_path, trades="{symbol}.csv", timezone="America/New_York").fetch_day("SPY", DAYS[0])
    assert "2 trades rows of SPY" in caplog.text  # the untimed rows of a multi-day file are left out, loudly
    day0 = report.sessions[("trades", "SPY", DAYS[0])]
    assert (day0.regular, day0.extended, day0.outside, day0.null_ts) == (3, 2, 1, 0)
    assert report.imported("trades", "SPY", DAYS[0]) == fetched.trades.height == 3
    assert report.non_session == {("trades", "SPY", SATURDAY): 1}
    assert report.unparseable_ts == {("trades", str(tmp_path / "SPY.csv")): 2}
    assert report.misdated == {("quotes", str(tmp_path / "quotes" / "2024-03-07.csv")): 1}
    assert list(report.errors) == [str(tmp_path / "quotes" / "2024-03-08.csv")]
    assert [(f.kind, f.symbol, f.day, f.rows) for f in report.files] == [
        ("trades", "SPY", None, 4 * 6 + 1 + 2),
        ("quotes", None, date(2024, 3, 7), 1),
    ]
    md = report.to_markdown()
    assert "| trades | SPY | 2024-03-07 | 3 | 3 | 2 | 1 | 0 |" in md and "2024-03-09" in md and "empty CSV" in md
    assert report.not_imported["outside_window"] == 4 * 3  # per day: 2 pre/after-hours + 1 after 20:00

    multi = inspect_files(FileImportConfig.from_dict({"trades": "multi/ticks.csv"}), tmp_path)
    assert multi.unknown_symbols == {"AAPL": 2, "<missing>": 1}
    assert multi.sessions[("trades", "QQQ", date(2024, 3, 7))].imported(False) == 0  # 10:00 UTC: pre-market


def test_inspect_per_date_files_count_untimed_rows_as_imported(tmp_path: Path) -> None:
    _write(tmp_path / "AAPL" / "2024-01-03.csv", "ts,price,size\n2024-01-03 15:00:00,1,1\n")
    _write(tmp_path / "SPY" / "2024-01-03.csv", "ts,price,size\n2024-01-03 15:00:00,1,1\n,1,1\n")
    report = inspect_files(FileImportConfig.from_dict({"trades": "{symbol}/{date}.csv"}), tmp_path)
    assert report.sessions[("trades", "SPY", date(2024, 1, 3))].null_ts == 1
    assert report.imported("trades", "SPY", date(2024, 1, 3)) == 2
    assert report.unknown_symbols == {"AAPL": 1} and report.unparseable_ts == {}


# ----------------------------------------------------------------------------------------------------------
# Configuration


def test_config_defaults_and_round_trip() -> None:
    cfg = FileImportConfig.from_dict({"trades": "ticks/{symbol}/{date}.parquet"})
    assert (cfg.quotes, cfg.bars, cfg.format, cfg.timezone, cfg.timestamp) == (None, None, "auto", "UTC", "auto")
    assert (cfg.delimiter, cfg.extended_hours, dict(cfg.columns)) == (",", False, {})
    assert FileImportConfig.from_dict({"trades": "ticks/{symbol}/{date}.parquet"}) == cfg


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"trades": "x.csv", "tz": "UTC"}, "tz"),
        ({"quotes": "q.csv"}, "trades"),
        ({"trades": "x.csv", "format": "xlsx"}, "format"),
        ({"trades": "x.csv", "timezone": "Mars/Olympus"}, "timezone"),
        ({"trades": "x.csv", "timestamp": "minutes"}, "timestamp"),
        ({"trades": "x.csv", "delimiter": ";;"}, "delimiter"),
        ({"trades": "x.csv", "extended_hours": "yes"}, "extended_hours"),
        ({"trades": "{ticker}.csv"}, "trades"),
        ({"trades": "x.csv", "bars": "{date:%Y}.csv"}, "bars"),
        ({"trades": "x.csv", "columns": {"orders": {}}}, "columns.orders"),
        ({"trades": "x.csv", "columns": {"trades": {"volume": "v"}}}, "columns.trades.volume"),
        ({"trades": "x.csv", "columns": {"quotes": {"bid": None}}}, "columns.quotes.bid"),
        ({"trades": "x.csv", "columns": {"trades": {"price": 3}}}, "columns.trades.price"),
        ({"trades": "x.csv", "columns": {"trades": {"symbol": None}}}, "columns.trades.symbol"),
        ({"trades": ""}, "trades"),
    ],
)
def test_config_refuses_bad_keys_and_values_naming_the_key(section: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        FileImportConfig.from_dict(section)


def test_source_repr_names_the_files_and_refuses_a_dict(tmp_path: Path) -> None:
    src = _source(tmp_path, trades="{symbol}.csv")
    assert "trades='{symbol}.csv'" in repr(src)
    with pytest.raises(TypeError):
        FileSource({"trades": "x.csv"}, tmp_path)  # type: ignore[arg-type]


def test_hourly_and_daily_bar_files_are_refused_naming_what_is_supported(tmp_path: Path) -> None:
    rows = "ts,open,high,low,close,volume\n" + "".join(f"2024-01-03 {h:02d}:00,1,1,1,1,1\n" for h in range(10, 16))
    _write(tmp_path / "hourly" / "SPY.csv", rows)
    src = _source(tmp_path, bars="hourly/{symbol}.csv", timezone="America/New_York")
    with pytest.raises(FileSourceError, match=r"SPY\.csv holds hourly bars; only 1-minute bars .* are supported"):
        src.fetch_day("SPY", date(2024, 1, 3))
    days = "ts,open,high,low,close,volume\n" + "".join(f"2024-01-0{d},1,1,1,1,1\n" for d in (2, 3, 4))
    _write(tmp_path / "daily" / "SPY.csv", days)
    with pytest.raises(FileSourceError, match="holds daily bars"):
        _source(tmp_path, bars="daily/{symbol}.csv").fetch_day("SPY", date(2024, 1, 3))
    minute = "ts,open,high,low,close,volume\n2024-01-03 10:00,1,1,1,1,1\n2024-01-03 10:01,1,1,1,1,1\n"
    _write(tmp_path / "minute" / "SPY.csv", minute)
    tape = _source(tmp_path, bars="minute/{symbol}.csv", timezone="America/New_York").fetch_day("SPY", date(2024, 1, 3))
    assert tape.trades is None and tape.bars.height == 2  # bars only: the stored ticks, if any, stay


def test_the_import_report_places_futures_rows_on_their_cme_trading_day(tmp_path: Path) -> None:
    from market.calendar import CME_EQUITY

    day = date(2024, 1, 16)
    lo, hi = (b.astype("datetime64[us]").item() for b in session_bounds(day, CME_EQUITY))
    stamps = [lo, lo + timedelta(hours=5), hi - timedelta(minutes=1), hi + timedelta(minutes=10)]  # the last: the break
    text = "ts,price,size\n" + "".join(f"{t:%Y-%m-%d %H:%M:%S},4800,1\n" for t in stamps)
    _write(tmp_path / f"ESH24_{day}.csv", text)
    report = inspect_files(FileImportConfig.from_dict({"trades": "{symbol}_{date}.csv"}), tmp_path)
    rows = report.sessions[("trades", "ESH24", day)]
    assert (rows.regular, rows.outside) == (3, 1)  # the evening open (the 15th in UTC) is the 16th's session
    assert _source(tmp_path, trades="{symbol}_{date}.csv").fetch_day("ESH24", day).trades.height == 3


def test_exchange_timezone_reads_each_instrument_in_its_own_wall_clock(tmp_path: Path) -> None:
    _write(tmp_path / "ESH24.csv", "ts,price,size\n2024-01-15 17:00:00.250,4800,1\n")  # Chicago: the 16th's open
    _write(tmp_path / "SPY.csv", "ts,price,size\n2024-01-16 09:30:00,470,1\n")  # New York: the open
    src = _source(tmp_path, trades="{symbol}.csv", timezone="exchange")
    es = src.fetch_day("ESH24", date(2024, 1, 16)).trades["ts"].to_list()
    spy = src.fetch_day("SPY", date(2024, 1, 16)).trades["ts"].to_list()
    assert es == [datetime(2024, 1, 15, 23, 0, 0, 250_000)] and spy == [datetime(2024, 1, 16, 14, 30)]
    with pytest.raises(ValueError, match=r"exchange reads each file in its instrument's zone, so the trades path"):
        FileImportConfig.from_dict({"trades": "all.csv", "timezone": "exchange"})
