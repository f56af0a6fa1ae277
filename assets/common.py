"""What every asset module shares: the DuckDB writers' pool and how plain dicts become Dagster metadata."""

from typing import Any

import dagster as dg

# DuckDB allows one writing process: every step that opens the warehouse runs in this pool (limit 1).
WAREHOUSE_POOL = "duckdb"


def metadata(values: dict[str, Any]) -> dict[str, Any]:
    """Scalars as they are, anything nested as JSON, so the UI shows (and plots) each value."""
    return {k: v if isinstance(v, int | float | str | bool) else dg.MetadataValue.json(v) for k, v in values.items()}


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
