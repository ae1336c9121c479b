#!/usr/bin/env bash
# Prepare bench/serve: the Python venv (MLServer, the FastAPI baseline, scikit-learn pinned to the
# fixtures' version) and the load generator (wrk, from the Debian archive).
# Idempotent: the pip install is skipped while .venv/.requirements.sha256 matches the hash of
# requirements.txt + the interpreter version; wrk is installed only when missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
REQ="$HERE/requirements.txt"
STAMP="$VENV/.requirements.sha256"

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

# --- python venv ----------------------------------------------------------------------------
pick_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
  for p in python3.11 python3; do
    if command -v "$p" >/dev/null 2>&1; then echo "$p"; return; fi
  done
  echo "setup.sh: no python3 found (set PYTHON=/path/to/python3.11)" >&2
  exit 1
}
PY="$(pick_python)"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup.sh: creating venv $VENV with $PY ($("$PY" --version 2>&1))"
  "$PY" -m venv "$VENV"
fi

want="$( { cat "$REQ"; "$VENV/bin/python" --version 2>&1; } | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$want" == "$have" ]]; then
  echo "setup.sh: requirements already installed (stamp ${want:0:12})"
  exit 0
fi

echo "setup.sh: installing pinned requirements into $VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check --only-binary=:all: -r "$REQ"
"$VENV/bin/python" -m pip check
echo "$want" > "$STAMP"
echo "setup.sh: done"
