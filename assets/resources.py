"""Dagster resources: thin, configurable handles on the warehouse, the market source and the artifact store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import duckdb
import yaml
from pydantic import Field

from assets.settings import artifact_mirror, config_dir, tradeflow_home
from market.chain_sources import ChainSource, OptionsConfig
from market.funding import FundingSource
from market.sources import MarketSource
from market.symbols import get_symbol
from warehouse.checks import Thresholds

if TYPE_CHECKING:
    from market.option_chain import ChainConfig
    from rl.core.family import FamilyConfig

MARKET_SOURCES = ("embedded", "polygon", "ibkr", "file")
POLYGON_KEY_ENV = "POLYGON_API_KEY"
FUNDING_SOURCES = ("embedded", "ccxt")
EMBEDDED_KEYS = (
    "seed",
    "trades_per_day",
    "edge",
    "futures_edge",
)  # the synthetic market's settings market.yaml may set


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file; every connection applies pending schema migrations first. With `staging` (a
    folder or an `s3://` URL), raw_ticks steps stage their partitions there as committed Parquet and never open the
    file, so many run at once; bars_1m's step, the single writer, loads them first (warehouse.staging)."""

    path: str
    staging: str | None = None

    def staging_store(self) -> str | None:
        """The staging folder or URL, or None when raw_ticks writes the DuckDB file itself (the embedded default)."""
        return self.staging or None

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        from warehouse.db import connect

        con = connect(self.path)
        try:
            yield con
        finally:
            con.close()


class MarketDataResource(dg.ConfigurableResource):
    """Where raw ticks come from: `embedded` (the deterministic synthetic market; no keys, no network), `polygon`,
    `ibkr` or `file`. Each live source's settings are its section of `configs/market.yaml`; the Polygon key is
    never configuration but Dagster's EnvVar(POLYGON_API_KEY), so the UI shows the variable's name, not its value.
    The option chains have a source of their own (`options`: embedded, polygon or ibkr), with the same sections.
    """

    source: str = "embedded"
    symbols: list[str] = ["SPY", "QQQ", "SPX"]
    instruments: dict = {}  # the user's declared instruments (market.yaml `instruments:`), over the built-ins
    checks: dict = {}  # data-quality thresholds (market.yaml `checks:`); {} = warehouse.checks.Thresholds()
    extended_hours: bool = False  # keep pre- and after-hours rows (04:00-20:00 New York) in the raw tables
    seed: int = 7
    trades_per_day: int = 20_000
    edge: float | None = None
    futures_edge: float | None = None
    polygon: dict = {}
    ibkr: dict = {}
    file: dict = {}
    options: dict = {}  # the option chains' source and strike window (market.yaml `options:`); {} = embedded, 15
    file_base_dir: str = "."  # relative paths in `file` resolve against it
    polygon_api_key: str | None = Field(default=None, repr=False)  # resolved from EnvVar; never shown

    def build(self) -> MarketSource:
        """The configured source; unknown names and bad settings fail before anything is fetched or written."""
        if self.source == "embedded":
            from market.synthetic import SyntheticMarketConfig, SyntheticSource

            kwargs: dict = {"seed": self.seed, "trades_per_day": self.trades_per_day}
            for name in ("edge", "futures_edge"):
                if getattr(self, name) is not None:
                    kwargs[name] = getattr(self, name)
            return SyntheticSource(SyntheticMarketConfig(**kwargs))
        settings = source_settings(self.source, self.section(), self.extended_hours)
        if self.source == "polygon":
            from market.polygon_source import PolygonSource

            return PolygonSource(settings, self.polygon_api_key)
        if self.source == "ibkr":
            from market.ibkr_source import IbkrSource

            return IbkrSource(settings)
        from market.file_source import FileSource

        return FileSource(settings, Path(self.file_base_dir))

    def section(self) -> dict:
        """The settings of the chosen live source ({} for the embedded market)."""
        return {"polygon": self.polygon, "ibkr": self.ibkr, "file": self.file}.get(self.source, {})

    def thresholds(self) -> Thresholds:
        """When incomplete or damaged data fails the market-data checks."""
        return Thresholds.from_dict(dict(self.checks))

    def declare(self) -> None:
        """Make the declared instruments known to every lookup in this process."""
        from market.symbols import declare, parse_instruments

        declare(parse_instruments(self.instruments))

    @contextmanager
    def open(self) -> Iterator[MarketSource]:
        """The configured source, closed afterwards (the IBKR source holds a socket to TWS)."""
        self.declare()
        with _closing(self.build()) as source:
            yield source

    def chain_settings(self) -> OptionsConfig:
        """Where the option chains come from and how many strikes they list either side of the first price."""
        return OptionsConfig.from_dict(dict(self.options))

    def chain_config(self) -> ChainConfig:
        """The embedded chain's pricing settings, with the configured strike window."""
        from market.option_chain import ChainConfig

        return ChainConfig(strikes_each_side=self.chain_settings().strikes_each_side)

    @contextmanager
    def open_chains(self) -> Iterator[ChainSource | None]:
        """The configured option-chain source, closed afterwards; None for the embedded chain, which is priced from
        the stored bars. Polygon and IBKR use their market.yaml sections (and the Polygon key) as the ticks do."""
        settings = self.chain_settings()
        if settings.source == "embedded":
            yield None
            return
        self.declare()
        section = {"polygon": self.polygon, "ibkr": self.ibkr}[settings.source]
        config = source_settings(settings.source, section, self.extended_hours)
        if settings.source == "polygon":
            from market.polygon_chain import PolygonChainSource

            source = PolygonChainSource(config, self.polygon_api_key, strikes_each_side=settings.strikes_each_side)
        else:
            from market.ibkr_chain import IbkrChainSource

            source = IbkrChainSource(config, strikes_each_side=settings.strikes_each_side)
        with _closing(source) as chains:
            yield chains


