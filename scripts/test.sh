#!/usr/bin/env bash
# Run the whole test suite. Makes sure scripts/setup.sh has run first (it is idempotent and
# quick when everything is in place). Extra arguments go to pytest.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
bash scripts/setup.sh   # also runs the sample job: the README path stays tested

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests - treating that as a failure" >&2
    exit 1
fi
exit "$status"
