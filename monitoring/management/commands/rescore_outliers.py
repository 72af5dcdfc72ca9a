"""Rebuilds a deployment's outlier reference from its history and rescores all its assets, with a progress bar."""
import sys
import uuid

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from dashboard.models import Deployment
from monitoring.services.outliers import deployment_rescore, outlier_reference_for, reference_size


class Command(BaseCommand):
    help = "Rebuild the outlier reference of DEPLOYMENT (name or id) from its first assets and rescore every asset."

    def add_arguments(self, parser):
        parser.add_argument("deployment", help="The deployment's name or id.")
        parser.add_argument("--size", type=int, help="How many first assets make the reference (default: the setting).")

    def handle(self, *args, deployment: str, size: int | None, **options):
        target = deployment_named(deployment)
        size = size or reference_size()
        with tqdm(total=target.predicted_assets.count(), unit="asset", file=sys.stderr, desc=target.name) as bar:
            scored = deployment_rescore(deployment=target, progress=bar.update, size=size)
        reference = outlier_reference_for(deployment=target)
        if reference is None:
            self.stdout.write(f"Scored no asset of {target.name}: fewer than {size} assets could make a reference.")
            return
        self.stdout.write(
            f"Scored {scored} assets of {target.name} with {reference.method}; "
            f"reference: {reference.description} ({reference.get_source_display().lower()})."
        )


def deployment_named(name_or_id: str) -> Deployment:
    try:
        found = Deployment.objects.filter(pk=uuid.UUID(name_or_id))
    except ValueError:
        found = Deployment.objects.filter(name=name_or_id)
    found = list(found.select_related("organization")[:2])
    if not found:
        raise CommandError(f"no deployment with the name or id {name_or_id!r}")
    if len(found) > 1:
        raise CommandError(f"several organizations have a deployment named {name_or_id!r}: give its id")
    return found[0]
