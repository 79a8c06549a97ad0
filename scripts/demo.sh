#!/usr/bin/env bash
# The main job: a simulated day of the customer care center on the embedded default
# (SQLite file + Prefect's ephemeral API). Installs what it needs first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec .venv/bin/careflow demo "$@"
