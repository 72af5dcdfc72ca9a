"""Review history; the current reviewed shapes live on the predicted asset in the core."""
from django.conf import settings
from django.db import models

from dashboard.models import PredictedAsset


class ReviewKind(models.TextChoices):
    ACCEPT = "accept", "Accepted as shown"
    REVIEW = "review", "Reviewed"
    BULK_ACCEPT = "bulk_accept", "Bulk accepted"


class Review(models.Model):
    """One save of a reviewer's shapes: kept forever, so who changed what and from which version stays known."""

    asset = models.ForeignKey(PredictedAsset, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=ReviewKind.choices)
    shapes = models.JSONField(default=list)
    based_on_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["asset", "created_at"], name="review_by_asset")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.asset_id} on version {self.based_on_version}"
