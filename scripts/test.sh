#!/usr/bin/env bash
# Installs everything the tests need, then runs the linters, the type checker and
# the tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

.venv/bin/ruff check loopsync tests
.venv/bin/ruff format --check loopsync tests
.venv/bin/mypy
.venv/bin/pytest "$@"
