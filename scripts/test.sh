#!/usr/bin/env bash
# Runs the whole suite: the import contracts (.importlinter), every test on SQLite, then tests/integration again
# (and the queue's orders, tests/unit/reviews/test_queue.py) on a throwaway PostgreSQL. Extra arguments go to both
# pytest runs (e.g. scripts/test.sh -x -k smoke).
# Fails if any of the three fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

echo "=== lint-imports: the apps' arrows point one way (.importlinter)"
# sdk/ first on the path, so the client's source is checked rather than its installed copy.
PYTHONPATH=.:sdk "$(dirname "$PY")/lint-imports" --no-cache
lint_rc=$?

echo "=== pytest tests/ on SQLite (but the tests of PostgreSQL itself and of its restart)"
"$PY" -m pytest tests -m "not pg_restart and not postgresql" "$@"
sqlite_rc=$?

echo "=== pytest tests/integration, the queue's orders and the prepared queries on PostgreSQL"
# make run's own embedded setup is SQLite whatever the database: it ran in the pass above.
scripts/with_postgres.sh "$PY" -m pytest tests/integration tests/unit/reviews/test_queue.py tests/unit/dashboard/test_prepared_query.py -m "not embedded" "$@"
pg_rc=$?

# On success pytest's own summary stays the last line; otherwise say which run failed.
if [[ $lint_rc -ne 0 || $sqlite_rc -ne 0 || $pg_rc -ne 0 ]]; then
    echo "=== FAILED: lint-imports exit $lint_rc, SQLite run exit $sqlite_rc, PostgreSQL run exit $pg_rc (pytest: 5 means no test ran)"
    exit 1
fi
