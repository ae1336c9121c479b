#!/usr/bin/env bash
# Prepare bench/serve: the Python venv (MLServer, the FastAPI baseline, scikit-learn pinned to the
# fixtures' version) and the load generator (wrk, from the Debian archive).
# Idempotent: scripts/python-venv skips the pip install while requirements are unchanged; wrk is
# installed only when missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# --- load generator -------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  echo "setup.sh: installing wrk (apt-get)"
  SUDO=""
  if [[ "$(id -u)" != "0" ]]; then SUDO="sudo"; fi
  if ! $SUDO apt-get install -y wrk; then
    $SUDO apt-get update
    $SUDO apt-get install -y wrk
  fi
fi
echo "setup.sh: $(wrk --version 2>&1 | head -1 | cut -c1-60)"

# --- python venv (shared pinned-venv installer) ---------------------------------------------
exec "$HERE/../../scripts/python-venv" "$HERE"
