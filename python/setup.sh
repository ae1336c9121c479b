#!/usr/bin/env bash
# Create python/.venv with the pinned toolchain of the SDK's tests (requirements.txt, idempotent) and install the
# SDK itself into it from this directory (no build isolation: hatchling is pinned in requirements.txt).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$HERE/../scripts/python-venv" "$HERE"
"$HERE/.venv/bin/python" -m pip install --disable-pip-version-check --quiet --no-deps --no-build-isolation --no-index "$HERE"
