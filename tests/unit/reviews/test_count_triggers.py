"""The campaign task counts are kept by database triggers (reviews/migrations/0003_task_counts.py). On SQLite a
later migration that alters reviews_reviewtask may rebuild the table, and a rebuilt table has lost its triggers:
this fails then, so that the migration puts them back."""
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

TRIGGERS = {"reviews_task_count_insert", "reviews_task_count_update", "reviews_task_count_delete"}


def test_the_migrated_database_has_the_task_count_triggers():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'reviews_reviewtask'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'reviews_reviewtask'::regclass")
        names = {row[0] for row in cursor.fetchall()}
    assert TRIGGERS <= names
