"""Rebuilds stats rollups from the raw rows (one deployment, or all), with a progress bar."""
import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from dashboard.models import Deployment
from monitoring.management.commands.rescore_outliers import deployment_named
from monitoring.services.stats import stats_rebuild


class Command(BaseCommand):
    help = "Forget the stats rollups of DEPLOYMENT (name or id; all deployments when omitted) and count them again."

    def add_arguments(self, parser):
        parser.add_argument("deployment", nargs="?", help="The deployment's name or id (default: every deployment).")

    def handle(self, *args, deployment: str | None, **options):
        targets = [deployment_named(deployment)] if deployment else list(Deployment.objects.order_by("name"))
        for target in targets:
            with tqdm(total=target.predicted_assets.count(), unit="asset", file=sys.stderr, desc=target.name) as bar:
                counted = stats_rebuild(deployment=target, progress=bar.update)
            self.stdout.write(f"Counted {counted} assets of {target.name} into its stats rollups.")
