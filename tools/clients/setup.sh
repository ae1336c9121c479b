#!/usr/bin/env bash
# Create tools/clients/.venv with Triton's Python client (tritonclient) for the peer-client conformance test.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$HERE/../../scripts/python-venv" "$HERE"
