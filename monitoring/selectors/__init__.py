"""Reads of monitoring: the references outlier scores are measured against (stats reads: monitoring.selectors.stats)."""
from dashboard.models import Deployment
from monitoring.models import OutlierReference, TrainingDataReference


def training_data_of(*, deployment: Deployment) -> TrainingDataReference | None:
    return TrainingDataReference.objects.select_related("dataset_version__dataset").filter(deployment=deployment).first()


def outlier_reference_active(*, deployment: Deployment) -> OutlierReference | None:
    """The reference the deployment's scores are measured against now (without its fitted model's bytes)."""
    return OutlierReference.objects.filter(deployment=deployment, is_active=True).defer("model").first()
