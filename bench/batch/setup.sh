#!/usr/bin/env bash
# Prepare bench/batch: the pinned Python venv for the pandas + scikit-learn baseline. Idempotent (scripts/python-venv
# skips the install while requirements are unchanged).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$HERE/../../scripts/python-venv" "$HERE"
