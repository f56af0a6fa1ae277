#!/usr/bin/env bash
# The Dagster UI on 127.0.0.1, over the same home (and Dagster instance) the main command used.
set -euo pipefail
cd "$(dirname "$0")/.."
export TRADEFLOW_HOME="${TRADEFLOW_HOME:-$PWD/.tradeflow}"
export DAGSTER_HOME="$(.venv/bin/python -c 'from assets.settings import ensure_dagster_home; print(ensure_dagster_home())')"
exec .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "${PORT:-3000}"
