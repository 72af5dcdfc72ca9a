"""Prints a new API token for a user (the only time its plain value is shown)."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from dashboard.services.auth import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="What the token is for.")

    def handle(self, *args, username: str, name: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        _, plain = api_token_create(user=user, name=name)
        self.stdout.write(plain)
