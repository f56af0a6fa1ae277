"""What every asset module shares: the DuckDB writers' pool and how plain dicts become Dagster metadata."""

import math
from collections.abc import Mapping
from typing import Any

import dagster as dg

# DuckDB allows one writing process: every step that opens the warehouse runs in this pool (limit 1).
WAREHOUSE_POOL = "duckdb"
SIGNIFICANT_DIGITS = 6  # 2495.188093497481 is shown as 2495.19, 1.9e13 as 1.9e+13


def rounded(value: Any) -> Any:
    """Floats (also inside lists and dicts) to SIGNIFICANT_DIGITS significant digits, so the UI shows what matters."""
    if isinstance(value, float):
        if not math.isfinite(value) or value == 0:
            return value
        return round(value, SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value))))
    if isinstance(value, Mapping):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars as they are (floats rounded), anything nested as JSON, so the UI shows (and plots) each value."""
    return {
        k: rounded(v) if isinstance(v, int | float | str | bool) else dg.MetadataValue.json(rounded(v))
        for k, v in values.items()
    }


def partition_metadata(
    context: dg.AssetExecutionContext, per_partition: Mapping[str, Mapping[str, Any]], asset_key: str | None = None
) -> None:
    """Metadata of each partition of a multi-partition run, recorded on that partition's materialization only.

    A single-run backfill materializes every partition in one step; without this, each partition would show the
    whole run's totals. Run-wide values go in the step's own result, under names starting with `run_`.
    """
    for partition_key, values in per_partition.items():
        context.add_asset_metadata(metadata(values), asset_key=asset_key, partition_key=partition_key)


def check_result(
    name: str, result: dict[str, Any], severity: dg.AssetCheckSeverity, asset_key: str | None = None
) -> dg.AssetCheckResult:
    """A plain check dict with a `passed` key (as `warehouse.checks` returns) as a Dagster check result.

    `asset_key` names the checked asset where one step materializes several (a multi-asset).
    """
    return dg.AssetCheckResult(
        check_name=name,
        passed=bool(result["passed"]),
        severity=severity,
        metadata=metadata(result),
        asset_key=asset_key,
    )
