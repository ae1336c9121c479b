#!/usr/bin/env bash
# Prepare bench/explain: shap.TreeExplainer runs in the pinned venv that made the trees fixtures' shap goldens
# (tools/fixtures/.venv: shap, xgboost, lightgbm). Idempotent (scripts/python-venv skips an unchanged install).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$HERE/../../tools/fixtures/setup.sh"
