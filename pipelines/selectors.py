"""Reads of the feedback loop: a deployment's loop and the dataset versions attached to it."""
from django.db.models import QuerySet

from dashboard.models import AssetStatus, DatasetAsset, DatasetVersion, Deployment, PredictedAsset
from dashboard.selectors.datasets import versions_with_counts
from pipelines.models import FeedbackLoop


def feedback_loop_versions(*, deployment: Deployment) -> list[DatasetVersion]:
    queryset = DatasetVersion.objects.filter(feedback_loops__deployment=deployment)
    return list(versions_with_counts(queryset).order_by("dataset__name", "created_at"))


def feedback_loop_preview(*, assets: QuerySet[PredictedAsset], versions: list[DatasetVersion]) -> tuple[int, int]:
    """What submitting the REVIEWED ones of `assets` would do to the versions: (new images, images updated), summed
    over the versions as the submit counts them (a version keeps one asset per image)."""
    images = set(assets.filter(status=AssetStatus.REVIEWED).values_list("data_id", flat=True))
    held = DatasetAsset.objects.filter(version__in=versions, data_id__in=images).count() if images else 0
    return len(images) * len(versions) - held, held


def feedback_loop_of(*, deployment: Deployment) -> FeedbackLoop | None:
    return FeedbackLoop.objects.filter(deployment=deployment).first()


# Continuous training and deployment


def continuous_training_of(*, deployment: Deployment):
    from pipelines.models import ContinuousTraining

    return ContinuousTraining.objects.select_related("project").filter(deployment=deployment).first()


def continuous_deployment_of(*, deployment: Deployment):
    from pipelines.models import ContinuousDeployment

    return ContinuousDeployment.objects.filter(deployment=deployment).first()


def experiments_of(*, deployment: Deployment, limit: int = 100):
    """The deployment's newest experiments, with the versions they used and made."""
    from pipelines.models import Experiment

    return list(Experiment.objects.filter(deployment=deployment)
                .select_related("model_version__model", "base_model_version__model")[:limit])


def experiments_waiting(*, deployment: Deployment):
    """Experiments whose version waits for an admin: pending (manual policy) or refused by the gate, not yet
    decided."""
    from pipelines.models import Experiment
    from pipelines.services.deployment import GATE_FAILED, PENDING

    return list(Experiment.objects.filter(deployment=deployment, deployment_action__in=[PENDING, GATE_FAILED])
                .select_related("model_version__model", "base_model_version__model")[:20])


def experiment_of(*, deployment: Deployment, experiment_id):
    from pipelines.models import Experiment

    return (Experiment.objects.filter(deployment=deployment, pk=experiment_id)
            .select_related("model_version__model", "base_model_version__model", "project", "retry_of").first())
