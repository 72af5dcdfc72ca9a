"""`migrate`, refusing a database made before Loupe's apps were split, with what to do instead of a traceback."""
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.recorder import MigrationRecorder

# Migrations of the core that no longer exist: their tables moved into monitoring, serving and pipelines,
# each with a fresh initial migration. No installation needed upgrading then, so none is provided.
BEFORE_THE_SPLIT = {("dashboard", "0002_outliers"), ("dashboard", "0003_datasets"),
                    ("dashboard", "0004_queue_to_review_index")}


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        connection = connections[options.get("database") or DEFAULT_DB_ALIAS]
        recorder = MigrationRecorder(connection)
        if recorder.has_table() and BEFORE_THE_SPLIT & recorder.applied_migrations().keys():
            raise CommandError(
                f"the database {connection.settings_dict['NAME']} was made by a Loupe from before its apps were split "
                "(monitoring, serving, pipelines), and cannot be upgraded. Remove it and start again: with `make run`, "
                "stop it and delete the var/ folder (or the LOUPE_VAR you set); the demo is made anew."
            )
        return super().handle(*args, **options)
