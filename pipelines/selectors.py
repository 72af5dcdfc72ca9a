"""Reads of the feedback loop: a deployment's loop and the dataset versions attached to it."""
from dashboard.models import DatasetVersion, Deployment
from dashboard.selectors.datasets import versions_with_counts
from pipelines.models import FeedbackLoop


def feedback_loop_versions(*, deployment: Deployment) -> list[DatasetVersion]:
    queryset = DatasetVersion.objects.filter(feedback_loops__deployment=deployment)
    return list(versions_with_counts(queryset).order_by("dataset__name", "created_at"))


def feedback_loop_of(*, deployment: Deployment) -> FeedbackLoop | None:
    return FeedbackLoop.objects.filter(deployment=deployment).first()
