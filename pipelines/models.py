"""The feedback loop's data: where a deployment's reviewed predictions go when they are submitted."""
from django.db import models

from dashboard.models import DatasetVersion, Deployment


class FeedbackLoop(models.Model):
    """Where a deployment's reviewed predictions go when submitted: the attached dataset versions."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="feedback_loop")
    active = models.BooleanField(default=True)
    dataset_versions = models.ManyToManyField(DatasetVersion, blank=True, related_name="feedback_loops")
    # Continuous training compares it with its threshold, and resets it when it trains.
    submitted_since_training = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"feedback loop of {self.deployment_id}"