@contextmanager
def _closing(source: Any) -> Iterator[Any]:
    """`source` for the block, closed afterwards where it has a close() (the IBKR sources hold a socket to TWS)."""
    try:
        yield source
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()


def source_settings(source: str, section: dict, extended_hours: bool) -> Any:
    """The frozen config of a live source from its YAML section; ValueError naming a bad or unknown key."""
    if source not in MARKET_SOURCES or source == "embedded":
        raise ValueError(f"unknown market source {source!r}; available: {', '.join(MARKET_SOURCES)}")
    if not isinstance(section, dict):
        raise ValueError(f"market.yaml: {source} must be a mapping of settings, got {section!r}")
    if "extended_hours" in section:
        raise ValueError(f"market.yaml: set extended_hours at the top level, not under {source}")
    settings = {**section, "extended_hours": extended_hours}
    if source == "polygon":
        from market.polygon_source import PolygonConfig

        return PolygonConfig.from_dict(settings)
    if source == "ibkr":
        from market.ibkr_source import IbkrConfig

        return IbkrConfig.from_dict(settings)
    from market.file_source import FileImportConfig

    return FileImportConfig.from_dict(settings)


class FundingMarketResource(dg.ConfigurableResource):
    """Where funding rates and mark prices come from: `embedded` (synthetic, offline) or `ccxt` (live exchanges).

    Exchange API keys are never configuration: the ccxt source reads them from TRADEFLOW_<EXCHANGE>_API_KEY and
    _SECRET (public funding and mark data need none).
    """

    source: str = "embedded"
    embedded: dict = {}  # FundingMarketConfig fields (seed, persistent_spread, ...); {} = the documented defaults
    exchanges: list[str] = ["binance", "bybit"]  # ccxt only
    symbols: list[str] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]  # ccxt only

    def build(self) -> FundingSource:
        """The configured source; unknown names or settings fail before anything is fetched or written."""
        if self.source == "embedded":
            from market.funding import SyntheticFundingSource, funding_config_from_dict

            return SyntheticFundingSource(funding_config_from_dict(dict(self.embedded)))
        if self.source == "ccxt":
            from market.ccxt_source import CcxtFundingSource

            return CcxtFundingSource(self.exchanges, self.symbols)
        raise ValueError(f"unknown funding source {self.source!r}; available: {', '.join(FUNDING_SOURCES)}")


