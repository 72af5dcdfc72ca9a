"""`make run`'s preparation in one process (one Django start instead of three): migrate, collect the static files,
seed the demo. Standard output carries seed_demo's JSON alone; the rest goes to standard error."""
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, collect static files and seed the demo (what make run does before it starts the servers)."

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, stdout=sys.stderr)
        call_command("collectstatic", interactive=False, verbosity=0, stdout=sys.stderr)
        call_command("seed_demo", json=True)
