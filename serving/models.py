"""Serving's data: the history of which model version served each deployment as champion and shadow.

The versions themselves live in the core (dashboard.models.ModelVersion): deployments and predictions point at them.
"""
from django.conf import settings
from django.db import models

from dashboard.models import Deployment, ModelVersion


class ServingRole(models.TextChoices):
    CHAMPION = "champion", "Champion"
    SHADOW = "shadow", "Shadow"


class DeploymentModelChange(models.Model):
    """One change of a deployment's champion or shadow: who, when, from which version to which.

    Kept when versions are deleted: the labels say what the versions were.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="model_changes")
    role = models.CharField(max_length=16, choices=ServingRole.choices)
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    current = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_changes"
    )
    previous_label = models.CharField(max_length=220, blank=True)
    current_label = models.CharField(max_length=220, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["deployment", "changed_at"], name="model_change_by_deployment")]

    def __str__(self) -> str:
        return f"{self.deployment} {self.role}: {self.previous_label or 'none'} -> {self.current_label or 'none'}"