class ArtifactStore(dg.ConfigurableResource):
    """Folders under the tradeflow home for datasets, checkpoints, reports and TensorBoard logs; with `mirror` (an
    object-store URL) every finished artifact is copied there too, and a step on a machine that lacks one it reads
    fetches it first, so workers on other machines share them (TensorBoard logs stay on the machine that wrote)."""

    home: str
    mirror: str | None = None

    def dir(self, *parts: str) -> Path:
        path = Path(self.home).joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, *paths: str | Path) -> None:
        """Copy finished artifacts (files, or folders with their marker) under the home to the mirror."""
        from warehouse.store import publish

        for path in paths if self.mirror else ():
            publish(Path(self.home), Path(path), self.mirror)

    def reach(self, *paths: str | Path) -> None:
        """Fetch the artifacts a step reads from the mirror where this machine lacks them; one the mirror lacks
        too is left to the reader, whose own error names it."""
        from warehouse.store import fetch

        for path in paths if self.mirror else ():
            fetch(Path(self.home), Path(path), self.mirror)


class ConfigStore(dg.ConfigurableResource):
    """The YAML presets folder: family configs and reward files."""

    path: str

    def family_path(self, family: str) -> Path:
        """`configs/<family>.yaml`."""
        return Path(self.path) / f"{family}.yaml"

    def family(self, family: str) -> FamilyConfig:
        """The family's config, read and validated once."""
        from rl.core.family import load_family

        return load_family(self.family_path(family))

    def resolve(self, relative: str) -> Path:
        """A path named in a config (e.g. its reward file), relative to this folder."""
        return Path(self.path) / relative


def market_from_yaml(path: Path) -> MarketDataResource:
    """The market resource described by `configs/market.yaml`; unknown keys and bad settings are refused here,
    when the code location loads, not halfway through a backfill."""
    raw = yaml.safe_load(path.read_text()) or {}
    keys = {"source", "symbols", "instruments", "history_start", "checks", "extended_hours", "embedded", "options"}
    keys |= {"staging"}
    unknown = set(raw) - keys - {"polygon", "ibkr", "file", "funding"}
    if unknown:
        raise ValueError(f"{path.name}: unknown keys {sorted(unknown)}")
    from assets.partitions import history_start

    history_start(raw, path.name)
    try:
        Thresholds.from_dict(raw.get("checks"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    try:
        options = OptionsConfig.from_dict(raw.get("options"))
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    source = raw.get("source", "embedded")
    if source not in MARKET_SOURCES:
        raise ValueError(f"{path.name}: unknown source {source!r}; available: {', '.join(MARKET_SOURCES)}")
    extended = raw.get("extended_hours", False)
    if not isinstance(extended, bool):
        raise ValueError(f"{path.name}: extended_hours must be true or false, got {extended!r}")
    sections = {name: raw.get(name) or {} for name in ("polygon", "ibkr", "file")}
    for name, section in sections.items():
        if name in raw:
            source_settings(name, section, extended)
    embedded = raw.get("embedded") or {}
    if not isinstance(embedded, dict):
        raise ValueError(f"{path.name}: embedded must be a mapping of settings, got {embedded!r}")
    unknown = sorted(set(embedded) - set(EMBEDDED_KEYS))
    if unknown:
        raise ValueError(f"{path.name}: embedded: unknown keys {unknown}; known: {list(EMBEDDED_KEYS)}")
    from market.synthetic import SyntheticMarketConfig

    try:
        SyntheticMarketConfig(**{k: v for k, v in embedded.items() if v is not None})  # null = the default
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path.name}: embedded: {exc}") from None
    symbols = raw.get("symbols", ["SPY", "QQQ", "SPX"])
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) and s for s in symbols):
        raise ValueError(f"{path.name}: symbols must be a non-empty list of symbol names, got {symbols!r}")
    instruments = raw.get("instruments") or {}
    _check_symbols(path, symbols, instruments, source)
    extra: dict[str, Any] = {}
    if "polygon" in (source, options.source):
        extra["polygon_api_key"] = dg.EnvVar(POLYGON_KEY_ENV)
    return MarketDataResource(
        source=source,
        symbols=symbols,
        instruments=instruments,
        checks=raw.get("checks") or {},
        extended_hours=extended,
        options=raw.get("options") or {},
        file_base_dir=str(path.resolve().parent.parent),
        **sections,
        **embedded,
        **extra,
    )


