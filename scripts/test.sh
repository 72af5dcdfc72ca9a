#!/usr/bin/env bash
# Runs the whole suite: every test on SQLite, then tests/integration again on a throwaway PostgreSQL.
# Extra arguments go to both pytest runs (e.g. scripts/test.sh -x -k smoke). Fails if either run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

echo "=== pytest tests/ on SQLite"
"$PY" -m pytest tests "$@"
sqlite_rc=$?

echo "=== pytest tests/integration on PostgreSQL"
scripts/with_postgres.sh "$PY" -m pytest tests/integration "$@"
pg_rc=$?

# On success pytest's own summary stays the last line; otherwise say which run failed.
if [[ $sqlite_rc -ne 0 || $pg_rc -ne 0 ]]; then
    echo "=== FAILED: SQLite run exit $sqlite_rc, PostgreSQL run exit $pg_rc (pytest: 5 means no test ran)"
    exit 1
fi
