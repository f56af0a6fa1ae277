#!/usr/bin/env bash
# The Dagster UI on 127.0.0.1, over the same home (and Dagster instance) the main command used.
#
# SIGINT (Ctrl-C) and SIGTERM (`kill`) stop it and everything it started (webserver, daemon, code servers), also
# when it runs as a background job (`bash scripts/ui.sh &`). Such a job starts with SIGINT and SIGQUIT ignored,
# which bash can neither trap nor undo, and `dagster dev` gives SIGTERM the disposition SIGINT has, so it used to
# ignore both. The small Python step below restores the default dispositions and then becomes `dagster dev`
# (same pid), whose own handlers then shut its services down.
set -euo pipefail
cd "$(dirname "$0")/.."
export TRADEFLOW_HOME="${TRADEFLOW_HOME:-$PWD/.tradeflow}"
export DAGSTER_HOME="$(.venv/bin/python -c 'from assets.settings import ensure_dagster_home; print(ensure_dagster_home())')"
exec .venv/bin/python -c '
import os, signal, sys
for name in ("SIGINT", "SIGQUIT", "SIGTERM", "SIGPIPE", "SIGXFSZ"):
    signal.signal(getattr(signal, name), signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])
' .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "${PORT:-3000}"
