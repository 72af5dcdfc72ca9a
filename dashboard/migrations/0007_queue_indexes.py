"""Two indexes of the queue on PostgreSQL, not declared on the model because SQLite cannot have them:

- a trigram index (pg_trgm) on the upper-cased filename. A word of the search bar, and filename:*x* patterns, read
  `UPPER(filename) LIKE UPPER('%word%')` (Django's icontains and friends), which a B-tree cannot help: without it
  PostgreSQL scans the deployment's rows (400 ms at a million). pg_trgm is a trusted extension: the database's
  owner can create it. SQLite has no GIN;
- the default sort in one index order, unscored frames last: (outlier_score DESC NULLS LAST, id DESC), for all
  frames and for those to review (as asset_by_outlier and asset_to_review_by_outlier are). The first page of the
  default sort is then one statement, whatever the filter (see dashboard.selectors.assets). SQLite's indexes read
  backwards are already in that order (NULL sorts lowest there).
"""
from django.db import migrations

INDEX = "asset_filename_trigram"
NULLS_LAST = "asset_by_outlier_nulls_last"
TO_REVIEW_NULLS_LAST = "asset_to_review_by_outlier_nulls_last"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON dashboard_predictedasset "
                          "USING gin (UPPER(filename) gin_trgm_ops)")
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {NULLS_LAST} ON dashboard_predictedasset "
                          "(deployment_id, outlier_score DESC NULLS LAST, id DESC)")
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {TO_REVIEW_NULLS_LAST} ON dashboard_predictedasset "
                          "(deployment_id, outlier_score DESC NULLS LAST, id DESC) WHERE status = 'TO_REVIEW'")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {TO_REVIEW_NULLS_LAST}")
        schema_editor.execute(f"DROP INDEX IF EXISTS {NULLS_LAST}")
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")  # the extension stays: others may use it


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0006_admin_console")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
