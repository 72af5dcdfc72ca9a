"""`migrate` on a database from before the apps were split says what to do instead of failing obscurely."""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.migrations.recorder import MigrationRecorder


def test_a_database_from_before_the_split_is_refused_with_what_to_do(db):
    MigrationRecorder.Migration.objects.create(app="dashboard", name="0002_outliers")
    with pytest.raises(CommandError, match="delete the var/ folder"):
        call_command("migrate", verbosity=0)


def test_a_current_database_migrates(db):
    call_command("migrate", verbosity=0)  # nothing to apply, and no refusal
    assert not MigrationRecorder.Migration.objects.filter(app="dashboard", name="0002_outliers").exists()
