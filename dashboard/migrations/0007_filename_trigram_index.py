"""The queue's filename search indexed on PostgreSQL: a trigram index (pg_trgm) on the upper-cased filename.

A word of the search bar, and filename:*x* patterns, read `UPPER(filename) LIKE UPPER('%word%')` (Django's
icontains and friends), which a B-tree cannot help: without this index PostgreSQL scans the deployment's rows
(400 ms at a million). pg_trgm is a trusted extension: the database's owner can create it. SQLite, small by
design, searches as before. The index is not declared on the model, because SQLite has no GIN.
"""
from django.db import migrations

INDEX = "asset_filename_trigram"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON dashboard_predictedasset "
                          "USING gin (UPPER(filename) gin_trgm_ops)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")  # the extension stays: others may use it


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0006_admin_console")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
