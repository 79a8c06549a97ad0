#!/usr/bin/env bash
# The test suite. Installs what it needs first; never passes when nothing was collected.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
export PREFECT_HOME="${PREFECT_HOME:-$ROOT/.prefect-test}"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "careflow: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit $rc