def _check_symbols(path: Path, symbols: list[str], instruments: Any, source: str) -> None:
    """Every symbol must be a built-in, a declared instrument or a contract of a futures root: refused here, when
    the code location loads, naming the file and the known instruments. The embedded market has no options."""
    from market.symbols import declared, known_instruments, parse_instruments

    try:
        specs = parse_instruments(instruments, f"{path.name}: instruments")
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    with declared(specs):
        for symbol in symbols:
            try:
                spec = get_symbol(symbol)
            except ValueError:
                known = ", ".join(known_instruments())
                raise ValueError(
                    f"{path}: unknown symbol {symbol!r} in symbols; known instruments: {known}. Declare it under "
                    "instruments: (kind, tick_size, point_value, ...), or write a futures contract as root + "
                    "month code + year, e.g. ESU24"
                ) from None
            if source == "embedded" and spec.kind not in ("equity", "etf", "index", "future"):
                raise ValueError(
                    f"{path}: {symbol!r} is an {spec.kind}; the embedded market generates equities, ETFs, indexes "
                    "and CME equity-index futures only: import its data with source: file, polygon or ibkr"
                )


def funding_market_from_yaml(path: Path) -> FundingMarketResource:
    """The funding resource described by the `funding:` section of `configs/market.yaml`."""
    raw = (yaml.safe_load(path.read_text()) or {}).get("funding") or {}
    unknown = set(raw) - {"source", "embedded", "ccxt"}
    if unknown:
        raise ValueError(f"{path.name}: funding: unknown keys {sorted(unknown)}")
    ccxt = raw.get("ccxt") or {}
    unknown = set(ccxt) - {"exchanges", "symbols"}
    if unknown:
        raise ValueError(f"{path.name}: funding.ccxt: unknown keys {sorted(unknown)}")
    for name, names in ccxt.items():
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"{path.name}: funding.ccxt.{name} must be a non-empty list of names, got {names!r}")
    embedded = raw.get("embedded") or {}
    if not isinstance(embedded, dict):
        raise ValueError(f"{path.name}: funding.embedded must be a mapping of settings, got {embedded!r}")
    from market.funding import funding_config_from_dict

    try:
        funding_config_from_dict(dict(embedded))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path.name}: funding.embedded: {exc}") from None
    return FundingMarketResource(source=raw.get("source", "embedded"), embedded=embedded, **ccxt)


def staging_from_yaml(path: Path, home: Path) -> str | None:
    """market.yaml `staging`: false (raw_ticks writes DuckDB), true (`<home>/staging`), a folder of its own, or an
    object-store URL (`s3://bucket/prefix`, credentials from the backend's environment variables only)."""
    from warehouse.store import check_location, is_url

    value = (yaml.safe_load(path.read_text()) or {}).get("staging", False) if path.exists() else False
    if value is False or value is None:
        return None
    if value is True:
        return str(home / "staging")
    if isinstance(value, str) and value.strip():
        value = check_location(value.strip(), f"{path.name}: staging")
        return value if is_url(value) else str(Path(value).expanduser())
    raise ValueError(f"{path.name}: staging must be true, false, a folder or an s3:// URL, got {value!r}")


def default_resources(home: Path | None = None, configs: Path | None = None) -> dict:
    """Resources rooted at the tradeflow home, with the market source chosen by `configs/market.yaml`."""
    home = home or tradeflow_home()
    configs = configs or config_dir()
    staging = staging_from_yaml(configs / "market.yaml", home)
    mirror = artifact_mirror()
    return {
        "warehouse": WarehouseResource(path=str(home / "warehouse.duckdb"), staging=staging),
        "market": market_from_yaml(configs / "market.yaml"),
        "funding_market": funding_market_from_yaml(configs / "market.yaml"),
        "artifacts": ArtifactStore(home=str(home), mirror=mirror),
        "configs": ConfigStore(path=str(configs)),
        # Step outputs (the manifests and artifacts passed between assets) in the mirror too, when there is one.
        "io_manager": dg.FilesystemIOManager(base_dir=f"{mirror}/storage" if mirror else str(home / "storage")),
    }
