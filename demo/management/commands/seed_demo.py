"""Loads the demo (idempotent): an organization, one user per role, three deployments of real predictions."""
import json as jsonlib
import os
import sys

from django.core.management.base import BaseCommand

from demo.services import demo_seed


class Command(BaseCommand):
    help = "Create the demo organization, users and deployments, with predictions made by classical models."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=int(os.environ.get("LOUPE_DEMO_COUNT", 300)),
                            help="Predictions per deployment (default: LOUPE_DEMO_COUNT, else 300).")
        parser.add_argument("--json", action="store_true", help="Print only the demo's ids and logins, as JSON.")

    def handle(self, *args, count: int, json: bool, **options):
        # With --json, standard output carries the JSON alone; progress goes to standard error.
        summary = demo_seed(count=count, progress=lambda message: sys.stderr.write(message + "\n"))
        if json:
            self.stdout.write(jsonlib.dumps(summary))
            return
        self.stdout.write(f"Demo organization: {summary['organization']}")
        for deployment in summary["deployments"]:
            self.stdout.write(f"  deployment {deployment['name']} ({deployment['type']}): {deployment['id']}")
        for user in summary["users"]:
            self.stdout.write(f"  login {user['username']} / {user['password']} ({user['role']}), API token {user['api_token']}")

